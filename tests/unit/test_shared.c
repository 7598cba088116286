/* test_shared.c - portable keys (pkey.h), the shared tier's directory
 * (shared.h) and the flat JSON reader (json.h), on real files in a
 * temporary directory.
 *
 * Oracles: XXH3 computed here in one shot over the bytes the test wrote
 * or laid out by hand (the code streams them), the bytes the test put in,
 * stat(2) of the files, and damage the test planted. */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define XXH_STATIC_LINKING_ONLY
#include <xxhash.h>

#include "rasterfs/err.h"
#include "rasterfs/json.h"
#include "rasterfs/log.h"
#include "rasterfs/pkey.h"
#include "rasterfs/shared.h"
#include "rasterfs/store.h"
#include "check.h"

static char root[64];

static int rm_cb(const char *path, const struct stat *sb, int type,
		 struct FTW *ftw)
{
	(void)sb;
	(void)type;
	(void)ftw;
	return remove(path);
}

static void put(const char *path, const void *buf, size_t len)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);

	if (fd < 0 || write(fd, buf, len) != (ssize_t)len || close(fd) < 0) {
		perror(path);
		exit(1);
	}
}

static size_t slurp(const char *path, char *buf, size_t cap)
{
	int fd = open(path, O_RDONLY);
	ssize_t n = fd < 0 ? -1 : read(fd, buf, cap - 1);

	if (fd >= 0)
		close(fd);
	buf[n < 0 ? 0 : n] = '\0';
	return n < 0 ? 0 : (size_t)n;
}

static int exists(const char *fmt, const char *a, const char *b)
{
	char p[1024];
	struct stat st;

	snprintf(p, sizeof(p), fmt, a, b);
	return stat(p, &st) == 0;
}

static int count_files(const char *dir)
{
	char cmd[512], out[64];
	FILE *f;

	snprintf(cmd, sizeof(cmd), "find %s -type f | wc -l", dir);
	f = popen(cmd, "r");
	if (!f || !fgets(out, sizeof(out), f))
		return -1;
	pclose(f);
	return atoi(out);
}

/* ---- json ------------------------------------------------------------ */

static void test_json(void)
{
	char v[64];
	const char *t = " {\"a\": \"x\\\"y\\u00e9\\n\", \"b\" : 12, "
			"\"c\": null, \"d\": true, \"e\": -3.5e2} \n";

	CHECK(rfs_json_flat_get(t, "a", v, sizeof(v)) == 0 &&
	      strcmp(v, "x\"y\xc3\xa9\n") == 0, "string with escapes: %s", v);
	CHECK(rfs_json_flat_get(t, "b", v, sizeof(v)) == 0 &&
	      strcmp(v, "12") == 0, "number");
	CHECK(rfs_json_flat_get(t, "c", v, sizeof(v)) == 0 && !v[0], "null");
	CHECK(rfs_json_flat_get(t, "d", v, sizeof(v)) == 0 &&
	      strcmp(v, "true") == 0, "literal");
	CHECK(rfs_json_flat_get(t, "e", v, sizeof(v)) == 0 &&
	      strcmp(v, "-3.5e2") == 0, "exponent");
	CHECK(rfs_json_flat_get(t, "z", v, sizeof(v)) == -ENOENT, "missing");
	CHECK(rfs_json_flat_get(t, "a", v, 3) == -ENOSPC, "too small");
	CHECK(rfs_json_flat_get("{\"a\": 1", "a", v, sizeof(v)) == -EINVAL,
	      "unterminated");
	CHECK(rfs_json_flat_get("{\"a\": {\"b\": 1}}", "a", v, sizeof(v)) ==
	      -EINVAL, "nested refused");
	CHECK(rfs_json_flat_get("{\"a\": \"\\u0000\"}", "a", v, sizeof(v)) ==
	      -EINVAL, "NUL refused");
	CHECK(rfs_json_flat_get("{\"a\": 1} x", "a", v, sizeof(v)) == -EINVAL,
	      "trailing text");
	CHECK(rfs_json_flat_get("{}", "a", v, sizeof(v)) == -ENOENT, "empty");
	/* the value of a key, not a key inside another value */
	CHECK(rfs_json_flat_get("{\"m\": \"\\\"a\\\": 9\", \"a\": 1}", "a", v,
				sizeof(v)) == 0 && strcmp(v, "1") == 0,
	      "key in a string is not a key");
}

/* ---- pkey ------------------------------------------------------------ */

static void le64(unsigned char *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (unsigned char)(v >> (8 * i));
}

static void test_pkey(void)
{
	char path[128];
	unsigned char data[3 << 20], got[16];
	struct rfs_src_id id;
	struct stat st;
	uint64_t bytes = 0;
	XXH128_canonical_t c;

	for (size_t i = 0; i < sizeof(data); i++)
		data[i] = (unsigned char)(i * 2654435761u >> 13);
	snprintf(path, sizeof(path), "%s/src.bin", root);
	put(path, data, sizeof(data));
	int fd = open(path, O_RDONLY);
	fstat(fd, &st);
	rfs_src_id_from_stat(&id, &st);
	CHECK(rfs_pkey_content_fd(fd, &id, got, &bytes) == 0 &&
	      bytes == sizeof(data), "content hash of 3 MiB");
	XXH128_canonicalFromHash(&c, XXH3_128bits(data, sizeof(data)));
	CHECK(memcmp(got, c.digest, 16) == 0, "= one-shot XXH3-128");
	CHECK(lseek(fd, 0, SEEK_CUR) == 0, "offset untouched");
	struct rfs_src_id moved = id;
	moved.mtime_ns++;
	CHECK(rfs_pkey_content_fd(fd, &moved, got, NULL) ==
	      -RFS_E_SOURCE_CHANGED, "another mtime: changed");
	moved = id;
	moved.size += 10;
	CHECK(rfs_pkey_content_fd(fd, &moved, got, NULL) ==
	      -RFS_E_SOURCE_CHANGED, "shorter than its size: changed");
	close(fd);

	/* the key's layout, assembled by hand (pkey.c) */
	unsigned char msg[256], content[16];
	const char *vers = "gdal=1 proj=2 epsg=3", *canon = "@focal=3";
	size_t o = 0;
	memcpy(content, c.digest, 16);
	memcpy(msg, "rasterfs-pkey", 14);
	o = 14;
	le64(msg + o, RFS_FORMAT_VERSION);
	o += 8;
	memcpy(msg + o, content, 16);
	o += 16;
	le64(msg + o, strlen(vers));
	o += 8;
	memcpy(msg + o, vers, strlen(vers));
	o += strlen(vers);
	le64(msg + o, strlen(canon));
	o += 8;
	memcpy(msg + o, canon, strlen(canon));
	o += strlen(canon);
	rfs_key k;
	rfs_pkey_make(&k, content, vers, canon);
	XXH128_canonicalFromHash(&c, XXH3_128bits(msg, o));
	CHECK(memcmp(k.b, c.digest, 16) == 0, "pkey = hand-made layout");
	rfs_key k2;
	rfs_pkey_make(&k2, content, "gdal=1 proj=2 epsg=4", canon);
	CHECK(memcmp(k.b, k2.b, 16) != 0, "another EPSG database: other key");
	const char *v = rfs_pkey_versions();
	CHECK(!strncmp(v, "gdal=", 5) && strstr(v, " proj=") &&
	      strstr(v, " epsg="), "versions text: %s", v);
	char hex[RFS_PKEY_CONTENT_HEX];
	unsigned char back[16];
	rfs_pkey_content_hex(content, hex);
	CHECK(rfs_pkey_content_parse(hex, back) == 0 &&
	      !memcmp(back, content, 16), "hex round trip");
}

/* ---- the directory ---------------------------------------------------- */

static void meta_for(struct rfs_shared_meta *m, unsigned seed,
		     const char *canon)
{
	unsigned char content[16];

	for (int i = 0; i < 16; i++)
		content[i] = (unsigned char)(seed * 31 + i);
	rfs_shared_meta_init(m, content, "gdal=t proj=t epsg=t", canon);
	snprintf(m->source, sizeof(m->source), "sub/s%u.tif", seed);
}

/* An object file of len bytes from seed; its XXH3-64 in *sum. */
static int object_fd(unsigned seed, size_t len, uint64_t *sum)
{
	char path[128];
	unsigned char *b = malloc(len);

	for (size_t i = 0; i < len; i++)
		b[i] = (unsigned char)(seed + i * 7);
	*sum = XXH3_64bits(b, len);
	snprintf(path, sizeof(path), "%s/obj%u", root, seed);
	put(path, b, len);
	free(b);
	return open(path, O_RDONLY);
}

static void test_dir(void)
{
	char dir[128], path[512], hex[RFS_KEY_HEX], buf[1 << 16];
	struct rfs_shared_meta m, f;
	rfs_shared *sh;
	uint64_t sum;
	int pub;

	/* someone else's directory is refused; another format too */
	snprintf(dir, sizeof(dir), "%s/foreign", root);
	mkdir(dir, 0700);
	snprintf(path, sizeof(path), "%s/notes.txt", dir);
	put(path, "x", 1);
	CHECK(rfs_shared_open(dir, 0700, &sh) == -RFS_E_SHARED,
	      "a directory with files but no FORMAT is refused");
	snprintf(path, sizeof(path), "%s/FORMAT", dir);
	put(path, "rasterfs-shared 9\n", 18);
	CHECK(rfs_shared_open(dir, 0700, &sh) == -RFS_E_SHARED,
	      "another format is refused");

	snprintf(dir, sizeof(dir), "%s/tier/deep", root);
	CHECK(rfs_shared_open(dir, 0700, &sh) == 0, "open makes it");
	CHECK(exists("%s/%s", dir, "FORMAT") && exists("%s/%s", dir, "objects")
	      && exists("%s/%s", dir, "claims") && exists("%s/%s", dir, "tmp"),
	      "layout");
	slurp(path, buf, sizeof(buf));

	meta_for(&m, 1, "@focal=3,mean,square");
	rfs_key_hex(&m.pkey, hex);
	f = m;
	CHECK(rfs_shared_find(sh, &f) == -ENOENT, "not there yet");

	/* a publication whose bytes are not the checksum's: nothing */
	int fd = object_fd(1, 300000, &sum);
	m.size = 300000;
	m.checksum = sum ^ 1;
	CHECK(rfs_shared_publish(sh, &m, fd, &pub) == -EIO && !pub,
	      "wrong checksum: not published");
	CHECK(!exists("%s/objects/%.2s", dir, hex) ||
	      count_files(dir) == 1, "no file but FORMAT after a refusal");
	m.checksum = sum;
	CHECK(rfs_shared_publish(sh, &m, fd, &pub) == 0 && pub, "published");
	CHECK(rfs_shared_publish(sh, &m, fd, &pub) == 0 && !pub,
	      "published already: left alone");
	close(fd);
	snprintf(path, sizeof(path), "%s/tmp", dir);
	CHECK(count_files(path) == 0, "no temporary file left");
	snprintf(path, sizeof(path), "%s/objects/%.2s/%s.json", dir, hex, hex);
	slurp(path, buf, sizeof(buf));
	char v[128];
	CHECK(rfs_json_flat_get(buf, "canonical", v, sizeof(v)) == 0 &&
	      !strcmp(v, "@focal=3,mean,square"), "sidecar: canonical");
	CHECK(rfs_json_flat_get(buf, "size", v, sizeof(v)) == 0 &&
	      !strcmp(v, "300000"), "sidecar: size");
	CHECK(rfs_json_flat_get(buf, "source", v, sizeof(v)) == 0 &&
	      !strcmp(v, "sub/s1.tif"), "sidecar: source");

	f = m;
	f.size = f.checksum = 0;
	CHECK(rfs_shared_find(sh, &f) == 0 && f.size == 300000 &&
	      f.checksum == sum, "found with its size and checksum");
	snprintf(path, sizeof(path), "%s/fetched", root);
	fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
	CHECK(rfs_shared_fetch(sh, &f, fd) == 0, "fetched");
	close(fd);
	{
		static unsigned char a[300000];
		fd = open(path, O_RDONLY);
		CHECK(read(fd, a, sizeof(a)) == (ssize_t)sizeof(a) &&
		      XXH3_64bits(a, sizeof(a)) == sum, "the same bytes");
		close(fd);
	}

	/* another chain with a sidecar under this key: a collision, a miss */
	struct rfs_shared_meta other;
	meta_for(&other, 1, "@focal=5,mean,square");
	other.pkey = m.pkey;
	CHECK(rfs_shared_find(sh, &other) == -ENOENT,
	      "other key material: a miss");

	/* damage: one byte of the object flipped, same size */
	snprintf(path, sizeof(path), "%s/objects/%.2s/%s.tif", dir, hex, hex);
	fd = open(path, O_RDWR);
	unsigned char byte;
	pread(fd, &byte, 1, 1000);
	byte ^= 0xff;
	pwrite(fd, &byte, 1, 1000);
	close(fd);
	f = m;
	CHECK(rfs_shared_find(sh, &f) == 0, "found (size is right)");
	snprintf(path, sizeof(path), "%s/fetched2", root);
	fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
	CHECK(rfs_shared_fetch(sh, &f, fd) == -RFS_E_SHARED_CORRUPT,
	      "corrupt object refused");
	close(fd);
	f = m;
	CHECK(rfs_shared_find(sh, &f) == -ENOENT, "and not found again");
	snprintf(path, sizeof(path), "%s/corrupt", dir);
	CHECK(count_files(path) == 1, "its sidecar moved to corrupt/");
	/* a publisher replaces it */
	fd = object_fd(1, 300000, &sum);
	CHECK(rfs_shared_publish(sh, &m, fd, &pub) == 0 && pub,
	      "published again over the corrupt one");
	close(fd);
	f = m;
	snprintf(path, sizeof(path), "%s/fetched3", root);
	fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
	CHECK(rfs_shared_find(sh, &f) == 0 && rfs_shared_fetch(sh, &f, fd) == 0,
	      "sound again");
	close(fd);

	/* a truncated object: found corrupt at once */
	snprintf(path, sizeof(path), "%s/objects/%.2s/%s.tif", dir, hex, hex);
	CHECK(truncate(path, 1000) == 0, "truncate");
	f = m;
	CHECK(rfs_shared_find(sh, &f) == -RFS_E_SHARED_CORRUPT,
	      "short object: corrupt");
	/* a garbage sidecar */
	meta_for(&m, 2, "@slope=degrees");
	rfs_key_hex(&m.pkey, hex);
	fd = object_fd(2, 5000, &sum);
	m.size = 5000;
	m.checksum = sum;
	CHECK(rfs_shared_publish(sh, &m, fd, &pub) == 0 && pub, "second");
	close(fd);
	snprintf(path, sizeof(path), "%s/objects/%.2s/%s.json", dir, hex, hex);
	put(path, "{\"format\": 1", 12);
	f = m;
	CHECK(rfs_shared_find(sh, &f) == -RFS_E_SHARED_CORRUPT,
	      "garbage sidecar: corrupt");
	rfs_shared_close(sh);
}

/* ---- claims ----------------------------------------------------------- */

static void test_claims(void)
{
	char dir[128];
	struct rfs_shared_meta m;
	struct rfs_shared_claim *a = NULL, *b = NULL;
	struct rfs_shared_claim_info info, again;
	rfs_shared *sh;

	snprintf(dir, sizeof(dir), "%s/claims", root);
	CHECK(rfs_shared_open(dir, 0700, &sh) == 0, "open");
	meta_for(&m, 3, "@hillshade");
	CHECK(rfs_shared_claim_peek(sh, &m.pkey, &info) == -ENOENT,
	      "no claim");
	CHECK(rfs_shared_claim_take(sh, &m.pkey, 7, &a) == 0, "claimed");
	CHECK(rfs_shared_claim_take(sh, &m.pkey, 7, &b) == -EEXIST,
	      "a second claim is refused");
	CHECK(rfs_shared_claim_peek(sh, &m.pkey, &info) == 0 &&
	      info.lease == 7 && info.pid == (long)getpid() &&
	      !strcmp(info.host, rfs_shared_host(sh)), "peek: %s %ld %u",
	      info.host, info.pid, info.lease);
	struct timespec ts = { 0, 20000000 };
	nanosleep(&ts, NULL);
	CHECK(rfs_shared_claim_renew(a) == 0, "renewed");
	CHECK(rfs_shared_claim_peek(sh, &m.pkey, &again) == 0 &&
	      again.ino == info.ino && again.mtime_ns > info.mtime_ns,
	      "a renewal moves its mtime");
	/* a takeover judged on an old look fails and leaves the claim */
	CHECK(rfs_shared_claim_takeover(sh, &m.pkey, &info, 5, &b) == -EAGAIN,
	      "takeover of a renewed claim refused");
	CHECK(rfs_shared_claim_peek(sh, &m.pkey, &info) == 0 &&
	      info.ino == again.ino, "the claim is still there");
	CHECK(rfs_shared_claim_renew(a) == 0, "still ours");
	/* judged on the current look: taken over */
	CHECK(rfs_shared_claim_peek(sh, &m.pkey, &info) == 0, "peek");
	CHECK(rfs_shared_claim_takeover(sh, &m.pkey, &info, 5, &b) == 0,
	      "taken over");
	CHECK(rfs_shared_claim_renew(a) == -ENOENT,
	      "the old holder learns it lost it");
	rfs_shared_claim_release(a); /* must not remove b's file */
	CHECK(rfs_shared_claim_peek(sh, &m.pkey, &again) == 0 &&
	      again.lease == 5, "b's claim survives a's release");
	rfs_shared_claim_release(b);
	CHECK(rfs_shared_claim_peek(sh, &m.pkey, &info) == -ENOENT,
	      "released");
	char path[256];
	snprintf(path, sizeof(path), "%s/claims", dir);
	CHECK(count_files(path) == 0, "no file left in claims/");
	rfs_shared_close(sh);
}

/* ---- gc --------------------------------------------------------------- */

static void age(const char *dir, const rfs_key *k, const char *ext,
		time_t secs)
{
	char hex[RFS_KEY_HEX], path[512];
	struct timespec t[2];

	rfs_key_hex(k, hex);
	snprintf(path, sizeof(path), "%s/objects/%.2s/%s.%s", dir, hex, hex,
		 ext);
	clock_gettime(CLOCK_REALTIME, &t[0]);
	t[0].tv_sec -= secs;
	t[1] = t[0];
	utimensat(AT_FDCWD, path, t, 0);
}

static void test_gc(void)
{
	char dir[128], path[512];
	struct rfs_shared_meta m[4];
	struct rfs_shared_gc_report r;
	rfs_shared *sh;
	uint64_t sum;
	int pub;

	snprintf(dir, sizeof(dir), "%s/gc", root);
	CHECK(rfs_shared_gc(dir, 0, 0, &r) == -RFS_E_SHARED,
	      "gc of no tier refused");
	CHECK(rfs_shared_open(dir, 0700, &sh) == 0, "open");
	for (unsigned i = 0; i < 4; i++) {
		meta_for(&m[i], 10 + i, "@focal=3,mean,square");
		int fd = object_fd(10 + i, 1000, &sum);
		m[i].size = 1000;
		m[i].checksum = sum;
		CHECK(rfs_shared_publish(sh, &m[i], fd, &pub) == 0 && pub,
		      "publish %u", i);
		close(fd);
	}
	/* used: 0 a week ago, 1 a day ago, 2 an hour ago, 3 now */
	age(dir, &m[0].pkey, "json", 7 * 86400);
	age(dir, &m[1].pkey, "json", 86400);
	age(dir, &m[2].pkey, "json", 3700);
	/* an orphan object (a publisher died between its renames), old */
	char hex[RFS_KEY_HEX];
	struct rfs_shared_meta o;
	meta_for(&o, 99, "@slope=degrees");
	rfs_key_hex(&o.pkey, hex);
	snprintf(path, sizeof(path), "%s/objects/%.2s", dir, hex);
	mkdir(path, 0700);
	snprintf(path, sizeof(path), "%s/objects/%.2s/%s.tif", dir, hex, hex);
	put(path, "orphan", 6);
	age(dir, &o.pkey, "tif", 7200);
	/* a stale temporary file and a stale claim, two days old */
	snprintf(path, sizeof(path), "%s/tmp/x.host.1.0.tif", dir);
	put(path, "partial", 7);
	struct timespec t[2];
	clock_gettime(CLOCK_REALTIME, &t[0]);
	t[0].tv_sec -= 2 * 86400;
	t[1] = t[0];
	utimensat(AT_FDCWD, path, t, 0);
	snprintf(path, sizeof(path), "%s/claims/%s", dir, hex);
	put(path, "host=ghost\npid=1\n", 17);
	utimensat(AT_FDCWD, path, t, 0);
	rfs_shared_close(sh);

	/* limit 2500 bytes, min_age 1 h: 0 and 1 go (oldest first), 2 is
	 * old enough but not needed, 3 is young */
	CHECK(rfs_shared_gc(dir, 2500, 3600, &r) == 0, "gc");
	CHECK(r.objects == 4 && r.bytes == 4000, "counted %llu %llu",
	      (unsigned long long)r.objects, (unsigned long long)r.bytes);
	CHECK(r.removed == 2 && r.removed_bytes == 2000, "removed %llu",
	      (unsigned long long)r.removed);
	CHECK(r.orphans == 1 && r.tmp == 1 && r.claims == 1,
	      "stale leftovers removed");
	for (unsigned i = 0; i < 4; i++) {
		rfs_key_hex(&m[i].pkey, hex);
		snprintf(path, sizeof(path), "%s/objects/%.2s/%s.json", dir,
			 hex, hex);
		struct stat st;
		CHECK((stat(path, &st) == 0) == (i >= 2), "object %u %s", i,
		      i >= 2 ? "kept" : "evicted");
	}
	/* limit 0 bytes, min_age 1 h: 2 goes, 3 is kept (young) */
	CHECK(rfs_shared_gc(dir, 1, 3600, &r) == 0 && r.removed == 1 &&
	      r.young == 1, "young kept over the limit");
}

int main(void)
{
	snprintf(root, sizeof(root), "/tmp/rfs-test-shared-XXXXXX");
	if (!mkdtemp(root))
		return 1;
	rfs_log_init("test_shared", RFS_LOG_STDERR, LOG_CRIT);
	test_json();
	test_pkey();
	test_dir();
	test_claims();
	test_gc();
	if (nftw(root, rm_cb, 16, FTW_DEPTH | FTW_PHYS) < 0)
		fprintf(stderr, "warning: cannot remove %s\n", root);
	return check_report();
}
