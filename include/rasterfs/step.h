/* step.h - the step table: one row per step, the only place a step is
 * known.
 *
 * The grammar (chain.c), the FUSE layer (which steps take a CRS), the pool
 * (which steps warp) and the worker (describe: the output's grid before
 * any pixel, for max_pixels) all ask this table; no module lists steps of
 * its own.  The table is src/steps.c, indexed by enum rfs_op; a static
 * assertion there keeps it in step with the enum.
 *
 * A row has two halves.  The grammar half (parse, write, the texts) is
 * pure: no I/O, no GDAL call, so the grammar can be fuzzed and called at
 * every lookup.  The engine half (describe and run, behind the opaque
 * struct rfs_step_engine, defined in src/ops_int.h) needs GDAL and runs
 * only in worker processes.  Both halves of a family live in its own file,
 * src/op_<family>.c.  Adding a step is one new file (or a function pair in
 * an existing family) plus one row: see docs/hacking.md, "Adding a step".
 *
 * This header needs no GDAL header.
 */
#ifndef RASTERFS_STEP_H
#define RASTERFS_STEP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "rasterfs/chain.h"

/* Row flags. */
enum {
	/* The step takes a CRS (AUTHORITY:CODE), checked against PROJ's
	 * database at lookup; crs_at says where it is in struct rfs_step. */
	RFS_STEP_CRS = 1u << 0,
	/* The step runs GDAL's warper (GDALWarp): a costly first step whose
	 * output the pool keeps as a prefix (pool.c, keep_prefixes). */
	RFS_STEP_WARP = 1u << 1,
	/* A bare name is the whole step ("dem.tif@slope"). */
	RFS_STEP_BARE = 1u << 2,
	/* The step takes no argument at all ("aspect"; implies BARE). */
	RFS_STEP_NOARGS = 1u << 3,
	/* Each output cell depends only on the same cell of the input (band
	 * arithmetic, reclassification, type conversion); other steps read
	 * a neighbourhood (focal, terrain) or any part of the input (warps,
	 * clip). */
	RFS_STEP_PIXELWISE = 1u << 4,
	/* The step may change the grid (size, geotransform, CRS); the others
	 * keep the input's grid and change bands, types or nodata. */
	RFS_STEP_GRID = 1u << 5,
};

/* Private to the grammar (src/lex.h). */
struct rfs_pctx;
struct rfs_tok;
struct rfs_cbuf;
/* Private to the operations (src/ops_int.h): describe and run. */
struct rfs_step_engine;

/* Parse the text after "name=" (args, possibly empty for a BARE step)
 * into *st, whose op is already set.  Returns 0 or a negative rasterfs
 * code with the message in c (chain.h lists them). */
typedef int (*rfs_step_parse_fn)(struct rfs_pctx *c, const struct rfs_tok *args,
				 struct rfs_step *st);
/* Append st's canonical spelling ("focal=3,mean,square", no '@'). */
typedef void (*rfs_step_write_fn)(const struct rfs_step *st,
				  struct rfs_cbuf *cb);

/* Which input bands output band out (0-based) of st is made of: their
 * 0-based indices go into from[], their number is returned (1 or 2), or 0
 * when the output band IS input band from[0], only selected (band=).  A
 * row without one (NULL) makes output band i from input band i. */
typedef int (*rfs_step_bands_fn)(const struct rfs_step *st, int out,
				 int from[2]);

/* Longest band description, with its NUL (rfs_step_band_desc). */
#define RFS_BAND_DESC_MAX 1024

/* One argument of a step, for the usage text, the documentation and
 * shell completion (rfs_steps_complete).  An argument whose name holds a
 * '=' ("res=R") is written only as key=value; the others are positional
 * and, when key is set, may also be written as key=value. */
struct rfs_step_arg {
	const char *name;   /* as written: "CRS", "res=R", "RESAMPLING" */
	const char *dflt;   /* its default; NULL: required */
	const char *what;   /* one line */
	const char *key;    /* "resampling" for resampling=; NULL: none */
	/* The fixed words the argument takes ("bilinear", "max"): the i-th
	 * for i = 0, 1, ... until NULL; NULL: none (a number, a CRS).  For
	 * the words of an enum it is the enum's own name function, so the
	 * list is the one the parser matches. */
	const char *(*word)(int i);
};

struct rfs_step_desc {
	enum rfs_op op;               /* its index in the table */
	const char *name;             /* "proj": lower case, unique */
	unsigned flags;               /* RFS_STEP_* */
	size_t crs_at;                /* RFS_STEP_CRS: offset of the CRS
	                                 text in struct rfs_step */
	/* grammar half (pure) */
	rfs_step_parse_fn parse;
	rfs_step_write_fn write;
	const char *summary;          /* one line: what the step does */
	const char *usage;            /* as the grammar's messages show it:
	                                 synopsis, then examples */
	const struct rfs_step_arg *args; /* ends with a NULL name */
	const char *example;          /* one step, in canonical spelling */
	rfs_step_bands_fn bands;      /* what each output band is made of
	                                 (band descriptions); NULL: band i
	                                 of band i */
	/* engine half (GDAL; worker processes only) */
	const struct rfs_step_engine *engine;
};

/* The table, indexed by enum rfs_op: RFS_OP_COUNT rows. */
extern const struct rfs_step_desc rfs_steps[];

/* The row of op; NULL if op is not a step. */
const struct rfs_step_desc *rfs_step_desc(enum rfs_op op);

/* The row whose name is the n bytes at name (case-insensitive); NULL if
 * none. */
const struct rfs_step_desc *rfs_step_find(const char *name, size_t n);

/* The CRS step st names ("EPSG:3857"), or NULL if it names none (a step
 * without RFS_STEP_CRS, or a clip in the source's own CRS). */
const char *rfs_step_crs(const struct rfs_step *st);

/* True if the chain text canonical ("@proj=EPSG:3857,near@focal=...")
 * starts with a step whose row has every flag in flags. */
bool rfs_step_first_has(const char *canonical, unsigned flags);

/* The description of output band out (0-based) of step st, given the
 * descriptions of its input's nin bands, in buf (len bytes, at most
 * RFS_BAND_DESC_MAX are used; a longer text is cut, never inside a UTF-8
 * sequence, and ends with "..."): "<canonical step> of <input band>"
 * ("slope=degrees of dem.tif"), "<canonical step> of <band A> and <band
 * B>" for a step of two bands (ndi), or the input band's own description
 * for a selection (band=).  Pure.  Returns 0, or -1 when st names an input
 * band beyond nin, or is not a step. */
int rfs_step_band_desc(const struct rfs_step *st, const char *const *in,
		       int nin, int out, char *buf, size_t len);

/* Write st's canonical spelling into buf (no '@').  Returns its length,
 * or -1 if it does not fit in len bytes or st->op is not a step. */
int rfs_step_canonical(const struct rfs_step *st, char *buf, size_t len);

/* The table as text for people (src/steps_doc.c): every step with its
 * summary, usage, arguments and defaults and an example, then fmt=; the
 * text of `rasterfs steps`, MOUNTPOINT/.rasterfs/steps and the generated
 * block of docs/grammar.md.  rfs_steps_text returns 0 with a malloc'd text
 * in *out (its length in *len), or -ENOMEM. */
void rfs_steps_write(FILE *f);
int rfs_steps_text(char **out, size_t *len);

/* The table as words for shell completion (`rasterfs --internal-complete`,
 * completions/rasterfs), one line per item, fields separated by one
 * blank:
 *   S NAME FORM...         what may follow '@': "proj=", or "slope" and
 *                          "slope=" for a BARE step, "aspect" (NOARGS)
 *   P NAME WORD...         the words a positional argument may be
 *   K NAME KEY WORD...     a key=value argument and the words its value
 *                          may be (none: a number, a CRS)
 * for every step, then fmt (the output format) as if it were one. */
void rfs_steps_complete(FILE *f);

/* The step table as man(7) source for rasterfs(1): a .SS per step with its
 * summary, usage, arguments, defaults and example, then fmt=. */
void rfs_steps_man(FILE *f);

#endif
