/* key.c - cache keys: derivation, hex spelling, source identity.
 *
 * The key is XXH3-128 over a byte string whose layout is fixed here and in
 * cache/README.md ("Key derivation").  Every integer is little-endian and the
 * only variable-length field comes last, preceded by its length, so two
 * different inputs never serialise to the same bytes.  The digest is stored
 * in XXH128's canonical (big-endian) byte order so a key means the same on
 * every host.
 */
#define XXH_STATIC_LINKING_ONLY /* XXH3_state_t on the stack: never fails */
#include <xxhash.h>

#include <assert.h>
#include <errno.h>
#include <string.h>

#include "rasterfs/store.h"
#include "store_int.h"

/* Changing this, or anything fed to the hash, changes every key: bump
 * RFS_FORMAT_VERSION in the same change. */
static const char key_magic[] = "rasterfs-key";

void rfs_src_id_from_stat(struct rfs_src_id *id, const struct stat *st)
{
	assert(id && st);
	id->dev = (uint64_t)st->st_dev;
	id->ino = (uint64_t)st->st_ino;
	id->size = (uint64_t)st->st_size;
	id->mtime_ns = (int64_t)st->st_mtim.tv_sec * 1000000000LL +
		       (int64_t)st->st_mtim.tv_nsec;
}

void rfs_key_make(rfs_key *out, const struct rfs_src_id *src,
		  const char *canonical)
{
	/* magic (with its NUL) | version | dev | ino | size | mtime_ns |
	 * strlen(canonical), each integer u64 little-endian; then the chain. */
	unsigned char head[sizeof(key_magic) + 6 * 8];
	unsigned char *p = head;
	size_t clen;
	XXH3_state_t state;
	XXH128_canonical_t digest;

	assert(out && src && canonical);
	clen = strlen(canonical);
	memcpy(p, key_magic, sizeof(key_magic));
	p += sizeof(key_magic);
	put_le64(p, RFS_FORMAT_VERSION);
	put_le64(p + 8, src->dev);
	put_le64(p + 16, src->ino);
	put_le64(p + 24, src->size);
	put_le64(p + 32, (uint64_t)src->mtime_ns);
	put_le64(p + 40, clen);

	XXH3_INITSTATE(&state);
	XXH3_128bits_reset(&state);
	XXH3_128bits_update(&state, head, sizeof(head));
	XXH3_128bits_update(&state, canonical, clen);
	XXH128_canonicalFromHash(&digest, XXH3_128bits_digest(&state));
	static_assert(sizeof(digest.digest) == sizeof(out->b), "key size");
	memcpy(out->b, digest.digest, sizeof(out->b));
}

void rfs_key_hex(const rfs_key *key, char out[RFS_KEY_HEX])
{
	static const char digits[] = "0123456789abcdef";

	assert(key && out);
	for (size_t i = 0; i < sizeof(key->b); i++) {
		out[2 * i] = digits[key->b[i] >> 4];
		out[2 * i + 1] = digits[key->b[i] & 0xf];
	}
	out[2 * sizeof(key->b)] = '\0';
}

static int hex_value(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Exactly 32 hex digits (either case) and then the end of the string. */
int rfs_key_parse(const char *hex, rfs_key *out)
{
	rfs_key k;

	if (!hex || !out)
		return -EINVAL;
	for (size_t i = 0; i < sizeof(k.b); i++) {
		int hi = hex_value(hex[2 * i]);
		int lo = hi < 0 ? -1 : hex_value(hex[2 * i + 1]);

		if (lo < 0)
			return -EINVAL;
		k.b[i] = (unsigned char)(hi << 4 | lo);
	}
	if (hex[2 * sizeof(k.b)] != '\0')
		return -EINVAL;
	*out = k;
	return 0;
}
