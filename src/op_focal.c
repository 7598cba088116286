/* op_focal.c - focal=SIZE[,STAT][,SHAPE]: rfs_focal_band on every band.
 *
 * The output has the source's size, geotransform and CRS.  A GeoTIFF holds
 * one data type, so a source whose bands would map to different output
 * types gets the smallest type that holds them all (GDALDataTypeUnion).
 */
#include <stdio.h>

#include <cpl_error.h>
#include <gdal.h>

#include "ops_int.h"
#include "rasterfs/chain.h"
#include "rasterfs/err.h"
#include "rasterfs/focal.h"

int rfs_op_focal_run(GDALDatasetH src, const struct rfs_step *step,
		     const struct rfs_op_ctx *ctx, GDALDatasetH *out)
{
	const int nb = GDALGetRasterCount(src);
	GDALDataType t = GDT_Unknown;
	GDALDatasetH ds = NULL;
	int rc = 0;

	for (int b = 1; b <= nb; b++) {
		GDALDataType in =
			GDALGetRasterDataType(GDALGetRasterBand(src, b));
		if (GDALDataTypeIsComplex(in)) {
			snprintf(ctx->msg, ctx->msglen, "focal: band %d is "
				 "complex (%s); focal needs real values", b,
				 GDALGetDataTypeName(in));
			return -RFS_E_PROCESS;
		}
		GDALDataType o = rfs_focal_out_type(in, step->u.focal.stat);
		t = b == 1 ? o : GDALDataTypeUnion(t, o);
	}
	rc = rfs_ops_create_like(src, nb, t, ctx, &ds);
	if (rc)
		return rc;

	for (int b = 1; b <= nb && !rc; b++) {
		struct rfs_bstats st;
		void *scaled;

		rfs_bstats_init(&st);
		scaled = GDALCreateScaledProgress(
			(double)(b - 1) / nb, (double)b / nb, ctx->progress,
			ctx->progress_arg);
		rc = rfs_focal_band(GDALGetRasterBand(src, b),
				    GDALGetRasterBand(ds, b),
				    step->u.focal.size, step->u.focal.stat,
				    step->u.focal.shape, GDALScaledProgress,
				    scaled, &st, ctx->msg, ctx->msglen);
		GDALDestroyScaledProgress(scaled);
		/* The statistics of what was written, so ops.c need not read
		 * the output back (bandstats.h). */
		if (rc == 0)
			rc = rfs_bstats_set(GDALGetRasterBand(ds, b), &st,
					    (double)GDALGetRasterXSize(ds) *
					    GDALGetRasterYSize(ds),
					    ctx->msg, ctx->msglen);
	}
	if (rc == 0 && ctx->stats_set)
		*ctx->stats_set = 1;
	if (rc) {
		GDALClose(ds);
		return rc;
	}
	*out = ds;
	return 0;
}
