/* fs_node.c - nodes of the mount: lookup makes them, attributes describe
 * them.
 *
 * Design notes:
 *  1. Lookup and getattr never compute.  A virtual name whose output is not
 *     known yet reports size 0 with attribute timeout 0, so the kernel asks
 *     again (it also refreshes attributes on a read past the provisional
 *     EOF); open starts or joins the job and is answered when it ends.
 *  2. A virtual node stands for one key: its path, its source's identity
 *     when the lookup made it, and its canonical chain, all fixed for the
 *     node's life.  A later lookup that finds another identity for the name
 *     makes a new node (the kernel then forgets the old one when it likes).
 *     So a node's content never changes: every open keeps the kernel's page
 *     cache (keep_cache), and a handle reads the object it opened through
 *     its own fd (the store unlinks objects, never rewrites them).
 *  3. Once a node's output size is known (getattr found its entry, or an
 *     open opened its object) the size and mtime are sticky: eviction, a
 *     recompute or a changed source never change them (same key, same
 *     bytes), so the kernel's EOF never moves under an open handle and no
 *     read ends short with success.  Mode and owner are the source's (its
 *     read bits only), refreshed while the source keeps the node's identity,
 *     and checked by the kernel (default_permissions).
 *  4. An open (or an xattr) of a node whose source now has another identity
 *     fails with ESTALE.  The VFS then looks the name up again with
 *     LOOKUP_REVAL and retries once (do_filp_open; path getxattr likewise
 *     with retry_estale), which finds the new node (note 2): a reader gets
 *     the output of the source as it is now, or an error, never the old
 *     node's key computed from the new file.
 *  5. A node holds only what serving it needs (node.h): the canonical text,
 *     not the parsed chain, so 10^5 looked-up names cost tens of MB.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fs_int.h"
#include "rasterfs/err.h"
#include "rasterfs/log.h"
#include "rasterfs/resolve.h"

#define BLKSIZE (1 << 20) /* st_blksize: invites large reads (cp, GDAL) */

int fs_node_source_check(struct rfs_fs *fs, struct rfs_node *n,
			 struct stat *sst)
{
	struct stat st;
	struct rfs_src_id id;

	if (!sst)
		sst = &st;
	if (fstatat(fs->root.fd, n->src, sst, 0) < 0)
		return -errno;
	rfs_src_id_from_stat(&id, sst);
	return S_ISREG(sst->st_mode) && rfs_node_same_source(n, &id) ?
	       0 : -ESTALE;
}

/* Another size for the same key later would break "same key, same bytes":
 * the open that finds it fails rather than serve a file of another
 * length. */
int fs_node_learn_size(struct rfs_node *n, uint64_t size, int64_t mtime_ns)
{
	int rc = 0;

	pthread_mutex_lock(&n->lock);
	if (!n->sized) {
		n->sized = true;
		n->size = size;
		n->mtime_ns = mtime_ns;
	} else if (n->size != size) {
		rc = -RFS_E_INTERNAL;
	}
	pthread_mutex_unlock(&n->lock);
	if (rc < 0)
		rfs_log(LOG_ERR, "%s: the output of one key now has %llu bytes, "
			"first seen with %llu: refusing to serve it (was a "
			"step not deterministic?)", n->path,
			(unsigned long long)size, (unsigned long long)n->size);
	return rc;
}

/* ---- attributes ------------------------------------------------------- */

static int virtual_attr(struct rfs_fs *fs, struct rfs_node *n,
			struct stat *st, double *timeout)
{
	struct stat sst;
	struct rfs_store_entry e;
	uint64_t wsize;

	/* Note 3: owner and mode of the source while it is the node's. */
	if (fs_node_source_check(fs, n, &sst) == 0) {
		pthread_mutex_lock(&n->lock);
		n->src_mode = sst.st_mode;
		n->src_uid = sst.st_uid;
		n->src_gid = sst.st_gid;
		pthread_mutex_unlock(&n->lock);
	}
	pthread_mutex_lock(&n->lock);
	bool sized = n->sized;
	pthread_mutex_unlock(&n->lock);
	if (!sized &&
	    rfs_store_lookup(fs->store, &n->key, &n->id, n->canonical,
			     &e) == 0) {
		int rc = 0;
		if (fs_sidecar_of(n) == FS_SIDECAR_NONE)
			fs_node_learn_size(n, e.size, e.created_ns);
		else if ((rc = fs_sidecar_size(fs, n, &wsize)) == 0)
			fs_node_learn_size(n, wsize, e.created_ns);
		else if (rc == -ENODATA)
			return -ENOENT; /* its png has no such text */
	} else if (!sized && fs_sidecar_of(n) == FS_SIDECAR_AUX) {
		return -ENOENT; /* not before its png (fs_sidecar.c note 4) */
	}
	memset(st, 0, sizeof(*st));
	st->st_ino = n->ino;
	st->st_nlink = 1;
	st->st_blksize = BLKSIZE;
	pthread_mutex_lock(&n->lock);
	st->st_mode = S_IFREG | (n->src_mode & 0444);
	st->st_uid = n->src_uid;
	st->st_gid = n->src_gid;
	if (n->sized) {
		st->st_size = (off_t)n->size;
		st->st_blocks = (blkcnt_t)((n->size + 511) / 512);
		st->st_mtim.tv_sec = n->mtime_ns / 1000000000;
		st->st_mtim.tv_nsec = n->mtime_ns % 1000000000;
		*timeout = fs->timeout;
	} else {
		/* Note 1: provisional until the output is known. */
		st->st_mtim.tv_sec = n->id.mtime_ns / 1000000000;
		st->st_mtim.tv_nsec = n->id.mtime_ns % 1000000000;
		*timeout = 0;
	}
	pthread_mutex_unlock(&n->lock);
	st->st_atim = st->st_mtim;
	st->st_ctim = st->st_mtim;
	return 0;
}

static int real_attr(struct rfs_fs *fs, struct rfs_node *n, struct stat *st)
{
	if (fstatat(fs->root.fd, fs_rel(n->path), st, AT_SYMLINK_NOFOLLOW) < 0)
		return -errno;
	st->st_ino = n->ino;
	return 0;
}

/* A view directory has the attributes of the directory it mirrors, read
 * only: the kernel (default_permissions) lets in whoever may list that
 * directory. */
static int view_attr(struct rfs_fs *fs, struct rfs_node *n, struct stat *st)
{
	if (fstatat(fs->root.fd, fs_rel(n->src), st, AT_SYMLINK_NOFOLLOW) < 0)
		return -errno;
	if (!S_ISDIR(st->st_mode))
		return -ENOENT;
	st->st_ino = n->ino;
	st->st_mode = S_IFDIR | (st->st_mode & 0555);
	return 0;
}

static void ctl_attr(struct rfs_node *n, struct stat *st)
{
	memset(st, 0, sizeof(*st));
	st->st_ino = n->ino;
	if (n->kind == RFS_NODE_CTL_DIR) {
		st->st_mode = S_IFDIR | 0555;
		st->st_nlink = 2;
	} else {
		/* Generated at open and read with direct_io: size 0 is fine. */
		st->st_mode = S_IFREG | 0444;
		st->st_nlink = 1;
	}
	st->st_uid = getuid();
	st->st_gid = getgid();
}

int fs_node_attr(struct rfs_fs *fs, struct rfs_node *n, struct stat *st,
		 double *timeout)
{
	*timeout = fs->timeout;
	switch (n->kind) {
	case RFS_NODE_REAL:
		return real_attr(fs, n, st);
	case RFS_NODE_VIRTUAL:
		return virtual_attr(fs, n, st, timeout);
	case RFS_NODE_VIEW:
		return view_attr(fs, n, st);
	default:
		ctl_attr(n, st);
		return 0;
	}
}

int fs_node_readlink(struct rfs_fs *fs, struct rfs_node *n, char *buf,
		     size_t size)
{
	ssize_t len;

	if (n->kind != RFS_NODE_REAL)
		return -EINVAL;
	len = readlinkat(fs->root.fd, fs_rel(n->path), buf, size - 1);
	if (len < 0)
		return -errno;
	buf[len] = '\0';
	return 0;
}

/* ---- lookup ----------------------------------------------------------- */

/* The node of a virtual or sidecar name (note 2: its key is fixed here). */
static struct rfs_node *virtual_node(struct rfs_fs *fs,
				     const struct rfs_name *r)
{
	struct rfs_vnode_info vi = {
		.src = r->src,
		.canonical = r->canonical,
		.format = r->format,
		.st = &r->st,
	};

	rfs_src_id_from_stat(&vi.id, &r->st);
	rfs_key_make(&vi.key, &vi.id, r->canonical);
	return rfs_nodes_get(fs->nodes, r->path, RFS_NODE_VIRTUAL, &vi);
}

/* The node of a view directory. */
static struct rfs_node *view_node(struct rfs_fs *fs, const struct rfs_name *r)
{
	struct rfs_vnode_info vi = {
		.src = r->src,
		.canonical = r->canonical,
		.format = r->format,
	};

	return rfs_nodes_get(fs->nodes, r->path, RFS_NODE_VIEW, &vi);
}

/* A bad name is logged once per user and name a minute: QGIS looks one up
 * four times for one "add layer", and probes it again on every refresh. */
#define BAD_NAME_WINDOW 60

static void bad_name_notice(const struct rfs_name *r)
{
	char key[PATH_MAX + 32];
	unsigned held = 0;

	snprintf(key, sizeof(key), "%lu %s",
		 (unsigned long)rfs_log_get_owner(), r->path);
	if (!rfs_log_once(key, BAD_NAME_WINDOW, &held))
		return;
	if (held)
		rfs_log(LOG_NOTICE, "%s: %s %s (%u more lookups since this was "
			"last logged)", r->path, rfs_err_name(r->code), r->msg,
			held);
	else
		rfs_log(LOG_NOTICE, "%s: %s %s", r->path,
			rfs_err_name(r->code), r->msg);
}

int fs_node_lookup(struct rfs_fs *fs, struct rfs_node *dir, const char *name,
		   struct fuse_entry_param *e)
{
	struct rfs_name res, *r = &res;
	struct rfs_node *n = NULL;
	double timeout;
	int rc;

	memset(e, 0, sizeof(*e));
	if (dir->kind == RFS_NODE_VIEW) {
		struct rfs_view v = {
			.path = dir->path,
			.src = dir->src,
			.canonical = dir->canonical,
			.format = dir->format,
		};
		rc = rfs_resolve_in_view(&fs->root, &v, name, r);
	} else if (dir->kind == RFS_NODE_REAL ||
		   dir->kind == RFS_NODE_CTL_DIR) {
		rc = rfs_resolve(&fs->root, dir->path,
				 dir->kind == RFS_NODE_CTL_DIR, name, r);
	} else {
		return -ENOTDIR;
	}
	if (rc < 0)
		return rc;
	switch (r->kind) {
	case RFS_NAME_CTL_DIR:
		n = &fs->ctl_dir;
		break;
	case RFS_NAME_CTL_FILE:
		n = &fs->ctl_file[r->ctl];
		break;
	case RFS_NAME_REAL: {
		/* A regular file is its node by dev and ino too (fs_open.c
		 * note 4): one replaced by another gets a new node. */
		struct rfs_vnode_info ri = { .id = { .dev = r->st.st_dev,
						     .ino = r->st.st_ino } };
		n = rfs_nodes_get(fs->nodes, r->path, RFS_NODE_REAL,
				  S_ISREG(r->st.st_mode) ? &ri : NULL);
		break;
	}
	case RFS_NAME_VIRTUAL:
	case RFS_NAME_WORLD:
	case RFS_NAME_AUX:
		n = virtual_node(fs, r);
		break;
	case RFS_NAME_VIEW:
		n = view_node(fs, r);
		break;
	case RFS_NAME_PROBE:
		rfs_stat_inc(&fs->stats, probes);
		return -ENOENT;
	case RFS_NAME_BAD:
		rfs_stat_inc(&fs->stats, bad_names);
		bad_name_notice(r);
		return r->code;
	}
	if (!n)
		return -ENOMEM;
	if ((rc = fs_node_attr(fs, n, &e->attr, &timeout)) < 0) {
		rfs_nodes_forget(fs->nodes, n->ino, 1);
		return rc;
	}
	e->ino = n->ino;
	e->attr_timeout = timeout;
	e->entry_timeout = fs->timeout;
	return 0;
}
