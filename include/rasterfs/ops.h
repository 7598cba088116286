/* ops.h - the operations: running a canonical chain with GDAL.
 *
 * Called only in worker processes (GDAL processing never runs in the
 * daemon).  Each step family lives in its own file (src/op_*.c); a step's
 * run is found through its row of the step table (step.h, src/steps.c).
 *
 * A chain runs left to right.  Intermediate results (nothing is streamed)
 * are written as uncompressed tiled GeoTIFFs into the worker's scratch
 * directory and removed when the chain ends; the last step writes out_path.
 *
 * The output is rasterfs's own tiled GeoTIFF (tiff.h: 256x256 tiles, no
 * compression, a layout known before any pixel) carrying the CRS,
 * geotransform and nodata that describe gives, the provenance of
 * output.h, and per band its description and exact
 * STATISTICS_MINIMUM/MAXIMUM/MEAN/STDDEV/VALID_PERCENT (so viewers never
 * try to write X.aux.xml beside it); a type that writer does not take
 * (complex, 64-bit integers) is written by GDAL's GTiff driver.  It is
 * fsynced before rfs_ops_run returns.
 * chain->format picks another output: fmt=cog (a COG with the same
 * statistics) or fmt=png (an 8-bit quicklook whose world file text is in
 * a tEXt chunk before the image data: worldfile.h).
 */
#ifndef RASTERFS_OPS_H
#define RASTERFS_OPS_H

#include <stddef.h>
#include <stdint.h>

#include <gdal.h>

#include "rasterfs/chain.h"

struct rfs_ops_result {
	uint64_t size;     /* bytes of out_path */
	uint64_t checksum; /* XXH3-64 of out_path's bytes */
};

/* Process-wide GDAL set-up for a worker: registers drivers and sets the
 * configuration every job relies on (GDAL_PAM_ENABLED=NO so nothing writes
 * .aux.xml, a fixed GDAL_CACHEMAX of cache_mb megabytes, single-threaded
 * compute). */
void rfs_ops_init(int cache_mb);

/* Start the warper's threads (GDAL's global thread pool, as many as
 * rfs_gdal_warp_options asks) with a tiny warp.  A worker calls it once it
 * is confined (a confined worker must have been single-threaded) and
 * before it caps its address space (worker_mem): GDAL 3.6 hangs a warp
 * whose pool could not start a thread (CPLJobQueue::WaitCompletion waits
 * for a job no thread runs), which a warped VRT under worker_mem=16 met. */
void rfs_ops_start_threads(void);

/* Run chain on the raster at source (an absolute path), writing out_path.
 * progress (may be NULL) is called with the fraction of the whole chain
 * done; returning FALSE cancels.  scratch_dir holds intermediates.
 *
 * Any failure GDAL reports during the job fails it (even one a call went
 * on after), and out_path's structure is checked before success
 * (filecheck.h).
 *
 * Returns 0 and fills *res, or (message in msg):
 *   -RFS_E_SOURCE     GDAL cannot open source as a raster
 *   -RFS_E_PROCESS    a step failed, or GDAL reported a failure (GDAL's
 *                     first message is in msg), or out_path is not whole
 *   -RFS_E_CANCELLED  progress returned FALSE
 *   -RFS_E_NOMEM      an allocation failed (GDAL's CPLE_OutOfMemory
 *                     anywhere in the job)
 *   -RFS_E_NOSPACE    the disk under scratch_dir is full
 * On failure out_path and every intermediate have been removed. */
int rfs_ops_run(const char *source, const struct rfs_chain *chain,
		const char *scratch_dir, const char *out_path,
		GDALProgressFunc progress, void *progress_arg,
		struct rfs_ops_result *res, char *msg, size_t msglen);

struct rfs_output;

/* rfs_ops_run with the output described already (output.h; the worker
 * describes it from the pinned source, which may not be source: a chain
 * computed from its kept prefix).  With o (may be NULL: GDAL's GTiff
 * driver, as for a GeoTIFF o has no layout for) a GeoTIFF is written by
 * rasterfs's own writer: every step's result goes to scratch, is checked
 * against o (rfs_output_check: a disagreement fails with
 * -RFS_E_INTERNAL) and is copied into o's layout with exact statistics;
 * a COG carries o's provenance and band descriptions too.  rfs_ops_run
 * itself describes chain from source, named by its file name. */
int rfs_ops_run_output(const char *source, const struct rfs_chain *chain,
		       struct rfs_output *o, const char *scratch_dir,
		       const char *out_path, GDALProgressFunc progress,
		       void *progress_arg, struct rfs_ops_result *res,
		       char *msg, size_t msglen);

/* Called (from GDAL's error handler, maybe on one of GDAL's threads) at
 * the first failure of a job that met a full disk, with a message; NULL
 * (the default): nothing is called and the job fails with RFS_E_NOSPACE
 * when GDAL returns.  A worker reports and exits here: libtiff may
 * otherwise go on retrying its directory write forever. */
void rfs_ops_set_nospace_hook(void (*fn)(const char *msg));

#endif
