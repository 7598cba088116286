/* op_proj.c - proj=CRS[,res=R][,RESAMPLING]: reprojection by GDAL's warper.
 *
 * The step is exactly `gdalwarp -of VRT -t_srs CRS [-tr R R] -r RESAMPLING`
 * copied by gdal_translate (rfs_ops_warp: GDAL's warped VRT warps each of
 * its 512 x 128 blocks alone, so any window has the bytes of the whole),
 * with GDAL's defaults for everything else: the grid equals that of a plain
 * `gdalwarp -t_srs CRS`.  The options that could change pixels without
 * appearing in the name are written out: -et 0.125 (error threshold,
 * pixels; the approximate transformer is fitted per block) and -wm 64
 * (warp memory, MB; a warped VRT does not chunk, but its descriptions say
 * it).  Both are GDAL 3.6's defaults; spelling them here keeps a cache key
 * meaning the same bytes if a later GDAL changes its defaults.
 *
 * Here: the grammar (parse, canonical text; pure), describe (GDALWarp to a
 * VRT with the same arguments, describe.c), run, and the window engine's
 * need and run_window (window.h).
 */
#include <stdbool.h>
#include <string.h>

#include <cpl_string.h>
#include <gdal.h>

#include "lex.h"
#include "ops_int.h"
#include "steps_int.h"
#include "rasterfs/chain.h"
#include "rasterfs/err.h"

/* ------------------------------------------------------------------ */
/* Grammar (pure) */

int rfs_proj_parse(struct rfs_pctx *c, const struct rfs_tok *args,
		   struct rfs_step *st)
{
	static const char *const keys[] = { "crs", "res", "resampling" };
	struct rfs_args it = { *args, false };
	struct rfs_arg a;
	bool have_crs = false, have_res = false, have_rs = false;
	enum rfs_num_err ne;
	int rc;

	st->op = RFS_OP_PROJ;
	st->u.proj.res = 0;
	st->u.proj.resampling = RFS_RS_NEAR;
	while (rfs_args_next(&it, &a)) {
		rc = rfs_arg_check(c, "proj", &a);
		if (rc)
			return rc;
		if (!a.has_key) {
			/* A CRS always has a ':' or a '_' (the portable
			 * EPSG_3857), a method never: no ambiguity, so
			 * any order. */
			if (!rfs_lex_crs_like(a.val) &&
			    (have_crs || rfs_tok_is(a.val, "nearest") ||
			     rfs_lex_is_resampling(a.val))) {
				if (have_rs)
					return rfs_lex_twice(c, "proj",
						     "resampling method", &a);
				have_rs = true;
				rc = rfs_lex_resampling(c, "proj", a.val,
						      &st->u.proj.resampling);
			} else {
				if (have_crs)
					return rfs_lex_twice(c, "proj", "CRS", &a);
				have_crs = true;
				rc = rfs_lex_crs(c, "proj", a.val,
					       st->u.proj.crs);
			}
		} else if (rfs_tok_is(a.key, "crs")) {
			if (have_crs)
				return rfs_lex_twice(c, "proj", "CRS", &a);
			have_crs = true;
			rc = rfs_lex_crs(c, "proj", a.val, st->u.proj.crs);
		} else if (rfs_tok_is(a.key, "res")) {
			if (have_res)
				return rfs_lex_twice(c, "proj", "res", &a);
			have_res = true;
			ne = rfs_lex_number(a.val, false, &st->u.proj.res);
			if (ne == NUM_LONG)
				return rfs_lex_fail(c, -RFS_E_TOO_LONG,
					    "proj: res value is longer than %d "
					    "characters", NUM_MAX);
			if (ne != NUM_OK || st->u.proj.res <= 0)
				return rfs_lex_fail(c, -RFS_E_BAD_ARG,
					    "proj: res must be a positive "
					    "pixel size in the target CRS's "
					    "units, got '" TOKF "'%s%s (e.g. "
					    "res=30)",
					    TOKA(a.val), ne ? ": " : "",
					    ne ? rfs_lex_num_why(ne) : "");
		} else if (rfs_tok_is(a.key, "resampling")) {
			if (have_rs)
				return rfs_lex_twice(c, "proj", "resampling method",
					     &a);
			have_rs = true;
			rc = rfs_lex_resampling(c, "proj", a.val,
					      &st->u.proj.resampling);
		} else {
			return rfs_lex_unknown_option(c, "proj", &a, keys, 3,
					      "crs=, res=, resampling=");
		}
		if (rc)
			return rc;
	}
	if (!have_crs)
		return rfs_lex_fail(c, -RFS_E_BAD_ARG,
			    "proj: a target CRS is required: %s",
			    STEP_USAGE(RFS_OP_PROJ));
	return 0;
}

void rfs_proj_write(const struct rfs_step *st, struct rfs_cbuf *cb)
{
	rfs_cb_str(cb, "proj=");
	rfs_cb_crs(cb, st->u.proj.crs);
	/* res=0 is refused by the parser: 0 means "not given" */
	if (st->u.proj.res != 0) {
		rfs_cb_str(cb, ",res=");
		rfs_cb_num(cb, st->u.proj.res);
	}
	rfs_cb_str(cb, ",");
	rfs_cb_str(cb, rfs_lex_rs_names[st->u.proj.resampling]);
}


/* ------------------------------------------------------------------ */
/* Engine */

/* The gdalwarp arguments of run and describe, but -tr. */
static char **proj_argv(const struct rfs_step *step)
{
	char **argv = NULL;

	argv = CSLAddString(argv, "-t_srs");
	argv = CSLAddString(argv, step->u.proj.crs);
	argv = CSLAddString(argv, "-r");
	argv = CSLAddString(argv,
			    rfs_resampling_name(step->u.proj.resampling));
	return rfs_gdal_warp_options(argv);
}

static int proj_describe(const struct rfs_step *step,
			 const struct rfs_grid *in, struct rfs_grid *out,
			 char *msg, size_t msglen)
{
	return rfs_describe_warp(in, proj_argv(step), step->u.proj.res,
				 "proj", out, msg, msglen);
}

static int proj_run(GDALDatasetH src, const struct rfs_step *step,
		    const struct rfs_op_ctx *ctx, GDALDatasetH *out)
{
	return rfs_ops_warp(src, proj_argv(step), step->u.proj.res, "proj",
			    ctx, out);
}

/* proj's window (window.h): the same warp; at a level onto the level
 * grid (window.c adds -te and -ts, and then no -tr). */
static int proj_need(const struct rfs_step *step, struct rfs_win_job *job)
{
	return rfs_win_need_warp(proj_argv(step), step->u.proj.res,
				 step->u.proj.resampling, "proj", job);
}

static int proj_run_window(const struct rfs_step *step,
			   const struct rfs_win_job *job, GDALDatasetH *out)
{
	return rfs_win_warp(proj_argv(step), step->u.proj.res, "proj", job,
			    out);
}

const struct rfs_step_engine rfs_proj_engine = {
	proj_describe, proj_run, proj_need, proj_run_window,
};
