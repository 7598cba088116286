/* evict.c - the size limit: eviction of the least recently read, access
 * times, the limit's defaults; dropping entries by name (rfs_store_drop).
 *
 *  8. Size limit and access times.  rfs_store_open_object() notes the
 *     time in an in-memory table (store_atime_touch); the committer writes
 *     the table in one write transaction when ATIME_BATCH keys are pending,
 *     ATIME_PERIOD_NS after the first one, before a commit (inside its
 *     transaction: index_put) and at close.  So a read costs no LMDB write.
 *     When a commit would take the indexed bytes over the limit, index_put
 *     drops the least recently opened entries (store_evict: one scan and a
 *     sort) down to 90% of the limit less the new object, in the commit's
 *     own transaction, and the files go after it committed
 *     (store_unlink_gone).  A reader with the object open keeps reading
 *     it: an unlinked file lives until its last fd closes (POSIX), so
 *     "never removed from under a reader" holds without counting opens.
 *     The counters (the limit's measure) drop at once; the blocks come
 *     back at the last close.  A crash between the commit and the unlink
 *     leaves files no entry names: repair_objects() removes them.
 */
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>

#include <lmdb.h>

#include "rasterfs/err.h"
#include "rasterfs/log.h"
#include "rasterfs/store.h"
#include "store_int.h"

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
int store_evict(rfs_store *st, MDB_txn *txn, uint64_t target,
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

		if (k.mv_size != sizeof(items->key.b) ||
		    store_rec_decode(&v, &e))
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
		mrc = store_entry_drop(st, txn, &items[i].key, objects, bytes,
				       gone);
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
uint64_t store_evict_target(uint64_t limit, uint64_t incoming)
{
	uint64_t low = limit - limit / 10;

	return low > incoming ? low - incoming : 0;
}

/* Take the pending access times (the caller writes them). */
struct atime_slot *store_atimes_take(rfs_store *st, unsigned *n)
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
int store_atimes_apply(rfs_store *st, MDB_txn *txn,
		       const struct atime_slot *a, unsigned n)
{
	for (unsigned i = 0; i < n; i++) {
		int mrc = store_entry_touch(st, txn, &a[i].key, a[i].t);

		if (mrc)
			return mrc;
	}
	return 0;
}

/* Record that key was opened now; written later by the committer. */
void store_atime_touch(rfs_store *st, const rfs_key *key)
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
int store_atimes_flush(rfs_store *st)
{
	unsigned n;
	struct atime_slot *a = store_atimes_take(st, &n);
	MDB_txn *txn;
	int mrc;

	if (!a)
		return 0;
	store_maybe_grow(st);
	mrc = store_txn_begin(st, 0, &txn);
	if (!mrc) {
		mrc = store_atimes_apply(st, txn, a, n);
		if (mrc)
			store_txn_abort(st, txn);
		else
			mrc = store_txn_commit(st, txn);
	}
	if (mrc)
		rfs_log(LOG_WARNING, "store %s: access times not recorded: %s",
			st->dir, mdb_strerror(mrc));
	free(a);
	return mrc;
}

/* Evict down to limit in a transaction of its own (after open, gc).
 * Returns an LMDB code. */
int store_evict_now(rfs_store *st, uint64_t limit, uint64_t *nevicted,
		    uint64_t *nbytes)
{
	struct keylist gone = { 0 };
	uint64_t objects, bytes;
	MDB_txn *txn;
	int mrc;

	store_maybe_grow(st);
	mrc = store_txn_begin(st, 0, &txn);
	if (mrc)
		return mrc;
	mrc = store_counters_get(st, txn, &objects, &bytes);
	if (!mrc && bytes > limit)
		mrc = store_evict(st, txn, store_evict_target(limit, 0),
				  &objects, &bytes, &gone, nevicted, nbytes);
	if (!mrc && gone.n)
		mrc = store_counters_put(st, txn, objects, bytes);
	if (mrc || !gone.n) {
		store_txn_abort(st, txn);
	} else {
		mrc = store_txn_commit(st, txn);
		if (!mrc)
			store_unlink_gone(st, &gone);
	}
	free(gone.k);
	return mrc;
}

/* ---- the limit's defaults, flush -------------------------------------- */

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

int rfs_store_flush(rfs_store *st)
{
	struct sync_req s = { 0 };

	return store_run_sync(st, REQ_FLUSH, &s);
}

/* ---- dropping named entries (rfs_store_drop) --------------------------- */

int rfs_store_drop(rfs_store *st, const rfs_key *keys, size_t n)
{
	struct commit_req *r;

	if (!st || (!keys && n))
		return -EINVAL;
	if (st->flags & RFS_STORE_RDONLY)
		return -EROFS;
	if (n == 0)
		return 0;
	if (n > SIZE_MAX / sizeof(*keys) - sizeof(*r))
		return -ENOMEM;
	r = calloc(1, sizeof(*r) + n * sizeof(*keys));
	if (!r)
		return -ENOMEM;
	r->kind = REQ_DROP;
	r->size = n;
	memcpy(r->buf, keys, n * sizeof(*keys));
	int rc = store_queue_push(st, r, 0);
	if (rc < 0)
		free(r);
	return rc;
}

int store_drop_run(rfs_store *st, const struct commit_req *r)
{
	struct keylist gone = { 0 };
	uint64_t objects = 0, bytes = 0;
	MDB_txn *txn;
	rfs_key key;
	int mrc;

	store_maybe_grow(st);
	if ((mrc = store_txn_begin(st, 0, &txn)))
		return mrc;
	mrc = store_counters_get(st, txn, &objects, &bytes);
	for (uint64_t i = 0; !mrc && i < r->size; i++) {
		memcpy(key.b, r->buf + i * sizeof(key.b), sizeof(key.b));
		mrc = store_entry_drop(st, txn, &key, &objects, &bytes, &gone);
	}
	if (!mrc)
		mrc = store_counters_put(st, txn, objects, bytes);
	if (mrc) {
		store_txn_abort(st, txn);
		goto out;
	}
	if (!(mrc = store_txn_commit(st, txn)))
		store_unlink_gone(st, &gone);
out:
	free(gone.k);
	return mrc;
}
