/* cli.h - subcommands of the rasterfs binary (`rasterfs COMMAND ...`).
 *
 * Each returns the process exit status: 0 success, 1 the command found
 * problems or failed, 2 bad usage. */
#ifndef RASTERFS_CLI_H
#define RASTERFS_CLI_H

/* `rasterfs cache [--cache DIR] [--json] [--limit SIZE]
 *  stats|verify|gc|clear` (src/cli_cache.c).  argv[0] is "cache". */
int rfs_cli_cache(int argc, char **argv);

#endif
