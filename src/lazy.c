/* lazy.c - the arithmetic of lazy outputs: which outputs, which blocks,
 * which sample, the suffixes of their pieces' keys (lazy.h).
 *
 * Design notes:
 *  1. Grain: 512 x 512 pixels (2 x 2 tiles).  The window engine warps in
 *     GDAL's warped-VRT blocks of 512 x 128 and computes focal in blocks
 *     of 256 cells, so a 512-wide block costs whole engine blocks; a
 *     256 x 256 block would warp 512-wide strips for half their pixels.
 *     A block of one Float32 band is 1 MiB: one store object, one fsync.
 *  3. The sample's windows are 512 x 128 and start at multiples of 512
 *     columns and 128 rows: each is then exactly one block of the window
 *     engine's warps (GDAL's warped VRT, 512 x 128) and lies in two focal
 *     blocks (256 cells).  The first open of a lazy output waits for the
 *     sample, so its cost is the open's: 2 x 2 such windows cost 4 warp
 *     blocks for 262,144 pixels, where 3 x 3 windows of 128 x 128 (the
 *     format before) cost 9 warp blocks for 147,456 (measured through
 *     GDAL's VRT of a 20000² proj,bilinear on one core: 18 ms against
 *     29 ms, the first window 5-10 ms sooner); 16 windows of 64 x 64
 *     centred anywhere cost 16 to 32 blocks.
 *  2. The sample statistics are a sum over a fixed set of windows in a
 *     fixed order, so the same code (rfs_lazy_acc_*) fed by the whole
 *     computation (ops.c) or by the window engine (lazy_work.c) gives the
 *     same doubles.
 *  4. Overview blocks have the grain of the base's (512 x 512 pixels of
 *     their level): a block of level k covers 512 2^k base pixels a side,
 *     so a full view of a 20000^2 output at level 5 is 4 blocks.  Their
 *     keys spell the level apart ("#ovr=K,BX,BY") so that level 0 keeps
 *     the "#block=BX,BY" spelling and the counters can tell the two
 *     apart (pool.c counts "#block=" as lazy_blocks, "#ovr=" as
 *     lazy_ovr_blocks).
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rasterfs/lazy.h"

int rfs_lazy_large(long long width, long long height)
{
	return width > 0 && height > 0 &&
	       (uint64_t)width * (uint64_t)height > RFS_LAZY_PIXELS;
}

int rfs_lazy_is(int width, int height, int n_levels)
{
	return n_levels > 1 && rfs_lazy_large(width, height);
}

int rfs_lazy_blocks_x(int width)
{
	return (width + RFS_LAZY_BLOCK - 1) / RFS_LAZY_BLOCK;
}

int rfs_lazy_blocks_y(int height)
{
	return (height + RFS_LAZY_BLOCK - 1) / RFS_LAZY_BLOCK;
}

static void sample_1d(int side, int i, int want, int align, int *o,
		      int *len)
{
	int l = side < want ? side : want;
	/* the centre of cell i of N equal cells, in 64-bit: sides reach 2^31 */
	int64_t c = ((int64_t)(2 * i + 1) * side) / (2 * RFS_LAZY_SAMPLE_N);
	int64_t s = (c - l / 2) / align * align;

	if (s < 0)
		s = 0;
	if (s + l > side)
		s = side - l;
	*o = (int)s;
	*len = l;
}

void rfs_lazy_sample_win(int width, int height, int i, int *x, int *y,
			 int *w, int *h)
{
	sample_1d(width, i % RFS_LAZY_SAMPLE_N, RFS_LAZY_SAMPLE_W,
		  RFS_LAZY_SAMPLE_ALIGN_X, x, w);
	sample_1d(height, i / RFS_LAZY_SAMPLE_N, RFS_LAZY_SAMPLE_H,
		  RFS_LAZY_SAMPLE_ALIGN_Y, y, h);
}

int rfs_lazy_parse(const char *canonical, size_t *chain_len,
		   enum rfs_lazy_part *part, int *level, int *bx, int *by)
{
	const char *h = strchr(canonical, '#');
	char check[RFS_LAZY_SUFFIX_MAX + 1];
	int k = 0, x, y, n = -1;

	*chain_len = h ? (size_t)(h - canonical) : strlen(canonical);
	*part = RFS_LAZY_WHOLE;
	*level = *bx = *by = 0;
	if (!h)
		return 0;
	if (!strcmp(h, "#stats")) {
		*part = RFS_LAZY_PART_STATS;
		return 0;
	}
	if (!strncmp(h, "#ovr=", 5)) {
		if (sscanf(h, "#ovr=%d,%d,%d%n", &k, &x, &y, &n) != 3 ||
		    k < 1 || k > 30)
			return -EINVAL;
	} else if (sscanf(h, "#block=%d,%d%n", &x, &y, &n) != 2) {
		return -EINVAL;
	}
	if (n < 0 || h[n] != '\0' || x < 0 || y < 0 ||
	    rfs_lazy_suffix("", RFS_LAZY_PART_BLOCK, k, x, y, check,
			    sizeof(check)) < 0)
		return -EINVAL;
	/* one spelling per block, so one key per block */
	if (strcmp(check, h))
		return -EINVAL;
	*part = RFS_LAZY_PART_BLOCK;
	*level = k;
	*bx = x;
	*by = y;
	return 0;
}

int rfs_lazy_suffix(const char *canonical, enum rfs_lazy_part part,
		    int level, int bx, int by, char *buf, size_t len)
{
	int n;

	if (part == RFS_LAZY_PART_STATS)
		n = snprintf(buf, len, "%s#stats", canonical);
	else if (part == RFS_LAZY_PART_BLOCK && (level < 0 || level > 30))
		return -EINVAL;
	else if (part == RFS_LAZY_PART_BLOCK && level == 0)
		n = snprintf(buf, len, "%s#block=%d,%d", canonical, bx, by);
	else if (part == RFS_LAZY_PART_BLOCK)
		n = snprintf(buf, len, "%s#ovr=%d,%d,%d", canonical, level,
			     bx, by);
	else
		n = snprintf(buf, len, "%s", canonical);
	return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
}

void rfs_lazy_block_tiles(const struct rfs_tiff_layout *l, int level,
			  int bx, int by, int *tx0, int *ty0, int *ntx,
			  int *nty)
{
	const struct rfs_tiff_level *lv = &l->level[level];

	*tx0 = bx * RFS_LAZY_TILES;
	*ty0 = by * RFS_LAZY_TILES;
	*ntx = lv->tiles_x - *tx0 < RFS_LAZY_TILES ? lv->tiles_x - *tx0 :
	       RFS_LAZY_TILES;
	*nty = lv->tiles_y - *ty0 < RFS_LAZY_TILES ? lv->tiles_y - *ty0 :
	       RFS_LAZY_TILES;
}

uint64_t rfs_lazy_block_bytes(const struct rfs_tiff_layout *l, int level,
			      int bx, int by)
{
	int tx0, ty0, ntx, nty;

	rfs_lazy_block_tiles(l, level, bx, by, &tx0, &ty0, &ntx, &nty);
	return (uint64_t)ntx * (uint64_t)nty * (uint64_t)l->bands *
	       l->tile_bytes;
}

static long level_blocks(const struct rfs_tiff_layout *l, int k)
{
	return (long)rfs_lazy_blocks_x(l->level[k].width) *
	       rfs_lazy_blocks_y(l->level[k].height);
}

long rfs_lazy_nblocks(const struct rfs_tiff_layout *l)
{
	long n = 0;

	for (int k = 0; k < l->n_levels; k++)
		n += level_blocks(l, k);
	return n;
}

long rfs_lazy_block_index(const struct rfs_tiff_layout *l, int level,
			  int bx, int by)
{
	long i = 0;

	for (int k = 0; k < level; k++)
		i += level_blocks(l, k);
	return i + (long)by * rfs_lazy_blocks_x(l->level[level].width) + bx;
}

int rfs_lazy_block_at(const struct rfs_tiff_layout *l, long i, int *level,
		      int *bx, int *by)
{
	if (i < 0)
		return -ERANGE;
	for (int k = 0; k < l->n_levels; k++) {
		long n = level_blocks(l, k);
		if (i < n) {
			int bxn = rfs_lazy_blocks_x(l->level[k].width);
			*level = k;
			*bx = (int)(i % bxn);
			*by = (int)(i / bxn);
			return 0;
		}
		i -= n;
	}
	return -ERANGE;
}

int rfs_lazy_locate(const struct rfs_tiff_layout *l, uint64_t off,
		    int *level, int *bx, int *by, uint64_t *boff,
		    uint64_t *run)
{
	struct rfs_tiff_loc loc;
	int tx0, ty0, ntx, nty;

	if (rfs_tiff_tile_at(l, off, &loc) < 0)
		return -ERANGE;
	if (loc.in_header) {
		*run = l->header_size - off;
		return 1;
	}
	*level = loc.level;
	*bx = loc.tx / RFS_LAZY_TILES;
	*by = loc.ty / RFS_LAZY_TILES;
	rfs_lazy_block_tiles(l, loc.level, *bx, *by, &tx0, &ty0, &ntx, &nty);
	*boff = ((uint64_t)((loc.ty - ty0) * ntx + (loc.tx - tx0)) *
		 (uint64_t)l->bands + (uint64_t)loc.band) * l->tile_bytes +
		(off - loc.start);
	*run = loc.start + loc.len - off;
	return 0;
}

static void put_le64(unsigned char *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (unsigned char)(v >> (8 * i));
}

static uint64_t get_le64(const unsigned char *p)
{
	uint64_t v = 0;

	for (int i = 7; i >= 0; i--)
		v = v << 8 | p[i];
	return v;
}

static uint64_t dbits(double d)
{
	uint64_t v;

	memcpy(&v, &d, sizeof(v));
	return v;
}

static double bitsd(uint64_t v)
{
	double d;

	memcpy(&d, &v, sizeof(d));
	return d;
}

void rfs_lazy_stats_pack(const struct rfs_tiff_stats *st, int bands,
			 unsigned char *out)
{
	for (int b = 0; b < bands; b++, out += RFS_LAZY_STATS_BYTES) {
		put_le64(out, (uint64_t)st[b].state);
		put_le64(out + 8, dbits(st[b].min));
		put_le64(out + 16, dbits(st[b].max));
		put_le64(out + 24, dbits(st[b].mean));
		put_le64(out + 32, dbits(st[b].stddev));
		put_le64(out + 40, dbits(st[b].valid_percent));
	}
}

int rfs_lazy_stats_unpack(const unsigned char *p, size_t len, int bands,
			  struct rfs_tiff_stats *st)
{
	if (bands < 1 || len != (size_t)bands * RFS_LAZY_STATS_BYTES)
		return -EINVAL;
	for (int b = 0; b < bands; b++, p += RFS_LAZY_STATS_BYTES) {
		if (get_le64(p) != RFS_TIFF_STATS_APPROX)
			return -EINVAL;
		st[b].state = RFS_TIFF_STATS_APPROX;
		st[b].min = bitsd(get_le64(p + 8));
		st[b].max = bitsd(get_le64(p + 16));
		st[b].mean = bitsd(get_le64(p + 24));
		st[b].stddev = bitsd(get_le64(p + 32));
		st[b].valid_percent = bitsd(get_le64(p + 40));
	}
	return 0;
}

void rfs_lazy_acc_init(struct rfs_lazy_acc *a)
{
	memset(a, 0, sizeof(*a));
}

void rfs_lazy_acc_add(struct rfs_lazy_acc *a, const double *v, size_t n,
		      int has_nodata, double nodata)
{
	for (size_t i = 0; i < n; i++) {
		double x = v[i];

		a->total++;
		if (isnan(x) || (has_nodata && x == nodata))
			continue;
		if (a->valid == 0 || x < a->min)
			a->min = x;
		if (a->valid == 0 || x > a->max)
			a->max = x;
		a->sum += x;
		a->sumsq += x * x;
		a->valid++;
	}
}

void rfs_lazy_acc_finish(const struct rfs_lazy_acc *a,
			 struct rfs_tiff_stats *st)
{
	memset(st, 0, sizeof(*st));
	st->state = RFS_TIFF_STATS_APPROX;
	if (a->valid == 0)
		return;
	st->min = a->min;
	st->max = a->max;
	st->mean = a->sum / (double)a->valid;
	double var = a->sumsq / (double)a->valid - st->mean * st->mean;
	st->stddev = var > 0 ? sqrt(var) : 0;
	st->valid_percent = 100.0 * (double)a->valid / (double)a->total;
}
