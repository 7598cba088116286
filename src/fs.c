/* fs.c - the FUSE low-level operations.
 *
 * Design notes:
 *  1. Helpers return 0 or a negative code; only the thin op wrappers call
 *     fuse_reply_*, with rfs_err_errno() turning codes into errnos.
 *  2. Lookup and getattr never compute.  A virtual name whose output is not
 *     known yet reports size 0 with attribute timeout 0, so the kernel asks
 *     again (it also refreshes attributes on a read past the provisional
 *     EOF); open starts or joins the job and is answered when it ends.
 *  3. A waiting open holds no thread: its request is parked with the job and
 *     replied to from the pool's or the committer's thread.  An interrupt
 *     (Ctrl-C on the reader) answers EINTR at once and detaches the waiter
 *     from the job; the pool cancels a job whose last waiter went this way
 *     (rfs_pool_cancel_waiter, called under the request's lock).
 *  4. A virtual node stands for one key: its path, its source's identity
 *     when the lookup made it, and its canonical chain, all fixed for the
 *     node's life.  A later lookup that finds another identity for the name
 *     makes a new node (the kernel then forgets the old one when it likes).
 *     So a node's content never changes: every open keeps the kernel's page
 *     cache (keep_cache), and a handle reads the object it opened through
 *     its own fd (the store unlinks objects, never rewrites them).
 *  5. Once a node's output size is known (getattr found its entry, or an
 *     open opened its object) the size and mtime are sticky: eviction, a
 *     recompute or a changed source never change them (same key, same
 *     bytes), so the kernel's EOF never moves under an open handle and no
 *     read ends short with success.  Mode and owner are the source's (its
 *     read bits only), refreshed while the source keeps the node's identity,
 *     and checked by the kernel (default_permissions).
 *  6. An open (or an xattr) of a node whose source now has another identity
 *     fails with ESTALE.  The VFS then looks the name up again with
 *     LOOKUP_REVAL and retries once (do_filp_open; path getxattr likewise
 *     with retry_estale), which finds the new node (note 4): a reader gets
 *     the output of the source as it is now, or an error, never the old
 *     node's key computed from the new file.
 *  7. A node holds only what serving it needs (node.h): the canonical text,
 *     not the parsed chain, so 10^5 looked-up names cost tens of MB.
 */
#include <assert.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <linux/openat2.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "fs_int.h"
#include "rasterfs/chain.h"
#include "rasterfs/crs.h"
#include "rasterfs/step.h"
#include "rasterfs/err.h"
#include "rasterfs/fs.h"
#include "rasterfs/log.h"

#define BLKSIZE (1 << 20) /* st_blksize: invites large reads (cp, GDAL) */

struct rfs_fs *fs_of(fuse_req_t req)
{
	return fuse_req_userdata(req);
}

struct rfs_node *node_of(fuse_req_t req, fuse_ino_t ino)
{
	return rfs_nodes_find(fs_of(req)->nodes, ino);
}


/* --- attributes ---------------------------------------------------- */

/* The source of n as it is now: 0 if it still has n's identity, -ESTALE if
 * it has another (note 6), -errno if it cannot be stat'ed.  *sst (may be
 * NULL) gets its stat. */
int source_check(struct rfs_fs *fs, struct rfs_node *n,
			struct stat *sst)
{
	struct stat st;
	struct rfs_src_id id;

	if (!sst)
		sst = &st;
	if (fstatat(fs->rootfd, n->src, sst, 0) < 0)
		return -errno;
	rfs_src_id_from_stat(&id, sst);
	return S_ISREG(sst->st_mode) && rfs_node_same_source(n, &id) ?
	       0 : -ESTALE;
}

/* Note 5: the first size known for n's output sticks.  Another size for
 * the same key later would break "same key, same bytes": the open that
 * finds it fails rather than serve a file of another length. */
int node_learn_size(struct rfs_node *n, uint64_t size,
			   int64_t mtime_ns)
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

static int virtual_attr(struct rfs_fs *fs, struct rfs_node *n,
			struct stat *st, double *timeout)
{
	struct stat sst;
	struct rfs_store_entry e;
	uint64_t wsize;

	/* Note 5: owner and mode of the source while it is the node's. */
	if (source_check(fs, n, &sst) == 0) {
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
		if (!is_world(n))
			node_learn_size(n, e.size, e.created_ns);
		else if ((rc = world_size(fs, n, &wsize)) == 0)
			node_learn_size(n, wsize, e.created_ns);
		else if (rc == -ENODATA)
			return -ENOENT; /* a png without a georeference */
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
		/* Note 2: provisional until the output is known. */
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
	if (fstatat(fs->rootfd, rel(n->path), st, AT_SYMLINK_NOFOLLOW) < 0)
		return -errno;
	st->st_ino = n->ino;
	return 0;
}

static int node_attr(struct rfs_fs *fs, struct rfs_node *n, struct stat *st,
		     double *timeout)
{
	*timeout = fs->timeout;
	switch (n->kind) {
	case RFS_NODE_REAL:
		return real_attr(fs, n, st);
	case RFS_NODE_VIRTUAL:
		return virtual_attr(fs, n, st, timeout);
	default:
		ctl_attr(n, st);
		return 0;
	}
}

/* --- lookup -------------------------------------------------------- */

/* The node of a virtual name: src, chain and the source's stat from
 * resolve_virtual/resolve_world (note 4: its key is fixed here). */
static struct rfs_node *virtual_node(struct rfs_fs *fs, const char *path,
				     const char *src,
				     const struct rfs_chain *chain,
				     const struct stat *sst)
{
	struct rfs_vnode_info vi = {
		.src = src,
		.canonical = chain->canonical,
		.format = chain->format,
		.st = sst,
	};

	rfs_src_id_from_stat(&vi.id, sst);
	rfs_key_make(&vi.key, &vi.id, chain->canonical);
	return rfs_nodes_get(fs->nodes, path, RFS_NODE_VIRTUAL, &vi);
}

static int do_lookup(fuse_req_t req, fuse_ino_t parent, const char *name,
		     struct fuse_entry_param *e)
{
	struct rfs_fs *fs = fs_of(req);
	struct rfs_node *dir = node_of(req, parent), *n;
	char path[PATH_MAX], src[PATH_MAX], msg[RFS_MSG_MAX] = "";
	struct rfs_chain chain;
	struct stat st;
	double timeout;
	int rc;

	memset(e, 0, sizeof(*e));
	if (dir->kind == RFS_NODE_CTL_DIR) {
		if (strcmp(name, "stats") == 0)
			n = &fs->ctl_stats;
		else if (strcmp(name, "jobs") == 0)
			n = &fs->ctl_jobs;
		else
			return -ENOENT;
		goto found;
	}
	if (dir->kind != RFS_NODE_REAL)
		return -ENOTDIR;
	if (dir->path[0] == '\0' && strcmp(name, RFS_CTL_DIR) == 0) {
		n = &fs->ctl_dir;
		goto found;
	}
	if ((rc = join_path(path, sizeof(path), dir->path, name)) < 0)
		return rc;

	/* A real file wins, even one whose name has an '@'. */
	if (fstatat(fs->rootfd, path, &st, AT_SYMLINK_NOFOLLOW) == 0) {
		n = rfs_nodes_get(fs->nodes, path, RFS_NODE_REAL, NULL);
		goto found;
	}
	if (errno != ENOENT || !strchr(name, '@'))
		return -errno;
	if (world_suffix(name) &&
	    resolve_world(fs, dir->path, name, src, &chain, &st) == 0) {
		n = virtual_node(fs, path, src, &chain, &st);
		goto found;
	}
	if (rfs_fs_is_probe(name)) {
		rfs_stat_inc(&fs->stats, probes);
		return -ENOENT;
	}
	rc = resolve_virtual(fs, dir->path, name, src, &chain, &st, msg,
			     sizeof(msg));
	if (rc < 0) {
		rfs_stat_inc(&fs->stats, bad_names);
		rfs_log(LOG_NOTICE, "%s: %s %s", path, rfs_err_name(rc), msg);
		return rc;
	}
	n = virtual_node(fs, path, src, &chain, &st);
found:
	if (!n)
		return -ENOMEM;
	if ((rc = node_attr(fs, n, &e->attr, &timeout)) < 0) {
		rfs_nodes_forget(fs->nodes, n->ino, 1);
		return rc;
	}
	e->ino = n->ino;
	e->attr_timeout = timeout;
	e->entry_timeout = fs->timeout;
	return 0;
}

static void fs_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct fuse_entry_param e;
	int rc = do_lookup(req, parent, name, &e);

	if (rc == -ENOENT) {
		/* A negative entry: the kernel remembers it for a while, so
		 * GDAL's repeated sibling probes never reach us twice. */
		memset(&e, 0, sizeof(e));
		e.entry_timeout = fs_of(req)->timeout;
		fuse_reply_entry(req, &e);
		return;
	}
	if (rc < 0)
		fuse_reply_err(req, rfs_err_errno(rc));
	else
		fuse_reply_entry(req, &e);
}

static void fs_forget(fuse_req_t req, fuse_ino_t ino, uint64_t nlookup)
{
	rfs_nodes_forget(fs_of(req)->nodes, ino, nlookup);
	fuse_reply_none(req);
}

static void fs_forget_multi(fuse_req_t req, size_t count,
			    struct fuse_forget_data *forgets)
{
	for (size_t i = 0; i < count; i++)
		rfs_nodes_forget(fs_of(req)->nodes, forgets[i].ino,
				 forgets[i].nlookup);
	fuse_reply_none(req);
}

static void fs_getattr(fuse_req_t req, fuse_ino_t ino,
		       struct fuse_file_info *fi)
{
	struct stat st;
	double timeout;
	int rc = node_attr(fs_of(req), node_of(req, ino), &st, &timeout);
	(void)fi;

	if (rc < 0)
		fuse_reply_err(req, rfs_err_errno(rc));
	else
		fuse_reply_attr(req, &st, timeout);
}

static void fs_readlink(fuse_req_t req, fuse_ino_t ino)
{
	struct rfs_node *n = node_of(req, ino);
	char buf[PATH_MAX + 1];
	ssize_t len;

	if (n->kind != RFS_NODE_REAL) {
		fuse_reply_err(req, EINVAL);
		return;
	}
	len = readlinkat(fs_of(req)->rootfd, rel(n->path), buf, PATH_MAX);
	if (len < 0) {
		fuse_reply_err(req, errno);
		return;
	}
	buf[len] = '\0';
	fuse_reply_readlink(req, buf);
}
void handle_free(struct handle *h)
{
	if (h->fd >= 0)
		close(h->fd);
	free(h);
}

int reply_open_fd(fuse_req_t req, struct fuse_file_info *fi, int fd,
			 int keep_cache, int direct_io)
{
	struct handle *h = malloc(sizeof(*h));

	if (!h) {
		close(fd);
		return fuse_reply_err(req, ENOMEM);
	}
	h->fd = fd;
	h->len = 0;
	fi->fh = (uint64_t)(uintptr_t)h;
	fi->keep_cache = keep_cache;
	fi->direct_io = direct_io;
	if (fuse_reply_open(req, fi) != 0) {
		/* The reader went away; no release will come. */
		handle_free(h);
		return -1;
	}
	return 0;
}
static void fs_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct rfs_fs *fs = fs_of(req);
	struct rfs_node *n = node_of(req, ino);

	if ((fi->flags & O_ACCMODE) != O_RDONLY ||
	    (fi->flags & (O_TRUNC | O_APPEND | O_CREAT))) {
		fuse_reply_err(req, EROFS);
		return;
	}
	switch (n->kind) {
	case RFS_NODE_REAL: {
		int fd = openat(fs->rootfd, n->path,
				O_RDONLY | O_NOFOLLOW | O_CLOEXEC |
				(fi->flags & O_NONBLOCK));
		if (fd < 0)
			fuse_reply_err(req, errno);
		else
			reply_open_fd(req, fi, fd, 0, 0);
		return;
	}
	case RFS_NODE_VIRTUAL:
		open_virtual(req, n, fi);
		return;
	case RFS_NODE_CTL_FILE:
		open_ctl(req, n, fi);
		return;
	default:
		fuse_reply_err(req, EISDIR);
	}
}

static void fs_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		    struct fuse_file_info *fi)
{
	struct handle *h = (struct handle *)(uintptr_t)fi->fh;
	(void)ino;

	if (h->fd < 0) {
		if ((size_t)off >= h->len)
			fuse_reply_buf(req, NULL, 0);
		else
			fuse_reply_buf(req, h->text + off,
				       h->len - (size_t)off < size ?
				       h->len - (size_t)off : size);
		return;
	}
	/* Spliced from the file to the FUSE device when the kernel allows:
	 * the bytes are never copied through this process. */
	struct fuse_bufvec buf = FUSE_BUFVEC_INIT(size);
	buf.buf[0].flags = FUSE_BUF_IS_FD | FUSE_BUF_FD_SEEK;
	buf.buf[0].fd = h->fd;
	buf.buf[0].pos = off;
	fuse_reply_data(req, &buf, FUSE_BUF_SPLICE_MOVE);
}

static void fs_release(fuse_req_t req, fuse_ino_t ino,
		       struct fuse_file_info *fi)
{
	(void)ino;
	handle_free((struct handle *)(uintptr_t)fi->fh);
	fuse_reply_err(req, 0);
}

static void fs_statfs(fuse_req_t req, fuse_ino_t ino)
{
	struct statvfs sv;
	(void)ino;

	if (fstatvfs(fs_of(req)->rootfd, &sv) < 0)
		fuse_reply_err(req, errno);
	else
		fuse_reply_statfs(req, &sv);
}
/* The getxattr/listxattr answer for len bytes of buf (len < 0: -errno),
 * when the caller's buffer holds size bytes (0: it asks for the size). */
static void reply_xattr(fuse_req_t req, const char *buf, ssize_t len,
			size_t size)
{
	if (len < 0)
		fuse_reply_err(req, (int)-len);
	else if (size == 0)
		fuse_reply_xattr(req, (size_t)len);
	else if ((size_t)len > size)
		fuse_reply_err(req, ERANGE);
	else
		fuse_reply_buf(req, buf, (size_t)len);
}

static void fs_getxattr(fuse_req_t req, fuse_ino_t ino, const char *name,
			size_t size)
{
	struct rfs_fs *fs = fs_of(req);
	struct rfs_node *n = node_of(req, ino);
	char buf[PATH_MAX + RFS_CHAIN_TEXT_MAX];
	ssize_t len;

	if (n->kind == RFS_NODE_VIRTUAL) {
		len = virtual_xattr(fs, n, fuse_req_ctx(req)->uid, name, buf,
				    sizeof(buf));
	} else if (n->kind == RFS_NODE_REAL) {
		char path[PATH_MAX];
		snprintf(path, sizeof(path), "%s/%s", fs->root, n->path);
		len = lgetxattr(path, name, buf, sizeof(buf));
		if (len < 0)
			len = -errno;
	} else {
		len = -ENODATA;
	}
	reply_xattr(req, buf, len, size);
}

static void fs_listxattr(fuse_req_t req, fuse_ino_t ino, size_t size)
{
	struct rfs_fs *fs = fs_of(req);
	struct rfs_node *n = node_of(req, ino);
	char buf[4096];
	ssize_t len = 0;

	if (n->kind == RFS_NODE_VIRTUAL) {
		for (size_t i = 0; i < sizeof(vattrs) / sizeof(*vattrs); i++) {
			size_t l = strlen(vattrs[i]) + 1;
			memcpy(buf + len, vattrs[i], l);
			len += (ssize_t)l;
		}
	} else if (n->kind == RFS_NODE_REAL) {
		char path[PATH_MAX];
		snprintf(path, sizeof(path), "%s/%s", fs->root, n->path);
		len = llistxattr(path, buf, sizeof(buf));
		if (len < 0)
			len = -errno;
	}
	reply_xattr(req, buf, len, size);
}

/* --- the rest: a read-only filesystem ------------------------------ */

static void fs_init(void *userdata, struct fuse_conn_info *conn)
{
	(void)userdata;
	if (conn->capable & FUSE_CAP_SPLICE_WRITE)
		conn->want |= FUSE_CAP_SPLICE_WRITE;
	/* Large reads: GDAL and cp read big blocks of immutable objects. */
	conn->max_readahead = conn->max_readahead > (1u << 20) ?
			      conn->max_readahead : (1u << 20);
}

static void erofs_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr,
			  int to_set, struct fuse_file_info *fi)
{
	(void)ino, (void)attr, (void)to_set, (void)fi;
	fuse_reply_err(req, EROFS);
}

static void erofs_mknod(fuse_req_t req, fuse_ino_t parent, const char *name,
			mode_t mode, dev_t rdev)
{
	(void)parent, (void)name, (void)mode, (void)rdev;
	fuse_reply_err(req, EROFS);
}

static void erofs_mkdir(fuse_req_t req, fuse_ino_t parent, const char *name,
			mode_t mode)
{
	(void)parent, (void)name, (void)mode;
	fuse_reply_err(req, EROFS);
}

static void erofs_unlink(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	(void)parent, (void)name;
	fuse_reply_err(req, EROFS);
}

static void erofs_symlink(fuse_req_t req, const char *link,
			  fuse_ino_t parent, const char *name)
{
	(void)link, (void)parent, (void)name;
	fuse_reply_err(req, EROFS);
}

static void erofs_rename(fuse_req_t req, fuse_ino_t parent, const char *name,
			 fuse_ino_t newparent, const char *newname,
			 unsigned int flags)
{
	(void)parent, (void)name, (void)newparent, (void)newname, (void)flags;
	fuse_reply_err(req, EROFS);
}

static void erofs_link(fuse_req_t req, fuse_ino_t ino, fuse_ino_t newparent,
		       const char *newname)
{
	(void)ino, (void)newparent, (void)newname;
	fuse_reply_err(req, EROFS);
}

static void erofs_create(fuse_req_t req, fuse_ino_t parent, const char *name,
			 mode_t mode, struct fuse_file_info *fi)
{
	(void)parent, (void)name, (void)mode, (void)fi;
	fuse_reply_err(req, EROFS);
}

static void erofs_setxattr(fuse_req_t req, fuse_ino_t ino, const char *name,
			   const char *value, size_t size, int flags)
{
	(void)ino, (void)name, (void)value, (void)size, (void)flags;
	fuse_reply_err(req, EROFS);
}

static void erofs_removexattr(fuse_req_t req, fuse_ino_t ino,
			      const char *name)
{
	(void)ino, (void)name;
	fuse_reply_err(req, EROFS);
}

const struct fuse_lowlevel_ops rfs_fs_ops = {
	.init = fs_init,
	.lookup = fs_lookup,
	.forget = fs_forget,
	.forget_multi = fs_forget_multi,
	.getattr = fs_getattr,
	.readlink = fs_readlink,
	.opendir = fs_opendir,
	.readdir = fs_readdir,
	.releasedir = fs_releasedir,
	.open = fs_open,
	.read = fs_read,
	.release = fs_release,
	.statfs = fs_statfs,
	.getxattr = fs_getxattr,
	.listxattr = fs_listxattr,
	.setattr = erofs_setattr,
	.mknod = erofs_mknod,
	.mkdir = erofs_mkdir,
	.unlink = erofs_unlink,
	.rmdir = erofs_unlink,
	.symlink = erofs_symlink,
	.rename = erofs_rename,
	.link = erofs_link,
	.create = erofs_create,
	.setxattr = erofs_setxattr,
	.removexattr = erofs_removexattr,
};

int rfs_fs_init(struct rfs_fs *fs, const char *source_dir)
{
	char abs[PATH_MAX];
	struct stat st;

	memset(fs, 0, sizeof(*fs));
	fs->rootfd = -1;
	if (!realpath(source_dir, abs))
		return -errno;
	if (stat(abs, &st) < 0)
		return -errno;
	if (!S_ISDIR(st.st_mode))
		return -ENOTDIR;
	fs->rootfd = open(abs, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (fs->rootfd < 0)
		return -errno;
	fs->root = strdup(abs);
	fs->rootlen = strlen(abs);
	fs->nodes = rfs_nodes_new();
	fs->timeout = 1.0;
	if (!fs->root || !fs->nodes) {
		rfs_fs_destroy(fs);
		return -ENOMEM;
	}
	fs->ctl_dir.kind = RFS_NODE_CTL_DIR;
	fs->ctl_dir.path = RFS_CTL_DIR;
	fs->ctl_dir.ino = (fuse_ino_t)(uintptr_t)&fs->ctl_dir;
	fs->ctl_stats.kind = RFS_NODE_CTL_FILE;
	fs->ctl_stats.path = RFS_CTL_DIR "/stats";
	fs->ctl_stats.ino = (fuse_ino_t)(uintptr_t)&fs->ctl_stats;
	fs->ctl_jobs.kind = RFS_NODE_CTL_FILE;
	fs->ctl_jobs.path = RFS_CTL_DIR "/jobs";
	fs->ctl_jobs.ino = (fuse_ino_t)(uintptr_t)&fs->ctl_jobs;
	return 0;
}

void rfs_fs_destroy(struct rfs_fs *fs)
{
	rfs_nodes_free(fs->nodes);
	free(fs->root);
	if (fs->rootfd >= 0)
		close(fs->rootfd);
	fs->nodes = NULL;
	fs->root = NULL;
	fs->rootfd = -1;
}
