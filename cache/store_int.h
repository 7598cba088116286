/* store_int.h - what the rooms of the cache store share (not its face:
 * that is include/rasterfs/store.h).  Every function here runs inside the
 * store's own library; the notes they cite are listed in cache/store.c.
 */
#ifndef RASTERFS_STORE_INT_H
#define RASTERFS_STORE_INT_H

#include <dirent.h>
#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

#include <lmdb.h>

#include "rasterfs/store.h"

/* Access times (note 8): table slots, batch size, longest wait. */
#define ATIME_SLOTS 1024
#define ATIME_BATCH 512
#define ATIME_PERIOD_NS (3 * 1000000000LL)

struct atime_slot {
	rfs_key key;
	int64_t t;	/* 0: free */
};

/* A growing list of keys: those whose object files go once their
 * transaction has committed, those repair or gc drop. */
struct keylist {
	rfs_key *k;
	size_t n, cap;
};

enum req_kind { REQ_COMMIT, REQ_GC, REQ_CLEAR, REQ_FLUSH,
		REQ_CONTENT /* content.c: the hash rides in key, the path in
			       source_abs; no callback */,
		REQ_DESCRIBE,
		REQ_DROP /* evict.c: size keys in buf; no callback */ };

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

/* One piece of work for the committer: a commit, or a maintenance request
 * (sync) whose caller waits. */
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
	const void *layout;       /* REQ_DESCRIBE: the packed layout (into
				     buf), layout_len bytes; checksum holds
				     the stamp, size the described size */
	size_t layout_len;
	char buf[];
};

/* What startup repair found (note 3); gc reports it again. */
struct repair_report {
	unsigned scratch_dirs;
	unsigned orphans;
	unsigned tmp_files;
	unsigned dangling;
	uint64_t objects;
	uint64_t bytes;
};

/* The store, as every room sees it (opaque to callers: store.h). */
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
	MDB_dbi dbi_desc;	/* "described" (desc.c) */
	int have_dbs;		/* the named DBs exist (read-only opens) */
	int have_desc;		/* "described" exists (read-only opens) */
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

/* An index record, decoded (store_rec_decode; the layout is in index.c). */
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

/* ---- little-endian fields (index records, the key's serialisation) ---- */

static inline void put_le16(unsigned char *p, uint16_t v)
{
	p[0] = (unsigned char)v;
	p[1] = (unsigned char)(v >> 8);
}

static inline void put_le32(unsigned char *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (unsigned char)(v >> (8 * i));
}

static inline void put_le64(unsigned char *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (unsigned char)(v >> (8 * i));
}

static inline uint16_t get_le16(const unsigned char *p)
{
	return (uint16_t)(p[0] | p[1] << 8);
}

static inline uint32_t get_le32(const unsigned char *p)
{
	uint32_t v = 0;

	for (int i = 3; i >= 0; i--)
		v = v << 8 | p[i];
	return v;
}

static inline uint64_t get_le64(const unsigned char *p)
{
	uint64_t v = 0;

	for (int i = 7; i >= 0; i--)
		v = v << 8 | p[i];
	return v;
}

static inline int64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

/* How the rooms' functions fail.  Those that speak LMDB (they run inside a
 * transaction, or are its helpers) return 0 or an LMDB code: an MDB_*
 * code or a positive errno, as mdb_* calls do; the public calls turn it
 * into the store's codes with store_mdb_fail() (logged) or store_mdb_rc().
 * The others return 0 or a negative code, as the public calls do. */

/* ---- store.c: the directory layout, the committer's queue ----------- */

/* "objects/<xx>/<32 hex>.tif" of key, relative to the store directory, in
 * buf (64 bytes are enough). */
void store_object_rel(const rfs_key *key, char *buf, size_t len);
/* 1 and *key when n is the name of an object file ("<32 hex>.tif"), of
 * shard (its first two digits are shard's) unless shard is NULL; else 0. */
int store_object_name(const char *shard, const char *n, rfs_key *key);
/* 1 when n is a shard directory's name (two lower-case hex digits). */
int store_is_shard(const char *n);
/* Hand r to the committer.  Returns 0, or -RFS_E_SHUTDOWN when the
 * store is closing (or, with need_thread, its committer never started);
 * then r is still the caller's. */
int store_queue_push(rfs_store *st, struct commit_req *r, int need_thread);
/* Hand a maintenance request to the committer and wait for it.  Returns
 * the committer's result (already the store's code), or -EROFS (read-only
 * open), -ENOMEM, -RFS_E_SHUTDOWN (closing, or no committer). */
int store_run_sync(rfs_store *st, enum req_kind kind, struct sync_req *s);

/* ---- index.c: transactions, records, counters ----------------------- */

/* Append key to l.  Returns 0 or ENOMEM (positive: an LMDB-style code). */
int store_keylist_add(struct keylist *l, const rfs_key *key);
/* An LMDB code as the store's callers see it: 0, -RFS_E_NOSPACE (disk
 * full) or -RFS_E_STORE_IO. */
int store_mdb_rc(int mrc);
/* The same for a failure (mrc != 0), logged with what and mdb_strerror. */
int store_mdb_fail(const rfs_store *st, const char *what, int mrc);
/* Double the map (note 9); the committer only.  Returns an LMDB code
 * (logged either way). */
int store_grow_map(rfs_store *st);
/* Grow the map first when over 3/4 of it was ever used. */
void store_maybe_grow(rfs_store *st);
/* Begin a transaction (flags: 0 or MDB_RDONLY) holding txn_rw shared;
 * adopts a map grown by another process.  End it with store_txn_abort()
 * or store_txn_commit(), which release txn_rw.  LMDB codes. */
int store_txn_begin(rfs_store *st, unsigned flags, MDB_txn **txn);
void store_txn_abort(rfs_store *st, MDB_txn *txn);
int store_txn_commit(rfs_store *st, MDB_txn *txn);
/* Decode an "entries" value; e points into it.  Returns 0, or -1 when it
 * is not a record of this version (README: treated as absent). */
int store_rec_decode(const MDB_val *v, struct entry_rec *e);
/* 1 when e was made from (src, canonical): a hash collision is a miss. */
int store_rec_matches(const struct entry_rec *e,
		      const struct rfs_src_id *src, const char *canonical);
/* r's record, created and last read at created_ns, in a malloc'ed buffer
 * of *len bytes; NULL when memory ran out. */
unsigned char *store_rec_encode(const struct commit_req *r, uint64_t size,
				int64_t created_ns, size_t *len);
/* The counters within txn (a missing record: 0, 0), and writing them.
 * LMDB codes (MDB_CORRUPTED for a record of another size or version). */
int store_counters_get(rfs_store *st, MDB_txn *txn, uint64_t *objects,
		       uint64_t *bytes);
int store_counters_put(rfs_store *st, MDB_txn *txn, uint64_t objects,
		       uint64_t bytes);
/* Record the limit of this mount in the meta DB.  LMDB code. */
int store_limit_put(rfs_store *st, MDB_txn *txn, uint64_t limit);
/* The "bysrc" key of (absolute source path, canonical chain). */
void store_bysrc_key(const char *abs, size_t alen, const char *canon,
		     size_t clen, unsigned char out[16]);
/* Drop key's entry and bysrc pointer within txn, take it off *objects and
 * *bytes, list it in gone.  A missing entry is not an error.  LMDB code. */
int store_entry_drop(rfs_store *st, MDB_txn *txn, const rfs_key *key,
		     uint64_t *objects, uint64_t *bytes, struct keylist *gone);
/* Make t key's access time within txn, if it is later than the one
 * recorded.  A missing entry is not an error.  LMDB code. */
int store_entry_touch(rfs_store *st, MDB_txn *txn, const rfs_key *key,
		      int64_t t);
/* Unlink the object files of gone, after the transaction that dropped
 * them committed; a failure is logged, not returned. */
void store_unlink_gone(rfs_store *st, const struct keylist *gone);

/* ---- evict.c: the size limit and access times (note 8) -------------- */

/* Within txn, drop the least recently read entries until *bytes <=
 * target; counts what it dropped in *nevicted and *nbytes (may be NULL).
 * LMDB code. */
int store_evict(rfs_store *st, MDB_txn *txn, uint64_t target,
		uint64_t *objects, uint64_t *bytes, struct keylist *gone,
		uint64_t *nevicted, uint64_t *nbytes);
/* Where eviction stops: 90% of limit, less room for incoming bytes. */
uint64_t store_evict_target(uint64_t limit, uint64_t incoming);
/* Evict down to limit in a transaction of its own, then unlink.  LMDB
 * code. */
int store_evict_now(rfs_store *st, uint64_t limit, uint64_t *nevicted,
		    uint64_t *nbytes);
/* Drop r's keys (REQ_DROP); the committer only.  LMDB code. */
int store_drop_run(rfs_store *st, const struct commit_req *r);
/* Take the pending access times out of the table: a malloc'ed array of *n
 * (NULL when none are pending, or memory ran out: they are hints). */
struct atime_slot *store_atimes_take(rfs_store *st, unsigned *n);
/* Write n access times within txn.  LMDB code. */
int store_atimes_apply(rfs_store *st, MDB_txn *txn,
		       const struct atime_slot *a, unsigned n);
/* Note that key was opened now (rfs_store_open_object); never fails: a
 * full table drops the update. */
void store_atime_touch(rfs_store *st, const rfs_key *key);
/* Write the pending access times in a transaction of their own; the
 * committer only.  LMDB code (a failure is logged). */
int store_atimes_flush(rfs_store *st);

/* ---- repair.c, commit.c, gc.c: work of the committer ---------------- */

/* Startup repair (note 3), under store.lock LOCK_EX; fills rep.  Returns
 * 0, -RFS_E_STORE_IO / -RFS_E_NOSPACE (logged) or -errno. */
int store_repair(rfs_store *st, struct repair_report *rep);
/* Commit r (note 2).  Returns what its cb gets: 0, -RFS_E_NOSPACE,
 * -RFS_E_STORE_IO, -EEXIST (a key collision), -EINVAL (not a regular
 * file) or -errno; on failure the scratch file is gone and the index is
 * unchanged. */
int store_commit_one(rfs_store *st, const struct commit_req *r);
/* rfs_store_gc's and rfs_store_clear's work.  gc: LMDB code; clear: 0,
 * -EBUSY (*pid: a user), -RFS_E_STORE_IO / -RFS_E_NOSPACE or -errno. */
int store_gc_run(rfs_store *st, uint64_t limit,
		 struct rfs_store_gc_report *rep);
int store_clear_run(rfs_store *st, uint64_t *removed, long *pid);

/* ---- content.c: content hashes of sources (note 12) ----------------- */

/* Write r's content record (REQ_CONTENT); the committer only.  LMDB
 * code (logged by the caller). */
int store_content_put_one(rfs_store *st, const struct commit_req *r);
/* gc: drop the content records of changed or removed sources (changed()
 * is gc.c's rule) in one write transaction; *dropped counts them.  LMDB
 * code. */
int store_content_gc(rfs_store *st,
		     int (*changed)(const char *abs, size_t len,
				    const struct rfs_src_id *id),
		     uint64_t *dropped);
/* ---- desc.c: description records ------------------------------------ */

/* Write the n REQ_DESCRIBE requests r[] in one write transaction (and
 * drop the oldest records over RFS_STORE_DESC_MAX); the committer only.
 * LMDB code (logged by the caller). */
int store_desc_batch(rfs_store *st, struct commit_req *const *r, size_t n);
/* Within txn (a commit of key's object of size bytes): drop key's record
 * if it says another size.  LMDB code. */
int store_desc_drop_other(rfs_store *st, MDB_txn *txn, const rfs_key *key,
			  uint64_t size);
/* Within txn (repair): drop records that cannot be decoded; counts them
 * in *dropped.  LMDB code. */
int store_desc_repair(rfs_store *st, MDB_txn *txn, unsigned *dropped);
/* gc: drop the records whose recorded source has another identity now,
 * or was removed from a directory that still exists (gc.c's rule, given
 * as changed()); *dropped counts them.  LMDB code. */
int store_desc_gc(rfs_store *st, int (*changed)(const char *abs, size_t len,
						const struct rfs_src_id *id),
		  uint64_t *dropped);
/* verify: check every record within txn (decodes; the object of the same
 * key, if indexed, has its size); fn gets each problem.  Counts records
 * in *n, problems in *problems.  LMDB code. */
int store_desc_verify(rfs_store *st, MDB_txn *txn,
		      void (*fn)(void *arg, enum rfs_store_problem kind,
				 const char *what, const char *detail),
		      void *arg, uint64_t *n, uint64_t *problems);

/* ---- fsutil.c: small filesystem helpers ----------------------------- */

/* flock(), again after EINTR.  Returns 0 or -errno. */
int store_flock_retry(int fd, int op);
/* fsync the directory rel (relative to dfd).  Returns 0 or -errno. */
int store_fsync_dir_at(int dfd, const char *rel);
/* Remove everything in the directory dfd but `keep` (may be NULL),
 * recursively, never following symlinks; dfd stays the caller's.  Goes on
 * after an error; returns 0 or the first -errno. */
int store_empty_dir(int dfd, const char *keep);
/* Remove the directory rel (relative to dfd) and all it holds; a missing
 * one is fine.  Returns 0 or the first -errno. */
int store_remove_tree_at(int dfd, const char *rel);
/* Open rel (relative to dfd) as a directory stream; flags are added to
 * O_RDONLY | O_DIRECTORY | O_CLOEXEC (O_NOFOLLOW, say).  Returns 0 and
 * *d, or -errno and *d = NULL. */
int store_opendir_at(int dfd, const char *rel, int flags, DIR **d);
/* Read fd from its offset to its end through buf (bufsz bytes): *total
 * bytes with XXH3-64 *sum.  Returns 0 or -errno. */
int store_hash_fd(int fd, unsigned char *buf, size_t bufsz,
		  uint64_t *total, uint64_t *sum);

#endif
