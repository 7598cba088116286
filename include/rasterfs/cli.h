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
#include <stdint.h>

/* rasterfs status MOUNTPOINT [--json] (src/cli_status.c) */
int rfs_cli_status(int argc, char **argv);

/* rasterfs warm [--wait] PATH... */
int rfs_cli_warm(int argc, char **argv);

/* rasterfs warm --slurm[=SBATCH-OPTIONS] [--max-running K] [--wait]
 * [--dry-run] PATH... (src/cli_slurm.c): one Slurm job array of
 * `rasterfs run --shared` tasks; rfs_cli_warm hands it argv as is. */
int rfs_cli_warm_slurm(int argc, char **argv);

/* Paths given to warm, cancel and warm --slurm (cli_glob.c). */
struct rfs_cli_paths {
	char **v;
	size_t n, cap;
};

/* Add pattern to out: a DIR/GLOB@CHAIN pattern expands GLOB over the
 * real files of DIR, then appends @CHAIN; a pattern that matches
 * nothing is kept as it is, to fail visibly.  Returns 0 or -1 (no
 * memory). */
int rfs_cli_expand(const char *pattern, struct rfs_cli_paths *out);
/* Add a copy of s to p.  Returns 0 or -1 (no memory). */
int rfs_cli_paths_add(struct rfs_cli_paths *p, const char *s);
void rfs_cli_paths_free(struct rfs_cli_paths *p);

/* rasterfs cancel PATH... | rasterfs cancel --all MOUNTPOINT */
int rfs_cli_cancel(int argc, char **argv);

/* rasterfs cache [--cache DIR] [--json] [--limit SIZE]
 * stats|ls [PATTERN]|verify|gc|clear (src/cli_cache.c) */
int rfs_cli_cache(int argc, char **argv);

/* rasterfs cache gc --shared DIR [--limit SIZE] [--min-age S]
 * (src/cli_slurm.c, shared.h's rfs_shared_gc): cmd must be "gc"; limit
 * 0 evicts nothing for size.  Exit status 0, 1 (it failed), 2 (another
 * command). */
#define RFS_CLI_SHARED_MIN_AGE 3600
int rfs_cli_cache_shared(const char *cmd, const char *dir, uint64_t limit,
			 unsigned min_age, int json);

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
