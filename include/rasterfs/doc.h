/* doc.h - the documentation written from the tables: `rasterfs --help`,
 * the man page rasterfs(1) and the words of shell completion.
 *
 * Each thing rasterfs documents has one table, and every text about it is
 * generated from that table, so none can say what the code does not do:
 *   - the mount options: an array of struct rfs_option (src/main.c), from
 *     which main.c also builds libfuse's fuse_opt list (an option that is
 *     parsed is an option that is documented);
 *   - the commands: an array of struct rfs_command (src/main.c), which
 *     main.c dispatches from;
 *   - the steps: the step table (step.h; rfs_steps_man, rfs_steps_complete);
 *   - the error codes: err.c's table (rfs_err_code_at);
 *   - the files of MOUNTPOINT/.rasterfs: rfs_ctl_names (resolve.h).
 * The man page's prose lives in docs/rasterfs.1.in, roff with one line
 * "@RFS_<SECTION>@" where a generated block goes; the build runs
 * `rasterfs --internal-man docs/rasterfs.1.in` (meson.build), so the
 * installed page is always the binary's own.
 */
#ifndef RASTERFS_DOC_H
#define RASTERFS_DOC_H

#include <stdio.h>

/* Hidden arguments of the binary: `rasterfs --internal-man TEMPLATE`
 * prints the man page (rfs_doc_man), `rasterfs --internal-complete` the
 * completion words (rfs_doc_complete). */
#define RFS_DOC_MAN_ARG "--internal-man"
#define RFS_DOC_COMPLETE_ARG "--internal-complete"

/* One mount option (-o NAME[=ARG]).  A row with templ is rasterfs's own
 * and main.c parses it with fuse_opt; a row without is libfuse's, passed
 * on and documented here because users need it. */
struct rfs_option {
	const char *name;   /* "cache" */
	const char *arg;    /* what follows '=': "DIR", "0|1"; NULL: a flag */
	const char *dflt;   /* the default, for people; NULL: none */
	const char *what;   /* one line, for --help and the man page */
	const char *more;   /* more for the man page, or NULL */
	/* parsing (main.c) */
	const char *templ;  /* fuse_opt template: "cache=%s"; NULL: libfuse's */
	const char *given;  /* "retry_after=": sets the int at given_at to 1,
			       telling "0" from "not given"; or NULL */
	unsigned long at;   /* offset of the value */
	unsigned long given_at;
	int key;            /* nonzero: handed to the option callback with
			       this key (view=) instead of stored at at */
};

/* One subcommand: `rasterfs NAME ARGS...`. */
struct rfs_command {
	const char *name;
	int (*run)(int argc, char **argv); /* argv[0] is the command name */
	/* Its arguments as a synopsis: "[--json] NAME...".  Completion
	 * reads it: "--x" is an option (taking the next word when that is
	 * upper case), a lower-case word a subcommand, NAME and PATH a
	 * virtual path, MOUNTPOINT and DIR a directory. */
	const char *args;
	const char *summary;  /* one line */
	const char *more;     /* more for the man page, or NULL */
};

/* `rasterfs --help`: usage, the options (opts ends with a NULL name) and
 * the commands (cmds ends with a NULL name), at most 78 columns. */
void rfs_doc_help(FILE *f, const char *prog, const struct rfs_option *opts,
		  const struct rfs_command *cmds);

/* The man page: the template at path with its @RFS_<SECTION>@ lines
 * replaced (SYNOPSIS, COMMANDS, FLAGS, OPTIONS, STEPS, ERRORS,
 * CTL_FILES; each must be there once) and @RFS_VERSION@ anywhere.
 * Returns 0, or -errno (the template cannot be read) or -EINVAL (an
 * unknown or missing placeholder; said on stderr). */
int rfs_doc_man(FILE *f, const char *path, const struct rfs_option *opts,
		const struct rfs_command *cmds);

/* The words of shell completion (completions/rasterfs), one item a line,
 * fields separated by one blank:
 *   C NAME WORD...   a command and the words of its synopsis (see args)
 *   F FLAG...        the flags of a mount (-f, -o, ...)
 *   O NAME[=] [ARG]  a mount option ("cache= DIR"; a flag has no '=')
 * then the step table's lines (rfs_steps_complete). */
void rfs_doc_complete(FILE *f, const struct rfs_option *opts,
		      const struct rfs_command *cmds);

/* Write text from column col, breaking at blanks so that no line passes
 * width (a longer word gets a line of its own); continuation lines start
 * at column indent.  Ends the line. */
void rfs_doc_wrap(FILE *f, const char *text, int col, int indent, int width);

/* text as roff: '\', '-' and '`' escaped; a leading '.' or '\'' made
 * plain. */
void rfs_doc_roff(FILE *f, const char *text);

#endif
