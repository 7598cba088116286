/* steps_doc.c - the step table as text for people: `rasterfs steps`,
 * MOUNTPOINT/.rasterfs/steps and the generated block of docs/grammar.md; as
 * roff for rasterfs(1); as words for shell completion (step.h, doc.h).
 *
 * Written from the rows alone (name, summary, usage, arguments with their
 * defaults, example), so the three cannot say different things and a new
 * row appears in all of them; a mount test compares the docs/grammar.md
 * block with `rasterfs steps` byte for byte.  Plain text, at most WIDTH columns:
 * it is read in a terminal and in a fenced block of docs/grammar.md.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "steps_int.h"
#include "rasterfs/chain.h"
#include "rasterfs/doc.h"
#include "rasterfs/step.h"

#define WIDTH 78

#define FMT_WHAT "the output's format, not a step: only last, or said by " \
	"the name's extension (.tif, .tiff, .png)"
#define FMT_EXAMPLE "dem.tif@hillshade.png (is " \
	"dem.tif@hillshade@fmt=png,minmax)"

static void wrap(FILE *f, const char *text, int col, int indent)
{
	rfs_doc_wrap(f, text, col, indent, WIDTH);
}

/* "  label   text..." with text wrapped under itself. */
static void field(FILE *f, const char *label, int lw, const char *text)
{
	fprintf(f, "  %-*s  ", lw, label);
	wrap(f, text, 4 + lw, 4 + lw);
}

static void write_step(FILE *f, const struct rfs_step_desc *d)
{
	const struct rfs_step_arg *a;
	int w1 = (int)strlen("argument"), w2 = (int)strlen("default");
	char ex[RFS_MSG_MAX];

	fprintf(f, "%s: ", d->name);
	wrap(f, d->summary, (int)strlen(d->name) + 2, 2);
	field(f, "usage", 7, d->usage);
	for (a = d->args; a->name; a++) {
		int l1 = (int)strlen(a->name);
		int l2 = (int)strlen(a->dflt ? a->dflt : "required");
		w1 = l1 > w1 ? l1 : w1;
		w2 = l2 > w2 ? l2 : w2;
	}
	if (d->args[0].name) {
		fprintf(f, "  %-*s  %-*s  %s\n", w1, "argument", w2, "default",
			"meaning");
		for (a = d->args; a->name; a++) {
			fprintf(f, "  %-*s  %-*s  ", w1, a->name, w2,
				a->dflt ? a->dflt : "required");
			wrap(f, a->what, 6 + w1 + w2, 6 + w1 + w2);
		}
	} else {
		field(f, "", 7, "no arguments: the bare name is the step");
	}
	snprintf(ex, sizeof(ex), "dem.tif@%s", d->example);
	field(f, "example", 7, ex);
}

void rfs_steps_write(FILE *f)
{
	wrap(f, "A virtual name is FILE@step[@step...], at most 16 steps, run "
	     "left to right; a step is name=arg[,arg...], each argument "
	     "positional or key=value. Names, options and keywords are "
	     "case-insensitive. `rasterfs check NAME` says whether a name "
	     "is right, and why not.", 0, 0);
	for (int i = 0; i < RFS_OP_COUNT; i++) {
		fputc('\n', f);
		write_step(f, &rfs_steps[i]);
	}
	fputc('\n', f);
	fprintf(f, "fmt: ");
	wrap(f, FMT_WHAT, 5, 2);
	field(f, "usage", 7, rfs_fmt_usage);
	field(f, "example", 7, FMT_EXAMPLE);
}

int rfs_steps_text(char **out, size_t *len)
{
	FILE *f = open_memstream(out, len);

	if (!f)
		return -ENOMEM;
	rfs_steps_write(f);
	if (fclose(f) != 0) {
		free(*out);
		*out = NULL;
		return -ENOMEM;
	}
	return 0;
}

/* ------------------------------------------------------------------ */
/* Completion words (step.h, rfs_steps_complete) */

static void complete_words(FILE *f, const char *(*word)(int))
{
	const char *w;

	for (int i = 0; word && (w = word(i)); i++)
		fprintf(f, " %s", w);
}

/* fmt= is not a step (op_format.c keeps its grammar); its words are the
 * names of its enums, its keys those fmt_parse matches (test_steps.c
 * checks both parse). */
static const char *format_word(int i)
{
	const char *s = rfs_format_name((enum rfs_format)i);
	return strcmp(s, "?") != 0 ? s : NULL;
}

static const char *stretch_word(int i)
{
	const char *s = rfs_stretch_name((enum rfs_stretch)i);
	return strcmp(s, "?") != 0 ? s : NULL;
}

static const struct rfs_step_arg fmt_args[] = {
	{ "FORMAT", NULL, "gtiff: tiled GeoTIFF; cog: Cloud Optimised "
	  "GeoTIFF, with internal overviews; png: an 8-bit quicklook "
	  "(format=)", "format", format_word },
	{ "STRETCH", "minmax", "png only, how each band's values map to "
	  "0..255: minmax (its minimum to maximum) or p2 (its 2nd to 98th "
	  "percentile) (stretch=)", "stretch", stretch_word },
	{ NULL, NULL, NULL, NULL, NULL },
};

static void complete_step(FILE *f, const char *name, unsigned flags,
			  const struct rfs_step_arg *args)
{
	fprintf(f, "S %s", name);
	if (flags & RFS_STEP_BARE)
		fprintf(f, " %s", name);
	if (!(flags & RFS_STEP_NOARGS))
		fprintf(f, " %s=", name);
	fputc('\n', f);
	for (const struct rfs_step_arg *a = args; a->name; a++) {
		/* "res=R" is key=value only; the others may stand alone */
		if (a->word && !strchr(a->name, '=')) {
			fprintf(f, "P %s", name);
			complete_words(f, a->word);
			fputc('\n', f);
		}
		if (a->key) {
			fprintf(f, "K %s %s", name, a->key);
			complete_words(f, a->word);
			fputc('\n', f);
		}
	}
}

void rfs_steps_complete(FILE *f)
{
	for (int i = 0; i < RFS_OP_COUNT; i++)
		complete_step(f, rfs_steps[i].name, rfs_steps[i].flags,
			      rfs_steps[i].args);
	complete_step(f, "fmt", 0, fmt_args);
}

/* ------------------------------------------------------------------ */
/* The man page (step.h, rfs_steps_man) */

static void man_args(FILE *f, const struct rfs_step_arg *args)
{
	for (const struct rfs_step_arg *a = args; a->name; a++) {
		fprintf(f, ".TP\n\\fB");
		rfs_doc_roff(f, a->name);
		fprintf(f, "\\fR (%s", a->dflt ? "default: " : "required");
		if (a->dflt)
			rfs_doc_roff(f, a->dflt);
		fprintf(f, ")\n");
		rfs_doc_roff(f, a->what);
		fprintf(f, "\n");
	}
}

static void man_step(FILE *f, const struct rfs_step_desc *d)
{
	char ex[RFS_MSG_MAX];

	fprintf(f, ".SS %s\n", d->name);
	rfs_doc_roff(f, d->summary);
	fprintf(f, ".\n.PP\n\\fBUsage:\\fR ");
	rfs_doc_roff(f, d->usage);
	fprintf(f, "\n");
	if (!d->args[0].name)
		fprintf(f, ".br\nNo arguments: the bare name is the step.\n");
	man_args(f, d->args);
	snprintf(ex, sizeof(ex), "dem.tif@%s", d->example);
	fprintf(f, ".PP\n\\fBExample:\\fR ");
	rfs_doc_roff(f, ex);
	fprintf(f, "\n");
}

void rfs_steps_man(FILE *f)
{
	for (int i = 0; i < RFS_OP_COUNT; i++)
		man_step(f, &rfs_steps[i]);
	fprintf(f, ".SS fmt\n");
	rfs_doc_roff(f, FMT_WHAT);
	fprintf(f, ".\n.PP\n\\fBUsage:\\fR ");
	rfs_doc_roff(f, rfs_fmt_usage);
	fprintf(f, "\n");
	man_args(f, fmt_args);
	fprintf(f, ".PP\n\\fBExample:\\fR ");
	rfs_doc_roff(f, FMT_EXAMPLE);
	fprintf(f, "\n");
}
