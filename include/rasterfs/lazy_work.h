/* lazy_work.h - computing the pieces of a lazy output (lazy.h) in a
 * worker process: a block with the window engine, the sample statistics
 * with the window engine or from a whole computation's dataset.
 *
 * Worker processes and tests only (GDAL runs here); rfs_ops_init() must
 * have been called.
 */
#ifndef RASTERFS_LAZY_WORK_H
#define RASTERFS_LAZY_WORK_H

#include <stddef.h>
#include <stdint.h>

#include <gdal.h>

#include "rasterfs/chain.h"
#include "rasterfs/tiff.h"
#include "rasterfs/window.h"

/* keep (both functions below): NULL, or where the caller keeps a window
 * handle (window.h) of chain on source at level 0 (only a piece of level
 * 0 uses it) between the pieces of one output: *keep NULL, the function
 * opens one and leaves it there (the caller closes it, rfs_window_close);
 * else it reads with *keep, which must be of the same source and chain.
 * The bytes are the same (window.c note 8); a kept handle saves its open
 * and its warps' VRTs (worker.c note on kept handles).
 *
 * Write block (bx, by) of level (0: full resolution; k >= 1: overview k,
 * the chain computed at resolution 2^k: lazy.h) of the lazy output of
 * chain on source, whose layout is l, as its object (lazy.h) into
 * out_path (created or truncated), fsync'ed; *size and *checksum (XXH3-64)
 * get its bytes'.  Returns 0, or (message in msg):
 *   -RFS_E_BAD_ARG   the block is not in the output
 *   -RFS_E_INTERNAL  the window engine's grid is not the layout's
 *   -RFS_E_NOSPACE   the disk is full
 *   -RFS_E_PROCESS, -RFS_E_NOMEM, -RFS_E_SOURCE: as rfs_window_read
 *   -RFS_E_STORE_IO  another write error */
int rfs_lazy_work_block(const char *source, const struct rfs_chain *chain,
			const struct rfs_tiff_layout *l, int level, int bx,
			int by, struct rfs_window **keep,
			const char *out_path, uint64_t *size,
			uint64_t *checksum, char *msg, size_t msglen);

/* Every overview tile (levels 1 .. l->n_levels - 1) of the lazy output of
 * chain on source, whose layout is l, written at its offset into fd (the
 * whole file being written: ops.c), computed block by block as
 * rfs_lazy_work_block computes them, so the bytes are the blocks'.
 * source and chain are the output's own, never a kept prefix's (an
 * overview of the steps after a prefix would be another computation).
 * Returns 0 or a code as rfs_lazy_work_block. */
int rfs_lazy_work_overviews(const char *source,
			    const struct rfs_chain *chain,
			    const struct rfs_tiff_layout *l, int fd,
			    char *msg, size_t msglen);

/* The sample statistics (lazy.h) of the output of chain on source, whose
 * layout is l, into st (l->bands entries).  Returns 0 or a code as
 * rfs_lazy_work_block. */
int rfs_lazy_work_stats(const char *source, const struct rfs_chain *chain,
			const struct rfs_tiff_layout *l,
			struct rfs_window **keep, struct rfs_tiff_stats *st,
			char *msg, size_t msglen);

/* The same statistics of ds, the whole output (its bands read in the
 * layout's type).  Returns 0, -RFS_E_PROCESS (GDAL could not read; its
 * message in msg) or -RFS_E_NOMEM. */
int rfs_lazy_work_stats_ds(GDALDatasetH ds, const struct rfs_tiff_layout *l,
			   struct rfs_tiff_stats *st, char *msg,
			   size_t msglen);

/* Write the statistics object (lazy.h) of st to out_path, fsync'ed, with
 * its *size and *checksum.  Returns 0, -RFS_E_NOSPACE or -RFS_E_STORE_IO. */
int rfs_lazy_work_put_stats(const struct rfs_tiff_stats *st, int bands,
			    const char *out_path, uint64_t *size,
			    uint64_t *checksum, char *msg, size_t msglen);

#endif
