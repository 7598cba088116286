/* fs.c - the FUSE ops table and the thin wrappers that reply.
 *
 * Design note: every helper of the layer (src/fs_int.h) returns 0 or a
 * negative code; only the wrappers here call fuse_reply_*, with
 * rfs_err_errno() turning codes into errnos.  A parked open is answered
 * later through reply_open, which fs_open.c calls from the pool's or the
 * committer's thread.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "fs_int.h"
#include "rasterfs/chain.h"
#include "rasterfs/err.h"
#include "rasterfs/fs.h"
#include "rasterfs/log.h"
#include "rasterfs/passthrough.h"

static struct rfs_fs *fs_of(fuse_req_t req)
{
	return fuse_req_userdata(req);
}

static struct rfs_node *node_of(fuse_req_t req, fuse_ino_t ino)
{
	return rfs_nodes_find(fs_of(req)->nodes, ino);
}

static void reply_err(fuse_req_t req, int rc)
{
	fuse_reply_err(req, rfs_err_errno(rc));
}

/* ---- names and attributes --------------------------------------------- */

/* Answer a lookup: now, or later for one that waited for a describe
 * (fs_node.c note 7).  Returns fuse_reply_entry's result for an entry
 * (nonzero: the kernel did not take the node), else nonzero. */
static int reply_entry(fuse_req_t req, int rc,
		       const struct fuse_entry_param *e)
{
	if (rc == -ENOENT) {
		/* A negative entry: the kernel remembers it for a while, so
		 * GDAL's repeated sibling probes never reach us twice. */
		struct fuse_entry_param ne;
		memset(&ne, 0, sizeof(ne));
		ne.entry_timeout = fs_of(req)->timeout;
		fuse_reply_entry(req, &ne);
		return -1;
	}
	if (rc < 0) {
		reply_err(req, rc);
		return -1;
	}
	return fuse_reply_entry(req, e);
}

static void reply_attr(fuse_req_t req, int rc, const struct stat *st,
		       double timeout)
{
	if (rc < 0)
		reply_err(req, rc);
	else
		fuse_reply_attr(req, st, timeout);
}

static const struct fs_node_replies node_replies = {
	.entry = reply_entry,
	.attr = reply_attr,
};

static void fs_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct fuse_entry_param e;
	int rc = fs_node_lookup_async(fs_of(req), node_of(req, parent), name,
				      req, &node_replies, &e);

	if (rc == FS_NODE_PARKED)
		return; /* answered through reply_entry */
	if (rc == -ENOENT) {
		/* Not kept like other negative entries: the names programs
		 * write beside an output (fs_hint.c, which logs what to use
		 * instead). */
		memset(&e, 0, sizeof(e));
		e.entry_timeout = fs_hint_lookup(fs_of(req),
						 node_of(req, parent), name,
						 fuse_req_ctx(req)->pid);
		fuse_reply_entry(req, &e);
		return;
	}
	/* A png's .aux.xml is a name programs write beside an output: not
	 * kept either, so that a write reaches us as a lookup (fs_hint.c).
	 * (Never parked: only GeoTIFF outputs are described.) */
	if (rc == 0 && fs_sidecar_of(node_of(req, e.ino)) == FS_SIDECAR_AUX)
		e.entry_timeout = fs_hint_lookup(fs_of(req),
						 node_of(req, parent), name,
						 fuse_req_ctx(req)->pid);
	if (reply_entry(req, rc, &e) != 0 && rc == 0)
		rfs_nodes_forget(fs_of(req)->nodes, e.ino, 1);
}

static void fs_forget(fuse_req_t req, fuse_ino_t ino, uint64_t nlookup)
{
	fs_open_forget(req, node_of(req, ino));
	rfs_nodes_forget(fs_of(req)->nodes, ino, nlookup);
	fuse_reply_none(req);
}

static void fs_forget_multi(fuse_req_t req, size_t count,
			    struct fuse_forget_data *forgets)
{
	for (size_t i = 0; i < count; i++) {
		fs_open_forget(req, node_of(req, forgets[i].ino));
		rfs_nodes_forget(fs_of(req)->nodes, forgets[i].ino,
				 forgets[i].nlookup);
	}
	fuse_reply_none(req);
}

static void fs_getattr(fuse_req_t req, fuse_ino_t ino,
		       struct fuse_file_info *fi)
{
	struct stat st;
	double timeout;
	int rc = fs_node_getattr_async(fs_of(req), node_of(req, ino), req,
				       &node_replies, &st, &timeout);
	(void)fi;

	if (rc != FS_NODE_PARKED)
		reply_attr(req, rc, &st, timeout);
}

static void fs_readlink(fuse_req_t req, fuse_ino_t ino)
{
	char buf[PATH_MAX + 1];
	int rc = fs_node_readlink(fs_of(req), node_of(req, ino), buf,
				  sizeof(buf));

	if (rc < 0)
		reply_err(req, rc);
	else
		fuse_reply_readlink(req, buf);
}

static void fs_statfs(fuse_req_t req, fuse_ino_t ino)
{
	struct statvfs sv;
	(void)ino;

	if (fstatvfs(fs_of(req)->root.fd, &sv) < 0)
		fuse_reply_err(req, errno);
	else
		fuse_reply_statfs(req, &sv);
}

/* ---- directories ------------------------------------------------------ */

static void fs_opendir(fuse_req_t req, fuse_ino_t ino,
		       struct fuse_file_info *fi)
{
	struct fs_dir *d;
	int rc = fs_dir_open(fs_of(req), node_of(req, ino),
			     fuse_req_ctx(req)->pid, &d);

	if (rc < 0) {
		reply_err(req, rc);
		return;
	}
	fi->fh = (uint64_t)(uintptr_t)d;
	fi->cache_readdir = 0;
	if (fuse_reply_open(req, fi) != 0)
		fs_dir_free(d);
}

static void fs_readdir(fuse_req_t req, fuse_ino_t ino, size_t size,
		       off_t off, struct fuse_file_info *fi)
{
	char *buf = malloc(size);
	(void)ino;

	if (!buf) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	fuse_reply_buf(req, buf,
		       fs_dir_fill((struct fs_dir *)(uintptr_t)fi->fh, req,
				   off, buf, size));
	free(buf);
}

static void fs_releasedir(fuse_req_t req, fuse_ino_t ino,
			  struct fuse_file_info *fi)
{
	(void)ino;
	fs_dir_free((struct fs_dir *)(uintptr_t)fi->fh);
	fuse_reply_err(req, 0);
}

/* ---- open, read, release ---------------------------------------------- */

/* Answer an open: now, or later for a parked one (fs_open.c note 1). */
static void reply_open(fuse_req_t req, struct fuse_file_info *fi, int rc,
		       struct fs_handle *h)
{
	if (rc < 0) {
		reply_err(req, rc);
		return;
	}
	fi->fh = (uint64_t)(uintptr_t)h;
	if (h->backing_id > 0) {
		rfs_passthrough_fill(fi, h->backing_id);
	} else {
		fi->keep_cache = h->keep_cache;
		fi->direct_io = h->direct_io;
	}
	/* before the reply: the opener may list the directory right after
	 * (fs_sidecar.c note 2) */
	fs_sidecar_hold(fs_of(req), h, fuse_req_ctx(req)->pid);
	if (fuse_reply_open(req, fi) != 0) {
		/* the reader went away: no release */
		fs_sidecar_drop(fs_of(req), h);
		fs_open_release(NULL, h);
	}
}

static void fs_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct rfs_fs *fs = fs_of(req);
	struct rfs_node *n = node_of(req, ino);
	struct fs_handle *h = NULL;
	int rc;

	if ((fi->flags & O_ACCMODE) != O_RDONLY ||
	    (fi->flags & (O_TRUNC | O_APPEND | O_CREAT))) {
		fuse_reply_err(req, EROFS);
		return;
	}
	switch (n->kind) {
	case RFS_NODE_REAL:
		rc = fs_open_real(fs, n, req, fi->flags, &h);
		break;
	case RFS_NODE_VIRTUAL:
		rc = fs_open_virtual(fs, n, req, fi, reply_open, &h);
		if (rc == FS_OPEN_PARKED)
			return; /* answered through reply_open */
		break;
	case RFS_NODE_CTL_FILE:
		rc = fs_ctl_open(fs, n, fuse_req_ctx(req)->uid, &h);
		break;
	default:
		rc = -EISDIR;
	}
	reply_open(req, fi, rc, h);
}

/* Answer a read of a lazy output: now, or later (fs_lazy.c). */
static void reply_read(fuse_req_t req, int rc, const void *buf, size_t len)
{
	if (rc < 0)
		reply_err(req, rc);
	else
		fuse_reply_buf(req, buf, len);
}

static void fs_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		    struct fuse_file_info *fi)
{
	struct fs_handle *h = (struct fs_handle *)(uintptr_t)fi->fh;
	(void)ino;

	if (h->lazy) {
		fs_lazy_read(fs_of(req), h, req, size, off, reply_read);
		return;
	}
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
	 * the bytes are never copied through this process.  (A passthrough
	 * handle's reads never come here.) */
	rfs_stat_inc(&fs_of(req)->stats, reads);
	struct fuse_bufvec buf = FUSE_BUFVEC_INIT(size);
	buf.buf[0].flags = FUSE_BUF_IS_FD | FUSE_BUF_FD_SEEK;
	buf.buf[0].fd = h->fd;
	buf.buf[0].pos = off;
	fuse_reply_data(req, &buf, FUSE_BUF_SPLICE_MOVE);
}

static void fs_release(fuse_req_t req, fuse_ino_t ino,
		       struct fuse_file_info *fi)
{
	struct fs_handle *h = (struct fs_handle *)(uintptr_t)fi->fh;
	(void)ino;

	fs_sidecar_drop(fs_of(req), h);
	fs_open_release(req, h);
	fuse_reply_err(req, 0);
}

/* ---- extended attributes ---------------------------------------------- */

/* The getxattr/listxattr answer for len bytes of buf (len < 0: a code),
 * when the caller's buffer holds size bytes (0: it asks for the size). */
static void reply_xattr(fuse_req_t req, const char *buf, ssize_t len,
			size_t size)
{
	if (len < 0)
		reply_err(req, (int)len);
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
	char buf[PATH_MAX + RFS_CHAIN_TEXT_MAX];

	reply_xattr(req, buf,
		    fs_ctl_getxattr(fs_of(req), node_of(req, ino),
				    fuse_req_ctx(req)->uid, name, buf,
				    sizeof(buf)), size);
}

static void fs_listxattr(fuse_req_t req, fuse_ino_t ino, size_t size)
{
	char buf[4096];

	reply_xattr(req, buf,
		    fs_ctl_listxattr(fs_of(req), node_of(req, ino), buf,
				     sizeof(buf)), size);
}

/* ---- the rest: a read-only filesystem --------------------------------- */

/* libfuse 3.17 keeps the wanted features in want_ext, set through these
 * calls (conn->want is converted after init, but not when both changed). */
static void want(struct fuse_conn_info *conn, uint64_t cap, int on)
{
#if FUSE_USE_VERSION >= 317
	if (on)
		fuse_set_feature_flag(conn, cap);
	else
		fuse_unset_feature_flag(conn, cap);
#else
	if (on && (conn->capable & cap))
		conn->want |= (unsigned)cap;
	else if (!on)
		conn->want &= ~(unsigned)cap;
#endif
}

static void fs_init(void *userdata, struct fuse_conn_info *conn)
{
	struct rfs_fs *fs = userdata;
	const char *why;

	want(conn, FUSE_CAP_SPLICE_WRITE, 1);
	/* Large reads: GDAL and cp read big blocks of immutable objects. */
	conn->max_readahead = conn->max_readahead > (1u << 20) ?
			      conn->max_readahead : (1u << 20);
	fs->passthrough = rfs_passthrough_init(conn, fs->want_passthrough,
					       &why);
	if (fs->passthrough)
		rfs_log(LOG_INFO, "passthrough: on: the kernel reads outputs "
			"and source files itself (fs_open.c note 3)");
	else
		rfs_log(LOG_INFO, "passthrough: off: %s; reads go through "
			"the daemon and the page cache", why);
}

/* Writes.  The mount is read-only ("ro": the kernel answers EROFS itself
 * and sends none of these), but root can `mount -o remount,rw` a FUSE
 * mount, and then every one of them arrives.  Each is answered EROFS: an
 * operation left out of the table would be answered ENOSYS, which the
 * kernel remembers for some (setxattr becomes EOPNOTSUPP for good). */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-parameter"
#define EROFS_OP(op, ...) \
	static void erofs_##op(fuse_req_t req, __VA_ARGS__) \
	{ \
		fuse_reply_err(req, EROFS); \
	}
EROFS_OP(setattr, fuse_ino_t ino, struct stat *attr, int to_set,
	 struct fuse_file_info *fi)
EROFS_OP(mknod, fuse_ino_t parent, const char *name, mode_t mode, dev_t rdev)
EROFS_OP(mkdir, fuse_ino_t parent, const char *name, mode_t mode)
EROFS_OP(unlink, fuse_ino_t parent, const char *name)
EROFS_OP(symlink, const char *link, fuse_ino_t parent, const char *name)
EROFS_OP(rename, fuse_ino_t parent, const char *name, fuse_ino_t newparent,
	 const char *newname, unsigned int flags)
EROFS_OP(link, fuse_ino_t ino, fuse_ino_t newparent, const char *newname)
EROFS_OP(create, fuse_ino_t parent, const char *name, mode_t mode,
	 struct fuse_file_info *fi)
EROFS_OP(setxattr, fuse_ino_t ino, const char *name, const char *value,
	 size_t size, int flags)
EROFS_OP(removexattr, fuse_ino_t ino, const char *name)
#undef EROFS_OP
#pragma GCC diagnostic pop

/* The requests whose handling may log about a path: what they log is
 * their user's (log.h), so MOUNT/.rasterfs/log shows it to that user and
 * not to others. */
#define OWNED(req, call)                                                \
	do {                                                            \
		rfs_log_set_owner(fuse_req_ctx(req)->uid);              \
		call;                                                   \
		rfs_log_set_owner(RFS_LOG_NOBODY);                      \
	} while (0)

static void owned_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	OWNED(req, fs_lookup(req, parent, name));
}

static void owned_getattr(fuse_req_t req, fuse_ino_t ino,
			  struct fuse_file_info *fi)
{
	OWNED(req, fs_getattr(req, ino, fi));
}

static void owned_open(fuse_req_t req, fuse_ino_t ino,
		       struct fuse_file_info *fi)
{
	OWNED(req, fs_open(req, ino, fi));
}

static void owned_getxattr(fuse_req_t req, fuse_ino_t ino, const char *name,
			   size_t size)
{
	OWNED(req, fs_getxattr(req, ino, name, size));
}

const struct fuse_lowlevel_ops rfs_fs_ops = {
	.init = fs_init,
	.lookup = owned_lookup,
	.forget = fs_forget,
	.forget_multi = fs_forget_multi,
	.getattr = owned_getattr,
	.readlink = fs_readlink,
	.opendir = fs_opendir,
	.readdir = fs_readdir,
	.releasedir = fs_releasedir,
	.open = owned_open,
	.read = fs_read,
	.release = fs_release,
	.statfs = fs_statfs,
	.getxattr = owned_getxattr,
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

/* ---- life ------------------------------------------------------------- */

int rfs_fs_new(const char *source_dir, rfs_fs **out)
{
	char abs[PATH_MAX];
	struct stat st;
	struct rfs_fs *fs;

	if (!realpath(source_dir, abs))
		return -errno;
	if (stat(abs, &st) < 0)
		return -errno;
	if (!S_ISDIR(st.st_mode))
		return -ENOTDIR;
	if (!(fs = calloc(1, sizeof(*fs))))
		return -ENOMEM;
	int rc = fs_sidecar_init(fs);
	if (rc < 0) {
		free(fs);
		return rc;
	}
	if ((rc = rfs_stats_init(&fs->stats)) < 0) {
		fs_sidecar_fini(fs);
		free(fs);
		return rc;
	}
	fs->root.fd = open(abs, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (fs->root.fd < 0) {
		rc = -errno;
		rfs_stats_destroy(&fs->stats);
		fs_sidecar_fini(fs);
		free(fs);
		return rc;
	}
	fs->root.path = strdup(abs);
	fs->root.len = strlen(abs);
	fs->nodes = rfs_nodes_new();
	fs->timeout = 1.0;
	fs->want_passthrough = 1;
	fs->lazy = 1;
	pthread_mutex_init(&fs->lazy_lock, NULL);
	pthread_cond_init(&fs->lazy_cv, NULL);
	if (!fs->root.path || !fs->nodes) {
		rfs_fs_free(fs);
		return -ENOMEM;
	}
	fs->ctl_dir.kind = RFS_NODE_CTL_DIR;
	fs->ctl_dir.path = RFS_CTL_DIR;
	fs->ctl_dir.ino = (fuse_ino_t)(uintptr_t)&fs->ctl_dir;
	fs->ctl_file[RFS_CTL_STATS].path = RFS_CTL_DIR "/stats";
	fs->ctl_file[RFS_CTL_JOBS].path = RFS_CTL_DIR "/jobs";
	fs->ctl_file[RFS_CTL_LOG].path = RFS_CTL_DIR "/log";
	fs->ctl_file[RFS_CTL_STEPS].path = RFS_CTL_DIR "/steps";
	for (int i = 0; i < RFS_CTL_NFILES; i++) {
		fs->ctl_file[i].kind = RFS_NODE_CTL_FILE;
		fs->ctl_file[i].ino = (fuse_ino_t)(uintptr_t)&fs->ctl_file[i];
	}
	*out = fs;
	return 0;
}

int rfs_fs_set_rasters(rfs_fs *fs, const struct rfs_rasterext *s)
{
	struct rfs_rasterext *copy = malloc(sizeof(*copy));

	if (!copy)
		return -ENOMEM;
	*copy = *s;
	free((void *)fs->root.rasters);
	fs->root.rasters = copy;
	return 0;
}

int rfs_fs_add_view(rfs_fs *fs, const char *spec, char *msg, size_t len)
{
	struct rfs_named_view v, *nv;
	int rc = rfs_resolve_named_view(&fs->root, spec, &v, msg, len);

	if (rc < 0)
		return rc;
	for (size_t i = 0; i < fs->root.nviews; i++)
		if (strcmp(fs->root.views[i].name, v.name) == 0) {
			snprintf(msg, len, "view=%.200s: there is a view "
				 "named '%s' already", spec, v.name);
			return -RFS_E_OPTION;
		}
	nv = realloc((void *)fs->root.views,
		     (fs->root.nviews + 1) * sizeof(*nv));
	if (!nv)
		return -ENOMEM;
	nv[fs->root.nviews] = v;
	fs->root.views = nv;
	fs->root.nviews++;
	return 0;
}

const char *rfs_fs_root(const rfs_fs *fs)
{
	return fs->root.path;
}

struct rfs_stats *rfs_fs_stats(rfs_fs *fs)
{
	return &fs->stats;
}

void rfs_fs_attach(rfs_fs *fs, rfs_store *store, rfs_pool *pool)
{
	fs->store = store;
	fs->pool = pool;
}

void rfs_fs_attach_describer(rfs_fs *fs, rfs_describer *d)
{
	fs->describer = d;
}

void rfs_fs_set_passthrough(rfs_fs *fs, int want)
{
	fs->want_passthrough = want;
}

void rfs_fs_set_lazy(rfs_fs *fs, int lazy, int complete)
{
	fs->lazy = lazy;
	fs->complete = complete;
}

void rfs_fs_stop(rfs_fs *fs)
{
	if (fs)
		fs_lazy_stop(fs);
}

void rfs_fs_set_session(rfs_fs *fs, struct fuse_session *se)
{
	fs->se = se;
}

int rfs_fs_set_run(rfs_fs *fs, const char *text)
{
	free(fs->run);
	return (fs->run = strdup(text)) ? 0 : -ENOMEM;
}

void rfs_fs_free(rfs_fs *fs)
{
	if (!fs)
		return;
	free(fs->run);
	rfs_nodes_free(fs->nodes);
	free((char *)fs->root.path);
	free((void *)fs->root.rasters);
	free((void *)fs->root.views);
	if (fs->root.fd >= 0)
		close(fs->root.fd);
	rfs_stats_destroy(&fs->stats);
	fs_sidecar_fini(fs);
	pthread_mutex_destroy(&fs->lazy_lock);
	pthread_cond_destroy(&fs->lazy_cv);
	free(fs);
}
