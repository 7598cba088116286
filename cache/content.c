/* content.c - content hashes of sources, remembered by local identity
 * (pkey.h: a portable key needs the hash of the source's bytes, which
 * costs a read of the whole source, so it is computed once per source
 * version).
 *
 * 12. Content records.  A record kind of the "meta" DB (no DB of its
 *     own): key "content" (7 bytes, no NUL) followed by the local identity
 *     (dev, ino, size, mtime_ns: u64 little-endian each), 39 bytes; value,
 *     little-endian:
 *        0 u16 version (1)  2 u16 zero  4 u32 A = length of the path
 *        8 i64 when the hash was computed, ns (CLOCK_REALTIME)
 *       16 16 bytes: XXH3-128 of the source's bytes (canonical order)
 *       32 A bytes: the absolute source path, for gc (0 when unknown)
 *     Written by the committer only (REQ_CONTENT, queued by
 *     rfs_store_content_put; one transaction each: a source is hashed
 *     once per version, so they are rare), read with read transactions.
 *     A record of another version or length reads as absent.  Repair and
 *     verify do not look at them (the counters and limit records of the
 *     same DB are read by key); clear keeps them (they describe sources,
 *     not outputs, and stay true); gc drops the records whose recorded
 *     path now has another identity, or was removed from a directory that
 *     still exists (gc.c's rule, note 10).
 */
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <lmdb.h>

#include "rasterfs/err.h"
#include "rasterfs/log.h"
#include "rasterfs/store.h"
#include "store_int.h"

#define CONTENT_VERSION 1
#define CONTENT_HEAD 32

static const char content_prefix[] = "content"; /* 7 bytes, no NUL */
#define PREFIX_LEN (sizeof(content_prefix) - 1)
#define CKEY_LEN (PREFIX_LEN + 32)

static void content_key(const struct rfs_src_id *src,
			unsigned char k[CKEY_LEN])
{
	memcpy(k, content_prefix, PREFIX_LEN);
	put_le64(k + PREFIX_LEN, src->dev);
	put_le64(k + PREFIX_LEN + 8, src->ino);
	put_le64(k + PREFIX_LEN + 16, src->size);
	put_le64(k + PREFIX_LEN + 24, (uint64_t)src->mtime_ns);
}

static int is_content_key(const MDB_val *k)
{
	return k->mv_size == CKEY_LEN &&
	       memcmp(k->mv_data, content_prefix, PREFIX_LEN) == 0;
}

/* 0 and the hash (and path, not NUL-terminated) of a record, or -1 when
 * it is not one of this version. */
static int content_decode(const MDB_val *v, const unsigned char **hash,
			  const char **path, uint32_t *plen)
{
	const unsigned char *p = v->mv_data;

	if (v->mv_size < CONTENT_HEAD || get_le16(p) != CONTENT_VERSION ||
	    v->mv_size != CONTENT_HEAD + (size_t)get_le32(p + 4))
		return -1;
	*hash = p + 16;
	*path = (const char *)p + CONTENT_HEAD;
	*plen = get_le32(p + 4);
	return 0;
}

int rfs_store_content_get(rfs_store *st, const struct rfs_src_id *src,
			  unsigned char out[16])
{
	unsigned char kb[CKEY_LEN];
	MDB_val k = { sizeof(kb), kb }, v;
	MDB_txn *txn;
	const unsigned char *hash;
	const char *path;
	uint32_t plen;
	int mrc, rc;

	if (!st || !src || !out)
		return -EINVAL;
	if (!st->have_dbs)
		return -ENOENT; /* a read-only open of an empty store */
	content_key(src, kb);
	if ((mrc = store_txn_begin(st, MDB_RDONLY, &txn)))
		return store_mdb_fail(st, "content hash: begin", mrc);
	mrc = mdb_get(txn, st->dbi_meta, &k, &v);
	if (mrc == MDB_NOTFOUND) {
		rc = -ENOENT;
	} else if (mrc) {
		rc = store_mdb_fail(st, "content hash: get", mrc);
	} else if (content_decode(&v, &hash, &path, &plen)) {
		rc = -ENOENT;
	} else {
		memcpy(out, hash, 16);
		rc = 0;
	}
	store_txn_abort(st, txn);
	return rc;
}

int rfs_store_content_put(rfs_store *st, const struct rfs_src_id *src,
			  const unsigned char hash[16], const char *source_abs)
{
	struct commit_req *r;
	size_t al = source_abs ? strlen(source_abs) : 0;

	if (!st || !src || !hash)
		return -EINVAL;
	if (st->flags & RFS_STORE_RDONLY)
		return -EROFS;
	if (al > PATH_MAX)
		return -ENAMETOOLONG;
	if (!(r = calloc(1, sizeof(*r) + al + 1)))
		return -ENOMEM;
	r->kind = REQ_CONTENT;
	r->src = *src;
	memcpy(r->key.b, hash, sizeof(r->key.b)); /* the hash rides in key */
	r->source_abs = memcpy(r->buf, source_abs ? source_abs : "", al + 1);
	r->canonical = r->source = r->scratch_file = "";
	int rc = store_queue_push(st, r, 1);
	if (rc < 0)
		free(r);
	return rc;
}

/* The committer's half of rfs_store_content_put.  LMDB code. */
int store_content_put_one(rfs_store *st, const struct commit_req *r)
{
	unsigned char kb[CKEY_LEN];
	size_t al = strlen(r->source_abs);
	unsigned char *val = malloc(CONTENT_HEAD + al);
	MDB_val k = { sizeof(kb), kb }, v = { CONTENT_HEAD + al, val };
	MDB_txn *txn;
	int mrc;

	if (!val)
		return ENOMEM;
	content_key(&r->src, kb);
	put_le16(val, CONTENT_VERSION);
	put_le16(val + 2, 0);
	put_le32(val + 4, (uint32_t)al);
	put_le64(val + 8, (uint64_t)now_ns());
	memcpy(val + 16, r->key.b, 16);
	memcpy(val + CONTENT_HEAD, r->source_abs, al);
	for (int tries = 0;; tries++) {
		store_maybe_grow(st);
		if ((mrc = store_txn_begin(st, 0, &txn)))
			break;
		mrc = mdb_put(txn, st->dbi_meta, &k, &v, 0);
		if (!mrc) {
			mrc = store_txn_commit(st, txn);
		} else {
			store_txn_abort(st, txn);
		}
		if (mrc != MDB_MAP_FULL || tries == 2 ||
		    (mrc = store_grow_map(st)))
			break;
	}
	free(val);
	return mrc;
}

int rfs_store_content_count(rfs_store *st, uint64_t *n)
{
	unsigned char kb[CKEY_LEN] = { 0 };
	MDB_val k = { PREFIX_LEN, kb }, v;
	MDB_cursor *cur = NULL;
	MDB_txn *txn;
	int mrc;

	*n = 0;
	if (!st->have_dbs)
		return 0;
	memcpy(kb, content_prefix, PREFIX_LEN);
	if ((mrc = store_txn_begin(st, MDB_RDONLY, &txn)))
		return store_mdb_fail(st, "content count: begin", mrc);
	mrc = mdb_cursor_open(txn, st->dbi_meta, &cur);
	for (mrc = mrc ? mrc : mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
	     mrc == 0 && k.mv_size >= PREFIX_LEN &&
	     memcmp(k.mv_data, content_prefix, PREFIX_LEN) == 0;
	     mrc = mdb_cursor_get(cur, &k, &v, MDB_NEXT))
		if (is_content_key(&k))
			(*n)++;
	if (cur)
		mdb_cursor_close(cur);
	store_txn_abort(st, txn);
	return mrc == 0 || mrc == MDB_NOTFOUND ? 0 :
	       store_mdb_fail(st, "content count", mrc);
}

/* gc (note 12): drop the records of changed or removed sources, whose
 * identity is in their key.  changed(path, len, id) is gc.c's rule.
 * Counts them in *dropped.  LMDB code. */
int store_content_gc(rfs_store *st,
		     int (*changed)(const char *abs, size_t len,
				    const struct rfs_src_id *id),
		     uint64_t *dropped)
{
	unsigned char kb[CKEY_LEN] = { 0 };
	MDB_val k = { PREFIX_LEN, kb }, v;
	MDB_cursor *cur = NULL;
	MDB_txn *txn;
	int mrc;

	*dropped = 0;
	memcpy(kb, content_prefix, PREFIX_LEN);
	store_maybe_grow(st);
	if ((mrc = store_txn_begin(st, 0, &txn)))
		return mrc;
	mrc = mdb_cursor_open(txn, st->dbi_meta, &cur);
	for (mrc = mrc ? mrc : mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
	     mrc == 0 && k.mv_size >= PREFIX_LEN &&
	     memcmp(k.mv_data, content_prefix, PREFIX_LEN) == 0;
	     mrc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
		const unsigned char *hash, *kp = k.mv_data;
		const char *path;
		uint32_t plen;
		struct rfs_src_id id;
		int drop;

		if (!is_content_key(&k))
			continue;
		id.dev = get_le64(kp + PREFIX_LEN);
		id.ino = get_le64(kp + PREFIX_LEN + 8);
		id.size = get_le64(kp + PREFIX_LEN + 16);
		id.mtime_ns = (int64_t)get_le64(kp + PREFIX_LEN + 24);
		/* an undecodable record is dropped: it reads as absent */
		drop = content_decode(&v, &hash, &path, &plen) ||
		       (plen && changed(path, plen, &id));
		if (drop) {
			if ((mrc = mdb_cursor_del(cur, 0)))
				break;
			(*dropped)++;
		}
	}
	if (cur)
		mdb_cursor_close(cur);
	if (mrc && mrc != MDB_NOTFOUND) {
		store_txn_abort(st, txn);
		return mrc;
	}
	return store_txn_commit(st, txn);
}
