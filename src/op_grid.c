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
 *
 * Here: the grammar of the three (pure), their describe (the same GDAL
 * call to a VRT, describe.c) and run, and the GDALWarp / GDALTranslate
 * calls shared with op_proj.c and op_bands.c.
 */
#include <limits.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include <cpl_error.h>
#include <cpl_string.h>
#include <gdal.h>
#include <gdal_utils.h>

#include "lex.h"
#include "ops_int.h"
#include "steps_int.h"
#include "rasterfs/chain.h"
#include "rasterfs/err.h"

/* ------------------------------------------------------------------ */
/* Grammar (pure) */

/* res=R[,RESAMPLING] and size=W,H[,RESAMPLING] */

int rfs_res_parse(struct rfs_pctx *c, const struct rfs_tok *args,
		struct rfs_step *st)
{
	const struct rfs_tok argtext = *args;
	static const char *const keys[] = { "res", "resampling" };
	struct rfs_args it = { argtext, false };
	struct rfs_arg a;
	bool have_res = false, have_rs = false, is_rs;
	int rc;

	st->op = RFS_OP_RES;
	st->u.res.resampling = RFS_RS_NEAR;
	while (rfs_args_next(&it, &a)) {
		rc = rfs_arg_check(c, "res", &a);
		if (rc)
			return rc;
		if (a.has_key && !rfs_tok_is(a.key, "res") &&
		    !rfs_tok_is(a.key, "resampling"))
			return rfs_lex_unknown_option(c, "res", &a, keys, 2,
					      "res=, resampling=");
		/* a number is the size, any word a method */
		is_rs = a.has_key ? rfs_tok_is(a.key, "resampling") :
			rfs_lex_number(a.val, false, &st->u.res.res) ==
			NUM_SYNTAX;
		if (is_rs) {
			if (have_rs)
				return rfs_lex_twice(c, "res", "resampling method",
					     &a);
			have_rs = true;
			rc = rfs_lex_resampling(c, "res", a.val,
					      &st->u.res.resampling);
			if (rc)
				return rc;
			continue;
		}
		if (have_res)
			return rfs_lex_twice(c, "res", "pixel size", &a);
		have_res = true;
		rc = rfs_lex_step_number(c, "res", "R", a.val, &st->u.res.res);
		if (rc)
			return rc;
		if (!(st->u.res.res > 0))
			return rfs_lex_fail(c, -RFS_E_BAD_ARG,
				    "res: R must be a positive pixel size in "
				    "the source CRS's units, got '" TOKF "' "
				    "(e.g. res=30)", TOKA(a.val));
	}
	if (!have_res)
		return rfs_lex_fail(c, -RFS_E_BAD_ARG,
			    "res: a pixel size R is required: %s",
			    STEP_USAGE(RFS_OP_RES));
	return 0;
}

void rfs_res_write(const struct rfs_step *st, struct rfs_cbuf *cb)
{
	rfs_cb_str(cb, "res=");
	rfs_cb_num(cb, st->u.res.res);
	rfs_cb_str(cb, ",");
	rfs_cb_str(cb, rfs_lex_rs_names[st->u.res.resampling]);
}

int rfs_size_parse(struct rfs_pctx *c, const struct rfs_tok *args,
		 struct rfs_step *st)
{
	const struct rfs_tok argtext = *args;
	static const char *const keys[] = { "resampling" };
	struct rfs_args it = { argtext, false };
	struct rfs_arg a;
	bool have_rs = false;
	int n = 0, v, rc;

	st->op = RFS_OP_SIZE;
	st->u.size.resampling = RFS_RS_NEAR;
	while (rfs_args_next(&it, &a)) {
		rc = rfs_arg_check(c, "size", &a);
		if (rc)
			return rc;
		if (a.has_key && !rfs_tok_is(a.key, "resampling"))
			return rfs_lex_unknown_option(c, "size", &a, keys, 1,
					      "resampling=");
		/* digits are W or H: "3" or "11" is never a misspelt "q3"
		 * or "q1" (found by tests/fuzz: size=3,3 was refused) */
		if (a.has_key || (n == 2 && !rfs_tok_digits(a.val)) ||
		    (!rfs_tok_digits(a.val) &&
		     rfs_lex_is_resampling(a.val))) {
			if (have_rs)
				return rfs_lex_twice(c, "size", "resampling method",
					     &a);
			have_rs = true;
			rc = rfs_lex_resampling(c, "size", a.val,
					      &st->u.size.resampling);
			if (rc)
				return rc;
			continue;
		}
		if (n == 2)
			return rfs_lex_fail(c, -RFS_E_BAD_ARG,
				    "size: only W and H, got a third number '"
				    TOKF "': %s", TOKA(a.val),
				    STEP_USAGE(RFS_OP_SIZE));
		v = rfs_lex_int(a.val);
		if (v < 1 || v > RFS_SIZE_MAX)
			return rfs_lex_fail(c, -RFS_E_BAD_ARG,
				    "size: %s must be a whole number of pixels "
				    "from 1 to %d, got '" TOKF "': %s",
				    n ? "H" : "W", RFS_SIZE_MAX, TOKA(a.val),
				    STEP_USAGE(RFS_OP_SIZE));
		if (n++ == 0)
			st->u.size.width = v;
		else
			st->u.size.height = v;
	}
	if (n < 2)
		return rfs_lex_fail(c, -RFS_E_BAD_ARG,
			    "size: both W and H are required: %s",
			    STEP_USAGE(RFS_OP_SIZE));
	return 0;
}

void rfs_size_write(const struct rfs_step *st, struct rfs_cbuf *cb)
{
	rfs_cb_str(cb, "size=");
	rfs_cb_int(cb, st->u.size.width);
	rfs_cb_str(cb, ",");
	rfs_cb_int(cb, st->u.size.height);
	rfs_cb_str(cb, ",");
	rfs_cb_str(cb, rfs_lex_rs_names[st->u.size.resampling]);
}


/* ------------------------------------------------------------------ */
/* clip=MINX,MINY,MAXX,MAXY[,CRS] */

int rfs_clip_parse(struct rfs_pctx *c, const struct rfs_tok *args,
		 struct rfs_step *st)
{
	const struct rfs_tok argtext = *args;
	static const char *const keys[] = { "crs" };
	static const char *const what[] = { "MINX", "MINY", "MAXX", "MAXY" };
	struct rfs_args it = { argtext, false };
	struct rfs_arg a;
	double v[4];
	bool have_crs = false;
	int n = 0, rc;

	st->op = RFS_OP_CLIP;
	st->u.clip.crs[0] = '\0';
	while (rfs_args_next(&it, &a)) {
		rc = rfs_arg_check(c, "clip", &a);
		if (rc)
			return rc;
		if (a.has_key && !rfs_tok_is(a.key, "crs"))
			return rfs_lex_unknown_option(c, "clip", &a, keys, 1, "crs=");
		/* no number has a ':' or a '_'; a CRS has one */
		if (a.has_key || rfs_lex_crs_like(a.val)) {
			if (have_crs)
				return rfs_lex_twice(c, "clip", "CRS", &a);
			have_crs = true;
			rc = rfs_lex_crs(c, "clip", a.val, st->u.clip.crs);
			if (rc)
				return rc;
			continue;
		}
		if (n == 4)
			return rfs_lex_fail(c, -RFS_E_BAD_ARG,
				    "clip: a fifth value '" TOKF "' is neither "
				    "a CRS (AUTHORITY:CODE or AUTHORITY_CODE) "
				    "nor allowed: %s",
				    TOKA(a.val), STEP_USAGE(RFS_OP_CLIP));
		rc = rfs_lex_step_number(c, "clip", what[n], a.val, &v[n]);
		if (rc)
			return rc;
		n++;
	}
	if (n < 4)
		return rfs_lex_fail(c, -RFS_E_BAD_ARG,
			    "clip: four bounds are required, got %d: %s", n,
			    STEP_USAGE(RFS_OP_CLIP));
	if (!(v[0] < v[2]) || !(v[1] < v[3]))
		return rfs_lex_fail(c, -RFS_E_BAD_ARG,
			    "clip: bounds are MINX,MINY,MAXX,MAXY with MINX < "
			    "MAXX and MINY < MAXY; got %s (e.g. "
			    "clip=500000,4100000,510000,4110000)",
			    !(v[0] < v[2]) ? "MINX >= MAXX" : "MINY >= MAXY");
	st->u.clip.minx = v[0];
	st->u.clip.miny = v[1];
	st->u.clip.maxx = v[2];
	st->u.clip.maxy = v[3];
	return 0;
}

void rfs_clip_write(const struct rfs_step *st, struct rfs_cbuf *cb)
{
	rfs_cb_str(cb, "clip=");
	rfs_cb_num(cb, st->u.clip.minx);
	rfs_cb_str(cb, ",");
	rfs_cb_num(cb, st->u.clip.miny);
	rfs_cb_str(cb, ",");
	rfs_cb_num(cb, st->u.clip.maxx);
	rfs_cb_str(cb, ",");
	rfs_cb_num(cb, st->u.clip.maxy);
	if (st->u.clip.crs[0]) {
		rfs_cb_str(cb, ",");
		rfs_cb_crs(cb, st->u.clip.crs);
	}
}


/* ------------------------------------------------------------------ */
/* Engine */

static char **add_co(char **argv)
{
	argv = CSLAddString(argv, "-of");
	argv = CSLAddString(argv, "GTiff");
	for (const char *const *co = rfs_gdal_gtiff_options; *co; co++) {
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
		rc = rfs_gdal_error(what, ctx->msg, ctx->msglen);
		goto out;
	}
	GDALTranslateOptionsSetProgress(opts, ctx->progress,
					ctx->progress_arg);
	*out = GDALTranslate(ctx->dst_path, src, opts, &usage_error);
	if (!*out)
		rc = rfs_gdal_error(what, ctx->msg, ctx->msglen);
out:
	GDALTranslateOptionsFree(opts);
	CSLDestroy(argv);
	return rc;
}

/* The warp is GDAL's warped VRT, copied: `gdalwarp -of VRT` then
 * `gdal_translate` (docs/design.md, "Same bytes however computed").  A
 * warped VRT warps each of its blocks (512 x 128, GDAL 3.6's default) alone,
 * with the approximate transformer fitted to that block, so the output is
 * a function of the output grid's blocks and a window of it (window.h)
 * has the same bytes.  gdalwarp to a file warps in chunks that depend on
 * -wm and on the whole output: a chunk's transformer fit and kernel scale
 * (dfXScale) change pixels, even with the exact transformer (-et 0;
 * measured: 79060 bytes of 24.9 MB differ for UTM 10N of the SRTM tile,
 * bilinear). */
int rfs_ops_warp(GDALDatasetH src, char **argv, double tr, const char *what,
		 const struct rfs_op_ctx *ctx, GDALDatasetH *out)
{
	GDALWarpAppOptions *opts = NULL;
	GDALDatasetH vrt = NULL;
	int usage_error = 0, rc = 0;

	if (tr > 0)
		argv = rfs_gdal_add_tr(argv, tr);
	argv = CSLAddString(CSLAddString(argv, "-of"), "VRT");
	CPLErrorReset();
	opts = GDALWarpAppOptionsNew(argv, NULL);
	if (!opts) {
		rc = rfs_gdal_error(what, ctx->msg, ctx->msglen);
		goto out;
	}
	vrt = GDALWarp("", NULL, 1, &src, opts, &usage_error);
	if (!vrt) {
		rc = rfs_gdal_error(what, ctx->msg, ctx->msglen);
		goto out;
	}
	rc = rfs_ops_translate(vrt, NULL, what, ctx, out);
	/* The GeoTIFF holds one nodata, band 1's (describe.c, note 3), but
	 * the handle GDALTranslate returns still says each band's, and the
	 * next step reads it: reopen the file, which says what it holds. */
	if (rc == 0) {
		rc = rfs_gdal_close_checked(*out, what, ctx->msg, ctx->msglen);
		*out = NULL;
		CPLErrorReset();
		if (rc == 0 && !(*out = GDALOpenEx(ctx->dst_path,
						   GDAL_OF_RASTER |
						   GDAL_OF_UPDATE, NULL, NULL,
						   NULL)))
			rc = rfs_gdal_error(what, ctx->msg, ctx->msglen);
	}
out:
	if (vrt)
		GDALClose(vrt);
	GDALWarpAppOptionsFree(opts);
	CSLDestroy(argv);
	return rc;
}

/* gdal_translate makes an all-nodata raster of a window that misses the
 * raster (as large as the window: a few degrees asked of a UTM raster is
 * terabytes), which is never what a user meant; refuse it instead.  Only
 * for bounds in the source's CRS on a north-up grid; other cases are left
 * to GDAL. */
static int clip_overlaps(const struct rfs_grid *in,
			 const struct rfs_step *step, char *msg, size_t msglen)
{
	const double *gt = in->gt;
	double x0, x1, y0, y1;
	char b[4][48];

	if (!in->has_gt || gt[2] != 0 || gt[4] != 0)
		return 0;
	x0 = gt[0];
	x1 = gt[0] + gt[1] * (double)in->width;
	y0 = gt[3] + gt[5] * (double)in->height;
	y1 = gt[3];
	if (x0 > x1) {
		x1 = x0;
		x0 = gt[0] + gt[1] * (double)in->width;
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
	snprintf(msg, msglen, "clip: the window does not overlap "
		 "the raster, whose bounds are clip=%s,%s,%s,%s (in its own "
		 "CRS; add ,AUTHORITY:CODE for bounds in another CRS)",
		 b[0], b[1], b[2], b[3]);
	return -RFS_E_PROCESS;
}

/* The gdal_translate arguments of clip. */
static char **clip_argv(const struct rfs_step *step)
{
	char **argv = NULL;

	argv = CSLAddString(argv, "-projwin");
	argv = rfs_gdal_add_num(argv, step->u.clip.minx);
	argv = rfs_gdal_add_num(argv, step->u.clip.maxy);
	argv = rfs_gdal_add_num(argv, step->u.clip.maxx);
	argv = rfs_gdal_add_num(argv, step->u.clip.miny);
	if (step->u.clip.crs[0]) {
		argv = CSLAddString(argv, "-projwin_srs");
		argv = CSLAddString(argv, step->u.clip.crs);
	}
	return argv;
}

static int clip_describe(const struct rfs_step *step,
			 const struct rfs_grid *in, struct rfs_grid *out,
			 char *msg, size_t msglen)
{
	const double *gt = in->gt;
	int rc;

	rfs_grid_init(out);
	if (!step->u.clip.crs[0] &&
	    (rc = clip_overlaps(in, step, msg, msglen)) < 0)
		return rc;
	/* A window far larger than the raster (bounds in the source's CRS,
	 * north-up) gets as many pixels as it spans; past GDAL's int sizes
	 * say so here rather than ask GDAL to cast them. */
	if (!step->u.clip.crs[0] && in->has_gt && gt[2] == 0 && gt[4] == 0 &&
	    gt[1] != 0 && gt[5] != 0) {
		const double w = (step->u.clip.maxx - step->u.clip.minx) /
			fabs(gt[1]);
		const double h = (step->u.clip.maxy - step->u.clip.miny) /
			fabs(gt[5]);
		if (!(w < INT_MAX) || !(h < INT_MAX)) {
			out->width = w < 9e18 ? (long long)w : LLONG_MAX;
			out->height = h < 9e18 ? (long long)h : LLONG_MAX;
			snprintf(msg, msglen, "clip: the window would be %lld "
				 "x %lld pixels, beyond GDAL's limit of %d a "
				 "side", out->width, out->height, INT_MAX);
			return -RFS_E_TOO_BIG;
		}
	}
	return rfs_describe_translate(in, clip_argv(step), "clip", out, msg,
				      msglen);
}

static int clip_run(GDALDatasetH src, const struct rfs_step *step,
		    const struct rfs_op_ctx *ctx, GDALDatasetH *out)
{
	int rc;

	if (!step->u.clip.crs[0]) {
		struct rfs_grid in;

		/* only the header: the same check as describe's */
		if ((rc = rfs_grid_from_dataset(src, &in)) < 0)
			return rc;
		rc = clip_overlaps(&in, step, ctx->msg, ctx->msglen);
		rfs_grid_clear(&in);
		if (rc < 0)
			return rc;
	}
	return rfs_ops_translate(src, clip_argv(step), "clip", ctx, out);
}

/* clip's window: its gdal_translate VRT on the whole-grid input, which
 * reads the source cells of the window only.  At a level (job->forced) a
 * clip resamples (nearest) onto its level grid. */
static int clip_need(const struct rfs_step *step, struct rfs_win_job *job)
{
	const double *gi = job->in->gt, *go = job->out->gt;
	const struct rfs_win *ow = &job->out_win;

	(void)step;
	if (job->forced) {
		char **argv = CSLAddString(CSLAddString(NULL, "-r"), "near");
		return rfs_win_need_warp(rfs_gdal_warp_options(argv), 0,
					 RFS_RS_NEAR, "clip", job);
	}
	/* the output's cells are the input's, offset (gdal_translate snaps
	 * -projwin to whole cells); one cell of slack each side for the
	 * offset's rounding */
	if (!job->in->has_gt || !job->out->has_gt || gi[2] != 0 ||
	    gi[4] != 0 || gi[1] == 0 || gi[5] == 0) {
		job->in_win = (struct rfs_win){ 0, 0, (int)job->in->width,
						(int)job->in->height };
		return 0;
	}
	const double ox = floor((go[0] - gi[0]) / gi[1] + 0.5);
	const double oy = floor((go[3] - gi[3]) / gi[5] + 0.5);
	const double x0 = fmax(ox + ow->x - 1, 0);
	const double y0 = fmax(oy + ow->y - 1, 0);
	const double x1 = fmin(ox + ow->x + ow->w + 1, (double)job->in->width);
	const double y1 = fmin(oy + ow->y + ow->h + 1,
			       (double)job->in->height);

	if (x1 <= x0 || y1 <= y0) /* outside the raster: nodata, read none */
		job->in_win = (struct rfs_win){ 0, 0, 1, 1 };
	else
		job->in_win = (struct rfs_win){ (int)x0, (int)y0,
						(int)(x1 - x0),
						(int)(y1 - y0) };
	return 0;
}

static int clip_run_window(const struct rfs_step *step,
			   const struct rfs_win_job *job, GDALDatasetH *out)
{
	char **argv = clip_argv(step);
	GDALTranslateOptions *opts = NULL;
	GDALDatasetH v = NULL;
	int rc = 0;

	if (job->forced) {
		CSLDestroy(argv);
		argv = CSLAddString(CSLAddString(NULL, "-r"), "near");
		return rfs_win_warp(rfs_gdal_warp_options(argv), 0, "clip",
				    job, out);
	}
	argv = CSLAddString(CSLAddString(argv, "-of"), "VRT");
	CPLErrorReset();
	opts = GDALTranslateOptionsNew(argv, NULL);
	if (opts)
		v = GDALTranslate("", job->src, opts, NULL);
	if (!v)
		rc = rfs_gdal_error("clip", job->msg, job->msglen);
	else if (GDALGetRasterXSize(v) != job->out->width ||
		 GDALGetRasterYSize(v) != job->out->height) {
		snprintf(job->msg, job->msglen, "clip: %d x %d cells where "
			 "%lld x %lld were described", GDALGetRasterXSize(v),
			 GDALGetRasterYSize(v), job->out->width,
			 job->out->height);
		rc = -RFS_E_INTERNAL;
	} else {
		rc = rfs_win_copy(v, &job->out_win, out, job->msg,
				  job->msglen);
	}
	if (v)
		GDALClose(v);
	GDALTranslateOptionsFree(opts);
	CSLDestroy(argv);
	return rc;
}

const struct rfs_step_engine rfs_clip_engine = {
	clip_describe, clip_run, clip_need, clip_run_window,
};

/* The gdalwarp arguments of res (but -tr) and size. */
static char **warp_grid_argv(const struct rfs_step *step, double *tr)
{
	char **argv = NULL;
	enum rfs_resampling rs;
	char num[16];

	*tr = 0;
	if (step->op == RFS_OP_RES) {
		*tr = step->u.res.res;
		rs = step->u.res.resampling;
	} else {
		argv = CSLAddString(argv, "-ts");
		snprintf(num, sizeof(num), "%d", step->u.size.width);
		argv = CSLAddString(argv, num);
		snprintf(num, sizeof(num), "%d", step->u.size.height);
		argv = CSLAddString(argv, num);
		rs = step->u.size.resampling;
	}
	argv = CSLAddString(argv, "-r");
	argv = CSLAddString(argv, rfs_resampling_name(rs));
	return rfs_gdal_warp_options(argv);
}

static int warp_grid_describe(const struct rfs_step *step,
			      const struct rfs_grid *in, struct rfs_grid *out,
			      char *msg, size_t msglen)
{
	double tr;
	char **argv = warp_grid_argv(step, &tr);

	return rfs_describe_warp(in, argv, tr, rfs_op_name(step->op), out,
				 msg, msglen);
}

static int warp_grid_run(GDALDatasetH src, const struct rfs_step *step,
			 const struct rfs_op_ctx *ctx, GDALDatasetH *out)
{
	double tr;
	char **argv = warp_grid_argv(step, &tr);

	return rfs_ops_warp(src, argv, tr, rfs_op_name(step->op), ctx, out);
}

/* The gdalwarp arguments of res and size in a window job: those of their
 * run, but at a level (job->forced: window.c adds -te and -ts) without
 * -ts W H. */
static char **warp_grid_window_argv(const struct rfs_step *step,
				    const struct rfs_win_job *job, double *tr,
				    enum rfs_resampling *rs)
{
	*rs = step->op == RFS_OP_RES ? step->u.res.resampling :
		step->u.size.resampling;
	if (!job->forced)
		return warp_grid_argv(step, tr);
	*tr = 0;
	char **argv = CSLAddString(CSLAddString(NULL, "-r"),
				   rfs_resampling_name(*rs));
	return rfs_gdal_warp_options(argv);
}

static int warp_grid_need(const struct rfs_step *step,
			  struct rfs_win_job *job)
{
	enum rfs_resampling rs;
	double tr;
	char **argv = warp_grid_window_argv(step, job, &tr, &rs);

	return rfs_win_need_warp(argv, tr, rs, rfs_op_name(step->op), job);
}

static int warp_grid_run_window(const struct rfs_step *step,
				const struct rfs_win_job *job,
				GDALDatasetH *out)
{
	enum rfs_resampling rs;
	double tr;
	char **argv = warp_grid_window_argv(step, job, &tr, &rs);

	return rfs_win_warp(argv, tr, rfs_op_name(step->op), job, out);
}

const struct rfs_step_engine rfs_warp_grid_engine = {
	warp_grid_describe, warp_grid_run, warp_grid_need,
	warp_grid_run_window,
};
