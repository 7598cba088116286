/* shared.h - the shared tier's directory: immutable outputs by portable
 * key (pkey.h) on a cluster's filesystem (NFS, Lustre, CephFS, ...).
 *
 * Only plain files, each written once: no LMDB (LMDB must not live on a
 * network filesystem), no lock, no file rewritten in place.  Layout:
 *
 *   DIR/FORMAT                      "rasterfs-shared 1\n"
 *   DIR/objects/<xx>/<pkey>.tif     an output, byte for byte as a mount
 *                                   serves it (<xx>: the key's first two
 *                                   hex digits)
 *   DIR/objects/<xx>/<pkey>.json    its sidecar (below); written last, so
 *                                   an object is there when its sidecar is
 *   DIR/claims/<pkey>               a claim: someone is computing it
 *   DIR/tmp/                        files being published; never a final
 *                                   name
 *   DIR/corrupt/                    sidecars of objects found corrupt
 *   DIR/runs/<run>/                 what `rasterfs warm --slurm` wrote
 *                                   (task list, script, results, logs)
 *
 * The sidecar is one flat JSON object: "format" ("rasterfs-shared-
 * object"), "version" (1), "pkey", "canonical", "content" (XXH3-128 of the
 * source's bytes, hex), "versions" (pkey.h), "format_version"
 * (RFS_FORMAT_VERSION), "size", "xxh3_64" (hex, 16 digits), "created"
 * (ISO 8601), "created_ns", "host", "pid", "source" (the source's path
 * below its root where it was computed, for humans), "rasterfs" (the
 * version that wrote it).
 *
 * Publication (rfs_shared_publish): the object is copied to a temporary
 * file in DIR/tmp, fsynced, renamed to its final name, then the sidecar
 * the same way, then objects/<xx> is fsynced.  Both renames are within
 * DIR, so atomic: no partial object or sidecar is ever visible under a
 * final name, whatever the writer dies of.  A reader believes nothing it
 * has not checked: the sidecar must name the reader's key material
 * (content hash, versions, chain: a hash collision reads as a miss), and
 * the object's size and XXH3-64 must be the sidecar's, or it is corrupt
 * (RFS-E304): never served, its sidecar moved to DIR/corrupt/, so nobody
 * trusts it again and the next publisher replaces it.
 *
 * Claims (optional): DIR/claims/<pkey> made with O_CREAT|O_EXCL says
 * "host, pid, start, lease": its holder is computing the key and renews
 * the lease (the file's mtime) every lease/3 seconds.  Whoever finds a
 * claim waits for the object instead of computing; a claim whose mtime
 * has not moved for a whole lease, measured on the finder's own monotonic
 * clock (so the nodes' clocks need not agree), is stale: its holder died.
 * It is taken over by renaming it aside (only one renamer wins) and
 * claiming anew.  Each look at a claim opens it: on NFS that revalidates
 * its attributes (close-to-open), so an attribute cache cannot hide a
 * renewal.  Claims only save duplicate work: two nodes computing one key
 * publish the same bytes, and the second rename changes nothing a reader
 * can see.
 *
 * Thread safe: an rfs_shared holds only its directory's descriptor and
 * names; each call opens what it needs.
 */
#ifndef RASTERFS_SHARED_H
#define RASTERFS_SHARED_H

#include <limits.h>
#include <stdint.h>
#include <sys/types.h>

#include "rasterfs/chain.h"
#include "rasterfs/pkey.h"
#include "rasterfs/store.h"

#define RFS_SHARED_FORMAT 1
#define RFS_SHARED_HOST_MAX 256

typedef struct rfs_shared rfs_shared;

/* What a sidecar says (and what rfs_shared_publish writes). */
struct rfs_shared_meta {
	rfs_key pkey;
	char canonical[RFS_CHAIN_TEXT_MAX];
	unsigned char content[RFS_PKEY_CONTENT];
	char versions[RFS_PKEY_VERSIONS_MAX];
	uint64_t format_version;   /* RFS_FORMAT_VERSION of the writer */
	uint64_t size;             /* bytes of the object */
	uint64_t checksum;         /* XXH3-64 of the object */
	int64_t created_ns;        /* set by rfs_shared_publish */
	char host[RFS_SHARED_HOST_MAX];  /* set by rfs_shared_publish */
	long pid;                  /* set by rfs_shared_publish */
	char source[PATH_MAX];     /* for humans */
};

/* Open the tier in dir, making it (and objects/, claims/, tmp/,
 * corrupt/, runs/) if missing.  mode: of the directories made (0700 for
 * one user; 0770 with a setgid DIR for a group).  Returns 0 and *out, or
 *   -RFS_E_SHARED  dir holds another format (DIR/FORMAT), or something
 *                  that is not a shared tier (files but no FORMAT); the
 *                  message is logged
 *   -ENOMEM, -errno (dir cannot be made, opened or written) */
int rfs_shared_open(const char *dir, mode_t mode, rfs_shared **out);

/* Close; NULL ok. */
void rfs_shared_close(rfs_shared *sh);

/* The directory, absolute.  Never fails. */
const char *rfs_shared_dir(const rfs_shared *sh);

/* This machine's name, as claims and sidecars record it. */
const char *rfs_shared_host(const rfs_shared *sh);

/* Fill the key material of m: pkey from content, versions and canonical
 * (rfs_pkey_make).  Never fails. */
void rfs_shared_meta_init(struct rfs_shared_meta *m,
			  const unsigned char content[RFS_PKEY_CONTENT],
			  const char *versions, const char *canonical);

/* Is key m->pkey published with m's key material (content, versions,
 * canonical, format version)?  Returns 0 and fills m's size, checksum,
 * created_ns, host, pid and source from the sidecar; -ENOENT (no
 * sidecar, or one of another key material: a collision); -RFS_E_SHARED_
 * CORRUPT (a sidecar that cannot be read as one, or whose object is
 * missing or not its size: moved aside, logged); -errno (reading DIR). */
int rfs_shared_find(rfs_shared *sh, struct rfs_shared_meta *m);

/* Copy m's object (as rfs_shared_find filled it) to dst_fd, an empty
 * file, checking size and XXH3-64 against m on the way, and mark it used
 * (the sidecar's atime, for gc).  Returns 0 (dst holds the bytes, not
 * yet fsynced), -ENOENT (removed since it was found: gc), -RFS_E_SHARED_
 * CORRUPT (its bytes are not the sidecar's: moved aside, logged), or
 * -errno (reading the object, writing dst: -ENOSPC, -EDQUOT ...). */
int rfs_shared_fetch(rfs_shared *sh, const struct rfs_shared_meta *m,
		     int dst_fd);

/* Publish the bytes of src_fd (from offset 0, m->size bytes whose
 * XXH3-64 must be m->checksum: checked while copying) as m's object,
 * with its sidecar (host, pid, created_ns filled here).  A key already
 * published with a sound sidecar is left as it is (*published = 0).
 * Returns 0 (*published, may be NULL, says whether this call published
 * it), -EIO (src_fd's bytes are not m's: nothing published), -ENOSPC,
 * -EDQUOT, -errno (writing DIR; the temporary files are removed). */
int rfs_shared_publish(rfs_shared *sh, struct rfs_shared_meta *m, int src_fd,
		       int *published);

/* ---- claims ------------------------------------------------------------ */

/* A claim this process holds. */
struct rfs_shared_claim;

/* What a look at a claim saw. */
struct rfs_shared_claim_info {
	uint64_t ino;              /* the claim file: a new claim is another */
	int64_t mtime_ns;          /* its last renewal */
	unsigned lease;            /* s, as its holder wrote it */
	char host[RFS_SHARED_HOST_MAX];
	long pid;
	int64_t started;           /* s since the epoch, holder's clock */
};

/* Claim pkey for lease seconds (1..3600).  Returns 0 and *out (renew it
 * with rfs_shared_claim_renew, end it with rfs_shared_claim_release),
 * -EEXIST (someone holds it), -ENOMEM, -errno. */
int rfs_shared_claim_take(rfs_shared *sh, const rfs_key *pkey,
			  unsigned lease, struct rfs_shared_claim **out);

/* Renew c's lease (touch its mtime).  Returns 0, -ENOENT (it is not
 * ours any more: taken over after a stall), -errno. */
int rfs_shared_claim_renew(struct rfs_shared_claim *c);

/* Remove c's file if it is still c's, and free c.  NULL ok. */
void rfs_shared_claim_release(struct rfs_shared_claim *c);

/* Look at pkey's claim.  Returns 0 and *info, -ENOENT (no claim), or
 * -errno. */
int rfs_shared_claim_peek(rfs_shared *sh, const rfs_key *pkey,
			  struct rfs_shared_claim_info *info);

/* Take over pkey's claim, seen stale as seen (the caller watched it not
 * move for a lease).  Returns 0 and *out (ours now), -EAGAIN (it is
 * another claim now, or another node took it over first: look again),
 * -ENOMEM, -errno. */
int rfs_shared_claim_takeover(rfs_shared *sh, const rfs_key *pkey,
			      const struct rfs_shared_claim_info *seen,
			      unsigned lease, struct rfs_shared_claim **out);

/* ---- eviction: `rasterfs cache gc --shared DIR` ------------------------ */

struct rfs_shared_gc_report {
	uint64_t objects, bytes;           /* published, before */
	uint64_t removed, removed_bytes;   /* evicted to the limit */
	uint64_t young;                    /* over the limit but kept: used
					      or published within min_age */
	uint64_t orphans;                  /* objects without a sidecar,
					      sidecars without an object,
					      older than min_age: removed */
	uint64_t tmp, claims, corrupt, runs; /* stale files removed */
};

/* Evict dir's objects, least recently used or published first (the
 * later of the sidecar's atime, set at each fetch, and its mtime), until
 * their bytes are at most limit (0: remove nothing for the limit); never
 * one used or published less than min_age seconds ago.  Each goes
 * sidecar first, so a finder never sees a sidecar without its object.
 * Also removes what is stale: temporary files and claims untouched for a
 * day, corrupt sidecars, objects without a sidecar and sidecars without
 * an object older than min_age, runs/ directories older than 30 days.
 * Returns 0, -RFS_E_SHARED (not a shared tier), -errno. */
int rfs_shared_gc(const char *dir, uint64_t limit, unsigned min_age,
		  struct rfs_shared_gc_report *rep);

#endif
