/* test_store_content.c - content records (cache/content.c note 12)
 * against real LMDB in a temporary directory: put, get, survival across
 * a reopen and a clear, gc of changed, removed and unmounted sources.
 *
 * Oracles: the hashes and identities the test made up and put, the
 * identity of real files from stat(2). */
#include <errno.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "rasterfs/err.h"
#include "rasterfs/store.h"
#include "check.h" /* tests/unit */

static char root[64];

static int rm_cb(const char *path, const struct stat *sb, int type,
		 struct FTW *ftw)
{
	(void)sb;
	(void)type;
	(void)ftw;
	return remove(path);
}

static void write_text(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	if (!f || fputs(text, f) < 0 || fclose(f) != 0) {
		perror(path);
		exit(1);
	}
}

static void id_of(const char *path, struct rfs_src_id *id)
{
	struct stat st;

	if (stat(path, &st) < 0) {
		perror(path);
		exit(1);
	}
	rfs_src_id_from_stat(id, &st);
}

int main(void)
{
	char dir[128], a[128], b[128], gone[160];
	unsigned char h1[16], h2[16], h3[16], out[16];
	struct rfs_src_id ida, idb, idg = { 7, 8, 9, 10 }, idn = { 1, 1, 1, 1 };
	rfs_store *st;
	uint64_t n, removed;
	long pid;

	snprintf(root, sizeof(root), "/tmp/rfs-test-content-XXXXXX");
	if (!mkdtemp(root))
		return 1;
	snprintf(dir, sizeof(dir), "%s/store", root);
	snprintf(a, sizeof(a), "%s/a.tif", root);
	snprintf(b, sizeof(b), "%s/b.tif", root);
	snprintf(gone, sizeof(gone), "%s/unmounted/c.tif", root);
	write_text(a, "source a");
	write_text(b, "source b");
	id_of(a, &ida);
	id_of(b, &idb);
	for (int i = 0; i < 16; i++) {
		h1[i] = (unsigned char)i;
		h2[i] = (unsigned char)(0xf0 ^ i);
		h3[i] = (unsigned char)(0x55 + i);
	}

	CHECK(rfs_store_open(dir, &st) == 0, "open");
	CHECK(rfs_store_content_get(st, &ida, out) == -ENOENT,
	      "no record yet");
	CHECK(rfs_store_content_count(st, &n) == 0 && n == 0, "count 0");
	CHECK(rfs_store_content_put(st, &ida, h1, a) == 0, "put a");
	CHECK(rfs_store_content_put(st, &idb, h2, b) == 0, "put b");
	CHECK(rfs_store_content_put(st, &idg, h3, gone) == 0, "put gone");
	CHECK(rfs_store_content_put(st, &idn, h3, NULL) == 0, "put no path");
	CHECK(rfs_store_flush(st) == 0, "flush");
	CHECK(rfs_store_content_get(st, &ida, out) == 0 &&
	      memcmp(out, h1, 16) == 0, "get a");
	CHECK(rfs_store_content_get(st, &idb, out) == 0 &&
	      memcmp(out, h2, 16) == 0, "get b");
	/* another identity of the same path is another record */
	struct rfs_src_id ida2 = ida;
	ida2.mtime_ns++;
	CHECK(rfs_store_content_get(st, &ida2, out) == -ENOENT,
	      "another mtime: no record");
	CHECK(rfs_store_content_count(st, &n) == 0 && n == 4, "count 4");
	/* counters, the limit and entries are untouched by the records */
	uint64_t objects = 1, bytes = 1;
	CHECK(rfs_store_stats(st, &objects, &bytes) == 0 && objects == 0 &&
	      bytes == 0, "counters untouched");
	rfs_store_close(st);

	/* a reopen (with repair) keeps them; a clear does too */
	CHECK(rfs_store_open(dir, &st) == 0, "reopen");
	CHECK(rfs_store_content_get(st, &idb, out) == 0 &&
	      memcmp(out, h2, 16) == 0, "get b after reopen");
	CHECK(rfs_store_clear(st, &removed, &pid) == 0, "clear");
	CHECK(rfs_store_content_count(st, &n) == 0 && n == 4,
	      "clear keeps the content records");

	/* gc: b changes (new mtime and size), the unmounted one's directory
	 * is missing (kept), the record without a path is kept */
	write_text(b, "source b, rewritten");
	struct rfs_store_gc_report rep;
	CHECK(rfs_store_gc(st, 0, &rep) == 0, "gc");
	CHECK(rfs_store_content_get(st, &ida, out) == 0, "gc keeps a");
	CHECK(rfs_store_content_get(st, &idb, out) == -ENOENT,
	      "gc drops changed b");
	CHECK(rfs_store_content_get(st, &idg, out) == 0,
	      "gc keeps a source on a missing directory");
	CHECK(rfs_store_content_get(st, &idn, out) == 0,
	      "gc keeps a record without a path");
	/* a removed from a directory that exists: dropped */
	unlink(a);
	CHECK(rfs_store_gc(st, 0, &rep) == 0, "gc again");
	CHECK(rfs_store_content_get(st, &ida, out) == -ENOENT,
	      "gc drops removed a");
	CHECK(rfs_store_content_count(st, &n) == 0 && n == 2, "count 2");
	rfs_store_close(st);

	/* a read-only open reads them */
	struct rfs_store_options ro = { .flags = RFS_STORE_RDONLY };
	CHECK(rfs_store_open_opts(dir, &ro, &st) == 0, "open read-only");
	CHECK(rfs_store_content_get(st, &idg, out) == 0 &&
	      memcmp(out, h3, 16) == 0, "read-only get");
	CHECK(rfs_store_content_put(st, &idg, h1, NULL) == -EROFS,
	      "read-only put refused");
	rfs_store_close(st);

	if (nftw(root, rm_cb, 16, FTW_DEPTH | FTW_PHYS) < 0)
		fprintf(stderr, "warning: cannot remove %s\n", root);
	return check_report();
}
