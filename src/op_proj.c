/* op_proj.c - proj=CRS[,res=R][,RESAMPLING]: reprojection by GDAL's warper.
 *
 * The step is exactly `gdalwarp -t_srs CRS [-tr R R] -r RESAMPLING` with
 * GDAL's defaults for everything else, so with no options the grid and the
 * pixels equal those of a plain `gdalwarp -t_srs CRS`.  The two options
 * that change pixels without appearing in the name are written out:
 * -wm 64 (warp memory, MB; it sets the chunking, and the approximate
 * transformer is fitted per chunk) and -et 0.125 (error threshold, pixels).
 * Both are GDAL 3.6's defaults; spelling them here keeps a cache key
 * meaning the same bytes if a later GDAL changes its defaults.
 */
#include <stdio.h>

#include <cpl_error.h>
#include <cpl_string.h>
#include <gdal.h>
#include <gdal_utils.h>

#include "ops_int.h"
#include "rasterfs/chain.h"
#include "rasterfs/err.h"

int rfs_op_proj_run(GDALDatasetH src, const struct rfs_step *step,
		    const struct rfs_op_ctx *ctx, GDALDatasetH *out)
{
	char res[64];
	char **argv = NULL;
	GDALWarpAppOptions *opts = NULL;
	int usage_error = 0, rc = 0;

	argv = CSLAddString(argv, "-of");
	argv = CSLAddString(argv, ctx->stream ? "VRT" : "GTiff");
	argv = CSLAddString(argv, "-t_srs");
	argv = CSLAddString(argv, step->u.proj.crs);
	argv = CSLAddString(argv, "-r");
	argv = CSLAddString(argv, rfs_resampling_name(step->u.proj.resampling));
	argv = rfs_ops_warp_options(argv);
	if (step->u.proj.res != 0) {
		if (rfs_format_double(step->u.proj.res, res, sizeof(res)) < 0) {
			snprintf(ctx->msg, ctx->msglen, "proj: bad res");
			rc = -RFS_E_PROCESS;
			goto out;
		}
		argv = CSLAddString(argv, "-tr");
		argv = CSLAddString(argv, res);
		argv = CSLAddString(argv, res);
	}
	for (const char *const *co = rfs_ops_gtiff_options;
	     !ctx->stream && *co; co++) {
		argv = CSLAddString(argv, "-co");
		argv = CSLAddString(argv, *co);
	}

	CPLErrorReset();
	opts = GDALWarpAppOptionsNew(argv, NULL);
	if (!opts) {
		rc = rfs_ops_gdal_error("proj: bad warp options", ctx->msg,
					ctx->msglen);
		goto out;
	}
	GDALWarpAppOptionsSetProgress(opts, ctx->progress, ctx->progress_arg);
	/* streamed: an in-memory warped VRT that holds src (which outlives
	 * it, see ops.c); each block is warped when the next step reads it */
	*out = GDALWarp(ctx->stream ? "" : ctx->dst_path, NULL, 1, &src, opts,
			&usage_error);
	if (!*out)
		rc = rfs_ops_gdal_error("proj", ctx->msg, ctx->msglen);
out:
	GDALWarpAppOptionsFree(opts);
	CSLDestroy(argv);
	return rc;
}
