/* fs.h - the FUSE layer: names, inodes, replies.
 *
 * Only replies and inode bookkeeping live here; processing is the pool's,
 * storage the store's.  The layer is read-only (writes get EROFS) and a
 * superset of the source tree: real files and directories pass through
 * unchanged, and every regular file gains virtual siblings
 * "<file>@<chain>", plus the control directory MOUNT/.rasterfs.
 */
#ifndef RASTERFS_FS_H
#define RASTERFS_FS_H

#include <fuse_lowlevel.h>

#include "rasterfs/node.h"
#include "rasterfs/pool.h"
#include "rasterfs/stats.h"
#include "rasterfs/store.h"

#define RFS_CTL_DIR ".rasterfs"

struct rfs_fs {
	char *root;              /* realpath of the source directory */
	size_t rootlen;
	int rootfd;              /* O_PATH|O_DIRECTORY fd of root */
	struct rfs_nodes *nodes;
	rfs_store *store;
	rfs_pool *pool;
	struct rfs_stats stats;
	double timeout;          /* entry/attr timeout of stable answers */
	struct rfs_node ctl_dir;
	struct rfs_node ctl_stats;
	struct rfs_node ctl_jobs;
};

extern const struct fuse_lowlevel_ops rfs_fs_ops;

/* Open the source root and make the inode table.  store and pool are set by
 * the caller afterwards.  Returns 0, or -errno (root is not a directory,
 * cannot be opened...). */
int rfs_fs_init(struct rfs_fs *fs, const char *source_dir);
void rfs_fs_destroy(struct rfs_fs *fs);

/* Is name a GDAL sibling probe of a virtual name (X.aux.xml, X.ovr, X.msk,
 * X.aux, ...)?  Pure. */
int rfs_fs_is_probe(const char *name);

#endif
