/* index.c - the LMDB index: transactions and map growth, entry records,
 * counters, dropping entries.
 *
 *  5. Counters.  The "counters" record of the meta DB holds the number of
 *     entries and the sum of their sizes; each commit updates it in its own
 *     transaction and repair recomputes it, so rfs_store_stats() is one
 *     read transaction and one get.
 *
 *  9. Map growth.  The map starts at 1 GiB (sparse: LMDB does not extend
 *     the file) and doubles (store_grow_map) when over 3/4 of it was ever used,
 *     or when a commit meets MDB_MAP_FULL (then the transaction is redone).
 *     mdb_env_set_mapsize() needs no transaction of this process active, so
 *     every transaction holds txn_rw shared and a resize holds it
 *     exclusive.  A map grown by another process shows up as
 *     MDB_MAP_RESIZED at txn begin: adopt_map() takes the new size.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <lmdb.h>
#define XXH_STATIC_LINKING_ONLY /* XXH3_state_t on the stack */
#include <xxhash.h>

#include "rasterfs/err.h"
#include "rasterfs/log.h"
#include "rasterfs/store.h"
#include "store_int.h"

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

int store_keylist_add(struct keylist *l, const rfs_key *key)
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

/* An LMDB code (MDB_* or a positive errno) as the store's callers see it:
 * 0, NOSPACE when the disk is full, else STORE_IO. */
int store_mdb_rc(int mrc)
{
	if (!mrc)
		return 0;
	if (mrc == ENOSPC || mrc == EDQUOT)
		return -RFS_E_NOSPACE;
	return -RFS_E_STORE_IO;
}

/* An LMDB failure: log it, and say STORE_IO unless the disk is full. */
int store_mdb_fail(const rfs_store *st, const char *what, int mrc)
{
	rfs_log(LOG_ERR, "store %s: %s: %s", st->dir, what, mdb_strerror(mrc));
	return mrc ? store_mdb_rc(mrc) : -RFS_E_STORE_IO;
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
int store_grow_map(rfs_store *st)
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
void store_maybe_grow(rfs_store *st)
{
	MDB_envinfo info;
	MDB_stat ms;

	pthread_rwlock_rdlock(&st->txn_rw);
	mdb_env_info(st->env, &info);
	mdb_env_stat(st->env, &ms);
	pthread_rwlock_unlock(&st->txn_rw);
	if ((info.me_last_pgno + 1) * (size_t)ms.ms_psize >
	    info.me_mapsize / 4 * 3)
		store_grow_map(st);
}

int store_txn_begin(rfs_store *st, unsigned flags, MDB_txn **txn)
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

void store_txn_abort(rfs_store *st, MDB_txn *txn)
{
	mdb_txn_abort(txn);
	pthread_rwlock_unlock(&st->txn_rw);
}

int store_txn_commit(rfs_store *st, MDB_txn *txn)
{
	int mrc = mdb_txn_commit(txn);

	pthread_rwlock_unlock(&st->txn_rw);
	return mrc;
}

/* ---- records ---------------------------------------------------------- */

int store_rec_decode(const MDB_val *v, struct entry_rec *e)
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
int store_rec_matches(const struct entry_rec *e,
		      const struct rfs_src_id *src, const char *canonical)
{
	size_t clen = strlen(canonical);

	return e->src.dev == src->dev && e->src.ino == src->ino &&
	       e->src.size == src->size && e->src.mtime_ns == src->mtime_ns &&
	       e->canonical_len == clen &&
	       memcmp(e->canonical, canonical, clen) == 0;
}

/* Encode into a malloc'ed buffer of *len bytes, or NULL. */
unsigned char *store_rec_encode(const struct commit_req *r, uint64_t size,
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
int store_counters_get(rfs_store *st, MDB_txn *txn, uint64_t *objects,
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

int store_counters_put(rfs_store *st, MDB_txn *txn, uint64_t objects,
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

int store_limit_put(rfs_store *st, MDB_txn *txn, uint64_t limit)
{
	unsigned char buf[8];
	MDB_val k = { sizeof(limit_key) - 1, (void *)limit_key };
	MDB_val v = { sizeof(buf), buf };

	put_le64(buf, limit);
	return mdb_put(txn, st->dbi_meta, &k, &v, 0);
}

/* ---- the source index, dropping entries ------------------------------- */

/* Key of the "bysrc" DB: XXH3-128 of absolute source path, NUL, canonical
 * chain.  Its value names the key last committed for that pair, so the
 * commit of a changed source finds the entry of the old identity.  A stale
 * or colliding value is harmless: the entry it names is checked first. */
void store_bysrc_key(const char *abs, size_t alen, const char *canon,
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
int store_entry_drop(rfs_store *st, MDB_txn *txn, const rfs_key *key,
		     uint64_t *objects, uint64_t *bytes, struct keylist *gone)
{
	MDB_val k = { sizeof(key->b), (void *)key->b }, v;
	struct entry_rec e;
	int mrc;

	mrc = mdb_get(txn, st->dbi_entries, &k, &v);
	if (mrc)
		return mrc == MDB_NOTFOUND ? 0 : mrc;
	if (store_rec_decode(&v, &e) == 0) {
		if (e.source_abs_len) {
			unsigned char h[16];
			MDB_val hk = { 16, h }, hv;

			store_bysrc_key(e.source_abs, e.source_abs_len,
					e.canonical, e.canonical_len, h);
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
	return store_keylist_add(gone, key);
}

int store_entry_touch(rfs_store *st, MDB_txn *txn, const rfs_key *key,
		      int64_t t)
{
	MDB_val k = { sizeof(key->b), (void *)key->b }, v;
	struct entry_rec e;
	unsigned char *copy;
	int mrc;

	if (mdb_get(txn, st->dbi_entries, &k, &v) ||
	    store_rec_decode(&v, &e) || e.atime_ns >= t)
		return 0;
	copy = malloc(v.mv_size);
	if (!copy)
		return ENOMEM;
	memcpy(copy, v.mv_data, v.mv_size);
	put_le64(copy + 40, (uint64_t)t);
	v.mv_data = copy;
	mrc = mdb_put(txn, st->dbi_entries, &k, &v, 0);
	free(copy);
	return mrc;
}

/* After the transaction that dropped them committed: the files go.  An fd
 * open on one keeps its bytes readable until it is closed (note 8). */
void store_unlink_gone(rfs_store *st, const struct keylist *gone)
{
	char rel[64];

	for (size_t i = 0; i < gone->n; i++) {
		store_object_rel(&gone->k[i], rel, sizeof(rel));
		if (unlinkat(st->dir_fd, rel, 0) < 0 && errno != ENOENT)
			rfs_log(LOG_WARNING, "store %s: cannot remove %s: %s",
				st->dir, rel, strerror(errno));
	}
}

int rfs_store_recorded_limit(rfs_store *st, uint64_t *out)
{
	MDB_val k = { sizeof(limit_key) - 1, (void *)limit_key }, v;
	MDB_txn *txn;
	int mrc;

	*out = 0;
	if (!st->have_dbs)
		return 0;
	mrc = store_txn_begin(st, MDB_RDONLY, &txn);
	if (mrc)
		return store_mdb_fail(st, "limit: begin", mrc);
	mrc = mdb_get(txn, st->dbi_meta, &k, &v);
	if (mrc == 0 && v.mv_size == 8)
		*out = get_le64(v.mv_data);
	store_txn_abort(st, txn);
	return mrc && mrc != MDB_NOTFOUND ?
	       store_mdb_fail(st, "limit", mrc) : 0;
}
