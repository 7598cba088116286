/* op_grid.c - res, size and clip: a new grid in the same CRS.
 *
 * res=R,M and size=W,H,M are GDAL's warper with the source's CRS kept,
 * exactly `gdalwarp -tr R R -r M` and `gdalwarp -ts W H -r M` (plus the
 * -wm 64 -et 0.125 that op_proj.c spells out; both GDAL 3.6 defaults).
 * gdalwarp rather than gdal_translate -tr/-outsize: its resampling of a
 * whole output cell (average, mode, min, ...) looks at every source cell
 * the output cell covers and it respects nodata, where gdal_translate's
 * overview-style resampling does not.
 *
 * clip=MINX,MINY,MAXX,MAXY[,CRS] is `gdal_translate -projwin MINX MAXY MAXX
 * MINY [-projwin_srs CRS]` (projwin is upper-left then lower-right).  A
 * clip cuts the source's own pixels: gdal_translate snaps the window to
 * whole source pixels and never resamples, where gdalwarp -te would
 * resample onto a grid aligned with the bounds.  A window wholly outside
 * the raster (bounds in the source's CRS) fails the job with a message
 * that gives the raster's bounds: gdal_translate would make a raster of
 * nodata as large as the window.
 */
#include <stdio.h>

#include <cpl_error.h>
#include <cpl_string.h>
#include <gdal.h>
#include <gdal_utils.h>

#include "ops_int.h"
#include "rasterfs/chain.h"
#include "rasterfs/err.h"

static char **add_num(char **argv, double v)
{
	char buf[48];

	rfs_format_double(v, buf, sizeof(buf));
	return CSLAddString(argv, buf);
}

static char **add_co(char **argv)
{
	argv = CSLAddString(argv, "-of");
	argv = CSLAddString(argv, "GTiff");
	for (const char *const *co = rfs_ops_gtiff_options; *co; co++) {
		argv = CSLAddString(argv, "-co");
		argv = CSLAddString(argv, *co);
	}
	return argv;
}

int rfs_ops_translate(GDALDatasetH src, char **argv, const char *what,
		      const struct rfs_op_ctx *ctx, GDALDatasetH *out)
{
	GDALTranslateOptions *opts = NULL;
	int usage_error = 0, rc = 0;

	argv = add_co(argv);
	CPLErrorReset();
	opts = GDALTranslateOptionsNew(argv, NULL);
	if (!opts) {
		rc = rfs_ops_gdal_error(what, ctx->msg, ctx->msglen);
		goto out;
	}
	GDALTranslateOptionsSetProgress(opts, ctx->progress,
					ctx->progress_arg);
	*out = GDALTranslate(ctx->dst_path, src, opts, &usage_error);
	if (!*out)
		rc = rfs_ops_gdal_error(what, ctx->msg, ctx->msglen);
out:
	GDALTranslateOptionsFree(opts);
	CSLDestroy(argv);
	return rc;
}

/* gdal_translate makes an all-nodata raster of a window that misses the
 * raster (as large as the window: a few degrees asked of a UTM raster is
 * terabytes), which is never what a user meant; refuse it instead.  Only
 * for bounds in the source's CRS on a north-up grid; other cases are left
 * to GDAL. */
static int clip_overlaps(GDALDatasetH src, const struct rfs_step *step,
			 const struct rfs_op_ctx *ctx)
{
	double gt[6], x0, x1, y0, y1;
	char b[4][48];

	if (GDALGetGeoTransform(src, gt) != CE_None || gt[2] != 0 ||
	    gt[4] != 0)
		return 0;
	x0 = gt[0];
	x1 = gt[0] + gt[1] * GDALGetRasterXSize(src);
	y0 = gt[3] + gt[5] * GDALGetRasterYSize(src);
	y1 = gt[3];
	if (x0 > x1) {
		x1 = x0;
		x0 = gt[0] + gt[1] * GDALGetRasterXSize(src);
	}
	if (y0 > y1) {
		y1 = y0;
		y0 = gt[3];
	}
	if (step->u.clip.minx < x1 && step->u.clip.maxx > x0 &&
	    step->u.clip.miny < y1 && step->u.clip.maxy > y0)
		return 0;
	rfs_format_double(x0, b[0], sizeof(b[0]));
	rfs_format_double(y0, b[1], sizeof(b[1]));
	rfs_format_double(x1, b[2], sizeof(b[2]));
	rfs_format_double(y1, b[3], sizeof(b[3]));
	snprintf(ctx->msg, ctx->msglen, "clip: the window does not overlap "
		 "the raster, whose bounds are clip=%s,%s,%s,%s (in its own "
		 "CRS; add ,AUTHORITY:CODE for bounds in another CRS)",
		 b[0], b[1], b[2], b[3]);
	return -RFS_E_PROCESS;
}

int rfs_op_grid_run(GDALDatasetH src, const struct rfs_step *step,
		    const struct rfs_op_ctx *ctx, GDALDatasetH *out)
{
	const char *what = rfs_op_name(step->op);
	char **argv = NULL;
	GDALWarpAppOptions *opts = NULL;
	enum rfs_resampling rs;
	char num[16];
	int usage_error = 0, rc = 0;

	switch (step->op) {
	case RFS_OP_CLIP:
		if (!step->u.clip.crs[0] &&
		    (rc = clip_overlaps(src, step, ctx)) < 0)
			return rc;
		argv = CSLAddString(argv, "-projwin");
		argv = add_num(argv, step->u.clip.minx);
		argv = add_num(argv, step->u.clip.maxy);
		argv = add_num(argv, step->u.clip.maxx);
		argv = add_num(argv, step->u.clip.miny);
		if (step->u.clip.crs[0]) {
			argv = CSLAddString(argv, "-projwin_srs");
			argv = CSLAddString(argv, step->u.clip.crs);
		}
		return rfs_ops_translate(src, argv, what, ctx, out);
	case RFS_OP_RES:
		argv = CSLAddString(argv, "-tr");
		argv = add_num(argv, step->u.res.res);
		argv = add_num(argv, step->u.res.res);
		rs = step->u.res.resampling;
		break;
	case RFS_OP_SIZE:
		argv = CSLAddString(argv, "-ts");
		snprintf(num, sizeof(num), "%d", step->u.size.width);
		argv = CSLAddString(argv, num);
		snprintf(num, sizeof(num), "%d", step->u.size.height);
		argv = CSLAddString(argv, num);
		rs = step->u.size.resampling;
		break;
	default:
		snprintf(ctx->msg, ctx->msglen, "grid: not a grid step");
		return -RFS_E_INTERNAL;
	}
	argv = CSLAddString(argv, "-r");
	argv = CSLAddString(argv, rfs_resampling_name(rs));
	argv = rfs_ops_warp_options(argv);
	argv = add_co(argv);

	CPLErrorReset();
	opts = GDALWarpAppOptionsNew(argv, NULL);
	if (!opts) {
		rc = rfs_ops_gdal_error(what, ctx->msg, ctx->msglen);
		goto out;
	}
	GDALWarpAppOptionsSetProgress(opts, ctx->progress, ctx->progress_arg);
	*out = GDALWarp(ctx->dst_path, NULL, 1, &src, opts, &usage_error);
	if (!*out)
		rc = rfs_ops_gdal_error(what, ctx->msg, ctx->msglen);
out:
	GDALWarpAppOptionsFree(opts);
	CSLDestroy(argv);
	return rc;
}
