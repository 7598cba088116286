/* repair.c - startup repair: what a crash or a hand behind our back left.
 *
 *  3. What a crash leaves, and who repairs it (store_repair(), at the next
 *     open):
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

/* ---- startup repair (committer thread, store.lock held LOCK_EX) ------- */

/* Remove scratch/<name> dirs whose lock nobody holds: their owner is dead
 * (or never got as far as locking, which happens under store.lock). */
static int repair_scratch(rfs_store *st, struct repair_report *rep)
{
	struct dirent *de;
	DIR *d;
	int fd, rc;

	rc = store_opendir_at(st->dir_fd, "scratch", 0, &d);
	if (rc)
		return rc;
	fd = dirfd(d);
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
			r = store_remove_tree_at(fd, n);
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
	struct keylist drop = { 0 };
	int mrc, rc = 0;

	store_maybe_grow(st);
	mrc = store_txn_begin(st, 0, &txn);
	if (mrc)
		return store_mdb_fail(st, "repair: begin", mrc);
	mrc = mdb_dbi_open(txn, "entries", MDB_CREATE, &st->dbi_entries);
	if (!mrc)
		mrc = mdb_dbi_open(txn, "meta", MDB_CREATE, &st->dbi_meta);
	if (!mrc)
		mrc = mdb_dbi_open(txn, "bysrc", MDB_CREATE, &st->dbi_bysrc);
	if (!mrc)
		mrc = mdb_dbi_open(txn, "described", MDB_CREATE,
				   &st->dbi_desc);
	if (!mrc) {
		unsigned bad = 0;
		/* desc.c note 12: undecodable description records */
		mrc = store_desc_repair(st, txn, &bad);
		if (bad)
			rfs_log(LOG_WARNING, "store %s: dropped %u description "
				"records that cannot be read", st->dir, bad);
	}
	if (!mrc)
		mrc = mdb_cursor_open(txn, st->dbi_entries, &cur);
	if (mrc) {
		rc = store_mdb_fail(st, "repair: open databases", mrc);
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
			store_object_rel(&key, rel, sizeof(rel));
			if (store_rec_decode(&v, &e) < 0)
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
		if (store_keylist_add(&drop, &key)) {
			rc = -ENOMEM;
			goto out;
		}
	}
	if (mrc != MDB_NOTFOUND) {
		rc = store_mdb_fail(st, "repair: scan index", mrc);
		goto out;
	}
	mdb_cursor_close(cur);
	cur = NULL;
	for (size_t i = 0; i < drop.n; i++) {
		k.mv_size = sizeof(drop.k[i].b);
		k.mv_data = drop.k[i].b;
		mrc = mdb_del(txn, st->dbi_entries, &k, NULL);
		if (mrc) {
			rc = store_mdb_fail(st, "repair: delete entry", mrc);
			goto out;
		}
		rep->dangling++;
	}
	mrc = store_counters_put(st, txn, rep->objects, rep->bytes);
	if (!mrc && st->limit)
		mrc = store_limit_put(st, txn, st->limit);
	if (mrc) {
		rc = store_mdb_fail(st, "repair: counters", mrc);
		goto out;
	}
	mrc = store_txn_commit(st, txn);
	txn = NULL;
	if (mrc)
		rc = store_mdb_fail(st, "repair: commit", mrc);
	else
		st->have_dbs = st->have_desc = 1;
out:
	if (cur)
		mdb_cursor_close(cur);
	if (txn)
		store_txn_abort(st, txn);
	free(drop.k);
	return rc;
}

/* In one shard dir: remove *.tmp and every <hex>.tif no entry names. */
static int repair_shard(rfs_store *st, MDB_txn *txn, int objfd,
			const char *shard, struct repair_report *rep)
{
	struct dirent *de;
	DIR *d;
	int fd, rc;

	rc = store_opendir_at(objfd, shard, O_NOFOLLOW, &d);
	if (rc)
		return rc == -ENOENT ? 0 : rc;
	fd = dirfd(d);
	while ((de = readdir(d))) {
		const char *n = de->d_name;
		size_t len = strlen(n);
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
		if (!store_object_name(shard, n, &key)) {
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
			rc = store_mdb_fail(st, "repair: look up object", mrc);
			break;
		}
		if (unlinkat(fd, n, 0) == 0) {
			rfs_log(LOG_INFO, "store %s: removed unindexed object "
				"%.32s", st->dir, n);
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

	rc = store_opendir_at(st->dir_fd, "objects", 0, &d);
	if (rc)
		return rc;
	fd = dirfd(d);
	mrc = store_txn_begin(st, MDB_RDONLY, &txn);
	if (mrc) {
		txn = NULL;
		rc = store_mdb_fail(st, "repair: begin read", mrc);
		goto out;
	}
	while ((de = readdir(d))) {
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		if (!store_is_shard(de->d_name)) {
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
		store_txn_abort(st, txn);
	closedir(d);
	return rc;
}

int store_repair(rfs_store *st, struct repair_report *rep)
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
