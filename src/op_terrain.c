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
 *
 * describe: one band of the source's grid, Float32 with nodata -9999
 * (hillshade: Byte with nodata 0), as gdaldem makes it.
 */
#include <math.h>
#include <stdbool.h>
#include <stdio.h>

#include <cpl_error.h>
#include <cpl_string.h>
#include <gdal.h>
#include <gdal_utils.h>
#include <ogr_srs_api.h>

#include "lex.h"
#include "ops_int.h"
#include "steps_int.h"
#include "rasterfs/chain.h"
#include "rasterfs/err.h"

/* ------------------------------------------------------------------ */
/* Grammar (pure) */

static const char *const units[] = { "degrees", "percent" };

int rfs_slope_parse(struct rfs_pctx *c, const struct rfs_tok *args,
		    struct rfs_step *st)
{
	const struct rfs_tok argtext = *args;
	struct rfs_args it = { argtext, false };
	struct rfs_arg a;
	bool have = false;
	const char *s;
	int rc, i;

	st->op = RFS_OP_SLOPE;
	st->u.slope.percent = false;
	while (argtext.n && rfs_args_next(&it, &a)) {
		rc = rfs_arg_check(c, "slope", &a);
		if (rc)
			return rc;
		if (have)
			return rfs_lex_twice(c, "slope", "unit", &a);
		have = true;
		i = a.has_key ? -1 : rfs_tok_find(a.val, units, 2);
		if (i < 0) {
			s = a.has_key ? NULL : rfs_tok_suggest(a.val, units, 2);
			if (s)
				return rfs_lex_fail(c, -RFS_E_BAD_ARG,
					    "slope: '" TOKF "' is not a unit; "
					    "did you mean '%s'? %s",
					    TOKA(a.all), s,
					    STEP_USAGE(RFS_OP_SLOPE));
			return rfs_lex_fail(c, -RFS_E_BAD_ARG,
				    "slope: '" TOKF "' is not a unit (degrees "
				    "or percent): %s", TOKA(a.all),
				    STEP_USAGE(RFS_OP_SLOPE));
		}
		st->u.slope.percent = i == 1;
	}
	return 0;
}

void rfs_slope_write(const struct rfs_step *st, struct rfs_cbuf *cb)
{
	rfs_cb_str(cb, "slope=");
	rfs_cb_str(cb, units[st->u.slope.percent]);
}

int rfs_hillshade_parse(struct rfs_pctx *c, const struct rfs_tok *args,
			struct rfs_step *st)
{
	const struct rfs_tok argtext = *args;
	static const char *const keys[] = { "az", "alt", "z" };
	struct rfs_args it = { argtext, false };
	struct rfs_arg a;
	bool have_az = false, have_alt = false, have_z = false;
	int npos = 0, rc;
	double v;

	st->op = RFS_OP_HILLSHADE;
	st->u.hillshade.azimuth = 315;
	st->u.hillshade.altitude = 45;
	st->u.hillshade.z = 1;
	st->u.hillshade.multidirectional = false;
	while (argtext.n && rfs_args_next(&it, &a)) {
		rc = rfs_arg_check(c, "hillshade", &a);
		if (rc)
			return rc;
		if (!a.has_key && rfs_tok_is(a.val, "multidirectional")) {
			if (st->u.hillshade.multidirectional)
				return rfs_lex_twice(c, "hillshade",
					     "multidirectional", &a);
			st->u.hillshade.multidirectional = true;
			continue;
		}
		int which;	/* 0 azimuth, 1 altitude, 2 z */
		if (!a.has_key) {
			if (rfs_lex_number(a.val, false, &v) == NUM_SYNTAX) {
				const char *s = rfs_tok_suggest(a.val,
					(const char *const[]){
						"multidirectional" }, 1);
				return rfs_lex_fail(c, -RFS_E_BAD_ARG,
					    "hillshade: '" TOKF "' is neither "
					    "a number nor 'multidirectional'"
					    "%s: %s",
					    TOKA(a.val), s ? " (did you mean "
					    "'multidirectional'?)" : "",
					    STEP_USAGE(RFS_OP_HILLSHADE));
			}
			if (npos == 2)
				return rfs_lex_fail(c, -RFS_E_BAD_ARG,
					    "hillshade: at most two numbers "
					    "(AZIMUTH,ALTITUDE) come before "
					    "the options, got a third, '" TOKF
					    "': %s", TOKA(a.val),
					    STEP_USAGE(RFS_OP_HILLSHADE));
			which = npos++;
		} else if (rfs_tok_is(a.key, "az") ||
			   rfs_tok_is(a.key, "azimuth")) {
			which = 0;
		} else if (rfs_tok_is(a.key, "alt") ||
			   rfs_tok_is(a.key, "altitude")) {
			which = 1;
		} else if (rfs_tok_is(a.key, "z")) {
			which = 2;
		} else {
			return rfs_lex_unknown_option(c, "hillshade", &a, keys, 3,
					      "az=, alt=, z=");
		}
		switch (which) {
		case 0:
			if (have_az)
				return rfs_lex_twice(c, "hillshade", "azimuth", &a);
			have_az = true;
			rc = rfs_lex_step_number(c, "hillshade", "AZIMUTH", a.val, &v);
			if (rc)
				return rc;
			if (!(v >= 0 && v < 360))
				return rfs_lex_fail(c, -RFS_E_BAD_ARG,
					    "hillshade: AZIMUTH is in degrees "
					    "clockwise from north, 0 <= "
					    "AZIMUTH < 360, got '" TOKF "' (e.g. "
					    "hillshade=315,45)", TOKA(a.val));
			st->u.hillshade.azimuth = v;
			break;
		case 1:
			if (have_alt)
				return rfs_lex_twice(c, "hillshade", "altitude", &a);
			have_alt = true;
			rc = rfs_lex_step_number(c, "hillshade", "ALTITUDE", a.val, &v);
			if (rc)
				return rc;
			if (!(v >= 0 && v <= 90))
				return rfs_lex_fail(c, -RFS_E_BAD_ARG,
					    "hillshade: ALTITUDE is the sun's "
					    "height in degrees, 0 to 90, got '"
					    TOKF "' (e.g. hillshade=315,45)",
					    TOKA(a.val));
			st->u.hillshade.altitude = v;
			break;
		default:
			if (have_z)
				return rfs_lex_twice(c, "hillshade", "z", &a);
			have_z = true;
			rc = rfs_lex_step_number(c, "hillshade", "z", a.val, &v);
			if (rc)
				return rc;
			if (!(v > 0))
				return rfs_lex_fail(c, -RFS_E_BAD_ARG,
					    "hillshade: z (vertical "
					    "exaggeration) must be positive, "
					    "got '" TOKF "' (e.g. z=2)",
					    TOKA(a.val));
			st->u.hillshade.z = v;
			break;
		}
	}
	if (st->u.hillshade.multidirectional && have_az)
		return rfs_lex_fail(c, -RFS_E_BAD_ARG,
			    "hillshade: multidirectional lights from several "
			    "azimuths, so it takes no AZIMUTH (gdaldem refuses "
			    "-az with -multidirectional); give only the "
			    "altitude, e.g. hillshade=alt=45,multidirectional");
	/* unused: one canonical form, one struct */
	if (st->u.hillshade.multidirectional)
		st->u.hillshade.azimuth = 0;
	return 0;
}

void rfs_hillshade_write(const struct rfs_step *st, struct rfs_cbuf *cb)
{
	rfs_cb_str(cb, "hillshade=");
	if (st->u.hillshade.multidirectional) {
		rfs_cb_str(cb, "alt=");
	} else {
		rfs_cb_num(cb, st->u.hillshade.azimuth);
		rfs_cb_str(cb, ",");
	}
	rfs_cb_num(cb, st->u.hillshade.altitude);
	rfs_cb_str(cb, ",z=");
	rfs_cb_num(cb, st->u.hillshade.z);
	if (st->u.hillshade.multidirectional)
		rfs_cb_str(cb, ",multidirectional");
}

/* aspect, roughness, tri, tpi: no arguments; st->op is set. */
int rfs_bare_parse(struct rfs_pctx *c, const struct rfs_tok *args,
		   struct rfs_step *st)
{
	const char *name = rfs_op_name(st->op);

	if (args->n)
		return rfs_lex_fail(c, -RFS_E_BAD_ARG,
			    "%s takes no arguments, got '" TOKF "'; write "
			    "just @%s (e.g. dem.tif@%s)", name,
			    TOKA(*args), name, name);
	return 0;
}

void rfs_bare_write(const struct rfs_step *st, struct rfs_cbuf *cb)
{
	rfs_cb_str(cb, rfs_op_name(st->op));
}


/* Band descriptions (step.h): gdaldem reads band 1 only. */
int rfs_terrain_bands(const struct rfs_step *st, int out, int from[2])
{
	(void)st;
	(void)out;
	from[0] = 0;
	return 1;
}

/* ------------------------------------------------------------------ */
/* Engine */

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
	return rfs_gdal_add_num(CSLAddString(argv, opt), v);
}

static int terrain_run(GDALDatasetH src, const struct rfs_step *step,
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
	for (const char *const *co = rfs_gdal_gtiff_options; *co; co++) {
		argv = CSLAddString(argv, "-co");
		argv = CSLAddString(argv, *co);
	}

	CPLErrorReset();
	opts = GDALDEMProcessingOptionsNew(argv, NULL);
	if (!opts) {
		rc = rfs_gdal_error(what, ctx->msg, ctx->msglen);
		goto out;
	}
	GDALDEMProcessingOptionsSetProgress(opts, ctx->progress,
					    ctx->progress_arg);
	*out = GDALDEMProcessing(ctx->dst_path, src, mode, NULL, opts,
				 &usage_error);
	if (!*out)
		rc = rfs_gdal_error(what, ctx->msg, ctx->msglen);
out:
	GDALDEMProcessingOptionsFree(opts);
	CSLDestroy(argv);
	return rc;
}

static int terrain_describe(const struct rfs_step *step,
			    const struct rfs_grid *in, struct rfs_grid *out,
			    char *msg, size_t msglen)
{
	const int shade = step->op == RFS_OP_HILLSHADE;
	int rc;

	(void)msg;
	(void)msglen;
	/* gdaldem reads band 1 only */
	rc = rfs_grid_like(in, 1, shade ? GDT_Byte : GDT_Float32, out);
	if (rc)
		return rc;
	out->bands[0].has_nodata = true;
	out->bands[0].nodata = shade ? 0 : -9999;
	return 0;
}

/* Each cell from its 3 x 3 neighbours (gdaldem, checked against whole
 * runs by tests/unit/test_window.c): the window grown by one cell, whose
 * outer ring gdaldem leaves nodata, is cut away; at the raster's edges the
 * ring is the whole raster's. */
static int terrain_need(const struct rfs_step *step, struct rfs_win_job *job)
{
	(void)step;
	return rfs_win_need_same(job, 1);
}

const struct rfs_step_engine rfs_terrain_engine = {
	terrain_describe, terrain_run, terrain_need, rfs_win_by_run,
};
