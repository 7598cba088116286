/* pin.h - opening a job's source once, beneath its root (pool.c note
 * 10): the descriptor a worker reads and the identity its key is made
 * from are the same file by construction.
 *
 * The mount's open path (fs_open.c) and `rasterfs run` (cli_run.c) both
 * pin this way, so a name means the same file to both.
 */
#ifndef RASTERFS_PIN_H
#define RASTERFS_PIN_H

#include <sys/stat.h>

#include "rasterfs/resolve.h"

/* Open path (below root) read-only: beneath the root whatever its
 * symlinks say (openat2 RESOLVE_BENEATH; an absolute symlink that points
 * inside the root is resolved and opened beneath it again), without
 * blocking on a FIFO (O_NONBLOCK, then only a regular file is kept).
 * Returns the descriptor (O_CLOEXEC, blocking again) and its stat in
 * *st, or -RFS_E_ESCAPE (it leads outside the root), -ENOENT (gone, or
 * not a regular file), -errno. */
int rfs_pin_source(const struct rfs_root *root, const char *path,
		   struct stat *st);

#endif
