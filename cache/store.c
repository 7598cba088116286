/* store.c - the cache store: LMDB index + immutable object files.
 *
 * Design notes (the on-disk format itself is in cache/README.md).
 *
 *  1. One writer.  Every LMDB write transaction of a process is opened by
 *     its committer thread (committer_main): startup repair runs there
 *     before the thread takes any work, and rfs_store_open() waits for it.
 *     Lookups, open_object and stats use read transactions only, so they
 *     never wait for a commit.  Several processes (mounts) may share one
 *     store; LMDB serialises their write transactions.
 *
 *  2. Commit order.  An object reaches the store in this order:
 *       a. write     the worker writes scratch/<pid>/w<slot>/<file>
 *       b. fsync     the worker fsyncs it (the store never rewrites it)
 *       b'. verify   verify_scratch(): the file has the size and XXH3-64
 *                    the worker reported (a write that fell short, on a
 *                    full disk say, fails the job instead of entering the
 *                    store); it is made 0600 (note 11)
 *       c. rename    commit_one(): into objects/<xx>/<hex>.tif
 *       d. fsync dir commit_one(): the shard directory (and objects/ when
 *                    the shard was just made)
 *       e. LMDB txn  commit_one(): entry + counters, one write transaction
 *     So a durable index entry always names a durable file of the right
 *     size.  The write transaction is begun before (c) and its lookup of
 *     the key decides "already committed", so two mounts committing one
 *     key cannot both rename; nothing of it is durable before (e).
 *
 *  3. What a crash leaves, and who repairs it (repair(), at the next open):
 *       during a/b  a partial file in a scratch dir of a dead process:
 *                   repair_scratch() removes the whole scratch/<pid> dir.
 *       after c/d   an object file that no entry names: repair_objects()
 *                   removes it.  The job is simply done again on demand.
 *       during e    LMDB either committed or did not (its own crash
 *                   safety): the state is that of "after d" or "done".
 *       later       an object deleted or truncated behind our back: the
 *                   entry is dangling; repair_index() drops it (and then
 *                   repair_objects() the truncated file).  Until then
 *                   rfs_store_lookup() stats the file and reports a miss.
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
 *  5. Counters.  The "counters" record of the meta DB holds the number of
 *     entries and the sum of their sizes; each commit updates it in its own
 *     transaction and repair recomputes it, so rfs_store_stats() is one
 *     read transaction and one get.
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
 *  8. Size limit and access times.  rfs_store_open_object() notes the
 *     time in an in-memory table (atime_touch); the committer writes the
 *     table in one write transaction when ATIME_BATCH keys are pending,
 *     ATIME_PERIOD_NS after the first one, before a commit (inside its
 *     transaction: index_put) and at close.  So a read costs no LMDB write.
 *     When a commit would take the indexed bytes over the limit, index_put
 *     drops the least recently opened entries (evict: one scan and a sort)
 *     down to 90% of the limit less the new object, in the commit's own
 *     transaction, and the files go after it committed (unlink_gone).  A
 *     reader with the object open keeps reading it: an unlinked file lives
 *     until its last fd closes (POSIX), so "never removed from under a
 *     reader" holds without counting opens.  The counters (the limit's
 *     measure) drop at once; the blocks come back at the last close.  A
 *     crash between the commit and the unlink leaves files no entry names:
 *     repair_objects() removes them.
 *
 *  9. Map growth.  The map starts at 1 GiB (sparse: LMDB does not extend
 *     the file) and doubles (grow_map) when over 3/4 of it was ever used,
 *     or when a commit meets MDB_MAP_FULL (then the transaction is redone).
 *     mdb_env_set_mapsize() needs no transaction of this process active, so
 *     every transaction holds txn_rw shared and a resize holds it
 *     exclusive.  A map grown by another process shows up as
 *     MDB_MAP_RESIZED at txn begin: adopt_map() takes the new size.
 *
 * 10. Changed sources.  Entries record root/source, the absolute source
 *     path (rfs_store_options.source_root).  The "bysrc" DB maps a hash of
 *     (absolute path, canonical chain) to the key last committed for it, so
 *     the commit of a changed source drops the entry of its old identity in
 *     the same transaction.  rfs_store_gc() stats every recorded path and
 *     drops entries whose source has another identity now, or was removed
 *     from a directory that still exists.
 *
 * 11. Privacy.  Outputs carry their source's permissions only through the
 *     mount (the FUSE layer checks them), so the store itself is private to
 *     its owner: directories are made 0700 and files 0600 (the daemon also
 *     runs with umask 077), an object is made 0600 before it is renamed in
 *     whatever mode the worker gave it, and an existing store directory of
 *     ours that others could enter is tightened to 0700 at open.
 *
 *  The life of one key; each arrow names the function that makes it:
 *
 *                  commit_one()           commit_one()
 *      SCRATCH -------------------> PLACED --------------> INDEXED
 *         |      rename, fsync dir   |  ^   LMDB commit       |
 *         |                          |  |                     |
 *         |                          |  +---------------------+
 *         | repair_scratch()         |      repair_index()
 *         | commit_one()             | repair_objects()
 *         |                          | commit_one()
 *         +---------> ABSENT <-------+
 *
 *     ABSENT -> SCRATCH     the worker writes and fsyncs (no store code).
 *     SCRATCH -> ABSENT     repair_scratch(): its owner died;
 *                           commit_one(): key already INDEXED, or an error.
 *     PLACED -> ABSENT      commit_one(): the transaction failed;
 *                           repair_objects(): a crash came before (e).
 *     INDEXED -> PLACED     repair_index(): the file was lost or truncated
 *                           behind our back; repair_objects() then removes
 *                           what is left.
 *     INDEXED is otherwise final: objects are immutable.
 *     INDEXED -> PLACED     index_put(), evict_now(), gc_run(), clear_run():
 *                           evicted, or its source changed (notes 8, 10);
 *                           unlink_gone() then removes the file.
 */
#include <assert.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>

#include <lmdb.h>
#define XXH_STATIC_LINKING_ONLY /* XXH3_state_t on the stack */
#include <xxhash.h>

#include "rasterfs/err.h"
#include "rasterfs/log.h"
#include "rasterfs/store.h"

#define STORE_MAP_SIZE ((size_t)1 << 30)
#define STORE_MAX_DBS 3
/* Access times (note 8): table slots, batch size, longest wait. */
#define ATIME_SLOTS 1024
#define ATIME_BATCH 512
#define ATIME_PERIOD_NS (3 * 1000000000LL)
#define STORE_MAX_READERS 256
#define STORE_MAX_STRING (1u << 20) /* canonical chain, source path */

/* Index record (value of the "entries" DB), all integers little-endian:
 *   0 u16 version  2 u16 zero  4 u32 canonical length  8 u32 source length
 *  12 u32 absolute source length (0: unknown)  16 u64 size 24 u64 checksum 32 i64 created_ns
 *  40 i64 atime_ns 48 u64 dev 56 u64 ino 64 u64 src size 72 i64 mtime_ns
 *  80 canonical bytes, then source bytes, then absolute source bytes
 *  (no NULs).  Records written before the absolute path existed have 0 at
 *  offset 12, so they read the same. */
#define REC_VERSION 1
#define REC_HEAD 80

/* Counters record ("counters" in the "meta" DB):
 *   0 u32 version  4 u32 zero  8 u64 objects  16 u64 bytes */
#define CNT_VERSION 1
#define CNT_SIZE 24

static const char cnt_key[] = "counters";
static const char limit_key[] = "limit";

struct atime_slot {
	rfs_key key;
	int64_t t;	/* 0: free */
};

/* Keys whose object files go once their transaction has committed. */
struct keylist {
	rfs_key *k;
	size_t n, cap;
};

static int keylist_add(struct keylist *l, const rfs_key *key)
{
	if (l->n == l->cap) {
		size_t ncap = l->cap ? 2 * l->cap : 16;
		rfs_key *nk = realloc(l->k, ncap * sizeof(*nk));

		if (!nk)
			return ENOMEM;
		l->k = nk;
		l->cap = ncap;
	}
	l->k[l->n++] = *key;
	return 0;
}

enum req_kind { REQ_COMMIT, REQ_GC, REQ_CLEAR, REQ_FLUSH };

/* A maintenance request waited for by its caller. */
struct sync_req {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int done, rc;
	uint64_t limit;                   /* REQ_GC */
	struct rfs_store_gc_report *gc;   /* REQ_GC */
	uint64_t removed;                 /* REQ_CLEAR */
	long pid;                         /* REQ_CLEAR: a user of the store */
};

struct commit_req {
	struct commit_req *next;
	enum req_kind kind;
	struct sync_req *sync;	/* kinds other than REQ_COMMIT */
	rfs_key key;
	struct rfs_src_id src;
	uint64_t size;		/* as the worker reported them */
	uint64_t checksum;
	rfs_store_commit_cb cb;
	void *arg;
	const char *scratch_file; /* these four point into buf */
	const char *canonical;
	const char *source;
	const char *source_abs;   /* "" when unknown */
	char buf[];
};

struct repair_report {
	unsigned scratch_dirs;
	unsigned orphans;
	unsigned tmp_files;
	unsigned dangling;
	uint64_t objects;
	uint64_t bytes;
};

struct rfs_store {
	char *dir;		/* as given, for rfs_store_dir() and messages */
	char *abs;		/* absolute: paths handed out survive chdir */
	int dir_fd;
	int lock_fd;		/* store.lock */
	int scratch_lock_fd;	/* scratch/<name>/lock, held LOCK_EX */
	char *scratch_root;	/* <dir>/scratch/<name> */
	dev_t dev;
	ino_t ino;
	struct rfs_store *next_open;
	int registered;

	unsigned flags;		/* RFS_STORE_* */
	uint64_t limit;		/* 0: none */
	size_t map_size;
	char *source_root;	/* NULL: unknown */

	MDB_env *env;
	MDB_dbi dbi_entries;
	MDB_dbi dbi_meta;
	MDB_dbi dbi_bysrc;
	int have_dbs;		/* the named DBs exist (read-only opens) */
	/* Every transaction of this process holds it shared; resizing the
	 * map holds it exclusive (note 9). */
	pthread_rwlock_t txn_rw;

	/* Access times waiting for the committer (note 8), under mu. */
	struct atime_slot *atimes;
	unsigned natimes;
	int64_t atime_first;	/* when the oldest pending one was taken */

	pthread_t thread;
	int thread_started;
	pthread_mutex_t mu;
	pthread_cond_t work_cv;	/* committer: queue not empty or stopping */
	pthread_cond_t init_cv;	/* open: repair finished */
	struct commit_req *head, *tail;
	int stopping;
	int init_done;
	int init_rc;
	struct repair_report rep;
};

/* Stores open in this process, by (dev, ino) of their directory. */
static pthread_mutex_t open_mu = PTHREAD_MUTEX_INITIALIZER;
static struct rfs_store *open_stores;

/* ---- small helpers ---------------------------------------------------- */

static void put_le16(unsigned char *p, uint16_t v)
{
	p[0] = (unsigned char)v;
	p[1] = (unsigned char)(v >> 8);
}

static void put_le32(unsigned char *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (unsigned char)(v >> (8 * i));
}

static void put_le64(unsigned char *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (unsigned char)(v >> (8 * i));
}

static uint16_t get_le16(const unsigned char *p)
{
	return (uint16_t)(p[0] | p[1] << 8);
}

static uint32_t get_le32(const unsigned char *p)
{
	uint32_t v = 0;

	for (int i = 3; i >= 0; i--)
		v = v << 8 | p[i];
	return v;
}

static uint64_t get_le64(const unsigned char *p)
{
	uint64_t v = 0;

	for (int i = 7; i >= 0; i--)
		v = v << 8 | p[i];
	return v;
}

static int64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

/* "objects/ab/<32 hex>.tif", relative to the store directory. */
static void object_rel(const rfs_key *key, char *buf, size_t len)
{
	char hex[RFS_KEY_HEX];

	rfs_key_hex(key, hex);
	snprintf(buf, len, "objects/%.2s/%s.tif", hex, hex);
}

/* An LMDB failure: log it, and say STORE_IO unless the disk is full. */
static int mdb_fail(const rfs_store *st, const char *what, int mrc)
{
	rfs_log(LOG_ERR, "store %s: %s: %s", st->dir, what, mdb_strerror(mrc));
	if (mrc == ENOSPC || mrc == EDQUOT)
		return -RFS_E_NOSPACE;
	return -RFS_E_STORE_IO;
}

/* ---- transactions (note 9) -------------------------------------------- */

/* Another process grew the map: adopt its size (no txn may be active). */
static void adopt_map(rfs_store *st)
{
	pthread_rwlock_wrlock(&st->txn_rw);
	mdb_env_set_mapsize(st->env, 0);
	pthread_rwlock_unlock(&st->txn_rw);
}

/* Double the map.  Only the committer (the one writer) calls it. */
static int grow_map(rfs_store *st)
{
	MDB_envinfo info;
	int mrc;

	pthread_rwlock_wrlock(&st->txn_rw);
	mdb_env_info(st->env, &info);
	mrc = mdb_env_set_mapsize(st->env, info.me_mapsize * 2);
	pthread_rwlock_unlock(&st->txn_rw);
	if (mrc)
		rfs_log(LOG_ERR, "store %s: cannot grow the index map to %zu "
			"bytes: %s", st->dir, info.me_mapsize * 2,
			mdb_strerror(mrc));
	else
		rfs_log(LOG_INFO, "store %s: index map grown to %zu bytes",
			st->dir, info.me_mapsize * 2);
	return mrc;
}

/* Grow before a write when over 3/4 of the map has ever been used, so a
 * commit rarely meets MDB_MAP_FULL (which it also handles). */
static void maybe_grow(rfs_store *st)
{
	MDB_envinfo info;
	MDB_stat ms;

	pthread_rwlock_rdlock(&st->txn_rw);
	mdb_env_info(st->env, &info);
	mdb_env_stat(st->env, &ms);
	pthread_rwlock_unlock(&st->txn_rw);
	if ((info.me_last_pgno + 1) * (size_t)ms.ms_psize >
	    info.me_mapsize / 4 * 3)
		grow_map(st);
}

static int txn_begin(rfs_store *st, unsigned flags, MDB_txn **txn)
{
	int mrc;

	for (;;) {
		pthread_rwlock_rdlock(&st->txn_rw);
		mrc = mdb_txn_begin(st->env, NULL, flags, txn);
		if (!mrc)
			return 0;
		pthread_rwlock_unlock(&st->txn_rw);
		if (mrc != MDB_MAP_RESIZED)
			return mrc;
		adopt_map(st);
	}
}

static void txn_abort(rfs_store *st, MDB_txn *txn)
{
	mdb_txn_abort(txn);
	pthread_rwlock_unlock(&st->txn_rw);
}

static int txn_commit(rfs_store *st, MDB_txn *txn)
{
	int mrc = mdb_txn_commit(txn);

	pthread_rwlock_unlock(&st->txn_rw);
	return mrc;
}

static int flock_retry(int fd, int op)
{
	while (flock(fd, op) < 0) {
		if (errno != EINTR)
			return -errno;
	}
	return 0;
}

static int fsync_dir_at(int dfd, const char *rel)
{
	int fd = openat(dfd, rel, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	int rc = 0;

	if (fd < 0)
		return -errno;
	if (fsync(fd) < 0)
		rc = -errno;
	close(fd);
	return rc;
}

/* mkdir -p; private directories (note 11). */
static int make_dirs(const char *path)
{
	char *p, *s;
	int rc = 0;

	s = strdup(path);
	if (!s)
		return -ENOMEM;
	for (p = s + 1;; p++) {
		if (*p != '/' && *p != '\0')
			continue;
		char c = *p;

		*p = '\0';
		if (mkdir(s, 0700) < 0 && errno != EEXIST) {
			rc = -errno;
			break;
		}
		*p = c;
		if (c == '\0')
			break;
	}
	free(s);
	return rc;
}

/* Remove every entry of the directory dfd except `keep` (may be NULL),
 * recursively, never following symlinks.  dfd stays open and owned by the
 * caller.  Returns 0 or the first -errno met (it goes on after an error). */
static int empty_dir_fd(int dfd, const char *keep)
{
	struct dirent *de;
	DIR *d;
	int fd, rc = 0, removed;

	fd = dup(dfd);
	if (fd < 0)
		return -errno;
	d = fdopendir(fd);
	if (!d) {
		rc = -errno;
		close(fd);
		return rc;
	}
	/* readdir need not return entries in a directory that changes under
	 * it, so sweep until a pass removes nothing. */
	do {
		removed = 0;
		rewinddir(d);
		while ((de = readdir(d))) {
			const char *n = de->d_name;

			if (!strcmp(n, ".") || !strcmp(n, "..") ||
			    (keep && !strcmp(n, keep)))
				continue;
			if (unlinkat(fd, n, 0) == 0) {
				removed++;
				continue;
			}
			if (errno == ENOENT)
				continue;
			if (errno != EISDIR) {
				if (!rc)
					rc = -errno;
				continue;
			}
			int sub = openat(fd, n, O_RDONLY | O_DIRECTORY |
					 O_NOFOLLOW | O_CLOEXEC);
			if (sub < 0) {
				if (!rc && errno != ENOENT)
					rc = -errno;
				continue;
			}
			int r = empty_dir_fd(sub, NULL);

			close(sub);
			if (!rc)
				rc = r;
			if (unlinkat(fd, n, AT_REMOVEDIR) == 0)
				removed++;
			else if (!rc && errno != ENOENT)
				rc = -errno;
		}
	} while (removed && !rc);
	closedir(d);
	return rc;
}

/* Remove the directory rel (relative to dfd) and all it holds. */
static int remove_tree_at(int dfd, const char *rel)
{
	int fd, rc;

	fd = openat(dfd, rel, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOENT ? 0 : -errno;
	rc = empty_dir_fd(fd, NULL);
	close(fd);
	if (unlinkat(dfd, rel, AT_REMOVEDIR) < 0 && errno != ENOENT && !rc)
		rc = -errno;
	return rc;
}

/* ---- records ---------------------------------------------------------- */

struct entry_rec {
	uint64_t size;
	uint64_t checksum;
	int64_t created_ns;
	int64_t atime_ns;
	struct rfs_src_id src;
	const char *canonical; /* not NUL-terminated; points into the value */
	uint32_t canonical_len;
	const char *source;
	uint32_t source_len;
	const char *source_abs;
	uint32_t source_abs_len;
};

static int rec_decode(const MDB_val *v, struct entry_rec *e)
{
	const unsigned char *p = v->mv_data;

	if (v->mv_size < REC_HEAD || get_le16(p) != REC_VERSION)
		return -1;
	e->canonical_len = get_le32(p + 4);
	e->source_len = get_le32(p + 8);
	e->source_abs_len = get_le32(p + 12);
	if ((uint64_t)REC_HEAD + e->canonical_len + e->source_len +
	    e->source_abs_len != v->mv_size)
		return -1;
	e->size = get_le64(p + 16);
	e->checksum = get_le64(p + 24);
	e->created_ns = (int64_t)get_le64(p + 32);
	e->atime_ns = (int64_t)get_le64(p + 40);
	e->src.dev = get_le64(p + 48);
	e->src.ino = get_le64(p + 56);
	e->src.size = get_le64(p + 64);
	e->src.mtime_ns = (int64_t)get_le64(p + 72);
	e->canonical = (const char *)p + REC_HEAD;
	e->source = e->canonical + e->canonical_len;
	e->source_abs = e->source + e->source_len;
	return 0;
}

/* The full key material, so that a hash collision reads as a miss. */
static int rec_matches(const struct entry_rec *e,
		       const struct rfs_src_id *src, const char *canonical)
{
	size_t clen = strlen(canonical);

	return e->src.dev == src->dev && e->src.ino == src->ino &&
	       e->src.size == src->size && e->src.mtime_ns == src->mtime_ns &&
	       e->canonical_len == clen &&
	       memcmp(e->canonical, canonical, clen) == 0;
}

/* Encode into a malloc'ed buffer of *len bytes, or NULL. */
static unsigned char *rec_encode(const struct commit_req *r, uint64_t size,
				 int64_t created_ns, size_t *len)
{
	size_t clen = strlen(r->canonical), slen = strlen(r->source);
	size_t alen = strlen(r->source_abs);
	unsigned char *p;

	*len = REC_HEAD + clen + slen + alen;
	p = calloc(1, *len);
	if (!p)
		return NULL;
	put_le16(p, REC_VERSION);
	put_le32(p + 4, (uint32_t)clen);
	put_le32(p + 8, (uint32_t)slen);
	put_le32(p + 12, (uint32_t)alen);
	put_le64(p + 16, size);
	put_le64(p + 24, r->checksum);
	put_le64(p + 32, (uint64_t)created_ns);
	put_le64(p + 40, (uint64_t)created_ns);
	put_le64(p + 48, r->src.dev);
	put_le64(p + 56, r->src.ino);
	put_le64(p + 64, r->src.size);
	put_le64(p + 72, (uint64_t)r->src.mtime_ns);
	memcpy(p + REC_HEAD, r->canonical, clen);
	memcpy(p + REC_HEAD + clen, r->source, slen);
	memcpy(p + REC_HEAD + clen + slen, r->source_abs, alen);
	return p;
}

/* Read the counters within txn; a missing record counts as empty. */
static int counters_get(rfs_store *st, MDB_txn *txn, uint64_t *objects,
			uint64_t *bytes)
{
	MDB_val k = { sizeof(cnt_key) - 1, (void *)cnt_key }, v;
	int mrc = mdb_get(txn, st->dbi_meta, &k, &v);

	*objects = *bytes = 0;
	if (mrc == MDB_NOTFOUND)
		return 0;
	if (mrc)
		return mrc;
	if (v.mv_size != CNT_SIZE ||
	    get_le32(v.mv_data) != CNT_VERSION)
		return MDB_CORRUPTED;
	*objects = get_le64((const unsigned char *)v.mv_data + 8);
	*bytes = get_le64((const unsigned char *)v.mv_data + 16);
	return 0;
}

static int counters_put(rfs_store *st, MDB_txn *txn, uint64_t objects,
			uint64_t bytes)
{
	unsigned char buf[CNT_SIZE] = { 0 };
	MDB_val k = { sizeof(cnt_key) - 1, (void *)cnt_key };
	MDB_val v = { sizeof(buf), buf };

	put_le32(buf, CNT_VERSION);
	put_le64(buf + 8, objects);
	put_le64(buf + 16, bytes);
	return mdb_put(txn, st->dbi_meta, &k, &v, 0);
}

static int limit_put(rfs_store *st, MDB_txn *txn, uint64_t limit)
{
	unsigned char buf[8];
	MDB_val k = { sizeof(limit_key) - 1, (void *)limit_key };
	MDB_val v = { sizeof(buf), buf };

	put_le64(buf, limit);
	return mdb_put(txn, st->dbi_meta, &k, &v, 0);
}

/* ---- the source index, eviction, access times (committer thread) ------ */

/* Key of the "bysrc" DB: XXH3-128 of absolute source path, NUL, canonical
 * chain.  Its value names the key last committed for that pair, so the
 * commit of a changed source finds the entry of the old identity.  A stale
 * or colliding value is harmless: the entry it names is checked first. */
static void bysrc_key(const char *abs, size_t alen, const char *canon,
		      size_t clen, unsigned char out[16])
{
	XXH3_state_t state;
	XXH128_canonical_t d;
	static const unsigned char nul;

	XXH3_INITSTATE(&state);
	XXH3_128bits_reset(&state);
	XXH3_128bits_update(&state, abs, alen);
	XXH3_128bits_update(&state, &nul, 1);
	XXH3_128bits_update(&state, canon, clen);
	XXH128_canonicalFromHash(&d, XXH3_128bits_digest(&state));
	memcpy(out, d.digest, 16);
}

/* Delete key's entry (and its bysrc pointer) within txn, take it off the
 * counters and list its file for unlinking after the commit.  A missing
 * entry is not an error. */
static int entry_drop(rfs_store *st, MDB_txn *txn, const rfs_key *key,
		      uint64_t *objects, uint64_t *bytes, struct keylist *gone)
{
	MDB_val k = { sizeof(key->b), (void *)key->b }, v;
	struct entry_rec e;
	int mrc;

	mrc = mdb_get(txn, st->dbi_entries, &k, &v);
	if (mrc)
		return mrc == MDB_NOTFOUND ? 0 : mrc;
	if (rec_decode(&v, &e) == 0) {
		if (e.source_abs_len) {
			unsigned char h[16];
			MDB_val hk = { 16, h }, hv;

			bysrc_key(e.source_abs, e.source_abs_len, e.canonical,
				  e.canonical_len, h);
			if (mdb_get(txn, st->dbi_bysrc, &hk, &hv) == 0 &&
			    hv.mv_size == 16 && !memcmp(hv.mv_data, key->b, 16)) {
				mrc = mdb_del(txn, st->dbi_bysrc, &hk, NULL);
				if (mrc)
					return mrc;
			}
		}
		*objects -= *objects ? 1 : 0;
		*bytes -= *bytes >= e.size ? e.size : *bytes;
	}
	mrc = mdb_del(txn, st->dbi_entries, &k, NULL);
	if (mrc)
		return mrc;
	return keylist_add(gone, key);
}

/* After the transaction that dropped them committed: the files go.  An fd
 * open on one keeps its bytes readable until it is closed (note 8). */
static void unlink_gone(rfs_store *st, const struct keylist *gone)
{
	char rel[64];

	for (size_t i = 0; i < gone->n; i++) {
		object_rel(&gone->k[i], rel, sizeof(rel));
		if (unlinkat(st->dir_fd, rel, 0) < 0 && errno != ENOENT)
			rfs_log(LOG_WARNING, "store %s: cannot remove %s: %s",
				st->dir, rel, strerror(errno));
	}
}

struct lru_item {
	int64_t atime;
	uint64_t size;
	rfs_key key;
};

static int lru_cmp(const void *a, const void *b)
{
	const struct lru_item *x = a, *y = b;

	if (x->atime != y->atime)
		return x->atime < y->atime ? -1 : 1;
	return memcmp(x->key.b, y->key.b, sizeof(x->key.b));
}

/* Drop least recently used entries until *bytes <= target.  One scan of
 * the entries and a sort: eviction runs only when a commit crosses the
 * limit, and then frees 10% of it, so the scan is paid rarely. */
static int evict(rfs_store *st, MDB_txn *txn, uint64_t target,
		 uint64_t *objects, uint64_t *bytes, struct keylist *gone,
		 uint64_t *nevicted, uint64_t *nbytes)
{
	MDB_cursor *cur = NULL;
	MDB_val k, v;
	struct lru_item *items = NULL;
	size_t n = 0, cap = 0;
	int mrc;

	if (*bytes <= target)
		return 0;
	mrc = mdb_cursor_open(txn, st->dbi_entries, &cur);
	if (mrc)
		return mrc;
	for (mrc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); mrc == 0;
	     mrc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
		struct entry_rec e;

		if (k.mv_size != sizeof(items->key.b) || rec_decode(&v, &e))
			continue;
		if (n == cap) {
			size_t ncap = cap ? 2 * cap : 256;
			struct lru_item *ni = realloc(items,
						      ncap * sizeof(*ni));

			if (!ni) {
				mrc = ENOMEM;
				goto out;
			}
			items = ni;
			cap = ncap;
		}
		items[n].atime = e.atime_ns;
		items[n].size = e.size;
		memcpy(items[n].key.b, k.mv_data, sizeof(items[n].key.b));
		n++;
	}
	if (mrc != MDB_NOTFOUND)
		goto out;
	mrc = 0;
	mdb_cursor_close(cur);
	cur = NULL;
	qsort(items, n, sizeof(*items), lru_cmp);
	for (size_t i = 0; i < n && *bytes > target; i++) {
		mrc = entry_drop(st, txn, &items[i].key, objects, bytes, gone);
		if (mrc)
			break;
		if (nevicted)
			(*nevicted)++;
		if (nbytes)
			*nbytes += items[i].size;
	}
out:
	if (cur)
		mdb_cursor_close(cur);
	free(items);
	return mrc;
}

/* Where eviction stops: 90% of the limit, less room for the new object. */
static uint64_t evict_target(uint64_t limit, uint64_t incoming)
{
	uint64_t low = limit - limit / 10;

	return low > incoming ? low - incoming : 0;
}

/* Take the pending access times (the caller writes them). */
static struct atime_slot *atimes_take(rfs_store *st, unsigned *n)
{
	struct atime_slot *out = NULL;
	unsigned j = 0;

	pthread_mutex_lock(&st->mu);
	if (st->natimes && (out = malloc(st->natimes * sizeof(*out)))) {
		for (unsigned i = 0; i < ATIME_SLOTS; i++) {
			if (st->atimes[i].t) {
				out[j++] = st->atimes[i];
				st->atimes[i].t = 0;
			}
		}
		st->natimes = 0;
	}
	pthread_mutex_unlock(&st->mu);
	*n = j;
	return out;
}

/* Write access times into their entries (only ever forward). */
static int atimes_apply(rfs_store *st, MDB_txn *txn,
			const struct atime_slot *a, unsigned n)
{
	for (unsigned i = 0; i < n; i++) {
		MDB_val k = { sizeof(a[i].key.b), (void *)a[i].key.b }, v;
		struct entry_rec e;
		unsigned char *copy;
		int mrc;

		if (mdb_get(txn, st->dbi_entries, &k, &v) ||
		    rec_decode(&v, &e) || e.atime_ns >= a[i].t)
			continue;
		copy = malloc(v.mv_size);
		if (!copy)
			return ENOMEM;
		memcpy(copy, v.mv_data, v.mv_size);
		put_le64(copy + 40, (uint64_t)a[i].t);
		v.mv_data = copy;
		mrc = mdb_put(txn, st->dbi_entries, &k, &v, 0);
		free(copy);
		if (mrc)
			return mrc;
	}
	return 0;
}

/* Record that key was opened now; written later by the committer. */
static void atime_touch(rfs_store *st, const rfs_key *key)
{
	uint64_t h = 0;
	int64_t t = now_ns();

	if (!st->atimes)
		return;
	memcpy(&h, key->b, sizeof(h));
	pthread_mutex_lock(&st->mu);
	for (unsigned i = 0, j = (unsigned)(h % ATIME_SLOTS); i < ATIME_SLOTS;
	     i++, j = (j + 1) % ATIME_SLOTS) {
		struct atime_slot *sl = &st->atimes[j];

		if (sl->t && memcmp(sl->key.b, key->b, sizeof(key->b)))
			continue;
		if (!sl->t) {
			sl->key = *key;
			if (!st->natimes++)
				st->atime_first = t;
			if (st->natimes >= ATIME_BATCH)
				pthread_cond_signal(&st->work_cv);
		}
		sl->t = t;
		break;
	}
	/* A full table drops the update: an access time is only a hint. */
	pthread_mutex_unlock(&st->mu);
}

/* Write the pending access times in one transaction of their own. */
static int atimes_flush(rfs_store *st)
{
	unsigned n;
	struct atime_slot *a = atimes_take(st, &n);
	MDB_txn *txn;
	int mrc;

	if (!a)
		return 0;
	maybe_grow(st);
	mrc = txn_begin(st, 0, &txn);
	if (!mrc) {
		mrc = atimes_apply(st, txn, a, n);
		if (mrc)
			txn_abort(st, txn);
		else
			mrc = txn_commit(st, txn);
	}
	if (mrc)
		rfs_log(LOG_WARNING, "store %s: access times not recorded: %s",
			st->dir, mdb_strerror(mrc));
	free(a);
	return mrc;
}

/* ---- startup repair (committer thread, store.lock held LOCK_EX) ------- */

/* Remove scratch/<name> dirs whose lock nobody holds: their owner is dead
 * (or never got as far as locking, which happens under store.lock). */
static int repair_scratch(rfs_store *st, struct repair_report *rep)
{
	struct dirent *de;
	DIR *d;
	int fd, rc;

	fd = openat(st->dir_fd, "scratch", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	d = fdopendir(fd);
	if (!d) {
		rc = -errno;
		close(fd);
		return rc;
	}
	while ((de = readdir(d))) {
		const char *n = de->d_name;
		char lock[NAME_MAX + 8];
		int lfd, r;

		if (!strcmp(n, ".") || !strcmp(n, ".."))
			continue;
		snprintf(lock, sizeof(lock), "%s/lock", n);
		lfd = openat(fd, lock, O_RDWR | O_CLOEXEC | O_NOFOLLOW);
		if (lfd < 0 && errno != ENOENT && errno != ENOTDIR) {
			rfs_log(LOG_WARNING, "store %s: scratch/%s: %s",
				st->dir, lock, strerror(errno));
			continue;
		}
		if (lfd >= 0 && flock(lfd, LOCK_EX | LOCK_NB) < 0) {
			close(lfd); /* its owner is alive */
			continue;
		}
		/* A stray file is removed too: scratch/ holds only dirs. */
		if (unlinkat(fd, n, 0) == 0)
			r = 0;
		else if (errno == EISDIR)
			r = remove_tree_at(fd, n);
		else
			r = errno == ENOENT ? 0 : -errno;
		if (lfd >= 0)
			close(lfd);
		if (r) {
			rfs_log(LOG_WARNING, "store %s: cannot remove scratch/%s: %s",
				st->dir, n, rfs_strerror(r));
			continue;
		}
		rfs_log(LOG_INFO, "store %s: removed stale scratch/%s",
			st->dir, n);
		rep->scratch_dirs++;
	}
	closedir(d);
	/* A scratch dir we could not remove does no harm to the index. */
	return 0;
}

/* Drop entries whose object is missing, has the wrong size or whose record
 * cannot be read, and recompute the counters.  One write transaction,
 * which also creates the named DBs of a new store. */
static int repair_index(rfs_store *st, struct repair_report *rep)
{
	MDB_txn *txn = NULL;
	MDB_cursor *cur = NULL;
	MDB_val k, v;
	rfs_key *drop = NULL;
	size_t ndrop = 0, cap = 0;
	int mrc, rc = 0;

	maybe_grow(st);
	mrc = txn_begin(st, 0, &txn);
	if (mrc)
		return mdb_fail(st, "repair: begin", mrc);
	mrc = mdb_dbi_open(txn, "entries", MDB_CREATE, &st->dbi_entries);
	if (!mrc)
		mrc = mdb_dbi_open(txn, "meta", MDB_CREATE, &st->dbi_meta);
	if (!mrc)
		mrc = mdb_dbi_open(txn, "bysrc", MDB_CREATE, &st->dbi_bysrc);
	if (!mrc)
		mrc = mdb_cursor_open(txn, st->dbi_entries, &cur);
	if (mrc) {
		rc = mdb_fail(st, "repair: open databases", mrc);
		goto out;
	}
	for (mrc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); mrc == 0;
	     mrc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
		struct entry_rec e;
		char rel[64], hex[RFS_KEY_HEX] = "?";
		const char *why = NULL;
		struct stat sb;
		rfs_key key;

		if (k.mv_size != sizeof(key.b)) {
			why = "bad key";
			memset(&key, 0, sizeof(key));
		} else {
			memcpy(key.b, k.mv_data, sizeof(key.b));
			rfs_key_hex(&key, hex);
			object_rel(&key, rel, sizeof(rel));
			if (rec_decode(&v, &e) < 0)
				why = "unreadable index record";
			else if (fstatat(st->dir_fd, rel, &sb,
					 AT_SYMLINK_NOFOLLOW) < 0)
				why = errno == ENOENT ? "object file missing" :
							"object file unreadable";
			else if (!S_ISREG(sb.st_mode))
				why = "object is not a regular file";
			else if ((uint64_t)sb.st_size != e.size)
				why = "object file has the wrong size";
		}
		if (!why) {
			rep->objects++;
			rep->bytes += e.size;
			continue;
		}
		rfs_log(LOG_WARNING, "store %s: dropping index entry %s: %s",
			st->dir, hex, why);
		if (k.mv_size != sizeof(key.b)) {
			/* Not one of ours to name by rfs_key: delete in place. */
			mrc = mdb_cursor_del(cur, 0);
			if (mrc)
				break;
			rep->dangling++;
			continue;
		}
		if (ndrop == cap) {
			size_t ncap = cap ? 2 * cap : 16;
			rfs_key *nd = realloc(drop, ncap * sizeof(*nd));

			if (!nd) {
				rc = -ENOMEM;
				goto out;
			}
			drop = nd;
			cap = ncap;
		}
		drop[ndrop++] = key;
	}
	if (mrc != MDB_NOTFOUND) {
		rc = mdb_fail(st, "repair: scan index", mrc);
		goto out;
	}
	mdb_cursor_close(cur);
	cur = NULL;
	for (size_t i = 0; i < ndrop; i++) {
		k.mv_size = sizeof(drop[i].b);
		k.mv_data = drop[i].b;
		mrc = mdb_del(txn, st->dbi_entries, &k, NULL);
		if (mrc) {
			rc = mdb_fail(st, "repair: delete entry", mrc);
			goto out;
		}
		rep->dangling++;
	}
	mrc = counters_put(st, txn, rep->objects, rep->bytes);
	if (!mrc && st->limit)
		mrc = limit_put(st, txn, st->limit);
	if (mrc) {
		rc = mdb_fail(st, "repair: counters", mrc);
		goto out;
	}
	mrc = txn_commit(st, txn);
	txn = NULL;
	if (mrc)
		rc = mdb_fail(st, "repair: commit", mrc);
	else
		st->have_dbs = 1;
out:
	if (cur)
		mdb_cursor_close(cur);
	if (txn)
		txn_abort(st, txn);
	free(drop);
	return rc;
}

static int is_hex2(const char *n)
{
	static const char digits[] = "0123456789abcdef";

	return n[0] && n[1] && !n[2] && strchr(digits, n[0]) &&
	       strchr(digits, n[1]);
}

/* In one shard dir: remove *.tmp and every <hex>.tif no entry names. */
static int repair_shard(rfs_store *st, MDB_txn *txn, int objfd,
			const char *shard, struct repair_report *rep)
{
	struct dirent *de;
	DIR *d;
	int fd, rc = 0;

	fd = openat(objfd, shard, O_RDONLY | O_DIRECTORY | O_NOFOLLOW |
		    O_CLOEXEC);
	if (fd < 0)
		return errno == ENOENT ? 0 : -errno;
	d = fdopendir(fd);
	if (!d) {
		rc = -errno;
		close(fd);
		return rc;
	}
	while ((de = readdir(d))) {
		const char *n = de->d_name;
		size_t len = strlen(n);
		char hex[RFS_KEY_HEX];
		rfs_key key;
		MDB_val k, v;
		int mrc;

		if (!strcmp(n, ".") || !strcmp(n, ".."))
			continue;
		if (len > 4 && !strcmp(n + len - 4, ".tmp")) {
			if (unlinkat(fd, n, 0) == 0)
				rep->tmp_files++;
			continue;
		}
		if (len != 36 || strcmp(n + 32, ".tif") ||
		    strncmp(n, shard, 2)) {
			rfs_log(LOG_WARNING,
				"store %s: leaving unknown file objects/%s/%s",
				st->dir, shard, n);
			continue;
		}
		memcpy(hex, n, 32);
		hex[32] = '\0';
		if (rfs_key_parse(hex, &key) < 0) {
			rfs_log(LOG_WARNING,
				"store %s: leaving unknown file objects/%s/%s",
				st->dir, shard, n);
			continue;
		}
		k.mv_size = sizeof(key.b);
		k.mv_data = key.b;
		mrc = mdb_get(txn, st->dbi_entries, &k, &v);
		if (mrc == 0)
			continue;
		if (mrc != MDB_NOTFOUND) {
			rc = mdb_fail(st, "repair: look up object", mrc);
			break;
		}
		if (unlinkat(fd, n, 0) == 0) {
			rfs_log(LOG_INFO, "store %s: removed unindexed object %s",
				st->dir, hex);
			rep->orphans++;
		} else if (errno != ENOENT) {
			rfs_log(LOG_WARNING, "store %s: cannot remove %s: %s",
				st->dir, n, strerror(errno));
		}
	}
	closedir(d);
	return rc;
}

/* Remove object files that no index entry names (after repair_index()
 * committed, so a file whose entry it dropped goes too). */
static int repair_objects(rfs_store *st, struct repair_report *rep)
{
	struct dirent *de;
	MDB_txn *txn = NULL;
	DIR *d;
	int fd, mrc, rc = 0;

	fd = openat(st->dir_fd, "objects", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	d = fdopendir(fd);
	if (!d) {
		rc = -errno;
		close(fd);
		return rc;
	}
	mrc = txn_begin(st, MDB_RDONLY, &txn);
	if (mrc) {
		txn = NULL;
		rc = mdb_fail(st, "repair: begin read", mrc);
		goto out;
	}
	while ((de = readdir(d))) {
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		if (!is_hex2(de->d_name)) {
			rfs_log(LOG_WARNING,
				"store %s: leaving unknown entry objects/%s",
				st->dir, de->d_name);
			continue;
		}
		rc = repair_shard(st, txn, fd, de->d_name, rep);
		if (rc)
			break;
	}
out:
	if (txn)
		txn_abort(st, txn);
	closedir(d);
	return rc;
}

static int repair(rfs_store *st, struct repair_report *rep)
{
	int rc;

	rc = repair_scratch(st, rep);
	if (!rc)
		rc = repair_index(st, rep);
	if (!rc)
		rc = repair_objects(st, rep);
	if (rc)
		return rc;
	rfs_log(rep->scratch_dirs || rep->orphans || rep->tmp_files ||
		rep->dangling ? LOG_NOTICE : LOG_INFO,
		"store %s: repair removed %u stale scratch dirs, %u unindexed "
		"objects, %u temp files, %u dangling entries; %llu objects, "
		"%llu bytes", st->dir, rep->scratch_dirs, rep->orphans,
		rep->tmp_files, rep->dangling,
		(unsigned long long)rep->objects,
		(unsigned long long)rep->bytes);
	return 0;
}

/* ---- the committer ---------------------------------------------------- */

/* Fallback when scratch and objects sit on different filesystems (someone
 * mounted a tmpfs on scratch/): copy to <obj>.tmp, fsync, rename. */
static int copy_into(rfs_store *st, const char *from, const char *rel)
{
	char tmp[80];
	char *buf = NULL;
	int in = -1, out = -1, rc = 0;
	ssize_t n;

	snprintf(tmp, sizeof(tmp), "%s.tmp", rel);
	buf = malloc(1 << 16);
	if (!buf)
		return -ENOMEM;
	in = open(from, O_RDONLY | O_CLOEXEC);
	if (in < 0) {
		rc = -errno;
		goto out;
	}
	out = openat(st->dir_fd, tmp, O_WRONLY | O_CREAT | O_TRUNC |
		     O_CLOEXEC, 0600);
	if (out < 0) {
		rc = -errno;
		goto out;
	}
	while ((n = read(in, buf, 1 << 16)) != 0) {
		if (n < 0) {
			if (errno == EINTR)
				continue;
			rc = -errno;
			goto out;
		}
		for (ssize_t off = 0; off < n;) {
			ssize_t w = write(out, buf + off, (size_t)(n - off));

			if (w < 0) {
				if (errno == EINTR)
					continue;
				rc = -errno;
				goto out;
			}
			off += w;
		}
	}
	if (fsync(out) < 0 || renameat(st->dir_fd, tmp, st->dir_fd, rel) < 0)
		rc = -errno;
	else
		unlink(from);
out:
	if (out >= 0) {
		close(out);
		if (rc)
			unlinkat(st->dir_fd, tmp, 0);
	}
	if (in >= 0)
		close(in);
	free(buf);
	return rc;
}

/* Within the commit's transaction: pending access times, the entry of the
 * source's old identity (note 10), eviction to make room (note 8), then the
 * entry, its bysrc pointer and the counters. */
static int index_put(rfs_store *st, MDB_txn *txn, const struct commit_req *r,
		     uint64_t size, struct keylist *gone)
{
	MDB_val k = { sizeof(r->key.b), (void *)r->key.b }, v;
	size_t clen = strlen(r->canonical), alen = strlen(r->source_abs);
	unsigned char h[16], *rec;
	MDB_val hk = { 16, h }, hv;
	uint64_t objects, bytes;
	struct atime_slot *a;
	unsigned na;
	size_t reclen;
	int mrc;

	a = atimes_take(st, &na);
	mrc = a ? atimes_apply(st, txn, a, na) : 0;
	free(a);
	if (!mrc)
		mrc = counters_get(st, txn, &objects, &bytes);
	if (mrc)
		return mrc;
	if (alen) {
		bysrc_key(r->source_abs, alen, r->canonical, clen, h);
		mrc = mdb_get(txn, st->dbi_bysrc, &hk, &hv);
		if (mrc == 0 && hv.mv_size == 16 &&
		    memcmp(hv.mv_data, r->key.b, 16)) {
			MDB_val ok = { 16, hv.mv_data }, ov;
			struct entry_rec e;
			rfs_key old;

			memcpy(old.b, hv.mv_data, 16);
			/* Only the same path and chain with another identity:
			 * a colliding or stale pointer drops nothing. */
			if (mdb_get(txn, st->dbi_entries, &ok, &ov) == 0 &&
			    rec_decode(&ov, &e) == 0 &&
			    e.source_abs_len == alen &&
			    !memcmp(e.source_abs, r->source_abs, alen) &&
			    e.canonical_len == clen &&
			    !memcmp(e.canonical, r->canonical, clen) &&
			    !rec_matches(&e, &r->src, r->canonical)) {
				rfs_log(LOG_INFO, "store %s: %s changed; "
					"dropping the output of its old version",
					st->dir, r->source);
				mrc = entry_drop(st, txn, &old, &objects,
						 &bytes, gone);
			}
		} else if (mrc == MDB_NOTFOUND) {
			mrc = 0;
		}
		if (mrc)
			return mrc;
	}
	if (st->limit && bytes + size > st->limit) {
		mrc = evict(st, txn, evict_target(st->limit, size), &objects,
			    &bytes, gone, NULL, NULL);
		if (mrc)
			return mrc;
		if (size > st->limit)
			rfs_log(LOG_WARNING, "store %s: an output of %llu bytes "
				"is larger than cache_size=%llu; it is kept "
				"until the next commit", st->dir,
				(unsigned long long)size,
				(unsigned long long)st->limit);
	}
	rec = rec_encode(r, size, now_ns(), &reclen);
	if (!rec)
		return ENOMEM;
	v.mv_size = reclen;
	v.mv_data = rec;
	mrc = mdb_put(txn, st->dbi_entries, &k, &v, MDB_NOOVERWRITE);
	free(rec);
	if (!mrc && alen) {
		hv.mv_size = 16;
		hv.mv_data = (void *)r->key.b;
		mrc = mdb_put(txn, st->dbi_bysrc, &hk, &hv, 0);
	}
	if (!mrc)
		mrc = counters_put(st, txn, objects + 1, bytes + size);
	return mrc;
}

/* Step b' of design note 2: is the scratch file what the worker said it
 * wrote?  Makes it 0600 (note 11).  Returns 0 and *sb, -EINVAL (not a
 * regular file), -RFS_E_NOSPACE (short, and its filesystem has no room
 * for the rest: the write met a full disk), -RFS_E_STORE_IO (another
 * size or checksum), or -errno. */
static int verify_scratch(rfs_store *st, const struct commit_req *r,
			  struct stat *sb)
{
	const size_t bufsz = 1 << 20;
	unsigned char *buf = NULL;
	XXH3_state_t state;
	struct statvfs sv;
	uint64_t total = 0, sum;
	ssize_t n;
	int fd, rc = 0;

	fd = open(r->scratch_file, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (fstat(fd, sb) < 0) {
		rc = -errno;
		goto out;
	}
	if (!S_ISREG(sb->st_mode)) {
		rc = -EINVAL;
		goto out;
	}
	if ((uint64_t)sb->st_size != r->size) {
		uint64_t missing = r->size > (uint64_t)sb->st_size ?
				   r->size - (uint64_t)sb->st_size : 0;
		int full = missing && fstatvfs(fd, &sv) == 0 &&
			   (uint64_t)sv.f_bavail * sv.f_frsize < missing;
		rfs_log(LOG_ERR, "store %s: not storing %s: it has %lld bytes, "
			"the worker reported %llu%s", st->dir, r->scratch_file,
			(long long)sb->st_size, (unsigned long long)r->size,
			full ? " (its filesystem is full)" : "");
		rc = full ? -RFS_E_NOSPACE : -RFS_E_STORE_IO;
		goto out;
	}
	if (!(buf = malloc(bufsz))) {
		rc = -ENOMEM;
		goto out;
	}
	XXH3_INITSTATE(&state);
	XXH3_64bits_reset(&state);
	while ((n = read(fd, buf, bufsz)) != 0) {
		if (n < 0) {
			if (errno == EINTR)
				continue;
			rc = -errno;
			goto out;
		}
		XXH3_64bits_update(&state, buf, (size_t)n);
		total += (uint64_t)n;
	}
	sum = XXH3_64bits_digest(&state);
	if (total != r->size || sum != r->checksum) {
		rfs_log(LOG_ERR, "store %s: not storing %s: read %llu bytes "
			"with XXH3-64 %016llx, the worker reported %llu bytes "
			"with %016llx", st->dir, r->scratch_file,
			(unsigned long long)total, (unsigned long long)sum,
			(unsigned long long)r->size,
			(unsigned long long)r->checksum);
		rc = -RFS_E_STORE_IO;
		goto out;
	}
	if (fchmod(fd, 0600) < 0)
		rc = -errno;
out:
	free(buf);
	close(fd);
	return rc;
}

/* Steps c..e of design note 2.  Returns the cb's rc.  Whatever happens, on
 * return the scratch file is gone and the index and objects agree. */
static int commit_one(rfs_store *st, const struct commit_req *r)
{
	char rel[64], shard[16];
	MDB_txn *txn = NULL;
	MDB_val k = { sizeof(r->key.b), (void *)r->key.b }, v;
	struct keylist gone = { 0 };
	struct stat sb;
	int rc = 0, mrc, placed = 0, locked = 0;

	object_rel(&r->key, rel, sizeof(rel));
	snprintf(shard, sizeof(shard), "%.10s", rel); /* "objects/ab" */

	rc = flock_retry(st->lock_fd, LOCK_SH);
	if (rc)
		goto out;
	locked = 1;
	maybe_grow(st);
	for (int attempt = 0;; attempt++) {
		mrc = txn_begin(st, 0, &txn);
		if (mrc) {
			txn = NULL;
			rc = mdb_fail(st, "commit: begin", mrc);
			goto out;
		}
		mrc = mdb_get(txn, st->dbi_entries, &k, &v);
		if (mrc == 0) {
			struct entry_rec e;

			if (rec_decode(&v, &e) == 0 &&
			    rec_matches(&e, &r->src, r->canonical)) {
				/* Another mount made it; if ours was placed
				 * before a retry, theirs replaced it. */
				placed = 0;
				goto out;
			}
			rfs_log(LOG_ERR, "store %s: key collision on %s: entry "
				"was made from another chain, not storing this "
				"one", st->dir, rel + 11);
			rc = -EEXIST;
			goto out;
		} else if (mrc != MDB_NOTFOUND) {
			rc = mdb_fail(st, "commit: look up", mrc);
			goto out;
		}

		if (!placed) {
			rc = verify_scratch(st, r, &sb);
			if (rc)
				goto out;
			if (mkdirat(st->dir_fd, shard, 0700) == 0) {
				rc = fsync_dir_at(st->dir_fd, "objects");
				if (rc)
					goto out;
			} else if (errno != EEXIST) {
				rc = -errno;
				goto out;
			}
			if (renameat(AT_FDCWD, r->scratch_file, st->dir_fd,
				     rel) < 0) {
				rc = -errno;
				if (rc == -EXDEV)
					rc = copy_into(st, r->scratch_file, rel);
				if (rc)
					goto out;
			}
			placed = 1;
			rc = fsync_dir_at(st->dir_fd, shard);
			if (rc)
				goto out;
		}

		mrc = index_put(st, txn, r, (uint64_t)sb.st_size, &gone);
		if (!mrc) {
			mrc = txn_commit(st, txn);
			txn = NULL;
		}
		if (mrc == MDB_MAP_FULL && attempt < 8) {
			/* Note 9: grow and redo the transaction. */
			if (txn)
				txn_abort(st, txn);
			txn = NULL;
			gone.n = 0;
			if (grow_map(st) == 0)
				continue;
		}
		if (mrc)
			rc = mdb_fail(st, "commit", mrc);
		break;
	}
out:
	if (txn)
		txn_abort(st, txn);
	if (placed && rc)
		unlinkat(st->dir_fd, rel, 0);
	else if (!placed)
		unlink(r->scratch_file);
	if (!rc)
		unlink_gone(st, &gone);
	if (locked)
		flock_retry(st->lock_fd, LOCK_UN);
	free(gone.k);
	if (rc < 0 && !rfs_err_is_rfs(rc))
		rc = rfs_err_from_store_errno(-rc);
	return rc;
}

/* Evict down to limit in a transaction of its own (after open, gc).
 * Returns an LMDB code. */
static int evict_now(rfs_store *st, uint64_t limit, uint64_t *nevicted,
		     uint64_t *nbytes)
{
	struct keylist gone = { 0 };
	uint64_t objects, bytes;
	MDB_txn *txn;
	int mrc;

	maybe_grow(st);
	mrc = txn_begin(st, 0, &txn);
	if (mrc)
		return mrc;
	mrc = counters_get(st, txn, &objects, &bytes);
	if (!mrc && bytes > limit)
		mrc = evict(st, txn, evict_target(limit, 0), &objects, &bytes,
			    &gone, nevicted, nbytes);
	if (!mrc && gone.n)
		mrc = counters_put(st, txn, objects, bytes);
	if (mrc || !gone.n) {
		txn_abort(st, txn);
	} else {
		mrc = txn_commit(st, txn);
		if (!mrc)
			unlink_gone(st, &gone);
	}
	free(gone.k);
	return mrc;
}

/* Does the parent directory of path exist?  A source whose directory is
 * gone may sit on a disk that is not mounted now: its outputs are kept. */
static int parent_exists(const char *path)
{
	char *d = strdup(path), *slash;
	struct stat sb;
	int ok;

	if (!d)
		return 1;
	slash = strrchr(d, '/');
	if (slash == d)
		slash[1] = '\0';
	else if (slash)
		*slash = '\0';
	ok = stat(d, &sb) == 0 && S_ISDIR(sb.st_mode);
	free(d);
	return ok;
}

/* rfs_store_gc's work, on the committer. */
static int gc_run(rfs_store *st, uint64_t limit,
		  struct rfs_store_gc_report *rep)
{
	struct keylist garbage = { 0 }, gone = { 0 };
	MDB_cursor *cur = NULL;
	MDB_txn *txn = NULL;
	MDB_val k, v;
	uint64_t objects, bytes;
	int mrc;

	rep->scratch_dirs = st->rep.scratch_dirs;
	rep->orphans = st->rep.orphans;
	rep->tmp_files = st->rep.tmp_files;
	rep->dangling = st->rep.dangling;

	/* 1. Sources whose identity changed, found with a read transaction
	 * (stat of each recorded source path). */
	mrc = txn_begin(st, MDB_RDONLY, &txn);
	if (mrc)
		return mrc;
	mrc = mdb_cursor_open(txn, st->dbi_entries, &cur);
	for (mrc = mrc ? mrc : mdb_cursor_get(cur, &k, &v, MDB_FIRST);
	     mrc == 0; mrc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
		struct entry_rec e;
		struct rfs_src_id now;
		struct stat sb;
		char path[PATH_MAX];
		rfs_key key;

		if (k.mv_size != sizeof(key.b) || rec_decode(&v, &e) ||
		    !e.source_abs_len || e.source_abs_len >= sizeof(path))
			continue;
		memcpy(path, e.source_abs, e.source_abs_len);
		path[e.source_abs_len] = '\0';
		if (stat(path, &sb) == 0) {
			rfs_src_id_from_stat(&now, &sb);
			if (S_ISREG(sb.st_mode) && now.dev == e.src.dev &&
			    now.ino == e.src.ino && now.size == e.src.size &&
			    now.mtime_ns == e.src.mtime_ns)
				continue;
		} else if (errno != ENOENT || !parent_exists(path)) {
			continue;
		}
		memcpy(key.b, k.mv_data, sizeof(key.b));
		if (keylist_add(&garbage, &key)) {
			mrc = ENOMEM;
			break;
		}
		rep->changed_bytes += e.size;
	}
	if (cur)
		mdb_cursor_close(cur);
	txn_abort(st, txn);
	if (mrc != MDB_NOTFOUND)
		goto out;
	mrc = 0;

	/* 2. Drop them in one write transaction. */
	if (garbage.n) {
		maybe_grow(st);
		mrc = txn_begin(st, 0, &txn);
		if (mrc)
			goto out;
		mrc = counters_get(st, txn, &objects, &bytes);
		for (size_t i = 0; !mrc && i < garbage.n; i++)
			mrc = entry_drop(st, txn, &garbage.k[i], &objects,
					 &bytes, &gone);
		if (!mrc)
			mrc = counters_put(st, txn, objects, bytes);
		if (mrc) {
			txn_abort(st, txn);
			goto out;
		}
		mrc = txn_commit(st, txn);
		if (mrc)
			goto out;
		unlink_gone(st, &gone);
		rep->changed = gone.n;
	}

	/* 3. Evict to the limit. */
	if (limit)
		mrc = evict_now(st, limit, &rep->evicted, &rep->evicted_bytes);
out:
	free(garbage.k);
	free(gone.k);
	return mrc;
}

/* Is another process using the store?  Every opener holds a lock on its
 * scratch/<name>/lock; ours is skipped.  Returns 0, or -EBUSY with *pid
 * (from the dir name) when one is held. */
static int store_users(rfs_store *st, long *pid)
{
	const char *own = st->scratch_root ?
			  strrchr(st->scratch_root, '/') + 1 : "";
	struct dirent *de;
	DIR *d;
	int fd, rc = 0;

	fd = openat(st->dir_fd, "scratch", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOENT ? 0 : -errno;
	d = fdopendir(fd);
	if (!d) {
		close(fd);
		return -errno;
	}
	while (!rc && (de = readdir(d))) {
		char lock[NAME_MAX + 8];
		int lfd;

		if (de->d_name[0] == '.' || !strcmp(de->d_name, own))
			continue;
		snprintf(lock, sizeof(lock), "%s/lock", de->d_name);
		lfd = openat(fd, lock, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
		if (lfd < 0)
			continue;
		if (flock(lfd, LOCK_EX | LOCK_NB) < 0 && errno == EWOULDBLOCK) {
			rc = -EBUSY;
			*pid = strtol(de->d_name, NULL, 10);
		}
		close(lfd);
	}
	closedir(d);
	return rc;
}

/* rfs_store_clear's work, on the committer. */
static int clear_run(rfs_store *st, uint64_t *removed, long *pid)
{
	MDB_txn *txn = NULL;
	uint64_t objects = 0, bytes;
	DIR *d = NULL;
	struct dirent *de;
	int rc, mrc, fd;

	rc = flock_retry(st->lock_fd, LOCK_EX);
	if (rc)
		return rc;
	rc = store_users(st, pid);
	if (rc)
		goto out;
	mrc = txn_begin(st, 0, &txn);
	if (!mrc)
		mrc = counters_get(st, txn, &objects, &bytes);
	if (!mrc)
		mrc = mdb_drop(txn, st->dbi_entries, 0);
	if (!mrc)
		mrc = mdb_drop(txn, st->dbi_bysrc, 0);
	if (!mrc)
		mrc = counters_put(st, txn, 0, 0);
	if (mrc) {
		if (txn)
			txn_abort(st, txn);
		rc = mdb_fail(st, "clear", mrc);
		goto out;
	}
	mrc = txn_commit(st, txn);
	if (mrc) {
		rc = mdb_fail(st, "clear: commit", mrc);
		goto out;
	}
	*removed = objects;
	/* No entry names them now; what a crash leaves here, repair takes. */
	fd = openat(st->dir_fd, "objects", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0 || !(d = fdopendir(fd))) {
		if (fd >= 0)
			close(fd);
		goto out;
	}
	while ((de = readdir(d))) {
		if (is_hex2(de->d_name)) {
			int r = remove_tree_at(fd, de->d_name);

			if (r && !rc)
				rc = r;
		}
	}
	closedir(d);
out:
	flock_retry(st->lock_fd, LOCK_UN);
	return rc;
}

static void sync_done(struct sync_req *s, int rc)
{
	pthread_mutex_lock(&s->mu);
	s->rc = rc;
	s->done = 1;
	pthread_cond_signal(&s->cv);
	pthread_mutex_unlock(&s->mu);
}

static void run_req(rfs_store *st, struct commit_req *r)
{
	int rc;

	switch (r->kind) {
	case REQ_COMMIT:
		rc = commit_one(st, r);
		r->cb(r->arg, rc);
		break;
	case REQ_GC:
		sync_done(r->sync, gc_run(st, r->sync->limit, r->sync->gc));
		break;
	case REQ_CLEAR:
		sync_done(r->sync, clear_run(st, &r->sync->removed,
					     &r->sync->pid));
		break;
	case REQ_FLUSH:
		sync_done(r->sync, atimes_flush(st));
		break;
	}
	free(r);
}

static void *committer_main(void *arg)
{
	rfs_store *st = arg;
	struct repair_report rep = { 0 };
	int rc;

	rc = repair(st, &rep);
	if (!rc && st->limit) {
		uint64_t n = 0, b = 0;
		int mrc = evict_now(st, st->limit, &n, &b);

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
				atimes_flush(st);
				pthread_mutex_lock(&st->mu);
				continue;
			}
			break; /* stopping, and the queue is drained */
		}
		st->head = r->next;
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
		return mdb_fail(st, "mdb_env_create", mrc);
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
		return mdb_fail(st, "open index", mrc);
	/* Reader slots of crashed processes would pin old pages forever. */
	mrc = mdb_reader_check(st->env, &dead);
	if (mrc)
		return mdb_fail(st, "mdb_reader_check", mrc);
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

	mrc = txn_begin(st, MDB_RDONLY, &txn);
	if (mrc)
		return mdb_fail(st, "open: begin", mrc);
	mrc = mdb_dbi_open(txn, "entries", 0, &st->dbi_entries);
	if (!mrc)
		mrc = mdb_dbi_open(txn, "meta", 0, &st->dbi_meta);
	if (!mrc)
		mrc = mdb_dbi_open(txn, "bysrc", 0, &st->dbi_bysrc);
	if (mrc == MDB_NOTFOUND) {
		txn_abort(st, txn);
		return 0; /* an empty store */
	}
	if (mrc) {
		txn_abort(st, txn);
		return mdb_fail(st, "open databases", mrc);
	}
	mrc = txn_commit(st, txn); /* keeps the handles */
	if (mrc)
		return mdb_fail(st, "open databases", mrc);
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
			rc = empty_dir_fd(dfd, "lock");
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
		if (empty_dir_fd(dfd, "lock") < 0)
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
		rc = make_dirs(dir);
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
	rc = flock_retry(st->lock_fd, LOCK_EX);
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
		flock_retry(st->lock_fd, LOCK_UN);
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
	mrc = txn_begin(st, MDB_RDONLY, &txn);
	if (mrc)
		return mdb_fail(st, "lookup: begin", mrc);
	k.mv_size = sizeof(key->b);
	k.mv_data = (void *)key->b;
	mrc = mdb_get(txn, st->dbi_entries, &k, &v);
	if (mrc == MDB_NOTFOUND) {
		rc = -ENOENT;
	} else if (mrc) {
		rc = mdb_fail(st, "lookup", mrc);
	} else if (rec_decode(&v, &e) < 0 || !rec_matches(&e, src, canonical)) {
		rc = -ENOENT;
	} else {
		ent.size = e.size;
		ent.checksum = e.checksum;
		ent.created_ns = e.created_ns;
	}
	txn_abort(st, txn);
	if (rc)
		return rc;

	object_rel(key, rel, sizeof(rel));
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
	object_rel(key, rel, sizeof(rel));
	fd = openat(st->dir_fd, rel, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	atime_touch(st, key);
	return fd;
}

void rfs_store_object_path(rfs_store *st, const rfs_key *key, char *buf,
			   size_t len)
{
	char rel[64];

	assert(st && key && buf);
	object_rel(key, rel, sizeof(rel));
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
	mrc = txn_begin(st, MDB_RDONLY, &txn);
	if (mrc)
		return mdb_fail(st, "stats: begin", mrc);
	mrc = counters_get(st, txn, &o, &b);
	txn_abort(st, txn);
	if (mrc)
		return mdb_fail(st, "stats", mrc);
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
	rc = empty_dir_fd(fd, NULL);
	close(fd);
	return rc;
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

/* Hand r to the committer.  Returns 0, or -RFS_E_SHUTDOWN when the store
 * is closing (or, with need_thread, its committer never started); then r
 * is still the caller's. */
static int queue_push(rfs_store *st, struct commit_req *r, int need_thread)
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

	int rc = queue_push(st, r, 0);
	if (rc < 0)
		free(r);
	return rc;
}

/* ---- size limit and maintenance --------------------------------------- */

int rfs_store_default_limit(const char *dir, uint64_t *out)
{
	const uint64_t cap = (uint64_t)50 << 30;
	struct statvfs vfs;
	uint64_t total;

	if (statvfs(dir, &vfs) < 0)
		return -errno;
	total = (uint64_t)vfs.f_blocks * vfs.f_frsize;
	*out = total / 10 < cap ? total / 10 : cap;
	if (!*out)
		*out = 1; /* a zero-sized filesystem: keep nothing */
	return 0;
}

int rfs_store_parse_size(const char *s, uint64_t *out)
{
	unsigned long long v;
	unsigned shift = 0;
	char *end;

	if (!s || !out || *s < '0' || *s > '9')
		return -EINVAL;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno || end == s)
		return -EINVAL;
	switch (*end) {
	case 'k': case 'K': shift = 10; end++; break;
	case 'm': case 'M': shift = 20; end++; break;
	case 'g': case 'G': shift = 30; end++; break;
	case 't': case 'T': shift = 40; end++; break;
	}
	if (shift && *end == 'i')
		end++;
	if (*end == 'B' || (*end == 'b' && shift))
		end++;
	if (*end || !v || v > (1ULL << 62) >> shift)
		return -EINVAL;
	*out = (uint64_t)v << shift;
	return 0;
}

uint64_t rfs_store_limit(const rfs_store *st)
{
	return st->limit;
}

int rfs_store_recorded_limit(rfs_store *st, uint64_t *out)
{
	MDB_val k = { sizeof(limit_key) - 1, (void *)limit_key }, v;
	MDB_txn *txn;
	int mrc;

	*out = 0;
	if (!st->have_dbs)
		return 0;
	mrc = txn_begin(st, MDB_RDONLY, &txn);
	if (mrc)
		return mdb_fail(st, "limit: begin", mrc);
	mrc = mdb_get(txn, st->dbi_meta, &k, &v);
	if (mrc == 0 && v.mv_size == 8)
		*out = get_le64(v.mv_data);
	txn_abort(st, txn);
	return mrc && mrc != MDB_NOTFOUND ? mdb_fail(st, "limit", mrc) : 0;
}

/* Hand a maintenance request to the committer and wait for it. */
static int run_sync(rfs_store *st, enum req_kind kind, struct sync_req *s)
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
	int rc = queue_push(st, r, 1);
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

int rfs_store_flush(rfs_store *st)
{
	struct sync_req s = { 0 };

	return run_sync(st, REQ_FLUSH, &s);
}

int rfs_store_gc(rfs_store *st, uint64_t limit,
		 struct rfs_store_gc_report *rep)
{
	struct sync_req s = { 0 };
	int rc;

	memset(rep, 0, sizeof(*rep));
	s.limit = limit;
	s.gc = rep;
	rc = run_sync(st, REQ_GC, &s);
	if (rc > 0)
		rc = mdb_fail(st, "gc", rc);
	if (!rc)
		rc = rfs_store_stats(st, &rep->objects, &rep->bytes);
	return rc;
}

int rfs_store_clear(rfs_store *st, uint64_t *removed, long *pid)
{
	struct sync_req s = { 0 };
	int rc;

	rc = run_sync(st, REQ_CLEAR, &s);
	if (removed)
		*removed = s.removed;
	if (pid)
		*pid = s.pid;
	return rc;
}

/* Copy n bytes into a NUL-terminated malloc'ed string. */
static char *dup_n(const char *p, size_t n)
{
	char *s = malloc(n + 1);

	if (s) {
		memcpy(s, p, n);
		s[n] = '\0';
	}
	return s;
}

int rfs_store_foreach(rfs_store *st,
		      int (*fn)(void *arg, const struct rfs_store_info *e),
		      void *arg)
{
	MDB_cursor *cur = NULL;
	MDB_txn *txn;
	MDB_val k, v;
	int mrc, rc = 0;

	if (!st->have_dbs)
		return 0;
	mrc = txn_begin(st, MDB_RDONLY, &txn);
	if (mrc)
		return mdb_fail(st, "foreach: begin", mrc);
	mrc = mdb_cursor_open(txn, st->dbi_entries, &cur);
	for (mrc = mrc ? mrc : mdb_cursor_get(cur, &k, &v, MDB_FIRST);
	     mrc == 0 && !rc; mrc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
		struct rfs_store_info info;
		struct entry_rec e;
		char *c, *s, *a;

		if (k.mv_size != sizeof(info.key.b) || rec_decode(&v, &e))
			continue;
		memcpy(info.key.b, k.mv_data, sizeof(info.key.b));
		info.size = e.size;
		info.checksum = e.checksum;
		info.created_ns = e.created_ns;
		info.atime_ns = e.atime_ns;
		info.src = e.src;
		c = dup_n(e.canonical, e.canonical_len);
		s = dup_n(e.source, e.source_len);
		a = dup_n(e.source_abs, e.source_abs_len);
		if (!c || !s || !a)
			rc = -ENOMEM;
		else {
			info.canonical = c;
			info.source = s;
			info.source_abs = a;
			rc = fn(arg, &info);
		}
		free(c);
		free(s);
		free(a);
	}
	if (cur)
		mdb_cursor_close(cur);
	txn_abort(st, txn);
	if (mrc && mrc != MDB_NOTFOUND && !rc)
		rc = mdb_fail(st, "foreach", mrc);
	return rc;
}

/* ---- verify ------------------------------------------------------------ */

struct suspect {
	rfs_key key;
	int64_t created_ns;
	enum rfs_store_problem kind;
	char detail[160];
};

typedef void (*problem_fn)(void *arg, enum rfs_store_problem kind,
			   const char *what, const char *detail);

/* Read the object and compare; 0 when fine, else kind with detail. */
static int verify_object(rfs_store *st, const rfs_key *key,
			 const struct entry_rec *e, char *detail, size_t len,
			 unsigned char *buf, size_t bufsz)
{
	char rel[64];
	struct stat sb;
	XXH3_state_t state;
	uint64_t total = 0;
	ssize_t n;
	int fd;

	object_rel(key, rel, sizeof(rel));
	fd = openat(st->dir_fd, rel, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0 || fstat(fd, &sb) < 0 || !S_ISREG(sb.st_mode)) {
		snprintf(detail, len, "object file %s: %s", rel,
			 fd < 0 ? strerror(errno) : "not a regular file");
		if (fd >= 0)
			close(fd);
		return RFS_PROBLEM_MISSING + 1;
	}
	if ((uint64_t)sb.st_size != e->size) {
		snprintf(detail, len, "object has %lld bytes, entry says %llu",
			 (long long)sb.st_size, (unsigned long long)e->size);
		close(fd);
		return RFS_PROBLEM_SIZE + 1;
	}
	XXH3_INITSTATE(&state);
	XXH3_64bits_reset(&state);
	while ((n = read(fd, buf, bufsz)) != 0) {
		if (n < 0) {
			if (errno == EINTR)
				continue;
			snprintf(detail, len, "reading %s: %s", rel,
				 strerror(errno));
			close(fd);
			return RFS_PROBLEM_MISSING + 1;
		}
		XXH3_64bits_update(&state, buf, (size_t)n);
		total += (uint64_t)n;
	}
	close(fd);
	if (total != e->size) {
		snprintf(detail, len, "read %llu bytes, entry says %llu",
			 (unsigned long long)total, (unsigned long long)e->size);
		return RFS_PROBLEM_SIZE + 1;
	}
	if (XXH3_64bits_digest(&state) != e->checksum) {
		snprintf(detail, len, "XXH3-64 of the bytes is %016llx, entry "
			 "says %016llx",
			 (unsigned long long)XXH3_64bits_digest(&state),
			 (unsigned long long)e->checksum);
		return RFS_PROBLEM_CHECKSUM + 1;
	}
	return 0;
}

/* Pass 1: every entry, in one read snapshot; problems become suspects,
 * confirmed in pass 2 against a fresh snapshot (an entry evicted by a live
 * mount meanwhile is not a problem). */
static int verify_entries(rfs_store *st, problem_fn fn, void *arg,
			  struct rfs_store_verify_report *rep)
{
	struct suspect *sus = NULL;
	size_t nsus = 0, cap = 0, bufsz = 1 << 20;
	unsigned char *buf = malloc(bufsz);
	uint64_t cnt_o = 0, cnt_b = 0, sum_o = 0, sum_b = 0;
	MDB_cursor *cur = NULL;
	MDB_txn *txn = NULL;
	MDB_val k, v;
	int mrc, rc = 0;

	if (!buf)
		return -ENOMEM;
	mrc = txn_begin(st, MDB_RDONLY, &txn);
	if (mrc) {
		free(buf);
		return mdb_fail(st, "verify: begin", mrc);
	}
	mrc = counters_get(st, txn, &cnt_o, &cnt_b);
	if (!mrc)
		mrc = mdb_cursor_open(txn, st->dbi_entries, &cur);
	for (mrc = mrc ? mrc : mdb_cursor_get(cur, &k, &v, MDB_FIRST);
	     mrc == 0; mrc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
		struct entry_rec e;
		char detail[160], hex[RFS_KEY_HEX];
		rfs_key key;
		int kind;

		rep->entries++;
		if (k.mv_size != sizeof(key.b) || rec_decode(&v, &e)) {
			rep->problems++;
			if (fn)
				fn(arg, RFS_PROBLEM_RECORD, "index",
				   "an index record cannot be decoded");
			continue;
		}
		sum_o++;
		sum_b += e.size;
		memcpy(key.b, k.mv_data, sizeof(key.b));
		kind = verify_object(st, &key, &e, detail, sizeof(detail),
				     buf, bufsz);
		if (!kind) {
			rep->bytes_checked += e.size;
			continue;
		}
		if (nsus == cap) {
			size_t ncap = cap ? 2 * cap : 16;
			struct suspect *ns = realloc(sus, ncap * sizeof(*ns));

			if (!ns) {
				rc = -ENOMEM;
				goto out;
			}
			sus = ns;
			cap = ncap;
		}
		sus[nsus].key = key;
		sus[nsus].created_ns = e.created_ns;
		sus[nsus].kind = (enum rfs_store_problem)(kind - 1);
		memcpy(sus[nsus].detail, detail, sizeof(detail));
		nsus++;
		(void)hex;
	}
	if (mrc != MDB_NOTFOUND) {
		rc = mdb_fail(st, "verify: scan", mrc);
		goto out;
	}
	if (cnt_o != sum_o || cnt_b != sum_b) {
		char detail[160];

		snprintf(detail, sizeof(detail), "counters say %llu objects, "
			 "%llu bytes; entries sum to %llu, %llu",
			 (unsigned long long)cnt_o, (unsigned long long)cnt_b,
			 (unsigned long long)sum_o, (unsigned long long)sum_b);
		rep->problems++;
		if (fn)
			fn(arg, RFS_PROBLEM_COUNTERS, "index", detail);
	}
	mdb_cursor_close(cur);
	cur = NULL;
	txn_abort(st, txn);
	txn = NULL;

	for (size_t i = 0; i < nsus; i++) {
		MDB_val sk = { sizeof(sus[i].key.b), sus[i].key.b }, sv;
		struct entry_rec e;
		char hex[RFS_KEY_HEX];
		int still;

		mrc = txn_begin(st, MDB_RDONLY, &txn);
		if (mrc) {
			txn = NULL;
			rc = mdb_fail(st, "verify: begin", mrc);
			goto out;
		}
		still = mdb_get(txn, st->dbi_entries, &sk, &sv) == 0 &&
			rec_decode(&sv, &e) == 0 &&
			e.created_ns == sus[i].created_ns;
		txn_abort(st, txn);
		txn = NULL;
		if (!still)
			continue;
		rep->problems++;
		rfs_key_hex(&sus[i].key, hex);
		if (fn)
			fn(arg, sus[i].kind, hex, sus[i].detail);
	}
out:
	if (cur)
		mdb_cursor_close(cur);
	if (txn)
		txn_abort(st, txn);
	free(sus);
	free(buf);
	return rc;
}

/* Pass 3, under store.lock LOCK_EX: unindexed objects, stale scratch. */
static int verify_files(rfs_store *st, problem_fn fn, void *arg,
			struct rfs_store_verify_report *rep)
{
	MDB_txn *txn = NULL;
	struct dirent *de, *fe;
	DIR *d = NULL;
	char what[PATH_MAX];
	int fd, mrc, rc;

	rc = flock_retry(st->lock_fd, LOCK_EX);
	if (rc)
		return rc;
	if (st->have_dbs) {
		mrc = txn_begin(st, MDB_RDONLY, &txn);
		if (mrc) {
			txn = NULL;
			rc = mdb_fail(st, "verify: begin", mrc);
			goto out;
		}
	}
	fd = openat(st->dir_fd, "objects", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd >= 0 && !(d = fdopendir(fd)))
		close(fd);
	while (d && (de = readdir(d))) {
		DIR *sd;
		int sfd;

		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		snprintf(what, sizeof(what), "objects/%s", de->d_name);
		if (!is_hex2(de->d_name)) {
			rep->problems++;
			if (fn)
				fn(arg, RFS_PROBLEM_UNKNOWN, what,
				   "not a shard directory of the store");
			continue;
		}
		sfd = openat(dirfd(d), de->d_name, O_RDONLY | O_DIRECTORY |
			     O_NOFOLLOW | O_CLOEXEC);
		if (sfd < 0 || !(sd = fdopendir(sfd))) {
			if (sfd >= 0)
				close(sfd);
			continue;
		}
		while ((fe = readdir(sd))) {
			const char *n = fe->d_name;
			size_t len = strlen(n);
			char hex[RFS_KEY_HEX];
			rfs_key key;
			MDB_val k, v;

			if (!strcmp(n, ".") || !strcmp(n, ".."))
				continue;
			snprintf(what, sizeof(what), "objects/%s/%s",
				 de->d_name, n);
			if (len > 4 && !strcmp(n + len - 4, ".tmp")) {
				rep->problems++;
				if (fn)
					fn(arg, RFS_PROBLEM_ORPHAN, what,
					   "a temporary file of a commit");
				continue;
			}
			if (len == 36 && !strcmp(n + 32, ".tif")) {
				memcpy(hex, n, 32);
				hex[32] = '\0';
			}
			if (len != 36 || strcmp(n + 32, ".tif") ||
			    rfs_key_parse(hex, &key)) {
				rep->problems++;
				if (fn)
					fn(arg, RFS_PROBLEM_UNKNOWN, what,
					   "not an object file name");
				continue;
			}
			k.mv_size = sizeof(key.b);
			k.mv_data = key.b;
			if (txn && mdb_get(txn, st->dbi_entries, &k, &v) == 0)
				continue;
			rep->problems++;
			if (fn)
				fn(arg, RFS_PROBLEM_ORPHAN, what,
				   "an object file that no index entry names");
		}
		closedir(sd);
	}
	if (d)
		closedir(d);
	d = NULL;

	fd = openat(st->dir_fd, "scratch", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd >= 0 && !(d = fdopendir(fd)))
		close(fd);
	while (d && (de = readdir(d))) {
		char lock[NAME_MAX + 8];
		int lfd, live;

		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		snprintf(lock, sizeof(lock), "%s/lock", de->d_name);
		lfd = openat(dirfd(d), lock, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
		live = lfd >= 0 && flock(lfd, LOCK_EX | LOCK_NB) < 0 &&
		       errno == EWOULDBLOCK;
		if (lfd >= 0)
			close(lfd);
		if (live)
			continue;
		snprintf(what, sizeof(what), "scratch/%s", de->d_name);
		rep->problems++;
		if (fn)
			fn(arg, RFS_PROBLEM_SCRATCH, what,
			   "scratch left by a process that is gone");
	}
	if (d)
		closedir(d);
out:
	if (txn)
		txn_abort(st, txn);
	flock_retry(st->lock_fd, LOCK_UN);
	return rc;
}

int rfs_store_verify(rfs_store *st, problem_fn fn, void *arg,
		     struct rfs_store_verify_report *rep)
{
	int rc = 0;

	memset(rep, 0, sizeof(*rep));
	if (st->have_dbs)
		rc = verify_entries(st, fn, arg, rep);
	if (!rc)
		rc = verify_files(st, fn, arg, rep);
	return rc;
}
