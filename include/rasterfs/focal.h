/* focal.h - focal (moving window) statistics, by hand.
 *
 * GDAL has no focal-statistics tool, so this is written here.  Mean, sum and
 * std cost O(1) per pixel for square windows: block sums in the manner of
 * van Herk / Gil-Werman, which never subtract, so each window's sum is as
 * exact as a direct sum of its cells (focal.c note 3); min, max and range
 * use van Herk / Gil-Werman itself; circles cost O(window height) per
 * pixel; median uses selection over the window.  The band is streamed in
 * row strips: memory grows with the window height times the raster width,
 * never with the raster height.
 *
 * Nodata cells (the input band's nodata value, and NaN) are left out of
 * every statistic; a window with no valid cell gives nodata; at the edges
 * the window holds only the cells that exist.
 */
#ifndef RASTERFS_FOCAL_H
#define RASTERFS_FOCAL_H

#include <stddef.h>

#include <gdal.h>

#include "rasterfs/bandstats.h"
#include "rasterfs/chain.h"

/* The data type focal writes for an input band of type `in`:
 * min and max keep the input type; sum is Float64; mean, std, range and
 * median are Float32, or Float64 for inputs wider than Float32 can hold
 * exactly (Int32, UInt32, Float64, 64-bit integers). */
GDALDataType rfs_focal_out_type(GDALDataType in, enum rfs_focal_stat stat);

/* The nodata value the output band gets (set by rfs_focal_band), given the
 * input band's type and nodata (in_has_nodata false: it has none).  Never
 * a value the statistic can produce from valid cells:
 *   min, max      the input's nodata (their results are input values);
 *   mean, median  the input's nodata when it lies outside the input type's
 *                 range of other values (Int16 -32768, -FLT_MAX ...);
 *   std, range    the input's nodata when it is negative (results are >= 0);
 *   otherwise     the output type's lowest value (-FLT_MAX, -DBL_MAX).
 * Never NaN: many readers handle a NaN nodata poorly. */
double rfs_focal_out_nodata(GDALDataType in_type, GDALDataType out_type,
			    enum rfs_focal_stat stat, int in_has_nodata,
			    double in_nodata);

/* Filter band `in` into band `out`.  If stats is not NULL, the values
 * written are added to it (rfs_bstats_init() first), so the caller can set
 * the output's statistics without reading it back. (same size; out's type as
 * rfs_focal_out_type says).  size is odd and >= 3.  progress gets the
 * fraction of this band done (scaled by the caller); FALSE from it cancels.
 * Sets out's nodata value when the input has one; an input without one
 * gives an output without one, NaN where a window held no valid cell.
 * Returns 0, -RFS_E_CANCELLED, -RFS_E_NOMEM, or -RFS_E_PROCESS (message in
 * msg) when GDAL fails to read or write. */
int rfs_focal_band(GDALRasterBandH in, GDALRasterBandH out, int size,
		   enum rfs_focal_stat stat, enum rfs_focal_shape shape,
		   GDALProgressFunc progress, void *progress_arg,
		   struct rfs_bstats *stats, char *msg, size_t msglen);

#endif
