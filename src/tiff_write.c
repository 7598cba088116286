/* tiff_write.c - writing a layout (tiff.h): its header, tiles one by one,
 * or a whole file from a dataset with its overviews.
 *
 * Design note (tiff.c's notes 1-4 say what is written where).
 *
 * 5. Overviews (meaning in tiff.h): the whole-file writer keeps, for each
 *    level, one pending row of (sum, count) pairs; every two rows of level
 *    k-1 make one row of level k, written at once into its tiles' rows and
 *    passed on to level k+1.  Sums, not means, go down the quadtree, so a
 *    level-k pixel is the exact block mean of the base, not a mean of
 *    rounded means (gdaladdo -r average cascades rounded means, and picks
 *    source windows with fractional ratios at odd sizes; no GDAL call gives
 *    the block mean of one tile without computing the whole level, which
 *    issue 11's lazy overview tiles need).
 */
#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cpl_conv.h>
#include <cpl_error.h>
#include <gdal.h>

#include "rasterfs/bandstats.h"
#include "rasterfs/err.h"
#include "rasterfs/tiff.h"

#define TILE RFS_TIFF_TILE
#define TILE_PIXELS ((uint64_t)TILE * TILE)

static int write_err(int err)
{
	return rfs_err_from_store_errno(err);
}

static int pwrite_all(int fd, const void *p, size_t n, uint64_t off)
{
	const char *c = p;

	while (n > 0) {
		ssize_t w = pwrite(fd, c, n, (off_t)off);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			return write_err(errno);
		}
		if (w == 0)
			return write_err(EIO);
		c += w;
		n -= (size_t)w;
		off += (uint64_t)w;
	}
	return 0;
}

/* Files are little-endian; on a big-endian host swap each sample. */
static void to_le(void *p, size_t n, int sb)
{
#if __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
	unsigned char *c = p;
	for (size_t i = 0; i < n; i++, c += sb)
		for (int j = 0; j < sb / 2; j++) {
			unsigned char t = c[j];
			c[j] = c[sb - 1 - j];
			c[sb - 1 - j] = t;
		}
#else
	(void)p;
	(void)n;
	(void)sb;
#endif
}

static const int host_le = __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__;

int rfs_tiff_write_tile(int fd, const struct rfs_tiff_layout *l, int level,
			int band, int tx, int ty, const void *pixels)
{
	uint64_t off;
	int rc = rfs_tiff_tile_offset(l, level, band, tx, ty, &off);

	if (rc)
		return rc;
	const struct rfs_tiff_level *v = &l->level[level];
	const size_t sb = (size_t)l->sample_bytes;
	const int vw = v->width - tx * TILE < TILE ? v->width - tx * TILE : TILE;
	const int vh = v->height - ty * TILE < TILE ? v->height - ty * TILE :
		       TILE;

	if (vw == TILE && vh == TILE && host_le)
		return pwrite_all(fd, pixels, (size_t)l->tile_bytes, off);
	/* an edge tile (or a big-endian host): copy, zero the outside */
	unsigned char *t = calloc(1, (size_t)l->tile_bytes);
	if (!t)
		return -ENOMEM;
	for (int r = 0; r < vh; r++)
		memcpy(t + (size_t)r * TILE * sb,
		       (const unsigned char *)pixels + (size_t)r * TILE * sb,
		       (size_t)vw * sb);
	to_le(t, TILE_PIXELS, (int)sb);
	rc = pwrite_all(fd, t, (size_t)l->tile_bytes, off);
	free(t);
	return rc;
}

int rfs_tiff_write_header(int fd, struct rfs_tiff_layout *l,
			  const struct rfs_tiff_stats *stats)
{
	const size_t chunk = 1 << 20;
	unsigned char *b = NULL;
	int rc = 0;

	for (int i = 0; stats && i < l->bands; i++) {
		rc = rfs_tiff_set_stats(l, i, &stats[i]);
		if (rc)
			return rc;
	}
	b = malloc(chunk);
	if (!b)
		return -ENOMEM;
	for (uint64_t off = 0; off < l->header_size && rc == 0; off += chunk) {
		size_t n = l->header_size - off < chunk ?
			   (size_t)(l->header_size - off) : chunk;
		rc = rfs_tiff_header_read(l, off, b, n);
		if (rc == 0)
			rc = pwrite_all(fd, b, n, off);
	}
	free(b);
	return rc;
}

/* One overview level's state while the whole file is written. */
struct pyr {
	double *sum, *hs, *val;
	uint32_t *cnt, *hc;
	unsigned char *row;   /* the emitted row in the band type, padded to
			       * whole tiles */
	int have;             /* sum/cnt hold the top row of a pair */
};

struct wctx {
	int fd;
	const struct rfs_tiff_layout *l;
	struct pyr *p;        /* [level], 1 .. n_levels - 1 */
	double fill;          /* the value of a block without valid pixels */
};

/* Pairs (s, c): a missing or empty side adds nothing, so the sums are of
 * valid values only and always in the same order. */
static inline void pair(double *s, uint32_t *c, double s2, uint32_t c2)
{
	if (c2 == 0)
		return;
	if (*c == 0) {
		*s = s2;
		*c = c2;
		return;
	}
	*s += s2;
	*c += c2;
}

static int emit_row(struct wctx *w, int lv, int band, int r)
{
	const struct rfs_tiff_level *v = &w->l->level[lv];
	struct pyr *p = &w->p[lv];
	const int sb = w->l->sample_bytes;
	int rc = 0;

	for (int i = 0; i < v->width; i++)
		p->val[i] = p->cnt[i] ? p->sum[i] / p->cnt[i] : w->fill;
	GDALCopyWords(p->val, GDT_Float64, 8, p->row, w->l->type, sb,
		      v->width);
	to_le(p->row, (size_t)v->width, sb);
	for (int tx = 0; tx < v->tiles_x && rc == 0; tx++) {
		uint64_t off;
		int n = v->width - tx * TILE < TILE ? v->width - tx * TILE : TILE;

		rc = rfs_tiff_tile_offset(w->l, lv, band, tx, r / TILE, &off);
		if (rc == 0)
			rc = pwrite_all(w->fd, p->row + (size_t)tx * TILE * sb,
					(size_t)n * (size_t)sb,
					off + (uint64_t)(r % TILE) * TILE *
					      (uint64_t)sb);
	}
	return rc;
}

/* Row r of level lv - 1 (its sums s and counts c, width pw, height ph)
 * goes into level lv; every second row, and the last, completes a row of
 * lv, which is written and passed on. */
static int feed(struct wctx *w, int lv, int band, const double *s,
		const uint32_t *c, int pw, int r, int ph)
{
	const struct rfs_tiff_level *v = &w->l->level[lv];
	struct pyr *p = &w->p[lv];
	int rc;

	for (int i = 0; i < v->width; i++) {
		p->hs[i] = s[2 * i];
		p->hc[i] = c[2 * i];
		if (2 * i + 1 < pw)
			pair(&p->hs[i], &p->hc[i], s[2 * i + 1], c[2 * i + 1]);
	}
	if (!p->have) {
		memcpy(p->sum, p->hs, (size_t)v->width * sizeof(double));
		memcpy(p->cnt, p->hc, (size_t)v->width * sizeof(uint32_t));
		p->have = 1;
	} else {
		for (int i = 0; i < v->width; i++)
			pair(&p->sum[i], &p->cnt[i], p->hs[i], p->hc[i]);
	}
	if (r % 2 == 0 && r != ph - 1)
		return 0;
	p->have = 0;
	rc = emit_row(w, lv, band, r / 2);
	if (rc == 0 && lv + 1 < w->l->n_levels)
		rc = feed(w, lv + 1, band, p->sum, p->cnt, v->width, r / 2,
			  v->height);
	return rc;
}

static void pyr_free(struct pyr *p, int n)
{
	for (int i = 0; p && i < n; i++) {
		free(p[i].sum);
		free(p[i].hs);
		free(p[i].val);
		free(p[i].cnt);
		free(p[i].hc);
		free(p[i].row);
	}
	free(p);
}

/* pyramid: 0 leaves the overview tiles to the caller (zeros here). */
static int write_ds(GDALDatasetH ds, struct rfs_tiff_layout *l,
		    const char *path, struct rfs_tiff_stats *stats_out,
		    int pyramid, GDALProgressFunc progress,
		    void *progress_arg)
{
	const struct rfs_tiff_level *base = &l->level[0];
	const int W = base->width, H = base->height;
	const size_t sb = (size_t)l->sample_bytes;
	const int levels = pyramid ? l->n_levels : 1;
	struct bstate { struct rfs_bstats st; struct pyr *p; } *bs = NULL;
	unsigned char *strip = NULL, *tile = NULL;
	double *dv = NULL, *ds_sum = NULL;
	uint32_t *ds_cnt = NULL;
	struct wctx w = { .fd = -1, .l = l };
	int rc = 0, fd = -1;

	if (GDALGetRasterXSize(ds) != W || GDALGetRasterYSize(ds) != H ||
	    GDALGetRasterCount(ds) != l->bands)
		return -EINVAL;
	bs = calloc((size_t)l->bands, sizeof(*bs));
	strip = malloc((size_t)W * TILE * sb);
	tile = malloc((size_t)l->tile_bytes);
	dv = malloc((size_t)W * sizeof(double));
	ds_sum = malloc((size_t)W * sizeof(double));
	ds_cnt = malloc((size_t)W * sizeof(uint32_t));
	if (!bs || !strip || !tile || !dv || !ds_sum || !ds_cnt) {
		rc = -ENOMEM;
		goto out;
	}
	for (int b = 0; b < l->bands; b++) {
		rfs_bstats_init(&bs[b].st);
		if (levels < 2)
			continue;
		bs[b].p = calloc((size_t)l->n_levels, sizeof(struct pyr));
		if (!bs[b].p) {
			rc = -ENOMEM;
			goto out;
		}
		for (int k = 1; k < l->n_levels; k++) {
			struct pyr *p = &bs[b].p[k];
			size_t n = (size_t)l->level[k].width;
			p->sum = malloc(n * sizeof(double));
			p->hs = malloc(n * sizeof(double));
			p->val = malloc(n * sizeof(double));
			p->cnt = malloc(n * sizeof(uint32_t));
			p->hc = malloc(n * sizeof(uint32_t));
			p->row = calloc((size_t)l->level[k].tiles_x * TILE, sb);
			if (!p->sum || !p->hs || !p->val || !p->cnt || !p->hc ||
			    !p->row) {
				rc = -ENOMEM;
				goto out;
			}
		}
	}
	w.fill = l->has_nodata ? l->nodata : NAN;

	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
	if (fd < 0 || ftruncate(fd, (off_t)l->total_size) != 0) {
		rc = write_err(errno);
		goto out;
	}
	w.fd = fd;
	for (int ty = 0; ty < base->tiles_y && rc == 0; ty++) {
		const int y0 = ty * TILE;
		const int rh = H - y0 < TILE ? H - y0 : TILE;

		for (int b = 0; b < l->bands && rc == 0; b++) {
			GDALRasterBandH band = GDALGetRasterBand(ds, b + 1);
			if (GDALRasterIO(band, GF_Read, 0, y0, W, rh, strip, W,
					 rh, l->type, 0, 0) != CE_None) {
				rc = -RFS_E_PROCESS;
				break;
			}
			for (int tx = 0; tx < base->tiles_x && rc == 0; tx++) {
				const int x0 = tx * TILE;
				const int cw = W - x0 < TILE ? W - x0 : TILE;
				memset(tile, 0, (size_t)l->tile_bytes);
				for (int r = 0; r < rh; r++)
					memcpy(tile + (size_t)r * TILE * sb,
					       strip + ((size_t)r * W + x0) * sb,
					       (size_t)cw * sb);
				rc = rfs_tiff_write_tile(fd, l, 0, b, tx, ty,
							 tile);
			}
			w.p = bs[b].p;
			for (int r = 0; r < rh && rc == 0; r++) {
				GDALCopyWords(strip + (size_t)r * W * sb,
					      l->type, (int)sb, dv, GDT_Float64,
					      8, W);
				if (stats_out)
					rfs_bstats_add(&bs[b].st, dv, (size_t)W,
						       l->has_nodata ?
						       l->nodata : NAN, 0);
				if (levels < 2)
					continue;
				for (int i = 0; i < W; i++) {
					int ok = !isnan(dv[i]) &&
						 !(l->has_nodata &&
						   dv[i] == l->nodata);
					ds_sum[i] = ok ? dv[i] : 0;
					ds_cnt[i] = (uint32_t)ok;
				}
				rc = feed(&w, 1, b, ds_sum, ds_cnt, W, y0 + r,
					  H);
			}
		}
		if (rc == 0 && progress &&
		    !progress((double)(ty + 1) / base->tiles_y, NULL,
			      progress_arg))
			rc = -RFS_E_CANCELLED;
	}
	if (rc == 0 && stats_out) {
		for (int b = 0; b < l->bands; b++) {
			const struct rfs_bstats *st = &bs[b].st;
			struct rfs_tiff_stats *o = &stats_out[b];
			memset(o, 0, sizeof(*o));
			if (st->n <= 0)
				continue;   /* no valid cell: none, as GDAL */
			/* as rfs_bstats_set: population stddev, percent to
			 * two decimals */
			o->state = RFS_TIFF_STATS_EXACT;
			o->min = st->min;
			o->max = st->max;
			o->mean = st->mean;
			o->stddev = sqrt(st->m2 / st->n);
			o->valid_percent = round(1e4 * st->n / ((double)W * H)) /
					   100;
		}
	}
	if (rc == 0)
		rc = rfs_tiff_write_header(fd, l, stats_out);
out:
	if (fd >= 0 && close(fd) != 0 && rc == 0)
		rc = write_err(errno);
	for (int b = 0; bs && b < l->bands; b++)
		pyr_free(bs[b].p, l->n_levels);
	free(bs);
	free(strip);
	free(tile);
	free(dv);
	free(ds_sum);
	free(ds_cnt);
	return rc;
}

int rfs_tiff_write_from_dataset(GDALDatasetH ds, struct rfs_tiff_layout *l,
				const char *path,
				struct rfs_tiff_stats *stats_out,
				GDALProgressFunc progress, void *progress_arg)
{
	return write_ds(ds, l, path, stats_out, 1, progress, progress_arg);
}

int rfs_tiff_write_base(GDALDatasetH ds, struct rfs_tiff_layout *l,
			const char *path, struct rfs_tiff_stats *stats_out,
			GDALProgressFunc progress, void *progress_arg)
{
	return write_ds(ds, l, path, stats_out, 0, progress, progress_arg);
}
