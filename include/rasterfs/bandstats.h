/* bandstats.h - exact band statistics, accumulated strip by strip.
 *
 * What every output carries as STATISTICS_MINIMUM/MAXIMUM/MEAN/STDDEV/
 * VALID_PERCENT: over the cells that are finite and not nodata.  A step
 * that writes its output from memory (focal) feeds the strips it writes,
 * which spares the job a second pass over the finished raster; otherwise
 * the finished raster is read back once (rfs_bstats_compute).  Means and variances are merged per
 * strip (Chan et al.'s pairwise update), each strip's sums taken about a
 * shift, so the figures do not drift on large rasters.
 */
#ifndef RASTERFS_BANDSTATS_H
#define RASTERFS_BANDSTATS_H

#include <stddef.h>

#include <gdal.h>

struct rfs_bstats {
	double n, min, max, mean, m2;
};

void rfs_bstats_init(struct rfs_bstats *st);

/* Add the cells v[0..n) (ndv: the nodata value, NaN for none).  With
 * as_float32, each value counts as the Float32 it is written as. */
void rfs_bstats_add(struct rfs_bstats *st, const double *v, size_t n,
		    double ndv, int as_float32);

/* Write st into band's metadata (nothing if no cell counted), each value
 * spelled so that it reads back exactly.  total: the band's cell count.
 * Returns 0, or -RFS_E_PROCESS with GDAL's message in msg. */
int rfs_bstats_set(GDALRasterBandH band, const struct rfs_bstats *st,
		   double total, char *msg, size_t msglen);

/* Compute the statistics of every band of ds by reading it back, strip by
 * strip, and write them into its metadata (rfs_bstats_set).  progress
 * (never NULL) gets the fraction of ds done; FALSE from it cancels.
 * Returns 0, -RFS_E_CANCELLED, -RFS_E_NOMEM, or a code of
 * rfs_gdal_error() with the message in msg. */
int rfs_bstats_compute(GDALDatasetH ds, GDALProgressFunc progress,
		       void *progress_arg, char *msg, size_t msglen);

#endif
