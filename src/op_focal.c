/* op_focal.c - focal=SIZE[,STAT][,SHAPE]: rfs_focal_band on every band.
 *
 * The output has the source's size, geotransform and CRS.  A GeoTIFF holds
 * one data type, so a source whose bands would map to different output
 * types gets the smallest type that holds them all (GDALDataTypeUnion).
 * describe applies the same rule, and the nodata rule of
 * rfs_focal_out_nodata (focal.h) to each band with a nodata value.
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>

#include <cpl_error.h>
#include <gdal.h>

#include "lex.h"
#include "ops_int.h"
#include "steps_int.h"
#include "rasterfs/chain.h"
#include "rasterfs/err.h"
#include "rasterfs/focal.h"

/* ------------------------------------------------------------------ */
/* Grammar (pure) */

static const char *const stat_names[] = {
	[RFS_FOCAL_MEAN] = "mean",
	[RFS_FOCAL_MIN] = "min",
	[RFS_FOCAL_MAX] = "max",
	[RFS_FOCAL_SUM] = "sum",
	[RFS_FOCAL_STD] = "std",
	[RFS_FOCAL_RANGE] = "range",
	[RFS_FOCAL_MEDIAN] = "median",
};

static const char *const shape_names[] = {
	[RFS_FOCAL_SQUARE] = "square",
	[RFS_FOCAL_CIRCLE] = "circle",
};

#define N_STATS ((int)(sizeof(stat_names) / sizeof(stat_names[0])))
#define N_SHAPES ((int)(sizeof(shape_names) / sizeof(shape_names[0])))
#define STATS_LIST "mean, min, max, sum, std, range, median"
#define SHAPES_LIST "square, circle"

const char *rfs_focal_stat_name(enum rfs_focal_stat s)
{
	return (unsigned)s < N_STATS ? stat_names[s] : "?";
}

const char *rfs_focal_shape_name(enum rfs_focal_shape s)
{
	return (unsigned)s < N_SHAPES ? shape_names[s] : "?";
}

/* SIZE text -> int; values too large for any window read as INT_MAX. */
static int focal_size_value(struct rfs_tok t)
{
	size_t i = 0;
	int v = 0;

	while (i < t.n && t.p[i] == '0')
		i++;
	if (t.n - i > 6)
		return 0x7fffffff;
	for (; i < t.n; i++)
		v = v * 10 + (t.p[i] - '0');
	return v;
}

static int focal_bad_size(struct rfs_pctx *c, struct rfs_tok t, int v)
{
	int lo, hi;

	if (v >= 3 && v <= RFS_FOCAL_MAX_SIZE && v % 2 == 0) {
		lo = v - 1;
		hi = v + 1 <= RFS_FOCAL_MAX_SIZE ? v + 1 : v - 1;
	} else if (v > RFS_FOCAL_MAX_SIZE) {
		lo = hi = RFS_FOCAL_MAX_SIZE;
	} else {
		lo = 3;
		hi = 5;
	}
	if (lo == hi)
		return rfs_lex_fail(c, -RFS_E_BAD_ARG,
			    "focal: SIZE must be an odd integer from 3 to %d, "
			    "got '" TOKF "' (try focal=%d)",
			    RFS_FOCAL_MAX_SIZE, TOKA(t), lo);
	return rfs_lex_fail(c, -RFS_E_BAD_ARG,
		    "focal: SIZE must be an odd integer from 3 to %d, got '"
		    TOKF "' (try focal=%d or focal=%d)",
		    RFS_FOCAL_MAX_SIZE, TOKA(t), lo, hi);
}

/* list, then " (usage)" if usage is not NULL. */
static int focal_bad_word(struct rfs_pctx *c, struct rfs_tok t,
			  const char *what, const char *const *names, int n,
			  const char *list, const char *usage)
{
	const char *s = rfs_tok_suggest(t, names, n);
	const char *open = usage ? " (" : "", *close = usage ? ")" : "";

	if (!usage)
		usage = "";
	if (s)
		return rfs_lex_fail(c, -RFS_E_BAD_ARG,
			    "focal: '" TOKF "' is not a %s; did you mean '%s'? "
			    "%s%s%s%s", TOKA(t), what, s, list, open, usage,
			    close);
	return rfs_lex_fail(c, -RFS_E_BAD_ARG,
			    "focal: '" TOKF "' is not a %s. %s%s%s%s",
			    TOKA(t), what, list, open, usage, close);
}

int rfs_focal_parse(struct rfs_pctx *c, const struct rfs_tok *args,
		    struct rfs_step *st)
{
	const struct rfs_tok argtext = *args;
	static const char *const keys[] = { "size", "stat", "shape" };
	static const char *const words[] = {
		"mean", "min", "max", "sum", "std", "range", "median",
		"square", "circle",
	};
	enum { F_SIZE, F_STAT, F_SHAPE } slot;
	struct rfs_args it = { argtext, false };
	struct rfs_arg a;
	struct rfs_tok size_tok = { "", 0 };
	bool have[3] = { false, false, false };
	static const char *const slot_name[] = { "SIZE", "statistic", "shape" };
	int i = 0, v, rc;
	double dummy;

	st->op = RFS_OP_FOCAL;
	st->u.focal.size = 0;
	st->u.focal.stat = RFS_FOCAL_MEAN;
	st->u.focal.shape = RFS_FOCAL_SQUARE;
	while (rfs_args_next(&it, &a)) {
		rc = rfs_arg_check(c, "focal", &a);
		if (rc)
			return rc;
		if (a.has_key) {
			if (rfs_tok_is(a.key, "size")) {
				slot = F_SIZE;
			} else if (rfs_tok_is(a.key, "stat")) {
				slot = F_STAT;
				i = rfs_tok_find(a.val, stat_names, N_STATS);
				if (i < 0)
					return focal_bad_word(c, a.val,
						"statistic", stat_names,
						N_STATS, "Statistics: "
						STATS_LIST, NULL);
			} else if (rfs_tok_is(a.key, "shape")) {
				slot = F_SHAPE;
				i = rfs_tok_find(a.val, shape_names, N_SHAPES);
				if (i < 0)
					return focal_bad_word(c, a.val, "shape",
						shape_names, N_SHAPES,
						"Shapes: " SHAPES_LIST, NULL);
			} else {
				return rfs_lex_unknown_option(c, "focal", &a, keys, 3,
						      "size=, stat=, shape=");
			}
		} else if ((i = rfs_tok_find(a.val, stat_names, N_STATS)) >= 0) {
			/* Numbers, statistics and shapes cannot be mistaken
			 * for one another, so positionals go in any order. */
			slot = F_STAT;
		} else if ((i = rfs_tok_find(a.val, shape_names, N_SHAPES)) >= 0) {
			slot = F_SHAPE;
		} else if (rfs_lex_number(a.val, true, &dummy) != NUM_SYNTAX) {
			slot = F_SIZE;
		} else {
			return focal_bad_word(c, a.val, "size, statistic or "
					      "shape", words, 9, "Statistics: "
					      STATS_LIST "; shapes: "
					      SHAPES_LIST,
					      STEP_USAGE(RFS_OP_FOCAL));
		}
		if (have[slot])
			return rfs_lex_twice(c, "focal", slot_name[slot], &a);
		have[slot] = true;
		switch (slot) {
		case F_SIZE:
			size_tok = a.val;
			if (!rfs_tok_digits(a.val))
				return focal_bad_size(c, a.val, 0);
			st->u.focal.size = focal_size_value(a.val);
			break;
		case F_STAT:
			st->u.focal.stat = (enum rfs_focal_stat)i;
			break;
		case F_SHAPE:
			st->u.focal.shape = (enum rfs_focal_shape)i;
			break;
		}
	}
	if (!have[F_SIZE])
		return rfs_lex_fail(c, -RFS_E_BAD_ARG,
			    "focal: a window SIZE is required: %s",
			    STEP_USAGE(RFS_OP_FOCAL));
	v = st->u.focal.size;
	if (v < 3 || v > RFS_FOCAL_MAX_SIZE || v % 2 == 0)
		return focal_bad_size(c, size_tok, v);
	if (st->u.focal.stat == RFS_FOCAL_MEDIAN && v > RFS_FOCAL_MAX_MEDIAN)
		return rfs_lex_fail(c, -RFS_E_BAD_ARG,
			    "focal: median takes windows up to %d (its cost "
			    "grows with SIZE squared), got %d (try focal=%d,"
			    "median)", RFS_FOCAL_MAX_MEDIAN, v,
			    RFS_FOCAL_MAX_MEDIAN);
	return 0;
}

void rfs_focal_write(const struct rfs_step *st, struct rfs_cbuf *cb)
{
	rfs_cb_str(cb, "focal=");
	rfs_cb_int(cb, st->u.focal.size);
	rfs_cb_str(cb, ",");
	rfs_cb_str(cb, stat_names[st->u.focal.stat]);
	rfs_cb_str(cb, ",");
	rfs_cb_str(cb, shape_names[st->u.focal.shape]);
}


/* ------------------------------------------------------------------ */
/* Engine */

/* The one type of the output (the rule above); a complex band fails. */
static int out_type(const struct rfs_step *step, const struct rfs_grid *in,
		    GDALDataType *t, char *msg, size_t msglen)
{
	for (int b = 0; b < in->nbands; b++) {
		const GDALDataType it = in->bands[b].type;

		if (GDALDataTypeIsComplex(it)) {
			snprintf(msg, msglen, "focal: band %d is complex (%s); "
				 "focal needs real values", b + 1,
				 GDALGetDataTypeName(it));
			return -RFS_E_PROCESS;
		}
		GDALDataType o = rfs_focal_out_type(it, step->u.focal.stat);
		*t = b == 0 ? o : GDALDataTypeUnion(*t, o);
	}
	return 0;
}

static int focal_describe(const struct rfs_step *step,
			  const struct rfs_grid *in, struct rfs_grid *out,
			  char *msg, size_t msglen)
{
	GDALDataType t = GDT_Unknown;
	int rc;

	rfs_grid_init(out);
	if ((rc = out_type(step, in, &t, msg, msglen)) ||
	    (rc = rfs_grid_like(in, in->nbands, t, out)))
		return rc;
	for (int b = 0; b < in->nbands; b++) {
		const struct rfs_band_info *ib = &in->bands[b];

		if (!ib->has_nodata)
			continue; /* see describe.h on NaN-only windows */
		out->bands[b].has_nodata = true;
		out->bands[b].nodata = rfs_focal_out_nodata(
			ib->type, t, step->u.focal.stat, 1, ib->nodata);
	}
	return 0;
}

/* The block of cells (x, y) of a W x H grid belongs to: the window of
 * the RFS_WINDOW_FOCAL_BLOCK-aligned blocks that w touches. */
static struct rfs_win block_aligned(const struct rfs_win *w, long long W,
				    long long H)
{
	const int G = RFS_WINDOW_FOCAL_BLOCK;
	const long long x1 = ((long long)w->x + w->w + G - 1) / G * G;
	const long long y1 = ((long long)w->y + w->h + G - 1) / G * G;
	struct rfs_win b = { w->x / G * G, w->y / G * G, 0, 0 };

	b.w = (int)((x1 < W ? x1 : W) - b.x);
	b.h = (int)((y1 < H ? y1 : H) - b.y);
	return b;
}

/* Where focal_blocks puts what it computes. */
struct focal_dst {
	GDALDatasetH ds;           /* receives the cells of win */
	int dx, dy;                /* ds's cell (0, 0) is the grid's (dx, dy) */
	struct rfs_bstats *stats;  /* per band, or NULL */
	int *nodata_set;           /* per band: rfs_focal_band declared one */
	GDALProgressFunc progress; /* or NULL */
	void *progress_arg;
};

/* The cells of win of the output (the input's grid, W x H) computed as
 * the whole output is, block by block (window.h): each block of
 * RFS_WINDOW_FOCAL_BLOCK cells from its cells and the half window around
 * them (clipped to the raster), by rfs_focal_band on an in-memory copy.
 * focal.c's sums start their blocks where its strip starts and std
 * subtracts a value of the whole strip, so a window computed on its own
 * would differ in the last bits; a block's cells depend on that block
 * only.  Values pass through Float64, exact for every output type. */
static int focal_blocks(GDALDatasetH src, const struct rfs_step *step,
			GDALDataType t, const struct rfs_win *win,
			const struct focal_dst *dst, char *msg,
			size_t msglen)
{
	const int G = RFS_WINDOW_FOCAL_BLOCK, r = step->u.focal.size / 2;
	const int W = GDALGetRasterXSize(src), H = GDALGetRasterYSize(src);
	const int nb = GDALGetRasterCount(src);
	const struct rfs_win all = block_aligned(win, W, H);
	GDALDriverH mem = GDALGetDriverByName("MEM");
	double *buf = malloc((size_t)G * G * sizeof(double));
	int rc = 0, done = 0;
	const int nblocks = ((all.w + G - 1) / G) * ((all.h + G - 1) / G);

	if (!buf) {
		snprintf(msg, msglen, "focal: no memory for a block");
		return -RFS_E_NOMEM;
	}
	for (int by = all.y; by < all.y + all.h && !rc; by += G) {
		for (int bx = all.x; bx < all.x + all.w && !rc; bx += G) {
			const struct rfs_win blk = {
				bx, by, G < W - bx ? G : W - bx,
				G < H - by ? G : H - by
			};
			const struct rfs_win halo =
				rfs_win_grow(&blk, r, r, W, H);
			/* the part of the block asked for */
			const int px0 = blk.x > win->x ? blk.x : win->x;
			const int py0 = blk.y > win->y ? blk.y : win->y;
			const int px1 = blk.x + blk.w < win->x + win->w ?
				blk.x + blk.w : win->x + win->w;
			const int py1 = blk.y + blk.h < win->y + win->h ?
				blk.y + blk.h : win->y + win->h;
			const int pw = px1 - px0, ph = py1 - py0;
			GDALDatasetH in = NULL, o = NULL;

			if ((rc = rfs_win_copy(src, &halo, &in, msg, msglen)))
				break;
			CPLErrorReset();
			o = GDALCreate(mem, "", halo.w, halo.h, nb, t, NULL);
			if (!o)
				rc = rfs_gdal_error("focal", msg, msglen);
			for (int b = 1; b <= nb && !rc; b++) {
				GDALRasterBandH ib = GDALGetRasterBand(in, b);
				GDALRasterBandH ob = GDALGetRasterBand(o, b);
				int has_in = 0, has_out = 0;
				const double nd_in =
					GDALGetRasterNoDataValue(ib, &has_in);

				rc = rfs_focal_band(ib, ob, step->u.focal.size,
						    step->u.focal.stat,
						    step->u.focal.shape, NULL,
						    NULL, NULL, msg, msglen);
				if (rc)
					break;
				(void)GDALGetRasterNoDataValue(ob, &has_out);
				if (has_out && dst->nodata_set)
					dst->nodata_set[b - 1] = 1;
				CPLErrorReset();
				if (GDALRasterIO(ob, GF_Read, px0 - halo.x,
						 py0 - halo.y, pw, ph, buf, pw,
						 ph, GDT_Float64, 0, 0) !=
				    CE_None ||
				    GDALRasterIO(GDALGetRasterBand(dst->ds, b),
						 GF_Write, px0 - dst->dx,
						 py0 - dst->dy, pw, ph, buf,
						 pw, ph, GDT_Float64, 0, 0) !=
				    CE_None) {
					rc = rfs_gdal_error("focal", msg,
							    msglen);
					break;
				}
				if (dst->stats)
					rfs_bstats_add(&dst->stats[b - 1], buf,
						       (size_t)pw * ph,
						       rfs_focal_out_nodata(
							GDALGetRasterDataType(
								ib), t,
							step->u.focal.stat,
							has_in, nd_in),
						       t == GDT_Float32);
			}
			if (o)
				GDALClose(o);
			GDALClose(in);
			done++;
			if (!rc && dst->progress &&
			    !dst->progress((double)done / nblocks, "",
					   dst->progress_arg)) {
				snprintf(msg, msglen, "focal: cancelled");
				rc = -RFS_E_CANCELLED;
			}
		}
	}
	free(buf);
	return rc;
}

/* Declare on ds's bands the nodata the whole output declares: the rule of
 * rfs_focal_out_nodata for an input band with nodata, and for one without
 * when a block declared one (a window of NaN cells only). */
static int focal_set_nodata(GDALDatasetH src, GDALDatasetH ds,
			    const struct rfs_step *step, GDALDataType t,
			    const int *nodata_set, char *msg, size_t msglen)
{
	for (int b = 1; b <= GDALGetRasterCount(src); b++) {
		GDALRasterBandH ib = GDALGetRasterBand(src, b);
		int has = 0;
		const double nd = GDALGetRasterNoDataValue(ib, &has);

		if (!has && !nodata_set[b - 1])
			continue;
		CPLErrorReset();
		if (GDALSetRasterNoDataValue(GDALGetRasterBand(ds, b),
			rfs_focal_out_nodata(GDALGetRasterDataType(ib), t,
					     step->u.focal.stat, has, nd)) !=
		    CE_None)
			return rfs_gdal_error("focal", msg, msglen);
	}
	return 0;
}

static int focal_run(GDALDatasetH src, const struct rfs_step *step,
		     const struct rfs_op_ctx *ctx, GDALDatasetH *out)
{
	const int nb = GDALGetRasterCount(src);
	const struct rfs_win all = {
		0, 0, GDALGetRasterXSize(src), GDALGetRasterYSize(src)
	};
	GDALDataType t = GDT_Unknown;
	GDALDatasetH ds = NULL;
	struct rfs_bstats *st = calloc((size_t)nb, sizeof(*st));
	int *nd_set = calloc((size_t)nb, sizeof(*nd_set));
	struct rfs_grid in;
	int rc = 0;

	if (!st || !nd_set) {
		snprintf(ctx->msg, ctx->msglen, "focal: no memory");
		rc = -RFS_E_NOMEM;
		goto out;
	}
	if ((rc = rfs_grid_from_dataset(src, &in)) < 0)
		goto out;
	rc = out_type(step, &in, &t, ctx->msg, ctx->msglen);
	rfs_grid_clear(&in);
	if (rc)
		goto out;
	rc = rfs_gdal_create_like(src, nb, t, ctx->dst_path,
				  &ds, ctx->msg, ctx->msglen);
	if (rc)
		goto out;
	for (int b = 0; b < nb; b++)
		rfs_bstats_init(&st[b]);
	const struct focal_dst dst = {
		.ds = ds, .stats = st, .nodata_set = nd_set,
		.progress = ctx->progress, .progress_arg = ctx->progress_arg,
	};
	rc = focal_blocks(src, step, t, &all, &dst, ctx->msg, ctx->msglen);
	if (rc == 0)
		rc = focal_set_nodata(src, ds, step, t, nd_set, ctx->msg,
				      ctx->msglen);
	/* The statistics of what was written, so ops.c need not read the
	 * output back (bandstats.h). */
	for (int b = 1; b <= nb && rc == 0; b++)
		rc = rfs_bstats_set(GDALGetRasterBand(ds, b), &st[b - 1],
				    (double)all.w * all.h, ctx->msg,
				    ctx->msglen);
	if (rc == 0 && ctx->stats_set)
		*ctx->stats_set = 1;
	if (rc == 0) {
		*out = ds;
		ds = NULL;
	}
out:
	if (ds)
		GDALClose(ds);
	free(st);
	free(nd_set);
	return rc;
}

/* The window: the blocks it touches and their half windows (window.h). */
static int focal_need(const struct rfs_step *step, struct rfs_win_job *job)
{
	const int r = step->u.focal.size / 2;
	const struct rfs_win b = block_aligned(&job->out_win, job->out->width,
					       job->out->height);

	job->in_win = rfs_win_grow(&b, r, r, job->in->width,
				   job->in->height);
	return 0;
}

static int focal_run_window(const struct rfs_step *step,
			    const struct rfs_win_job *job, GDALDatasetH *out)
{
	const int nb = GDALGetRasterCount(job->src);
	GDALDataType t = GDT_Unknown;
	GDALDatasetH ds = NULL;
	int *nd_set = calloc((size_t)nb, sizeof(*nd_set));
	int rc;

	if (!nd_set) {
		snprintf(job->msg, job->msglen, "focal: no memory");
		return -RFS_E_NOMEM;
	}
	if ((rc = out_type(step, job->in, &t, job->msg, job->msglen)))
		goto out;
	CPLErrorReset();
	ds = GDALCreate(GDALGetDriverByName("MEM"), "", job->out_win.w,
			job->out_win.h, nb, t, NULL);
	if (!ds) {
		rc = rfs_gdal_error("focal", job->msg, job->msglen);
		goto out;
	}
	const struct focal_dst dst = {
		.ds = ds, .dx = job->out_win.x, .dy = job->out_win.y,
		.nodata_set = nd_set,
	};
	rc = focal_blocks(job->src, step, t, &job->out_win, &dst, job->msg,
			  job->msglen);
	if (rc == 0)
		rc = focal_set_nodata(job->src, ds, step, t, nd_set, job->msg,
				      job->msglen);
	if (rc == 0) {
		*out = ds;
		ds = NULL;
	}
out:
	if (ds)
		GDALClose(ds);
	free(nd_set);
	return rc;
}

const struct rfs_step_engine rfs_focal_engine = {
	focal_describe, focal_run, focal_need, focal_run_window,
};
