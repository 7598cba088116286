/* chain.c - the chain grammar: parse, check and canonicalise the steps of a
 * virtual name.
 *
 * Design notes:
 * 1. Pure: no I/O, no allocation, no state but the const tables below.  The
 *    text is a stranger's file name, so every byte is checked before it is
 *    looked at as grammar, and every copy is bounded.
 * 2. Whole-text checks come first ('/', "..", characters outside the
 *    grammar, overall length); then steps are parsed left to right and the
 *    first error wins.
 * 3. Step names, option names and keywords are case-insensitive; the
 *    canonical spelling is lower case.  A CRS authority is upper-cased but
 *    its code is kept as written, because PROJ's codes are case-sensitive
 *    (IGNF:LAMB93, OGC:CRS84h); an all-digit code loses its leading zeros.
 *    type= names are written as GDAL spells them (Byte, UInt16), like -ot.
 * 4. The canonical text parses to itself, so the worker, which gets only
 *    the canonical chain, sees exactly the steps the daemon saw.
 * 5. The output format is not a step: fmt= may only come last, and a
 *    trailing ".tif", ".tiff" or ".png" (only at the very end: "res=0.5"
 *    keeps its dot, "res=0.5.tif" loses only ".tif") says the same thing,
 *    so a file dialog filtering *.tif can pick an output.  The default
 *    GeoTIFF adds nothing to the canonical text, so "x@focal=3",
 *    "x@focal=3.tif" and "x@focal=3@fmt=gtiff" are one cache entry with
 *    the key they had before formats existed.
 */
#include <assert.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rasterfs/chain.h"
#include "rasterfs/err.h"

/* Longest text accepted.  Longer than the canonical limit because the
 * input may spell things out ("focal=size=3,stat=mean,shape=square"). */
#define CHAIN_INPUT_MAX (4 * RFS_CHAIN_TEXT_MAX)
#define NUM_MAX 64		/* longest number token */
#define NAME_MAX_CMP 32		/* longest word considered for "did you mean" */
#define TOK_SHOW 40		/* longest token echoed in a message */

static const char *const op_names[] = {
	[RFS_OP_PROJ] = "proj",
	[RFS_OP_FOCAL] = "focal",
	[RFS_OP_RECLASS] = "reclass",
	[RFS_OP_SLOPE] = "slope",
	[RFS_OP_ASPECT] = "aspect",
	[RFS_OP_HILLSHADE] = "hillshade",
	[RFS_OP_ROUGHNESS] = "roughness",
	[RFS_OP_TRI] = "tri",
	[RFS_OP_TPI] = "tpi",
	[RFS_OP_RES] = "res",
	[RFS_OP_SIZE] = "size",
	[RFS_OP_CLIP] = "clip",
	[RFS_OP_BAND] = "band",
	[RFS_OP_TYPE] = "type",
	[RFS_OP_NODATA] = "nodata",
	[RFS_OP_NDI] = "ndi",
};

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

static const char *const rs_names[] = {
	[RFS_RS_NEAR] = "near",
	[RFS_RS_BILINEAR] = "bilinear",
	[RFS_RS_CUBIC] = "cubic",
	[RFS_RS_CUBICSPLINE] = "cubicspline",
	[RFS_RS_LANCZOS] = "lanczos",
	[RFS_RS_AVERAGE] = "average",
	[RFS_RS_RMS] = "rms",
	[RFS_RS_MODE] = "mode",
	[RFS_RS_MAX] = "max",
	[RFS_RS_MIN] = "min",
	[RFS_RS_MED] = "med",
	[RFS_RS_Q1] = "q1",
	[RFS_RS_Q3] = "q3",
	[RFS_RS_SUM] = "sum",
};

static const char *const format_names[] = {
	[RFS_FMT_GTIFF] = "gtiff",
	[RFS_FMT_COG] = "cog",
	[RFS_FMT_PNG] = "png",
};

static const char *const stretch_names[] = {
	[RFS_STRETCH_MINMAX] = "minmax",
	[RFS_STRETCH_P2] = "p2",
};

#define N_OPS ((int)(sizeof(op_names) / sizeof(op_names[0])))
#define N_FORMATS ((int)(sizeof(format_names) / sizeof(format_names[0])))
#define N_STRETCHES ((int)(sizeof(stretch_names) / sizeof(stretch_names[0])))
#define N_STATS ((int)(sizeof(stat_names) / sizeof(stat_names[0])))
#define N_SHAPES ((int)(sizeof(shape_names) / sizeof(shape_names[0])))
#define N_RS ((int)(sizeof(rs_names) / sizeof(rs_names[0])))
#define N_TYPES ((int)(sizeof(type_names) / sizeof(type_names[0])))

#define STEPS_LIST "proj, focal, reclass, slope, aspect, hillshade, " \
	"roughness, tri, tpi, res, size, clip, band, type, nodata, ndi"
#define TYPES_LIST "Byte, Int16, UInt16, Int32, Float32, Float64"
#define STATS_LIST "mean, min, max, sum, std, range, median"
#define SHAPES_LIST "square, circle"
#define RS_LIST "near, bilinear, cubic, cubicspline, lanczos, average, " \
	"rms, mode, max, min, med, q1, q3, sum"

#define PROJ_USAGE "proj=CRS[,res=R][,RESAMPLING], e.g. proj=EPSG:3857 " \
	"or proj=EPSG:32633,res=30,bilinear"
#define FOCAL_USAGE "focal=SIZE[,STAT][,SHAPE], e.g. focal=3 or " \
	"focal=5,max,circle"
#define FMT_USAGE "fmt=gtiff|cog|png[,STRETCH] as the last step (STRETCH " \
	"for png: minmax or p2), e.g. fmt=cog or fmt=png,p2"
#define RECLASS_USAGE "reclass=a:b:v[,a:b:v...][,other=V], e.g. " \
	"reclass=0:100:1,100:inf:2"
#define SLOPE_USAGE "slope[=degrees|percent], e.g. slope or slope=percent"
#define HILLSHADE_USAGE "hillshade[=AZIMUTH,ALTITUDE][,z=F]" \
	"[,multidirectional], e.g. hillshade or hillshade=300,30,z=2 or " \
	"hillshade=alt=45,multidirectional"
#define RES_USAGE "res=R[,RESAMPLING], e.g. res=30 or res=30,bilinear"
#define SIZE_USAGE "size=W,H[,RESAMPLING], e.g. size=512,512 or " \
	"size=512,512,average"
#define CLIP_USAGE "clip=MINX,MINY,MAXX,MAXY[,CRS], e.g. " \
	"clip=500000,4100000,510000,4110000 or " \
	"clip=-125,48,-124.5,48.5,EPSG:4326"
#define BAND_USAGE "band=N[,N...] (1-based), e.g. band=1 or band=3,2,1"
#define TYPE_USAGE "type=" "Byte|Int16|UInt16|Int32|Float32|Float64, " \
	"e.g. type=Byte"
#define NODATA_USAGE "nodata=V or nodata=none, e.g. nodata=-9999"
#define NDI_USAGE "ndi=A,B (bands, 1-based), e.g. ndi=4,3"

const char *rfs_op_name(enum rfs_op op)
{
	return (unsigned)op < N_OPS ? op_names[op] : "?";
}

const char *rfs_format_name(enum rfs_format f)
{
	return (unsigned)f < N_FORMATS ? format_names[f] : "?";
}

const char *rfs_stretch_name(enum rfs_stretch s)
{
	return (unsigned)s < N_STRETCHES ? stretch_names[s] : "?";
}

const char *rfs_focal_stat_name(enum rfs_focal_stat s)
{
	return (unsigned)s < N_STATS ? stat_names[s] : "?";
}

const char *rfs_focal_shape_name(enum rfs_focal_shape s)
{
	return (unsigned)s < N_SHAPES ? shape_names[s] : "?";
}

const char *rfs_resampling_name(enum rfs_resampling r)
{
	return (unsigned)r < N_RS ? rs_names[r] : "?";
}

const char *rfs_type_name(enum rfs_type t)
{
	return (unsigned)t < N_TYPES ? type_names[t] : "?";
}

/* ------------------------------------------------------------------ */
/* Numbers */

int rfs_format_double(double v, char *buf, size_t len)
{
	char tmp[48];
	int n = -1, p;

	if (isnan(v)) {
		n = snprintf(tmp, sizeof(tmp), "nan");
	} else if (isinf(v)) {
		n = snprintf(tmp, sizeof(tmp), "%s", v < 0 ? "-inf" : "inf");
	} else if (v == trunc(v) && fabs(v) < 1e15) {
		/* Integers in plain digits ("500", not "5e+02"); exact below
		 * 2^53. */
		n = snprintf(tmp, sizeof(tmp), "%.0f", v);
	} else {
		/* Shortest round trip: the fewest significant digits that
		 * strtod reads back as v; 17 always suffice for a double. */
		for (p = 1; p <= 17; p++) {
			n = snprintf(tmp, sizeof(tmp), "%.*g", p, v);
			if (strtod(tmp, NULL) == v)
				break;
		}
	}
	if (n < 0 || (size_t)n >= len)
		return -1;
	memcpy(buf, tmp, (size_t)n + 1);
	return n;
}

/* ------------------------------------------------------------------ */
/* Tokens */

struct tok {
	const char *p;
	size_t n;
};

/* printf arguments for a token: at most TOK_SHOW bytes, then "...". */
#define TOKF "%.*s%s"
#define TOKA(t) (int)((t).n > TOK_SHOW ? TOK_SHOW : (t).n), (t).p, \
	((t).n > TOK_SHOW ? "..." : "")

static int lower(int c)
{
	return c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c;
}

static bool is_digit(int c)
{
	return c >= '0' && c <= '9';
}

static bool is_alnum(int c)
{
	return is_digit(c) || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

/* ASCII case-insensitive: the parser does not depend on the locale. */
static bool tok_is(struct tok t, const char *word)
{
	size_t i;

	for (i = 0; i < t.n; i++)
		if (word[i] == '\0' || lower((unsigned char)t.p[i]) != word[i])
			return false;
	return word[i] == '\0';
}

static int tok_find(struct tok t, const char *const *names, int n)
{
	int i;

	for (i = 0; i < n; i++)
		if (tok_is(t, names[i]))
			return i;
	return -1;
}

/* Split t at the first c: *head before, *tail after.  False if no c. */
static bool tok_split(struct tok t, char c, struct tok *head, struct tok *tail)
{
	const char *q = memchr(t.p, c, t.n);

	if (!q) {
		*head = t;
		tail->p = t.p + t.n;
		tail->n = 0;
		return false;
	}
	head->p = t.p;
	head->n = (size_t)(q - t.p);
	tail->p = q + 1;
	tail->n = t.n - head->n - 1;
	return true;
}

static bool all_digits(struct tok t)
{
	size_t i;

	for (i = 0; i < t.n; i++)
		if (!is_digit(t.p[i]))
			return false;
	return t.n > 0;
}

/* Optimal string alignment distance (Levenshtein plus adjacent
 * transpositions; Damerau 1964), case-insensitive. */
static int edit_distance(struct tok a, const char *b)
{
	int d[NAME_MAX_CMP + 1][NAME_MAX_CMP + 1];
	int m = (int)a.n, n = (int)strlen(b), i, j, cost, v;

	assert(m <= NAME_MAX_CMP && n <= NAME_MAX_CMP);
	for (i = 0; i <= m; i++)
		d[i][0] = i;
	for (j = 0; j <= n; j++)
		d[0][j] = j;
	for (i = 1; i <= m; i++) {
		for (j = 1; j <= n; j++) {
			int ca = lower((unsigned char)a.p[i - 1]);

			cost = ca != b[j - 1];
			v = d[i - 1][j] + 1;
			if (d[i][j - 1] + 1 < v)
				v = d[i][j - 1] + 1;
			if (d[i - 1][j - 1] + cost < v)
				v = d[i - 1][j - 1] + cost;
			if (i > 1 && j > 1 &&
			    ca == b[j - 2] &&
			    lower((unsigned char)a.p[i - 2]) == b[j - 1] &&
			    d[i - 2][j - 2] + 1 < v)
				v = d[i - 2][j - 2] + 1;
			d[i][j] = v;
		}
	}
	return d[m][n];
}

/* The closest of names to t if it is close enough to be a typo: one edit
 * for short words, two for longer ones.  NULL otherwise. */
static const char *suggest(struct tok t, const char *const *names, int n)
{
	const char *best = NULL;
	int i, d, bestd = 3;

	if (t.n == 0 || t.n > NAME_MAX_CMP)
		return NULL;
	for (i = 0; i < n; i++) {
		int limit = strlen(names[i]) <= 4 ? 1 : 2;

		d = edit_distance(t, names[i]);
		if (d <= limit && d < bestd) {
			bestd = d;
			best = names[i];
		}
	}
	return best;
}

/* ------------------------------------------------------------------ */
/* Messages and the canonical text */

struct pctx {
	char *msg;
	size_t msglen;
};

static int fail(struct pctx *c, int rc, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int fail(struct pctx *c, int rc, const char *fmt, ...)
{
	va_list ap;

	assert(rc < 0);
	if (c->msg && c->msglen) {
		va_start(ap, fmt);
		vsnprintf(c->msg, c->msglen, fmt, ap);
		va_end(ap);
	}
	return rc;
}

struct cbuf {
	char *p;
	size_t n;	/* bytes written, without the NUL */
	size_t cap;	/* including the NUL */
	bool over;
};

static void cb_add(struct cbuf *b, const char *s, size_t n)
{
	if (b->over || b->n + n >= b->cap) {
		b->over = true;
		return;
	}
	memcpy(b->p + b->n, s, n);
	b->n += n;
	b->p[b->n] = '\0';
}

static void cb_str(struct cbuf *b, const char *s)
{
	cb_add(b, s, strlen(s));
}

static void cb_num(struct cbuf *b, double v)
{
	char t[48];
	int n = rfs_format_double(v, t, sizeof(t));

	assert(n > 0);
	cb_add(b, t, (size_t)n);
}

/* ------------------------------------------------------------------ */
/* Number tokens */

enum num_err { NUM_OK, NUM_SYNTAX, NUM_NAN, NUM_INF, NUM_RANGE, NUM_LONG };

static const char *num_why(enum num_err e)
{
	switch (e) {
	case NUM_NAN:
		return "NaN is not allowed";
	case NUM_INF:
		return "it must be finite";
	case NUM_RANGE:
		return "it is out of range";
	case NUM_LONG:
		return "it is too long";
	default:
		return "it is not a decimal number";
	}
}

/* Strict decimal syntax, checked here so that strtod's extras (hex floats,
 * "nan(...)", "infinity", leading blanks) are refused:
 *     [+-]? ( "inf" | D+ [. D*] | . D+ ) ( [eE] [+-]? D+ )?
 * "inf" only when allow_inf.  -0 is read as 0. */
static enum num_err parse_number(struct tok t, bool allow_inf, double *out)
{
	char buf[NUM_MAX + 1];
	struct tok rest;
	size_t i = 0;
	bool digits = false, nonzero = false, neg = false;
	char *end;
	double v;
	int saved;

	if (t.n > NUM_MAX)
		return NUM_LONG;
	if (i < t.n && (t.p[i] == '+' || t.p[i] == '-'))
		neg = t.p[i++] == '-';
	rest.p = t.p + i;
	rest.n = t.n - i;
	if (tok_is(rest, "inf")) {
		if (!allow_inf)
			return NUM_INF;
		*out = neg ? -INFINITY : INFINITY;
		return NUM_OK;
	}
	if (tok_is(rest, "nan"))
		return NUM_NAN;
	for (; i < t.n && is_digit(t.p[i]); i++) {
		digits = true;
		nonzero |= t.p[i] != '0';
	}
	if (i < t.n && t.p[i] == '.') {
		for (i++; i < t.n && is_digit(t.p[i]); i++) {
			digits = true;
			nonzero |= t.p[i] != '0';
		}
	}
	if (!digits)
		return NUM_SYNTAX;
	if (i < t.n && (t.p[i] == 'e' || t.p[i] == 'E')) {
		i++;
		if (i < t.n && (t.p[i] == '+' || t.p[i] == '-'))
			i++;
		if (i >= t.n || !is_digit(t.p[i]))
			return NUM_SYNTAX;
		while (i < t.n && is_digit(t.p[i]))
			i++;
	}
	if (i != t.n)
		return NUM_SYNTAX;

	memcpy(buf, t.p, t.n);
	buf[t.n] = '\0';
	saved = errno;	/* strtod's ERANGE is judged below, not left behind */
	v = strtod(buf, &end);
	errno = saved;
	/* Only a non-"C" LC_NUMERIC could stop strtod early; rasterfs never
	 * calls setlocale, so this is a safety net. */
	if (end != buf + t.n)
		return NUM_SYNTAX;
	if (isinf(v) || (v == 0 && nonzero))
		return NUM_RANGE;
	*out = v == 0 ? 0.0 : v;
	return NUM_OK;
}

/* ------------------------------------------------------------------ */
/* Arguments */

/* One comma-separated argument, split into key and value.  A positional
 * argument has key.n == 0 and has_key false. */
struct arg {
	struct tok all, key, val;
	bool has_key;
};

struct args {
	struct tok rest;
	bool done;
};

static bool args_next(struct args *it, struct arg *a)
{
	struct tok tail;

	if (it->done)
		return false;
	if (!tok_split(it->rest, ',', &a->all, &tail))
		it->done = true;
	it->rest = tail;
	a->has_key = tok_split(a->all, '=', &a->key, &a->val);
	if (!a->has_key) {
		a->val = a->all;
		a->key.n = 0;
	}
	return true;
}

/* Checks common to every step's arguments. */
static int arg_check(struct pctx *c, const char *op, const struct arg *a)
{
	if (a->all.n == 0)
		return fail(c, -RFS_E_BAD_ARG,
			    "%s: empty argument (two commas in a row, or one "
			    "at the end); remove the extra comma", op);
	if (a->has_key && a->key.n == 0)
		return fail(c, -RFS_E_BAD_ARG,
			    "%s: '" TOKF "' has no option name before '='",
			    op, TOKA(a->all));
	if (a->has_key && a->val.n == 0)
		return fail(c, -RFS_E_BAD_ARG,
			    "%s: option '" TOKF "' has no value after '='",
			    op, TOKA(a->key));
	return 0;
}

static int unknown_option(struct pctx *c, const char *op,
			  const struct arg *a, const char *const *keys,
			  int nkeys, const char *list)
{
	const char *s = suggest(a->key, keys, nkeys);

	if (s)
		return fail(c, -RFS_E_BAD_ARG,
			    "%s: unknown option '" TOKF "'; did you mean "
			    "'%s='? Options: %s", op, TOKA(a->key), s, list);
	return fail(c, -RFS_E_BAD_ARG,
		    "%s: unknown option '" TOKF "'. Options: %s",
		    op, TOKA(a->key), list);
}

static int twice(struct pctx *c, const char *op, const char *what,
		 const struct arg *a)
{
	return fail(c, -RFS_E_BAD_ARG,
		    "%s: %s given twice (again as '" TOKF "'); give it once",
		    op, what, TOKA(a->all));
}

/* ------------------------------------------------------------------ */
/* proj=CRS[,res=R][,RESAMPLING] */

static bool crs_auth_char(int c)
{
	return is_alnum(c) || c == '_';
}

static bool crs_code_char(int c)
{
	return is_alnum(c) || c == '_' || c == '.';
}

/* AUTH:CODE -> out ("EPSG:3857"). */
static int parse_crs(struct pctx *c, const char *op, struct tok t, char *out)
{
	struct tok auth, code;
	struct cbuf b = { out, 0, RFS_CRS_MAX, false };
	size_t i;
	char ch;

	if (!tok_split(t, ':', &auth, &code)) {
		if (all_digits(t))
			return fail(c, -RFS_E_BAD_ARG,
				    "%s: CRS must be AUTHORITY:CODE, got '"
				    TOKF "' (try %sEPSG:" TOKF ")", op,
				    TOKA(t), strcmp(op, "proj") ? "" : "proj=",
				    TOKA(t));
		return fail(c, -RFS_E_BAD_ARG,
			    "%s: '" TOKF "' is neither a CRS (AUTHORITY:CODE "
			    "such as EPSG:3857) nor a resampling method (%s)",
			    op, TOKA(t), RS_LIST);
	}
	if (auth.n == 0 || code.n == 0)
		return fail(c, -RFS_E_BAD_ARG,
			    "%s: CRS '" TOKF "' needs both an authority and "
			    "a code, as in EPSG:3857", op, TOKA(t));
	for (i = 0; i < auth.n; i++)
		if (!crs_auth_char((unsigned char)auth.p[i]))
			return fail(c, -RFS_E_BAD_ARG,
				    "%s: CRS authority '" TOKF "' may hold "
				    "only letters, digits and '_' (e.g. EPSG, "
				    "ESRI, IGNF)", op, TOKA(auth));
	for (i = 0; i < code.n; i++)
		if (!crs_code_char((unsigned char)code.p[i]))
			return fail(c, -RFS_E_BAD_ARG,
				    "%s: CRS code '" TOKF "' may hold only "
				    "letters, digits, '_' and '.' (e.g. "
				    "EPSG:3857, IGNF:LAMB93)", op,
				    TOKA(code));
	for (i = 0; i < auth.n; i++) {
		ch = auth.p[i];
		if (ch >= 'a' && ch <= 'z')
			ch = (char)(ch - 'a' + 'A');
		cb_add(&b, &ch, 1);
	}
	cb_add(&b, ":", 1);
	/* PROJ reads all-digit codes as numbers: EPSG:03857 is EPSG:3857. */
	if (all_digits(code)) {
		for (i = 0; i + 1 < code.n && code.p[i] == '0'; i++)
			;
		cb_add(&b, code.p + i, code.n - i);
	} else {
		cb_add(&b, code.p, code.n);
	}
	if (b.over)
		return fail(c, -RFS_E_TOO_LONG,
			    "%s: CRS '" TOKF "' is longer than %d characters",
			    op, TOKA(t), RFS_CRS_MAX - 1);
	return 0;
}

static int parse_resampling(struct pctx *c, const char *op, struct tok t,
			    enum rfs_resampling *out)
{
	const char *s;
	double res;
	int i;

	if (tok_is(t, "nearest")) {
		*out = RFS_RS_NEAR;
		return 0;
	}
	i = tok_find(t, rs_names, N_RS);
	if (i >= 0) {
		*out = (enum rfs_resampling)i;
		return 0;
	}
	if (parse_number(t, false, &res) == NUM_OK)
		return fail(c, -RFS_E_BAD_ARG,
			    "%s: '" TOKF "' is not a resampling method; for "
			    "a pixel size write res=" TOKF, op, TOKA(t),
			    TOKA(t));
	s = suggest(t, rs_names, N_RS);
	if (s)
		return fail(c, -RFS_E_BAD_ARG,
			    "%s: '" TOKF "' is not a resampling method; did "
			    "you mean '%s'? Methods: %s", op, TOKA(t), s,
			    RS_LIST);
	return fail(c, -RFS_E_BAD_ARG,
		    "%s: '" TOKF "' is not a resampling method. Methods: %s",
		    op, TOKA(t), RS_LIST);
}

static int parse_proj(struct pctx *c, struct tok argtext, struct rfs_step *st,
		      struct cbuf *cb)
{
	static const char *const keys[] = { "crs", "res", "resampling" };
	struct args it = { argtext, false };
	struct arg a;
	bool have_crs = false, have_res = false, have_rs = false;
	enum num_err ne;
	int rc;

	st->op = RFS_OP_PROJ;
	st->u.proj.res = 0;
	st->u.proj.resampling = RFS_RS_NEAR;
	while (args_next(&it, &a)) {
		rc = arg_check(c, "proj", &a);
		if (rc)
			return rc;
		if (!a.has_key) {
			/* A CRS always has a ':', a method never: no
			 * ambiguity, so any order. */
			if (!memchr(a.val.p, ':', a.val.n) &&
			    (have_crs || tok_is(a.val, "nearest") ||
			     tok_find(a.val, rs_names, N_RS) >= 0 ||
			     suggest(a.val, rs_names, N_RS))) {
				if (have_rs)
					return twice(c, "proj",
						     "resampling method", &a);
				have_rs = true;
				rc = parse_resampling(c, "proj", a.val,
						      &st->u.proj.resampling);
			} else {
				if (have_crs)
					return twice(c, "proj", "CRS", &a);
				have_crs = true;
				rc = parse_crs(c, "proj", a.val,
					       st->u.proj.crs);
			}
		} else if (tok_is(a.key, "crs")) {
			if (have_crs)
				return twice(c, "proj", "CRS", &a);
			have_crs = true;
			rc = parse_crs(c, "proj", a.val, st->u.proj.crs);
		} else if (tok_is(a.key, "res")) {
			if (have_res)
				return twice(c, "proj", "res", &a);
			have_res = true;
			ne = parse_number(a.val, false, &st->u.proj.res);
			if (ne == NUM_LONG)
				return fail(c, -RFS_E_TOO_LONG,
					    "proj: res value is longer than %d "
					    "characters", NUM_MAX);
			if (ne != NUM_OK || st->u.proj.res <= 0)
				return fail(c, -RFS_E_BAD_ARG,
					    "proj: res must be a positive "
					    "pixel size in the target CRS's "
					    "units, got '" TOKF "'%s%s (e.g. "
					    "res=30)",
					    TOKA(a.val), ne ? ": " : "",
					    ne ? num_why(ne) : "");
		} else if (tok_is(a.key, "resampling")) {
			if (have_rs)
				return twice(c, "proj", "resampling method",
					     &a);
			have_rs = true;
			rc = parse_resampling(c, "proj", a.val,
					      &st->u.proj.resampling);
		} else {
			return unknown_option(c, "proj", &a, keys, 3,
					      "crs=, res=, resampling=");
		}
		if (rc)
			return rc;
	}
	if (!have_crs)
		return fail(c, -RFS_E_BAD_ARG,
			    "proj: a target CRS is required: " PROJ_USAGE);

	cb_str(cb, "proj=");
	cb_str(cb, st->u.proj.crs);
	if (have_res) {
		cb_str(cb, ",res=");
		cb_num(cb, st->u.proj.res);
	}
	cb_str(cb, ",");
	cb_str(cb, rs_names[st->u.proj.resampling]);
	return 0;
}

/* ------------------------------------------------------------------ */
/* focal=SIZE[,STAT][,SHAPE] */

/* SIZE text -> int; values too large for any window read as INT_MAX. */
static int focal_size_value(struct tok t)
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

static int focal_bad_size(struct pctx *c, struct tok t, int v)
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
		return fail(c, -RFS_E_BAD_ARG,
			    "focal: SIZE must be an odd integer from 3 to %d, "
			    "got '" TOKF "' (try focal=%d)",
			    RFS_FOCAL_MAX_SIZE, TOKA(t), lo);
	return fail(c, -RFS_E_BAD_ARG,
		    "focal: SIZE must be an odd integer from 3 to %d, got '"
		    TOKF "' (try focal=%d or focal=%d)",
		    RFS_FOCAL_MAX_SIZE, TOKA(t), lo, hi);
}

static int focal_bad_word(struct pctx *c, struct tok t, const char *what,
			  const char *const *names, int n, const char *list)
{
	const char *s = suggest(t, names, n);

	if (s)
		return fail(c, -RFS_E_BAD_ARG,
			    "focal: '" TOKF "' is not a %s; did you mean '%s'? "
			    "%s", TOKA(t), what, s, list);
	return fail(c, -RFS_E_BAD_ARG, "focal: '" TOKF "' is not a %s. %s",
		    TOKA(t), what, list);
}

static int parse_focal(struct pctx *c, struct tok argtext, struct rfs_step *st,
		       struct cbuf *cb)
{
	static const char *const keys[] = { "size", "stat", "shape" };
	static const char *const words[] = {
		"mean", "min", "max", "sum", "std", "range", "median",
		"square", "circle",
	};
	enum { F_SIZE, F_STAT, F_SHAPE } slot;
	struct args it = { argtext, false };
	struct arg a;
	struct tok size_tok = { "", 0 };
	bool have[3] = { false, false, false };
	static const char *const slot_name[] = { "SIZE", "statistic", "shape" };
	char num[16];
	int i = 0, v, rc;
	double dummy;

	st->op = RFS_OP_FOCAL;
	st->u.focal.size = 0;
	st->u.focal.stat = RFS_FOCAL_MEAN;
	st->u.focal.shape = RFS_FOCAL_SQUARE;
	while (args_next(&it, &a)) {
		rc = arg_check(c, "focal", &a);
		if (rc)
			return rc;
		if (a.has_key) {
			if (tok_is(a.key, "size")) {
				slot = F_SIZE;
			} else if (tok_is(a.key, "stat")) {
				slot = F_STAT;
				i = tok_find(a.val, stat_names, N_STATS);
				if (i < 0)
					return focal_bad_word(c, a.val,
						"statistic", stat_names,
						N_STATS, "Statistics: "
						STATS_LIST);
			} else if (tok_is(a.key, "shape")) {
				slot = F_SHAPE;
				i = tok_find(a.val, shape_names, N_SHAPES);
				if (i < 0)
					return focal_bad_word(c, a.val, "shape",
						shape_names, N_SHAPES,
						"Shapes: " SHAPES_LIST);
			} else {
				return unknown_option(c, "focal", &a, keys, 3,
						      "size=, stat=, shape=");
			}
		} else if ((i = tok_find(a.val, stat_names, N_STATS)) >= 0) {
			/* Numbers, statistics and shapes cannot be mistaken
			 * for one another, so positionals go in any order. */
			slot = F_STAT;
		} else if ((i = tok_find(a.val, shape_names, N_SHAPES)) >= 0) {
			slot = F_SHAPE;
		} else if (parse_number(a.val, true, &dummy) != NUM_SYNTAX) {
			slot = F_SIZE;
		} else {
			return focal_bad_word(c, a.val, "size, statistic or "
					      "shape", words, 9, "Statistics: "
					      STATS_LIST "; shapes: "
					      SHAPES_LIST " (" FOCAL_USAGE ")");
		}
		if (have[slot])
			return twice(c, "focal", slot_name[slot], &a);
		have[slot] = true;
		switch (slot) {
		case F_SIZE:
			size_tok = a.val;
			if (!all_digits(a.val))
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
		return fail(c, -RFS_E_BAD_ARG,
			    "focal: a window SIZE is required: " FOCAL_USAGE);
	v = st->u.focal.size;
	if (v < 3 || v > RFS_FOCAL_MAX_SIZE || v % 2 == 0)
		return focal_bad_size(c, size_tok, v);
	if (st->u.focal.stat == RFS_FOCAL_MEDIAN && v > RFS_FOCAL_MAX_MEDIAN)
		return fail(c, -RFS_E_BAD_ARG,
			    "focal: median takes windows up to %d (its cost "
			    "grows with SIZE squared), got %d (try focal=%d,"
			    "median)", RFS_FOCAL_MAX_MEDIAN, v,
			    RFS_FOCAL_MAX_MEDIAN);

	snprintf(num, sizeof(num), "%d", v);
	cb_str(cb, "focal=");
	cb_str(cb, num);
	cb_str(cb, ",");
	cb_str(cb, stat_names[st->u.focal.stat]);
	cb_str(cb, ",");
	cb_str(cb, shape_names[st->u.focal.shape]);
	return 0;
}

/* ------------------------------------------------------------------ */
/* reclass=a:b:v[,a:b:v...][,other=V] */

static void range_text(const struct rfs_range *r, char *buf, size_t len)
{
	char lo[48], hi[48], v[48];

	rfs_format_double(r->lo, lo, sizeof(lo));
	rfs_format_double(r->hi, hi, sizeof(hi));
	rfs_format_double(r->value, v, sizeof(v));
	snprintf(buf, len, "%s:%s:%s", lo, hi, v);
}

static int reclass_number(struct pctx *c, struct tok range, struct tok t,
			  const char *what, bool allow_inf, double *out)
{
	enum num_err ne = parse_number(t, allow_inf, out);

	if (ne == NUM_OK)
		return 0;
	if (ne == NUM_LONG)
		return fail(c, -RFS_E_TOO_LONG,
			    "reclass: a number in '" TOKF "' is longer than %d "
			    "characters", TOKA(range), NUM_MAX);
	return fail(c, -RFS_E_BAD_ARG,
		    "reclass: in range '" TOKF "', %s '" TOKF "' is not "
		    "allowed: %s (%s)", TOKA(range), what, TOKA(t),
		    num_why(ne),
		    allow_inf ? "a and b are numbers, inf or -inf" :
		    "v is a finite number");
}

static int parse_range(struct pctx *c, struct tok t, struct rfs_range *r)
{
	struct tok a, rest, b, v, extra;
	char txt[160];
	int rc;

	if (!tok_split(t, ':', &a, &rest) || !tok_split(rest, ':', &b, &v) ||
	    tok_split(v, ':', &v, &extra))
		return fail(c, -RFS_E_BAD_ARG,
			    "reclass: '" TOKF "' is not a range a:b:v (e.g. "
			    "0:100:1 maps [0,100) to 1; a and b may be inf or "
			    "-inf)", TOKA(t));
	rc = reclass_number(c, t, a, "a", true, &r->lo);
	if (!rc)
		rc = reclass_number(c, t, b, "b", true, &r->hi);
	if (!rc)
		rc = reclass_number(c, t, v, "v", false, &r->value);
	if (rc)
		return rc;
	if (!(r->lo < r->hi)) {
		range_text(r, txt, sizeof(txt));
		return fail(c, -RFS_E_BAD_ARG,
			    "reclass: range %s is empty: a must be less than "
			    "b (ranges are half-open [a,b), e.g. 0:100:1)",
			    txt);
	}
	return 0;
}

static int parse_reclass(struct pctx *c, struct tok argtext,
			 struct rfs_step *st, struct cbuf *cb)
{
	static const char *const keys[] = { "other" };
	struct args it = { argtext, false };
	struct arg a;
	struct rfs_range tmp, *r = st->u.reclass.ranges;
	bool have_other = false;
	char t1[160], t2[160];
	enum num_err ne;
	int i, j, n = 0, rc;

	st->op = RFS_OP_RECLASS;
	st->u.reclass.has_other = false;
	st->u.reclass.other = 0;
	while (args_next(&it, &a)) {
		rc = arg_check(c, "reclass", &a);
		if (rc)
			return rc;
		if (!a.has_key) {
			if (n == RFS_CHAIN_MAX_RANGES)
				return fail(c, -RFS_E_TOO_LONG,
					    "reclass: at most %d ranges",
					    RFS_CHAIN_MAX_RANGES);
			rc = parse_range(c, a.val, &r[n]);
			if (rc)
				return rc;
			n++;
		} else if (tok_is(a.key, "other")) {
			if (have_other)
				return twice(c, "reclass", "other", &a);
			have_other = true;
			if (tok_is(a.val, "nodata"))
				continue;
			ne = parse_number(a.val, false, &st->u.reclass.other);
			if (ne == NUM_LONG)
				return fail(c, -RFS_E_TOO_LONG,
					    "reclass: other value is longer "
					    "than %d characters", NUM_MAX);
			if (ne != NUM_OK)
				return fail(c, -RFS_E_BAD_ARG,
					    "reclass: other must be a finite "
					    "number or 'nodata', got '" TOKF
					    "': %s", TOKA(a.val), num_why(ne));
			st->u.reclass.has_other = true;
		} else {
			return unknown_option(c, "reclass", &a, keys, 1,
					      "other=");
		}
	}
	if (n == 0)
		return fail(c, -RFS_E_BAD_ARG,
			    "reclass: at least one range a:b:v is required: "
			    RECLASS_USAGE);

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
			return fail(c, -RFS_E_BAD_ARG,
				    "reclass: ranges %s and %s overlap; each "
				    "value may fall in one range only (ranges "
				    "are half-open [a,b): 0:100:1,100:200:2 "
				    "do not overlap)", t1, t2);
		}
	}
	st->u.reclass.n = n;

	cb_str(cb, "reclass=");
	for (i = 0; i < n; i++) {
		if (i)
			cb_str(cb, ",");
		cb_num(cb, r[i].lo);
		cb_str(cb, ":");
		cb_num(cb, r[i].hi);
		cb_str(cb, ":");
		cb_num(cb, r[i].value);
	}
	cb_str(cb, ",other=");
	if (st->u.reclass.has_other)
		cb_num(cb, st->u.reclass.other);
	else
		cb_str(cb, "nodata");
	return 0;
}

/* ------------------------------------------------------------------ */
/* Shared by the steps of issue 3 */

/* A number argument of step op, named what in messages. */
static int step_number(struct pctx *c, const char *op, const char *what,
		       struct tok t, double *out)
{
	enum num_err ne = parse_number(t, false, out);

	if (ne == NUM_OK)
		return 0;
	if (ne == NUM_LONG)
		return fail(c, -RFS_E_TOO_LONG,
			    "%s: %s is longer than %d characters", op, what,
			    NUM_MAX);
	return fail(c, -RFS_E_BAD_ARG, "%s: %s must be a finite number, got '"
		    TOKF "': %s", op, what, TOKA(t), num_why(ne));
}

/* A positive integer argument; values too large for any limit here read
 * as INT_MAX.  -1 if t is not all digits. */
static int int_value(struct tok t)
{
	size_t i = 0;
	int v = 0;

	if (!all_digits(t))
		return -1;
	while (i < t.n && t.p[i] == '0')
		i++;
	if (t.n - i > 9)
		return 0x7fffffff;
	for (; i < t.n; i++)
		v = v * 10 + (t.p[i] - '0');
	return v;
}

static void cb_int(struct cbuf *b, int v)
{
	char t[16];

	snprintf(t, sizeof(t), "%d", v);
	cb_str(b, t);
}

/* A band number 1..RFS_BAND_MAX of step op. */
static int band_number(struct pctx *c, const char *op, struct tok t, int *out,
		       const char *usage)
{
	int v = int_value(t);

	if (v < 1 || v > RFS_BAND_MAX)
		return fail(c, -RFS_E_BAD_ARG,
			    "%s: a band is a whole number from 1 to %d (the "
			    "first band is 1), got '" TOKF "': %s", op,
			    RFS_BAND_MAX, TOKA(t), usage);
	*out = v;
	return 0;
}

static bool is_resampling_word(struct tok t)
{
	return tok_is(t, "nearest") || tok_find(t, rs_names, N_RS) >= 0 ||
	       suggest(t, rs_names, N_RS) != NULL;
}

/* ------------------------------------------------------------------ */
/* Terrain: slope, aspect, hillshade, roughness, tri, tpi */

static int parse_slope(struct pctx *c, struct tok argtext, struct rfs_step *st,
		       struct cbuf *cb)
{
	static const char *const units[] = { "degrees", "percent" };
	struct args it = { argtext, false };
	struct arg a;
	bool have = false;
	const char *s;
	int rc, i;

	st->op = RFS_OP_SLOPE;
	st->u.slope.percent = false;
	while (argtext.n && args_next(&it, &a)) {
		rc = arg_check(c, "slope", &a);
		if (rc)
			return rc;
		if (have)
			return twice(c, "slope", "unit", &a);
		have = true;
		i = a.has_key ? -1 : tok_find(a.val, units, 2);
		if (i < 0) {
			s = a.has_key ? NULL : suggest(a.val, units, 2);
			if (s)
				return fail(c, -RFS_E_BAD_ARG,
					    "slope: '" TOKF "' is not a unit; "
					    "did you mean '%s'? " SLOPE_USAGE,
					    TOKA(a.all), s);
			return fail(c, -RFS_E_BAD_ARG,
				    "slope: '" TOKF "' is not a unit (degrees "
				    "or percent): " SLOPE_USAGE, TOKA(a.all));
		}
		st->u.slope.percent = i == 1;
	}
	cb_str(cb, "slope=");
	cb_str(cb, units[st->u.slope.percent]);
	return 0;
}

static int parse_hillshade(struct pctx *c, struct tok argtext,
			   struct rfs_step *st, struct cbuf *cb)
{
	static const char *const keys[] = { "az", "alt", "z" };
	struct args it = { argtext, false };
	struct arg a;
	bool have_az = false, have_alt = false, have_z = false;
	int npos = 0, rc;
	double v;

	st->op = RFS_OP_HILLSHADE;
	st->u.hillshade.azimuth = 315;
	st->u.hillshade.altitude = 45;
	st->u.hillshade.z = 1;
	st->u.hillshade.multidirectional = false;
	while (argtext.n && args_next(&it, &a)) {
		rc = arg_check(c, "hillshade", &a);
		if (rc)
			return rc;
		if (!a.has_key && tok_is(a.val, "multidirectional")) {
			if (st->u.hillshade.multidirectional)
				return twice(c, "hillshade",
					     "multidirectional", &a);
			st->u.hillshade.multidirectional = true;
			continue;
		}
		int which;	/* 0 azimuth, 1 altitude, 2 z */
		if (!a.has_key) {
			if (parse_number(a.val, false, &v) == NUM_SYNTAX) {
				const char *s = suggest(a.val,
					(const char *const[]){
						"multidirectional" }, 1);
				return fail(c, -RFS_E_BAD_ARG,
					    "hillshade: '" TOKF "' is neither "
					    "a number nor 'multidirectional'"
					    "%s: " HILLSHADE_USAGE,
					    TOKA(a.val), s ? " (did you mean "
					    "'multidirectional'?)" : "");
			}
			if (npos == 2)
				return fail(c, -RFS_E_BAD_ARG,
					    "hillshade: at most two numbers "
					    "(AZIMUTH,ALTITUDE) come before "
					    "the options, got a third, '" TOKF
					    "': " HILLSHADE_USAGE,
					    TOKA(a.val));
			which = npos++;
		} else if (tok_is(a.key, "az") || tok_is(a.key, "azimuth")) {
			which = 0;
		} else if (tok_is(a.key, "alt") || tok_is(a.key, "altitude")) {
			which = 1;
		} else if (tok_is(a.key, "z")) {
			which = 2;
		} else {
			return unknown_option(c, "hillshade", &a, keys, 3,
					      "az=, alt=, z=");
		}
		switch (which) {
		case 0:
			if (have_az)
				return twice(c, "hillshade", "azimuth", &a);
			have_az = true;
			rc = step_number(c, "hillshade", "AZIMUTH", a.val, &v);
			if (rc)
				return rc;
			if (!(v >= 0 && v < 360))
				return fail(c, -RFS_E_BAD_ARG,
					    "hillshade: AZIMUTH is in degrees "
					    "clockwise from north, 0 <= "
					    "AZIMUTH < 360, got '" TOKF "' (e.g. "
					    "hillshade=315,45)", TOKA(a.val));
			st->u.hillshade.azimuth = v;
			break;
		case 1:
			if (have_alt)
				return twice(c, "hillshade", "altitude", &a);
			have_alt = true;
			rc = step_number(c, "hillshade", "ALTITUDE", a.val, &v);
			if (rc)
				return rc;
			if (!(v >= 0 && v <= 90))
				return fail(c, -RFS_E_BAD_ARG,
					    "hillshade: ALTITUDE is the sun's "
					    "height in degrees, 0 to 90, got '"
					    TOKF "' (e.g. hillshade=315,45)",
					    TOKA(a.val));
			st->u.hillshade.altitude = v;
			break;
		default:
			if (have_z)
				return twice(c, "hillshade", "z", &a);
			have_z = true;
			rc = step_number(c, "hillshade", "z", a.val, &v);
			if (rc)
				return rc;
			if (!(v > 0))
				return fail(c, -RFS_E_BAD_ARG,
					    "hillshade: z (vertical "
					    "exaggeration) must be positive, "
					    "got '" TOKF "' (e.g. z=2)",
					    TOKA(a.val));
			st->u.hillshade.z = v;
			break;
		}
	}
	if (st->u.hillshade.multidirectional && have_az)
		return fail(c, -RFS_E_BAD_ARG,
			    "hillshade: multidirectional lights from several "
			    "azimuths, so it takes no AZIMUTH (gdaldem refuses "
			    "-az with -multidirectional); give only the "
			    "altitude, e.g. hillshade=alt=45,multidirectional");

	cb_str(cb, "hillshade=");
	if (st->u.hillshade.multidirectional) {
		/* unused: one canonical form, one struct */
		st->u.hillshade.azimuth = 0;
		cb_str(cb, "alt=");
	} else {
		cb_num(cb, st->u.hillshade.azimuth);
		cb_str(cb, ",");
	}
	cb_num(cb, st->u.hillshade.altitude);
	cb_str(cb, ",z=");
	cb_num(cb, st->u.hillshade.z);
	if (st->u.hillshade.multidirectional)
		cb_str(cb, ",multidirectional");
	return 0;
}

/* aspect, roughness, tri, tpi: no arguments. */
static int parse_bare(struct pctx *c, enum rfs_op op, struct tok argtext,
		      struct rfs_step *st, struct cbuf *cb)
{
	if (argtext.n)
		return fail(c, -RFS_E_BAD_ARG,
			    "%s takes no arguments, got '" TOKF "'; write "
			    "just @%s (e.g. dem.tif@%s)", op_names[op],
			    TOKA(argtext), op_names[op], op_names[op]);
	st->op = op;
	cb_str(cb, op_names[op]);
	return 0;
}

/* ------------------------------------------------------------------ */
/* res=R[,RESAMPLING] and size=W,H[,RESAMPLING] */

static int parse_res(struct pctx *c, struct tok argtext, struct rfs_step *st,
		     struct cbuf *cb)
{
	static const char *const keys[] = { "res", "resampling" };
	struct args it = { argtext, false };
	struct arg a;
	bool have_res = false, have_rs = false, is_rs;
	int rc;

	st->op = RFS_OP_RES;
	st->u.res.resampling = RFS_RS_NEAR;
	while (args_next(&it, &a)) {
		rc = arg_check(c, "res", &a);
		if (rc)
			return rc;
		if (a.has_key && !tok_is(a.key, "res") &&
		    !tok_is(a.key, "resampling"))
			return unknown_option(c, "res", &a, keys, 2,
					      "res=, resampling=");
		/* a number is the size, any word a method */
		is_rs = a.has_key ? tok_is(a.key, "resampling") :
			parse_number(a.val, false, &st->u.res.res) ==
			NUM_SYNTAX;
		if (is_rs) {
			if (have_rs)
				return twice(c, "res", "resampling method",
					     &a);
			have_rs = true;
			rc = parse_resampling(c, "res", a.val,
					      &st->u.res.resampling);
			if (rc)
				return rc;
			continue;
		}
		if (have_res)
			return twice(c, "res", "pixel size", &a);
		have_res = true;
		rc = step_number(c, "res", "R", a.val, &st->u.res.res);
		if (rc)
			return rc;
		if (!(st->u.res.res > 0))
			return fail(c, -RFS_E_BAD_ARG,
				    "res: R must be a positive pixel size in "
				    "the source CRS's units, got '" TOKF "' "
				    "(e.g. res=30)", TOKA(a.val));
	}
	if (!have_res)
		return fail(c, -RFS_E_BAD_ARG,
			    "res: a pixel size R is required: " RES_USAGE);
	cb_str(cb, "res=");
	cb_num(cb, st->u.res.res);
	cb_str(cb, ",");
	cb_str(cb, rs_names[st->u.res.resampling]);
	return 0;
}

static int parse_size(struct pctx *c, struct tok argtext, struct rfs_step *st,
		      struct cbuf *cb)
{
	static const char *const keys[] = { "resampling" };
	struct args it = { argtext, false };
	struct arg a;
	bool have_rs = false;
	int n = 0, v, rc;

	st->op = RFS_OP_SIZE;
	st->u.size.resampling = RFS_RS_NEAR;
	while (args_next(&it, &a)) {
		rc = arg_check(c, "size", &a);
		if (rc)
			return rc;
		if (a.has_key && !tok_is(a.key, "resampling"))
			return unknown_option(c, "size", &a, keys, 1,
					      "resampling=");
		if (a.has_key || (n == 2 && !all_digits(a.val)) ||
		    is_resampling_word(a.val)) {
			if (have_rs)
				return twice(c, "size", "resampling method",
					     &a);
			have_rs = true;
			rc = parse_resampling(c, "size", a.val,
					      &st->u.size.resampling);
			if (rc)
				return rc;
			continue;
		}
		if (n == 2)
			return fail(c, -RFS_E_BAD_ARG,
				    "size: only W and H, got a third number '"
				    TOKF "': " SIZE_USAGE, TOKA(a.val));
		v = int_value(a.val);
		if (v < 1 || v > RFS_SIZE_MAX)
			return fail(c, -RFS_E_BAD_ARG,
				    "size: %s must be a whole number of pixels "
				    "from 1 to %d, got '" TOKF "': " SIZE_USAGE,
				    n ? "H" : "W", RFS_SIZE_MAX, TOKA(a.val));
		if (n++ == 0)
			st->u.size.width = v;
		else
			st->u.size.height = v;
	}
	if (n < 2)
		return fail(c, -RFS_E_BAD_ARG,
			    "size: both W and H are required: " SIZE_USAGE);
	cb_str(cb, "size=");
	cb_int(cb, st->u.size.width);
	cb_str(cb, ",");
	cb_int(cb, st->u.size.height);
	cb_str(cb, ",");
	cb_str(cb, rs_names[st->u.size.resampling]);
	return 0;
}

/* ------------------------------------------------------------------ */
/* clip=MINX,MINY,MAXX,MAXY[,CRS] */

static int parse_clip(struct pctx *c, struct tok argtext, struct rfs_step *st,
		      struct cbuf *cb)
{
	static const char *const keys[] = { "crs" };
	static const char *const what[] = { "MINX", "MINY", "MAXX", "MAXY" };
	struct args it = { argtext, false };
	struct arg a;
	double v[4];
	bool have_crs = false;
	int n = 0, rc;

	st->op = RFS_OP_CLIP;
	st->u.clip.crs[0] = '\0';
	while (args_next(&it, &a)) {
		rc = arg_check(c, "clip", &a);
		if (rc)
			return rc;
		if (a.has_key && !tok_is(a.key, "crs"))
			return unknown_option(c, "clip", &a, keys, 1, "crs=");
		if (a.has_key || memchr(a.val.p, ':', a.val.n)) {
			if (have_crs)
				return twice(c, "clip", "CRS", &a);
			have_crs = true;
			rc = parse_crs(c, "clip", a.val, st->u.clip.crs);
			if (rc)
				return rc;
			continue;
		}
		if (n == 4)
			return fail(c, -RFS_E_BAD_ARG,
				    "clip: a fifth value '" TOKF "' is neither "
				    "a CRS (AUTHORITY:CODE) nor allowed: "
				    CLIP_USAGE, TOKA(a.val));
		rc = step_number(c, "clip", what[n], a.val, &v[n]);
		if (rc)
			return rc;
		n++;
	}
	if (n < 4)
		return fail(c, -RFS_E_BAD_ARG,
			    "clip: four bounds are required, got %d: "
			    CLIP_USAGE, n);
	if (!(v[0] < v[2]) || !(v[1] < v[3]))
		return fail(c, -RFS_E_BAD_ARG,
			    "clip: bounds are MINX,MINY,MAXX,MAXY with MINX < "
			    "MAXX and MINY < MAXY; got %s (e.g. "
			    "clip=500000,4100000,510000,4110000)",
			    !(v[0] < v[2]) ? "MINX >= MAXX" : "MINY >= MAXY");
	st->u.clip.minx = v[0];
	st->u.clip.miny = v[1];
	st->u.clip.maxx = v[2];
	st->u.clip.maxy = v[3];
	cb_str(cb, "clip=");
	for (n = 0; n < 4; n++) {
		if (n)
			cb_str(cb, ",");
		cb_num(cb, v[n]);
	}
	if (have_crs) {
		cb_str(cb, ",");
		cb_str(cb, st->u.clip.crs);
	}
	return 0;
}

/* ------------------------------------------------------------------ */
/* band=N[,N...], type=TYPE, nodata=V|none, ndi=A,B */

static int no_options(struct pctx *c, const char *op, const struct arg *a,
		      const char *usage)
{
	return fail(c, -RFS_E_BAD_ARG, "%s: takes no options, got '" TOKF
		    "': %s", op, TOKA(a->all), usage);
}

static int parse_band(struct pctx *c, struct tok argtext, struct rfs_step *st,
		      struct cbuf *cb)
{
	struct args it = { argtext, false };
	struct arg a;
	int rc, i;

	st->op = RFS_OP_BAND;
	st->u.band.n = 0;
	while (args_next(&it, &a)) {
		rc = arg_check(c, "band", &a);
		if (rc)
			return rc;
		if (a.has_key)
			return no_options(c, "band", &a, BAND_USAGE);
		if (st->u.band.n == RFS_CHAIN_MAX_BANDS)
			return fail(c, -RFS_E_TOO_LONG,
				    "band: at most %d bands",
				    RFS_CHAIN_MAX_BANDS);
		rc = band_number(c, "band", a.val,
				 &st->u.band.bands[st->u.band.n], BAND_USAGE);
		if (rc)
			return rc;
		st->u.band.n++;
	}
	cb_str(cb, "band=");
	for (i = 0; i < st->u.band.n; i++) {
		if (i)
			cb_str(cb, ",");
		cb_int(cb, st->u.band.bands[i]);
	}
	return 0;
}

static int parse_type(struct pctx *c, struct tok argtext, struct rfs_step *st,
		      struct cbuf *cb)
{
	struct tok t = argtext;
	const char *s;
	int i;

	st->op = RFS_OP_TYPE;
	i = tok_find(t, type_keys, N_TYPES);
	if (i < 0) {
		s = suggest(t, type_keys, N_TYPES);
		if (s)
			return fail(c, -RFS_E_BAD_ARG,
				    "type: '" TOKF "' is not a type; did you "
				    "mean '%s'? Types: " TYPES_LIST, TOKA(t),
				    type_names[tok_find((struct tok){ s,
					strlen(s) }, type_keys, N_TYPES)]);
		return fail(c, -RFS_E_BAD_ARG,
			    "type: '" TOKF "' is not a type. Types: "
			    TYPES_LIST " (e.g. type=Byte)", TOKA(t));
	}
	st->u.type.type = (enum rfs_type)i;
	cb_str(cb, "type=");
	cb_str(cb, type_names[i]);
	return 0;
}

static int parse_nodata(struct pctx *c, struct tok argtext,
			struct rfs_step *st, struct cbuf *cb)
{
	struct tok t = argtext;
	enum num_err ne;

	st->op = RFS_OP_NODATA;
	st->u.nodata.none = tok_is(t, "none");
	st->u.nodata.value = 0;
	cb_str(cb, "nodata=");
	if (st->u.nodata.none) {
		cb_str(cb, "none");
		return 0;
	}
	ne = parse_number(t, false, &st->u.nodata.value);
	if (ne == NUM_LONG)
		return fail(c, -RFS_E_TOO_LONG,
			    "nodata: V is longer than %d characters", NUM_MAX);
	if (ne != NUM_OK)
		return fail(c, -RFS_E_BAD_ARG,
			    "nodata: V must be a finite number or 'none', got '"
			    TOKF "': %s (" NODATA_USAGE ")", TOKA(t),
			    num_why(ne));
	cb_num(cb, st->u.nodata.value);
	return 0;
}

static int parse_ndi(struct pctx *c, struct tok argtext, struct rfs_step *st,
		     struct cbuf *cb)
{
	struct args it = { argtext, false };
	struct arg a;
	int v[2], n = 0, rc;

	st->op = RFS_OP_NDI;
	while (args_next(&it, &a)) {
		rc = arg_check(c, "ndi", &a);
		if (rc)
			return rc;
		if (a.has_key)
			return no_options(c, "ndi", &a, NDI_USAGE);
		if (n == 2)
			return fail(c, -RFS_E_BAD_ARG,
				    "ndi: exactly two bands, got a third '"
				    TOKF "': " NDI_USAGE, TOKA(a.val));
		rc = band_number(c, "ndi", a.val, &v[n], NDI_USAGE);
		if (rc)
			return rc;
		n++;
	}
	if (n < 2)
		return fail(c, -RFS_E_BAD_ARG,
			    "ndi: two bands A,B are required: " NDI_USAGE);
	if (v[0] == v[1])
		return fail(c, -RFS_E_BAD_ARG,
			    "ndi: A and B must be different bands (the "
			    "difference of a band with itself is 0): "
			    NDI_USAGE);
	st->u.ndi.a = v[0];
	st->u.ndi.b = v[1];
	cb_str(cb, "ndi=");
	cb_int(cb, v[0]);
	cb_str(cb, ",");
	cb_int(cb, v[1]);
	return 0;
}

/* ------------------------------------------------------------------ */
/* fmt=gtiff|cog|png[,STRETCH]: the output format (design note 5) */

static int fmt_bad_word(struct pctx *c, struct tok t)
{
	static const char *const words[] = {
		"gtiff", "cog", "png", "minmax", "p2",
	};
	const char *s = suggest(t, words, 5);

	if (s)
		return fail(c, -RFS_E_BAD_ARG, "fmt: '" TOKF "' is not a format "
			    "or stretch; did you mean '%s'? " FMT_USAGE,
			    TOKA(t), s);
	return fail(c, -RFS_E_BAD_ARG, "fmt: '" TOKF "' is not a format or "
		    "stretch: " FMT_USAGE, TOKA(t));
}

static int parse_fmt(struct pctx *c, struct tok argtext, struct rfs_chain *out)
{
	static const char *const keys[] = { "format", "stretch" };
	struct args it = { argtext, false };
	struct arg a;
	bool have_fmt = false, have_stretch = false;
	int i, rc;

	out->format = RFS_FMT_GTIFF;
	out->stretch = RFS_STRETCH_MINMAX;
	while (args_next(&it, &a)) {
		rc = arg_check(c, "fmt", &a);
		if (rc)
			return rc;
		if (a.has_key && !tok_is(a.key, "format") &&
		    !tok_is(a.key, "stretch"))
			return unknown_option(c, "fmt", &a, keys, 2,
					      "format=, stretch=");
		if ((!a.has_key || tok_is(a.key, "format")) &&
		    (i = tok_find(a.val, format_names, N_FORMATS)) >= 0) {
			if (have_fmt)
				return twice(c, "fmt", "format", &a);
			have_fmt = true;
			out->format = (enum rfs_format)i;
		} else if ((!a.has_key || tok_is(a.key, "stretch")) &&
			   (i = tok_find(a.val, stretch_names,
					 N_STRETCHES)) >= 0) {
			if (have_stretch)
				return twice(c, "fmt", "stretch", &a);
			have_stretch = true;
			out->stretch = (enum rfs_stretch)i;
		} else {
			return fmt_bad_word(c, a.val);
		}
	}
	if (!have_fmt)
		return fail(c, -RFS_E_BAD_ARG,
			    "fmt: a format is required: " FMT_USAGE);
	if (have_stretch && out->format != RFS_FMT_PNG)
		return fail(c, -RFS_E_BAD_ARG,
			    "fmt: a stretch applies to png only, not %s (try "
			    "fmt=png,%s)", format_names[out->format],
			    stretch_names[out->stretch]);
	return 0;
}

/* A trailing ".tif", ".tiff" or ".png": the format it names, and t
 * shortened by it; -1 if t has none. */
static int strip_extension(struct tok *t)
{
	static const struct {
		const char *ext;
		enum rfs_format f;
	} exts[] = {
		{ ".tif", RFS_FMT_GTIFF }, { ".tiff", RFS_FMT_GTIFF },
		{ ".png", RFS_FMT_PNG },
	};

	for (size_t i = 0; i < sizeof(exts) / sizeof(exts[0]); i++) {
		struct tok tail;
		size_t l = strlen(exts[i].ext);

		if (t->n < l)
			continue;
		tail.p = t->p + t->n - l;
		tail.n = l;
		if (tok_is(tail, exts[i].ext)) {
			t->n -= l;
			return (int)exts[i].f;
		}
	}
	return -1;
}

/* Reconcile an fmt step (have_fmt) with a trailing extension (ext, or -1)
 * and write the canonical "@fmt=..." (design note 5). */
static int finish_format(struct pctx *c, struct rfs_chain *out, bool have_fmt,
			 int ext, struct cbuf *cb)
{
	if (ext >= 0 && !have_fmt) {
		out->format = (enum rfs_format)ext;
		out->stretch = RFS_STRETCH_MINMAX;
	} else if (ext >= 0 && !(ext == (int)out->format ||
				 (ext == RFS_FMT_GTIFF &&
				  out->format == RFS_FMT_COG))) {
		return fail(c, -RFS_E_BAD_ARG,
			    "the extension .%s contradicts fmt=%s; drop one "
			    "of them (e.g. dem.tif@focal=3.png or "
			    "dem.tif@focal=3@fmt=png)",
			    ext == RFS_FMT_PNG ? "png" : "tif",
			    format_names[out->format]);
	}
	if (out->format == RFS_FMT_GTIFF && out->nsteps > 0)
		return 0;
	cb_str(cb, "@fmt=");
	cb_str(cb, format_names[out->format]);
	if (out->format == RFS_FMT_PNG) {
		cb_str(cb, ",");
		cb_str(cb, stretch_names[out->stretch]);
	}
	return 0;
}

/* ------------------------------------------------------------------ */
/* The chain */

static bool chain_char(int c)
{
	return is_alnum(c) || (c && strchr("@=,:.-+_", c));
}

static int parse_step(struct pctx *c, struct tok t, struct rfs_step *st,
		      struct cbuf *cb)
{
	struct tok name, args;
	const char *s;
	bool has_eq;
	int op;

	has_eq = tok_split(t, '=', &name, &args);
	if (name.n == 0)
		return fail(c, -RFS_E_BAD_ARG,
			    "step '" TOKF "' has no name before '='; steps: "
			    STEPS_LIST, TOKA(t));
	op = tok_find(name, op_names, N_OPS);
	if (op < 0) {
		s = suggest(name, op_names, N_OPS);
		if (s)
			return fail(c, -RFS_E_UNKNOWN_STEP,
				    "'" TOKF "' is not a step; did you mean "
				    "'%s'? Steps: " STEPS_LIST, TOKA(name), s);
		return fail(c, -RFS_E_UNKNOWN_STEP,
			    "'" TOKF "' is not a step. Steps: " STEPS_LIST
			    " (e.g. dem.tif@proj=EPSG:3857@focal=3)",
			    TOKA(name));
	}
	/* Terrain steps have defaults for everything: a bare name is a
	 * whole step ("dem.tif@slope"). */
	if (!has_eq && (op == RFS_OP_SLOPE || op == RFS_OP_ASPECT ||
			op == RFS_OP_HILLSHADE || op == RFS_OP_ROUGHNESS ||
			op == RFS_OP_TRI || op == RFS_OP_TPI))
		args.n = 0;
	else if (!has_eq || args.n == 0) {
		static const char *const usage[] = {
			[RFS_OP_PROJ] = PROJ_USAGE,
			[RFS_OP_FOCAL] = FOCAL_USAGE,
			[RFS_OP_RECLASS] = RECLASS_USAGE,
			[RFS_OP_SLOPE] = SLOPE_USAGE,
			[RFS_OP_ASPECT] = "aspect, with no '='",
			[RFS_OP_HILLSHADE] = HILLSHADE_USAGE,
			[RFS_OP_ROUGHNESS] = "roughness, with no '='",
			[RFS_OP_TRI] = "tri, with no '='",
			[RFS_OP_TPI] = "tpi, with no '='",
			[RFS_OP_RES] = RES_USAGE,
			[RFS_OP_SIZE] = SIZE_USAGE,
			[RFS_OP_CLIP] = CLIP_USAGE,
			[RFS_OP_BAND] = BAND_USAGE,
			[RFS_OP_TYPE] = TYPE_USAGE,
			[RFS_OP_NODATA] = NODATA_USAGE,
			[RFS_OP_NDI] = NDI_USAGE,
		};
		if (has_eq && args.n == 0 && op >= RFS_OP_SLOPE &&
		    op <= RFS_OP_TPI)
			return fail(c, -RFS_E_BAD_ARG,
				    "%s: nothing after '='; write %s",
				    op_names[op], usage[op]);
		return fail(c, -RFS_E_BAD_ARG, "%s needs arguments: %s",
			    op_names[op], usage[op]);
	}
	switch (op) {
	case RFS_OP_PROJ:
		return parse_proj(c, args, st, cb);
	case RFS_OP_FOCAL:
		return parse_focal(c, args, st, cb);
	case RFS_OP_RECLASS:
		return parse_reclass(c, args, st, cb);
	case RFS_OP_SLOPE:
		return parse_slope(c, args, st, cb);
	case RFS_OP_HILLSHADE:
		return parse_hillshade(c, args, st, cb);
	case RFS_OP_ASPECT:
	case RFS_OP_ROUGHNESS:
	case RFS_OP_TRI:
	case RFS_OP_TPI:
		return parse_bare(c, (enum rfs_op)op, args, st, cb);
	case RFS_OP_RES:
		return parse_res(c, args, st, cb);
	case RFS_OP_SIZE:
		return parse_size(c, args, st, cb);
	case RFS_OP_CLIP:
		return parse_clip(c, args, st, cb);
	case RFS_OP_BAND:
		return parse_band(c, args, st, cb);
	case RFS_OP_TYPE:
		return parse_type(c, args, st, cb);
	case RFS_OP_NODATA:
		return parse_nodata(c, args, st, cb);
	default:
		return parse_ndi(c, args, st, cb);
	}
}

int rfs_chain_parse(const char *text, struct rfs_chain *out,
		    char *msg, size_t msglen)
{
	struct pctx c = { msg, msglen };
	struct cbuf cb;
	struct tok rest, step, name, args;
	size_t n, i;
	bool more, have_fmt = false;
	int rc, ext;

	if (msg && msglen)
		msg[0] = '\0';
	if (!text)
		return fail(&c, -RFS_E_BAD_ARG, "no chain given");
	n = strnlen(text, CHAIN_INPUT_MAX + 1);
	if (n > CHAIN_INPUT_MAX)
		return fail(&c, -RFS_E_TOO_LONG,
			    "the chain is longer than %d characters",
			    CHAIN_INPUT_MAX);
	for (i = 0; i < n; i++) {
		unsigned char ch = (unsigned char)text[i];

		if (ch == '/')
			return fail(&c, -RFS_E_BAD_ARG,
				    "'/' is not allowed in a chain: steps "
				    "come after the file name, as in "
				    "dem.tif@focal=3");
		if (ch == '.' && text[i + 1] == '.')
			return fail(&c, -RFS_E_BAD_ARG,
				    "'..' is not allowed in a chain (numbers "
				    "are written like 0.5)");
		if (!chain_char(ch)) {
			if (ch > ' ' && ch < 0x7f)
				return fail(&c, -RFS_E_BAD_ARG,
					    "character '%c' is not allowed in "
					    "a chain; use only letters, "
					    "digits and @ = , : . - + _", ch);
			return fail(&c, -RFS_E_BAD_ARG,
				    "byte 0x%02x is not allowed in a chain; "
				    "use only letters, digits and "
				    "@ = , : . - + _", ch);
		}
	}

	memset(out, 0, sizeof(*out));
	cb.p = out->canonical;
	cb.n = 0;
	cb.cap = sizeof(out->canonical);
	cb.over = false;
	rest.p = text;
	rest.n = n;
	if (rest.n && rest.p[0] == '@') {
		rest.p++;
		rest.n--;
	}
	ext = strip_extension(&rest);
	if (rest.n == 0)
		return fail(&c, -RFS_E_BAD_ARG,
			    "no steps after '@' (e.g. dem.tif@focal=3)");
	do {
		more = tok_split(rest, '@', &step, &rest);
		if (step.n == 0)
			return fail(&c, -RFS_E_BAD_ARG, more ?
				    "empty step ('@@'); remove one '@'" :
				    "the name ends with '@'; remove it or "
				    "add a step after it");
		tok_split(step, '=', &name, &args);
		if (tok_is(name, "fmt")) {
			if (more)
				return fail(&c, -RFS_E_BAD_ARG,
					    "fmt= must be the last step (it "
					    "names the output's format): "
					    FMT_USAGE);
			if (args.n == 0)
				return fail(&c, -RFS_E_BAD_ARG,
					    "fmt needs arguments: " FMT_USAGE);
			rc = parse_fmt(&c, args, out);
			if (rc)
				return rc;
			have_fmt = true;
			break;
		}
		if (out->nsteps == RFS_CHAIN_MAX_STEPS)
			return fail(&c, -RFS_E_TOO_LONG,
				    "more than %d steps in one chain",
				    RFS_CHAIN_MAX_STEPS);
		cb_str(&cb, "@");
		rc = parse_step(&c, step, &out->steps[out->nsteps], &cb);
		if (rc)
			return rc;
		out->nsteps++;
		if (cb.over)
			return fail(&c, -RFS_E_TOO_LONG,
				    "the canonical chain would be longer than "
				    "%d characters; use fewer steps or ranges",
				    RFS_CHAIN_TEXT_MAX - 1);
	} while (more);
	rc = finish_format(&c, out, have_fmt, ext, &cb);
	if (rc)
		return rc;
	if (cb.over)
		return fail(&c, -RFS_E_TOO_LONG,
			    "the canonical chain would be longer than %d "
			    "characters; use fewer steps or ranges",
			    RFS_CHAIN_TEXT_MAX - 1);
	return 0;
}
