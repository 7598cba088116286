/* chain.c - the chain grammar's driver: split a virtual name's steps on
 * '@', look each up in the step table and hand its arguments to the
 * step's parser, reconcile fmt= with a trailing extension, and assemble
 * the canonical text.
 *
 * The step parsers live with their operations (src/op_<family>.c, named
 * by the table, src/steps.c); tokens, numbers and messages they share are
 * in src/lex.c.
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
 *    the canonical chain, sees exactly the steps the daemon saw.  A step's
 *    canonical text is written from its parsed struct (the row's write),
 *    never copied from the input.
 * 5. The output format is not a step: fmt= may only come last, and a
 *    trailing ".tif", ".tiff" or ".png" (only at the very end: "res=0.5"
 *    keeps its dot, "res=0.5.tif" loses only ".tif") says the same thing,
 *    so a file dialog filtering *.tif can pick an output.  The default
 *    GeoTIFF adds nothing to the canonical text, so "x@focal=3",
 *    "x@focal=3.tif" and "x@focal=3@fmt=gtiff" are one cache entry with
 *    the key they had before formats existed.
 * 6. The portable spelling (chain.h) is written by the same step writers
 *    with the buffer's portable flag set: a step spells its CRS with
 *    rfs_cb_crs and its range separators with rfs_cb_sep, so the step
 *    that knows where its ':' are is the one that leaves them out.
 */
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "lex.h"
#include "steps_int.h"
#include "rasterfs/chain.h"
#include "rasterfs/err.h"
#include "rasterfs/step.h"

/* Longest text accepted.  Longer than the canonical limit because the
 * input may spell things out ("focal=size=3,stat=mean,shape=square"). */
#define CHAIN_INPUT_MAX (4 * RFS_CHAIN_TEXT_MAX)

/* ------------------------------------------------------------------ */
/* Output format: fmt= (op_format.c) and trailing extensions */

/* A trailing ".tif", ".tiff" or ".png": the format it names, and t
 * shortened by it; -1 if t has none. */
static int strip_extension(struct rfs_tok *t)
{
	static const struct {
		const char *ext;
		enum rfs_format f;
	} exts[] = {
		{ ".tif", RFS_FMT_GTIFF }, { ".tiff", RFS_FMT_GTIFF },
		{ ".png", RFS_FMT_PNG },
	};

	for (size_t i = 0; i < sizeof(exts) / sizeof(exts[0]); i++) {
		struct rfs_tok tail;
		size_t l = strlen(exts[i].ext);

		if (t->n < l)
			continue;
		tail.p = t->p + t->n - l;
		tail.n = l;
		if (rfs_tok_is(tail, exts[i].ext)) {
			t->n -= l;
			return (int)exts[i].f;
		}
	}
	return -1;
}

/* Reconcile an fmt step (have_fmt) with a trailing extension (ext, or -1)
 * and write the canonical "@fmt=..." (design note 5). */
static int finish_format(struct rfs_pctx *c, struct rfs_chain *out,
			 bool have_fmt,			 int ext, struct rfs_cbuf *cb)
{
	if (ext >= 0 && !have_fmt) {
		out->format = (enum rfs_format)ext;
		out->stretch = RFS_STRETCH_MINMAX;
	} else if (ext >= 0 && !(ext == (int)out->format ||
				 (ext == RFS_FMT_GTIFF &&
				  out->format == RFS_FMT_COG))) {
		return rfs_lex_fail(c, -RFS_E_BAD_ARG,
			    "the extension .%s contradicts fmt=%s; drop one "
			    "of them (e.g. dem.tif@focal=3.png or "
			    "dem.tif@focal=3@fmt=png)",
			    ext == RFS_FMT_PNG ? "png" : "tif",
			    rfs_format_name(out->format));
	}
	if (out->format == RFS_FMT_GTIFF && out->nsteps > 0)
		return 0;
	rfs_cb_str(cb, "@fmt=");
	rfs_cb_str(cb, rfs_format_name(out->format));
	if (out->format == RFS_FMT_PNG) {
		rfs_cb_str(cb, ",");
		rfs_cb_str(cb, rfs_stretch_name(out->stretch));
	}
	return 0;
}


/* The format in the portable spelling: the extension, after an fmt step
 * only where the extension alone would not say it (design note 5). */
static void portable_format(const struct rfs_chain *c, struct rfs_cbuf *cb)
{
	if (c->nsteps == 0 || c->format == RFS_FMT_COG ||
	    (c->format == RFS_FMT_PNG && c->stretch != RFS_STRETCH_MINMAX)) {
		rfs_cb_str(cb, "@fmt=");
		rfs_cb_str(cb, rfs_format_name(c->format));
		if (c->format == RFS_FMT_PNG) {
			rfs_cb_str(cb, ",");
			rfs_cb_str(cb, rfs_stretch_name(c->stretch));
		}
	}
	rfs_cb_str(cb, c->format == RFS_FMT_PNG ? ".png" : ".tif");
}


/* ------------------------------------------------------------------ */
/* The chain */

static bool chain_char(int c)
{
	return rfs_lex_is_alnum(c) || (c && strchr("@=,:.-+_", c));
}

/* "proj, focal, ..., ndi": every step, in the table's order. */
static void steps_list(char *buf, size_t len)
{
	struct rfs_cbuf b = { .p = buf, .cap = len };

	buf[0] = '\0';
	for (int i = 0; i < RFS_OP_COUNT; i++) {
		if (i)
			rfs_cb_str(&b, ", ");
		rfs_cb_str(&b, rfs_steps[i].name);
	}
}

static int parse_step(struct rfs_pctx *c, struct rfs_tok t,
		      struct rfs_step *st, struct rfs_cbuf *cb)
{
	const char *names[RFS_OP_COUNT];
	const struct rfs_step_desc *d;
	struct rfs_tok name, args;
	char list[256], usage[64];
	const char *s, *u;
	bool has_eq;
	int rc;

	has_eq = rfs_tok_split(t, '=', &name, &args);
	steps_list(list, sizeof(list));
	if (name.n == 0)
		return rfs_lex_fail(c, -RFS_E_BAD_ARG,
			    "step '" TOKF "' has no name before '='; steps: %s",
			    TOKA(t), list);
	d = rfs_step_find(name.p, name.n);
	if (!d) {
		for (int i = 0; i < RFS_OP_COUNT; i++)
			names[i] = rfs_steps[i].name;
		s = rfs_tok_suggest(name, names, RFS_OP_COUNT);
		if (s)
			return rfs_lex_fail(c, -RFS_E_UNKNOWN_STEP,
				    "'" TOKF "' is not a step; did you mean "
				    "'%s'? Steps: %s", TOKA(name), s, list);
		return rfs_lex_fail(c, -RFS_E_UNKNOWN_STEP,
			    "'" TOKF "' is not a step. Steps: %s"
			    " (e.g. dem.tif@proj=EPSG:3857@focal=3)",
			    TOKA(name), list);
	}
	u = d->usage;
	if (d->flags & RFS_STEP_NOARGS) {
		snprintf(usage, sizeof(usage), "%s, with no '='", d->name);
		u = usage;
	}
	/* A step with defaults for everything may be a bare name: a whole
	 * step ("dem.tif@slope"). */
	if (!has_eq && (d->flags & RFS_STEP_BARE))
		args.n = 0;
	else if (!has_eq || args.n == 0) {
		if (has_eq && args.n == 0 && (d->flags & RFS_STEP_BARE))
			return rfs_lex_fail(c, -RFS_E_BAD_ARG,
				    "%s: nothing after '='; write %s",
				    d->name, u);
		return rfs_lex_fail(c, -RFS_E_BAD_ARG,
			    "%s needs arguments: %s", d->name, u);
	}
	st->op = d->op;
	rc = d->parse(c, &args, st);
	if (rc)
		return rc;
	d->write(st, cb);
	return 0;
}

int rfs_chain_parse(const char *text, struct rfs_chain *out,
		    char *msg, size_t msglen)
{
	struct rfs_pctx c = { msg, msglen };
	struct rfs_cbuf cb;
	struct rfs_tok rest, step, name, args;
	size_t n, i;
	bool more, have_fmt = false;
	int rc, ext;

	if (msg && msglen)
		msg[0] = '\0';
	if (!text)
		return rfs_lex_fail(&c, -RFS_E_BAD_ARG, "no chain given");
	n = strnlen(text, CHAIN_INPUT_MAX + 1);
	if (n > CHAIN_INPUT_MAX)
		return rfs_lex_fail(&c, -RFS_E_TOO_LONG,
			    "the chain is longer than %d characters",
			    CHAIN_INPUT_MAX);
	for (i = 0; i < n; i++) {
		unsigned char ch = (unsigned char)text[i];

		if (ch == '/')
			return rfs_lex_fail(&c, -RFS_E_BAD_ARG,
				    "'/' is not allowed in a chain: steps "
				    "come after the file name, as in "
				    "dem.tif@focal=3");
		if (ch == '.' && text[i + 1] == '.')
			return rfs_lex_fail(&c, -RFS_E_BAD_ARG,
				    "'..' is not allowed in a chain (numbers "
				    "are written like 0.5)");
		if (!chain_char(ch)) {
			if (ch > ' ' && ch < 0x7f)
				return rfs_lex_fail(&c, -RFS_E_BAD_ARG,
					    "character '%c' is not allowed in "
					    "a chain; use only letters, "
					    "digits and @ = , : . - + _", ch);
			return rfs_lex_fail(&c, -RFS_E_BAD_ARG,
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
	cb.portable = false;
	rest.p = text;
	rest.n = n;
	if (rest.n && rest.p[0] == '@') {
		rest.p++;
		rest.n--;
	}
	ext = strip_extension(&rest);
	if (rest.n == 0)
		return rfs_lex_fail(&c, -RFS_E_BAD_ARG,
			    "no steps after '@' (e.g. dem.tif@focal=3)");
	do {
		more = rfs_tok_split(rest, '@', &step, &rest);
		if (step.n == 0)
			return rfs_lex_fail(&c, -RFS_E_BAD_ARG, more ?
				    "empty step ('@@'); remove one '@'" :
				    "the name ends with '@'; remove it or "
				    "add a step after it");
		rfs_tok_split(step, '=', &name, &args);
		if (rfs_tok_is(name, "fmt")) {
			if (more)
				return rfs_lex_fail(&c, -RFS_E_BAD_ARG,
					    "fmt= must be the last step (it "
					    "names the output's format): %s",
					    rfs_fmt_usage);
			if (args.n == 0)
				return rfs_lex_fail(&c, -RFS_E_BAD_ARG,
					    "fmt needs arguments: %s",
					    rfs_fmt_usage);
			rc = rfs_fmt_parse(&c, &args, out);
			if (rc)
				return rc;
			have_fmt = true;
			break;
		}
		if (out->nsteps == RFS_CHAIN_MAX_STEPS)
			return rfs_lex_fail(&c, -RFS_E_TOO_LONG,
				    "more than %d steps in one chain",
				    RFS_CHAIN_MAX_STEPS);
		rfs_cb_str(&cb, "@");
		rc = parse_step(&c, step, &out->steps[out->nsteps], &cb);
		if (rc)
			return rc;
		out->nsteps++;
		if (cb.over)
			return rfs_lex_fail(&c, -RFS_E_TOO_LONG,
				    "the canonical chain would be longer than "
				    "%d characters; use fewer steps or ranges",
				    RFS_CHAIN_TEXT_MAX - 1);
	} while (more);
	rc = finish_format(&c, out, have_fmt, ext, &cb);
	if (rc)
		return rc;
	if (cb.over)
		return rfs_lex_fail(&c, -RFS_E_TOO_LONG,
			    "the canonical chain would be longer than %d "
			    "characters; use fewer steps or ranges",
			    RFS_CHAIN_TEXT_MAX - 1);
	return 0;
}

int rfs_chain_portable(const struct rfs_chain *c, char *buf, size_t len)
{
	struct rfs_cbuf cb = { .p = buf, .cap = len, .portable = true };
	const struct rfs_step_desc *d;

	if (buf && len)
		buf[0] = '\0';
	if (!c || c->nsteps < 0 || c->nsteps > RFS_CHAIN_MAX_STEPS)
		return -RFS_E_BAD_ARG;
	for (int i = 0; i < c->nsteps; i++) {
		d = rfs_step_desc(c->steps[i].op);
		if (!d)
			return -RFS_E_BAD_ARG;
		rfs_cb_str(&cb, "@");
		d->write(&c->steps[i], &cb);
	}
	portable_format(c, &cb);
	return cb.over || !buf ? -RFS_E_TOO_LONG : (int)cb.n;
}
