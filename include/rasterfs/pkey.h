/* pkey.h - portable keys: what an output is called on every machine.
 *
 * The local cache key (store.h) names a source by its identity on this
 * machine (device, inode, size, mtime), which differs between the nodes
 * of a cluster even for the same file.  A portable key names it by its
 * bytes instead:
 *
 *   content = XXH3-128 of the source file's bytes, streamed
 *   pkey    = XXH3-128 of ("rasterfs-pkey\0", RFS_FORMAT_VERSION,
 *             content, the library versions text, the canonical chain)
 *
 * (the exact layout is in src/pkey.c and docs/cluster.md).
 * The versions text is "gdal=<GDAL release> proj=<PROJ release>
 * epsg=<EPSG version of proj.db>": another GDAL or PROJ may compute other
 * bytes from the same source, so outputs of different library versions
 * never share a key.
 *
 * What "the same source" means: the same bytes of the source file, and
 * nothing else.  Sidecars GDAL may read beside it (X.tfw, X.prj,
 * X.aux.xml, X.ovr, X.msk) and the files a VRT names are NOT in the
 * content hash, exactly as they are not in the local identity: change
 * them and touch the source file (its mtime) to get a new key.  Its name
 * and path are not in it either: a copy of a source under another name
 * has the same portable keys.
 *
 * The content hash is expensive (a read of the whole source), so it is
 * computed only where a portable key is needed (a shared tier: shared.h,
 * tier.h) and remembered in the store by local identity
 * (rfs_store_content_get/put).
 */
#ifndef RASTERFS_PKEY_H
#define RASTERFS_PKEY_H

#include <stddef.h>
#include <stdint.h>

#include "rasterfs/store.h"

#define RFS_PKEY_CONTENT 16        /* bytes of a content hash */
#define RFS_PKEY_CONTENT_HEX 33    /* its hex spelling and a NUL */
#define RFS_PKEY_VERSIONS_MAX 128  /* the versions text and its NUL */

/* The content hash of the file open at fd, whose identity the caller made
 * the local key from (src): XXH3-128 of its bytes, read with pread from
 * offset 0 to src->size (the descriptor's offset is not moved).  Checks
 * after the read that the file still has src's size and mtime.  *bytes
 * (may be NULL) gets the bytes read.  Returns 0, or
 *   -RFS_E_SOURCE_CHANGED  the file changed (size or mtime) while read,
 *                          or ended before src->size
 *   -ENOMEM, -errno        (pread, fstat) */
int rfs_pkey_content_fd(int fd, const struct rfs_src_id *src,
			unsigned char out[RFS_PKEY_CONTENT], uint64_t *bytes);

/* The versions text of this process's GDAL and PROJ (see above), computed
 * once.  Never NULL; thread safe.  Only in processes that link GDAL. */
const char *rfs_pkey_versions(void);

/* The portable key of (content, versions, canonical).  Pure; never
 * fails.  versions is normally rfs_pkey_versions(); tests pass others. */
void rfs_pkey_make(rfs_key *out, const unsigned char content[RFS_PKEY_CONTENT],
		   const char *versions, const char *canonical);

/* Lower-case hex of a content hash.  Never fails. */
void rfs_pkey_content_hex(const unsigned char c[RFS_PKEY_CONTENT],
			  char out[RFS_PKEY_CONTENT_HEX]);

/* Parse 32 hex digits into a content hash.  Returns 0 or -EINVAL. */
int rfs_pkey_content_parse(const char *hex, unsigned char c[RFS_PKEY_CONTENT]);

#endif
