/* desc.c - description records: what a key's object will be, before it
 * exists (store.h, "descriptions").
 *
 * 12. Descriptions.  The "described" DB maps a cache key to the record
 *     below.  Records are small (the packed layout is the header's IFDs,
 *     1-4 KiB for a few bands) and written by the committer only: a
 *     REQ_DESCRIBE request carries one, and the committer writes every
 *     REQ_DESCRIBE it finds queued together in one write transaction
 *     (store_desc_batch), so describing a directory of a thousand
 *     rasters costs a few transactions, not a thousand fsyncs.  A record
 *     has no object file and takes no part in the size limit (eviction
 *     leaves it: the next read computes the same bytes again, of the size
 *     it says).  What removes records: gc (changed or removed sources, by
 *     the same rule as entries), clear, repair (undecodable ones), and the
 *     cap of RFS_STORE_DESC_MAX records (the oldest tenth goes when a
 *     batch finds more).  A crash loses at most the batch being written,
 *     which is described again on demand.  A record and the object of its
 *     key never disagree on the size: a batch does not write a record
 *     that says another size than the object already there, and a commit
 *     drops a record that says another size than the object it puts
 *     (store_desc_drop_other; another GDAL or rasterfs made one of
 *     them).  So `rasterfs cache verify` can hold them to it.
 *
 * Record (all integers little-endian):
 *   0 u16 version (1)  2 u16 0  4 u32 C canonical length  8 u32 S source
 *   length  12 u32 A absolute source length  16 u32 L layout length
 *   20 u32 0  24 u64 size  32 u64 stamp  40 i64 created_ns  48 u64 dev
 *   56 u64 ino  64 u64 source size  72 i64 source mtime_ns
 *   80 canonical, source, absolute source, layout (no NULs)
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lmdb.h>

#include "rasterfs/err.h"
#include "rasterfs/log.h"
#include "rasterfs/store.h"
#include "store_int.h"

#define DREC_VERSION 1
#define DREC_HEAD 80
#define MAX_LAYOUT (1u << 20)
#define MAX_STRING (1u << 20)

struct drec {
	uint64_t size, stamp;
	int64_t created_ns;
	struct rfs_src_id src;
	const char *canonical, *source, *source_abs;
	uint32_t canonical_len, source_len, source_abs_len;
	const unsigned char *layout;
	uint32_t layout_len;
};

static int drec_decode(const MDB_val *v, struct drec *d)
{
	const unsigned char *p = v->mv_data;

	if (v->mv_size < DREC_HEAD || get_le16(p) != DREC_VERSION ||
	    get_le16(p + 2) || get_le32(p + 20))
		return -1;
	d->canonical_len = get_le32(p + 4);
	d->source_len = get_le32(p + 8);
	d->source_abs_len = get_le32(p + 12);
	d->layout_len = get_le32(p + 16);
	if ((uint64_t)DREC_HEAD + d->canonical_len + d->source_len +
	    d->source_abs_len + d->layout_len != v->mv_size ||
	    d->layout_len == 0)
		return -1;
	d->size = get_le64(p + 24);
	d->stamp = get_le64(p + 32);
	d->created_ns = (int64_t)get_le64(p + 40);
	d->src.dev = get_le64(p + 48);
	d->src.ino = get_le64(p + 56);
	d->src.size = get_le64(p + 64);
	d->src.mtime_ns = (int64_t)get_le64(p + 72);
	d->canonical = (const char *)p + DREC_HEAD;
	d->source = d->canonical + d->canonical_len;
	d->source_abs = d->source + d->source_len;
	d->layout = (const unsigned char *)d->source_abs + d->source_abs_len;
	return 0;
}

static unsigned char *drec_encode(const struct commit_req *r, size_t *len)
{
	size_t c = strlen(r->canonical), s = strlen(r->source);
	size_t a = strlen(r->source_abs);
	unsigned char *p;

	*len = DREC_HEAD + c + s + a + r->layout_len;
	if (!(p = calloc(1, *len)))
		return NULL;
	put_le16(p, DREC_VERSION);
	put_le32(p + 4, (uint32_t)c);
	put_le32(p + 8, (uint32_t)s);
	put_le32(p + 12, (uint32_t)a);
	put_le32(p + 16, (uint32_t)r->layout_len);
	put_le64(p + 24, r->size);
	put_le64(p + 32, r->checksum);
	put_le64(p + 40, (uint64_t)now_ns());
	put_le64(p + 48, r->src.dev);
	put_le64(p + 56, r->src.ino);
	put_le64(p + 64, r->src.size);
	put_le64(p + 72, (uint64_t)r->src.mtime_ns);
	memcpy(p + DREC_HEAD, r->canonical, c);
	memcpy(p + DREC_HEAD + c, r->source, s);
	memcpy(p + DREC_HEAD + c + s, r->source_abs, a);
	memcpy(p + DREC_HEAD + c + s + a, r->layout, r->layout_len);
	return p;
}

/* ---- the face (store.h) ----------------------------------------------- */

int rfs_store_describe_put(rfs_store *st, const rfs_key *key,
			   const struct rfs_store_desc *d,
			   rfs_store_commit_cb cb, void *arg)
{
	struct commit_req *r;
	const char *source;
	size_t cl, sl, al;

	if (!st || !key || !d || !d->canonical || !d->layout ||
	    !d->layout_len)
		return -EINVAL;
	if (st->flags & RFS_STORE_RDONLY)
		return -EROFS;
	source = d->source ? d->source : "";
	cl = strlen(d->canonical);
	sl = strlen(source);
	al = st->source_root && sl && source[0] != '/' ?
	     strlen(st->source_root) + 1 + sl : 0;
	if (cl > MAX_STRING || sl > PATH_MAX || al > PATH_MAX ||
	    d->layout_len > MAX_LAYOUT)
		return -ENAMETOOLONG;
	if (!(r = malloc(sizeof(*r) + cl + sl + al + d->layout_len + 3)))
		return -ENOMEM;
	memset(r, 0, sizeof(*r));
	r->kind = REQ_DESCRIBE;
	r->key = *key;
	r->src = d->src;
	r->size = d->size;
	r->checksum = d->stamp;
	r->cb = cb;
	r->arg = arg;
	r->canonical = memcpy(r->buf, d->canonical, cl + 1);
	r->source = memcpy(r->buf + cl + 1, source, sl + 1);
	r->source_abs = r->buf + cl + sl + 2;
	if (al)
		sprintf(r->buf + cl + sl + 2, "%s/%s", st->source_root,
			source);
	else
		r->buf[cl + sl + 2] = '\0';
	r->layout = memcpy(r->buf + cl + sl + al + 3, d->layout,
			   d->layout_len);
	r->layout_len = d->layout_len;

	int rc = store_queue_push(st, r, 1);
	if (rc < 0)
		free(r);
	return rc;
}

int rfs_store_describe_get(rfs_store *st, const rfs_key *key,
			   const struct rfs_src_id *src, const char *canonical,
			   uint64_t stamp, uint64_t *size, void **layout,
			   size_t *len)
{
	MDB_val k = { sizeof(key->b), (void *)key->b }, v;
	size_t clen = strlen(canonical);
	MDB_txn *txn;
	struct drec d;
	int mrc, rc = 0;

	if (layout)
		*layout = NULL;
	if (!st->have_desc)
		return -ENOENT;
	mrc = store_txn_begin(st, MDB_RDONLY, &txn);
	if (mrc)
		return store_mdb_fail(st, "describe: begin", mrc);
	mrc = mdb_get(txn, st->dbi_desc, &k, &v);
	if (mrc == MDB_NOTFOUND || (!mrc && (drec_decode(&v, &d) ||
	    d.stamp != stamp || d.src.dev != src->dev ||
	    d.src.ino != src->ino || d.src.size != src->size ||
	    d.src.mtime_ns != src->mtime_ns || d.canonical_len != clen ||
	    memcmp(d.canonical, canonical, clen)))) {
		rc = -ENOENT;
	} else if (mrc) {
		rc = store_mdb_fail(st, "describe: get", mrc);
	} else {
		*size = d.size;
		if (layout && !(*layout = malloc(d.layout_len)))
			rc = -ENOMEM;
		else if (layout) {
			memcpy(*layout, d.layout, d.layout_len);
			*len = d.layout_len;
		}
	}
	store_txn_abort(st, txn);
	return rc;
}

int rfs_store_describe_count(rfs_store *st, uint64_t *n)
{
	MDB_txn *txn;
	MDB_stat ms;
	int mrc;

	*n = 0;
	if (!st->have_desc)
		return 0;
	mrc = store_txn_begin(st, MDB_RDONLY, &txn);
	if (mrc)
		return store_mdb_fail(st, "describe count: begin", mrc);
	mrc = mdb_stat(txn, st->dbi_desc, &ms);
	store_txn_abort(st, txn);
	if (mrc)
		return store_mdb_fail(st, "describe count", mrc);
	*n = ms.ms_entries;
	return 0;
}

/* ---- the committer's work --------------------------------------------- */

struct aged {
	int64_t created;
	rfs_key key;
};

static int aged_cmp(const void *a, const void *b)
{
	const struct aged *x = a, *y = b;

	if (x->created != y->created)
		return x->created < y->created ? -1 : 1;
	return memcmp(x->key.b, y->key.b, sizeof(x->key.b));
}

/* Over RFS_STORE_DESC_MAX records: drop the oldest tenth (note 12). */
static int desc_cap(rfs_store *st, MDB_txn *txn)
{
	MDB_cursor *cur = NULL;
	struct aged *a = NULL;
	MDB_stat ms;
	MDB_val k, v;
	size_t n = 0;
	int mrc = mdb_stat(txn, st->dbi_desc, &ms);

	if (mrc || ms.ms_entries <= RFS_STORE_DESC_MAX)
		return mrc;
	if (!(a = malloc(ms.ms_entries * sizeof(*a))))
		return ENOMEM;
	mrc = mdb_cursor_open(txn, st->dbi_desc, &cur);
	for (mrc = mrc ? mrc : mdb_cursor_get(cur, &k, &v, MDB_FIRST);
	     mrc == 0 && n < ms.ms_entries;
	     mrc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
		struct drec d;
		if (k.mv_size != sizeof(a->key.b))
			continue;
		a[n].created = drec_decode(&v, &d) ? 0 : d.created_ns;
		memcpy(a[n].key.b, k.mv_data, sizeof(a->key.b));
		n++;
	}
	if (cur)
		mdb_cursor_close(cur);
	if (mrc && mrc != MDB_NOTFOUND)
		goto out;
	mrc = 0;
	qsort(a, n, sizeof(*a), aged_cmp);
	for (size_t i = 0; i < n / 10 + 1 && i < n && !mrc; i++) {
		k.mv_size = sizeof(a[i].key.b);
		k.mv_data = a[i].key.b;
		mrc = mdb_del(txn, st->dbi_desc, &k, NULL);
		if (mrc == MDB_NOTFOUND)
			mrc = 0;
	}
	rfs_log(LOG_INFO, "store %s: over %d description records: dropped "
		"the oldest %zu", st->dir, RFS_STORE_DESC_MAX, n / 10 + 1);
out:
	free(a);
	return mrc;
}

int store_desc_batch(rfs_store *st, struct commit_req *const *r, size_t n)
{
	MDB_txn *txn;
	int mrc;

	store_maybe_grow(st);
	for (int attempt = 0;; attempt++) {
		mrc = store_txn_begin(st, 0, &txn);
		if (mrc)
			return mrc;
		for (size_t i = 0; i < n && !mrc; i++) {
			MDB_val k = { sizeof(r[i]->key.b), (void *)r[i]->key.b };
			MDB_val v;
			struct entry_rec e;
			size_t len;
			unsigned char *rec;

			/* The object, if it is there, has the last word: a
			 * record never says another size than its object
			 * (verify checks it).  Another size is an object of
			 * another GDAL or rasterfs. */
			if (mdb_get(txn, st->dbi_entries, &k, &v) == 0 &&
			    store_rec_decode(&v, &e) == 0 &&
			    store_rec_matches(&e, &r[i]->src,
					      r[i]->canonical) &&
			    e.size != r[i]->size)
				continue;
			rec = drec_encode(r[i], &len);

			if (!rec) {
				mrc = ENOMEM;
				break;
			}
			v.mv_size = len;
			v.mv_data = rec;
			mrc = mdb_put(txn, st->dbi_desc, &k, &v, 0);
			free(rec);
		}
		if (!mrc)
			mrc = desc_cap(st, txn);
		if (mrc) {
			store_txn_abort(st, txn);
		} else {
			mrc = store_txn_commit(st, txn);
		}
		/* note 9: grow and redo */
		if (mrc == MDB_MAP_FULL && attempt < 8 &&
		    store_grow_map(st) == 0)
			continue;
		return mrc;
	}
}

int store_desc_drop_other(rfs_store *st, MDB_txn *txn, const rfs_key *key,
			  uint64_t size)
{
	MDB_val k = { sizeof(key->b), (void *)key->b }, v;
	struct drec d;
	int mrc;

	if (!st->have_desc)
		return 0;
	mrc = mdb_get(txn, st->dbi_desc, &k, &v);
	if (mrc)
		return mrc == MDB_NOTFOUND ? 0 : mrc;
	if (drec_decode(&v, &d) == 0 && d.size == size)
		return 0;
	rfs_log(LOG_INFO, "store %s: a description said %llu bytes, the "
		"object committed has %llu (made by another version?): "
		"description dropped", st->dir, (unsigned long long)d.size,
		(unsigned long long)size);
	return mdb_del(txn, st->dbi_desc, &k, NULL);
}

int store_desc_repair(rfs_store *st, MDB_txn *txn, unsigned *dropped)
{
	MDB_cursor *cur;
	MDB_val k, v;
	int mrc = mdb_cursor_open(txn, st->dbi_desc, &cur);

	for (mrc = mrc ? mrc : mdb_cursor_get(cur, &k, &v, MDB_FIRST);
	     mrc == 0; mrc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
		struct drec d;
		if (k.mv_size == sizeof(((rfs_key *)0)->b) &&
		    drec_decode(&v, &d) == 0)
			continue;
		mrc = mdb_cursor_del(cur, 0);
		if (mrc)
			break;
		(*dropped)++;
	}
	mdb_cursor_close(cur);
	return mrc == MDB_NOTFOUND ? 0 : mrc;
}

int store_desc_gc(rfs_store *st, int (*changed)(const char *abs, size_t len,
						const struct rfs_src_id *id),
		  uint64_t *dropped)
{
	struct keylist garbage = { 0 };
	MDB_cursor *cur = NULL;
	MDB_txn *txn;
	MDB_val k, v;
	int mrc;

	mrc = store_txn_begin(st, MDB_RDONLY, &txn);
	if (mrc)
		return mrc;
	mrc = mdb_cursor_open(txn, st->dbi_desc, &cur);
	for (mrc = mrc ? mrc : mdb_cursor_get(cur, &k, &v, MDB_FIRST);
	     mrc == 0; mrc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
		struct drec d;
		rfs_key key;

		if (k.mv_size != sizeof(key.b) || drec_decode(&v, &d) ||
		    !d.source_abs_len ||
		    !changed(d.source_abs, d.source_abs_len, &d.src))
			continue;
		memcpy(key.b, k.mv_data, sizeof(key.b));
		if (store_keylist_add(&garbage, &key)) {
			mrc = ENOMEM;
			break;
		}
	}
	if (cur)
		mdb_cursor_close(cur);
	store_txn_abort(st, txn);
	if (mrc != MDB_NOTFOUND)
		goto out;
	mrc = 0;
	if (!garbage.n)
		goto out;
	store_maybe_grow(st);
	mrc = store_txn_begin(st, 0, &txn);
	if (mrc)
		goto out;
	for (size_t i = 0; i < garbage.n && !mrc; i++) {
		k.mv_size = sizeof(garbage.k[i].b);
		k.mv_data = garbage.k[i].b;
		mrc = mdb_del(txn, st->dbi_desc, &k, NULL);
		if (mrc == MDB_NOTFOUND)
			mrc = 0;
	}
	if (mrc)
		store_txn_abort(st, txn);
	else if (!(mrc = store_txn_commit(st, txn)))
		*dropped = garbage.n;
out:
	free(garbage.k);
	return mrc;
}

int store_desc_verify(rfs_store *st, MDB_txn *txn,
		      void (*fn)(void *arg, enum rfs_store_problem kind,
				 const char *what, const char *detail),
		      void *arg, uint64_t *n, uint64_t *problems)
{
	MDB_cursor *cur;
	MDB_val k, v;
	int mrc = mdb_cursor_open(txn, st->dbi_desc, &cur);

	for (mrc = mrc ? mrc : mdb_cursor_get(cur, &k, &v, MDB_FIRST);
	     mrc == 0; mrc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
		char hex[RFS_KEY_HEX], detail[160];
		struct entry_rec e;
		struct drec d;
		MDB_val ev;
		rfs_key key;

		(*n)++;
		if (k.mv_size != sizeof(key.b) || drec_decode(&v, &d)) {
			(*problems)++;
			if (fn)
				fn(arg, RFS_PROBLEM_DESCRIBED, "index",
				   "a description record cannot be decoded");
			continue;
		}
		memcpy(key.b, k.mv_data, sizeof(key.b));
		/* An object of the same key and key material has the size
		 * described: the committer keeps them so (note 12). */
		if (mdb_get(txn, st->dbi_entries, &k, &ev) != 0 ||
		    store_rec_decode(&ev, &e) != 0 ||
		    e.src.dev != d.src.dev || e.src.ino != d.src.ino ||
		    e.src.size != d.src.size ||
		    e.src.mtime_ns != d.src.mtime_ns ||
		    e.canonical_len != d.canonical_len ||
		    memcmp(e.canonical, d.canonical, d.canonical_len) ||
		    e.size == d.size)
			continue;
		(*problems)++;
		rfs_key_hex(&key, hex);
		snprintf(detail, sizeof(detail), "described with %llu bytes, "
			 "its object has %llu", (unsigned long long)d.size,
			 (unsigned long long)e.size);
		if (fn)
			fn(arg, RFS_PROBLEM_DESCRIBED, hex, detail);
	}
	mdb_cursor_close(cur);
	return mrc == MDB_NOTFOUND ? 0 : mrc;
}
