/* pkey.c - portable keys (pkey.h): content hashes, library versions, the
 * key itself.
 *
 * Layout of the bytes hashed into a portable key (all integers unsigned
 * 64-bit little-endian; docs/cluster.md repeats it):
 *
 *   14  "rasterfs-pkey" and its NUL
 *    8  RFS_FORMAT_VERSION
 *   16  the content hash (XXH128's canonical byte order)
 *    8  V = length of the versions text
 *    V  the versions text
 *    8  C = length of the canonical chain
 *    C  the canonical chain
 *
 * Every variable field is preceded by its length, so two different
 * inputs never serialise to the same bytes.
 */
#define XXH_STATIC_LINKING_ONLY /* XXH3_state_t on the stack */
#include <xxhash.h>

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <gdal.h>
#include <proj.h>

#include "rasterfs/err.h"
#include "rasterfs/pkey.h"

/* Changing this, or anything fed to the hash, changes every portable key
 * (and so every object of every shared tier): bump RFS_FORMAT_VERSION in
 * the same change. */
static const char pkey_magic[] = "rasterfs-pkey";

#define READ_CHUNK (1u << 20)

static void le64(unsigned char *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (unsigned char)(v >> (8 * i));
}

int rfs_pkey_content_fd(int fd, const struct rfs_src_id *src,
			unsigned char out[RFS_PKEY_CONTENT], uint64_t *bytes)
{
	XXH3_state_t state;
	XXH128_canonical_t digest;
	struct stat st;
	struct rfs_src_id now;
	unsigned char *buf = malloc(READ_CHUNK);
	uint64_t off = 0;
	int rc = 0;

	if (!buf)
		return -ENOMEM;
	/* Read ahead generously: the whole file is read once, in order. */
	posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
	XXH3_INITSTATE(&state);
	XXH3_128bits_reset(&state);
	while (off < src->size) {
		size_t want = src->size - off < READ_CHUNK ?
			      (size_t)(src->size - off) : READ_CHUNK;
		ssize_t n = pread(fd, buf, want, (off_t)off);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			rc = -errno;
			goto out;
		}
		if (n == 0) {
			rc = -RFS_E_SOURCE_CHANGED; /* shorter than its size */
			goto out;
		}
		XXH3_128bits_update(&state, buf, (size_t)n);
		off += (uint64_t)n;
	}
	/* The bytes hashed are those of src only if the file did not change
	 * while we read it (a writer changes its mtime). */
	if (fstat(fd, &st) < 0) {
		rc = -errno;
		goto out;
	}
	rfs_src_id_from_stat(&now, &st);
	if (now.size != src->size || now.mtime_ns != src->mtime_ns) {
		rc = -RFS_E_SOURCE_CHANGED;
		goto out;
	}
	XXH128_canonicalFromHash(&digest, XXH3_128bits_digest(&state));
	static_assert(sizeof(digest.digest) == RFS_PKEY_CONTENT, "hash size");
	memcpy(out, digest.digest, RFS_PKEY_CONTENT);
	if (bytes)
		*bytes = off;
out:
	free(buf);
	return rc;
}

static pthread_once_t versions_once = PTHREAD_ONCE_INIT;
static char versions[RFS_PKEY_VERSIONS_MAX];

static void versions_init(void)
{
	PJ_INFO info = proj_info();
	PJ_CONTEXT *ctx = proj_context_create();
	const char *epsg = ctx ? proj_context_get_database_metadata(
					 ctx, "EPSG.VERSION") : NULL;

	/* The EPSG version of proj.db: a new database may define a CRS's
	 * transformations differently with the same PROJ. */
	snprintf(versions, sizeof(versions), "gdal=%s proj=%s epsg=%s",
		 GDALVersionInfo("RELEASE_NAME"),
		 info.version && info.version[0] ? info.version : "?", epsg ? epsg : "?");
	if (ctx)
		proj_context_destroy(ctx);
}

const char *rfs_pkey_versions(void)
{
	pthread_once(&versions_once, versions_init);
	return versions;
}

void rfs_pkey_make(rfs_key *out, const unsigned char content[RFS_PKEY_CONTENT],
		   const char *vers, const char *canonical)
{
	unsigned char head[sizeof(pkey_magic) + 8 + RFS_PKEY_CONTENT + 8];
	unsigned char len[8];
	size_t vlen = strlen(vers), clen = strlen(canonical);
	XXH3_state_t state;
	XXH128_canonical_t digest;

	memcpy(head, pkey_magic, sizeof(pkey_magic));
	le64(head + sizeof(pkey_magic), RFS_FORMAT_VERSION);
	memcpy(head + sizeof(pkey_magic) + 8, content, RFS_PKEY_CONTENT);
	le64(head + sizeof(pkey_magic) + 8 + RFS_PKEY_CONTENT, vlen);
	XXH3_INITSTATE(&state);
	XXH3_128bits_reset(&state);
	XXH3_128bits_update(&state, head, sizeof(head));
	XXH3_128bits_update(&state, vers, vlen);
	le64(len, clen);
	XXH3_128bits_update(&state, len, sizeof(len));
	XXH3_128bits_update(&state, canonical, clen);
	XXH128_canonicalFromHash(&digest, XXH3_128bits_digest(&state));
	memcpy(out->b, digest.digest, sizeof(out->b));
}

void rfs_pkey_content_hex(const unsigned char c[RFS_PKEY_CONTENT],
			  char out[RFS_PKEY_CONTENT_HEX])
{
	rfs_key k;

	memcpy(k.b, c, sizeof(k.b));
	rfs_key_hex(&k, out);
}

int rfs_pkey_content_parse(const char *hex, unsigned char c[RFS_PKEY_CONTENT])
{
	rfs_key k;
	int rc = rfs_key_parse(hex, &k);

	if (rc == 0)
		memcpy(c, k.b, sizeof(k.b));
	return rc;
}
