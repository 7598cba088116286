/* window.h - one window of a chain's output, computed alone and exactly.
 *
 * The engine a lazily computed output rests on (issue 11): the pixels of a
 * rectangle [x, x+w) x [y, y+h) of a chain's final grid, all bands, in the
 * output's type, IDENTICAL to the same rectangle of the whole output that
 * rfs_ops_run writes, however the rectangle was chosen.  Nothing is written
 * to disk: intermediates are in-memory datasets of the (grown) windows.
 *
 * How (src/window.c, design notes there): backwards through the chain, each
 * step says which window of its input it needs (its row's engine: need);
 * forwards, each step computes its window from that (run_window), which the
 * next step reads through a dataset that has the whole intermediate grid.
 * Per step family (the byte-level rule each follows, whole or windowed):
 *   - reclass, band, type, nodata, ndi: cell by cell; the same window.
 *   - terrain (gdaldem): each cell from its 3 x 3 neighbours; the window
 *     grown by one cell, so the outermost ring of the WHOLE raster stays
 *     nodata; the -s of a geographic DEM is a constant of its CRS.
 *   - focal: computed in blocks of RFS_WINDOW_FOCAL_BLOCK cells of its own
 *     grid, each from the block and its half window (focal.c's sums depend
 *     on where a strip starts); the whole output is these blocks too.
 *   - proj, res, size (GDAL's warper): GDAL's warped VRT, whose blocks
 *     (512 x 128, GDAL 3.6's default) are each warped alone with the
 *     approximate transformer fitted to that block; the whole output is
 *     `gdalwarp -of VRT` copied (docs/design.md: the oracle command lines).
 *   - clip: GDAL's own gdal_translate VRT, a window of the source.
 *
 * Overview levels (issue 11 item 3: lazy outputs' overviews, lazy.h):
 * level k >= 1 is the chain computed at resolution 2^k: the output grid
 * at level k has ceil(W / 2^k) x ceil(H / 2^k) cells of 2^k times the
 * size, the same origin; a chain whose first step warps warps the source
 * straight onto that level's grid; any other chain starts from the
 * source averaged onto its level grid (window.c note 6); every later warp
 * or clip resamples onto its level grid; focal and terrain windows count
 * level cells.  Level windows are not the averages of the base tiles.
 *
 * Worker processes and tests only (GDAL runs here).  rfs_ops_init() must
 * have been called.  One window at a time per struct rfs_window; separate
 * structs may be used from separate threads only if GDAL's own caches are
 * thread safe for the sources (they are for files).
 */
#ifndef RASTERFS_WINDOW_H
#define RASTERFS_WINDOW_H

#include <stddef.h>

#include <gdal.h>

#include "rasterfs/chain.h"
#include "rasterfs/describe.h"

/* The focal step's block, in cells of its own grid (see above).  A change
 * changes focal outputs' bytes. */
#define RFS_WINDOW_FOCAL_BLOCK 256

/* A window of a grid: columns [x, x + w), rows [y, y + h). */
struct rfs_win {
	int x, y, w, h;
};

/* An open source with a chain described on it, at one level. */
struct rfs_window;

/* Open source (a path GDAL reads) and describe chain on it at level
 * (0: full resolution; k >= 1: the level-k prototype above).  Reads
 * headers only.  Returns 0 and sets *out, or (message in msg):
 *   -RFS_E_SOURCE   GDAL cannot open source as a raster
 *   -RFS_E_BAD_ARG  chain's format is not the default GeoTIFF (fmt=cog and
 *                   fmt=png outputs are computed whole), or a level < 0 or
 *                   beyond the output's size (the level grid would have
 *                   fewer than 1 x 1 cells of the base's)
 *   -RFS_E_TOO_BIG  a step's output is beyond GDAL's int sizes
 *   -RFS_E_PROCESS  a step cannot be described (the error its run gives)
 *   -RFS_E_NOMEM */
int rfs_window_open(const char *source, const struct rfs_chain *chain,
		    int level, struct rfs_window **out, char *msg,
		    size_t msglen);

/* The output's grid at the window's level (width, height, geotransform,
 * CRS, bands, their type and nodata); owned by w. */
const struct rfs_grid *rfs_window_grid(const struct rfs_window *w);

/* Bytes of the buffer rfs_window_read fills for win: bands * w * h cells
 * of the output type; 0 for an empty window. */
size_t rfs_window_bytes(const struct rfs_window *w, const struct rfs_win *win);

/* Compute win of the output into buf (buflen >= rfs_window_bytes), band
 * after band, each row after row, the output type in host byte order.
 * Any failure GDAL reports while computing fails the call (as
 * rfs_ops_run).  Returns 0, or (message in msg):
 *   -RFS_E_BAD_ARG  win is empty or leaves the output, or buflen is short
 *   -RFS_E_PROCESS  a step failed (GDAL's first message)
 *   -RFS_E_NOMEM
 *   -RFS_E_INTERNAL a step's window did not come out as described */
int rfs_window_read(struct rfs_window *w, const struct rfs_win *win,
		    void *buf, size_t buflen, char *msg, size_t msglen);

/* Most threads rfs_window_read_many uses. */
#define RFS_WINDOW_THREADS_MAX 8

/* Compute the n windows wins[i] of w's output into bufs[i] (each
 * rfs_window_bytes long), as rfs_window_read would, with up to threads
 * threads: the calling one reads with w, each other one with a handle of
 * its own (rfs_window_open of source at w's chain and level).  The same
 * pixels as n calls of rfs_window_read, in less time when the windows are
 * independent and cores are free (the sample statistics of a lazy
 * output, lazy_work.h).  Returns 0, or the first failure as
 * rfs_window_read and rfs_window_open (message in msg); then some buffers
 * may be unfilled. */
int rfs_window_read_many(struct rfs_window *w, const char *source,
			 int threads, const struct rfs_win *wins,
			 void *const *bufs, int n, char *msg, size_t msglen);

/* Close what rfs_window_open opened.  NULL is fine. */
void rfs_window_close(struct rfs_window *w);

/* rfs_window_open at level 0, rfs_window_read, rfs_window_close: one
 * window of chain on source.  Same returns. */
int rfs_window_run(const char *source, const struct rfs_chain *chain,
		   const struct rfs_win *win, void *buf, size_t buflen,
		   char *msg, size_t msglen);

#endif
