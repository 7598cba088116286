/* store_int.h - what the rooms of the cache store share (not its face:
 * that is include/rasterfs/store.h).  Every function here runs inside the
 * store's own library; the notes they cite are listed in cache/store.c.
 */
#ifndef RASTERFS_STORE_INT_H
#define RASTERFS_STORE_INT_H

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

/* Keys whose object files go once their transaction has committed. */
struct keylist {
	rfs_key *k;
	size_t n, cap;
};

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

/* ---- little-endian fields of the index records -------------------- */

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

/* ---- store.c: the directory layout, the committer's queue ----------- */

void store_object_rel(const rfs_key *key, char *buf, size_t len);
int store_is_shard(const char *n);
int store_run_sync(rfs_store *st, enum req_kind kind, struct sync_req *s);

/* ---- index.c: transactions, records, counters ----------------------- */

int store_keylist_add(struct keylist *l, const rfs_key *key);
int store_mdb_rc(int mrc);
int store_mdb_fail(const rfs_store *st, const char *what, int mrc);
int store_grow_map(rfs_store *st);
void store_maybe_grow(rfs_store *st);
int store_txn_begin(rfs_store *st, unsigned flags, MDB_txn **txn);
void store_txn_abort(rfs_store *st, MDB_txn *txn);
int store_txn_commit(rfs_store *st, MDB_txn *txn);
int store_rec_decode(const MDB_val *v, struct entry_rec *e);
int store_rec_matches(const struct entry_rec *e,
		      const struct rfs_src_id *src, const char *canonical);
unsigned char *store_rec_encode(const struct commit_req *r, uint64_t size,
				int64_t created_ns, size_t *len);
int store_counters_get(rfs_store *st, MDB_txn *txn, uint64_t *objects,
		       uint64_t *bytes);
int store_counters_put(rfs_store *st, MDB_txn *txn, uint64_t objects,
		       uint64_t bytes);
int store_limit_put(rfs_store *st, MDB_txn *txn, uint64_t limit);
void store_bysrc_key(const char *abs, size_t alen, const char *canon,
		     size_t clen, unsigned char out[16]);
int store_entry_drop(rfs_store *st, MDB_txn *txn, const rfs_key *key,
		     uint64_t *objects, uint64_t *bytes, struct keylist *gone);
void store_unlink_gone(rfs_store *st, const struct keylist *gone);

/* ---- evict.c: the size limit and access times ----------------------- */

int store_evict(rfs_store *st, MDB_txn *txn, uint64_t target,
		uint64_t *objects, uint64_t *bytes, struct keylist *gone,
		uint64_t *nevicted, uint64_t *nbytes);
uint64_t store_evict_target(uint64_t limit, uint64_t incoming);
int store_evict_now(rfs_store *st, uint64_t limit, uint64_t *nevicted,
		    uint64_t *nbytes);
struct atime_slot *store_atimes_take(rfs_store *st, unsigned *n);
int store_atimes_apply(rfs_store *st, MDB_txn *txn,
		       const struct atime_slot *a, unsigned n);
void store_atime_touch(rfs_store *st, const rfs_key *key);
int store_atimes_flush(rfs_store *st);

/* ---- repair.c, commit.c, gc.c: work of the committer ---------------- */

int store_repair(rfs_store *st, struct repair_report *rep);
int store_commit_one(rfs_store *st, const struct commit_req *r);
int store_gc_run(rfs_store *st, uint64_t limit,
		 struct rfs_store_gc_report *rep);
int store_clear_run(rfs_store *st, uint64_t *removed, long *pid);

/* ---- fsutil.c: small filesystem helpers ----------------------------- */

int store_flock_retry(int fd, int op);
int store_fsync_dir_at(int dfd, const char *rel);
int store_empty_dir(int dfd, const char *keep);
int store_remove_tree_at(int dfd, const char *rel);

#endif
