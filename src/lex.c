/* lex.c - the grammar's shared pieces: tokens, "did you mean", numbers,
 * arguments, CRS codes and resampling names (see lex.h).
 *
 * Pure: no I/O, no allocation, no state but the const tables below.
 */
#include <assert.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lex.h"
#include "rasterfs/chain.h"
#include "rasterfs/err.h"

const char *const rfs_lex_rs_names[] = {
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
const int rfs_lex_n_rs = RFS_RS_SUM + 1;
_Static_assert(sizeof(rfs_lex_rs_names) / sizeof(rfs_lex_rs_names[0]) ==
	       RFS_RS_SUM + 1, "one name per resampling method");

const char *rfs_resampling_name(enum rfs_resampling r)
{
	return (unsigned)r < (unsigned)rfs_lex_n_rs ? rfs_lex_rs_names[r] :
						      "?";
}

/* ------------------------------------------------------------------ */
/* Tokens */

static int lower(int c)
{
	return c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c;
}

bool rfs_lex_is_digit(int c)
{
	return c >= '0' && c <= '9';
}

bool rfs_lex_is_alnum(int c)
{
	return rfs_lex_is_digit(c) || (c >= 'a' && c <= 'z') ||
	       (c >= 'A' && c <= 'Z');
}

/* ASCII case-insensitive: the parser does not depend on the locale. */
bool rfs_tok_is(struct rfs_tok t, const char *word)
{
	size_t i;

	for (i = 0; i < t.n; i++)
		if (word[i] == '\0' || lower((unsigned char)t.p[i]) != word[i])
			return false;
	return word[i] == '\0';
}

int rfs_tok_find(struct rfs_tok t, const char *const *names, int n)
{
	int i;

	for (i = 0; i < n; i++)
		if (rfs_tok_is(t, names[i]))
			return i;
	return -1;
}

/* Split t at the first c: *head before, *tail after.  False if no c. */
bool rfs_tok_split(struct rfs_tok t, char c, struct rfs_tok *head,
		   struct rfs_tok *tail)
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

bool rfs_tok_digits(struct rfs_tok t)
{
	size_t i;

	for (i = 0; i < t.n; i++)
		if (!rfs_lex_is_digit(t.p[i]))
			return false;
	return t.n > 0;
}

/* Optimal string alignment distance (Levenshtein plus adjacent
 * transpositions; Damerau 1964), case-insensitive. */
static int edit_distance(struct rfs_tok a, const char *b)
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
const char *rfs_tok_suggest(struct rfs_tok t, const char *const *names, int n)
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

int rfs_lex_fail(struct rfs_pctx *c, int rc, const char *fmt, ...)
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

void rfs_cb_add(struct rfs_cbuf *b, const char *s, size_t n)
{
	if (b->over || b->n + n >= b->cap) {
		b->over = true;
		return;
	}
	memcpy(b->p + b->n, s, n);
	b->n += n;
	b->p[b->n] = '\0';
}

void rfs_cb_str(struct rfs_cbuf *b, const char *s)
{
	rfs_cb_add(b, s, strlen(s));
}

void rfs_cb_num(struct rfs_cbuf *b, double v)
{
	char t[48];
	int n = rfs_format_double(v, t, sizeof(t));

	assert(n > 0);
	rfs_cb_add(b, t, (size_t)n);
}

/* ------------------------------------------------------------------ */
/* Number tokens */

const char *rfs_lex_num_why(enum rfs_num_err e)
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
enum rfs_num_err rfs_lex_number(struct rfs_tok t, bool allow_inf, double *out)
{
	char buf[NUM_MAX + 1];
	struct rfs_tok rest;
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
	if (rfs_tok_is(rest, "inf")) {
		if (!allow_inf)
			return NUM_INF;
		*out = neg ? -INFINITY : INFINITY;
		return NUM_OK;
	}
	if (rfs_tok_is(rest, "nan"))
		return NUM_NAN;
	for (; i < t.n && rfs_lex_is_digit(t.p[i]); i++) {
		digits = true;
		nonzero |= t.p[i] != '0';
	}
	if (i < t.n && t.p[i] == '.') {
		for (i++; i < t.n && rfs_lex_is_digit(t.p[i]); i++) {
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
		if (i >= t.n || !rfs_lex_is_digit(t.p[i]))
			return NUM_SYNTAX;
		while (i < t.n && rfs_lex_is_digit(t.p[i]))
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

bool rfs_args_next(struct rfs_args *it, struct rfs_arg *a)
{
	struct rfs_tok tail;

	if (it->done)
		return false;
	if (!rfs_tok_split(it->rest, ',', &a->all, &tail))
		it->done = true;
	it->rest = tail;
	a->has_key = rfs_tok_split(a->all, '=', &a->key, &a->val);
	if (!a->has_key) {
		a->val = a->all;
		a->key.n = 0;
	}
	return true;
}

/* Checks common to every step's arguments. */
int rfs_arg_check(struct rfs_pctx *c, const char *op, const struct rfs_arg *a)
{
	if (a->all.n == 0)
		return rfs_lex_fail(c, -RFS_E_BAD_ARG,
			    "%s: empty argument (two commas in a row, or one "
			    "at the end); remove the extra comma", op);
	if (a->has_key && a->key.n == 0)
		return rfs_lex_fail(c, -RFS_E_BAD_ARG,
			    "%s: '" TOKF "' has no option name before '='",
			    op, TOKA(a->all));
	if (a->has_key && a->val.n == 0)
		return rfs_lex_fail(c, -RFS_E_BAD_ARG,
			    "%s: option '" TOKF "' has no value after '='",
			    op, TOKA(a->key));
	return 0;
}

int rfs_lex_unknown_option(struct rfs_pctx *c, const char *op,
			  const struct rfs_arg *a, const char *const *keys,
			  int nkeys, const char *list)
{
	const char *s = rfs_tok_suggest(a->key, keys, nkeys);

	if (s)
		return rfs_lex_fail(c, -RFS_E_BAD_ARG,
			    "%s: unknown option '" TOKF "'; did you mean "
			    "'%s='? Options: %s", op, TOKA(a->key), s, list);
	return rfs_lex_fail(c, -RFS_E_BAD_ARG,
		    "%s: unknown option '" TOKF "'. Options: %s",
		    op, TOKA(a->key), list);
}

int rfs_lex_twice(struct rfs_pctx *c, const char *op, const char *what,
		 const struct rfs_arg *a)
{
	return rfs_lex_fail(c, -RFS_E_BAD_ARG,
		    "%s: %s given twice (again as '" TOKF "'); give it once",
		    op, what, TOKA(a->all));
}

/* ------------------------------------------------------------------ */
/* Arguments of several steps */

/* A number argument of step op, named what in messages. */
int rfs_lex_step_number(struct rfs_pctx *c, const char *op, const char *what,
		       struct rfs_tok t, double *out)
{
	enum rfs_num_err ne = rfs_lex_number(t, false, out);

	if (ne == NUM_OK)
		return 0;
	if (ne == NUM_LONG)
		return rfs_lex_fail(c, -RFS_E_TOO_LONG,
			    "%s: %s is longer than %d characters", op, what,
			    NUM_MAX);
	return rfs_lex_fail(c, -RFS_E_BAD_ARG,
			    "%s: %s must be a finite number, got '"
		    TOKF "': %s", op, what, TOKA(t), rfs_lex_num_why(ne));
}

/* A positive integer argument; values too large for any limit here read
 * as INT_MAX.  -1 if t is not all digits. */
int rfs_lex_int(struct rfs_tok t)
{
	size_t i = 0;
	int v = 0;

	if (!rfs_tok_digits(t))
		return -1;
	while (i < t.n && t.p[i] == '0')
		i++;
	if (t.n - i > 9)
		return 0x7fffffff;
	for (; i < t.n; i++)
		v = v * 10 + (t.p[i] - '0');
	return v;
}

void rfs_cb_int(struct rfs_cbuf *b, int v)
{
	char t[16];

	snprintf(t, sizeof(t), "%d", v);
	rfs_cb_str(b, t);
}

/* A band number 1..RFS_BAND_MAX of step op. */
int rfs_lex_band(struct rfs_pctx *c, const char *op, struct rfs_tok t, int *out,
		       const char *usage)
{
	int v = rfs_lex_int(t);

	if (v < 1 || v > RFS_BAND_MAX)
		return rfs_lex_fail(c, -RFS_E_BAD_ARG,
			    "%s: a band is a whole number from 1 to %d (the "
			    "first band is 1), got '" TOKF "': %s", op,
			    RFS_BAND_MAX, TOKA(t), usage);
	*out = v;
	return 0;
}

int rfs_lex_no_options(struct rfs_pctx *c, const char *op,
		       const struct rfs_arg *a, const char *usage)
{
	return rfs_lex_fail(c, -RFS_E_BAD_ARG, "%s: takes no options, got '"
			    TOKF "': %s", op, TOKA(a->all), usage);
}

bool rfs_lex_is_resampling(struct rfs_tok t)
{
	return rfs_tok_is(t, "nearest") ||
	       rfs_tok_find(t, rfs_lex_rs_names, rfs_lex_n_rs) >= 0 ||
	       rfs_tok_suggest(t, rfs_lex_rs_names, rfs_lex_n_rs) != NULL;
}

/* ------------------------------------------------------------------ */
/* CRS codes (proj, clip) and resampling methods (proj, res, size)
 *
 * A CRS has two spellings:
 *   AUTH:CODE  as PROJ writes it (EPSG:3857, IAU_2015:49900, IGNF:STPM50_V);
 *              the canonical one.
 *   AUTH_CODE  the portable one, for names that may not hold a ':' (Windows
 *              and SMB forbid it, rsync reads HOST:PATH, GRASS looks for
 *              "EPSG:" in a file name).  PROJ has '_' inside authorities
 *              (IAU_2015) and inside codes (IGNF:STPM50_V), so there a '_'
 *              of AUTH or CODE is doubled and the one single '_' separates
 *              them: IAU__2015_49900, IGNF_STPM50__V.
 * A token with a ':' is read in the first spelling (its '_' are plain
 * characters), one without in the second.  In both, an authority or code
 * begins and ends with a letter or digit, as all of PROJ's do: a '_'
 * beside the separator would make a run of three '_' that reads two ways,
 * and a code ending in '.' would end a name in '.' (Windows drops it) or
 * run into an extension ("X..tif", which the grammar refuses).
 */

static bool crs_auth_char(int c)
{
	return rfs_lex_is_alnum(c) || c == '_';
}

static bool crs_code_char(int c)
{
	return rfs_lex_is_alnum(c) || c == '_' || c == '.';
}

bool rfs_lex_crs_like(struct rfs_tok t)
{
	return t.n && (memchr(t.p, ':', t.n) || memchr(t.p, '_', t.n));
}

static int crs_too_long(struct rfs_pctx *c, const char *op, struct rfs_tok t)
{
	return rfs_lex_fail(c, -RFS_E_TOO_LONG,
		    "%s: CRS '" TOKF "' is longer than %d characters", op,
		    TOKA(t), RFS_CRS_MAX - 1);
}

/* Portable AUTH_CODE -> auth and code (RFS_CRS_MAX bytes each, not
 * NUL-terminated; lengths in *an, *cn).  A run of 2k '_' is k '_' of the
 * text; a run of one is the separator, of which there is exactly one. */
static int crs_portable(struct rfs_pctx *c, const char *op, struct rfs_tok t,
			char *auth, size_t *an, char *code, size_t *cn)
{
	char *dst = auth;
	size_t *dn = an, i = 0, run, k;
	bool sep = false;

	*an = *cn = 0;
	while (i < t.n) {
		for (run = 0; i < t.n && t.p[i] == '_'; i++)
			run++;
		if (run == 1) {
			if (sep)
				return rfs_lex_fail(c, -RFS_E_BAD_ARG,
					    "%s: CRS '" TOKF "' has more than one "
					    "single '_', so where its authority "
					    "ends is unclear; in this spelling a "
					    "'_' inside an authority or code is "
					    "written '__' (IAU__2015_49900 is "
					    "IAU_2015:49900), or write the CRS "
					    "with ':'", op, TOKA(t));
			sep = true;
			dst = code;
			dn = cn;
		} else if (run % 2) {
			return rfs_lex_fail(c, -RFS_E_BAD_ARG,
				    "%s: CRS '" TOKF "' has a run of %zu '_', "
				    "which reads two ways; write AUTHORITY_CODE "
				    "with one '_' between them and '__' for a "
				    "'_' inside them (e.g. EPSG_3857, "
				    "IAU__2015_49900), or use ':'", op, TOKA(t),
				    run);
		}
		for (k = 0; k < run / 2; k++) {
			if (*dn + 1 >= RFS_CRS_MAX)
				return crs_too_long(c, op, t);
			dst[(*dn)++] = '_';
		}
		if (i < t.n) {
			if (*dn + 1 >= RFS_CRS_MAX)
				return crs_too_long(c, op, t);
			dst[(*dn)++] = t.p[i++];
		}
	}
	if (!sep)
		return rfs_lex_fail(c, -RFS_E_BAD_ARG,
			    "%s: CRS '" TOKF "' has no single '_' between its "
			    "authority and code ('__' stands for a '_' inside "
			    "them); write AUTHORITY_CODE or AUTHORITY:CODE, "
			    "e.g. EPSG_3857 or EPSG:3857", op, TOKA(t));
	return 0;
}

/* AUTH:CODE or AUTH_CODE -> out ("EPSG:3857"). */
int rfs_lex_crs(struct rfs_pctx *c, const char *op, struct rfs_tok t, char *out)
{
	char abuf[RFS_CRS_MAX], cbuf[RFS_CRS_MAX];
	struct rfs_tok auth, code;
	struct rfs_cbuf b = { .p = out, .cap = RFS_CRS_MAX };
	size_t i;
	char ch;
	int rc;

	if (memchr(t.p, ':', t.n)) {
		rfs_tok_split(t, ':', &auth, &code);
	} else if (memchr(t.p, '_', t.n)) {
		rc = crs_portable(c, op, t, abuf, &auth.n, cbuf, &code.n);
		if (rc)
			return rc;
		auth.p = abuf;
		code.p = cbuf;
	} else if (rfs_tok_digits(t)) {
		return rfs_lex_fail(c, -RFS_E_BAD_ARG,
			    "%s: CRS must be AUTHORITY:CODE or AUTHORITY_CODE, "
			    "got '" TOKF "' (try %sEPSG:" TOKF " or %sEPSG_"
			    TOKF ")", op, TOKA(t),
			    strcmp(op, "proj") ? "" : "proj=", TOKA(t),
			    strcmp(op, "proj") ? "" : "proj=", TOKA(t));
	} else {
		return rfs_lex_fail(c, -RFS_E_BAD_ARG,
			    "%s: '" TOKF "' is neither a CRS (AUTHORITY:CODE "
			    "or AUTHORITY_CODE, such as EPSG:3857 or "
			    "EPSG_3857) nor a resampling method (%s)",
			    op, TOKA(t), RS_LIST);
	}
	if (auth.n == 0 || code.n == 0)
		return rfs_lex_fail(c, -RFS_E_BAD_ARG,
			    "%s: CRS '" TOKF "' needs both an authority and "
			    "a code, as in EPSG:3857 or EPSG_3857", op,
			    TOKA(t));
	for (i = 0; i < auth.n; i++)
		if (!crs_auth_char((unsigned char)auth.p[i]))
			return rfs_lex_fail(c, -RFS_E_BAD_ARG,
				    "%s: CRS authority '" TOKF "' may hold "
				    "only letters, digits and '_' (e.g. EPSG, "
				    "ESRI, IGNF)", op, TOKA(auth));
	for (i = 0; i < code.n; i++)
		if (!crs_code_char((unsigned char)code.p[i]))
			return rfs_lex_fail(c, -RFS_E_BAD_ARG,
				    "%s: CRS code '" TOKF "' may hold only "
				    "letters, digits, '_' and '.' (e.g. "
				    "EPSG:3857, IGNF:LAMB93)", op,
				    TOKA(code));
	if (!rfs_lex_is_alnum(auth.p[0]) || !rfs_lex_is_alnum(auth.p[auth.n - 1]) ||
	    !rfs_lex_is_alnum(code.p[0]) || !rfs_lex_is_alnum(code.p[code.n - 1]))
		return rfs_lex_fail(c, -RFS_E_BAD_ARG,
			    "%s: in CRS '" TOKF "', the authority '" TOKF
			    "' or the code '" TOKF "' begins or ends with "
			    "'_' or '.'; no CRS in PROJ does (e.g. EPSG:3857, "
			    "IAU_2015:49900)", op, TOKA(t), TOKA(auth),
			    TOKA(code));
	for (i = 0; i < auth.n; i++) {
		ch = auth.p[i];
		if (ch >= 'a' && ch <= 'z')
			ch = (char)(ch - 'a' + 'A');
		rfs_cb_add(&b, &ch, 1);
	}
	rfs_cb_add(&b, ":", 1);
	/* PROJ reads all-digit codes as numbers: EPSG:03857 is EPSG:3857. */
	if (rfs_tok_digits(code)) {
		for (i = 0; i + 1 < code.n && code.p[i] == '0'; i++)
			;
		rfs_cb_add(&b, code.p + i, code.n - i);
	} else {
		rfs_cb_add(&b, code.p, code.n);
	}
	if (b.over)
		return crs_too_long(c, op, t);
	return 0;
}

void rfs_cb_crs(struct rfs_cbuf *b, const char *crs)
{
	const char *q;

	if (!b->portable) {
		rfs_cb_str(b, crs);
		return;
	}
	for (q = crs; *q; q++) {
		if (*q == '_')
			rfs_cb_add(b, "__", 2);
		else if (*q == ':')
			rfs_cb_add(b, "_", 1);
		else
			rfs_cb_add(b, q, 1);
	}
}

void rfs_cb_sep(struct rfs_cbuf *b)
{
	rfs_cb_add(b, b->portable ? "_" : ":", 1);
}

int rfs_lex_resampling(struct rfs_pctx *c, const char *op, struct rfs_tok t,
			    enum rfs_resampling *out)
{
	const char *s;
	double res;
	int i;

	if (rfs_tok_is(t, "nearest")) {
		*out = RFS_RS_NEAR;
		return 0;
	}
	i = rfs_tok_find(t, rfs_lex_rs_names, rfs_lex_n_rs);
	if (i >= 0) {
		*out = (enum rfs_resampling)i;
		return 0;
	}
	if (rfs_lex_number(t, false, &res) == NUM_OK)
		return rfs_lex_fail(c, -RFS_E_BAD_ARG,
			    "%s: '" TOKF "' is not a resampling method; for "
			    "a pixel size write res=" TOKF, op, TOKA(t),
			    TOKA(t));
	s = rfs_tok_suggest(t, rfs_lex_rs_names, rfs_lex_n_rs);
	if (s)
		return rfs_lex_fail(c, -RFS_E_BAD_ARG,
			    "%s: '" TOKF "' is not a resampling method; did "
			    "you mean '%s'? Methods: %s", op, TOKA(t), s,
			    RS_LIST);
	return rfs_lex_fail(c, -RFS_E_BAD_ARG,
		    "%s: '" TOKF "' is not a resampling method. Methods: %s",
		    op, TOKA(t), RS_LIST);
}

