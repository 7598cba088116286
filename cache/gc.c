/* gc.c - reclaiming on request: outputs of changed sources (gc), all of
 * them (clear).
 *
 * 10. Changed sources.  Entries record root/source, the absolute source
 *     path (rfs_store_options.source_root).  The "bysrc" DB maps a hash of
 *     (absolute path, canonical chain) to the key last committed for it, so
 *     the commit of a changed source drops the entry of its old identity in
 *     the same transaction.  rfs_store_gc() stats every recorded path and
 *     drops entries whose source has another identity now, or was removed
 *     from a directory that still exists.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
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

/* Has the source at abs (len bytes) another identity than id now, or
 * was it removed from a directory that still exists (note 10)? */
static int source_changed(const char *abs, size_t len,
			  const struct rfs_src_id *id)
{
	char path[PATH_MAX];
	struct rfs_src_id now;
	struct stat sb;

	if (len >= sizeof(path))
		return 0;
	memcpy(path, abs, len);
	path[len] = '\0';
	if (stat(path, &sb) == 0) {
		rfs_src_id_from_stat(&now, &sb);
		return !(S_ISREG(sb.st_mode) && now.dev == id->dev &&
			 now.ino == id->ino && now.size == id->size &&
			 now.mtime_ns == id->mtime_ns);
	}
	return errno == ENOENT && parent_exists(path);
}

/* rfs_store_gc's work, on the committer. */
int store_gc_run(rfs_store *st, uint64_t limit,
		 struct rfs_store_gc_report *rep)
{
	struct keylist garbage = { 0 }, gone = { 0 };
	uint64_t hashes = 0;
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
	mrc = store_txn_begin(st, MDB_RDONLY, &txn);
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

		if (k.mv_size != sizeof(key.b) || store_rec_decode(&v, &e) ||
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
		if (store_keylist_add(&garbage, &key)) {
			mrc = ENOMEM;
			break;
		}
		rep->changed_bytes += e.size;
	}
	if (cur)
		mdb_cursor_close(cur);
	store_txn_abort(st, txn);
	if (mrc != MDB_NOTFOUND)
		goto out;
	mrc = 0;

	/* 2. Drop them in one write transaction. */
	if (garbage.n) {
		store_maybe_grow(st);
		mrc = store_txn_begin(st, 0, &txn);
		if (mrc)
			goto out;
		mrc = store_counters_get(st, txn, &objects, &bytes);
		for (size_t i = 0; !mrc && i < garbage.n; i++)
			mrc = store_entry_drop(st, txn, &garbage.k[i], &objects,
					       &bytes, &gone);
		if (!mrc)
			mrc = store_counters_put(st, txn, objects, bytes);
		if (mrc) {
			store_txn_abort(st, txn);
			goto out;
		}
		mrc = store_txn_commit(st, txn);
		if (mrc)
			goto out;
		store_unlink_gone(st, &gone);
		rep->changed = gone.n;
	}

	/* 3. The description records of changed sources (desc.c). */
	mrc = store_desc_gc(st, source_changed, &rep->descriptions);
	if (mrc)
		goto out;

	/* 4. Evict to the limit. */
	if (limit)
		mrc = store_evict_now(st, limit, &rep->evicted,
				      &rep->evicted_bytes);
	if (mrc)
		goto out;

	/* The content hashes of changed sources (content.c, note 12). */
	mrc = store_content_gc(st, source_changed, &hashes);
	if (!mrc && hashes)
		rfs_log(LOG_INFO, "store %s: dropped %llu content hashes of "
			"changed or removed sources", st->dir,
			(unsigned long long)hashes);
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

	rc = store_opendir_at(st->dir_fd, "scratch", 0, &d);
	if (rc)
		return rc == -ENOENT ? 0 : rc;
	fd = dirfd(d);
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
int store_clear_run(rfs_store *st, uint64_t *removed, long *pid)
{
	MDB_txn *txn = NULL;
	uint64_t objects = 0, bytes;
	DIR *d = NULL;
	struct dirent *de;
	int rc, mrc;

	rc = store_flock_retry(st->lock_fd, LOCK_EX);
	if (rc)
		return rc;
	rc = store_users(st, pid);
	if (rc)
		goto out;
	mrc = store_txn_begin(st, 0, &txn);
	if (!mrc)
		mrc = store_counters_get(st, txn, &objects, &bytes);
	if (!mrc)
		mrc = mdb_drop(txn, st->dbi_entries, 0);
	if (!mrc)
		mrc = mdb_drop(txn, st->dbi_bysrc, 0);
	if (!mrc)
		mrc = mdb_drop(txn, st->dbi_desc, 0);
	if (!mrc)
		mrc = store_counters_put(st, txn, 0, 0);
	if (mrc) {
		if (txn)
			store_txn_abort(st, txn);
		rc = store_mdb_fail(st, "clear", mrc);
		goto out;
	}
	mrc = store_txn_commit(st, txn);
	if (mrc) {
		rc = store_mdb_fail(st, "clear: commit", mrc);
		goto out;
	}
	*removed = objects;
	/* No entry names them now; what a crash leaves here, repair takes. */
	if (store_opendir_at(st->dir_fd, "objects", 0, &d))
		goto out;
	while ((de = readdir(d))) {
		if (store_is_shard(de->d_name)) {
			int r = store_remove_tree_at(dirfd(d), de->d_name);

			if (r && !rc)
				rc = r;
		}
	}
	closedir(d);
out:
	store_flock_retry(st->lock_fd, LOCK_UN);
	return rc;
}

int rfs_store_gc(rfs_store *st, uint64_t limit,
		 struct rfs_store_gc_report *rep)
{
	struct sync_req s = { 0 };
	int rc;

	memset(rep, 0, sizeof(*rep));
	s.limit = limit;
	s.gc = rep;
	rc = store_run_sync(st, REQ_GC, &s);
	if (!rc)
		rc = rfs_store_stats(st, &rep->objects, &rep->bytes);
	return rc;
}

int rfs_store_clear(rfs_store *st, uint64_t *removed, long *pid)
{
	struct sync_req s = { 0 };
	int rc;

	rc = store_run_sync(st, REQ_CLEAR, &s);
	if (removed)
		*removed = s.removed;
	if (pid)
		*pid = s.pid;
	return rc;
}
