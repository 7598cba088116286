/* fs_lazy.c - opening and reading a lazy output (lazy.h): the header at
 * once, each block when a read needs it.
 *
 * Design notes:
 *  1. Open.  An output not in the store whose description (the store's
 *     record) says it is lazy is opened without computing it: the handle
 *     holds its layout, with the sample statistics (the "#stats" piece,
 *     from the store, or computed first by a worker: the open is parked
 *     with that job as a whole open is with its job).  Any other output,
 *     or one whose record cannot be had, is computed whole (fs_open.c):
 *     the same bytes either way (lazy.h).  A lazy handle is never a
 *     passthrough one (the object it reads is not one file), and is read
 *     with direct_io: the kernel's read-ahead would otherwise ask for
 *     the tiles after each read, and a reader of a window would have its
 *     neighbours computed (sequential readers get our read-ahead, note
 *     4).
 *  2. Read.  The range is cut at tile ends: header bytes come from the
 *     layout, tile bytes from their block's object (pread through an fd
 *     the handle keeps, so eviction cannot take it away while the handle
 *     is open).  Blocks not in the store are asked of the pool, one job per
 *     block whoever asks (single flight); the read is parked with them and
 *     answered from the committer's thread when the last one is stored,
 *     or with the first failure's code.  Reads of stored blocks never
 *     wait for anyone's job.
 *  3. A parked read: `pending` counts its blocks not yet ended; `refs`
 *     counts its blocks still attached plus one for the reply.  Whoever
 *     claims `replied` first answers (the last block's end, or an
 *     interrupt); the interrupt answers EINTR at once and detaches its
 *     blocks from their jobs (rfs_pool_cancel_waiter: a block nobody else
 *     waits for is cancelled; read-ahead jobs are warm and stay).  The
 *     structure goes with the last reference.
 *  4. Read-ahead for a sequential reader: one that has read more than a
 *     whole row of tiles in sequence (a reader of a window reads a few
 *     neighbouring tiles of each row, never a whole row: its neighbours
 *     must not be computed).  The next blocks in the file's order are
 *     asked for as warm jobs, RFS_LAZY_AHEAD per worker ahead of the
 *     block read, so that cp finds them computed.
 *  6. complete=1: an open asks for every block not stored as warm work
 *     (behind every block a reader waits for, jobs.c note 7), so the
 *     output is finished in the background; 0 (the default): only what
 *     is read is computed, so a viewer that looked at a corner of a huge
 *     output costs a corner.
 *  7. Assembly: when a handle that read every block is released (cp), or
 *     finds every block stored then, the blocks are made one ordinary
 *     object, in a thread of the daemon (one at a time): the file written
 *     into the store's scratch from the blocks' bytes, fsync'ed, hashed,
 *     committed by the committer like a worker's output.  From then on
 *     the output opens as any other (passthrough, verify, eviction as
 *     today).  Its pieces (every level's blocks, the sample) are then
 *     dropped from the store (rfs_store_drop, after the whole's commit),
 *     so the output is kept once: a handle that has a block open keeps
 *     reading it, and one opened before the assembly that reads a block
 *     it had not opened computes it again (the same bytes; eviction takes
 *     that copy).  An unmount stops an assembly under way (fs_lazy_stop,
 *     before the store closes).  complete=1 with no full reader: the
 *     next handle released after the last block is stored (any open, a
 *     gdalinfo) finds every block and assembles.
 *  8. Overviews (lazy.h): a lazy output's file holds every level's tiles
 *     (coarsest first); a read of an overview tile computes that level's
 *     block (the chain at the level's resolution), never a base block.
 *     The handle numbers the blocks of every level together (lazy.h:
 *     rfs_lazy_block_index); read-ahead stays within the level of the
 *     block read (a cp reads level by level, and a viewer's tiles of one
 *     level must not have the next level's computed); complete=1 and the
 *     assembly take every level's blocks.
 *  9. A view of a small overview level: a reader of an overview tile
 *     (a viewer zoomed out: GDAL reads a level's tiles one after the
 *     other) has every block of that level asked for as warm work when
 *     the level has at most RFS_LAZY_VIEW blocks, so that all workers
 *     compute them at once instead of one after each read (QGIS's full
 *     view of a 20000^2 output reads the 9 blocks of level 4).  No base
 *     block is ever asked for this way; a larger level is read as level
 *     0 is (a zoomed-in view must not compute the whole level).
 *  5. A block object evicted between its commit and the parked read's
 *     answer is asked for again, a few times, then the read fails with
 *     RFS_E_STORE_IO (the same rule as fs_open.c's for whole outputs).
 *  8. A piece a reader waits for is answered when its worker finished it
 *     and the pool checked its file, before its commit ends (pool.c note
 *     12): piece_open asks the pool for it when the store has it not.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "fs_int.h"
#include "rasterfs/chain.h"
#include "rasterfs/err.h"
#include "rasterfs/lazy.h"
#include "rasterfs/log.h"

#include <xxhash.h>

#define RFS_LAZY_AHEAD 2   /* read-ahead blocks per worker (note 4) */
#define RFS_LAZY_VIEW 16   /* an overview level of at most this many
			      blocks is a view's whole (note 9) */
#define MAX_TRIES 3        /* note 5 */
#define RFS_LAZY_SCRATCH_SLOT 2000 /* the assembler's scratch (note 7) */

struct fs_lazy {
	struct rfs_fs *fs;
	struct rfs_node *n;
	struct rfs_tiff_layout l;
	long nb;                  /* blocks of every level (note 8) */
	int src_fd;               /* the pinned source: a dup per job */
	pthread_mutex_t lock;     /* fd[], next_off, ahead */
	int *fd;                  /* nb block objects, -1: none yet */
	uint64_t next_off;        /* where a sequential read goes on */
	uint64_t run;             /* bytes read in sequence up to it */
	long ahead;               /* blocks up to here were asked for */
	uint32_t view_asked;      /* levels whose blocks were asked for
				     (note 9), bit k: level k */
};

/* ---- pieces' keys ----------------------------------------------------- */

/* The key of a piece of n; lv, bx, by: a block's level, column, row. */
static int piece_key_at(const struct rfs_node *n, enum rfs_lazy_part part,
			int lv, int bx, int by, rfs_key *key, char *canon,
			size_t len)
{
	int rc = rfs_lazy_suffix(n->canonical, part, lv, bx, by, canon, len);

	if (rc == 0)
		rfs_key_make(key, &n->id, canon);
	return rc;
}

/* A piece of level 0 (or the statistics). */
static int piece_key(const struct rfs_node *n, enum rfs_lazy_part part,
		     int bx, int by, rfs_key *key, char *canon, size_t len)
{
	return piece_key_at(n, part, 0, bx, by, key, canon, len);
}

/* Ask the pool for a piece of n: 0 (fn(arg) will be called), 1 (stored
 * meanwhile), or a negative code.  src_fd: the pinned source (dup'ed). */
static int piece_request_at(struct rfs_fs *fs, struct rfs_node *n,
			    int src_fd, enum rfs_lazy_part part, int lv,
			    int bx, int by, uid_t uid, int warm,
			    rfs_pool_done_fn fn, void *arg)
{
	char canon[RFS_CHAIN_TEXT_MAX + RFS_LAZY_SUFFIX_MAX];
	char vpath[PATH_MAX];
	rfs_key key;
	int fd, rc;

	if ((rc = piece_key_at(n, part, lv, bx, by, &key, canon,
			       sizeof(canon))) < 0)
		return rc;
	snprintf(vpath, sizeof(vpath), "%s%s", n->path,
		 strchr(canon, '#'));
	if ((fd = fcntl(src_fd, F_DUPFD_CLOEXEC, 0)) < 0)
		return -errno;
	struct rfs_job_spec spec = {
		.key = key,
		.src = n->id,
		.src_fd = fd, /* the pool's from here on */
		.source_rel = n->src,
		.canonical = canon,
		.vpath = vpath,
		.uid = uid,
		.warm = warm,
	};
	return rfs_pool_request(fs->pool, &spec, warm ? NULL : fn, arg);
}

static int piece_request(struct rfs_fs *fs, struct rfs_node *n, int src_fd,
			 enum rfs_lazy_part part, int bx, int by, uid_t uid,
			 int warm, rfs_pool_done_fn fn, void *arg)
{
	return piece_request_at(fs, n, src_fd, part, 0, bx, by, uid, warm, fn,
				arg);
}

/* Open piece (part, lv, bx, by) of n from the store, or finished and
 * checked but not yet committed (pool.c note 12): the fd, or -ENOENT. */
static int piece_open_at(struct rfs_fs *fs, struct rfs_node *n,
			 enum rfs_lazy_part part, int lv, int bx, int by)
{
	char canon[RFS_CHAIN_TEXT_MAX + RFS_LAZY_SUFFIX_MAX];
	rfs_key key;
	int rc;

	if ((rc = piece_key_at(n, part, lv, bx, by, &key, canon,
			       sizeof(canon))) < 0)
		return rc;
	rc = rfs_store_lookup(fs->store, &key, &n->id, canon, NULL);
	if (rc == -ENOENT)
		return rfs_pool_early_open(fs->pool, &key);
	if (rc < 0)
		return rc;
	return rfs_store_open_object(fs->store, &key);
}

static int piece_open(struct rfs_fs *fs, struct rfs_node *n,
		      enum rfs_lazy_part part, int bx, int by)
{
	return piece_open_at(fs, n, part, 0, bx, by);
}

/* Block i of l (note 8) of n: its key, its request, its object. */
static int block_key(const struct rfs_node *n, const struct rfs_tiff_layout *l,
		     long i, rfs_key *key, char *canon, size_t len)
{
	int lv, bx, by;

	if (rfs_lazy_block_at(l, i, &lv, &bx, &by) < 0)
		return -RFS_E_INTERNAL;
	return piece_key_at(n, RFS_LAZY_PART_BLOCK, lv, bx, by, key, canon,
			    len);
}

static int block_request(struct rfs_fs *fs, struct fs_lazy *lz, long i,
			 uid_t uid, int warm, rfs_pool_done_fn fn, void *arg)
{
	int lv, bx, by;

	if (rfs_lazy_block_at(&lz->l, i, &lv, &bx, &by) < 0)
		return -RFS_E_INTERNAL;
	return piece_request_at(fs, lz->n, lz->src_fd, RFS_LAZY_PART_BLOCK, lv,
				bx, by, uid, warm, fn, arg);
}

static int block_open(struct rfs_fs *fs, struct fs_lazy *lz, long i)
{
	int lv, bx, by;

	if (rfs_lazy_block_at(&lz->l, i, &lv, &bx, &by) < 0)
		return -RFS_E_INTERNAL;
	return piece_open_at(fs, lz->n, RFS_LAZY_PART_BLOCK, lv, bx, by);
}

/* ---- open (note 1) ---------------------------------------------------- */

/* n's layout, if n is a lazy output whose record is at hand: 0 and *l, 1
 * (not lazy, or no record: computed whole), or a negative code. */
static int lazy_layout(struct rfs_fs *fs, struct rfs_node *n,
		       struct rfs_tiff_layout *l)
{
	uint64_t size;
	void *blob = NULL;
	size_t len = 0;
	int rc;

	if (!fs->lazy || n->format != RFS_FMT_GTIFF ||
	    fs_sidecar_of(n) != FS_SIDECAR_NONE)
		return 1;
	rc = rfs_store_describe_get(fs->store, &n->key, &n->id, n->canonical,
				    rfs_describer_stamp(), &size, &blob, &len);
	/* Described a moment ago: its record is on its way to the
	 * committer (queued, or about to be: the describer marks a describe
	 * done just before it queues the record), so wait for the committer,
	 * a few times.  Bounded: 20 flushes and 100 ms of sleep at most. */
	for (int i = 0; i < 20 && rc == -ENOENT && fs->describer &&
	     rfs_describer_lookup(fs->describer, &n->key, &n->id,
				  n->canonical, &size) == 0; i++) {
		if (i)
			nanosleep(&(struct timespec){ .tv_nsec = 5000000 },
				  NULL);
		if (rfs_store_flush(fs->store) < 0)
			break;
		rc = rfs_store_describe_get(fs->store, &n->key, &n->id,
					    n->canonical,
					    rfs_describer_stamp(), &size,
					    &blob, &len);
	}
	if (rc < 0)
		return rc == -ENOENT ? 1 : rc;
	rc = rfs_tiff_layout_unpack(blob, len, l);
	free(blob);
	if (rc < 0 || l->total_size != size) {
		rfs_tiff_layout_free(l);
		return 1;
	}
	if (!rfs_lazy_is(l->level[0].width, l->level[0].height,
			 l->n_levels)) {
		rfs_tiff_layout_free(l);
		return 1;
	}
	return 0;
}

/* The sample statistics of n into l, from the store: 0, -ENOENT (not
 * there), or another code. */
static int lazy_stats(struct rfs_fs *fs, struct rfs_node *n,
		      struct rfs_tiff_layout *l)
{
	size_t len = (size_t)l->bands * RFS_LAZY_STATS_BYTES;
	unsigned char *p = malloc(len);
	struct rfs_tiff_stats *st = calloc((size_t)l->bands, sizeof(*st));
	int fd = -1, rc;
	ssize_t got;

	if (!p || !st) {
		rc = -ENOMEM;
		goto out;
	}
	if ((fd = rc = piece_open(fs, n, RFS_LAZY_PART_STATS, 0, 0)) < 0)
		goto out;
	got = pread(fd, p, len, 0);
	if (got < 0) {
		rc = -errno;
		goto out;
	}
	if ((rc = rfs_lazy_stats_unpack(p, (size_t)got, l->bands, st)) < 0) {
		rc = -RFS_E_STORE_CORRUPT;
		goto out;
	}
	for (int b = 0; b < l->bands && rc == 0; b++)
		rc = rfs_tiff_set_stats(l, b, &st[b]);
out:
	if (fd >= 0)
		close(fd);
	free(st);
	free(p);
	return rc;
}

struct stats_waiter {
	fuse_req_t req;
	struct fuse_file_info fi;
	struct rfs_fs *fs;
	struct rfs_node *n;
	rfs_key key;
	fs_open_reply_fn reply;
	atomic_int replied;
};

static void stats_interrupted(fuse_req_t req, void *arg)
{
	struct stats_waiter *w = arg;

	if (atomic_exchange(&w->replied, 1) != 0)
		return;
	w->reply(req, NULL, -EINTR, NULL);
	if (rfs_pool_cancel_waiter(w->fs->pool, &w->key, w) == 1)
		free(w);
}

static int lazy_open_now(struct rfs_fs *fs, struct rfs_node *n,
			 fuse_req_t req, struct fuse_file_info *fi,
			 fs_open_reply_fn reply, struct fs_handle **h,
			 int tries);

static void stats_done(void *arg, int rc, const char *msg)
{
	struct stats_waiter *w = arg;
	struct fs_handle *h = NULL;

	if (atomic_exchange(&w->replied, 1) == 0) {
		fuse_req_interrupt_func(w->req, NULL, NULL);
		if (rc == 0) {
			rc = lazy_open_now(w->fs, w->n, w->req, &w->fi,
					   w->reply, &h, 1);
			if (rc == FS_OPEN_PARKED) {
				free(w);
				return; /* answered by another waiter */
			}
			if (rc == FS_LAZY_WHOLE)
				rc = -RFS_E_STORE_IO; /* its record went */
		} else {
			rfs_log(LOG_DEBUG, "open %s: its statistics: %s %s",
				w->n->path, rfs_err_name(rc), msg ? msg : "");
		}
		w->reply(w->req, &w->fi, rc, h);
	}
	free(w);
}

/* complete=1 (note 6): every block not stored is asked for as warm
 * work, which waits behind every block a reader waits for. */
static void complete_later(struct rfs_fs *fs, struct fs_lazy *lz)
{
	for (long i = 0; i < lz->nb; i++) {
		int fd = block_open(fs, lz, i);
		if (fd >= 0) {
			lz->fd[i] = fd;
			continue;
		}
		if (fd != -ENOENT)
			return;
		if (block_request(fs, lz, i, lz->n->src_uid, 1, NULL, NULL) < 0)
			return;
	}
}

static int lazy_handle(struct rfs_fs *fs, struct rfs_node *n,
		       struct rfs_tiff_layout *l, struct fs_handle **out)
{
	struct fs_lazy *lz = calloc(1, sizeof(*lz));
	struct fs_handle *h = calloc(1, sizeof(*h));
	size_t nb;
	int rc;

	if (!lz || !h) {
		rc = -ENOMEM;
		goto fail;
	}
	lz->fs = fs;
	lz->n = n;
	lz->l = *l;
	memset(l, 0, sizeof(*l)); /* lz's now */
	lz->nb = rfs_lazy_nblocks(&lz->l);
	lz->src_fd = -1;
	lz->ahead = -1;
	nb = (size_t)lz->nb;
	if (!(lz->fd = malloc(nb * sizeof(int)))) {
		rc = -ENOMEM;
		goto fail;
	}
	for (size_t i = 0; i < nb; i++)
		lz->fd[i] = -1;
	if ((lz->src_fd = rc = fs_open_pin_source(fs, n)) < 0)
		goto fail;
	if ((rc = fs_node_learn_size(n, lz->l.total_size, 0)) < 0)
		goto fail;
	pthread_mutex_init(&lz->lock, NULL);
	if (fs->complete)
		complete_later(fs, lz);
	h->fd = -1;
	h->node = n;
	h->direct_io = 1; /* note 1 */
	h->lazy = lz;
	*out = h;
	rfs_stat_inc(&fs->stats, lazy_opens);
	return 0;
fail:
	if (lz) {
		if (lz->src_fd >= 0)
			close(lz->src_fd);
		free(lz->fd);
		rfs_tiff_layout_free(&lz->l);
		free(lz);
	}
	free(h);
	return rc;
}

static int lazy_open_now(struct rfs_fs *fs, struct rfs_node *n,
			 fuse_req_t req, struct fuse_file_info *fi,
			 fs_open_reply_fn reply, struct fs_handle **h,
			 int tries)
{
	struct rfs_tiff_layout l;
	struct stats_waiter *w;
	char canon[RFS_CHAIN_TEXT_MAX + RFS_LAZY_SUFFIX_MAX];
	int src_fd, rc;

	memset(&l, 0, sizeof(l));
	*h = NULL;
	if ((rc = lazy_layout(fs, n, &l)) != 0)
		return rc == 1 ? FS_LAZY_WHOLE : rc;
	for (; tries < MAX_TRIES; tries++) {
		rc = lazy_stats(fs, n, &l);
		if (rc == 0) {
			rc = lazy_handle(fs, n, &l, h);
			goto out;
		}
		if (rc != -ENOENT)
			goto out;
		/* computed first, by a worker (note 1) */
		if ((src_fd = fs_open_pin_source(fs, n)) < 0) {
			rc = src_fd;
			goto out;
		}
		if (!(w = calloc(1, sizeof(*w)))) {
			close(src_fd);
			rc = -ENOMEM;
			goto out;
		}
		w->req = req;
		w->fi = *fi;
		w->fs = fs;
		w->n = n;
		w->reply = reply;
		piece_key(n, RFS_LAZY_PART_STATS, 0, 0, &w->key, canon,
			  sizeof(canon));
		fuse_req_interrupt_func(req, stats_interrupted, w);
		rc = piece_request(fs, n, src_fd, RFS_LAZY_PART_STATS, 0, 0,
				   fuse_req_ctx(req)->uid, 0, stats_done, w);
		close(src_fd);
		if (rc == 0) {
			rc = FS_OPEN_PARKED;
			goto out;
		}
		if (atomic_exchange(&w->replied, 1) != 0) {
			free(w); /* answered EINTR already */
			rc = FS_OPEN_PARKED;
			goto out;
		}
		fuse_req_interrupt_func(req, NULL, NULL);
		free(w);
		if (rc < 0)
			goto out;
		/* 1: stored meanwhile, look again */
	}
	rc = -RFS_E_STORE_IO;
out:
	rfs_tiff_layout_free(&l);
	return rc;
}

int fs_lazy_open(struct rfs_fs *fs, struct rfs_node *n, fuse_req_t req,
		 struct fuse_file_info *fi, fs_open_reply_fn reply,
		 struct fs_handle **h)
{
	return lazy_open_now(fs, n, req, fi, reply, h, 0);
}

static void lazy_destroy(struct fs_lazy *lz)
{
	size_t nb = (size_t)lz->nb;

	for (size_t i = 0; i < nb; i++)
		if (lz->fd[i] >= 0)
			close(lz->fd[i]);
	if (lz->src_fd >= 0)
		close(lz->src_fd);
	free(lz->fd);
	rfs_tiff_layout_free(&lz->l);
	pthread_mutex_destroy(&lz->lock);
	free(lz);
}

/* ---- read (notes 2, 3) ------------------------------------------------ */

/* Walk [off, off + size) (within the file): with buf NULL, open the
 * stored blocks' objects and list the missing ones in miss (at most max;
 * *nmiss); with buf, copy the bytes (every block is open).  Returns 0 or
 * a negative code. */
static int walk(struct fs_lazy *lz, uint64_t off, size_t size,
		unsigned char *buf, int *miss, int max, int *nmiss)
{
	uint64_t pos = off, end = off + size, boff, run;
	int lv, bx, by, rc;

	if (nmiss)
		*nmiss = 0;
	while (pos < end) {
		rc = rfs_lazy_locate(&lz->l, pos, &lv, &bx, &by, &boff, &run);
		if (rc < 0)
			return -RFS_E_INTERNAL;
		if (run > end - pos)
			run = end - pos;
		if (rc == 1) {
			if (buf && rfs_tiff_header_read(&lz->l, pos,
							buf + (pos - off),
							(size_t)run) < 0)
				return -RFS_E_INTERNAL;
			pos += run;
			continue;
		}
		int b = (int)rfs_lazy_block_index(&lz->l, lv, bx, by);
		pthread_mutex_lock(&lz->lock);
		int fd = lz->fd[b];
		pthread_mutex_unlock(&lz->lock);
		if (fd < 0 && !buf) {
			int dup = 0;
			for (int i = 0; i < *nmiss; i++)
				dup |= miss[i] == b;
			if (!dup) {
				fd = piece_open_at(lz->fs, lz->n,
						   RFS_LAZY_PART_BLOCK, lv, bx,
						   by);
				if (fd >= 0) {
					pthread_mutex_lock(&lz->lock);
					if (lz->fd[b] < 0)
						lz->fd[b] = fd;
					else
						close(fd);
					pthread_mutex_unlock(&lz->lock);
				} else if (fd == -ENOENT && *nmiss < max) {
					miss[(*nmiss)++] = b;
				} else if (fd != -ENOENT) {
					return fd;
				}
			}
		} else if (buf) {
			if (fd < 0)
				return -ENOENT;
			ssize_t got = pread(fd, buf + (pos - off), (size_t)run,
					    (off_t)boff);
			if (got < 0)
				return -errno;
			if ((uint64_t)got != run)
				return -RFS_E_STORE_CORRUPT;
		}
		pos += run;
	}
	return 0;
}

struct read_waiter;

struct block_waiter {
	struct read_waiter *rw;
	rfs_key key;
};

#define MAX_MISS 64 /* blocks one read may wait for (a 1 MiB read of
		       Byte tiles spans at most 17 tiles) */

struct read_waiter {
	fuse_req_t req;
	struct rfs_fs *fs;
	struct fs_lazy *lz;
	uint64_t off;
	size_t size;
	fs_read_reply_fn reply;
	int tries;
	atomic_int replied;
	atomic_int pending;
	atomic_int refs;
	atomic_int rc;
	int nb;
	struct block_waiter bw[MAX_MISS];
};

static void rw_unref(struct read_waiter *rw)
{
	if (atomic_fetch_sub(&rw->refs, 1) == 1)
		free(rw);
}

static int serve(struct rfs_fs *fs, struct fs_lazy *lz, fuse_req_t req,
		 uint64_t off, size_t size, fs_read_reply_fn reply,
		 int tries);

static void read_complete(struct read_waiter *rw)
{
	int rc = atomic_load(&rw->rc);

	if (atomic_exchange(&rw->replied, 1) != 0)
		return; /* answered EINTR */
	fuse_req_interrupt_func(rw->req, NULL, NULL);
	if (rc == 0)
		rc = serve(rw->fs, rw->lz, rw->req, rw->off, rw->size,
			   rw->reply, rw->tries + 1);
	if (rc < 0)
		rw->reply(rw->req, rc, NULL, 0);
	rw_unref(rw); /* the reply's */
}

static void block_done(void *arg, int rc, const char *msg)
{
	struct block_waiter *bw = arg;
	struct read_waiter *rw = bw->rw;

	if (rc < 0) {
		int zero = 0;
		atomic_compare_exchange_strong(&rw->rc, &zero, rc);
		rfs_log(LOG_DEBUG, "read of %s: a block failed: %s %s",
			rw->lz->n->path, rfs_err_name(rc), msg ? msg : "");
	}
	if (atomic_fetch_sub(&rw->pending, 1) == 1)
		read_complete(rw);
	rw_unref(rw);
}

static void read_interrupted(fuse_req_t req, void *arg)
{
	struct read_waiter *rw = arg;

	if (atomic_exchange(&rw->replied, 1) != 0)
		return;
	rw->reply(req, -EINTR, NULL, 0);
	for (int i = 0; i < rw->nb; i++)
		if (rfs_pool_cancel_waiter(rw->fs->pool, &rw->bw[i].key,
					   &rw->bw[i]) == 1) {
			rfs_stat_inc(&rw->fs->stats, lazy_cancelled);
			atomic_fetch_sub(&rw->pending, 1);
			rw_unref(rw);
		}
	rw_unref(rw); /* the reply's */
}

/* Note 4: a sequential reader has the blocks after b (of level lv)
 * asked for, in that level (note 8). */
static void read_ahead(struct rfs_fs *fs, struct fs_lazy *lz, int lv, long b,
		       uid_t uid)
{
	long lend = lv + 1 < lz->l.n_levels ?
		    rfs_lazy_block_index(&lz->l, lv + 1, 0, 0) : lz->nb;
	long upto = b + (long)RFS_LAZY_AHEAD * rfs_pool_workers(fs->pool);

	if (upto >= lend)
		upto = lend - 1;
	for (;;) {
		pthread_mutex_lock(&lz->lock);
		/* ahead of b in b's level, or b's next */
		long next = lz->ahead > b && lz->ahead < lend ?
			    lz->ahead + 1 : b + 1;
		int have = next <= upto && lz->fd[next] >= 0;
		if (next <= upto)
			lz->ahead = next;
		pthread_mutex_unlock(&lz->lock);
		if (next > upto)
			return;
		if (have)
			continue;
		int fd = block_open(fs, lz, next);
		if (fd >= 0) {
			pthread_mutex_lock(&lz->lock);
			if (lz->fd[next] < 0)
				lz->fd[next] = fd;
			else
				close(fd);
			pthread_mutex_unlock(&lz->lock);
			continue;
		}
		if (block_request(fs, lz, next, uid, 1, NULL, NULL) == 0)
			rfs_stat_inc(&fs->stats, lazy_ahead);
	}
}

/* Note 9: the blocks of level lv, if small, asked for as warm work, once
 * per handle. */
static void view_ahead(struct rfs_fs *fs, struct fs_lazy *lz, int lv,
		       uid_t uid)
{
	long first, n;
	int asked;

	if (lv < 1 || lv >= 32)
		return;
	first = rfs_lazy_block_index(&lz->l, lv, 0, 0);
	n = (long)rfs_lazy_blocks_x(lz->l.level[lv].width) *
	    rfs_lazy_blocks_y(lz->l.level[lv].height);
	if (n > RFS_LAZY_VIEW)
		return;
	pthread_mutex_lock(&lz->lock);
	asked = (lz->view_asked >> lv) & 1;
	lz->view_asked |= 1u << lv;
	pthread_mutex_unlock(&lz->lock);
	if (asked)
		return;
	for (long i = first; i < first + n; i++) {
		pthread_mutex_lock(&lz->lock);
		int have = lz->fd[i] >= 0;
		pthread_mutex_unlock(&lz->lock);
		if (have)
			continue;
		int fd = block_open(fs, lz, i);
		if (fd >= 0) {
			pthread_mutex_lock(&lz->lock);
			if (lz->fd[i] < 0)
				lz->fd[i] = fd;
			else
				close(fd);
			pthread_mutex_unlock(&lz->lock);
			continue;
		}
		if (fd == -ENOENT &&
		    block_request(fs, lz, i, uid, 1, NULL, NULL) == 0)
			rfs_stat_inc(&fs->stats, lazy_ahead);
	}
}

/* Answer the read now (0: answered), park it (0), or fail (a code: the
 * caller answers it). */
static int serve(struct rfs_fs *fs, struct fs_lazy *lz, fuse_req_t req,
		 uint64_t off, size_t size, fs_read_reply_fn reply,
		 int tries)
{
	int miss[MAX_MISS], nmiss, rc;
	struct read_waiter *rw;
	unsigned char *buf;

	if ((rc = walk(lz, off, size, NULL, miss, MAX_MISS, &nmiss)) < 0)
		return rc;
	if (nmiss == 0) {
		if (!(buf = malloc(size ? size : 1)))
			return -ENOMEM;
		rc = walk(lz, off, size, buf, NULL, 0, NULL);
		if (rc == 0)
			reply(req, 0, buf, size);
		free(buf);
		return rc == -ENOENT ? -RFS_E_INTERNAL : rc;
	}
	if (tries >= MAX_TRIES) {
		rfs_log(LOG_ERR, "read of %s: its blocks were evicted three "
			"times before they could be read: cache_size is too "
			"small for the outputs read at once", lz->n->path);
		return -RFS_E_STORE_IO;
	}
	if (!(rw = calloc(1, sizeof(*rw))))
		return -ENOMEM;
	rw->req = req;
	rw->fs = fs;
	rw->lz = lz;
	rw->off = off;
	rw->size = size;
	rw->reply = reply;
	rw->tries = tries;
	rw->nb = nmiss;
	/* the guard (one pending, one ref) is dropped below */
	atomic_store(&rw->pending, nmiss + 1);
	atomic_store(&rw->refs, nmiss + 2);
	for (int i = 0; i < nmiss; i++) {
		char canon[RFS_CHAIN_TEXT_MAX + RFS_LAZY_SUFFIX_MAX];
		rw->bw[i].rw = rw;
		block_key(lz->n, &lz->l, miss[i], &rw->bw[i].key, canon,
			  sizeof(canon));
	}
	fuse_req_interrupt_func(req, read_interrupted, rw);
	for (int i = 0; i < nmiss; i++) {
		rc = block_request(fs, lz, miss[i], fuse_req_ctx(req)->uid, 0,
				   block_done, &rw->bw[i]);
		if (rc == 0) {
			rfs_stat_inc(&fs->stats, lazy_waits);
			continue;
		}
		if (rc < 0) {
			int zero = 0;
			atomic_compare_exchange_strong(&rw->rc, &zero, rc);
		}
		atomic_fetch_sub(&rw->pending, 1);
		rw_unref(rw);
	}
	if (atomic_fetch_sub(&rw->pending, 1) == 1)
		read_complete(rw);
	rw_unref(rw);
	return 0;
}

void fs_lazy_read(struct rfs_fs *fs, struct fs_handle *h, fuse_req_t req,
		  size_t size, off_t off, fs_read_reply_fn reply)
{
	struct fs_lazy *lz = h->lazy;
	uint64_t total = lz->l.total_size;
	int rc, seq;

	rfs_stat_inc(&fs->stats, reads);
	if ((uint64_t)off >= total) {
		reply(req, 0, NULL, 0);
		return;
	}
	if (size > total - (uint64_t)off)
		size = (size_t)(total - (uint64_t)off);
	pthread_mutex_lock(&lz->lock);
	lz->run = lz->next_off == (uint64_t)off ? lz->run + size : size;
	lz->next_off = (uint64_t)off + size;
	seq = lz->run > (uint64_t)lz->l.level[0].tiles_x * lz->l.bands *
			lz->l.tile_bytes;
	pthread_mutex_unlock(&lz->lock);
	if (seq) {
		int lv, bx, by;
		uint64_t boff, run;
		uint64_t last = (uint64_t)off + size - 1;
		if (rfs_lazy_locate(&lz->l, last, &lv, &bx, &by, &boff,
				    &run) == 0)
			read_ahead(fs, lz, lv,
				   rfs_lazy_block_index(&lz->l, lv, bx, by),
				   fuse_req_ctx(req)->uid);
	}
	/* note 9 (the read's own block, joined below by the read, goes
	 * first: a job someone waits for goes before warm work) */
	{
		int lv, bx, by;
		uint64_t boff, run;
		if (rfs_lazy_locate(&lz->l, (uint64_t)off, &lv, &bx, &by,
				    &boff, &run) == 0 && lv > 0)
			view_ahead(fs, lz, lv, fuse_req_ctx(req)->uid);
	}
	rc = serve(fs, lz, req, (uint64_t)off, size, reply, 0);
	if (rc < 0)
		reply(req, rc, NULL, 0);
}

/* ---- assembly (note 7) ------------------------------------------------- */

struct assembly {
	struct rfs_fs *fs;
	struct fs_lazy *lz;       /* every block open; ours */
	rfs_key key;
	struct rfs_src_id id;
	char *canonical, *source;
	char path[PATH_MAX];
	rfs_key *pieces;          /* every block's and #stats' keys */
	size_t npieces;
};

static void assembly_free(struct assembly *a)
{
	if (a->lz)
		lazy_destroy(a->lz);
	free(a->canonical);
	free(a->source);
	free(a->pieces);
	free(a);
}

/* The keys of a's pieces (every level's blocks and the sample), which the
 * assembly drops once the whole is stored (note 7).  Returns 0 or
 * -ENOMEM (nothing is dropped then). */
static int assembly_pieces(struct assembly *a, const struct rfs_tiff_layout *l)
{
	char canon[RFS_CHAIN_TEXT_MAX + RFS_LAZY_SUFFIX_MAX];
	long nb = rfs_lazy_nblocks(l);
	int lv, bx, by;

	if (!(a->pieces = calloc((size_t)nb + 1, sizeof(*a->pieces))))
		return -ENOMEM;
	for (long i = 0; i <= nb; i++) {
		int stats = i == nb;
		if ((!stats && rfs_lazy_block_at(l, i, &lv, &bx, &by) < 0) ||
		    rfs_lazy_suffix(a->canonical, stats ? RFS_LAZY_PART_STATS :
				    RFS_LAZY_PART_BLOCK, stats ? 0 : lv,
				    stats ? 0 : bx, stats ? 0 : by, canon,
				    sizeof(canon)) < 0)
			continue; /* not dropped: eviction takes it */
		rfs_key_make(&a->pieces[a->npieces++], &a->id, canon);
	}
	return 0;
}

static void assembled(void *arg, int rc)
{
	struct assembly *a = arg;

	if (rc < 0)
		rfs_log(LOG_WARNING, "%s%s: its blocks were not made one "
			"object: %s", a->source, a->canonical,
			rfs_strerror(rc));
	else
		rfs_log(LOG_DEBUG, "%s%s: its blocks are one object now",
			a->source, a->canonical);
	/* the pieces are not needed any more: the store keeps one copy */
	if (rc == 0 && a->npieces &&
	    (rc = rfs_store_drop(a->fs->store, a->pieces, a->npieces)) < 0)
		rfs_log(LOG_NOTICE, "%s%s: its blocks stay until eviction: %s",
			a->source, a->canonical, rfs_strerror(rc));
	assembly_free(a);
}

/* Write the whole file from the blocks into scratch, fsync'ed: 0 with its
 * size and checksum, or a negative code (the file removed). */
static int assembly_write(struct assembly *a, uint64_t *size,
			  uint64_t *checksum)
{
	const size_t step = 4u << 20;
	struct fs_lazy *lz = a->lz;
	unsigned char *buf = malloc(step);
	XXH3_state_t *hs = XXH3_createState();
	uint64_t total = lz->l.total_size;
	int fd = -1, rc = 0;

	if (!buf || !hs) {
		rc = -ENOMEM;
		goto out;
	}
	fd = open(a->path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0) {
		rc = -errno;
		goto out;
	}
	XXH3_64bits_reset(hs);
	for (uint64_t off = 0; off < total && rc == 0; off += step) {
		size_t n = total - off < step ? (size_t)(total - off) : step;
		if (atomic_load(&a->fs->lazy_stop)) {
			rc = -RFS_E_SHUTDOWN;
			break;
		}
		if ((rc = walk(lz, off, n, buf, NULL, 0, NULL)) < 0)
			break;
		XXH3_64bits_update(hs, buf, n);
		for (size_t done = 0; done < n && rc == 0;) {
			ssize_t w = pwrite(fd, buf + done, n - done,
					   (off_t)(off + done));
			if (w < 0)
				rc = errno == ENOSPC ? -RFS_E_NOSPACE : -errno;
			else
				done += (size_t)w;
		}
	}
	if (rc == 0 && fsync(fd) < 0)
		rc = -errno;
	*size = total;
	*checksum = XXH3_64bits_digest(hs);
out:
	if (fd >= 0)
		close(fd);
	if (rc < 0)
		unlink(a->path);
	XXH3_freeState(hs);
	free(buf);
	return rc;
}

static void *assembly_main(void *arg)
{
	struct assembly *a = arg;
	struct rfs_fs *fs = a->fs;
	uint64_t size = 0, checksum = 0;
	char dir[PATH_MAX];
	int rc;

	rc = rfs_store_scratch_dir(fs->store, RFS_LAZY_SCRATCH_SLOT, dir,
				   sizeof(dir));
	if (rc == 0 && snprintf(a->path, sizeof(a->path), "%s/whole.tif",
				dir) >= (int)sizeof(a->path))
		rc = -ENAMETOOLONG;
	if (rc == 0)
		rc = assembly_write(a, &size, &checksum);
	if (rc == 0) {
		struct rfs_store_meta meta = {
			.src = a->id,
			.canonical = a->canonical,
			.source = a->source,
			.size = size,
			.checksum = checksum,
		};
		/* the blocks' descriptors go now: the committer renames the
		 * file and calls assembled(), which drops the pieces */
		assembly_pieces(a, &a->lz->l);
		lazy_destroy(a->lz);
		a->lz = NULL;
		rc = rfs_store_commit(fs->store, &a->key, a->path, &meta,
				      assembled, a);
		if (rc < 0)
			unlink(a->path);
		else
			a = NULL;
	}
	if (a) {
		if (rc != -RFS_E_SHUTDOWN)
			rfs_log(LOG_WARNING, "%s%s: its blocks were not made "
				"one object: %s", a->source, a->canonical,
				rfs_strerror(rc));
		assembly_free(a);
	}
	pthread_mutex_lock(&fs->lazy_lock);
	fs->lazy_assembling = 0;
	pthread_cond_broadcast(&fs->lazy_cv);
	pthread_mutex_unlock(&fs->lazy_lock);
	return NULL;
}

/* lz's handle is released: if every block is stored, make them one
 * object in the background (note 7) and return 1 (lz is taken), else 0. */
static int assemble(struct fs_lazy *lz)
{
	struct rfs_fs *fs = lz->fs;
	size_t nb = (size_t)lz->nb;
	struct assembly *a;
	pthread_attr_t attr;
	pthread_t t;

	if (!lz->n || atomic_load(&fs->lazy_stop))
		return 0;
	for (size_t i = 0; i < nb; i++) {
		if (lz->fd[i] >= 0)
			continue;
		if ((lz->fd[i] = block_open(fs, lz, (long)i)) < 0)
			return 0;
	}
	pthread_mutex_lock(&fs->lazy_lock);
	int busy = fs->lazy_assembling;
	fs->lazy_assembling = 1;
	pthread_mutex_unlock(&fs->lazy_lock);
	if (busy)
		return 0; /* one at a time; the next full reader tries again */
	if (!(a = calloc(1, sizeof(*a))) ||
	    !(a->canonical = strdup(lz->n->canonical)) ||
	    !(a->source = strdup(lz->n->src)))
		goto fail;
	a->fs = fs;
	a->key = lz->n->key;
	a->id = lz->n->id;
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	a->lz = lz;
	lz->n = NULL; /* the node may be forgotten meanwhile */
	int rc = pthread_create(&t, &attr, assembly_main, a);
	pthread_attr_destroy(&attr);
	if (rc == 0)
		return 1;
	a->lz = NULL;
fail:
	if (a) {
		free(a->canonical);
		free(a->source);
		free(a);
	}
	pthread_mutex_lock(&fs->lazy_lock);
	fs->lazy_assembling = 0;
	pthread_cond_broadcast(&fs->lazy_cv);
	pthread_mutex_unlock(&fs->lazy_lock);
	return 0;
}

void fs_lazy_free(struct fs_lazy *lz)
{
	if (lz && !assemble(lz))
		lazy_destroy(lz);
}

void fs_lazy_stop(struct rfs_fs *fs)
{
	atomic_store(&fs->lazy_stop, 1);
	pthread_mutex_lock(&fs->lazy_lock);
	while (fs->lazy_assembling)
		pthread_cond_wait(&fs->lazy_cv, &fs->lazy_lock);
	pthread_mutex_unlock(&fs->lazy_lock);
}

int fs_lazy_blocks(struct rfs_fs *fs, struct rfs_node *n, long *done,
		   long *total)
{
	struct rfs_tiff_layout l;
	char canon[RFS_CHAIN_TEXT_MAX + RFS_LAZY_SUFFIX_MAX];
	rfs_key key;
	int rc;

	memset(&l, 0, sizeof(l));
	if ((rc = lazy_layout(fs, n, &l)) != 0)
		return rc == 1 ? -ENODATA : rc;
	/* every level's blocks (note 8) */
	*total = rfs_lazy_nblocks(&l);
	if (done) {
		*done = 0;
		for (long i = 0; i < *total; i++)
			if (block_key(n, &l, i, &key, canon,
				      sizeof(canon)) == 0 &&
			    (rfs_store_lookup(fs->store, &key, &n->id, canon,
					      NULL) == 0 ||
			     rfs_pool_early_has(fs->pool, &key)))
				(*done)++;
	}
	rfs_tiff_layout_free(&l);
	return 0;
}
