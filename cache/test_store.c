/* test_store.c - the cache store against real LMDB in a temporary dir.
 *
 * Oracles: keys are recomputed here from the serialisation documented in
 * cache/README.md; object bytes and checksums are compared with what the
 * test wrote; repair results with the files the test planted. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <pthread.h>
#include <pwd.h>
#include <stdarg.h>
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
#include "check.h" /* tests/unit */

static char root[64];

/* The first failed check ends the test (the temp dir is kept for a look):
 * later steps build on earlier ones, and a store that did not open is not
 * used.  REQUIRE and REQUIRE_RC count through tests/unit/check.h. */
static void fail(const char *file, int line, const char *fmt, ...)
	__attribute__((format(printf, 3, 4), noreturn));
static void fail(const char *file, int line, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	check(0, "%s:%d: %s", file, line, msg);
	printf("temp dir %s kept\n", root);
	exit(check_report());
}

#define REQUIRE(cond) \
	do { \
		if (cond) \
			check(1, "%s", #cond); \
		else \
			fail(__FILE__, __LINE__, "%s", #cond); \
	} while (0)

#define REQUIRE_RC(expr, want) \
	do { \
		int rc_ = (expr); \
		if (rc_ == (want)) \
			check(1, "%s", #expr); \
		else \
			fail(__FILE__, __LINE__, "%s = %d (%s), want %d", \
			     #expr, rc_, rfs_strerror(rc_), (want)); \
	} while (0)

/* ---- helpers ---------------------------------------------------------- */

/* snprintf that fails the test on truncation. */
static void pathf(char *buf, size_t len, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void pathf(char *buf, size_t len, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(buf, len, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= len) {
		fprintf(stderr, "FAIL: path too long: %s\n", fmt);
		exit(1);
	}
}

struct waiter {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int done;
	int rc;
};

static void waiter_cb(void *arg, int rc)
{
	struct waiter *w = arg;

	pthread_mutex_lock(&w->mu);
	w->done++;
	w->rc = rc;
	pthread_cond_broadcast(&w->cv);
	pthread_mutex_unlock(&w->mu);
}

static void waiter_init(struct waiter *w)
{
	pthread_mutex_init(&w->mu, NULL);
	pthread_cond_init(&w->cv, NULL);
	w->done = 0;
	w->rc = 1;
}

/* Wait until w has seen n callbacks (30 s at most). */
static int waiter_wait(struct waiter *w, int n)
{
	struct timespec dl;
	int ok = 1;

	clock_gettime(CLOCK_REALTIME, &dl);
	dl.tv_sec += 30;
	pthread_mutex_lock(&w->mu);
	while (w->done < n && ok)
		ok = pthread_cond_timedwait(&w->cv, &w->mu, &dl) == 0;
	ok = w->done == n;
	pthread_mutex_unlock(&w->mu);
	return ok;
}

static void waiter_destroy(struct waiter *w)
{
	pthread_cond_destroy(&w->cv);
	pthread_mutex_destroy(&w->mu);
}

/* Deterministic bytes for object `seed`. */
static void fill(unsigned char *buf, size_t len, unsigned seed)
{
	uint32_t x = seed * 2654435761u + 1;

	for (size_t i = 0; i < len; i++) {
		x ^= x << 13;
		x ^= x >> 17;
		x ^= x << 5;
		buf[i] = (unsigned char)x;
	}
}

/* Write len bytes of pattern seed to dir/name, fsync; path to out. */
static void write_file(const char *dir, const char *name, size_t len,
		       unsigned seed, char *out, size_t outlen)
{
	unsigned char *buf = malloc(len ? len : 1);
	int fd;

	if (!buf)
		fail(__FILE__, __LINE__, "malloc");
	fill(buf, len, seed);
	pathf(out, outlen, "%s/%s", dir, name);
	fd = open(out, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0 || write(fd, buf, len) != (ssize_t)len || fsync(fd) < 0)
		fail(__FILE__, __LINE__, "write %s: %s", out, strerror(errno));
	close(fd);
	free(buf);
}

static uint64_t pattern_checksum(size_t len, unsigned seed)
{
	unsigned char *buf = malloc(len ? len : 1);
	uint64_t h;

	fill(buf, len, seed);
	h = XXH3_64bits(buf, len);
	free(buf);
	return h;
}

/* Read the whole fd and compare with pattern (len, seed). */
static int fd_matches(int fd, size_t len, unsigned seed)
{
	unsigned char *want = malloc(len + 1), *got = malloc(len + 1);
	ssize_t n, total = 0;
	int ok;

	fill(want, len, seed);
	while ((n = read(fd, got + total, len + 1 - (size_t)total)) > 0)
		total += n;
	ok = total == (ssize_t)len && memcmp(want, got, len) == 0;
	free(want);
	free(got);
	return ok;
}

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

static int rm_cb(const char *path, const struct stat *sb, int type,
		 struct FTW *ftw)
{
	(void)sb;
	(void)type;
	(void)ftw;
	return remove(path);
}

static int commit_wait(rfs_store *st, const rfs_key *key, const char *file,
		       const struct rfs_store_meta *meta)
{
	struct waiter w;
	int rc;

	waiter_init(&w);
	rc = rfs_store_commit(st, key, file, meta, waiter_cb, &w);
	if (rc == 0) {
		if (!waiter_wait(&w, 1))
			fail(__FILE__, __LINE__, "commit cb never came");
		rc = w.rc;
	}
	waiter_destroy(&w);
	return rc;
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

static const struct rfs_src_id src_a = { 1, 2, 3, 4 };
static const char *canon_a = "focal=3,mean,square";

static void make_meta(struct rfs_store_meta *m, const struct rfs_src_id *src,
		      const char *canonical, size_t len, unsigned seed)
{
	m->src = *src;
	m->canonical = canonical;
	m->source = "sub/dem.tif";
	m->size = len;
	m->checksum = pattern_checksum(len, seed);
}

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

static unsigned problems_seen[8];

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

/* ---- the default directory, and making it ---------------------------- */

/* Oracle: the rule as README.md states it ($XDG_CACHE_HOME/rasterfs, else
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

int main(int argc, char **argv)
{
	char dir[600];

	if (argc == 3 && !strcmp(argv[1], "--child")) {
		pathf(root, sizeof(root), "(parent's)");
		return child_main(argv[2]);
	}

	pathf(root, sizeof(root), "/tmp/rfs-test-store-XXXXXX");
	if (!mkdtemp(root)) {
		perror("mkdtemp");
		return 1;
	}
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
	test_sizes();
	pathf(dir, sizeof(dir), "%s/private", root);
	test_private(dir);
	pathf(dir, sizeof(dir), "%s/evict", root);
	test_evict(dir);
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
	test_default_dir();
	test_make_dir();

	if (nftw(root, rm_cb, 16, FTW_DEPTH | FTW_PHYS) < 0)
		fprintf(stderr, "warning: cannot remove %s\n", root);
	return check_report();
}
