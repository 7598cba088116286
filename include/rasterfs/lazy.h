/* lazy.h - large outputs computed block by block (issue 11).
 *
 * What is lazy: a GeoTIFF output (rasterfs's own writer, tiff.h) whose
 * full-resolution image has more than RFS_LAZY_PIXELS pixels (width x
 * height) and internal overviews, levels 1, 2, ... down to the first
 * that fits in one tile: output.c asks the writer for them for a large
 * output whose chain the window engine can compute at a level (every
 * grid north-up: a north-up source, or a first step that warps); any
 * other output (a large one without georeferencing) is computed whole.  It is opened at once: its header comes
 * from its description (the store's `described` record), and its tiles
 * are computed when a read touches them, in blocks of RFS_LAZY_BLOCK x
 * RFS_LAZY_BLOCK pixels of their level (2 x 2 tiles), each by a worker
 * with the window engine (window.h), which gives the same pixels as the
 * whole computation.
 *
 * Overviews.  Level k >= 1 of a lazy output is the chain computed at
 * resolution 2^k (window.h "Overview levels": the level grid has the
 * base's origin, cells 2^k times larger, ceil(W / 2^k) x ceil(H / 2^k) of
 * them; a chain whose first step warps warps the source straight onto its
 * level grid, any other starts from the source averaged onto it), NOT the
 * averages of the base tiles (tiff.h's meaning, which outputs up to the
 * threshold would have if they had overviews).  So a zoomed-out view
 * computes the few blocks of a coarse level and no base block: what Earth
 * Engine and ArcGIS raster functions do; averages of the base would
 * compute the whole output for a full view.  The whole computation
 * (lazy=0, or a job of the whole output) writes the same overview tiles,
 * computed by the window engine a row of blocks at a time (ops.c,
 * lazy_work.c note 1), not the writer's quadtree averages.
 *
 * Statistics.  A lazy output's header carries APPROXIMATE statistics
 * (tiff.h: STATISTICS_APPROXIMATE=YES) of a fixed sample: the
 * RFS_LAZY_SAMPLE_N x RFS_LAZY_SAMPLE_N windows of RFS_LAZY_SAMPLE_W x
 * RFS_LAZY_SAMPLE_H pixels (or the whole side, if smaller) near the
 * centres of the cells of an even RFS_LAZY_SAMPLE_N x RFS_LAZY_SAMPLE_N
 * partition of the image, starting at multiples of RFS_LAZY_SAMPLE_ALIGN_X
 * and RFS_LAZY_SAMPLE_ALIGN_Y (rfs_lazy_sample_win).  The whole
 * computation of the same output writes
 * the same sample statistics, so the key's bytes are the same however it
 * was computed; smaller outputs keep exact statistics.  The threshold, the
 * sample and the overviews' meaning are part of the format
 * (RFS_FORMAT_VERSION 4; 3 had no overviews and a 3 x 3 sample of
 * 128 x 128): changing any of them changes the bytes a key names and
 * needs a version bump.
 *
 * Pieces in the store.  Each block, and the sample statistics, is an
 * ordinary store object under a key of its own: the output's canonical
 * chain followed by a suffix that no name can spell ('#' is refused by
 * the chain grammar): "#block=BX,BY" (a block of level 0),
 * "#ovr=K,BX,BY" (a block of overview level K >= 1) and "#stats".  So
 * single flight, crash-safe commits (write, fsync, rename, LMDB),
 * per-block checksums (`rasterfs cache verify`), eviction (an open fd
 * keeps its object readable) and gc treat them as they treat whole
 * outputs.
 *
 * A block object holds the block's tiles whole (edge tiles zero padded as
 * in the file, tiff.h), tile row by tile row, tile column by tile column,
 * band by band: the bytes of the file's tiles, in another order.  The
 * statistics object holds, for each band, the six numbers of struct
 * rfs_tiff_stats as 8-byte little-endian values (state as an integer,
 * then min, max, mean, stddev, valid_percent as doubles).
 *
 * Blocks are numbered across levels (rfs_lazy_block_index): level 0's
 * row by row first, then level 1's, and so on; progress counts blocks of
 * every level.
 *
 * Pure arithmetic and text: no GDAL, no I/O.  Thread safe.
 */
#ifndef RASTERFS_LAZY_H
#define RASTERFS_LAZY_H

#include <stddef.h>
#include <stdint.h>

#include "rasterfs/tiff.h"

#define RFS_LAZY_PIXELS (1ull << 25)   /* lazy above this many pixels */
#define RFS_LAZY_BLOCK 512             /* block side, pixels (2 tiles) */
#define RFS_LAZY_TILES (RFS_LAZY_BLOCK / RFS_TIFF_TILE) /* tiles a side */
#define RFS_LAZY_SAMPLE_N 2            /* sample windows per side */
#define RFS_LAZY_SAMPLE_W 512          /* sample window, pixels */
#define RFS_LAZY_SAMPLE_H 128
#define RFS_LAZY_SAMPLE_ALIGN_X 512    /* sample windows start at
					  multiples of these (lazy.c
					  note 3) */
#define RFS_LAZY_SAMPLE_ALIGN_Y 128
#define RFS_LAZY_SUFFIX_MAX 40         /* bytes of the longest suffix
					  ("#ovr=30,2147483647,2147483647") */
#define RFS_LAZY_STATS_BYTES 48        /* bytes of one band's statistics */

/* Is an output of width x height pixels over the threshold (then its
 * layout is asked for internal overviews, and it is lazy)? */
int rfs_lazy_large(long long width, long long height);

/* Is an output of width x height pixels, with n_levels levels (1: no
 * internal overviews), lazy?  Large, with overviews. */
int rfs_lazy_is(int width, int height, int n_levels);

/* Blocks of a level of width x height pixels: ceil(side / BLOCK). */
int rfs_lazy_blocks_x(int width);
int rfs_lazy_blocks_y(int height);

/* Sample window i (0 .. RFS_LAZY_SAMPLE_N^2 - 1, row by row) of an image
 * of width x height: *x, *y, *w, *h. */
void rfs_lazy_sample_win(int width, int height, int i, int *x, int *y,
			 int *w, int *h);

/* What a canonical string asks for. */
enum rfs_lazy_part {
	RFS_LAZY_WHOLE = 0,   /* no suffix: the whole output */
	RFS_LAZY_PART_BLOCK,  /* "#block=BX,BY" (level 0), "#ovr=K,BX,BY" */
	RFS_LAZY_PART_STATS,  /* "#stats" */
};

/* Split canonical: *chain_len bytes are the chain; the part and, for a
 * block, its level, column and row (0 otherwise).  Returns 0, or -EINVAL
 * (a '#' that is not one of the suffixes above, spelled exactly as
 * rfs_lazy_suffix writes it: "#ovr=0,..." is refused, level 0 is
 * "#block="). */
int rfs_lazy_parse(const char *canonical, size_t *chain_len,
		   enum rfs_lazy_part *part, int *level, int *bx, int *by);

/* Write canonical + the suffix of part (level, bx, by: a block's) into
 * buf.  Returns 0, -EINVAL (a negative level, or one over 30), or
 * -ENAMETOOLONG when it does not fit in len. */
int rfs_lazy_suffix(const char *canonical, enum rfs_lazy_part part,
		    int level, int bx, int by, char *buf, size_t len);

/* The tiles of block (bx, by) of level (0 .. l->n_levels - 1) of l:
 * columns [*tx0, *tx0 + *ntx), rows [*ty0, *ty0 + *nty) of that level;
 * and the bytes of its object. */
void rfs_lazy_block_tiles(const struct rfs_tiff_layout *l, int level,
			  int bx, int by, int *tx0, int *ty0, int *ntx,
			  int *nty);
uint64_t rfs_lazy_block_bytes(const struct rfs_tiff_layout *l, int level,
			      int bx, int by);

/* Blocks of every level of l, and the number of block (level, bx, by)
 * among them (level 0's row by row, then level 1's ...), and back.
 * rfs_lazy_block_at returns 0, or -ERANGE for i out of range. */
long rfs_lazy_nblocks(const struct rfs_tiff_layout *l);
long rfs_lazy_block_index(const struct rfs_tiff_layout *l, int level,
			  int bx, int by);
int rfs_lazy_block_at(const struct rfs_tiff_layout *l, long i, int *level,
		      int *bx, int *by);

/* Where byte off of the file (a byte of a tile of any level) is in the
 * block objects: block (*bx, *by) of *level, byte *boff of its object,
 * and *run bytes from there are contiguous in both (to the end of the
 * tile).  Returns 0, 1 when off is in the header (*run: bytes of header
 * from off), or -ERANGE (past the end). */
int rfs_lazy_locate(const struct rfs_tiff_layout *l, uint64_t off,
		    int *level, int *bx, int *by, uint64_t *boff,
		    uint64_t *run);

/* Statistics as their object's bytes and back (bands entries, bands *
 * RFS_LAZY_STATS_BYTES bytes).  rfs_lazy_stats_unpack returns 0, or
 * -EINVAL when len is not bands * RFS_LAZY_STATS_BYTES or a state is not
 * APPROX. */
void rfs_lazy_stats_pack(const struct rfs_tiff_stats *st, int bands,
			 unsigned char *out);
int rfs_lazy_stats_unpack(const unsigned char *p, size_t len, int bands,
			  struct rfs_tiff_stats *st);

/* Accumulating the sample statistics: add every value of the sample,
 * window by window in rfs_lazy_sample_win's order, then finish.  Values
 * equal to the nodata (has_nodata) and NaNs are not valid; every value
 * counts in valid_percent's total. */
struct rfs_lazy_acc {
	double min, max, sum, sumsq;
	uint64_t valid, total;
};

void rfs_lazy_acc_init(struct rfs_lazy_acc *a);
void rfs_lazy_acc_add(struct rfs_lazy_acc *a, const double *v, size_t n,
		      int has_nodata, double nodata);
/* An APPROX rfs_tiff_stats (no valid value: min = max = mean = stddev =
 * 0, valid_percent 0). */
void rfs_lazy_acc_finish(const struct rfs_lazy_acc *a,
			 struct rfs_tiff_stats *st);

#endif
