/* cli.h - subcommands of the rasterfs binary (`rasterfs COMMAND ...`).
 *
 * Each takes argv with argv[0] the command's name and returns the process's
 * exit status.  They talk to a running mount only through its files: the
 * jobs file MOUNT/.rasterfs/jobs and the extended attributes of virtual
 * files (user.rasterfs.state/progress/error, and the command names
 * user.rasterfs.warm and user.rasterfs.cancel).
 */
#ifndef RASTERFS_CLI_H
#define RASTERFS_CLI_H

/* rasterfs status MOUNTPOINT [--json] */
int rfs_cli_status(int argc, char **argv);

/* rasterfs warm [--wait] PATH... */
int rfs_cli_warm(int argc, char **argv);

/* rasterfs cancel PATH... | rasterfs cancel --all MOUNTPOINT */
int rfs_cli_cancel(int argc, char **argv);

#endif
