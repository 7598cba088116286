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

#define STEPS_LIST "proj, focal, reclass"
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
static int parse_crs(struct pctx *c, struct tok t, char *out)
{
	struct tok auth, code;
	struct cbuf b = { out, 0, RFS_CRS_MAX, false };
	size_t i;
	char ch;

	if (!tok_split(t, ':', &auth, &code)) {
		if (all_digits(t))
			return fail(c, -RFS_E_BAD_ARG,
				    "proj: CRS must be AUTHORITY:CODE, got '"
				    TOKF "' (try proj=EPSG:" TOKF ")",
				    TOKA(t), TOKA(t));
		return fail(c, -RFS_E_BAD_ARG,
			    "proj: '" TOKF "' is neither a CRS (AUTHORITY:CODE "
			    "such as EPSG:3857) nor a resampling method (%s)",
			    TOKA(t), RS_LIST);
	}
	if (auth.n == 0 || code.n == 0)
		return fail(c, -RFS_E_BAD_ARG,
			    "proj: CRS '" TOKF "' needs both an authority and "
			    "a code, as in EPSG:3857", TOKA(t));
	for (i = 0; i < auth.n; i++)
		if (!crs_auth_char((unsigned char)auth.p[i]))
			return fail(c, -RFS_E_BAD_ARG,
				    "proj: CRS authority '" TOKF "' may hold "
				    "only letters, digits and '_' (e.g. EPSG, "
				    "ESRI, IGNF)", TOKA(auth));
	for (i = 0; i < code.n; i++)
		if (!crs_code_char((unsigned char)code.p[i]))
			return fail(c, -RFS_E_BAD_ARG,
				    "proj: CRS code '" TOKF "' may hold only "
				    "letters, digits, '_' and '.' (e.g. "
				    "EPSG:3857, IGNF:LAMB93)", TOKA(code));
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
			    "proj: CRS '" TOKF "' is longer than %d characters",
			    TOKA(t), RFS_CRS_MAX - 1);
	return 0;
}

static int parse_resampling(struct pctx *c, struct tok t,
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
			    "proj: '" TOKF "' is not a resampling method; for "
			    "a pixel size write res=" TOKF, TOKA(t), TOKA(t));
	s = suggest(t, rs_names, N_RS);
	if (s)
		return fail(c, -RFS_E_BAD_ARG,
			    "proj: '" TOKF "' is not a resampling method; did "
			    "you mean '%s'? Methods: %s", TOKA(t), s, RS_LIST);
	return fail(c, -RFS_E_BAD_ARG,
		    "proj: '" TOKF "' is not a resampling method. Methods: %s",
		    TOKA(t), RS_LIST);
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
				rc = parse_resampling(c, a.val,
						      &st->u.proj.resampling);
			} else {
				if (have_crs)
					return twice(c, "proj", "CRS", &a);
				have_crs = true;
				rc = parse_crs(c, a.val, st->u.proj.crs);
			}
		} else if (tok_is(a.key, "crs")) {
			if (have_crs)
				return twice(c, "proj", "CRS", &a);
			have_crs = true;
			rc = parse_crs(c, a.val, st->u.proj.crs);
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
			rc = parse_resampling(c, a.val,
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
	if (!has_eq || args.n == 0) {
		static const char *const usage[] = {
			[RFS_OP_PROJ] = PROJ_USAGE,
			[RFS_OP_FOCAL] = FOCAL_USAGE,
			[RFS_OP_RECLASS] = RECLASS_USAGE,
		};
		return fail(c, -RFS_E_BAD_ARG, "%s needs arguments: %s",
			    op_names[op], usage[op]);
	}
	switch (op) {
	case RFS_OP_PROJ:
		return parse_proj(c, args, st, cb);
	case RFS_OP_FOCAL:
		return parse_focal(c, args, st, cb);
	default:
		return parse_reclass(c, args, st, cb);
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
