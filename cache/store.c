/* store.c - the cache store's core: open and close, the committer thread
 * (the one writer) and its queue, lookups, scratch directories.
 *
 * Design notes (the on-disk format itself is in cache/README.md).  Each
 * note lives beside the code it describes; the numbers are kept, so
 * "note 8" means the same note anywhere in cache/:
 *
 *    1. One writer                        here
 *    2. Commit order                      commit.c
 *    3. What a crash leaves, and repair   repair.c
 *    4. Locks                             here
 *    5. Counters                          index.c
 *    6. LMDB rules we rely on             here
 *    7. Paths                             here
 *    8. Size limit and access times       evict.c
 *    9. Map growth                        index.c
 *   10. Changed sources                   gc.c
 *   11. Privacy                           here
 *
 *  1. One writer.  Every LMDB write transaction of a process is opened by
 *     its committer thread (committer_main): startup repair runs there
 *     before the thread takes any work, and rfs_store_open() waits for it.
 *     Lookups, open_object and stats use read transactions only, so they
 *     never wait for a commit.  Several processes (mounts) may share one
 *     store; LMDB serialises their write transactions.
 *
 *  4. Locks.  store.lock (flock): LOCK_SH by a committer around c..e,
 *     LOCK_EX by rfs_store_open() for all of its work (format check,
 *     repair, claiming a scratch dir).  So repair never sees an object that
 *     another live process renamed but has not indexed yet, and it never
 *     runs in two processes at once.  Lock order is always store.lock
 *     before the LMDB write lock.  scratch/<pid>/lock: LOCK_EX by its owner
 *     for its lifetime; repair removes a scratch dir whose lock it can take.
 *     Every fd is O_CLOEXEC: a process that forks workers without exec
 *     must not let them outlive it, or they keep these locks held.
 *
 *  6. LMDB rules we rely on: MDB_NOTLS, because read transactions begin and
 *     end on whatever thread serves the request; one MDB_env per process
 *     and directory (open_stores refuses a second open in one process:
 *     closing the second env would drop the first one's locks).
 *
 *  7. Paths.  The directory is resolved with realpath() at open, so the
 *     scratch and object paths handed out stay valid after a chdir("/")
 *     (daemonising).  rfs_store_commit() accepts only files under this
 *     process's scratch/<pid>/, since the committer renames whatever it is
 *     given into the store.
 *
 * 11. Privacy.  Outputs carry their source's permissions only through the
 *     mount (the FUSE layer checks them), so the store itself is private to
 *     its owner: directories are made 0700 and files 0600 (the daemon also
 *     runs with umask 077), an object is made 0600 before it is renamed in
 *     whatever mode the worker gave it, and an existing store directory of
 *     ours that others could enter is tightened to 0700 at open.
 *
 *  The life of one key; each arrow names the function that makes it
 *  (commit.c: store_commit_one, index_put; repair.c: repair_*; evict.c:
 *  store_evict_now; gc.c: store_gc_run, store_clear_run; index.c:
 *  store_unlink_gone):
 *
 *               store_commit_one()       store_commit_one()
 *      SCRATCH -------------------> PLACED --------------> INDEXED
 *         |      rename, fsync dir   |  ^   LMDB commit       |
 *         |                          |  |                     |
 *         |                          |  +---------------------+
 *         | repair_scratch()         |      repair_index()
 *         | store_commit_one()       | repair_objects()
 *         |                          | store_commit_one()
 *         +---------> ABSENT <-------+
 *
 *     ABSENT -> SCRATCH     the worker writes and fsyncs (no store code).
 *     SCRATCH -> ABSENT     repair_scratch(): its owner died;
 *                           store_commit_one(): key already INDEXED, or an
 *                           error.
 *     PLACED -> ABSENT      store_commit_one(): the transaction failed;
 *                           repair_objects(): a crash came before (e).
 *     INDEXED -> PLACED     repair_index(): the file was lost or truncated
 *                           behind our back; repair_objects() then removes
 *                           what is left.
 *     INDEXED is otherwise final: objects are immutable.
 *     INDEXED -> PLACED     index_put(), store_evict_now(), store_gc_run(),
 *                           store_clear_run(): evicted, or its source
 *                           changed (notes 8, 10);
 *                           store_unlink_gone() then removes the file.
 */
#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <lmdb.h>

#include "rasterfs/err.h"
#include "rasterfs/log.h"
#include "rasterfs/store.h"
#include "store_int.h"

#define STORE_MAP_SIZE ((size_t)1 << 30)
#define STORE_MAX_DBS 4
#define STORE_MAX_READERS 256
#define STORE_MAX_STRING (1u << 20) /* canonical chain, source path */

/* Stores open in this process, by (dev, ino) of their directory. */
static pthread_mutex_t open_mu = PTHREAD_MUTEX_INITIALIZER;
static struct rfs_store *open_stores;

/* ---- the directory layout (cache/README.md) --------------------------- */

/* "objects/ab/<32 hex>.tif", relative to the store directory. */
void store_object_rel(const rfs_key *key, char *buf, size_t len)
{
	char hex[RFS_KEY_HEX];

	rfs_key_hex(key, hex);
	snprintf(buf, len, "objects/%.2s/%s.tif", hex, hex);
}

int store_object_name(const char *shard, const char *n, rfs_key *key)
{
	char hex[RFS_KEY_HEX];

	if (strlen(n) != 36 || strcmp(n + 32, ".tif") ||
	    (shard && strncmp(n, shard, 2)))
		return 0;
	memcpy(hex, n, 32);
	hex[32] = '\0';
	return rfs_key_parse(hex, key) == 0;
}

int store_is_shard(const char *n)
{
	static const char digits[] = "0123456789abcdef";

	return n[0] && n[1] && !n[2] && strchr(digits, n[0]) &&
	       strchr(digits, n[1]);
}

/* ---- the committer thread (note 1) ------------------------------------ */

static void sync_done(struct sync_req *s, int rc)
{
	pthread_mutex_lock(&s->mu);
	s->rc = rc;
	s->done = 1;
	pthread_cond_signal(&s->cv);
	pthread_mutex_unlock(&s->mu);
}

#define DESC_BATCH 512

/* Description records, written together (desc.c note 12). */
static void run_describe(rfs_store *st, struct commit_req **r, size_t n)
{
	int mrc = store_desc_batch(st, r, n);
	int rc = mrc ? store_mdb_fail(st, "descriptions", mrc) : 0;

	for (size_t i = 0; i < n; i++) {
		if (r[i]->cb)
			r[i]->cb(r[i]->arg, rc);
		free(r[i]);
	}
}

static void run_req(rfs_store *st, struct commit_req *r)
{
	int rc;

	switch (r->kind) {
	case REQ_COMMIT:
		rc = store_commit_one(st, r);
		r->cb(r->arg, rc);
		break;
	case REQ_GC:
		/* The maintenance runners speak LMDB (MDB_* or a positive
		 * errno); their callers get the store's negative codes. */
		rc = store_gc_run(st, r->sync->limit, r->sync->gc);
		sync_done(r->sync, rc ? store_mdb_fail(st, "gc", rc) : 0);
		break;
	case REQ_CLEAR:
		sync_done(r->sync, store_clear_run(st, &r->sync->removed,
						   &r->sync->pid));
		break;
	case REQ_FLUSH:
		/* store_atimes_flush() has logged a failure */
		sync_done(r->sync, store_mdb_rc(store_atimes_flush(st)));
		break;
	case REQ_CONTENT:
		/* a hint that is computed again if lost: logged only */
		if ((rc = store_content_put_one(st, r)))
			store_mdb_fail(st, "content hash", rc);
		break;
	case REQ_DROP:
		if ((rc = store_drop_run(st, r)))
			store_mdb_fail(st, "dropping entries", rc);
		break;
	case REQ_DESCRIBE:
		run_describe(st, &r, 1);
		return; /* freed there */
	}
	free(r);
}

static void *committer_main(void *arg)
{
	rfs_store *st = arg;
	struct repair_report rep = { 0 };
	int rc;

	/* Its lines name the outputs of every user: in a mount's log they
	 * are root's and the owner's only (log.h). */
	rfs_log_set_owner(RFS_LOG_PRIVATE);
	rc = store_repair(st, &rep);
	if (!rc && st->limit) {
		uint64_t n = 0, b = 0;
		int mrc = store_evict_now(st, st->limit, &n, &b);

		if (mrc)
			rfs_log(LOG_WARNING, "store %s: eviction: %s", st->dir,
				mdb_strerror(mrc));
		else if (n)
			rfs_log(LOG_INFO, "store %s: evicted %llu objects "
				"(%llu bytes) to stay under cache_size", st->dir,
				(unsigned long long)n, (unsigned long long)b);
	}
	pthread_mutex_lock(&st->mu);
	st->rep = rep;
	st->init_rc = rc;
	st->init_done = 1;
	pthread_cond_broadcast(&st->init_cv);
	if (rc) {
		pthread_mutex_unlock(&st->mu);
		return NULL;
	}
	for (;;) {
		struct commit_req *r;

		/* Note 8: access times wait at most ATIME_PERIOD_NS, or
		 * until ATIME_BATCH keys are pending. */
		while (!st->head && !st->stopping &&
		       st->natimes < ATIME_BATCH) {
			if (!st->natimes) {
				pthread_cond_wait(&st->work_cv, &st->mu);
				continue;
			}
			int64_t due = st->atime_first + ATIME_PERIOD_NS;
			struct timespec ts = { due / 1000000000,
					       due % 1000000000 };

			if (pthread_cond_timedwait(&st->work_cv, &st->mu,
						   &ts) == ETIMEDOUT)
				break;
		}
		r = st->head;
		if (!r) {
			if (st->natimes) {
				pthread_mutex_unlock(&st->mu);
				store_atimes_flush(st);
				pthread_mutex_lock(&st->mu);
				continue;
			}
			break; /* stopping, and the queue is drained */
		}
		st->head = r->next;
		if (r->kind == REQ_DESCRIBE) {
			/* note 12: the records queued together, one
			 * transaction */
			struct commit_req *batch[DESC_BATCH];
			size_t n = 0;

			batch[n++] = r;
			while (n < DESC_BATCH && st->head &&
			       st->head->kind == REQ_DESCRIBE) {
				batch[n++] = st->head;
				st->head = st->head->next;
			}
			if (!st->head)
				st->tail = NULL;
			pthread_mutex_unlock(&st->mu);
			run_describe(st, batch, n);
			pthread_mutex_lock(&st->mu);
			continue;
		}
		if (!st->head)
			st->tail = NULL;
		pthread_mutex_unlock(&st->mu);
		run_req(st, r);
		pthread_mutex_lock(&st->mu);
	}
	pthread_mutex_unlock(&st->mu);
	return NULL;
}

/* ---- open / close ----------------------------------------------------- */

static int read_format(rfs_store *st)
{
	char buf[64], *end;
	ssize_t n;
	long v;
	int fd;

	fd = openat(st->dir_fd, "FORMAT", O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n < 0)
		return -errno;
	buf[n] = '\0';
	errno = 0;
	v = strtol(buf, &end, 10);
	while (*end == '\n' || *end == ' ')
		end++;
	if (errno || end == buf || *end || v != RFS_FORMAT_VERSION) {
		rfs_log(LOG_ERR, "store %s: format version \"%.*s\", this "
			"rasterfs reads %d; use another cache directory",
			st->dir, (int)strcspn(buf, "\n"), buf,
			RFS_FORMAT_VERSION);
		return -RFS_E_STORE_VERSION;
	}
	return 0;
}

/* Check FORMAT, or write it into a directory that holds no store yet. */
static int check_format(rfs_store *st)
{
	static const char *const ours[] = { "objects", "scratch", "index" };
	char buf[32];
	struct stat sb;
	int fd, len, rc;

	rc = read_format(st);
	if (rc != -ENOENT)
		return rc;
	/* Repair deletes files under these; never adopt someone else's. */
	for (size_t i = 0; i < sizeof(ours) / sizeof(ours[0]); i++) {
		if (fstatat(st->dir_fd, ours[i], &sb, AT_SYMLINK_NOFOLLOW) == 0) {
			rfs_log(LOG_ERR, "store %s: has %s/ but no FORMAT file; "
				"refusing to use it as a cache store",
				st->dir, ours[i]);
			return -ENOTEMPTY;
		}
	}
	rc = 0;
	len = snprintf(buf, sizeof(buf), "%d\n", RFS_FORMAT_VERSION);
	fd = openat(st->dir_fd, "FORMAT.tmp", O_WRONLY | O_CREAT | O_TRUNC |
		    O_CLOEXEC, 0600);
	if (fd < 0)
		return -errno;
	errno = 0;
	if (write(fd, buf, (size_t)len) != len || fsync(fd) < 0)
		rc = errno ? -errno : -EIO;
	close(fd);
	if (!rc && renameat(st->dir_fd, "FORMAT.tmp", st->dir_fd, "FORMAT") < 0)
		rc = -errno;
	if (!rc && fsync(st->dir_fd) < 0)
		rc = -errno;
	if (rc)
		unlinkat(st->dir_fd, "FORMAT.tmp", 0);
	return rc;
}

static int open_env(rfs_store *st)
{
	char path[PATH_MAX];
	int mrc, dead = 0;

	if ((size_t)snprintf(path, sizeof(path), "%s/index", st->abs) >=
	    sizeof(path))
		return -ENAMETOOLONG;
	mrc = mdb_env_create(&st->env);
	if (mrc) {
		st->env = NULL;
		return store_mdb_fail(st, "mdb_env_create", mrc);
	}
	mrc = mdb_env_set_mapsize(st->env, st->map_size);
	if (!mrc)
		mrc = mdb_env_set_maxdbs(st->env, STORE_MAX_DBS);
	if (!mrc)
		mrc = mdb_env_set_maxreaders(st->env, STORE_MAX_READERS);
	if (!mrc)
		mrc = mdb_env_open(st->env, path, MDB_NOTLS |
				   (st->flags & RFS_STORE_RDONLY ?
				    MDB_RDONLY : 0), 0600);
	if (mrc)
		return store_mdb_fail(st, "open index", mrc);
	/* Reader slots of crashed processes would pin old pages forever. */
	mrc = mdb_reader_check(st->env, &dead);
	if (mrc)
		return store_mdb_fail(st, "mdb_reader_check", mrc);
	if (dead)
		rfs_log(LOG_INFO, "store %s: cleared %d stale reader slots",
			st->dir, dead);
	return 0;
}

/* A read-only open: find the named DBs if a writer ever made them. */
static int open_dbs_rdonly(rfs_store *st)
{
	MDB_txn *txn;
	int mrc;

	mrc = store_txn_begin(st, MDB_RDONLY, &txn);
	if (mrc)
		return store_mdb_fail(st, "open: begin", mrc);
	mrc = mdb_dbi_open(txn, "entries", 0, &st->dbi_entries);
	if (!mrc)
		mrc = mdb_dbi_open(txn, "meta", 0, &st->dbi_meta);
	if (!mrc)
		mrc = mdb_dbi_open(txn, "bysrc", 0, &st->dbi_bysrc);
	if (mrc == MDB_NOTFOUND) {
		store_txn_abort(st, txn);
		return 0; /* an empty store */
	}
	if (!mrc) {
		mrc = mdb_dbi_open(txn, "described", 0, &st->dbi_desc);
		st->have_desc = mrc == 0;
		if (mrc == MDB_NOTFOUND)
			mrc = 0;
	}
	if (mrc) {
		store_txn_abort(st, txn);
		return store_mdb_fail(st, "open databases", mrc);
	}
	mrc = store_txn_commit(st, txn); /* keeps the handles */
	if (mrc)
		return store_mdb_fail(st, "open databases", mrc);
	st->have_dbs = 1;
	return 0;
}

/* Make and lock scratch/<pid> (scratch/<pid>.<n> if a process of another
 * PID namespace holds that one).  Runs under store.lock LOCK_EX, so no
 * repair sees the dir before its lock is held. */
static int claim_scratch(rfs_store *st)
{
	char name[48], path[PATH_MAX];
	int fd = -1, rc = 0;

	for (unsigned n = 0; n < 100; n++) {
		int dfd;

		if (n)
			snprintf(name, sizeof(name), "scratch/%ld.%u",
				 (long)getpid(), n);
		else
			snprintf(name, sizeof(name), "scratch/%ld",
				 (long)getpid());
		if (mkdirat(st->dir_fd, name, 0700) < 0 && errno != EEXIST)
			return -errno;
		dfd = openat(st->dir_fd, name, O_RDONLY | O_DIRECTORY |
			     O_NOFOLLOW | O_CLOEXEC);
		if (dfd < 0)
			return -errno;
		fd = openat(dfd, "lock", O_RDWR | O_CREAT | O_CLOEXEC |
			    O_NOFOLLOW, 0600);
		if (fd < 0) {
			rc = -errno;
			close(dfd);
			return rc;
		}
		if (flock(fd, LOCK_EX | LOCK_NB) == 0) {
			/* Left by a dead process with our pid: start empty. */
			rc = store_empty_dir(dfd, "lock");
			close(dfd);
			if (rc) {
				close(fd);
				return rc;
			}
			if ((size_t)snprintf(path, sizeof(path), "%s/%s",
					     st->abs, name) >= sizeof(path)) {
				close(fd);
				return -ENAMETOOLONG;
			}
			st->scratch_root = strdup(path);
			if (!st->scratch_root) {
				close(fd);
				return -ENOMEM;
			}
			st->scratch_lock_fd = fd;
			return 0;
		}
		rc = errno == EWOULDBLOCK ? 0 : -errno;
		close(fd);
		close(dfd);
		if (rc)
			return rc;
	}
	return -EBUSY;
}

static void release_scratch(rfs_store *st)
{
	const char *rel;
	int dfd;

	if (st->scratch_lock_fd < 0)
		return;
	rel = st->scratch_root + strlen(st->abs) + 1;
	dfd = openat(st->dir_fd, rel, O_RDONLY | O_DIRECTORY | O_NOFOLLOW |
		     O_CLOEXEC);
	if (dfd >= 0) {
		if (store_empty_dir(dfd, "lock") < 0)
			rfs_log(LOG_WARNING, "store %s: cannot empty %s",
				st->dir, st->scratch_root);
		unlinkat(dfd, "lock", 0);
		close(dfd);
		unlinkat(st->dir_fd, rel, AT_REMOVEDIR);
	}
	close(st->scratch_lock_fd);
	st->scratch_lock_fd = -1;
}

static void stop_committer(rfs_store *st)
{
	if (!st->thread_started)
		return;
	pthread_mutex_lock(&st->mu);
	st->stopping = 1;
	pthread_cond_signal(&st->work_cv);
	pthread_mutex_unlock(&st->mu);
	pthread_join(st->thread, NULL);
	st->thread_started = 0;
}

static void unregister_open(rfs_store *st);

static void store_free(rfs_store *st)
{
	stop_committer(st);
	if (st->env)
		mdb_env_close(st->env);
	/* Only now may this process open the directory again. */
	if (st->registered)
		unregister_open(st);
	release_scratch(st);
	if (st->lock_fd >= 0)
		close(st->lock_fd);
	if (st->dir_fd >= 0)
		close(st->dir_fd);
	pthread_cond_destroy(&st->init_cv);
	pthread_cond_destroy(&st->work_cv);
	pthread_mutex_destroy(&st->mu);
	pthread_rwlock_destroy(&st->txn_rw);
	free(st->atimes);
	free(st->source_root);
	free(st->scratch_root);
	free(st->abs);
	free(st->dir);
	free(st);
}

/* Refuse a second open of one directory in one process (design note 6). */
static int register_open(rfs_store *st)
{
	int rc = 0;

	pthread_mutex_lock(&open_mu);
	for (rfs_store *o = open_stores; o; o = o->next_open) {
		if (o->dev == st->dev && o->ino == st->ino) {
			rc = -EBUSY;
			break;
		}
	}
	if (!rc) {
		st->next_open = open_stores;
		open_stores = st;
		st->registered = 1;
	}
	pthread_mutex_unlock(&open_mu);
	return rc;
}

static void unregister_open(rfs_store *st)
{
	pthread_mutex_lock(&open_mu);
	for (rfs_store **p = &open_stores; *p; p = &(*p)->next_open) {
		if (*p == st) {
			*p = st->next_open;
			break;
		}
	}
	pthread_mutex_unlock(&open_mu);
}

int rfs_store_default_dir(char **out)
{
	const char *xdg = getenv("XDG_CACHE_HOME");
	const char *home = getenv("HOME");
	char buf[PATH_MAX];
	int n;

	*out = NULL;
	if (xdg && xdg[0] == '/') {
		n = snprintf(buf, sizeof(buf), "%s/rasterfs", xdg);
	} else {
		if (!home || !*home) {
			struct passwd *pw = getpwuid(getuid());

			home = pw ? pw->pw_dir : "/tmp";
		}
		n = snprintf(buf, sizeof(buf), "%s/.cache/rasterfs", home);
	}
	if (n < 0 || (size_t)n >= sizeof(buf))
		return -ENAMETOOLONG;
	*out = strdup(buf);
	return *out ? 0 : -ENOMEM;
}

int rfs_store_open(const char *dir, rfs_store **out)
{
	return rfs_store_open_opts(dir, NULL, out);
}

int rfs_store_open_opts(const char *dir, const struct rfs_store_options *opt,
			rfs_store **out)
{
	static const struct rfs_store_options defaults = { 0 };
	pthread_rwlockattr_t rwa;
	rfs_store *st;
	struct stat sb;
	int rc, locked = 0, rdonly;

	if (!dir || !*dir || !out)
		return -EINVAL;
	if (!opt)
		opt = &defaults;
	rdonly = !!(opt->flags & RFS_STORE_RDONLY);
	*out = NULL;
	st = calloc(1, sizeof(*st));
	if (!st)
		return -ENOMEM;
	st->dir_fd = st->lock_fd = st->scratch_lock_fd = -1;
	pthread_mutex_init(&st->mu, NULL);
	pthread_cond_init(&st->work_cv, NULL);
	pthread_cond_init(&st->init_cv, NULL);
	/* Writer preference, so readers on busy FUSE threads cannot starve
	 * a map resize; no thread ever nests two read transactions. */
	pthread_rwlockattr_init(&rwa);
	pthread_rwlockattr_setkind_np(&rwa,
			PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
	pthread_rwlock_init(&st->txn_rw, &rwa);
	pthread_rwlockattr_destroy(&rwa);
	st->flags = opt->flags;
	st->limit = rdonly ? 0 : opt->limit;
	st->map_size = opt->map_size ? opt->map_size : STORE_MAP_SIZE;
	st->dir = strdup(dir);
	if (!st->dir) {
		rc = -ENOMEM;
		goto out;
	}
	if (opt->source_root && opt->source_root[0] == '/' &&
	    !(st->source_root = strdup(opt->source_root))) {
		rc = -ENOMEM;
		goto out;
	}
	if (!rdonly) {
		st->atimes = calloc(ATIME_SLOTS, sizeof(*st->atimes));
		if (!st->atimes) {
			rc = -ENOMEM;
			goto out;
		}
		rc = rfs_store_make_dir(dir);
		if (rc)
			goto out;
	}
	st->abs = realpath(dir, NULL);
	if (!st->abs) {
		rc = -errno;
		goto out;
	}
	st->dir_fd = open(st->abs, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (st->dir_fd < 0 || fstat(st->dir_fd, &sb) < 0) {
		rc = -errno;
		goto out;
	}
	st->dev = sb.st_dev;
	st->ino = sb.st_ino;
	/* Note 11: a store of ours that others could enter (made by an
	 * older rasterfs, 0755) becomes private. */
	if (!rdonly && sb.st_uid == geteuid() && (sb.st_mode & 077)) {
		if (fchmod(st->dir_fd, 0700) == 0)
			rfs_log(LOG_NOTICE, "store %s: made private (mode "
				"0700, was %04o)", dir,
				(unsigned)(sb.st_mode & 07777));
		else
			rfs_log(LOG_WARNING, "store %s: cannot make it private "
				"(mode %04o): %s", dir,
				(unsigned)(sb.st_mode & 07777),
				strerror(errno));
	}
	rc = register_open(st);
	if (rc) {
		rfs_log(LOG_ERR, "store %s: already open in this process", dir);
		goto out;
	}

	if (rdonly) {
		/* No repair, no committer: read what is there. */
		rc = read_format(st);
		if (!rc)
			rc = open_env(st);
		if (!rc)
			rc = open_dbs_rdonly(st);
		if (!rc) {
			st->lock_fd = openat(st->dir_fd, "store.lock",
					     O_RDONLY | O_CLOEXEC);
			if (st->lock_fd < 0)
				rc = -errno;
		}
		goto out;
	}
	st->lock_fd = openat(st->dir_fd, "store.lock",
			     O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (st->lock_fd < 0) {
		rc = -errno;
		goto out;
	}
	rc = store_flock_retry(st->lock_fd, LOCK_EX);
	if (rc)
		goto out;
	locked = 1;
	rc = check_format(st);
	if (rc)
		goto out;
	for (const char *const *d = (const char *const[]){ "objects",
			"scratch", "index", NULL }; *d; d++) {
		if (mkdirat(st->dir_fd, *d, 0700) < 0 && errno != EEXIST) {
			rc = -errno;
			goto out;
		}
	}
	rc = open_env(st);
	if (rc)
		goto out;

	rc = -pthread_create(&st->thread, NULL, committer_main, st);
	if (rc)
		goto out;
	st->thread_started = 1;
	pthread_mutex_lock(&st->mu);
	while (!st->init_done)
		pthread_cond_wait(&st->init_cv, &st->mu);
	rc = st->init_rc;
	pthread_mutex_unlock(&st->mu);
	if (rc)
		goto out;
	rc = claim_scratch(st);
out:
	if (locked)
		store_flock_retry(st->lock_fd, LOCK_UN);
	if (rc) {
		if (rc != -RFS_E_STORE_VERSION && rc != -RFS_E_STORE_IO)
			rfs_log(LOG_ERR, "store %s: cannot open: %s", dir,
				rfs_strerror(rc));
		store_free(st);
		return rc;
	}
	*out = st;
	return 0;
}

void rfs_store_close(rfs_store *st)
{
	if (!st)
		return;
	store_free(st); /* drains the queue first: every cb runs once */
}

/* ---- the read side ---------------------------------------------------- */

int rfs_store_lookup(rfs_store *st, const rfs_key *key,
		     const struct rfs_src_id *src, const char *canonical,
		     struct rfs_store_entry *out)
{
	MDB_txn *txn = NULL;
	MDB_val k, v;
	struct entry_rec e;
	struct rfs_store_entry ent;
	struct stat sb;
	char rel[64];
	int mrc, rc = 0;

	assert(st && key && src && canonical);
	if (!st->have_dbs)
		return -ENOENT;
	mrc = store_txn_begin(st, MDB_RDONLY, &txn);
	if (mrc)
		return store_mdb_fail(st, "lookup: begin", mrc);
	k.mv_size = sizeof(key->b);
	k.mv_data = (void *)key->b;
	mrc = mdb_get(txn, st->dbi_entries, &k, &v);
	if (mrc == MDB_NOTFOUND) {
		rc = -ENOENT;
	} else if (mrc) {
		rc = store_mdb_fail(st, "lookup", mrc);
	} else if (store_rec_decode(&v, &e) < 0 ||
		   !store_rec_matches(&e, src, canonical)) {
		rc = -ENOENT;
	} else {
		ent.size = e.size;
		ent.checksum = e.checksum;
		ent.created_ns = e.created_ns;
	}
	store_txn_abort(st, txn);
	if (rc)
		return rc;

	store_object_rel(key, rel, sizeof(rel));
	if (fstatat(st->dir_fd, rel, &sb, 0) < 0)
		return errno == ENOENT ? -ENOENT : -errno;
	if ((uint64_t)sb.st_size != ent.size) {
		rfs_log(LOG_WARNING, "store %s: %s has %lld bytes, its entry "
			"says %llu; treating it as missing", st->dir, rel,
			(long long)sb.st_size, (unsigned long long)ent.size);
		return -ENOENT;
	}
	if (out)
		*out = ent;
	return 0;
}

int rfs_store_open_object(rfs_store *st, const rfs_key *key)
{
	char rel[64];
	int fd;

	assert(st && key);
	store_object_rel(key, rel, sizeof(rel));
	fd = openat(st->dir_fd, rel, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	store_atime_touch(st, key);
	return fd;
}

void rfs_store_object_path(rfs_store *st, const rfs_key *key, char *buf,
			   size_t len)
{
	char rel[64];

	assert(st && key && buf);
	store_object_rel(key, rel, sizeof(rel));
	snprintf(buf, len, "%s/%s", st->abs, rel);
}

int rfs_store_stats(rfs_store *st, uint64_t *objects, uint64_t *bytes)
{
	MDB_txn *txn;
	uint64_t o, b;
	int mrc;

	assert(st);
	if (!st->have_dbs) {
		o = b = 0;
		goto out;
	}
	mrc = store_txn_begin(st, MDB_RDONLY, &txn);
	if (mrc)
		return store_mdb_fail(st, "stats: begin", mrc);
	mrc = store_counters_get(st, txn, &o, &b);
	store_txn_abort(st, txn);
	if (mrc)
		return store_mdb_fail(st, "stats", mrc);
out:
	if (objects)
		*objects = o;
	if (bytes)
		*bytes = b;
	return 0;
}

const char *rfs_store_dir(const rfs_store *st)
{
	return st->dir;
}

/* ---- scratch and commit ----------------------------------------------- */

int rfs_store_scratch_dir(rfs_store *st, unsigned slot, char *buf,
			  size_t len)
{
	int n;

	assert(st && buf);
	n = snprintf(buf, len, "%s/w%u", st->scratch_root, slot);
	if (n < 0 || (size_t)n >= len)
		return -ENAMETOOLONG;
	if (mkdir(buf, 0700) == 0)
		return 0;
	if (errno != EEXIST)
		return -errno;
	return rfs_store_scratch_clean(buf);
}

int rfs_store_scratch_clean(const char *dir)
{
	int fd, rc;

	fd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	rc = store_empty_dir(fd, NULL);
	close(fd);
	return rc;
}

int rfs_store_remove_tree(const char *dir)
{
	return store_remove_tree_at(AT_FDCWD, dir);
}

/* The file must lie under this process's scratch dir, with no ".."
 * component: the committer renames it into the store. */
static int scratch_path_ok(const rfs_store *st, const char *path)
{
	size_t rl = strlen(st->scratch_root);
	const char *p;

	if (strncmp(path, st->scratch_root, rl) || path[rl] != '/' ||
	    !path[rl + 1])
		return 0;
	p = path + rl + 1;
	for (const char *c = p; (c = strstr(c, "..")); c++) {
		if ((c == p || c[-1] == '/') && (c[2] == '/' || c[2] == '\0'))
			return 0;
	}
	return 1;
}

int store_queue_push(rfs_store *st, struct commit_req *r, int need_thread)
{
	pthread_mutex_lock(&st->mu);
	if (st->stopping || (need_thread && !st->thread_started)) {
		pthread_mutex_unlock(&st->mu);
		return -RFS_E_SHUTDOWN;
	}
	if (st->tail)
		st->tail->next = r;
	else
		st->head = r;
	st->tail = r;
	pthread_cond_signal(&st->work_cv);
	pthread_mutex_unlock(&st->mu);
	return 0;
}

int rfs_store_commit(rfs_store *st, const rfs_key *key,
		     const char *scratch_file,
		     const struct rfs_store_meta *meta,
		     rfs_store_commit_cb cb, void *arg)
{
	struct commit_req *r;
	const char *source;
	size_t fl, cl, sl, al;

	if (!st || !key || !scratch_file || !meta || !meta->canonical || !cb)
		return -EINVAL;
	if (st->flags & RFS_STORE_RDONLY)
		return -EROFS;
	source = meta->source ? meta->source : "";
	fl = strlen(scratch_file);
	cl = strlen(meta->canonical);
	sl = strlen(source);
	/* root/source when both are known and source is relative */
	al = st->source_root && sl && source[0] != '/' ?
	     strlen(st->source_root) + 1 + sl : 0;
	if (cl > STORE_MAX_STRING || sl > STORE_MAX_STRING || al > PATH_MAX)
		return -ENAMETOOLONG;
	if (!scratch_path_ok(st, scratch_file)) {
		rfs_log(LOG_ERR, "store %s: refusing to commit %s: not in "
			"this process's scratch dir %s", st->dir,
			scratch_file, st->scratch_root);
		return -EINVAL;
	}
	r = malloc(sizeof(*r) + fl + cl + sl + al + 4);
	if (!r)
		return -ENOMEM;
	r->next = NULL;
	r->kind = REQ_COMMIT;
	r->sync = NULL;
	r->key = *key;
	r->src = meta->src;
	r->size = meta->size;
	r->checksum = meta->checksum;
	r->cb = cb;
	r->arg = arg;
	r->scratch_file = memcpy(r->buf, scratch_file, fl + 1);
	r->canonical = memcpy(r->buf + fl + 1, meta->canonical, cl + 1);
	r->source = memcpy(r->buf + fl + cl + 2, source, sl + 1);
	r->source_abs = r->buf + fl + cl + sl + 3;
	if (al)
		sprintf(r->buf + fl + cl + sl + 3, "%s/%s", st->source_root,
			source);
	else
		r->buf[fl + cl + sl + 3] = '\0';

	int rc = store_queue_push(st, r, 0);
	if (rc < 0)
		free(r);
	return rc;
}

/* Hand a maintenance request to the committer and wait for it. */
int store_run_sync(rfs_store *st, enum req_kind kind, struct sync_req *s)
{
	struct commit_req *r;

	if (st->flags & RFS_STORE_RDONLY)
		return -EROFS;
	r = calloc(1, sizeof(*r));
	if (!r)
		return -ENOMEM;
	r->kind = kind;
	r->sync = s;
	pthread_mutex_init(&s->mu, NULL);
	pthread_cond_init(&s->cv, NULL);
	int rc = store_queue_push(st, r, 1);
	if (rc < 0) {
		free(r);
		return rc;
	}
	pthread_mutex_lock(&s->mu);
	while (!s->done)
		pthread_cond_wait(&s->cv, &s->mu);
	pthread_mutex_unlock(&s->mu);
	pthread_cond_destroy(&s->cv);
	pthread_mutex_destroy(&s->mu);
	return s->rc;
}
