/* steps_doc.c - the step table as text for people: `rasterfs steps`,
 * MOUNTPOINT/.rasterfs/steps and the README's generated block (step.h).
 *
 * Written from the rows alone (name, summary, usage, arguments with their
 * defaults, example), so the three cannot say different things and a new
 * row appears in all of them; a mount test compares the README block with
 * `rasterfs steps` byte for byte.  Plain text, at most WIDTH columns:
 * it is read in a terminal and in a fenced block of the README.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "steps_int.h"
#include "rasterfs/chain.h"
#include "rasterfs/step.h"

#define WIDTH 78

/* Write text from column col, breaking at blanks so that no line passes
 * WIDTH (a word longer than a line gets one of its own); continuation
 * lines start at column indent.  Ends the line. */
static void wrap(FILE *f, const char *text, int col, int indent)
{
	const char *p = text;
	int first = 1;

	while (*p) {
		size_t n = strcspn(p, " ");
		if (!first && col + 1 + (int)n > WIDTH) {
			fprintf(f, "\n%*s", indent, "");
			col = indent;
		} else if (!first) {
			fputc(' ', f);
			col++;
		}
		fwrite(p, 1, n, f);
		col += (int)n;
		first = 0;
		p += n;
		while (*p == ' ')
			p++;
	}
	fputc('\n', f);
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
	wrap(f, "the output's format, not a step: only last, or said by the "
	     "name's extension (.tif, .tiff, .png)", 5, 2);
	field(f, "usage", 7, rfs_fmt_usage);
	field(f, "example", 7, "dem.tif@hillshade.png (is "
	      "dem.tif@hillshade@fmt=png,minmax)");
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
