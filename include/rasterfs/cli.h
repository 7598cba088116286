/* cli.h - subcommands of the rasterfs binary (`rasterfs COMMAND ...`).
 *
 * Each takes argv with argv[0] the command's name and returns the process's
 * exit status: 0 success, 1 the command found problems or failed, 2 bad
 * usage.  The status commands talk to a running mount only through its
 * files: the jobs file MOUNT/.rasterfs/jobs and the extended attributes of
 * virtual files (user.rasterfs.state/progress/error, and the command names
 * user.rasterfs.warm and user.rasterfs.cancel).  The cache command opens
 * the store itself, beside any mount using it.
 */
#ifndef RASTERFS_CLI_H
#define RASTERFS_CLI_H

#include <stddef.h>

/* rasterfs status MOUNTPOINT [--json] (src/cli_status.c) */
int rfs_cli_status(int argc, char **argv);

/* rasterfs warm [--wait] PATH... */
int rfs_cli_warm(int argc, char **argv);

/* rasterfs cancel PATH... | rasterfs cancel --all MOUNTPOINT */
int rfs_cli_cancel(int argc, char **argv);

/* rasterfs cache [--cache DIR] [--json] [--limit SIZE]
 * stats|ls [PATTERN]|verify|gc|clear (src/cli_cache.c) */
int rfs_cli_cache(int argc, char **argv);

/* rasterfs check [--json] NAME... (src/cli_check.c): the grammar's
 * verdict on each name, and, for a path inside a mount, the mount's: exit
 * status 1 if any name is bad. */
int rfs_cli_check(int argc, char **argv);

/* rasterfs run [options] SRC@CHAIN [OUT] (src/cli_run.c): one output
 * without FUSE, computed as a mount computes it.  Exit status: 0 done, 1
 * the output cannot be made, 2 bad usage, 3 a failure a retry may not
 * repeat. */
int rfs_cli_run(int argc, char **argv);

/* rasterfs steps: every step with its arguments, defaults and an
 * example (step.h, rfs_steps_write). */
int rfs_cli_steps(int argc, char **argv);

/* Why a mount refused path, as `rasterfs check` says it: 1 with
 * "RFS-Ennn message" and the remedy on a second line in buf; 0 if the
 * check finds nothing wrong with the name (buf untouched). */
int rfs_cli_explain(const char *path, char *buf, size_t len);

#endif
