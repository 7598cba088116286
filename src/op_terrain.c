/* op_terrain.c - slope, aspect, hillshade, roughness, tri, tpi: GDAL's
 * GDALDEMProcessing (the library behind gdaldem), not a rewrite.
 *
 * Each step is exactly the gdaldem command with the same options:
 *     slope=degrees             gdaldem slope -alg Horn
 *     slope=percent             gdaldem slope -alg Horn -p
 *     aspect                    gdaldem aspect -alg Horn
 *     hillshade=AZ,ALT,z=Z      gdaldem hillshade -alg Horn -az AZ -alt ALT
 *                                                 -z Z
 *     hillshade=alt=ALT,z=Z,multidirectional
 *                               gdaldem hillshade -alg Horn -multidirectional
 *                                                 -alt ALT -z Z
 *     roughness                 gdaldem roughness
 *     tri                       gdaldem TRI -alg Riley
 *     tpi                       gdaldem TPI
 * always on band 1, edges left as nodata (no -compute_edges), output types
 * and nodata as gdaldem makes them (Float32 with -9999; hillshade Byte with
 * 0).  Horn and Riley are GDAL 3.6's defaults; they are written out, like
 * op_proj.c's -wm and -et, so that a cache key keeps meaning the same
 * pixels if a later GDAL changes a default.
 *
 * Scale: slope and hillshade need the horizontal units in the vertical
 * ones.  For a source whose CRS is geographic in degrees, -s 111120
 * (metres per degree of latitude, as the gdaldem manual advises) is added,
 * so dem.tif@slope of an SRTM tile equals `gdaldem slope -s 111120`; a
 * projected source gets no -s (1: metres over metres).  The other steps do
 * not use a scale.
 */
#include <math.h>
#include <stdio.h>

#include <cpl_error.h>
#include <cpl_string.h>
#include <gdal.h>
#include <gdal_utils.h>
#include <ogr_srs_api.h>

#include "ops_int.h"
#include "rasterfs/chain.h"
#include "rasterfs/err.h"

#define DEGREE_SCALE "111120"

/* True when src's CRS is geographic with degrees as its angular unit. */
static int geographic_degrees(GDALDatasetH src)
{
	OGRSpatialReferenceH srs = GDALGetSpatialRef(src);
	if (!srs || !OSRIsGeographic(srs))
		return 0;
	const double to_rad = OSRGetAngularUnits(srs, NULL);
	return fabs(to_rad - M_PI / 180) < 1e-12;
}

static char **add_num(char **argv, const char *opt, double v)
{
	char buf[48];

	rfs_format_double(v, buf, sizeof(buf));
	argv = CSLAddString(argv, opt);
	return CSLAddString(argv, buf);
}

int rfs_op_terrain_run(GDALDatasetH src, const struct rfs_step *step,
		       const struct rfs_op_ctx *ctx, GDALDatasetH *out)
{
	const char *mode = NULL, *what = rfs_op_name(step->op);
	char **argv = NULL;
	GDALDEMProcessingOptions *opts = NULL;
	int usage_error = 0, rc = 0, scaled = 0;

	switch (step->op) {
	case RFS_OP_SLOPE:
		mode = "slope";
		argv = CSLAddString(argv, "-alg");
		argv = CSLAddString(argv, "Horn");
		if (step->u.slope.percent)
			argv = CSLAddString(argv, "-p");
		scaled = 1;
		break;
	case RFS_OP_ASPECT:
		mode = "aspect";
		argv = CSLAddString(argv, "-alg");
		argv = CSLAddString(argv, "Horn");
		break;
	case RFS_OP_HILLSHADE:
		mode = "hillshade";
		argv = CSLAddString(argv, "-alg");
		argv = CSLAddString(argv, "Horn");
		if (step->u.hillshade.multidirectional)
			argv = CSLAddString(argv, "-multidirectional");
		else
			argv = add_num(argv, "-az", step->u.hillshade.azimuth);
		argv = add_num(argv, "-alt", step->u.hillshade.altitude);
		argv = add_num(argv, "-z", step->u.hillshade.z);
		scaled = 1;
		break;
	case RFS_OP_ROUGHNESS:
		mode = "roughness";
		break;
	case RFS_OP_TRI:
		mode = "TRI";
		argv = CSLAddString(argv, "-alg");
		argv = CSLAddString(argv, "Riley");
		break;
	case RFS_OP_TPI:
		mode = "TPI";
		break;
	default:
		snprintf(ctx->msg, ctx->msglen, "terrain: not a terrain step");
		return -RFS_E_INTERNAL;
	}
	if (scaled && geographic_degrees(src)) {
		argv = CSLAddString(argv, "-s");
		argv = CSLAddString(argv, DEGREE_SCALE);
	}
	argv = CSLAddString(argv, "-of");
	argv = CSLAddString(argv, "GTiff");
	for (const char *const *co = rfs_ops_gtiff_options; *co; co++) {
		argv = CSLAddString(argv, "-co");
		argv = CSLAddString(argv, *co);
	}

	CPLErrorReset();
	opts = GDALDEMProcessingOptionsNew(argv, NULL);
	if (!opts) {
		rc = rfs_ops_gdal_error(what, ctx->msg, ctx->msglen);
		goto out;
	}
	GDALDEMProcessingOptionsSetProgress(opts, ctx->progress,
					    ctx->progress_arg);
	*out = GDALDEMProcessing(ctx->dst_path, src, mode, NULL, opts,
				 &usage_error);
	if (!*out)
		rc = rfs_ops_gdal_error(what, ctx->msg, ctx->msglen);
out:
	GDALDEMProcessingOptionsFree(opts);
	CSLDestroy(argv);
	return rc;
}
