/* test_store_maint.c - the cache store's upkeep against real LMDB in a
 * temporary dir: the size limit and eviction, access times, map growth,
 * changed sources and gc, verify and clear, private directories, the
 * default directory.
 *
 * Oracles: object bytes and checksums are compared with what the test
 * wrote; eviction order with the access times the test made; verify's
 * findings with the damage the test planted. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <lmdb.h>

#include "rasterfs/err.h"
#include "rasterfs/store.h"
#include "test_store.h"


/* ---- limit, eviction, access times ------------------------------------ */

static void commit_n(rfs_store *st, const char *sdir, unsigned i, size_t len,
		     const struct rfs_src_id *src, rfs_key *k)
{
	struct rfs_store_meta m;
	char canon[64], file[600], name[32];

	pathf(canon, sizeof(canon), "c%u", i);
	pathf(name, sizeof(name), "o%u", i);
	rfs_key_make(k, src, canon);
	make_meta(&m, src, canon, len, i);
	write_file(sdir, name, len, i, file, sizeof(file));
	REQUIRE_RC(commit_wait(st, k, file, &m), 0);
}

static int hit(rfs_store *st, const rfs_key *k, const struct rfs_src_id *src,
	       unsigned i)
{
	char canon[64];

	pathf(canon, sizeof(canon), "c%u", i);
	return rfs_store_lookup(st, k, src, canon, NULL) == 0;
}

static unsigned problems_seen[16];

static void count_problem(void *arg, enum rfs_store_problem kind,
			  const char *what, const char *detail)
{
	(void)arg;
	(void)what;
	(void)detail;
	problems_seen[kind]++;
}

static uint64_t verify_problems(const char *dir)
{
	struct rfs_store_options o = { .flags = RFS_STORE_RDONLY };
	struct rfs_store_verify_report rep;
	rfs_store *st;

	memset(problems_seen, 0, sizeof(problems_seen));
	REQUIRE_RC(rfs_store_open_opts(dir, &o, &st), 0);
	REQUIRE_RC(rfs_store_verify(st, count_problem, NULL, &rep), 0);
	rfs_store_close(st);
	return rep.problems;
}

static void test_evict(const char *dir)
{
	const size_t len = 10000;
	struct rfs_store_options o = { .limit = 100000 };
	rfs_store *st;
	rfs_key k[30];
	char sdir[512];
	uint64_t objs, bytes;
	int fd8, fd;

	REQUIRE_RC(rfs_store_open_opts(dir, &o, &st), 0);
	REQUIRE(rfs_store_limit(st) == 100000);
	REQUIRE_RC(rfs_store_scratch_dir(st, 0, sdir, sizeof(sdir)), 0);
	for (unsigned i = 0; i < 10; i++)
		commit_n(st, sdir, i, len, &src_a, &k[i]);
	REQUIRE_RC(rfs_store_stats(st, &objs, &bytes), 0);
	REQUIRE(objs == 10 && bytes == 100000); /* at the limit, not over */
	/* Read 0..4: they become the most recently used. */
	for (unsigned i = 0; i < 5; i++) {
		fd = rfs_store_open_object(st, &k[i]);
		REQUIRE(fd >= 0);
		close(fd);
	}
	REQUIRE_RC(rfs_store_flush(st), 0);
	fd8 = rfs_store_open_object(st, &k[8]); /* a reader holds 8 open */
	REQUIRE(fd8 >= 0);
	/* Over the limit: down to 90% less the newcomer, least read first:
	 * 100000 -> 80000 before the newcomer: 5 and 6 go, 7..9 stay. */
	commit_n(st, sdir, 10, len, &src_a, &k[10]);
	REQUIRE_RC(rfs_store_stats(st, &objs, &bytes), 0);
	REQUIRE(bytes == 90000 && objs == 9);
	for (unsigned i = 0; i < 5; i++)
		REQUIRE(hit(st, &k[i], &src_a, i));
	for (unsigned i = 5; i < 7; i++)
		REQUIRE(!hit(st, &k[i], &src_a, i));
	for (unsigned i = 7; i < 10; i++)
		REQUIRE(hit(st, &k[i], &src_a, i));
	REQUIRE(hit(st, &k[10], &src_a, 10));
	/* More commits: the limit holds after every one, and 8 goes while
	 * its reader still reads the old bytes from its fd. */
	for (unsigned i = 11; i < 30; i++) {
		commit_n(st, sdir, i, len, &src_a, &k[i]);
		REQUIRE_RC(rfs_store_stats(st, &objs, &bytes), 0);
		REQUIRE(bytes <= 100000);
	}
	REQUIRE(!hit(st, &k[8], &src_a, 8));
	REQUIRE(fd_matches(fd8, len, 8));
	close(fd8);
	rfs_store_close(st);
	REQUIRE(verify_problems(dir) == 0);

	/* A smaller limit at the next open evicts at once. */
	o.limit = 30000;
	REQUIRE_RC(rfs_store_open_opts(dir, &o, &st), 0);
	REQUIRE_RC(rfs_store_stats(st, &objs, &bytes), 0);
	REQUIRE(bytes <= 30000);
	{
		uint64_t rl;

		REQUIRE_RC(rfs_store_recorded_limit(st, &rl), 0);
		REQUIRE(rl == 30000);
	}
	rfs_store_close(st);
	REQUIRE(verify_problems(dir) == 0);
}

/* rfs_store_drop: the named entries and their files go, in the
 * background, after what was queued before; the others stay; a missing
 * key is skipped; an open object keeps its bytes. */
static void test_drop(const char *dir)
{
	const size_t len = 5000;
	rfs_store *st;
	rfs_key k[5], missing;
	char sdir[512], path[1024];
	uint64_t objs, bytes;

	REQUIRE_RC(rfs_store_open(dir, &st), 0);
	REQUIRE_RC(rfs_store_scratch_dir(st, 0, sdir, sizeof(sdir)), 0);
	for (unsigned i = 0; i < 5; i++)
		commit_n(st, sdir, i, len, &src_a, &k[i]);
	rfs_key_make(&missing, &src_a, "never");
	int fd1 = rfs_store_open_object(st, &k[1]);
	REQUIRE(fd1 >= 0);
	rfs_key drop[4] = { k[1], missing, k[3], k[4] };
	REQUIRE_RC(rfs_store_drop(st, drop, 4), 0);
	REQUIRE_RC(rfs_store_drop(st, NULL, 0), 0);
	REQUIRE_RC(rfs_store_drop(st, NULL, 2), -EINVAL);
	REQUIRE_RC(rfs_store_flush(st), 0); /* queued after the drop */
	REQUIRE(hit(st, &k[0], &src_a, 0) && hit(st, &k[2], &src_a, 2));
	REQUIRE(!hit(st, &k[1], &src_a, 1) && !hit(st, &k[3], &src_a, 3) &&
		!hit(st, &k[4], &src_a, 4));
	REQUIRE_RC(rfs_store_stats(st, &objs, &bytes), 0);
	REQUIRE(objs == 2 && bytes == 2 * len);
	rfs_store_object_path(st, &k[3], path, sizeof(path));
	REQUIRE(access(path, F_OK) < 0 && errno == ENOENT);
	REQUIRE(fd_matches(fd1, len, 1));
	close(fd1);
	rfs_store_close(st);
	REQUIRE(verify_problems(dir) == 0);
}

static void test_sizes(void)
{
	uint64_t v;

	REQUIRE_RC(rfs_store_parse_size("20G", &v), 0);
	REQUIRE(v == 20ULL << 30);
	REQUIRE_RC(rfs_store_parse_size("500M", &v), 0);
	REQUIRE(v == 500ULL << 20);
	REQUIRE_RC(rfs_store_parse_size("1048576", &v), 0);
	REQUIRE(v == 1048576);
	REQUIRE_RC(rfs_store_parse_size("2MiB", &v), 0);
	REQUIRE(v == 2ULL << 20);
	REQUIRE_RC(rfs_store_parse_size("0", &v), -EINVAL);
	REQUIRE_RC(rfs_store_parse_size("-5G", &v), -EINVAL);
	REQUIRE_RC(rfs_store_parse_size("5X", &v), -EINVAL);
	REQUIRE_RC(rfs_store_parse_size("99999999999T", &v), -EINVAL);
	REQUIRE_RC(rfs_store_default_limit("/tmp", &v), 0);
	REQUIRE(v > 0 && v <= 50ULL << 30);
}

/* A tiny first map: commits grow it instead of failing MDB_MAP_FULL. */
static void test_map_growth(const char *dir)
{
	struct rfs_store_options o = { .map_size = 64 << 10 };
	struct rfs_store_meta m;
	rfs_store *st;
	char sdir[512], file[600], canon[1100];
	static rfs_key k[400];
	uint64_t objs;

	REQUIRE_RC(rfs_store_open_opts(dir, &o, &st), 0);
	REQUIRE_RC(rfs_store_scratch_dir(st, 0, sdir, sizeof(sdir)), 0);
	memset(canon, 'x', 1000);
	for (unsigned i = 0; i < 400; i++) {
		snprintf(canon + 1000, 100, "%u", i);
		rfs_key_make(&k[i], &src_a, canon);
		make_meta(&m, &src_a, canon, 1, i);
		write_file(sdir, "f", 1, i, file, sizeof(file));
		if (commit_wait(st, &k[i], file, &m))
			fail(__FILE__, __LINE__, "commit %u failed", i);
	}
	REQUIRE_RC(rfs_store_stats(st, &objs, NULL), 0);
	REQUIRE(objs == 400);
	rfs_store_close(st);
	/* Reopened with the small size: LMDB takes the file's size. */
	REQUIRE_RC(rfs_store_open_opts(dir, &o, &st), 0);
	for (unsigned i = 0; i < 400; i += 37) {
		snprintf(canon + 1000, 100, "%u", i);
		REQUIRE_RC(rfs_store_lookup(st, &k[i], &src_a, canon, NULL), 0);
	}
	rfs_store_close(st);
	REQUIRE(verify_problems(dir) == 0);
}

/* A changed source: its old output goes at the next commit of the same
 * path and chain, and gc finds changed and removed sources. */
static void test_changed_source(const char *dir, const char *srcroot)
{
	struct rfs_store_options o = { .source_root = srcroot };
	struct rfs_store_gc_report gr;
	struct rfs_store_meta m;
	struct rfs_src_id id1, id2, id3;
	struct stat sb;
	rfs_store *st;
	rfs_key k1, k2, k3;
	char sdir[512], file[600], path[600];
	uint64_t objs;
	int fd;

	REQUIRE(mkdir(srcroot, 0755) == 0);
	write_file(srcroot, "a.tif", 100, 1, path, sizeof(path));
	REQUIRE(stat(path, &sb) == 0);
	rfs_src_id_from_stat(&id1, &sb);
	REQUIRE_RC(rfs_store_open_opts(dir, &o, &st), 0);
	REQUIRE_RC(rfs_store_scratch_dir(st, 0, sdir, sizeof(sdir)), 0);
	rfs_key_make(&k1, &id1, canon_a);
	make_meta(&m, &id1, canon_a, 500, 11);
	m.source = "a.tif";
	write_file(sdir, "o", 500, 11, file, sizeof(file));
	REQUIRE_RC(commit_wait(st, &k1, file, &m), 0);
	fd = rfs_store_open_object(st, &k1); /* a read under way */
	REQUIRE(fd >= 0);

	/* Rewrite the source: a new identity, a new key. */
	write_file(srcroot, "a.tif", 200, 2, path, sizeof(path));
	REQUIRE(stat(path, &sb) == 0);
	rfs_src_id_from_stat(&id2, &sb);
	rfs_key_make(&k2, &id2, canon_a);
	REQUIRE(memcmp(&k1, &k2, sizeof(k1)) != 0);
	make_meta(&m, &id2, canon_a, 600, 12);
	m.source = "a.tif";
	write_file(sdir, "o", 600, 12, file, sizeof(file));
	REQUIRE_RC(commit_wait(st, &k2, file, &m), 0);
	REQUIRE_RC(rfs_store_lookup(st, &k1, &id1, canon_a, NULL), -ENOENT);
	REQUIRE_RC(rfs_store_lookup(st, &k2, &id2, canon_a, NULL), 0);
	REQUIRE_RC(rfs_store_stats(st, &objs, NULL), 0);
	REQUIRE(objs == 1);
	REQUIRE(fd_matches(fd, 500, 11)); /* the old bytes, to the end */
	close(fd);

	/* gc: a changed source (rewritten behind the mount's back) and a
	 * removed one go; one whose directory is gone stays. */
	write_file(srcroot, "b.tif", 100, 3, path, sizeof(path));
	REQUIRE(stat(path, &sb) == 0);
	rfs_src_id_from_stat(&id3, &sb);
	rfs_key_make(&k3, &id3, canon_a);
	make_meta(&m, &id3, canon_a, 700, 13);
	m.source = "b.tif";
	write_file(sdir, "o", 700, 13, file, sizeof(file));
	REQUIRE_RC(commit_wait(st, &k3, file, &m), 0);
	{
		rfs_key k4;
		struct rfs_src_id id4 = { 9, 9, 9, 9 };

		rfs_key_make(&k4, &id4, canon_a);
		make_meta(&m, &id4, canon_a, 10, 14);
		m.source = "gone/c.tif"; /* srcroot/gone does not exist */
		write_file(sdir, "o", 10, 14, file, sizeof(file));
		REQUIRE_RC(commit_wait(st, &k4, file, &m), 0);
	}
	write_file(srcroot, "a.tif", 300, 4, path, sizeof(path));
	REQUIRE(unlink(path) == 0 || 1);
	pathf(path, sizeof(path), "%s/b.tif", srcroot);
	REQUIRE(unlink(path) == 0);
	REQUIRE_RC(rfs_store_gc(st, 0, &gr), 0);
	REQUIRE(gr.changed == 2 && gr.changed_bytes == 600 + 700);
	REQUIRE(gr.objects == 1 && gr.bytes == 10);
	rfs_store_close(st);
	REQUIRE(verify_problems(dir) == 0);
}

static void test_verify_and_clear(const char *dir)
{
	rfs_store *st;
	rfs_key k[3];
	char sdir[512], path[600], hex[RFS_KEY_HEX];
	uint64_t removed;
	long pid = 0;
	int fd, lfd;

	REQUIRE_RC(rfs_store_open(dir, &st), 0);
	REQUIRE_RC(rfs_store_scratch_dir(st, 0, sdir, sizeof(sdir)), 0);
	for (unsigned i = 0; i < 3; i++)
		commit_n(st, sdir, 100 + i, 4096, &src_a, &k[i]);
	rfs_store_close(st);
	REQUIRE(verify_problems(dir) == 0);

	/* Flip one byte: same size, another checksum. */
	rfs_key_hex(&k[1], hex);
	pathf(path, sizeof(path), "%s/objects/%.2s/%s.tif", dir, hex, hex);
	fd = open(path, O_RDWR);
	REQUIRE(fd >= 0 && pwrite(fd, "\xff\x00", 2, 100) == 2);
	close(fd);
	/* An object no entry names, and a scratch dir of a dead process. */
	pathf(path, sizeof(path), "%s/objects/%.2s/%.2s%030d.tif", dir, hex,
	      hex, 7);
	fd = open(path, O_WRONLY | O_CREAT, 0644);
	REQUIRE(fd >= 0);
	close(fd);
	pathf(path, sizeof(path), "%s/scratch/999999", dir);
	REQUIRE(mkdir(path, 0755) == 0);
	REQUIRE(verify_problems(dir) == 3);
	REQUIRE(problems_seen[RFS_PROBLEM_CHECKSUM] == 1 &&
		problems_seen[RFS_PROBLEM_ORPHAN] == 1 &&
		problems_seen[RFS_PROBLEM_SCRATCH] == 1);

	/* clear is refused while another opener holds its scratch lock. */
	pathf(path, sizeof(path), "%s/scratch/999998", dir);
	REQUIRE(mkdir(path, 0755) == 0);
	pathf(path, sizeof(path), "%s/scratch/999998/lock", dir);
	lfd = open(path, O_RDWR | O_CREAT, 0644);
	REQUIRE(lfd >= 0 && flock(lfd, LOCK_EX) == 0);
	REQUIRE_RC(rfs_store_open(dir, &st), 0); /* repair ran: orphan gone */
	REQUIRE_RC(rfs_store_clear(st, &removed, &pid), -EBUSY);
	REQUIRE(pid == 999998);
	close(lfd);
	REQUIRE_RC(rfs_store_clear(st, &removed, &pid), 0);
	REQUIRE(removed == 3);
	REQUIRE_RC(rfs_store_lookup(st, &k[0], &src_a, "c100", NULL), -ENOENT);
	rfs_store_close(st);
	REQUIRE(verify_problems(dir) == 1); /* 999998: nobody holds it now */
	REQUIRE(problems_seen[RFS_PROBLEM_SCRATCH] == 1);
	pathf(path, sizeof(path), "%s/scratch/999998/lock", dir);
	REQUIRE(unlink(path) == 0);
	pathf(path, sizeof(path), "%s/scratch/999998", dir);
	REQUIRE(rmdir(path) == 0);
	REQUIRE(verify_problems(dir) == 0);
	{
		struct rfs_store_options o = { .flags = RFS_STORE_RDONLY };

		REQUIRE_RC(rfs_store_open_opts(dir, &o, &st), 0);
		REQUIRE_RC(rfs_store_clear(st, &removed, &pid), -EROFS);
		rfs_store_close(st);
	}
}

/* ---- description records (desc.c note 12) ---------------------------- */

static int describe_wait(rfs_store *st, const rfs_key *k,
			 const struct rfs_store_desc *d)
{
	struct waiter w;
	int rc;

	waiter_init(&w);
	rc = rfs_store_describe_put(st, k, d, waiter_cb, &w);
	if (rc == 0) {
		REQUIRE(waiter_wait(&w, 1));
		rc = w.rc;
	}
	waiter_destroy(&w);
	return rc;
}

/* A record the store cannot decode, put with LMDB itself (no store of
 * this process may be open on dir: one environment per process). */
static void put_garbage(const char *dir)
{
	char path[600];
	MDB_env *env;
	MDB_txn *txn;
	MDB_dbi dbi;
	unsigned char kb[16] = { 0xee };
	MDB_val k = { 16, kb }, v = { 7, "garbage" };

	pathf(path, sizeof(path), "%s/index", dir);
	REQUIRE(mdb_env_create(&env) == 0);
	REQUIRE(mdb_env_set_maxdbs(env, 8) == 0);
	REQUIRE(mdb_env_set_mapsize(env, (size_t)1 << 30) == 0);
	REQUIRE(mdb_env_open(env, path, 0, 0600) == 0);
	REQUIRE(mdb_txn_begin(env, NULL, 0, &txn) == 0);
	REQUIRE(mdb_dbi_open(txn, "described", 0, &dbi) == 0);
	REQUIRE(mdb_put(txn, dbi, &k, &v, 0) == 0);
	REQUIRE(mdb_txn_commit(txn) == 0);
	mdb_env_close(env);
}

static void test_descriptions(const char *dir, const char *srcroot)
{
	struct rfs_store_options o = { .source_root = srcroot };
	struct rfs_store_gc_report gr;
	struct rfs_store_meta m;
	struct rfs_src_id id;
	struct stat sb;
	rfs_store *st;
	rfs_key k, k2, many[100];
	char sdir[512], file[600], path[600], canon[64];
	uint64_t size = 0, n = 0;
	void *layout = NULL;
	size_t len = 0;
	struct waiter w;

	REQUIRE(mkdir(srcroot, 0755) == 0);
	write_file(srcroot, "d.tif", 100, 5, path, sizeof(path));
	REQUIRE(stat(path, &sb) == 0);
	rfs_src_id_from_stat(&id, &sb);
	REQUIRE_RC(rfs_store_open_opts(dir, &o, &st), 0);
	REQUIRE_RC(rfs_store_scratch_dir(st, 0, sdir, sizeof(sdir)), 0);

	/* put, then get with the key material and the stamp */
	struct rfs_store_desc d = {
		.src = id, .canonical = "@d1", .source = "d.tif", .stamp = 7,
		.size = 5000, .layout = "LAYOUT-1", .layout_len = 8,
	};
	rfs_key_make(&k, &id, "@d1");
	REQUIRE_RC(describe_wait(st, &k, &d), 0);
	REQUIRE_RC(rfs_store_describe_get(st, &k, &id, "@d1", 7, &size,
					  &layout, &len), 0);
	REQUIRE(size == 5000 && len == 8 && !memcmp(layout, "LAYOUT-1", 8));
	free(layout);
	REQUIRE_RC(rfs_store_describe_get(st, &k, &id, "@d1", 8, &size, NULL,
					  NULL), -ENOENT); /* another stamp */
	REQUIRE_RC(rfs_store_describe_get(st, &k, &id, "@d2", 7, &size, NULL,
					  NULL), -ENOENT); /* a collision */
	struct rfs_src_id other = id;
	other.mtime_ns++;
	REQUIRE_RC(rfs_store_describe_get(st, &k, &other, "@d1", 7, &size,
					  NULL, NULL), -ENOENT);
	d.layout_len = 0;
	REQUIRE_RC(rfs_store_describe_put(st, &k, &d, NULL, NULL), -EINVAL);
	d.layout_len = 8;

	/* a hundred at once: one batch or a few, every callback called */
	waiter_init(&w);
	for (unsigned i = 0; i < 100; i++) {
		pathf(canon, sizeof(canon), "@m%u", i);
		d.canonical = canon;
		d.size = 1000 + i;
		rfs_key_make(&many[i], &id, canon);
		REQUIRE_RC(rfs_store_describe_put(st, &many[i], &d, waiter_cb,
						  &w), 0);
	}
	REQUIRE(waiter_wait(&w, 100) && w.rc == 0);
	waiter_destroy(&w);
	REQUIRE_RC(rfs_store_describe_count(st, &n), 0);
	REQUIRE(n == 101);
	REQUIRE_RC(rfs_store_describe_get(st, &many[42], &id, "@m42", 7,
					  &size, NULL, NULL), 0);
	REQUIRE(size == 1042);

	/* an object of the size described agrees; one of another size
	 * drops the record; a record of another size than its object is
	 * not written */
	make_meta(&m, &id, "@d1", 5000, 21);
	m.source = "d.tif";
	write_file(sdir, "o", 5000, 21, file, sizeof(file));
	REQUIRE_RC(commit_wait(st, &k, file, &m), 0);
	REQUIRE_RC(rfs_store_describe_get(st, &k, &id, "@d1", 7, &size, NULL,
					  NULL), 0);
	make_meta(&m, &id, "@m1", 999, 22);
	m.source = "d.tif";
	write_file(sdir, "o", 999, 22, file, sizeof(file));
	REQUIRE_RC(commit_wait(st, &many[1], file, &m), 0);
	REQUIRE_RC(rfs_store_describe_get(st, &many[1], &id, "@m1", 7, &size,
					  NULL, NULL), -ENOENT);
	d.canonical = "@m1";
	d.size = 1001;
	REQUIRE_RC(describe_wait(st, &many[1], &d), 0);
	REQUIRE_RC(rfs_store_describe_get(st, &many[1], &id, "@m1", 7, &size,
					  NULL, NULL), -ENOENT);
	rfs_store_close(st);
	REQUIRE(verify_problems(dir) == 0);

	/* after a reopen (a remount), still there; an undecodable record is
	 * a problem for verify, and repair drops it */
	put_garbage(dir);
	REQUIRE(verify_problems(dir) == 1);
	REQUIRE(problems_seen[RFS_PROBLEM_DESCRIBED] == 1);
	REQUIRE_RC(rfs_store_open_opts(dir, &o, &st), 0);
	REQUIRE_RC(rfs_store_describe_get(st, &k, &id, "@d1", 7, &size, NULL,
					  NULL), 0);
	REQUIRE(size == 5000);
	rfs_store_close(st);
	REQUIRE(verify_problems(dir) == 0);

	/* gc: the source changed, every record of it goes (the object of
	 * the old identity too) */
	REQUIRE_RC(rfs_store_open_opts(dir, &o, &st), 0);
	write_file(srcroot, "d.tif", 300, 6, path, sizeof(path));
	REQUIRE_RC(rfs_store_gc(st, 0, &gr), 0);
	REQUIRE(gr.descriptions == 100 && gr.changed == 2);
	REQUIRE_RC(rfs_store_describe_count(st, &n), 0);
	REQUIRE(n == 0);
	/* clear drops them all */
	rfs_key_make(&k2, &id, "@x");
	d.canonical = "@x";
	REQUIRE_RC(describe_wait(st, &k2, &d), 0);
	REQUIRE_RC(rfs_store_clear(st, &n, NULL), 0);
	REQUIRE_RC(rfs_store_describe_count(st, &n), 0);
	REQUIRE(n == 0);
	rfs_store_close(st);
	REQUIRE(verify_problems(dir) == 0);
}

/* An existing store directory of ours that others could enter (made by an
 * older rasterfs with 0755) is made private at open. */
static void test_private(const char *dir)
{
	rfs_store *st;
	struct stat sb;

	REQUIRE(mkdir(dir, 0755) == 0 && chmod(dir, 0755) == 0);
	REQUIRE(stat(dir, &sb) == 0 && (sb.st_mode & 0777) == 0755);
	REQUIRE_RC(rfs_store_open(dir, &st), 0);
	REQUIRE(stat(dir, &sb) == 0 && (sb.st_mode & 0777) == 0700);
	rfs_store_close(st);
}

/* ---- the default directory, and making it ----------------------------- */

/* Oracle: the rule as docs/options.md states it ($XDG_CACHE_HOME/rasterfs, else
 * ~/.cache/rasterfs), spelled out here for each case. */
static void test_default_dir(void)
{
	const char *x = getenv("XDG_CACHE_HOME"), *h = getenv("HOME");
	char *xdg = x ? strdup(x) : NULL, *home = h ? strdup(h) : NULL;
	struct passwd *pw = getpwuid(getuid());
	char want[PATH_MAX + 32], *dir, *big;

	setenv("XDG_CACHE_HOME", "/x/cache", 1);
	REQUIRE_RC(rfs_store_default_dir(&dir), 0);
	REQUIRE(dir && !strcmp(dir, "/x/cache/rasterfs"));
	free(dir);

	/* Not an absolute path: ignored. */
	setenv("XDG_CACHE_HOME", "relative", 1);
	setenv("HOME", "/h/me", 1);
	REQUIRE_RC(rfs_store_default_dir(&dir), 0);
	REQUIRE(dir && !strcmp(dir, "/h/me/.cache/rasterfs"));
	free(dir);

	/* No HOME: the password database's. */
	unsetenv("XDG_CACHE_HOME");
	setenv("HOME", "", 1);
	pathf(want, sizeof(want), "%s/.cache/rasterfs",
	      pw ? pw->pw_dir : "/tmp");
	REQUIRE_RC(rfs_store_default_dir(&dir), 0);
	REQUIRE(dir && !strcmp(dir, want));
	free(dir);

	big = malloc(PATH_MAX + 1);
	REQUIRE(big != NULL);
	memset(big, 'a', PATH_MAX);
	big[0] = '/';
	big[PATH_MAX] = '\0';
	setenv("XDG_CACHE_HOME", big, 1);
	REQUIRE_RC(rfs_store_default_dir(&dir), -ENAMETOOLONG);
	REQUIRE(dir == NULL);
	free(big);

	if (xdg)
		setenv("XDG_CACHE_HOME", xdg, 1);
	else
		unsetenv("XDG_CACHE_HOME");
	if (home)
		setenv("HOME", home, 1);
	else
		unsetenv("HOME");
	free(xdg);
	free(home);
}

/* Oracle: stat() of each level. */
static void test_make_dir(void)
{
	static const char *const levels[] = { "made", "made/a", "made/a/b" };
	char path[600];
	struct stat sb;
	int fd;

	pathf(path, sizeof(path), "%s/made/a/b/", root);
	REQUIRE_RC(rfs_store_make_dir(path), 0);
	for (size_t i = 0; i < sizeof(levels) / sizeof(levels[0]); i++) {
		pathf(path, sizeof(path), "%s/%s", root, levels[i]);
		REQUIRE(stat(path, &sb) == 0 && S_ISDIR(sb.st_mode) &&
			(sb.st_mode & 0777) == 0700);
	}
	pathf(path, sizeof(path), "%s/made/a/b", root);
	REQUIRE_RC(rfs_store_make_dir(path), 0); /* it exists: fine */
	/* Levels that exist are left as they are. */
	pathf(path, sizeof(path), "%s/made", root);
	REQUIRE(chmod(path, 0750) == 0);
	pathf(path, sizeof(path), "%s/made/c", root);
	REQUIRE_RC(rfs_store_make_dir(path), 0);
	pathf(path, sizeof(path), "%s/made", root);
	REQUIRE(stat(path, &sb) == 0 && (sb.st_mode & 0777) == 0750);
	pathf(path, sizeof(path), "%s/made/file", root);
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0600);
	REQUIRE(fd >= 0);
	close(fd);
	pathf(path, sizeof(path), "%s/made/file/x", root);
	REQUIRE_RC(rfs_store_make_dir(path), -ENOTDIR);
	REQUIRE_RC(rfs_store_make_dir(""), -ENOENT);
}

int main(void)
{
	char dir[600];

	if (root_make())
		return 1;

	test_sizes();
	pathf(dir, sizeof(dir), "%s/private", root);
	test_private(dir);
	pathf(dir, sizeof(dir), "%s/evict", root);
	test_evict(dir);
	pathf(dir, sizeof(dir), "%s/drop", root);
	test_drop(dir);
	pathf(dir, sizeof(dir), "%s/map", root);
	test_map_growth(dir);
	{
		char src[640];

		pathf(dir, sizeof(dir), "%s/changed", root);
		pathf(src, sizeof(src), "%s/src", root);
		test_changed_source(dir, src);
	}
	pathf(dir, sizeof(dir), "%s/verify", root);
	test_verify_and_clear(dir);
	{
		char src[640];

		pathf(dir, sizeof(dir), "%s/desc", root);
		pathf(src, sizeof(src), "%s/dsrc", root);
		test_descriptions(dir, src);
	}
	test_default_dir();
	test_make_dir();

	root_remove();
	return check_report();
}
