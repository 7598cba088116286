/* doc.c - `rasterfs --help`, rasterfs(1) and the completion words, written
 * from the tables (doc.h).
 *
 * Why a generator and not a checked-in page: the page would be one more
 * copy of four tables, and a test comparing it with them would only say,
 * after the fact, that someone forgot to regenerate it.  The build runs
 * the binary it has just linked (`rasterfs --internal-man`, a
 * custom_target), so the page installed is the one of the code installed.
 * The prose around the tables stays roff in docs/rasterfs.1.in, where it
 * is read and edited as a man page.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rasterfs/doc.h"
#include "rasterfs/err.h"
#include "rasterfs/resolve.h"
#include "rasterfs/step.h"

#define WIDTH 78
#define OPT_COL 23 /* where --help's option texts start */

/* The flags of a mount, as libfuse's fuse_parse_cmdline() takes them. */
static const struct {
	const char *flags; /* ", "-separated spellings */
	const char *arg;
	const char *what;
} mount_flags[] = {
	{ "-f", NULL, "stay in the foreground and log to stderr (without it "
	  "rasterfs returns once the mount is usable, and logs to syslog or "
	  "to the state directory's log file)" },
	{ "-d", NULL, "debug output, FUSE requests included; implies -f" },
	{ "-s", NULL, "serve FUSE requests from one thread" },
	{ "-o", "OPTION[,OPTION...]", "mount options (Mount options, below)" },
	{ "-h, --help", NULL, "print the options and commands, then libfuse's" },
	{ "-V, --version", NULL, "print the versions of rasterfs, libfuse and "
	  "GDAL" },
};

/* What each file of MOUNTPOINT/.rasterfs is (resolve.h, rfs_ctl_names). */
static const char *const ctl_what[RFS_CTL_NFILES] = {
	[RFS_CTL_STATS] = "what the mount did, one JSON object: jobs started, "
		"done, failed, cancelled, running and queued, cache hits and "
		"misses, refused names, workers restarted, store objects and "
		"bytes",
	[RFS_CTL_JOBS] = "the jobs, one JSON object a line: the last 100 that "
		"ended, then those queued or running (a user sees the jobs "
		"they asked for; root and the mount's owner all)",
	[RFS_CTL_LOG] = "the mount's last log lines, oldest first (a user "
		"reads the lines of their own requests)",
	[RFS_CTL_STEPS] = "the text of `rasterfs steps`",
};

/* ------------------------------------------------------------------ */
/* Text */

void rfs_doc_wrap(FILE *f, const char *text, int col, int indent, int width)
{
	const char *p = text;
	int first = 1;

	while (*p) {
		size_t n = strcspn(p, " ");
		if (!first && col + 1 + (int)n > width) {
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

/* "name=ARG" or "name" into buf. */
static const char *opt_label(const struct rfs_option *o, char *buf,
			     size_t len)
{
	snprintf(buf, len, "%s%s%s", o->name, o->arg ? "=" : "",
		 o->arg ? o->arg : "");
	return buf;
}

static void help_option(FILE *f, const struct rfs_option *o)
{
	char label[64], text[1024];
	int n;

	opt_label(o, label, sizeof(label));
	n = fprintf(f, "    %s", label);
	if (n + 2 > OPT_COL) {
		fprintf(f, "\n%*s", OPT_COL, "");
	} else {
		fprintf(f, "%*s", OPT_COL - n, "");
	}
	if (o->dflt)
		snprintf(text, sizeof(text), "%s (default: %s)", o->what,
			 o->dflt);
	else
		snprintf(text, sizeof(text), "%s", o->what);
	rfs_doc_wrap(f, text, OPT_COL, OPT_COL, WIDTH);
}

void rfs_doc_help(FILE *f, const char *prog, const struct rfs_option *opts,
		  const struct rfs_command *cmds)
{
	const struct rfs_option *o;

	fprintf(f, "usage: %s [options] SOURCE_DIR MOUNTPOINT\n"
		"       %s COMMAND [ARGS...]\n\n", prog, prog);
	rfs_doc_wrap(f, "Serve the rasters of SOURCE_DIR at MOUNTPOINT, each "
		     "with virtual siblings named FILE@step[@step...], e.g. "
		     "dem.tif@proj=EPSG:3857@focal=3 (`rasterfs steps` lists "
		     "the steps; man rasterfs says more).", 0, 0, WIDTH);
	fprintf(f, "\nrasterfs options (-o NAME=VALUE[,...]):\n");
	for (o = opts; o->name; o++)
		if (o->templ)
			help_option(f, o);
	fprintf(f, "\nFUSE options often used (libfuse's; all of them "
		"below):\n");
	for (o = opts; o->name; o++)
		if (!o->templ)
			help_option(f, o);
	fprintf(f, "\ncommands:\n");
	for (const struct rfs_command *c = cmds; c->name; c++) {
		char text[512];
		snprintf(text, sizeof(text), "%s %s %s", prog, c->name, c->args);
		fprintf(f, "    ");
		rfs_doc_wrap(f, text, 4, 8, WIDTH);
		fprintf(f, "%*s", 8, "");
		rfs_doc_wrap(f, c->summary, 8, 8, WIDTH);
	}
	fprintf(f, "\n");
}

/* ------------------------------------------------------------------ */
/* roff */

void rfs_doc_roff(FILE *f, const char *text)
{
	if (text[0] == '.' || text[0] == '\'')
		fputs("\\&", f);
	for (const char *p = text; *p; p++) {
		if (*p == '\\')
			fputs("\\e", f);
		else if (*p == '-')
			fputs("\\-", f);
		else if (*p == '`')
			fputs("\\(ga", f);
		else
			fputc(*p, f);
	}
}

static bool is_word_char(int c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	       (c >= '0' && c <= '9') || c == '_' || c == '-';
}

/* A synopsis ("[--cache DIR] stats|ls [PATTERN]") in man(7)'s fonts:
 * options and literal words bold, placeholders (upper case) italic. */
static void roff_synopsis(FILE *f, const char *args)
{
	const char *p = args;

	while (*p) {
		size_t n = 0;
		while (is_word_char((unsigned char)p[n]))
			n++;
		if (n == 0) {
			char c[2] = { *p, '\0' };
			rfs_doc_roff(f, c);
			p++;
			continue;
		}
		bool upper = p[0] >= 'A' && p[0] <= 'Z';
		char word[128];
		snprintf(word, sizeof(word), "%.*s", (int)n, p);
		fputs(upper ? "\\fI" : "\\fB", f);
		rfs_doc_roff(f, word);
		fputs("\\fR", f);
		p += n;
	}
}

static void man_synopsis(FILE *f, const struct rfs_command *cmds)
{
	for (const struct rfs_command *c = cmds; c->name; c++) {
		fprintf(f, ".br\n\\fBrasterfs %s\\fR ", c->name);
		roff_synopsis(f, c->args);
		fputc('\n', f);
	}
}

static void man_commands(FILE *f, const struct rfs_command *cmds)
{
	for (const struct rfs_command *c = cmds; c->name; c++) {
		fprintf(f, ".TP\n\\fBrasterfs %s\\fR ", c->name);
		roff_synopsis(f, c->args);
		fputc('\n', f);
		rfs_doc_roff(f, c->summary);
		fputs(".\n", f);
		if (c->more) {
			rfs_doc_roff(f, c->more);
			fputc('\n', f);
		}
	}
}

static void man_flags(FILE *f)
{
	for (size_t i = 0; i < sizeof(mount_flags) / sizeof(mount_flags[0]);
	     i++) {
		fputs(".TP\n\\fB", f);
		rfs_doc_roff(f, mount_flags[i].flags);
		fputs("\\fR", f);
		if (mount_flags[i].arg) {
			fputs(" \\fI", f);
			rfs_doc_roff(f, mount_flags[i].arg);
			fputs("\\fR", f);
		}
		fputc('\n', f);
		rfs_doc_roff(f, mount_flags[i].what);
		fputs(".\n", f);
	}
}

static void man_options(FILE *f, const struct rfs_option *opts, bool own)
{
	for (const struct rfs_option *o = opts; o->name; o++) {
		if (!o->templ == own)
			continue;
		fputs(".TP\n\\fB", f);
		rfs_doc_roff(f, o->name);
		if (o->arg) {
			fputs("=\\fI", f);
			rfs_doc_roff(f, o->arg);
		}
		fputs("\\fR\n", f);
		rfs_doc_roff(f, o->what);
		fputs(".\n", f);
		if (o->more) {
			rfs_doc_roff(f, o->more);
			fputc('\n', f);
		}
		if (o->dflt) {
			fputs("Default: ", f);
			rfs_doc_roff(f, o->dflt);
			fputs(".\n", f);
		}
	}
}

static void man_errors(FILE *f)
{
	int code;

	for (size_t i = 0; (code = rfs_err_code_at(i)) != 0; i++) {
		const char *en = strerrorname_np(rfs_err_errno(code));
		fprintf(f, ".TP\n\\fB");
		rfs_doc_roff(f, rfs_err_name(code));
		fprintf(f, "\\fR (%s)\n", en ? en : "?");
		rfs_doc_roff(f, rfs_strerror(code));
		fputs(".\n.br\nWhat to do: ", f);
		rfs_doc_roff(f, rfs_err_remedy(code) ? rfs_err_remedy(code) :
			     "report it with the log");
		fputs(".\n", f);
	}
}

static int man_ctl_files(FILE *f)
{
	for (int i = 0; i < RFS_CTL_NFILES; i++) {
		if (!ctl_what[i]) {
			fprintf(stderr, "rasterfs: doc.c describes no "
				".rasterfs/%s\n", rfs_ctl_names[i]);
			return -EINVAL;
		}
		fprintf(f, ".TP\n\\fIMOUNTPOINT\\fB/%s/%s\\fR\n", RFS_CTL_DIR,
			rfs_ctl_names[i]);
		rfs_doc_roff(f, ctl_what[i]);
		fputs(".\n", f);
	}
	return 0;
}

enum { B_SYNOPSIS, B_COMMANDS, B_FLAGS, B_OPTIONS, B_FUSE_OPTIONS, B_STEPS,
       B_ERRORS, B_CTL_FILES, B_COUNT };

static const char *const block_names[B_COUNT] = {
	[B_SYNOPSIS] = "SYNOPSIS", [B_COMMANDS] = "COMMANDS",
	[B_FLAGS] = "FLAGS", [B_OPTIONS] = "OPTIONS",
	[B_FUSE_OPTIONS] = "FUSE_OPTIONS", [B_STEPS] = "STEPS",
	[B_ERRORS] = "ERRORS", [B_CTL_FILES] = "CTL_FILES",
};

/* Write line with @RFS_VERSION@ replaced; -EINVAL on another @RFS_. */
static int man_line(FILE *f, const char *line, const char *path, int lineno)
{
	const char *p = line, *at;

	while ((at = strstr(p, "@RFS_")) != NULL) {
		fwrite(p, 1, (size_t)(at - p), f);
		if (strncmp(at, "@RFS_VERSION@", 13) != 0) {
			fprintf(stderr, "%s:%d: unknown placeholder %.20s\n",
				path, lineno, at);
			return -EINVAL;
		}
		fputs(RFS_VERSION, f);
		p = at + 13;
	}
	fputs(p, f);
	return 0;
}

int rfs_doc_man(FILE *f, const char *path, const struct rfs_option *opts,
		const struct rfs_command *cmds)
{
	FILE *in = fopen(path, "r");
	char *line = NULL;
	size_t cap = 0;
	ssize_t n;
	int seen[B_COUNT] = { 0 }, lineno = 0, rc = 0;

	if (!in)
		return -errno;
	while (rc == 0 && (n = getline(&line, &cap, in)) >= 0) {
		int b;
		lineno++;
		if (n > 0 && line[n - 1] == '\n')
			line[--n] = '\0';
		for (b = 0; b < B_COUNT; b++) {
			size_t l = strlen(block_names[b]);
			if (strncmp(line, "@RFS_", 5) == 0 &&
			    strncmp(line + 5, block_names[b], l) == 0 &&
			    strcmp(line + 5 + l, "@") == 0)
				break;
		}
		if (b == B_COUNT) {
			rc = man_line(f, line, path, lineno);
			fputc('\n', f);
			continue;
		}
		seen[b]++;
		switch (b) {
		case B_SYNOPSIS: man_synopsis(f, cmds); break;
		case B_COMMANDS: man_commands(f, cmds); break;
		case B_FLAGS: man_flags(f); break;
		case B_OPTIONS: man_options(f, opts, true); break;
		case B_FUSE_OPTIONS: man_options(f, opts, false); break;
		case B_STEPS: rfs_steps_man(f); break;
		case B_ERRORS: man_errors(f); break;
		case B_CTL_FILES: rc = man_ctl_files(f); break;
		}
	}
	for (int b = 0; rc == 0 && b < B_COUNT; b++)
		if (seen[b] != 1) {
			fprintf(stderr, "%s: @RFS_%s@ is there %d times, not "
				"once\n", path, block_names[b], seen[b]);
			rc = -EINVAL;
		}
	if (rc == 0 && ferror(in))
		rc = -EIO;
	free(line);
	fclose(in);
	return rc;
}

/* ------------------------------------------------------------------ */
/* Completion words */

void rfs_doc_complete(FILE *f, const struct rfs_option *opts,
		      const struct rfs_command *cmds)
{
	for (const struct rfs_command *c = cmds; c->name; c++) {
		const char *p = c->args;
		fprintf(f, "C %s", c->name);
		while (*p) {
			size_t n = 0;
			while (is_word_char((unsigned char)p[n]))
				n++;
			if (n)
				fprintf(f, " %.*s", (int)n, p);
			p += n ? n : 1;
		}
		fputc('\n', f);
	}
	fputs("F", f);
	for (size_t i = 0; i < sizeof(mount_flags) / sizeof(mount_flags[0]);
	     i++) {
		const char *p = mount_flags[i].flags;
		while (*p) {
			size_t n = strcspn(p, ", ");
			fprintf(f, " %.*s", (int)n, p);
			p += n;
			p += strspn(p, ", ");
		}
	}
	fputc('\n', f);
	for (const struct rfs_option *o = opts; o->name; o++) {
		if (o->arg)
			fprintf(f, "O %s= %s\n", o->name, o->arg);
		else
			fprintf(f, "O %s\n", o->name);
	}
	rfs_steps_complete(f);
}
