/* fs_open.c - opening a file: a real one, or a virtual one from the store
 * or from a job whose end answers the parked open; file handles.
 *
 * Design notes:
 *  1. A waiting open holds no thread: its request is parked with the job and
 *     answered from the pool's or the committer's thread, through the reply
 *     function fs.c gave (only fs.c replies).  An interrupt (Ctrl-C on the
 *     reader) answers EINTR at once and detaches the waiter from the job;
 *     the pool cancels a job whose last waiter went this way
 *     (rfs_pool_cancel_waiter, called under the request's lock).
 *  2. A job's source is opened here, once, beneath the root (pool.c note
 *     10), and the node's key was made from the same file's identity: a
 *     name that now means another file is ESTALE (fs_node.c note 4).
 *  3. Passthrough (passthrough.h; decided once per mount at init).  The
 *     kernel keeps one io mode per inode and fails an open that mixes
 *     modes with EIO, so the choice is the node's, never the open's: while
 *     any handle of a node is open, all of them are served through ONE
 *     backing id, n->pt_id, registered by the first open (from its fd) and
 *     closed by the RELEASE of the last (n->pt_handles, under n->lock;
 *     counted before the reply, so a RELEASE never closes an id an
 *     answered open still needs).  The kernel leaves passthrough mode for
 *     the inode before it sends that last RELEASE, so the next open may
 *     register a new id.  If registering fails (a store or source on a
 *     stacked filesystem: ELOOP; out of memory), the node is served the
 *     cached way for the rest of its life (n->pt_refused): no handle of it
 *     is passthrough then, and a cached open would be refused while one
 *     is.  A direct_io fallback for that one open is not safe: the kernel
 *     refuses a direct_io open that arrives after another open of the
 *     inode has entered passthrough mode, and a concurrent open could
 *     register meanwhile.  Served this way: store objects of outputs,
 *     whose bytes never change under a node (fs_node.c note 2), and real
 *     files (note 4).  World files and control files are texts made by
 *     the daemon, read with direct_io, and are nodes of their own, so
 *     they never meet a passthrough handle.  A parked open registers when
 *     its job ends, on the committer's thread, before its reply.
 *  4. Real files.  A regular file's node is its dev and ino too (node.h),
 *     so the backing file of a node is the node's own file: rewritten in
 *     place, it is the same file and a passthrough read sees the new bytes
 *     (passthrough reads to the backing file's EOF, whatever the inode's
 *     size says); replaced by another file (a rename over it, a copy that
 *     makes a new file), an open of the old node finds another dev or ino
 *     and answers ESTALE, and the VFS looks the name up again and opens
 *     the new node, while old handles read the old file.  Without
 *     passthrough, an open keeps the kernel's page cache (keep_cache)
 *     only when size, mtime and ctime are those of the node's last open:
 *     a file changed in between starts with an empty cache.  Either way,
 *     an open that finds the file changed (or opens it first) tells the
 *     kernel its attributes are stale: its size may be a lookup's from
 *     before the change, and a cached read stops at that size.
 */
#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
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
#include "rasterfs/passthrough.h"
#include "rasterfs/pin.h"
#include "rasterfs/resolve.h"

/* ---- handles ---------------------------------------------------------- */

static struct fs_handle *handle_fd(int fd, int keep_cache)
{
	struct fs_handle *h = calloc(1, sizeof(*h));

	if (!h) {
		close(fd);
		return NULL;
	}
	h->fd = fd;
	h->node = NULL;
	h->keep_cache = keep_cache;
	return h;
}

struct fs_handle *fs_handle_text(size_t cap)
{
	struct fs_handle *h = calloc(1, sizeof(*h) + cap);

	if (!h)
		return NULL;
	h->fd = -1;
	h->node = NULL;
	h->keep_cache = 0;
	h->direct_io = 1; /* generated per open; its size is not known */
	return h;
}

void fs_handle_free(struct fs_handle *h)
{
	if (h->fd >= 0)
		close(h->fd);
	fs_lazy_free(h->lazy);
	free(h);
}

static int64_t ts_ns(const struct timespec *t)
{
	return (int64_t)t->tv_sec * 1000000000 + t->tv_nsec;
}

/* ---- passthrough (note 3) --------------------------------------------- */

/* Serve h, a handle of n opened from fd h->fd for req, through n's backing
 * id, registering it if n has none.  Returns 1 when h is a passthrough
 * handle, 0 when n is served the cached way. */
static int pt_attach(struct rfs_fs *fs, fuse_req_t req, struct rfs_node *n,
		     struct fs_handle *h)
{
	int id = 0, quiet;

	if (!fs->passthrough)
		return 0;
	pthread_mutex_lock(&n->lock);
	if (!n->pt_refused && n->pt_id == 0) {
		if ((id = rfs_passthrough_open(req, h->fd)) > 0)
			n->pt_id = id;
		else
			n->pt_refused = true;
	}
	if (!n->pt_refused) {
		n->pt_handles++;
		h->backing_id = n->pt_id;
		h->pt_node = n;
	}
	pthread_mutex_unlock(&n->lock);
	if (h->pt_node)
		rfs_stat_inc(&fs->stats, pt_opens);
	if (id >= 0)
		return h->pt_node != NULL;
	rfs_stat_inc(&fs->stats, pt_refused);
	quiet = atomic_fetch_add(&fs->pt_refusals, 1) > 0;
	rfs_log(quiet ? LOG_DEBUG : LOG_WARNING, "open %s: the kernel refused "
		"its file as a passthrough backing file (%s): it is read "
		"through the daemon%s", n->path, strerror(-id),
		quiet ? "" : " (logged once; counted as passthrough_refused "
		"in .rasterfs/stats)");
	return 0;
}

void fs_open_release(fuse_req_t req, struct fs_handle *h)
{
	struct rfs_node *n = h->pt_node;
	int rc;

	if (n) {
		pthread_mutex_lock(&n->lock);
		if (--n->pt_handles == 0 && req) {
			if ((rc = rfs_passthrough_close(req, n->pt_id)) < 0)
				rfs_log(LOG_WARNING, "%s: cannot close its "
					"passthrough backing id %d: %s",
					n->path, n->pt_id, strerror(-rc));
			n->pt_id = 0;
		}
		pthread_mutex_unlock(&n->lock);
	}
	fs_handle_free(h);
}

void fs_open_forget(fuse_req_t req, struct rfs_node *n)
{
	if (n->kind != RFS_NODE_REAL && n->kind != RFS_NODE_VIRTUAL)
		return;
	pthread_mutex_lock(&n->lock);
	if (n->pt_id > 0 && n->pt_handles == 0) {
		rfs_passthrough_close(req, n->pt_id);
		n->pt_id = 0;
	}
	pthread_mutex_unlock(&n->lock);
}

/* ---- real files (note 4) ---------------------------------------------- */

int fs_open_real(struct rfs_fs *fs, struct rfs_node *n, fuse_req_t req,
		 int flags, struct fs_handle **h)
{
	struct stat st;
	int fd = openat(fs->root.fd, n->path,
			O_RDONLY | O_NOFOLLOW | O_CLOEXEC | (flags & O_NONBLOCK));
	bool unchanged;

	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) < 0) {
		int rc = -errno;
		close(fd);
		return rc;
	}
	if (S_ISREG(st.st_mode) &&
	    ((uint64_t)st.st_dev != n->id.dev ||
	     (uint64_t)st.st_ino != n->id.ino)) {
		close(fd);
		rfs_stat_inc(&fs->stats, stale_opens);
		rfs_log(LOG_DEBUG, "open %s: another file since the lookup: "
			"ESTALE", n->path);
		return -ESTALE;
	}
	if (!(*h = handle_fd(fd, 0)))
		return -ENOMEM;
	if (!S_ISREG(st.st_mode))
		return 0;
	pthread_mutex_lock(&n->lock);
	unchanged = n->seen && n->seen_size == (int64_t)st.st_size &&
		    n->seen_mtime_ns == ts_ns(&st.st_mtim) &&
		    n->seen_ctime_ns == ts_ns(&st.st_ctim);
	n->seen = true;
	n->seen_size = (int64_t)st.st_size;
	n->seen_mtime_ns = ts_ns(&st.st_mtim);
	n->seen_ctime_ns = ts_ns(&st.st_ctim);
	pthread_mutex_unlock(&n->lock);
	/* The kernel's size may be a lookup's from before the change, and a
	 * cached read stops there: have it ask again (attributes only; no
	 * page is touched, so this is safe inside the open). */
	if (!unchanged && fs->se)
		fuse_lowlevel_notify_inval_inode(fs->se, n->ino, -1, 0);
	if (!pt_attach(fs, req, n, *h))
		(*h)->keep_cache = unchanged;
	return 0;
}

/* ---- the source (note 2) --------------------------------------------- */

int fs_open_pin_source(struct rfs_fs *fs, struct rfs_node *n)
{
	struct stat st;
	struct rfs_src_id id;
	int fd = rfs_pin_source(&fs->root, n->src, &st); /* pin.h */

	if (fd < 0)
		return fd;
	rfs_src_id_from_stat(&id, &st);
	if (!rfs_node_same_source(n, &id)) {
		close(fd);
		return -ESTALE;
	}
	return fd;
}

/* ---- virtual files ---------------------------------------------------- */

/* Open n from the store, if its key's object is there: 0 and *h, or 0 and
 * *h NULL (a sidecar whose png has no such text, e.g. the world file of a
 * png without a georeference: no such file), -ENOENT (not indexed, or
 * evicted since: the caller asks the pool), or another negative code.  A
 * sidecar's handle holds the text taken from the png (fs_sidecar.c); any
 * other node's handle is the object's fd, served by passthrough (note 3)
 * or with the page cache kept (fs_node.c note 2). */
static int open_from_store(struct rfs_fs *fs, struct rfs_node *n,
			   fuse_req_t req, struct fs_handle **out)
{
	struct rfs_store_entry e;
	struct fs_handle *h = NULL;
	struct stat ost;
	int fd, rc;

	*out = NULL;
	rc = rfs_store_lookup(fs->store, &n->key, &n->id, n->canonical, &e);
	if (rc < 0)
		return rc;
	/* -ENOENT: evicted since the lookup (the entry went first, so a
	 * request now sees a miss and computes it again). */
	if ((fd = rfs_store_open_object(fs->store, &n->key)) < 0)
		return fd;
	if (fs_sidecar_of(n) != FS_SIDECAR_NONE) {
		if ((rc = fs_sidecar_open(n, fd, &h)) < 0 || !h)
			goto out; /* !h: no such text, no such file */
		if ((rc = fs_node_learn_size(n, h->len, e.created_ns)) < 0)
			goto out;
		*out = h;
		h = NULL;
		goto out;
	}
	if (fstat(fd, &ost) < 0) {
		rc = -errno;
		goto out;
	}
	if ((rc = fs_node_learn_size(n, (uint64_t)ost.st_size,
				     e.created_ns)) < 0)
		goto out;
	if (!(*out = handle_fd(fd, 1)))
		return -ENOMEM;
	(*out)->node = n;
	pt_attach(fs, req, n, *out);
	return 0;
out:
	if (h)
		fs_handle_free(h);
	close(fd);
	return rc;
}

struct open_waiter {
	fuse_req_t req;
	struct fuse_file_info fi;
	struct rfs_fs *fs;
	struct rfs_node *n;
	rfs_key key;
	fs_open_reply_fn reply;
	atomic_int replied; /* note 1: whoever sets it first replies */
};

static void open_interrupted(fuse_req_t req, void *arg)
{
	struct open_waiter *w = arg;

	if (atomic_exchange(&w->replied, 1) != 0)
		return;
	w->reply(req, NULL, -EINTR, NULL);
	/* Detached: the pool will not call open_job_done for w, so it is
	 * ours to free.  Not found: open_job_done frees it. */
	if (rfs_pool_cancel_waiter(w->fs->pool, &w->key, w) == 1)
		free(w);
}

/* Claim the right to reply; if the interrupt got there first, the request
 * is answered and must not be touched. */
static int waiter_claim(struct open_waiter *w)
{
	if (atomic_exchange(&w->replied, 1) != 0)
		return 0;
	/* Serialises with an interrupt callback under way and stops later
	 * ones, so the request stays ours until we reply. */
	fuse_req_interrupt_func(w->req, NULL, NULL);
	return 1;
}

static void open_failed(struct rfs_node *n, int rc, const char *msg)
{
	rfs_log(LOG_DEBUG, "open %s: %s %s", n->path, rfs_err_name(rc),
		msg ? msg : "");
}

static void open_job_done(void *arg, int rc, const char *msg)
{
	struct open_waiter *w = arg;
	struct fs_handle *h = NULL;

	if (waiter_claim(w)) {
		/* Called on the committer's thread right after the commit,
		 * before it can evict anything: only another mount sharing
		 * the store can have removed the object meanwhile. */
		if (rc == 0 &&
		    (rc = open_from_store(w->fs, w->n, w->req, &h)) < 0) {
			if (rc == -ENOENT)
				rc = -RFS_E_STORE_IO;
			rfs_log(LOG_ERR, "open %s: the output was stored but "
				"cannot be opened: %s", w->n->path,
				rfs_strerror(rc));
		}
		if (rc < 0)
			open_failed(w->n, rc, msg);
		else if (!h)
			rc = -ENOENT; /* a sidecar without its text */
		w->reply(w->req, &w->fi, rc, h);
	}
	free(w);
}

/* Ask the pool for n's key with the open parked as its waiter.  Returns 0
 * when the request is answered later (or was just answered EINTR), 1 when
 * the key was committed since the caller looked, or a negative code (not
 * answered). */
static int open_request(struct rfs_fs *fs, struct rfs_node *n,
			fuse_req_t req, struct fuse_file_info *fi,
			fs_open_reply_fn reply)
{
	int src_fd = fs_open_pin_source(fs, n);
	struct rfs_job_spec spec = {
		.key = n->key,
		.src = n->id,
		.src_fd = src_fd, /* the pool's from the request on */
		.source_rel = n->src,
		.canonical = n->canonical,
		.vpath = n->path,
		.uid = fuse_req_ctx(req)->uid,
	};
	struct open_waiter *w;
	int rc;

	/* the worker holds the file to the size stat told (describer.h) */
	pthread_mutex_lock(&n->lock);
	spec.expect_size = n->described ? n->size : 0;
	pthread_mutex_unlock(&n->lock);
	if (src_fd < 0) {
		if (src_fd == -ESTALE)
			rfs_stat_inc(&fs->stats, stale_opens);
		else
			rfs_log(src_fd == -ENOENT ? LOG_DEBUG : LOG_WARNING,
				"open %s: cannot open its source %s: %s %s",
				n->path, n->src, rfs_err_name(src_fd),
				rfs_strerror(src_fd));
		return src_fd;
	}
	if (!(w = calloc(1, sizeof(*w)))) {
		close(src_fd);
		return -ENOMEM;
	}
	w->req = req;
	w->fi = *fi;
	w->fs = fs;
	w->n = n;
	w->key = n->key;
	w->reply = reply;
	/* Registered before the job can end, so the callback can always
	 * deregister it (note 1). */
	fuse_req_interrupt_func(req, open_interrupted, w);
	rc = rfs_pool_request(fs->pool, &spec, open_job_done, w);
	if (rc == 0) {
		rfs_stat_inc(&fs->stats, cache_misses);
		return 0; /* answered by open_job_done */
	}
	if (!waiter_claim(w))
		rc = 0; /* answered EINTR */
	free(w);
	if (rc < 0) {
		char msg[RFS_MSG_MAX] = "";
		rfs_pool_last_error(fs->pool, &n->key, NULL, msg, sizeof(msg),
				    NULL);
		rfs_log(LOG_DEBUG, "open %s: %s %s (remembered)", n->path,
			rfs_err_name(rc), msg);
	}
	return rc;
}

int fs_open_virtual(struct rfs_fs *fs, struct rfs_node *n, fuse_req_t req,
		    struct fuse_file_info *fi, fs_open_reply_fn reply,
		    struct fs_handle **h)
{
	int rc;

	*h = NULL;
	/* fs_node.c note 4: the name means another file now. */
	if ((rc = fs_node_source_check(fs, n, NULL)) < 0) {
		if (rc == -ESTALE) {
			rfs_stat_inc(&fs->stats, stale_opens);
			rfs_log(LOG_DEBUG, "open %s: its source changed since "
				"the lookup: ESTALE", n->path);
		}
		return rc;
	}
	/* An object can be evicted between its commit and our open of it
	 * (a tiny cache_size, concurrent readers): ask again, a few times. */
	for (int tries = 0; tries < 3; tries++) {
		rc = open_from_store(fs, n, req, h);
		if (rc == 0) {
			rfs_stat_inc(&fs->stats, cache_hits);
			/* no handle: a sidecar without its text */
			return *h ? 0 : -ENOENT;
		}
		if (rc != -ENOENT)
			break;
		/* a large output: its header now, its blocks when read */
		rc = fs_lazy_open(fs, n, req, fi, reply, h);
		if (rc == 0)
			return 0;
		if (rc == FS_OPEN_PARKED)
			return rc;
		if (rc < 0)
			break;
		assert(rc == FS_LAZY_WHOLE);
		rc = open_request(fs, n, req, fi, reply);
		if (rc == 0)
			return FS_OPEN_PARKED;
		if (rc < 0)
			break;
		rc = -ENOENT;
	}
	if (rc == -ENOENT) {
		rfs_log(LOG_ERR, "open %s: its output was evicted three times "
			"before it could be opened: cache_size is too small for "
			"the outputs read at once", n->path);
		rc = -RFS_E_STORE_IO;
	}
	open_failed(n, rc, NULL);
	return rc;
}
