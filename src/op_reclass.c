/* op_reclass.c - reclass=a:b:v[,a:b:v...][,other=V]: value ranges to
 * classes.
 *
 * A range may also be written a_b_v, the portable spelling (chain.h): no
 * number holds a '_', so '_' splits as ':' does, negative numbers and
 * -inf included (-inf_-5_1).  One range uses one separator.
 *
 * A value x goes to the v of the range with a <= x < b (ranges are sorted
 * and never overlap, so a binary search finds the one candidate); a value
 * in no range goes to V with other=V, else to nodata; nodata and NaN stay
 * nodata.  Streamed in blocks of rows, band after band.
 *
 * Output type and nodata (the rule): the first of Byte, Int16, UInt16,
 * Int32, Float32, Float64 that holds every v (and V) exactly and has a
 * value left for nodata.  Nodata is the type's usual one (Byte 255, Int16
 * -32768, UInt16 65535, Int32 -2147483648, Float32 -3.4028234663852886e+38,
 * Float64 -1.7976931348623157e+308); if a class uses it, the other end of
 * the type's range (Byte 0, Int16 32767, ...); if a class uses that too,
 * the nearest free value stepping inward from the usual one.  There are at
 * most RFS_CHAIN_MAX_RANGES + 1 classes, so a free value always exists.
 * The output always declares that nodata, even when no cell gets it;
 * describe says so from the classes alone.
 */
#include <float.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cpl_error.h>
#include <gdal.h>

#include "lex.h"
#include "ops_int.h"
#include "steps_int.h"
#include "rasterfs/chain.h"
#include "rasterfs/err.h"

/* ------------------------------------------------------------------ */
/* Grammar (pure) */

static void range_text(const struct rfs_range *r, char *buf, size_t len)
{
	char lo[48], hi[48], v[48];

	rfs_format_double(r->lo, lo, sizeof(lo));
	rfs_format_double(r->hi, hi, sizeof(hi));
	rfs_format_double(r->value, v, sizeof(v));
	snprintf(buf, len, "%s:%s:%s", lo, hi, v);
}

static int reclass_number(struct rfs_pctx *c, struct rfs_tok range,
			  struct rfs_tok t,
			  const char *what, bool allow_inf, double *out)
{
	enum rfs_num_err ne = rfs_lex_number(t, allow_inf, out);

	if (ne == NUM_OK)
		return 0;
	if (ne == NUM_LONG)
		return rfs_lex_fail(c, -RFS_E_TOO_LONG,
			    "reclass: a number in '" TOKF "' is longer than %d "
			    "characters", TOKA(range), NUM_MAX);
	return rfs_lex_fail(c, -RFS_E_BAD_ARG,
		    "reclass: in range '" TOKF "', %s '" TOKF "' is not "
		    "allowed: %s (%s)", TOKA(range), what, TOKA(t),
		    rfs_lex_num_why(ne),
		    allow_inf ? "a and b are numbers, inf or -inf" :
		    "v is a finite number");
}

static int parse_range(struct rfs_pctx *c, struct rfs_tok t,
		       struct rfs_range *r)
{
	struct rfs_tok a, rest, b, v, extra;
	const bool colon = memchr(t.p, ':', t.n) != NULL;
	const char sep = colon ? ':' : '_';
	char txt[160];
	int rc;

	if (colon && memchr(t.p, '_', t.n))
		return rfs_lex_fail(c, -RFS_E_BAD_ARG,
			    "reclass: range '" TOKF "' mixes ':' and '_'; "
			    "separate a, b and v with one of them (0:100:1 or "
			    "0_100_1)", TOKA(t));
	if (!rfs_tok_split(t, sep, &a, &rest) ||
	    !rfs_tok_split(rest, sep, &b, &v) ||
	    rfs_tok_split(v, sep, &v, &extra))
		return rfs_lex_fail(c, -RFS_E_BAD_ARG,
			    "reclass: '" TOKF "' is not a range a:b:v or "
			    "a_b_v (e.g. 0:100:1 or 0_100_1 maps [0,100) to "
			    "1; a and b may be inf or -inf)", TOKA(t));
	rc = reclass_number(c, t, a, "a", true, &r->lo);
	if (!rc)
		rc = reclass_number(c, t, b, "b", true, &r->hi);
	if (!rc)
		rc = reclass_number(c, t, v, "v", false, &r->value);
	if (rc)
		return rc;
	if (!(r->lo < r->hi)) {
		range_text(r, txt, sizeof(txt));
		return rfs_lex_fail(c, -RFS_E_BAD_ARG,
			    "reclass: range %s is empty: a must be less than "
			    "b (ranges are half-open [a,b), e.g. 0:100:1)",
			    txt);
	}
	return 0;
}

int rfs_reclass_parse(struct rfs_pctx *c, const struct rfs_tok *args,
		      struct rfs_step *st)
{
	const struct rfs_tok argtext = *args;
	static const char *const keys[] = { "other" };
	struct rfs_args it = { argtext, false };
	struct rfs_arg a;
	struct rfs_range tmp, *r = st->u.reclass.ranges;
	bool have_other = false;
	char t1[160], t2[160];
	enum rfs_num_err ne;
	int i, j, n = 0, rc;

	st->op = RFS_OP_RECLASS;
	st->u.reclass.has_other = false;
	st->u.reclass.other = 0;
	while (rfs_args_next(&it, &a)) {
		rc = rfs_arg_check(c, "reclass", &a);
		if (rc)
			return rc;
		if (!a.has_key) {
			if (n == RFS_CHAIN_MAX_RANGES)
				return rfs_lex_fail(c, -RFS_E_TOO_LONG,
					    "reclass: at most %d ranges",
					    RFS_CHAIN_MAX_RANGES);
			rc = parse_range(c, a.val, &r[n]);
			if (rc)
				return rc;
			n++;
		} else if (rfs_tok_is(a.key, "other")) {
			if (have_other)
				return rfs_lex_twice(c, "reclass", "other", &a);
			have_other = true;
			if (rfs_tok_is(a.val, "nodata"))
				continue;
			ne = rfs_lex_number(a.val, false, &st->u.reclass.other);
			if (ne == NUM_LONG)
				return rfs_lex_fail(c, -RFS_E_TOO_LONG,
					    "reclass: other value is longer "
					    "than %d characters", NUM_MAX);
			if (ne != NUM_OK)
				return rfs_lex_fail(c, -RFS_E_BAD_ARG,
					    "reclass: other must be a finite "
					    "number or 'nodata', got '" TOKF
					    "': %s", TOKA(a.val), rfs_lex_num_why(ne));
			st->u.reclass.has_other = true;
		} else {
			return rfs_lex_unknown_option(c, "reclass", &a, keys, 1,
					      "other=");
		}
	}
	if (n == 0)
		return rfs_lex_fail(c, -RFS_E_BAD_ARG,
			    "reclass: at least one range a:b:v is required: %s",
			    STEP_USAGE(RFS_OP_RECLASS));

	/* Insertion sort by lo (n <= 64), then neighbours must not overlap;
	 * any overlap in a sorted list shows up between neighbours. */
	for (i = 1; i < n; i++) {
		tmp = r[i];
		for (j = i; j > 0 && (r[j - 1].lo > tmp.lo ||
				      (r[j - 1].lo == tmp.lo &&
				       r[j - 1].hi > tmp.hi)); j--)
			r[j] = r[j - 1];
		r[j] = tmp;
	}
	for (i = 0; i + 1 < n; i++) {
		if (r[i].hi > r[i + 1].lo) {
			range_text(&r[i], t1, sizeof(t1));
			range_text(&r[i + 1], t2, sizeof(t2));
			return rfs_lex_fail(c, -RFS_E_BAD_ARG,
				    "reclass: ranges %s and %s overlap; each "
				    "value may fall in one range only (ranges "
				    "are half-open [a,b): 0:100:1,100:200:2 "
				    "do not overlap)", t1, t2);
		}
	}
	st->u.reclass.n = n;
	return 0;
}

void rfs_reclass_write(const struct rfs_step *st, struct rfs_cbuf *cb)
{
	const struct rfs_range *r = st->u.reclass.ranges;

	rfs_cb_str(cb, "reclass=");
	for (int i = 0; i < st->u.reclass.n; i++) {
		if (i)
			rfs_cb_str(cb, ",");
		rfs_cb_num(cb, r[i].lo);
		rfs_cb_sep(cb);
		rfs_cb_num(cb, r[i].hi);
		rfs_cb_sep(cb);
		rfs_cb_num(cb, r[i].value);
	}
	rfs_cb_str(cb, ",other=");
	if (st->u.reclass.has_other)
		rfs_cb_num(cb, st->u.reclass.other);
	else
		rfs_cb_str(cb, "nodata");
}


/* ------------------------------------------------------------------ */
/* Engine */

#define BLOCK_BYTES (32 << 20)     /* a strip of a pass */

static const struct out_type {
	GDALDataType type;
	double lo, hi;     /* range of the type */
	double usual;      /* preferred nodata: lo or hi */
	int integer;
} out_types[] = {
	{ GDT_Byte, 0, 255, 255, 1 },
	{ GDT_Int16, INT16_MIN, INT16_MAX, INT16_MIN, 1 },
	{ GDT_UInt16, 0, UINT16_MAX, UINT16_MAX, 1 },
	{ GDT_Int32, INT32_MIN, INT32_MAX, INT32_MIN, 1 },
	{ GDT_Float32, -FLT_MAX, FLT_MAX, -FLT_MAX, 0 },
	{ GDT_Float64, -DBL_MAX, DBL_MAX, -DBL_MAX, 0 },
};

static int holds(const struct out_type *t, double v)
{
	if (!(v >= t->lo && v <= t->hi))
		return 0;
	if (t->integer)
		return v == floor(v);
	if (t->type == GDT_Float32)
		return (double)(float)v == v;
	return 1;
}

static int is_class(const double *vals, int n, double v)
{
	for (int i = 0; i < n; i++)
		if (vals[i] == v)
			return 1;
	return 0;
}

/* One step inward from v, in the type's own spacing. */
static double inward(const struct out_type *t, double v)
{
	const double dir = t->usual == t->lo ? t->hi : t->lo;

	if (t->integer)
		return v + (dir > v ? 1 : -1);
	if (t->type == GDT_Float32)
		return nextafterf((float)v, (float)dir);
	return nextafter(v, dir);
}

/* The output type and nodata for the step's classes (the rule above). */
static void choose_type(const struct rfs_step *step, GDALDataType *type,
			double *nodata)
{
	double vals[RFS_CHAIN_MAX_RANGES + 1];
	int n = 0;

	for (int i = 0; i < step->u.reclass.n; i++)
		vals[n++] = step->u.reclass.ranges[i].value;
	if (step->u.reclass.has_other)
		vals[n++] = step->u.reclass.other;

	for (size_t i = 0; i < sizeof(out_types) / sizeof(out_types[0]); i++) {
		const struct out_type *t = &out_types[i];
		int all = 1;
		for (int j = 0; j < n && all; j++)
			all = holds(t, vals[j]);
		if (!all)
			continue;
		double nd = t->usual;
		if (is_class(vals, n, nd))
			nd = t->usual == t->lo ? t->hi : t->lo;
		if (is_class(vals, n, nd))
			for (nd = inward(t, t->usual); is_class(vals, n, nd);
			     nd = inward(t, nd))
				;
		*type = t->type;
		*nodata = nd;
		return;
	}
	/* Float64 holds every finite double; the grammar allows no other. */
	*type = GDT_Float64;
	*nodata = -DBL_MAX;
}

/* Map a row block in place. */
static void map_block(const struct rfs_step *step, double *v, size_t n,
		      int has_nd, double in_nd, double out_nd)
{
	const struct rfs_range *rg = step->u.reclass.ranges;
	const int nr = step->u.reclass.n;
	const double unmatched = step->u.reclass.has_other ?
		step->u.reclass.other : out_nd;

	for (size_t i = 0; i < n; i++) {
		const double x = v[i];
		if (x != x || (has_nd && x == in_nd)) {
			v[i] = out_nd;
			continue;
		}
		/* only the last range with lo <= x can hold x */
		int lo = 0, hi = nr - 1, k = -1;
		while (lo <= hi) {
			int mid = (lo + hi) / 2;
			if (rg[mid].lo <= x) {
				k = mid;
				lo = mid + 1;
			} else {
				hi = mid - 1;
			}
		}
		v[i] = (k >= 0 && x < rg[k].hi) ? rg[k].value : unmatched;
	}
}

struct reclass_pass {
	const struct rfs_step *step;
	int has_nd;
	double in_nd, out_nd;
};

static int reclass_strip(void *arg, int y, int nrows, size_t n,
			 double *const *in, void *const *out, char *msg,
			 size_t msglen)
{
	const struct reclass_pass *p = arg;

	(void)y, (void)nrows, (void)out, (void)msg, (void)msglen;
	map_block(p->step, in[0], n, p->has_nd, p->in_nd, p->out_nd);
	return 0;
}

static int reclass_run(GDALDatasetH src, const struct rfs_step *step,
		       const struct rfs_op_ctx *ctx, GDALDatasetH *out)
{
	const int nb = GDALGetRasterCount(src);
	const int W = GDALGetRasterXSize(src), H = GDALGetRasterYSize(src);
	GDALDataType type;
	struct reclass_pass p = { .step = step };
	GDALDatasetH ds = NULL;
	int rc;

	choose_type(step, &type, &p.out_nd);
	rc = rfs_gdal_create_like(src, nb, type, ctx->dst_path,
				  &ds, ctx->msg, ctx->msglen);
	if (rc)
		return rc;
	for (int b = 1; b <= nb && !rc; b++) {
		GDALRasterBandH in = GDALGetRasterBand(src, b);
		GDALRasterBandH o = GDALGetRasterBand(ds, b);
		struct rfs_strips s = {
			.W = W,
			.H = H,
			.rows = rfs_gdal_strip_rows(W, sizeof(double),
						    BLOCK_BYTES),
			.nin = 1,
			.in = { in },
			.nout = 1,
			.out = { o },
			.out_type = GDT_Float64,
			.in_place = 1,
			.map = reclass_strip,
			.arg = &p,
			.progress = ctx->progress,
			.progress_arg = ctx->progress_arg,
			.base = (double)(b - 1) / nb,
			.scale = 1.0 / nb,
			.what = "reclass",
			.say_cancel = 1,
		};

		p.in_nd = GDALGetRasterNoDataValue(in, &p.has_nd);
		if (GDALSetRasterNoDataValue(o, p.out_nd) != CE_None)
			rc = rfs_gdal_error("reclass", ctx->msg, ctx->msglen);
		else
			rc = rfs_gdal_strips(&s, ctx->msg, ctx->msglen);
	}
	if (rc == 0) {
		*out = ds;
		ds = NULL;
	}
	if (ds)
		GDALClose(ds);
	return rc;
}

static int reclass_describe(const struct rfs_step *step,
			    const struct rfs_grid *in, struct rfs_grid *out,
			    char *msg, size_t msglen)
{
	GDALDataType type;
	double nodata;
	int rc;

	(void)msg;
	(void)msglen;
	choose_type(step, &type, &nodata);
	if ((rc = rfs_grid_like(in, in->nbands, type, out)))
		return rc;
	for (int b = 0; b < out->nbands; b++) {
		out->bands[b].has_nodata = true;
		out->bands[b].nodata = nodata;
	}
	return 0;
}

/* Cell by cell: the same window. */
static int reclass_need(const struct rfs_step *step, struct rfs_win_job *job)
{
	(void)step;
	return rfs_win_need_same(job, 0);
}

const struct rfs_step_engine rfs_reclass_engine = {
	reclass_describe, reclass_run, reclass_need, rfs_win_by_run,
};
