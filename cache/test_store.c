/* test_store.c - the cache store against real LMDB in a temporary dir:
 * keys, one store step by step, repair at open, concurrent commits, two
 * processes on one store.  (Limits, eviction, gc, verify and clear:
 * test_store_maint.c.)
 *
 * Oracles: keys are recomputed here from the serialisation documented in
 * cache/README.md; object bytes and checksums are compared with what the
 * test wrote; repair results with the files the test planted. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <xxhash.h>

#include "rasterfs/err.h"
#include "rasterfs/store.h"
#include "test_store.h"

static int exists(const char *fmt, ...)
{
	char path[512];
	struct stat sb;
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(path, sizeof(path), fmt, ap);
	va_end(ap);
	return lstat(path, &sb) == 0;
}

static int64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

/* ---- keys ------------------------------------------------------------- */

/* The serialisation of cache/README.md, written out independently. */
static void key_oracle(rfs_key *out, const struct rfs_src_id *s,
		       const char *canonical)
{
	unsigned char buf[512];
	size_t n = 0, clen = strlen(canonical);
	uint64_t f[6] = { RFS_FORMAT_VERSION, s->dev, s->ino, s->size,
			  (uint64_t)s->mtime_ns, clen };
	XXH128_hash_t h;

	memcpy(buf, "rasterfs-key", 13);
	n = 13;
	for (int i = 0; i < 6; i++)
		for (int b = 0; b < 8; b++)
			buf[n++] = (unsigned char)(f[i] >> (8 * b));
	memcpy(buf + n, canonical, clen);
	n += clen;
	h = XXH3_128bits(buf, n);
	for (int b = 0; b < 8; b++) {
		out->b[b] = (unsigned char)(h.high64 >> (56 - 8 * b));
		out->b[8 + b] = (unsigned char)(h.low64 >> (56 - 8 * b));
	}
}

static void test_keys(void)
{
	struct rfs_src_id s = { 66306, 1234567, 987654321, 1700000000123456789 };
	struct rfs_src_id t;
	const char *c = "proj=EPSG:3857,near@focal=3,mean,square";
	rfs_key a, b, o;
	char hex[RFS_KEY_HEX], up[RFS_KEY_HEX];
	struct stat sb;

	rfs_key_make(&a, &s, c);
	rfs_key_make(&b, &s, c);
	REQUIRE(memcmp(&a, &b, sizeof(a)) == 0);
	key_oracle(&o, &s, c);
	REQUIRE(memcmp(&a, &o, sizeof(a)) == 0);

	for (int field = 0; field < 4; field++) {
		t = s;
		switch (field) {
		case 0: t.dev++; break;
		case 1: t.ino++; break;
		case 2: t.size++; break;
		case 3: t.mtime_ns++; break;
		}
		rfs_key_make(&b, &t, c);
		REQUIRE(memcmp(&a, &b, sizeof(a)) != 0);
		key_oracle(&o, &t, c);
		REQUIRE(memcmp(&b, &o, sizeof(b)) == 0);
	}
	rfs_key_make(&b, &s, "proj=EPSG:3857,near@focal=3,mean,squarE");
	REQUIRE(memcmp(&a, &b, sizeof(a)) != 0);
	rfs_key_make(&b, &s, "");
	REQUIRE(memcmp(&a, &b, sizeof(a)) != 0);
	key_oracle(&o, &s, "");
	REQUIRE(memcmp(&b, &o, sizeof(b)) == 0);

	rfs_key_hex(&a, hex);
	REQUIRE(strlen(hex) == 32 && strspn(hex, "0123456789abcdef") == 32);
	REQUIRE_RC(rfs_key_parse(hex, &b), 0);
	REQUIRE(memcmp(&a, &b, sizeof(a)) == 0);
	for (int i = 0; i < RFS_KEY_HEX; i++)
		up[i] = (char)(hex[i] >= 'a' ? hex[i] - 32 : hex[i]);
	REQUIRE_RC(rfs_key_parse(up, &b), 0);
	REQUIRE(memcmp(&a, &b, sizeof(a)) == 0);
	REQUIRE_RC(rfs_key_parse("0123", &b), -EINVAL);
	REQUIRE_RC(rfs_key_parse("0123456789abcdef0123456789abcdeg", &b),
		   -EINVAL);
	REQUIRE_RC(rfs_key_parse("0123456789abcdef0123456789abcdef0", &b),
		   -EINVAL);
	REQUIRE_RC(rfs_key_parse("0123456789abcdef0123456789abcdef", &b), 0);
	REQUIRE(b.b[0] == 0x01 && b.b[15] == 0xef);

	if (stat("/", &sb) < 0)
		fail(__FILE__, __LINE__, "stat /");
	rfs_src_id_from_stat(&t, &sb);
	REQUIRE(t.dev == (uint64_t)sb.st_dev && t.ino == (uint64_t)sb.st_ino &&
		t.size == (uint64_t)sb.st_size &&
		t.mtime_ns == (int64_t)sb.st_mtim.tv_sec * 1000000000 +
				    sb.st_mtim.tv_nsec);
}

/* ---- one store, step by step ------------------------------------------ */


static void test_basic(const char *dir)
{
	rfs_store *st, *st2;
	struct rfs_store_meta m;
	struct rfs_store_entry e;
	struct rfs_src_id other;
	rfs_key k, k2;
	char sdir[512], file[600], path[600], want[600];
	uint64_t objs, bytes;
	int64_t t0;
	int fd;

	REQUIRE_RC(rfs_store_open(dir, &st), 0);
	REQUIRE(strcmp(rfs_store_dir(st), dir) == 0);
	REQUIRE(exists("%s/FORMAT", dir) && exists("%s/index", dir) &&
		exists("%s/objects", dir) && exists("%s/scratch", dir));
	{
		char buf[16] = { 0 };
		FILE *f;

		pathf(path, sizeof(path), "%s/FORMAT", dir);
		f = fopen(path, "r");
		REQUIRE(f && fread(buf, 1, sizeof(buf) - 1, f) > 0);
		fclose(f);
		pathf(want, sizeof(want), "%d\n", RFS_FORMAT_VERSION);
		REQUIRE(strcmp(buf, want) == 0);
	}
	REQUIRE_RC(rfs_store_open(dir, &st2), -EBUSY);
	REQUIRE_RC(rfs_store_stats(st, &objs, &bytes), 0);
	REQUIRE(objs == 0 && bytes == 0);

	REQUIRE_RC(rfs_store_scratch_dir(st, 0, sdir, sizeof(sdir)), 0);
	pathf(want, sizeof(want), "%s/scratch/%ld/w0", dir, (long)getpid());
	REQUIRE(strcmp(sdir, want) == 0);
	REQUIRE(exists("%s/scratch/%ld/lock", dir, (long)getpid()));

	/* commit, then look it up */
	rfs_key_make(&k, &src_a, canon_a);
	write_file(sdir, "out.tif", 10000, 1, file, sizeof(file));
	make_meta(&m, &src_a, canon_a, 10000, 1);
	t0 = now_ns();
	REQUIRE_RC(commit_wait(st, &k, file, &m), 0);
	REQUIRE(!exists("%s", file));
	rfs_store_object_path(st, &k, path, sizeof(path));
	{
		char hex[RFS_KEY_HEX];

		rfs_key_hex(&k, hex);
		pathf(want, sizeof(want), "%s/objects/%.2s/%s.tif", dir,
		      hex, hex);
		REQUIRE(strcmp(path, want) == 0);
	}
	REQUIRE(exists("%s", path));
	REQUIRE_RC(rfs_store_lookup(st, &k, &src_a, canon_a, &e), 0);
	REQUIRE(e.size == 10000 && e.checksum == pattern_checksum(10000, 1));
	REQUIRE(e.created_ns >= t0 && e.created_ns <= now_ns());
	REQUIRE_RC(rfs_store_lookup(st, &k, &src_a, canon_a, NULL), 0);

	/* key material must match, not only the key */
	REQUIRE_RC(rfs_store_lookup(st, &k, &src_a, "focal=3,mean,circle", &e),
		   -ENOENT);
	REQUIRE_RC(rfs_store_lookup(st, &k, &src_a, "focal=3,mean,squar", &e),
		   -ENOENT);
	for (int field = 0; field < 4; field++) {
		other = src_a;
		switch (field) {
		case 0: other.dev = 9; break;
		case 1: other.ino = 9; break;
		case 2: other.size = 9; break;
		case 3: other.mtime_ns = 9; break;
		}
		REQUIRE_RC(rfs_store_lookup(st, &k, &other, canon_a, &e),
			   -ENOENT);
	}
	rfs_key_make(&k2, &src_a, "focal=5,mean,square");
	REQUIRE_RC(rfs_store_lookup(st, &k2, &src_a, "focal=5,mean,square", &e),
		   -ENOENT);
	REQUIRE_RC(rfs_store_open_object(st, &k2), -ENOENT);

	fd = rfs_store_open_object(st, &k);
	REQUIRE(fd >= 0);
	REQUIRE(fd_matches(fd, 10000, 1));
	REQUIRE((fcntl(fd, F_GETFD) & FD_CLOEXEC) != 0);
	close(fd);

	/* a second commit of the key: dropped, cb 0, bytes unchanged */
	write_file(sdir, "again.tif", 777, 99, file, sizeof(file));
	make_meta(&m, &src_a, canon_a, 777, 99);
	REQUIRE_RC(commit_wait(st, &k, file, &m), 0);
	REQUIRE(!exists("%s", file));
	REQUIRE_RC(rfs_store_lookup(st, &k, &src_a, canon_a, &e), 0);
	REQUIRE(e.size == 10000 && e.checksum == pattern_checksum(10000, 1));
	fd = rfs_store_open_object(st, &k);
	REQUIRE(fd >= 0 && fd_matches(fd, 10000, 1));
	close(fd);

	/* a second object */
	write_file(sdir, "b.tif", 5000, 2, file, sizeof(file));
	make_meta(&m, &src_a, "focal=5,mean,square", 5000, 2);
	REQUIRE_RC(commit_wait(st, &k2, file, &m), 0);
	REQUIRE_RC(rfs_store_stats(st, &objs, &bytes), 0);
	REQUIRE(objs == 2 && bytes == 15000);

	/* failures: nothing indexed, scratch file gone */
	{
		rfs_key k3;

		rfs_key_make(&k3, &src_a, "nothing");
		pathf(file, sizeof(file), "%s/missing.tif", sdir);
		make_meta(&m, &src_a, "nothing", 0, 0);
		REQUIRE_RC(commit_wait(st, &k3, file, &m), -ENOENT);
		REQUIRE_RC(rfs_store_lookup(st, &k3, &src_a, "nothing", NULL),
			   -ENOENT);

		write_file(dir, "outside.tif", 10, 3, file, sizeof(file));
		REQUIRE_RC(rfs_store_commit(st, &k3, file, &m, waiter_cb, NULL),
			   -EINVAL);
		REQUIRE(exists("%s", file));
		unlink(file);
		pathf(file, sizeof(file), "%s/../../../outside.tif", sdir);
		REQUIRE_RC(rfs_store_commit(st, &k3, file, &m, waiter_cb, NULL),
			   -EINVAL);
		REQUIRE_RC(rfs_store_commit(st, &k3, sdir, &m, NULL, NULL),
			   -EINVAL);
		REQUIRE_RC(rfs_store_stats(st, &objs, &bytes), 0);
		REQUIRE(objs == 2 && bytes == 15000);
	}

	/* The committer re-verifies what the worker reported: a file shorter
	 * than reported, or with other bytes, is not stored; nothing is
	 * indexed and the scratch file is gone. */
	{
		rfs_key k4;

		rfs_key_make(&k4, &src_a, "short");
		write_file(sdir, "short.tif", 900, 6, file, sizeof(file));
		make_meta(&m, &src_a, "short", 1000, 6);
		REQUIRE_RC(commit_wait(st, &k4, file, &m), -RFS_E_STORE_IO);
		REQUIRE(!exists("%s", file));
		write_file(sdir, "other.tif", 1000, 7, file, sizeof(file));
		make_meta(&m, &src_a, "short", 1000, 6);
		REQUIRE(m.checksum != pattern_checksum(1000, 7));
		REQUIRE_RC(commit_wait(st, &k4, file, &m), -RFS_E_STORE_IO);
		REQUIRE(!exists("%s", file));
		REQUIRE_RC(rfs_store_lookup(st, &k4, &src_a, "short", NULL),
			   -ENOENT);
		REQUIRE_RC(rfs_store_open_object(st, &k4), -ENOENT);
		REQUIRE_RC(rfs_store_stats(st, &objs, &bytes), 0);
		REQUIRE(objs == 2 && bytes == 15000);
	}

	/* Private to its owner: directories 0700, objects 0600 whatever
	 * mode the worker wrote them with (write_file: 0644). */
	{
		static const char *const dirs[] = { "", "/objects", "/scratch",
						    "/index" };
		struct stat sb;

		for (size_t i = 0; i < sizeof(dirs) / sizeof(*dirs); i++) {
			pathf(path, sizeof(path), "%s%s", dir, dirs[i]);
			REQUIRE(stat(path, &sb) == 0 &&
				(sb.st_mode & 0777) == 0700);
		}
		REQUIRE(stat(sdir, &sb) == 0 && (sb.st_mode & 0777) == 0700);
		rfs_store_object_path(st, &k, path, sizeof(path));
		REQUIRE(stat(path, &sb) == 0 && (sb.st_mode & 0777) == 0600);
		rfs_store_object_path(st, &k2, path, sizeof(path));
		REQUIRE(stat(path, &sb) == 0 && (sb.st_mode & 0777) == 0600);
	}

	/* scratch dirs: reuse empties, clean empties recursively */
	write_file(sdir, "left.tif", 10, 4, file, sizeof(file));
	REQUIRE_RC(rfs_store_scratch_dir(st, 0, sdir, sizeof(sdir)), 0);
	REQUIRE(!exists("%s", file));
	pathf(path, sizeof(path), "%s/sub", sdir);
	REQUIRE(mkdir(path, 0755) == 0);
	write_file(path, "deep.tif", 10, 5, file, sizeof(file));
	REQUIRE_RC(rfs_store_scratch_clean(sdir), 0);
	REQUIRE(!exists("%s", path) && exists("%s", sdir));
	REQUIRE_RC(rfs_store_scratch_dir(st, 0, sdir, 8), -ENAMETOOLONG);

	/* an object deleted behind our back reads as a miss at once */
	rfs_store_object_path(st, &k2, path, sizeof(path));
	pathf(want, sizeof(want), "%s.keep", path);
	REQUIRE(rename(path, want) == 0);
	REQUIRE_RC(rfs_store_lookup(st, &k2, &src_a, "focal=5,mean,square",
				    NULL), -ENOENT);
	REQUIRE(rename(want, path) == 0);

	rfs_store_close(st);
	REQUIRE(!exists("%s/scratch/%ld", dir, (long)getpid()));

	/* it all survives a reopen */
	REQUIRE_RC(rfs_store_open(dir, &st), 0);
	REQUIRE_RC(rfs_store_lookup(st, &k, &src_a, canon_a, &e), 0);
	REQUIRE(e.size == 10000 && e.checksum == pattern_checksum(10000, 1));
	REQUIRE_RC(rfs_store_stats(st, &objs, &bytes), 0);
	REQUIRE(objs == 2 && bytes == 15000);
	fd = rfs_store_open_object(st, &k2);
	REQUIRE(fd >= 0 && fd_matches(fd, 5000, 2));
	close(fd);
	rfs_store_close(st);
	rfs_store_close(NULL);
}

/* ---- repair at open ---------------------------------------------------- */

static void test_repair(const char *dir)
{
	rfs_store *st;
	struct rfs_store_meta m;
	rfs_key ka, kb, kc, korphan;
	char sdir[512], file[600], pa[600], pb[600], pc[600], po[600];
	char ptmp[700], live[600];
	uint64_t objs, bytes;
	int fd, live_fd;

	REQUIRE_RC(rfs_store_open(dir, &st), 0);
	REQUIRE_RC(rfs_store_scratch_dir(st, 1, sdir, sizeof(sdir)), 0);
	rfs_key_make(&ka, &src_a, "r=a");
	rfs_key_make(&kb, &src_a, "r=b");
	rfs_key_make(&kc, &src_a, "r=c");
	rfs_key_make(&korphan, &src_a, "r=orphan");
	write_file(sdir, "a", 100, 10, file, sizeof(file));
	make_meta(&m, &src_a, "r=a", 100, 10);
	REQUIRE_RC(commit_wait(st, &ka, file, &m), 0);
	write_file(sdir, "b", 200, 11, file, sizeof(file));
	make_meta(&m, &src_a, "r=b", 200, 11);
	REQUIRE_RC(commit_wait(st, &kb, file, &m), 0);
	write_file(sdir, "c", 300, 12, file, sizeof(file));
	make_meta(&m, &src_a, "r=c", 300, 12);
	REQUIRE_RC(commit_wait(st, &kc, file, &m), 0);
	rfs_store_object_path(st, &ka, pa, sizeof(pa));
	rfs_store_object_path(st, &kb, pb, sizeof(pb));
	rfs_store_object_path(st, &kc, pc, sizeof(pc));
	rfs_store_object_path(st, &korphan, po, sizeof(po));
	REQUIRE_RC(rfs_store_stats(st, &objs, &bytes), 0);
	REQUIRE(objs == 5 && bytes == 15600); /* 2 from test_basic */
	rfs_store_close(st);

	/* what a crash (or a careless user) leaves behind */
	REQUIRE(unlink(pa) == 0);			/* dangling entry */
	REQUIRE(truncate(pb, 150) == 0);		/* wrong size */
	{						/* orphan object */
		char shard[600];

		pathf(shard, sizeof(shard), "%s", po);
		*strrchr(shard, '/') = '\0';
		mkdir(shard, 0755);
		write_file(shard, strrchr(po, '/') + 1, 64, 13, file,
			   sizeof(file));
		pathf(ptmp, sizeof(ptmp), "%s/%s", shard, "x.tif.tmp");
		write_file(shard, "x.tif.tmp", 64, 14, file, sizeof(file));
	}
	pathf(file, sizeof(file), "%s/scratch/999999999", dir);
	REQUIRE(mkdir(file, 0755) == 0);
	pathf(file, sizeof(file), "%s/scratch/999999999/w0", dir);
	REQUIRE(mkdir(file, 0755) == 0);
	write_file(file, "partial.tif", 50, 15, file, sizeof(file));
	pathf(file, sizeof(file), "%s/scratch/999999999", dir);
	write_file(file, "lock", 0, 0, file, sizeof(file));
	pathf(file, sizeof(file), "%s/scratch/nolock", dir);
	REQUIRE(mkdir(file, 0755) == 0);
	/* a live process's scratch: its lock is held (by this test) */
	pathf(live, sizeof(live), "%s/scratch/live", dir);
	REQUIRE(mkdir(live, 0755) == 0);
	write_file(live, "lock", 0, 0, file, sizeof(file));
	live_fd = open(file, O_RDWR | O_CLOEXEC);
	REQUIRE(live_fd >= 0 && flock(live_fd, LOCK_EX | LOCK_NB) == 0);
	write_file(live, "busy.tif", 10, 16, file, sizeof(file));

	REQUIRE_RC(rfs_store_open(dir, &st), 0);
	REQUIRE(!exists("%s", pa));
	REQUIRE(!exists("%s", pb));	/* entry dropped, then file as orphan */
	REQUIRE(exists("%s", pc));
	REQUIRE(!exists("%s", po));
	REQUIRE(!exists("%s", ptmp));
	REQUIRE(!exists("%s/scratch/999999999", dir));
	REQUIRE(!exists("%s/scratch/nolock", dir));
	REQUIRE(exists("%s/busy.tif", live));
	REQUIRE_RC(rfs_store_lookup(st, &ka, &src_a, "r=a", NULL), -ENOENT);
	REQUIRE_RC(rfs_store_lookup(st, &kb, &src_a, "r=b", NULL), -ENOENT);
	REQUIRE_RC(rfs_store_lookup(st, &kc, &src_a, "r=c", NULL), 0);
	REQUIRE_RC(rfs_store_stats(st, &objs, &bytes), 0);
	REQUIRE(objs == 3 && bytes == 15300);
	fd = rfs_store_open_object(st, &kc);
	REQUIRE(fd >= 0 && fd_matches(fd, 300, 12));
	close(fd);
	/* a dropped key can be committed again */
	REQUIRE_RC(rfs_store_scratch_dir(st, 1, sdir, sizeof(sdir)), 0);
	write_file(sdir, "a", 100, 10, file, sizeof(file));
	make_meta(&m, &src_a, "r=a", 100, 10);
	REQUIRE_RC(commit_wait(st, &ka, file, &m), 0);
	REQUIRE_RC(rfs_store_lookup(st, &ka, &src_a, "r=a", NULL), 0);
	rfs_store_close(st);

	/* once its owner is gone, the live scratch goes too */
	close(live_fd);
	REQUIRE_RC(rfs_store_open(dir, &st), 0);
	REQUIRE(!exists("%s", live));
	REQUIRE_RC(rfs_store_stats(st, &objs, &bytes), 0);
	REQUIRE(objs == 4 && bytes == 15400);
	rfs_store_close(st);
}

/* ---- concurrency ------------------------------------------------------- */

#define NTHREADS 4
#define NCOMMITS 50

struct worker_arg {
	rfs_store *st;
	unsigned id;
	struct waiter *w;
	int lookups_ok;
};

static size_t conc_len(unsigned id, unsigned i)
{
	return 1 + (id * NCOMMITS + i) * 37 % 4096;
}

static void conc_canon(char *buf, size_t len, unsigned id, unsigned i)
{
	pathf(buf, len, "conc=%u,%u", id, i);
}

static void *worker_main(void *p)
{
	struct worker_arg *a = p;
	char sdir[512], file[600], canon[64], name[32];
	struct rfs_store_meta m;
	rfs_key k;

	if (rfs_store_scratch_dir(a->st, 10 + a->id, sdir, sizeof(sdir)))
		fail(__FILE__, __LINE__, "scratch dir");
	for (unsigned i = 0; i < NCOMMITS; i++) {
		conc_canon(canon, sizeof(canon), a->id, i);
		pathf(name, sizeof(name), "o%u.tif", i);
		rfs_key_make(&k, &src_a, canon);
		write_file(sdir, name, conc_len(a->id, i), a->id * 1000 + i,
			   file, sizeof(file));
		make_meta(&m, &src_a, canon, conc_len(a->id, i),
			  a->id * 1000 + i);
		if (rfs_store_commit(a->st, &k, file, &m, waiter_cb, a->w))
			fail(__FILE__, __LINE__, "commit refused");
		/* readers run beside the committer */
		if (i > 0) {
			struct rfs_store_entry e;
			uint64_t o, b;

			conc_canon(canon, sizeof(canon), a->id, i - 1);
			rfs_key_make(&k, &src_a, canon);
			int rc = rfs_store_lookup(a->st, &k, &src_a, canon, &e);

			if (rc != 0 && rc != -ENOENT)
				fail(__FILE__, __LINE__, "lookup %d", rc);
			if (rfs_store_stats(a->st, &o, &b))
				fail(__FILE__, __LINE__, "stats");
			a->lookups_ok += rc == 0;
		}
	}
	return NULL;
}

static void test_concurrent(const char *dir)
{
	rfs_store *st;
	pthread_t th[NTHREADS];
	struct worker_arg args[NTHREADS];
	struct waiter w;
	uint64_t objs0, bytes0, objs, bytes, want_bytes = 0;
	int all = 1;

	REQUIRE_RC(rfs_store_open(dir, &st), 0);
	REQUIRE_RC(rfs_store_stats(st, &objs0, &bytes0), 0);
	waiter_init(&w);
	for (unsigned t = 0; t < NTHREADS; t++) {
		args[t] = (struct worker_arg){ st, t, &w, 0 };
		if (pthread_create(&th[t], NULL, worker_main, &args[t]))
			fail(__FILE__, __LINE__, "pthread_create");
	}
	for (unsigned t = 0; t < NTHREADS; t++)
		pthread_join(th[t], NULL);
	REQUIRE(waiter_wait(&w, NTHREADS * NCOMMITS));
	REQUIRE(w.rc == 0);

	for (unsigned t = 0; t < NTHREADS; t++) {
		for (unsigned i = 0; i < NCOMMITS; i++) {
			struct rfs_store_entry e;
			char canon[64];
			rfs_key k;

			conc_canon(canon, sizeof(canon), t, i);
			rfs_key_make(&k, &src_a, canon);
			if (rfs_store_lookup(st, &k, &src_a, canon, &e) ||
			    e.size != conc_len(t, i) ||
			    e.checksum != pattern_checksum(conc_len(t, i),
							   t * 1000 + i))
				all = 0;
			want_bytes += conc_len(t, i);
		}
	}
	REQUIRE(all);
	REQUIRE_RC(rfs_store_stats(st, &objs, &bytes), 0);
	REQUIRE(objs == objs0 + NTHREADS * NCOMMITS);
	REQUIRE(bytes == bytes0 + want_bytes);
	waiter_destroy(&w);
	rfs_store_close(st);
}

/* close with commits still queued: every cb runs once, all land */
static void test_drain(const char *dir)
{
	rfs_store *st;
	struct waiter w;
	struct rfs_store_meta m;
	char sdir[512], file[600], canon[64], name[32];
	uint64_t objs0, bytes0, objs, bytes;
	rfs_key k;

	REQUIRE_RC(rfs_store_open(dir, &st), 0);
	REQUIRE_RC(rfs_store_stats(st, &objs0, &bytes0), 0);
	REQUIRE_RC(rfs_store_scratch_dir(st, 2, sdir, sizeof(sdir)), 0);
	waiter_init(&w);
	for (unsigned i = 0; i < 20; i++) {
		pathf(canon, sizeof(canon), "drain=%u", i);
		pathf(name, sizeof(name), "d%u", i);
		rfs_key_make(&k, &src_a, canon);
		write_file(sdir, name, 1000, 5000 + i, file, sizeof(file));
		make_meta(&m, &src_a, canon, 1000, 5000 + i);
		REQUIRE_RC(rfs_store_commit(st, &k, file, &m, waiter_cb, &w),
			   0);
	}
	rfs_store_close(st);
	REQUIRE(w.done == 20 && w.rc == 0);
	waiter_destroy(&w);

	REQUIRE_RC(rfs_store_open(dir, &st), 0);
	REQUIRE_RC(rfs_store_stats(st, &objs, &bytes), 0);
	REQUIRE(objs == objs0 + 20 && bytes == bytes0 + 20000);
	for (unsigned i = 0; i < 20; i++) {
		pathf(canon, sizeof(canon), "drain=%u", i);
		rfs_key_make(&k, &src_a, canon);
		REQUIRE_RC(rfs_store_lookup(st, &k, &src_a, canon, NULL), 0);
	}
	rfs_store_close(st);
}

/* ---- refusing directories that are not ours --------------------------- */

static void test_refuse(void)
{
	rfs_store *st = NULL;
	char dir[600], file[700];

	pathf(dir, sizeof(dir), "%s/v2", root);
	REQUIRE(mkdir(dir, 0755) == 0);
	write_file(dir, "FORMAT", 0, 0, file, sizeof(file));
	{
		FILE *f = fopen(file, "w");

		fprintf(f, "%d\n", RFS_FORMAT_VERSION + 1);
		fclose(f);
	}
	REQUIRE_RC(rfs_store_open(dir, &st), -RFS_E_STORE_VERSION);
	REQUIRE(st == NULL);
	REQUIRE(!exists("%s/objects", dir));

	pathf(dir, sizeof(dir), "%s/notastore", root);
	REQUIRE(mkdir(dir, 0755) == 0);
	pathf(file, sizeof(file), "%s/objects", dir);
	REQUIRE(mkdir(file, 0755) == 0);
	write_file(file, "precious", 10, 1, file, sizeof(file));
	REQUIRE_RC(rfs_store_open(dir, &st), -ENOTEMPTY);
	REQUIRE(exists("%s", file));

	/* a nested path that does not exist yet is made */
	pathf(dir, sizeof(dir), "%s/a/b/c", root);
	REQUIRE_RC(rfs_store_open(dir, &st), 0);
	rfs_store_close(st);
}

/* a relative store dir: paths handed out are absolute, so a daemon that
 * chdir("/")s after opening still finds its files */
static void test_relative(void)
{
	rfs_store *st;
	struct rfs_store_meta m;
	char sdir[512], file[600], cwd[512], want[600];
	rfs_key k;

	REQUIRE(getcwd(cwd, sizeof(cwd)) != NULL);
	REQUIRE(chdir(root) == 0);
	REQUIRE_RC(rfs_store_open("rel", &st), 0);
	REQUIRE(strcmp(rfs_store_dir(st), "rel") == 0);
	REQUIRE(chdir("/") == 0);
	REQUIRE_RC(rfs_store_scratch_dir(st, 0, sdir, sizeof(sdir)), 0);
	pathf(want, sizeof(want), "%s/rel/scratch/%ld/w0", root,
	      (long)getpid());
	REQUIRE(strcmp(sdir, want) == 0);
	rfs_key_make(&k, &src_a, "rel");
	write_file(sdir, "r.tif", 123, 77, file, sizeof(file));
	make_meta(&m, &src_a, "rel", 123, 77);
	REQUIRE_RC(commit_wait(st, &k, file, &m), 0);
	rfs_store_object_path(st, &k, file, sizeof(file));
	REQUIRE(file[0] == '/' && exists("%s", file));
	REQUIRE_RC(rfs_store_lookup(st, &k, &src_a, "rel", NULL), 0);
	rfs_store_close(st);
	REQUIRE(chdir(cwd) == 0);
}

/* ---- two processes on one store (two mounts) -------------------------- */

/* The second process: the parent has the store open and has committed
 * "mp=shared" with pattern 1. */
static int child_main(const char *dir)
{
	rfs_store *st;
	struct rfs_store_meta m;
	char sdir[512], file[600];
	rfs_key k;
	int fd;

	REQUIRE_RC(rfs_store_open(dir, &st), 0);
	/* our repair left the live parent's scratch alone */
	REQUIRE(exists("%s/scratch/%ld/w0", dir, (long)getppid()));
	REQUIRE_RC(rfs_store_scratch_dir(st, 0, sdir, sizeof(sdir)), 0);

	rfs_key_make(&k, &src_a, "mp=shared");
	REQUIRE_RC(rfs_store_lookup(st, &k, &src_a, "mp=shared", NULL), 0);
	write_file(sdir, "s.tif", 999, 2, file, sizeof(file));
	make_meta(&m, &src_a, "mp=shared", 999, 2);
	REQUIRE_RC(commit_wait(st, &k, file, &m), 0);
	REQUIRE(!exists("%s", file));
	fd = rfs_store_open_object(st, &k);
	REQUIRE(fd >= 0 && fd_matches(fd, 4321, 1));
	close(fd);

	rfs_key_make(&k, &src_a, "mp=child");
	write_file(sdir, "c.tif", 2222, 3, file, sizeof(file));
	make_meta(&m, &src_a, "mp=child", 2222, 3);
	REQUIRE_RC(commit_wait(st, &k, file, &m), 0);
	rfs_store_close(st);
	return 0;
}

static void test_two_processes(const char *dir, const char *self)
{
	rfs_store *st;
	struct rfs_store_meta m;
	struct rfs_store_entry e;
	char sdir[512], file[600];
	uint64_t objs0, bytes0, objs, bytes;
	rfs_key k;
	pid_t pid;
	int status;

	REQUIRE_RC(rfs_store_open(dir, &st), 0);
	REQUIRE_RC(rfs_store_stats(st, &objs0, &bytes0), 0);
	REQUIRE_RC(rfs_store_scratch_dir(st, 0, sdir, sizeof(sdir)), 0);
	rfs_key_make(&k, &src_a, "mp=shared");
	write_file(sdir, "s.tif", 4321, 1, file, sizeof(file));
	make_meta(&m, &src_a, "mp=shared", 4321, 1);
	REQUIRE_RC(commit_wait(st, &k, file, &m), 0);

	pid = fork();
	if (pid == 0) {
		execl(self, self, "--child", dir, (char *)NULL);
		_exit(127);
	}
	REQUIRE(pid > 0);
	REQUIRE(waitpid(pid, &status, 0) == pid);
	REQUIRE(WIFEXITED(status) && WEXITSTATUS(status) == 0);

	REQUIRE_RC(rfs_store_lookup(st, &k, &src_a, "mp=shared", &e), 0);
	REQUIRE(e.size == 4321 && e.checksum == pattern_checksum(4321, 1));
	rfs_key_make(&k, &src_a, "mp=child");
	REQUIRE_RC(rfs_store_lookup(st, &k, &src_a, "mp=child", &e), 0);
	REQUIRE(e.size == 2222 && e.checksum == pattern_checksum(2222, 3));
	REQUIRE_RC(rfs_store_stats(st, &objs, &bytes), 0);
	REQUIRE(objs == objs0 + 2 && bytes == bytes0 + 4321 + 2222);
	REQUIRE(exists("%s", sdir));
	rfs_store_close(st);
}
int main(int argc, char **argv)
{
	char dir[600];

	if (argc == 3 && !strcmp(argv[1], "--child")) {
		pathf(root, sizeof(root), "(parent's)");
		return child_main(argv[2]);
	}

	if (root_make())
		return 1;
	pathf(dir, sizeof(dir), "%s/store", root);

	test_keys();
	test_basic(dir);
	test_repair(dir);
	test_concurrent(dir);
	test_drain(dir);
	{
		/* argv[0], not /proc/self/exe, so valgrind can follow it */
		char *self = realpath(argv[0], NULL);

		test_two_processes(dir, self ? self : "/proc/self/exe");
		free(self);
	}
	test_refuse();
	test_relative();

	root_remove();
	return check_report();
}
