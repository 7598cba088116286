/* fs.h - the FUSE layer: names, inodes, replies.
 *
 * Only replies and inode bookkeeping live here; processing is the pool's,
 * storage the store's.  The layer is read-only (writes get EROFS) and a
 * superset of the source tree: real files and directories pass through
 * unchanged, and every regular file gains virtual siblings
 * "<file>@<chain>", plus the control directory MOUNT/.rasterfs
 * (RFS_CTL_DIR, resolve.h).  Its rooms are src/fs*.c (src/fs_int.h).
 */
#ifndef RASTERFS_FS_H
#define RASTERFS_FS_H

#include <fuse_lowlevel.h>

#include "rasterfs/describer.h"
#include "rasterfs/pool.h"
#include "rasterfs/resolve.h"
#include "rasterfs/stats.h"
#include "rasterfs/store.h"

typedef struct rfs_fs rfs_fs;

/* The operations, to give fuse_session_new() with the rfs_fs as its
 * userdata. */
extern const struct fuse_lowlevel_ops rfs_fs_ops;

/* Open the source root source_dir and make the inode table.  Returns 0
 * and *out, or -ENOTDIR, -ENOMEM, -errno (it cannot be resolved or
 * opened). */
int rfs_fs_new(const char *source_dir, rfs_fs **out);

/* Which files views list as rasters (rasterext.h; copied).  Before the
 * session starts; until then views list only directories.  Returns 0 or
 * -ENOMEM. */
int rfs_fs_set_rasters(rfs_fs *fs, const struct rfs_rasterext *s);

/* Add the named view spec, the value of the mount option view=NAME:CHAIN
 * (rfs_resolve_named_view), before the session starts.  Returns 0, or
 * -RFS_E_OPTION with a sentence in msg (a bad NAME or chain, NAME an entry
 * of the source root or a view already), -ENOMEM. */
int rfs_fs_add_view(rfs_fs *fs, const char *spec, char *msg, size_t len);

/* The source root's realpath. */
const char *rfs_fs_root(const rfs_fs *fs);

/* The mount's counters (MOUNT/.rasterfs/stats), for the pool to bump too. */
struct rfs_stats *rfs_fs_stats(rfs_fs *fs);

/* Serve from store with pool; before the session starts.  Neither is
 * owned. */
void rfs_fs_attach(rfs_fs *fs, rfs_store *store, rfs_pool *pool);

/* Describe GeoTIFF outputs with d before they are computed, so that
 * lookups and getattrs report their exact size (describer.h); before the
 * session starts.  Not owned.  Without one, outputs are provisional (size
 * 0) until computed. */
void rfs_fs_attach_describer(rfs_fs *fs, rfs_describer *d);

/* want 0: never serve opens by FUSE passthrough (the mount option
 * passthrough=0); 1 (the default): when the kernel and the daemon's
 * privileges allow it, decided at FUSE init and logged.  Before the
 * session starts. */
void rfs_fs_set_passthrough(rfs_fs *fs, int want);

/* The session that serves fs, for the notifications it sends the kernel
 * (a real file's attributes are stale: fs_open.c note 4).  Before the
 * session starts. */
/* lazy=: 1 (the default) opens large outputs before they are computed
 * (lazy.h); 0 computes every output whole.  complete=: 1 finishes an
 * opened lazy output in the background, 0 (the default) computes only
 * what is read.  Before the session starts. */
void rfs_fs_set_lazy(rfs_fs *fs, int lazy, int complete);

/* Stop background work that writes to the store (the assembly of a large
 * output's blocks, docs/large-outputs.md) and wait for it; before the
 * store closes.  NULL ok. */
void rfs_fs_stop(rfs_fs *fs);

void rfs_fs_set_session(rfs_fs *fs, struct fuse_session *se);

/* How `rasterfs run` computes this mount's outputs elsewhere (a Slurm
 * task of `rasterfs warm --slurm`): text the attribute user.rasterfs.run
 * of a virtual file starts with, "shared=DIR\noptions=-o-OPTIONS\n"
 * (copied; cli_slurm.c reads it).  Before the session starts.  Returns
 * 0 or -ENOMEM. */
int rfs_fs_set_run(rfs_fs *fs, const char *text);

/* NULL ok. */
void rfs_fs_free(rfs_fs *fs);

#endif
