/* lazy_work.c - the pieces of a lazy output, computed in a worker
 * (lazy_work.h).
 *
 * Design notes:
 *  1. A block is one window of the window engine (window.h: the same
 *     pixels as the whole output), cut into the file's tiles here: whole
 *     256 x 256 tiles, the part outside the image zero, as tiff_write.c
 *     writes edge tiles.  The bytes are the file's (little-endian); a
 *     big-endian host is refused rather than swapped (no such host runs
 *     rasterfs, and tiff.c's swap is private).
 *     A block of overview level k is the same with the window engine
 *     opened at level k (lazy.h: the chain computed at resolution 2^k).
 *     The whole computation's overview tiles (rfs_lazy_work_overviews)
 *     come from the same engine a row of blocks at a time (one window
 *     the level's width and a block's height): the window engine's
 *     bytes do not depend on the window (window.h), so they are the same
 *     bytes as the blocks a reader has computed one by one
 *     (tests/mount/test_lazy*.py compare them), and a warp's 512 x 128
 *     blocks are computed once, not once per block column.
 *  2. The sample statistics are read window by window, band by band, in
 *     the layout's type and converted to doubles by GDALCopyWords, from
 *     the window engine or from the whole output's dataset: the same
 *     values in the same order into rfs_lazy_acc (lazy.c note 2).
 *  3. The sample is what a first open of a lazy output waits for (4
 *     windows, each one warped-VRT block of 512 x 128 for a warp), so its
 *     windows are computed at once, one thread per core
 *     (rfs_window_read_many), then summed in the order of note 2: the same
 *     doubles as one by one (figures: docs/large-outputs.md,
 *     "Measured").  One by one when the windows would hold more than
 *     RFS_LAZY_PRE_MAX bytes (hundreds of bands) or on one core.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cpl_error.h>
#include <xxhash.h>

#include "rasterfs/err.h"
#include "rasterfs/lazy.h"
#include "rasterfs/lazy_work.h"
#include "rasterfs/window.h"

static int write_err(int e, const char *path, char *msg, size_t msglen)
{
	snprintf(msg, msglen, "cannot write %s: %s", path, strerror(e));
	return e == ENOSPC || e == EDQUOT ? -RFS_E_NOSPACE : -RFS_E_STORE_IO;
}

static int write_all(int fd, const void *p, size_t n)
{
	const unsigned char *b = p;

	while (n) {
		ssize_t w = write(fd, b, n);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		b += w;
		n -= (size_t)w;
	}
	return 0;
}

/* Does the window engine's grid agree with level k of the layout?  0 or
 * -RFS_E_INTERNAL. */
static int grid_matches(struct rfs_window *w, const struct rfs_tiff_layout *l,
			int k, char *msg, size_t msglen)
{
	const struct rfs_grid *g = rfs_window_grid(w);

	if (g->width != l->level[k].width || g->height != l->level[k].height ||
	    g->nbands != l->bands || g->bands[0].type != l->type) {
		snprintf(msg, msglen, "the window engine's output at level %d "
			 "(%lld x %lld, %d bands) is not the described one "
			 "(%d x %d, %d bands)", k, g->width, g->height,
			 g->nbands, l->level[k].width, l->level[k].height,
			 l->bands);
		return -RFS_E_INTERNAL;
	}
	return 0;
}

/* What a block's tiles go to: out(arg, tx, ty, band, tile) for each tile
 * (of the level; tile: RFS_TIFF_TILE^2 samples, the outside zero), in the
 * object's order (note 1).  Returns 0 or a negative code. */
typedef int (*tile_out_fn)(void *arg, int tx, int ty, int band,
			   const unsigned char *tile);

/* Compute the tiles [tx0, tx0 + ntx) x [ty0, ty0 + nty) of level k as
 * one window of w (opened at k) and hand them to out.  buf: room for the
 * window (rfs_window_bytes), tile: l->tile_bytes. */
static int win_tiles(struct rfs_window *w, const struct rfs_tiff_layout *l,
		     int k, int tx0, int ty0, int ntx, int nty,
		     unsigned char *buf, unsigned char *tile, tile_out_fn out,
		     void *arg, char *msg, size_t msglen)
{
	const int T = RFS_TIFF_TILE, sb = l->sample_bytes;
	const struct rfs_tiff_level *v = &l->level[k];
	int rc;
	struct rfs_win win;

	win.x = tx0 * T;
	win.y = ty0 * T;
	win.w = ntx * T < v->width - win.x ? ntx * T : v->width - win.x;
	win.h = nty * T < v->height - win.y ? nty * T : v->height - win.y;
	if ((rc = rfs_window_read(w, &win, buf, rfs_window_bytes(w, &win),
				  msg, msglen)) < 0)
		return rc;
	/* note 1: tile row, tile column, band, as the file orders them */
	for (int ty = 0; ty < nty; ty++)
		for (int tx = 0; tx < ntx; tx++)
			for (int b = 0; b < l->bands; b++) {
				int x0 = tx * T, y0 = ty * T;
				int cw = win.w - x0 < T ? win.w - x0 : T;
				int ch = win.h - y0 < T ? win.h - y0 : T;
				const unsigned char *band = buf +
					(size_t)b * win.w * win.h * sb;

				memset(tile, 0, l->tile_bytes);
				for (int r = 0; r < ch; r++)
					memcpy(tile + (size_t)r * T * sb,
					       band + ((size_t)(y0 + r) * win.w +
						       x0) * sb,
					       (size_t)cw * sb);
				if ((rc = out(arg, tx0 + tx, ty0 + ty, b,
					      tile)) < 0)
					return rc;
			}
	return 0;
}

/* Block (bx, by) of level k (win_tiles). */
static int block_tiles(struct rfs_window *w, const struct rfs_tiff_layout *l,
		       int k, int bx, int by, unsigned char *buf,
		       unsigned char *tile, tile_out_fn out, void *arg,
		       char *msg, size_t msglen)
{
	int tx0, ty0, ntx, nty;

	rfs_lazy_block_tiles(l, k, bx, by, &tx0, &ty0, &ntx, &nty);
	return win_tiles(w, l, k, tx0, ty0, ntx, nty, buf, tile, out, arg,
			 msg, msglen);
}

/* The buffers of a block of l, whatever its level. */
static int block_buffers(const struct rfs_tiff_layout *l, unsigned char **buf,
			 unsigned char **tile, char *msg, size_t msglen)
{
	const size_t side = RFS_LAZY_BLOCK;

	*buf = malloc(side * side * (size_t)l->bands *
		      (size_t)l->sample_bytes);
	*tile = malloc(l->tile_bytes);
	if (!*buf || !*tile) {
		free(*buf);
		free(*tile);
		*buf = *tile = NULL;
		snprintf(msg, msglen, "out of memory for a block");
		return -RFS_E_NOMEM;
	}
	return 0;
}

struct obj_out {
	int fd;
	XXH3_state_t *hs;
	uint64_t size;
	uint64_t tile_bytes;
};

/* A block object's tiles: appended, hashed. */
static int to_object(void *arg, int tx, int ty, int band,
		     const unsigned char *tile)
{
	struct obj_out *o = arg;
	int rc;

	(void)tx, (void)ty, (void)band;
	if ((rc = write_all(o->fd, tile, o->tile_bytes)) < 0)
		return rc;
	XXH3_64bits_update(o->hs, tile, o->tile_bytes);
	o->size += o->tile_bytes;
	return 0;
}

/* The window handle to read with at level (lazy_work.h: keep, a handle
 * of level 0 only): *own says whether the caller closes it. */
static int window_of(const char *source, const struct rfs_chain *chain,
		     int level, struct rfs_window **keep,
		     struct rfs_window **w, int *own, char *msg,
		     size_t msglen)
{
	int rc;

	*own = 0;
	if (keep && level == 0 && *keep) {
		*w = *keep;
		return 0;
	}
	rc = rfs_window_open(source, chain, level, w, msg, msglen);
	if (rc == 0 && keep && level == 0)
		*keep = *w;
	else
		*own = 1;
	return rc;
}

int rfs_lazy_work_block(const char *source, const struct rfs_chain *chain,
			const struct rfs_tiff_layout *l, int level, int bx,
			int by, struct rfs_window **keep,
			const char *out_path, uint64_t *size,
			uint64_t *checksum, char *msg, size_t msglen)
{
	struct rfs_window *w = NULL;
	unsigned char *buf = NULL, *tile = NULL;
	struct obj_out o = { .fd = -1, .tile_bytes = l->tile_bytes };
	int rc, own = 0;

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
	snprintf(msg, msglen, "lazy outputs need a little-endian host");
	return -RFS_E_INTERNAL;
#endif
	if (level < 0 || level >= l->n_levels || bx < 0 || by < 0 ||
	    bx >= rfs_lazy_blocks_x(l->level[level].width) ||
	    by >= rfs_lazy_blocks_y(l->level[level].height)) {
		snprintf(msg, msglen, "block %d,%d of level %d is not in the "
			 "output", bx, by, level);
		return -RFS_E_BAD_ARG;
	}
	if ((rc = window_of(source, chain, level, keep, &w, &own, msg,
			    msglen)) < 0)
		goto out;
	if ((rc = grid_matches(w, l, level, msg, msglen)) < 0)
		goto out;
	if ((rc = block_buffers(l, &buf, &tile, msg, msglen)) < 0)
		goto out;
	if (!(o.hs = XXH3_createState())) {
		snprintf(msg, msglen, "out of memory for a block");
		rc = -RFS_E_NOMEM;
		goto out;
	}
	o.fd = open(out_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (o.fd < 0) {
		rc = write_err(errno, out_path, msg, msglen);
		goto out;
	}
	XXH3_64bits_reset(o.hs);
	rc = block_tiles(w, l, level, bx, by, buf, tile, to_object, &o, msg,
			 msglen);
	if (rc < 0 && !rfs_err_is_rfs(rc)) { /* a write's -errno */
		rc = write_err(-rc, out_path, msg, msglen);
		goto out;
	}
	if (rc < 0)
		goto out;
	if (fsync(o.fd) < 0) {
		rc = write_err(errno, out_path, msg, msglen);
		goto out;
	}
	*size = o.size;
	*checksum = XXH3_64bits_digest(o.hs);
	rc = 0;
out:
	if (o.fd >= 0 && close(o.fd) < 0 && rc == 0)
		rc = write_err(errno, out_path, msg, msglen);
	if (rc < 0 && o.fd >= 0)
		unlink(out_path);
	XXH3_freeState(o.hs);
	free(tile);
	free(buf);
	if (own)
		rfs_window_close(w);
	return rc;
}

struct file_out {
	int fd;
	const struct rfs_tiff_layout *l;
	int level;
};

/* The whole file's tiles: each at its offset. */
static int to_file(void *arg, int tx, int ty, int band,
		   const unsigned char *tile)
{
	struct file_out *f = arg;

	return rfs_tiff_write_tile(f->fd, f->l, f->level, band, tx, ty, tile);
}

int rfs_lazy_work_overviews(const char *source,
			    const struct rfs_chain *chain,
			    const struct rfs_tiff_layout *l, int fd,
			    char *msg, size_t msglen)
{
	unsigned char *buf = NULL, *tile = NULL;
	struct file_out f = { .fd = fd, .l = l };
	int rc = 0;

	if (!(tile = malloc(l->tile_bytes))) {
		snprintf(msg, msglen, "out of memory for a tile");
		return -RFS_E_NOMEM;
	}
	/* note 1: a row of blocks as one window (the window engine's bytes
	 * do not depend on the window: the same as the blocks'), so a warp's
	 * 512 x 128 blocks are computed once, not once per block column */
	for (int k = 1; k < l->n_levels && rc == 0; k++) {
		const struct rfs_tiff_level *v = &l->level[k];
		struct rfs_window *w = NULL;

		free(buf);
		buf = malloc((size_t)v->tiles_x * RFS_TIFF_TILE *
			     RFS_LAZY_BLOCK * (size_t)l->bands *
			     (size_t)l->sample_bytes);
		if (!buf) {
			snprintf(msg, msglen, "out of memory for a row of "
				 "blocks");
			rc = -RFS_E_NOMEM;
			break;
		}
		if ((rc = rfs_window_open(source, chain, k, &w, msg,
					  msglen)) < 0)
			break;
		rc = grid_matches(w, l, k, msg, msglen);
		f.level = k;
		for (int ty = 0; rc == 0 && ty < v->tiles_y;
		     ty += RFS_LAZY_TILES)
			rc = win_tiles(w, l, k, 0, ty, v->tiles_x,
				       v->tiles_y - ty < RFS_LAZY_TILES ?
				       v->tiles_y - ty : RFS_LAZY_TILES,
				       buf, tile, to_file, &f, msg, msglen);
		rfs_window_close(w);
	}
	/* the writes' codes (tiff.h: rfs_tiff_write_tile) */
	if (rc == -ENOMEM) {
		snprintf(msg, msglen, "out of memory for a tile");
		rc = -RFS_E_NOMEM;
	} else if (rc == -RFS_E_NOSPACE || rc == -RFS_E_STORE_IO ||
		   (rc < 0 && !rfs_err_is_rfs(rc))) {
		snprintf(msg, msglen, "cannot write the output's overviews: "
			 "%s", rfs_err_is_rfs(rc) ? rfs_strerror(rc) :
			 strerror(-rc));
		if (!rfs_err_is_rfs(rc))
			rc = -RFS_E_STORE_IO;
	}
	free(tile);
	free(buf);
	return rc;
}

/* The sample (lazy.h) through read(arg, band, win, buf): the window's
 * values of band (0-based) in the layout's type. */
static int sample(const struct rfs_tiff_layout *l,
		  int (*read)(void *arg, int band, const struct rfs_win *win,
			      void *buf, char *msg, size_t msglen),
		  void *arg, struct rfs_tiff_stats *st, char *msg,
		  size_t msglen)
{
	const int n = RFS_LAZY_SAMPLE_N * RFS_LAZY_SAMPLE_N;
	const size_t cells = (size_t)RFS_LAZY_SAMPLE_W * RFS_LAZY_SAMPLE_H;
	unsigned char *buf = malloc(cells * (size_t)l->sample_bytes);
	double *v = malloc(cells * sizeof(double));
	int rc = 0;

	if (!buf || !v) {
		snprintf(msg, msglen, "out of memory for the sample");
		rc = -RFS_E_NOMEM;
		goto out;
	}
	for (int b = 0; b < l->bands; b++) {
		struct rfs_lazy_acc a;

		rfs_lazy_acc_init(&a);
		for (int i = 0; i < n; i++) {
			struct rfs_win win;

			rfs_lazy_sample_win(l->level[0].width,
					    l->level[0].height, i, &win.x,
					    &win.y, &win.w, &win.h);
			if ((rc = read(arg, b, &win, buf, msg, msglen)) < 0)
				goto out;
			GDALCopyWords(buf, l->type, l->sample_bytes, v,
				      GDT_Float64, sizeof(double),
				      win.w * win.h);
			rfs_lazy_acc_add(&a, v, (size_t)win.w * win.h,
					 l->has_nodata, l->nodata);
		}
		rfs_lazy_acc_finish(&a, &st[b]);
	}
out:
	free(v);
	free(buf);
	return rc;
}

struct win_reader {
	struct rfs_window *w;
	unsigned char *all;   /* every band of one window */
	size_t cap;
	struct rfs_win last;  /* what all holds; w 0: nothing */
	int sb;
};

/* One window of the engine gives every band; the last one is kept.
 * sample() walks band by band, so an output of several bands computes
 * each window once per band: 16 windows of 64 x 64, cheap next to keeping
 * them all. */
static int read_engine(void *arg, int band, const struct rfs_win *win,
		       void *buf, char *msg, size_t msglen)
{
	struct win_reader *r = arg;
	size_t len = rfs_window_bytes(r->w, win);
	int rc;

	if (len > r->cap) {
		unsigned char *p = realloc(r->all, len);
		if (!p) {
			snprintf(msg, msglen, "out of memory for the sample");
			return -RFS_E_NOMEM;
		}
		r->all = p;
		r->cap = len;
	}
	if (r->last.w == 0 || memcmp(&r->last, win, sizeof(*win))) {
		if ((rc = rfs_window_read(r->w, win, r->all, len, msg,
					  msglen)) < 0)
			return rc;
		r->last = *win;
	}
	memcpy(buf, r->all + (size_t)band * win->w * win->h * r->sb,
	       (size_t)win->w * win->h * r->sb);
	return 0;
}

/* Note 3: every window of the sample computed first, in threads. */
struct pre_reader {
	struct rfs_win win[RFS_LAZY_SAMPLE_N * RFS_LAZY_SAMPLE_N];
	void *buf[RFS_LAZY_SAMPLE_N * RFS_LAZY_SAMPLE_N];
	int n, sb;
};

static int read_pre(void *arg, int band, const struct rfs_win *win,
		    void *buf, char *msg, size_t msglen)
{
	struct pre_reader *r = arg;

	/* the first equal window: a small image's windows may coincide */
	for (int i = 0; i < r->n; i++)
		if (!memcmp(&r->win[i], win, sizeof(*win))) {
			memcpy(buf, (unsigned char *)r->buf[i] +
			       (size_t)band * win->w * win->h * r->sb,
			       (size_t)win->w * win->h * r->sb);
			return 0;
		}
	snprintf(msg, msglen, "a window of the sample was not computed");
	return -RFS_E_INTERNAL;
}

/* Note 3: 0 (done), 1 (the windows would take more than RFS_LAZY_PRE_MAX
 * bytes, or one core: read them one by one instead), or a negative
 * code. */
#define RFS_LAZY_PRE_MAX (64u << 20)
static int stats_threads(struct rfs_window *w, const char *source,
			 const struct rfs_tiff_layout *l,
			 struct rfs_tiff_stats *st, char *msg, size_t msglen)
{
	struct pre_reader r = { .n = RFS_LAZY_SAMPLE_N * RFS_LAZY_SAMPLE_N,
				.sb = l->sample_bytes };
	long cores = sysconf(_SC_NPROCESSORS_ONLN);
	size_t total = 0;
	int rc = 0;

	for (int i = 0; i < r.n; i++) {
		rfs_lazy_sample_win(l->level[0].width, l->level[0].height, i,
				    &r.win[i].x, &r.win[i].y, &r.win[i].w,
				    &r.win[i].h);
		total += rfs_window_bytes(w, &r.win[i]);
	}
	if (total > RFS_LAZY_PRE_MAX || cores < 2)
		return 1;
	for (int i = 0; i < r.n && rc == 0; i++)
		if (!(r.buf[i] = malloc(rfs_window_bytes(w, &r.win[i])))) {
			snprintf(msg, msglen, "out of memory for the sample");
			rc = -RFS_E_NOMEM;
		}
	if (rc == 0)
		rc = rfs_window_read_many(w, source, (int)cores, r.win, r.buf,
					  r.n, msg, msglen);
	if (rc == 0)
		rc = sample(l, read_pre, &r, st, msg, msglen);
	for (int i = 0; i < r.n; i++)
		free(r.buf[i]);
	return rc;
}

int rfs_lazy_work_stats(const char *source, const struct rfs_chain *chain,
			const struct rfs_tiff_layout *l,
			struct rfs_window **keep, struct rfs_tiff_stats *st,
			char *msg, size_t msglen)
{
	struct win_reader r = { .sb = l->sample_bytes };
	int own = 0;
	int rc;

	if ((rc = window_of(source, chain, 0, keep, &r.w, &own, msg,
			    msglen)) < 0)
		return rc;
	if ((rc = grid_matches(r.w, l, 0, msg, msglen)) == 0 &&
	    (rc = stats_threads(r.w, source, l, st, msg, msglen)) == 1)
		rc = sample(l, read_engine, &r, st, msg, msglen);
	free(r.all);
	if (own)
		rfs_window_close(r.w);
	return rc;
}

static int read_ds(void *arg, int band, const struct rfs_win *win, void *buf,
		   char *msg, size_t msglen)
{
	GDALDatasetH ds = arg;
	GDALRasterBandH h = GDALGetRasterBand(ds, band + 1);

	CPLErrorReset();
	if (!h || GDALRasterIO(h, GF_Read, win->x, win->y, win->w, win->h,
			       buf, win->w, win->h, GDALGetRasterDataType(h),
			       0, 0) != CE_None) {
		snprintf(msg, msglen, "cannot read the sample: %s",
			 CPLGetLastErrorMsg());
		return -RFS_E_PROCESS;
	}
	return 0;
}

int rfs_lazy_work_stats_ds(GDALDatasetH ds, const struct rfs_tiff_layout *l,
			   struct rfs_tiff_stats *st, char *msg,
			   size_t msglen)
{
	for (int b = 1; b <= l->bands; b++) {
		GDALRasterBandH h = GDALGetRasterBand(ds, b);
		if (!h || GDALGetRasterDataType(h) != l->type) {
			snprintf(msg, msglen, "the output's band %d is not "
				 "of the described type", b);
			return -RFS_E_PROCESS;
		}
	}
	return sample(l, read_ds, ds, st, msg, msglen);
}

int rfs_lazy_work_put_stats(const struct rfs_tiff_stats *st, int bands,
			    const char *out_path, uint64_t *size,
			    uint64_t *checksum, char *msg, size_t msglen)
{
	size_t len = (size_t)bands * RFS_LAZY_STATS_BYTES;
	unsigned char *p = malloc(len);
	int fd = -1, rc = 0;

	if (!p) {
		snprintf(msg, msglen, "out of memory");
		return -RFS_E_NOMEM;
	}
	rfs_lazy_stats_pack(st, bands, p);
	fd = open(out_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0 || (rc = write_all(fd, p, len)) < 0 || fsync(fd) < 0)
		rc = write_err(rc < 0 ? -rc : errno, out_path, msg, msglen);
	if (fd >= 0 && close(fd) < 0 && rc == 0)
		rc = write_err(errno, out_path, msg, msglen);
	if (rc == 0) {
		*size = len;
		*checksum = XXH3_64bits(p, len);
	} else {
		unlink(out_path);
	}
	free(p);
	return rc;
}
