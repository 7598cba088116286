/* fs_node.c - nodes of the mount: lookup makes them, attributes describe
 * them.
 *
 * Design notes:
 *  1. Lookup and getattr never compute pixels.  A GeoTIFF output whose
 *     size is not known yet is described first (note 7), which gives its
 *     exact size; an output that cannot be described (fmt=cog, fmt=png, a
 *     describe that fails or times out) reports size 0 with attribute
 *     timeout 0, so the kernel asks again (it also refreshes attributes on
 *     a read past the provisional EOF); open starts or joins the job and
 *     is answered when it ends.
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
 *  6. An output's mtime (and ctime, atime) is its source's, before and
 *     after it is computed: the file's content is a function of the
 *     source and the name, so it changed exactly when the source did
 *     (rsync and make compare mtimes; a commit time would make every
 *     computed output look new).
 *  7. The size before the pixels.  Where a node's size comes from, first
 *     found first: the node (sticky, note 3); the store's object; the
 *     output's description (a record in the store, or a describe that
 *     just ended: rfs_describer_lookup, counted in describe_hits); a
 *     describe (describer.h).  A lookup or getattr that needs a describe
 *     holds no thread: it is parked with the describe, holding one lookup
 *     count of the node, and answered from the describer's thread through
 *     fs.c's reply functions when the describe ends (or fails: then with
 *     provisional attributes), at the latest after describe_timeout.  An
 *     interrupt answers EINTR at once and detaches it, as a parked open.
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
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

	(void)mtime_ns; /* note 6 */
	pthread_mutex_lock(&n->lock);
	if (!n->sized) {
		n->sized = true;
		n->size = size;
		n->mtime_ns = n->id.mtime_ns;
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

/* Can n's size be known before it is computed (note 7)?  A GeoTIFF output
 * (not a sidecar, not fmt=cog or png) of a mount with describers. */
static bool describable(const struct rfs_fs *fs, const struct rfs_node *n)
{
	return fs->describer && n->kind == RFS_NODE_VIRTUAL &&
	       n->format == RFS_FMT_GTIFF &&
	       fs_sidecar_of(n) == FS_SIDECAR_NONE;
}

static void learn_described(struct rfs_node *n, uint64_t size)
{
	if (fs_node_learn_size(n, size, 0) == 0) {
		pthread_mutex_lock(&n->lock);
		if (n->size == size)
			n->described = true;
		pthread_mutex_unlock(&n->lock);
	}
}

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
		sized = true;
		if (fs_sidecar_of(n) == FS_SIDECAR_NONE)
			fs_node_learn_size(n, e.size, e.created_ns);
		else if ((rc = fs_sidecar_size(fs, n, &wsize)) == 0)
			fs_node_learn_size(n, wsize, e.created_ns);
		else if (rc == -ENODATA)
			return -ENOENT; /* its png has no such text */
	} else if (!sized && fs_sidecar_of(n) == FS_SIDECAR_AUX) {
		return -ENOENT; /* not before its png (fs_sidecar.c note 4) */
	}
	/* note 7: described already (no describer asked) */
	if (!sized && describable(fs, n) &&
	    rfs_describer_lookup(fs->describer, &n->key, &n->id, n->canonical,
				 &wsize) == 0) {
		rfs_stat_inc(&fs->stats, describe_hits);
		learn_described(n, wsize);
	}
	memset(st, 0, sizeof(*st));
	st->st_ino = n->ino;
	st->st_nlink = 1;
	st->st_blksize = BLKSIZE;
	pthread_mutex_lock(&n->lock);
	st->st_mode = S_IFREG | (n->src_mode & 0444);
	st->st_uid = n->src_uid;
	st->st_gid = n->src_gid;
	/* note 6: the source's mtime, before and after */
	st->st_mtim.tv_sec = n->id.mtime_ns / 1000000000;
	st->st_mtim.tv_nsec = n->id.mtime_ns % 1000000000;
	if (n->sized) {
		st->st_size = (off_t)n->size;
		st->st_blocks = (blkcnt_t)((n->size + 511) / 512);
		*timeout = fs->timeout;
	} else {
		/* Note 1: provisional until the output is known. */
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

/* ---- waiting for a describe (note 7) ---------------------------------- */

struct desc_waiter {
	fuse_req_t req;
	struct rfs_fs *fs;
	struct rfs_node *n;        /* one lookup count is ours */
	rfs_key key;
	int is_lookup;
	const struct fs_node_replies *r;
	atomic_int replied;        /* whoever sets it first replies */
};

/* Answer w's request with n's attributes as they are now. */
static void desc_reply(struct desc_waiter *w)
{
	struct fuse_entry_param e;
	double timeout;
	int rc;

	memset(&e, 0, sizeof(e));
	rc = fs_node_attr(w->fs, w->n, &e.attr, &timeout);
	if (!w->is_lookup) {
		w->r->attr(w->req, rc, &e.attr, timeout);
		rfs_nodes_forget(w->fs->nodes, w->n->ino, 1);
		return;
	}
	e.ino = w->n->ino;
	e.attr_timeout = timeout;
	e.entry_timeout = w->fs->timeout;
	/* the kernel takes our lookup count with the entry */
	if (w->r->entry(w->req, rc, &e) != 0 || rc < 0)
		rfs_nodes_forget(w->fs->nodes, w->n->ino, 1);
}

static int desc_claim(struct desc_waiter *w)
{
	if (atomic_exchange(&w->replied, 1) != 0)
		return 0;
	/* serialises with an interrupt callback under way, stops later ones */
	fuse_req_interrupt_func(w->req, NULL, NULL);
	return 1;
}

static void desc_done(void *arg, int rc, uint64_t size)
{
	struct desc_waiter *w = arg;

	if (rc == 0)
		learn_described(w->n, size);
	if (desc_claim(w))
		desc_reply(w);
	else
		rfs_nodes_forget(w->fs->nodes, w->n->ino, 1);
	free(w);
}

static void desc_interrupted(fuse_req_t req, void *arg)
{
	struct desc_waiter *w = arg;

	if (atomic_exchange(&w->replied, 1) != 0)
		return;
	if (w->is_lookup)
		w->r->entry(req, -EINTR, NULL);
	else
		w->r->attr(req, -EINTR, NULL, 0);
	/* Detached: desc_done will not run for w, so it and its count are
	 * ours.  Not found: desc_done gives them back. */
	if (rfs_describer_cancel_waiter(w->fs->describer, &w->key, w) == 1) {
		rfs_nodes_forget(w->fs->nodes, w->n->ino, 1);
		free(w);
	}
}

/* Describe n for req, if it needs it.  Returns FS_NODE_PARKED (answered
 * later), or 0 (answer now: sized, or provisional). */
static int describe_for(struct rfs_fs *fs, struct rfs_node *n,
			fuse_req_t req, int is_lookup,
			const struct fs_node_replies *r)
{
	struct desc_waiter *w;
	uint64_t size;
	int fd, rc;

	pthread_mutex_lock(&n->lock);
	bool sized = n->sized;
	pthread_mutex_unlock(&n->lock);
	if (sized || !describable(fs, n))
		return 0;
	/* the file the key was made from, read as a job reads it */
	if ((fd = fs_open_pin_source(fs, n)) < 0)
		return 0;
	if (!(w = calloc(1, sizeof(*w)))) {
		close(fd);
		return 0;
	}
	w->req = req;
	w->fs = fs;
	w->n = n;
	w->key = n->key;
	w->is_lookup = is_lookup;
	w->r = r;
	/* a lookup's count is ours already (rfs_nodes_get); a getattr's
	 * node is the kernel's, which may forget it while we wait */
	if (!is_lookup)
		rfs_nodes_hold(fs->nodes, n);
	struct rfs_describe_spec spec = {
		.key = n->key,
		.src = n->id,
		.src_fd = fd, /* the describer's from here on */
		.source_rel = n->src,
		.canonical = n->canonical,
	};
	fuse_req_interrupt_func(req, desc_interrupted, w);
	rc = rfs_describer_request(fs->describer, &spec, desc_done, w, &size);
	if (rc == 0)
		return FS_NODE_PARKED;
	if (rc == 1) {
		rfs_stat_inc(&fs->stats, describe_hits);
		learn_described(n, size);
	}
	if (!desc_claim(w)) {
		/* answered EINTR by the interrupt, which found no waiter:
		 * the count and w are ours to give back */
		rfs_nodes_forget(fs->nodes, n->ino, 1);
		free(w);
		return FS_NODE_PARKED;
	}
	if (!is_lookup)
		rfs_nodes_forget(fs->nodes, n->ino, 1);
	free(w);
	return 0;
}

int fs_node_lookup_async(struct rfs_fs *fs, struct rfs_node *dir,
			 const char *name, fuse_req_t req,
			 const struct fs_node_replies *r,
			 struct fuse_entry_param *e)
{
	int rc = fs_node_lookup(fs, dir, name, e);

	if (rc < 0 || !e->ino)
		return rc;
	struct rfs_node *n = rfs_nodes_find(fs->nodes, e->ino);
	rc = describe_for(fs, n, req, 1, r);
	if (rc == FS_NODE_PARKED)
		return rc;
	/* answered now: sized meanwhile, or provisional */
	double timeout;
	if ((rc = fs_node_attr(fs, n, &e->attr, &timeout)) < 0) {
		rfs_nodes_forget(fs->nodes, n->ino, 1);
		return rc;
	}
	e->attr_timeout = timeout;
	return 0;
}

int fs_node_getattr_async(struct rfs_fs *fs, struct rfs_node *n,
			  fuse_req_t req, const struct fs_node_replies *r,
			  struct stat *st, double *timeout)
{
	int rc = fs_node_attr(fs, n, st, timeout);

	if (rc < 0)
		return rc;
	if (describe_for(fs, n, req, 0, r) == FS_NODE_PARKED)
		return FS_NODE_PARKED;
	return fs_node_attr(fs, n, st, timeout);
}
