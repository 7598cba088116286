/* commit.c - the commit of one object: check, place, index.
 *
 *  2. Commit order.  An object reaches the store in this order:
 *       a. write     the worker writes scratch/<pid>/w<slot>/<file>
 *       b. fsync     the worker fsyncs it (the store never rewrites it)
 *       b'. verify   verify_scratch(): the file has the size and XXH3-64
 *                    the worker reported (a write that fell short, on a
 *                    full disk say, fails the job instead of entering the
 *                    store); it is made 0600 (note 11)
 *       c. rename    store_commit_one(): into objects/<xx>/<hex>.tif
 *       d. fsync dir store_commit_one(): the shard directory (and objects/
 *                    when the shard was just made)
 *       e. LMDB txn  store_commit_one(): entry + counters, one write
 *                    transaction
 *     So a durable index entry always names a durable file of the right
 *     size.  The write transaction is begun before (c) and its lookup of
 *     the key decides "already committed", so two mounts committing one
 *     key cannot both rename; nothing of it is durable before (e).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <lmdb.h>

#include "rasterfs/err.h"
#include "rasterfs/log.h"
#include "rasterfs/store.h"
#include "store_int.h"

/* ---- the commit of one object (note 2) -------------------------------- */

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

	a = store_atimes_take(st, &na);
	mrc = a ? store_atimes_apply(st, txn, a, na) : 0;
	free(a);
	if (!mrc)
		mrc = store_counters_get(st, txn, &objects, &bytes);
	if (mrc)
		return mrc;
	if (alen) {
		store_bysrc_key(r->source_abs, alen, r->canonical, clen, h);
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
			    store_rec_decode(&ov, &e) == 0 &&
			    e.source_abs_len == alen &&
			    !memcmp(e.source_abs, r->source_abs, alen) &&
			    e.canonical_len == clen &&
			    !memcmp(e.canonical, r->canonical, clen) &&
			    !store_rec_matches(&e, &r->src, r->canonical)) {
				rfs_log(LOG_INFO, "store %s: %s changed; "
					"dropping the output of its old version",
					st->dir, r->source);
				mrc = store_entry_drop(st, txn, &old, &objects,
						       &bytes, gone);
			}
		} else if (mrc == MDB_NOTFOUND) {
			mrc = 0;
		}
		if (mrc)
			return mrc;
	}
	if (st->limit && bytes + size > st->limit) {
		mrc = store_evict(st, txn, store_evict_target(st->limit, size),
				  &objects, &bytes, gone, NULL, NULL);
		if (mrc)
			return mrc;
		if (size > st->limit)
			rfs_log(LOG_WARNING, "store %s: an output of %llu bytes "
				"is larger than cache_size=%llu; it is kept "
				"until the next commit", st->dir,
				(unsigned long long)size,
				(unsigned long long)st->limit);
	}
	rec = store_rec_encode(r, size, now_ns(), &reclen);
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
		mrc = store_counters_put(st, txn, objects + 1, bytes + size);
	if (!mrc)
		mrc = store_desc_drop_other(st, txn, &r->key, size);
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
	struct statvfs sv;
	uint64_t total, sum;
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
	rc = store_hash_fd(fd, buf, bufsz, &total, &sum);
	if (rc)
		goto out;
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
int store_commit_one(rfs_store *st, const struct commit_req *r)
{
	char rel[64], shard[16];
	MDB_txn *txn = NULL;
	MDB_val k = { sizeof(r->key.b), (void *)r->key.b }, v;
	struct keylist gone = { 0 };
	struct stat sb;
	int rc = 0, mrc, placed = 0, locked = 0;

	store_object_rel(&r->key, rel, sizeof(rel));
	snprintf(shard, sizeof(shard), "%.10s", rel); /* "objects/ab" */

	rc = store_flock_retry(st->lock_fd, LOCK_SH);
	if (rc)
		goto out;
	locked = 1;
	store_maybe_grow(st);
	for (int attempt = 0;; attempt++) {
		mrc = store_txn_begin(st, 0, &txn);
		if (mrc) {
			txn = NULL;
			rc = store_mdb_fail(st, "commit: begin", mrc);
			goto out;
		}
		mrc = mdb_get(txn, st->dbi_entries, &k, &v);
		if (mrc == 0) {
			struct entry_rec e;

			if (store_rec_decode(&v, &e) == 0 &&
			    store_rec_matches(&e, &r->src, r->canonical)) {
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
			rc = store_mdb_fail(st, "commit: look up", mrc);
			goto out;
		}

		if (!placed) {
			rc = verify_scratch(st, r, &sb);
			if (rc)
				goto out;
			if (mkdirat(st->dir_fd, shard, 0700) == 0) {
				rc = store_fsync_dir_at(st->dir_fd, "objects");
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
			rc = store_fsync_dir_at(st->dir_fd, shard);
			if (rc)
				goto out;
		}

		mrc = index_put(st, txn, r, (uint64_t)sb.st_size, &gone);
		if (!mrc) {
			mrc = store_txn_commit(st, txn);
			txn = NULL;
		}
		if (mrc == MDB_MAP_FULL && attempt < 8) {
			/* Note 9: grow and redo the transaction. */
			if (txn)
				store_txn_abort(st, txn);
			txn = NULL;
			gone.n = 0;
			if (store_grow_map(st) == 0)
				continue;
		}
		if (mrc)
			rc = store_mdb_fail(st, "commit", mrc);
		break;
	}
out:
	if (txn)
		store_txn_abort(st, txn);
	if (placed && rc)
		unlinkat(st->dir_fd, rel, 0);
	else if (!placed)
		unlink(r->scratch_file);
	if (!rc)
		store_unlink_gone(st, &gone);
	if (locked)
		store_flock_retry(st->lock_fd, LOCK_UN);
	free(gone.k);
	if (rc < 0 && !rfs_err_is_rfs(rc))
		rc = rfs_err_from_store_errno(-rc);
	return rc;
}
