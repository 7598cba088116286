/* lex.h - private to the grammar: tokens, numbers, messages and the
 * canonical buffer shared by the chain driver (chain.c) and the step
 * parsers (src/op_*.c).
 *
 * Everything here is pure: no I/O, no allocation, no state but const
 * tables.  A token is a slice of the stranger's text, never copied
 * unbounded; a message shows at most TOK_SHOW bytes of a token.
 */
#ifndef RASTERFS_LEX_H
#define RASTERFS_LEX_H

#include <stdbool.h>
#include <stddef.h>

#include "rasterfs/chain.h"
#include "rasterfs/step.h"

/* A step's usage text, as its row has it (steps.c). */
#define STEP_USAGE(op) (rfs_steps[op].usage)

#define NUM_MAX 64		/* longest number token */
#define NAME_MAX_CMP 32		/* longest word for "did you mean" */
#define TOK_SHOW 40		/* longest token echoed in a message */

#define RS_LIST "near, bilinear, cubic, cubicspline, lanczos, average, " \
	"rms, mode, max, min, med, q1, q3, sum"

struct rfs_tok {
	const char *p;
	size_t n;
};

/* printf arguments for a token: at most TOK_SHOW bytes, then "...". */
#define TOKF "%.*s%s"
#define TOKA(t) (int)((t).n > TOK_SHOW ? TOK_SHOW : (t).n), (t).p, \
	((t).n > TOK_SHOW ? "..." : "")

/* Where a parse writes its one error message. */
struct rfs_pctx {
	char *msg;
	size_t msglen;
};

/* A bounded buffer for canonical text; over is set (and nothing more is
 * written) once something does not fit.  With portable set, the writers
 * spell what differs in the portable spelling (CRS codes, range
 * separators: rfs_cb_crs, rfs_cb_sep) without ':' (chain.h). */
struct rfs_cbuf {
	char *p;
	size_t n;	/* bytes written, without the NUL */
	size_t cap;	/* including the NUL */
	bool over;
	bool portable;
};

/* One comma-separated argument, split into key and value.  A positional
 * argument has key.n == 0 and has_key false. */
struct rfs_arg {
	struct rfs_tok all, key, val;
	bool has_key;
};

struct rfs_args {
	struct rfs_tok rest;
	bool done;
};

enum rfs_num_err {
	NUM_OK, NUM_SYNTAX, NUM_NAN, NUM_INF, NUM_RANGE, NUM_LONG
};

/* --- tokens ---------------------------------------------------------- */

bool rfs_lex_is_digit(int c);
bool rfs_lex_is_alnum(int c);
/* ASCII case-insensitive match of the whole token against a lower-case
 * word: the parser does not depend on the locale. */
bool rfs_tok_is(struct rfs_tok t, const char *word);
/* Index of t in names (lower case), or -1. */
int rfs_tok_find(struct rfs_tok t, const char *const *names, int n);
/* Split t at the first c: *head before, *tail after.  False if no c. */
bool rfs_tok_split(struct rfs_tok t, char c, struct rfs_tok *head,
		   struct rfs_tok *tail);
bool rfs_tok_digits(struct rfs_tok t);
/* The closest of names to t if it is close enough to be a typo: one edit
 * for short words, two for longer ones.  NULL otherwise. */
const char *rfs_tok_suggest(struct rfs_tok t, const char *const *names,
			    int n);

/* --- messages and canonical text ------------------------------------ */

/* Write the message (if c has room) and return rc (< 0). */
int rfs_lex_fail(struct rfs_pctx *c, int rc, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

void rfs_cb_add(struct rfs_cbuf *b, const char *s, size_t n);
void rfs_cb_str(struct rfs_cbuf *b, const char *s);
void rfs_cb_num(struct rfs_cbuf *b, double v);	/* rfs_format_double */
void rfs_cb_int(struct rfs_cbuf *b, int v);
/* A canonical CRS "AUTH:CODE": as it is, or portable "AUTH_CODE" with
 * each '_' of AUTH and CODE doubled ("IAU__2015_49900"). */
void rfs_cb_crs(struct rfs_cbuf *b, const char *crs);
/* The separator inside a reclass range: ':', or '_' when portable. */
void rfs_cb_sep(struct rfs_cbuf *b);

/* --- numbers --------------------------------------------------------- */

/* Strict decimal syntax (strtod's extras refused):
 *     [+-]? ( "inf" | D+ [. D*] | . D+ ) ( [eE] [+-]? D+ )?
 * "inf" only when allow_inf.  -0 is read as 0. */
enum rfs_num_err rfs_lex_number(struct rfs_tok t, bool allow_inf,
				double *out);
/* Why a number was refused, as the end of a sentence. */
const char *rfs_lex_num_why(enum rfs_num_err e);
/* A positive integer; values too large for any limit here read as
 * INT_MAX.  -1 if t is not all digits. */
int rfs_lex_int(struct rfs_tok t);

/* --- arguments ------------------------------------------------------- */

bool rfs_args_next(struct rfs_args *it, struct rfs_arg *a);
/* Checks common to every step's arguments (empty, "=v", "k="). */
int rfs_arg_check(struct rfs_pctx *c, const char *op, const struct rfs_arg *a);
int rfs_lex_unknown_option(struct rfs_pctx *c, const char *op,
			   const struct rfs_arg *a, const char *const *keys,
			   int nkeys, const char *list);
int rfs_lex_twice(struct rfs_pctx *c, const char *op, const char *what,
		  const struct rfs_arg *a);
int rfs_lex_no_options(struct rfs_pctx *c, const char *op,
		       const struct rfs_arg *a, const char *usage);
/* A finite number argument of step op, named what in messages. */
int rfs_lex_step_number(struct rfs_pctx *c, const char *op, const char *what,
			struct rfs_tok t, double *out);
/* A band number 1..RFS_BAND_MAX of step op. */
int rfs_lex_band(struct rfs_pctx *c, const char *op, struct rfs_tok t,
		 int *out, const char *usage);
/* True if t is spelt like a CRS: it holds a ':' or a '_' (no number,
 * keyword or resampling method does). */
bool rfs_lex_crs_like(struct rfs_tok t);
/* AUTH:CODE, or the portable AUTH_CODE (a '_' inside AUTH or CODE doubled:
 * IAU__2015_49900), -> out ("EPSG:3857", RFS_CRS_MAX bytes). */
int rfs_lex_crs(struct rfs_pctx *c, const char *op, struct rfs_tok t,
		char *out);
/* A resampling method of step op ("nearest" is "near"). */
int rfs_lex_resampling(struct rfs_pctx *c, const char *op, struct rfs_tok t,
		       enum rfs_resampling *out);
/* A resampling word, or close enough to one to be a typo of it. */
bool rfs_lex_is_resampling(struct rfs_tok t);
/* The resampling names, indexed by enum rfs_resampling. */
extern const char *const rfs_lex_rs_names[];
extern const int rfs_lex_n_rs;

#endif
