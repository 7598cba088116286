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

/* rasterfs status MOUNTPOINT [--json] (src/cli_status.c) */
int rfs_cli_status(int argc, char **argv);

/* rasterfs warm [--wait] PATH... */
int rfs_cli_warm(int argc, char **argv);

/* rasterfs cancel PATH... | rasterfs cancel --all MOUNTPOINT */
int rfs_cli_cancel(int argc, char **argv);

/* rasterfs cache [--cache DIR] [--json] [--limit SIZE]
 * stats|ls [PATTERN]|verify|gc|clear (src/cli_cache.c) */
int rfs_cli_cache(int argc, char **argv);

#endif
