/* test_store.h - what the cache store's two test programs share: the
 * stop-at-first-failure checks, files of known bytes, waiting for a commit.
 * Header-only, as tests/unit/check.h is: each program is one C file.  Only
 * what both use lives here (an unused static function would warn).
 */
#ifndef RASTERFS_TEST_STORE_H
#define RASTERFS_TEST_STORE_H

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
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

/* Make the test's temporary directory, root.  Returns 0, or 1 (said). */
static int root_make(void)
{
	pathf(root, sizeof(root), "/tmp/rfs-test-store-XXXXXX");
	if (!mkdtemp(root)) {
		perror("mkdtemp");
		return 1;
	}
	return 0;
}

static void root_remove(void)
{
	if (nftw(root, rm_cb, 16, FTW_DEPTH | FTW_PHYS) < 0)
		fprintf(stderr, "warning: cannot remove %s\n", root);
}

#endif
