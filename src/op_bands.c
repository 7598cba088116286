/* op_bands.c - band, type, nodata and ndi.
 *
 * band=N,...  is `gdal_translate -b N ...` (select, repeat or reorder).
 * type=T      is `gdal_translate -ot T`: values are rounded to the nearest
 *             integer for integer types and clamped to the type's range
 *             (GDALCopyWords), never wrapped: 300 becomes 255 in a Byte.
 * nodata=V    is `gdal_translate -a_nodata V` (none: -a_nodata none): the
 *             value is declared, no pixel changes.
 * A band number over the input's band count fails the job with GDAL's
 * message ("Band 7 requested, but only bands 1 to 6 available"): the band
 * count is not known at lookup.
 *
 * ndi=A,B is the normalised difference (A - B) / (A + B), computed in
 * double and stored as Float32 (NDVI is ndi=NIR,RED).  A cell is nodata
 * where A or B is nodata or NaN, where A + B == 0, or where the result is
 * not finite; the nodata value is -3.4028234663852886e+38 (-FLT_MAX, the
 * Float32 nodata of reclass too), outside any ratio's [-1, 1].  GDAL 3.6
 * has no library call for band arithmetic (gdal_calc.py is a Python script,
 * and a VRT would need a Python pixel function), so it is a plain loop,
 * streamed in blocks of rows.
 *
 * describe: band, type and nodata ask gdal_translate for a VRT with the
 * same arguments (describe.c); ndi is one Float32 band of the input's grid
 * with that nodata.
 */
#include <float.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cpl_error.h>
#include <cpl_string.h>
#include <gdal.h>

#include "lex.h"
#include "ops_int.h"
#include "steps_int.h"
#include "rasterfs/chain.h"
#include "rasterfs/err.h"

/* ------------------------------------------------------------------ */
/* Grammar (pure) */

/* Matched case-insensitively; written in GDAL's spelling (type_names). */
static const char *const type_keys[] = {
	[RFS_TYPE_BYTE] = "byte",
	[RFS_TYPE_INT16] = "int16",
	[RFS_TYPE_UINT16] = "uint16",
	[RFS_TYPE_INT32] = "int32",
	[RFS_TYPE_FLOAT32] = "float32",
	[RFS_TYPE_FLOAT64] = "float64",
};

static const char *const type_names[] = {
	[RFS_TYPE_BYTE] = "Byte",
	[RFS_TYPE_INT16] = "Int16",
	[RFS_TYPE_UINT16] = "UInt16",
	[RFS_TYPE_INT32] = "Int32",
	[RFS_TYPE_FLOAT32] = "Float32",
	[RFS_TYPE_FLOAT64] = "Float64",
};

#define N_TYPES ((int)(sizeof(type_names) / sizeof(type_names[0])))
#define TYPES_LIST "Byte, Int16, UInt16, Int32, Float32, Float64"

const char *rfs_type_name(enum rfs_type t)
{
	return (unsigned)t < N_TYPES ? type_names[t] : "?";
}

int rfs_band_parse(struct rfs_pctx *c, const struct rfs_tok *args,
		   struct rfs_step *st)
{
	const struct rfs_tok argtext = *args;
	struct rfs_args it = { argtext, false };
	struct rfs_arg a;
	int rc;

	st->op = RFS_OP_BAND;
	st->u.band.n = 0;
	while (rfs_args_next(&it, &a)) {
		rc = rfs_arg_check(c, "band", &a);
		if (rc)
			return rc;
		if (a.has_key)
			return rfs_lex_no_options(c, "band", &a,
						  STEP_USAGE(RFS_OP_BAND));
		if (st->u.band.n == RFS_CHAIN_MAX_BANDS)
			return rfs_lex_fail(c, -RFS_E_TOO_LONG,
				    "band: at most %d bands",
				    RFS_CHAIN_MAX_BANDS);
		rc = rfs_lex_band(c, "band", a.val,
				 &st->u.band.bands[st->u.band.n],
				  STEP_USAGE(RFS_OP_BAND));
		if (rc)
			return rc;
		st->u.band.n++;
	}
	return 0;
}

void rfs_band_write(const struct rfs_step *st, struct rfs_cbuf *cb)
{
	rfs_cb_str(cb, "band=");
	for (int i = 0; i < st->u.band.n; i++) {
		if (i)
			rfs_cb_str(cb, ",");
		rfs_cb_int(cb, st->u.band.bands[i]);
	}
}

int rfs_type_parse(struct rfs_pctx *c, const struct rfs_tok *args,
		   struct rfs_step *st)
{
	const struct rfs_tok argtext = *args;
	struct rfs_tok t = argtext;
	const char *s;
	int i;

	st->op = RFS_OP_TYPE;
	i = rfs_tok_find(t, type_keys, N_TYPES);
	if (i < 0) {
		s = rfs_tok_suggest(t, type_keys, N_TYPES);
		if (s)
			return rfs_lex_fail(c, -RFS_E_BAD_ARG,
				    "type: '" TOKF "' is not a type; did you "
				    "mean '%s'? Types: " TYPES_LIST, TOKA(t),
				    type_names[rfs_tok_find((struct rfs_tok){ s,
					strlen(s) }, type_keys, N_TYPES)]);
		return rfs_lex_fail(c, -RFS_E_BAD_ARG,
			    "type: '" TOKF "' is not a type. Types: "
			    TYPES_LIST " (e.g. type=Byte)", TOKA(t));
	}
	st->u.type.type = (enum rfs_type)i;
	return 0;
}

void rfs_type_write(const struct rfs_step *st, struct rfs_cbuf *cb)
{
	rfs_cb_str(cb, "type=");
	rfs_cb_str(cb, rfs_type_name(st->u.type.type));
}

int rfs_nodata_parse(struct rfs_pctx *c, const struct rfs_tok *args,
		   struct rfs_step *st)
{
	const struct rfs_tok argtext = *args;
	struct rfs_tok t = argtext;
	enum rfs_num_err ne;

	st->op = RFS_OP_NODATA;
	st->u.nodata.none = rfs_tok_is(t, "none");
	st->u.nodata.value = 0;
	if (st->u.nodata.none)
		return 0;
	ne = rfs_lex_number(t, false, &st->u.nodata.value);
	if (ne == NUM_LONG)
		return rfs_lex_fail(c, -RFS_E_TOO_LONG,
			    "nodata: V is longer than %d characters", NUM_MAX);
	if (ne != NUM_OK)
		return rfs_lex_fail(c, -RFS_E_BAD_ARG,
			    "nodata: V must be a finite number or 'none', got '"
			    TOKF "': %s (%s)", TOKA(t),
			    rfs_lex_num_why(ne), STEP_USAGE(RFS_OP_NODATA));
	return 0;
}

void rfs_nodata_write(const struct rfs_step *st, struct rfs_cbuf *cb)
{
	rfs_cb_str(cb, "nodata=");
	if (st->u.nodata.none)
		rfs_cb_str(cb, "none");
	else
		rfs_cb_num(cb, st->u.nodata.value);
}

int rfs_ndi_parse(struct rfs_pctx *c, const struct rfs_tok *args,
		   struct rfs_step *st)
{
	const struct rfs_tok argtext = *args;
	struct rfs_args it = { argtext, false };
	struct rfs_arg a;
	int v[2], n = 0, rc;

	st->op = RFS_OP_NDI;
	while (rfs_args_next(&it, &a)) {
		rc = rfs_arg_check(c, "ndi", &a);
		if (rc)
			return rc;
		if (a.has_key)
			return rfs_lex_no_options(c, "ndi", &a,
						  STEP_USAGE(RFS_OP_NDI));
		if (n == 2)
			return rfs_lex_fail(c, -RFS_E_BAD_ARG,
				    "ndi: exactly two bands, got a third '"
				    TOKF "': %s", TOKA(a.val),
				    STEP_USAGE(RFS_OP_NDI));
		rc = rfs_lex_band(c, "ndi", a.val, &v[n],
				  STEP_USAGE(RFS_OP_NDI));
		if (rc)
			return rc;
		n++;
	}
	if (n < 2)
		return rfs_lex_fail(c, -RFS_E_BAD_ARG,
			    "ndi: two bands A,B are required: %s",
			    STEP_USAGE(RFS_OP_NDI));
	if (v[0] == v[1])
		return rfs_lex_fail(c, -RFS_E_BAD_ARG,
			    "ndi: A and B must be different bands (the "
			    "difference of a band with itself is 0): %s",
			    STEP_USAGE(RFS_OP_NDI));
	st->u.ndi.a = v[0];
	st->u.ndi.b = v[1];
	return 0;
}

void rfs_ndi_write(const struct rfs_step *st, struct rfs_cbuf *cb)
{
	rfs_cb_str(cb, "ndi=");
	rfs_cb_int(cb, st->u.ndi.a);
	rfs_cb_str(cb, ",");
	rfs_cb_int(cb, st->u.ndi.b);
}


/* Band descriptions (step.h): band= selects (an output band is the input
 * band it names, description and all); ndi reads bands A and B. */
int rfs_band_bands(const struct rfs_step *st, int out, int from[2])
{
	from[0] = out < st->u.band.n ? st->u.band.bands[out] - 1 : -1;
	return 0;
}

int rfs_ndi_bands(const struct rfs_step *st, int out, int from[2])
{
	(void)out;
	from[0] = st->u.ndi.a - 1;
	from[1] = st->u.ndi.b - 1;
	return 2;
}

/* ------------------------------------------------------------------ */
/* Engine */

#define NDI_NODATA (-FLT_MAX)
#define BLOCK_BYTES (32 << 20)     /* the input strips of a pass */

/* Both bands exist in an input of nb bands. */
static int ndi_check(const struct rfs_step *step, int nb, char *msg,
		     size_t msglen)
{
	const int ia = step->u.ndi.a, ib = step->u.ndi.b;

	if (ia <= nb && ib <= nb)
		return 0;
	snprintf(msg, msglen, "ndi: band %d does not exist; the input has %d "
		 "band%s (1 to %d)", ia > nb ? ia : ib, nb, nb == 1 ? "" : "s",
		 nb);
	return -RFS_E_PROCESS;
}

struct ndi_pass {
	int has_a, has_b;
	double nda, ndb;
};

/* (a - b) / (a + b) per cell; nodata where either is, or it is not a
 * number. */
static int ndi_strip(void *arg, int y, int nrows, size_t n,
		     double *const *in, void *const *out, char *msg,
		     size_t msglen)
{
	const struct ndi_pass *p = arg;
	float *o = out[0];

	(void)y, (void)nrows, (void)msg, (void)msglen;
	for (size_t i = 0; i < n; i++) {
		const double x = in[0][i], z = in[1][i], s = x + z;
		const double r = (x - z) / s;

		if ((p->has_a && x == p->nda) || (p->has_b && z == p->ndb) ||
		    s == 0 || !isfinite(r))
			o[i] = NDI_NODATA;
		else
			o[i] = (float)r;
	}
	return 0;
}

static int run_ndi(GDALDatasetH src, const struct rfs_step *step,
		   const struct rfs_op_ctx *ctx, GDALDatasetH *out)
{
	const int nb = GDALGetRasterCount(src);
	const int W = GDALGetRasterXSize(src), H = GDALGetRasterYSize(src);
	GDALDatasetH ds = NULL;
	struct ndi_pass p = { 0 };
	int rc;

	if ((rc = ndi_check(step, nb, ctx->msg, ctx->msglen)))
		return rc;
	rc = rfs_gdal_create_like(src, 1, GDT_Float32, ctx->dst_path,
				  &ds, ctx->msg, ctx->msglen);
	if (rc)
		return rc;
	GDALRasterBandH ba = GDALGetRasterBand(src, step->u.ndi.a);
	GDALRasterBandH bb = GDALGetRasterBand(src, step->u.ndi.b);
	GDALRasterBandH bo = GDALGetRasterBand(ds, 1);
	struct rfs_strips s = {
		.W = W,
		.H = H,
		/* the two input strips fit BLOCK_BYTES */
		.rows = rfs_gdal_strip_rows(W, 2 * sizeof(double),
					    BLOCK_BYTES),
		.nin = 2,
		.in = { ba, bb },
		.nout = 1,
		.out = { bo },
		.out_type = GDT_Float32,
		.map = ndi_strip,
		.arg = &p,
		.progress = ctx->progress,
		.progress_arg = ctx->progress_arg,
		.scale = 1,
		.what = "ndi",
		.say_cancel = 1,
	};

	p.nda = GDALGetRasterNoDataValue(ba, &p.has_a);
	p.ndb = GDALGetRasterNoDataValue(bb, &p.has_b);
	if (GDALSetRasterNoDataValue(bo, NDI_NODATA) != CE_None)
		rc = rfs_gdal_error("ndi", ctx->msg, ctx->msglen);
	else
		rc = rfs_gdal_strips(&s, ctx->msg, ctx->msglen);
	if (rc == 0) {
		*out = ds;
		ds = NULL;
	}
	if (ds)
		GDALClose(ds);
	return rc;
}

/* The gdal_translate arguments of band, type and nodata. */
static char **translate_argv(const struct rfs_step *step)
{
	char **argv = NULL;
	char num[48];

	switch (step->op) {
	case RFS_OP_BAND:
		for (int i = 0; i < step->u.band.n; i++) {
			snprintf(num, sizeof(num), "%d", step->u.band.bands[i]);
			argv = CSLAddString(argv, "-b");
			argv = CSLAddString(argv, num);
		}
		break;
	case RFS_OP_TYPE:
		argv = CSLAddString(argv, "-ot");
		argv = CSLAddString(argv, rfs_type_name(step->u.type.type));
		break;
	case RFS_OP_NODATA:
		argv = CSLAddString(argv, "-a_nodata");
		if (step->u.nodata.none)
			snprintf(num, sizeof(num), "none");
		else
			rfs_format_double(step->u.nodata.value, num,
					  sizeof(num));
		argv = CSLAddString(argv, num);
		break;
	default:
		break;
	}
	return argv;
}

static int translate_describe(const struct rfs_step *step,
			      const struct rfs_grid *in, struct rfs_grid *out,
			      char *msg, size_t msglen)
{
	return rfs_describe_translate(in, translate_argv(step),
				      rfs_op_name(step->op), out, msg, msglen);
}

static int translate_run(GDALDatasetH src, const struct rfs_step *step,
			 const struct rfs_op_ctx *ctx, GDALDatasetH *out)
{
	return rfs_ops_translate(src, translate_argv(step),
				 rfs_op_name(step->op), ctx, out);
}

/* band, type, nodata and ndi work cell by cell: the same window. */
static int bands_need(const struct rfs_step *step, struct rfs_win_job *job)
{
	(void)step;
	return rfs_win_need_same(job, 0);
}

const struct rfs_step_engine rfs_translate_bands_engine = {
	translate_describe, translate_run, bands_need, rfs_win_by_run,
};

static int ndi_describe(const struct rfs_step *step,
			const struct rfs_grid *in, struct rfs_grid *out,
			char *msg, size_t msglen)
{
	int rc;

	if ((rc = ndi_check(step, in->nbands, msg, msglen)) ||
	    (rc = rfs_grid_like(in, 1, GDT_Float32, out)))
		return rc;
	out->bands[0].has_nodata = true;
	out->bands[0].nodata = NDI_NODATA;
	return 0;
}

const struct rfs_step_engine rfs_ndi_engine = {
	ndi_describe, run_ndi, bands_need, rfs_win_by_run,
};
