/* tier.h - the shared tier (shared.h) as the pool's tier (pool.h,
 * "Tiers"): what a mount (shared=DIR) or `rasterfs run --shared DIR`
 * plugs into its pool.
 *
 * For each new job the pool holds, the tier, on one of its threads:
 *   1. takes the source's content hash from the store (by local
 *      identity), or computes it from the pinned source and records it
 *      (pkey.h; only here, so only with a shared tier, is a source read
 *      whole for its hash, once per version);
 *   2. makes the portable key and looks in DIR: a sound object is copied
 *      into a scratch file of the store, committed like a worker's output
 *      (the committer checks size and XXH3-64 once more) and the job ends
 *      done without a worker;
 *   3. otherwise claims the key (lease seconds, renewed every lease/3
 *      while the job runs) and lets the pool compute it; if another node
 *      holds a live claim, waits for its object (polling DIR), takes the
 *      claim over when it has not been renewed for its lease, and stops
 *      waiting after `wait` seconds (then computes it too);
 *   4. when the computed job has been committed, publishes the store's
 *      object to DIR (after the local commit, off the pool's threads),
 *      then releases the claim.
 * Every failure of the tier (DIR unreachable, full, corrupt objects) is
 * logged with its code and costs only the shortcut: the output is
 * computed and served as without a tier.
 *
 * Life: rfs_tier_new (after the pool and the store) ... rfs_tier_stop
 * (before rfs_pool_free: stops looking and publishing, waits for fetches
 * being committed) ... rfs_pool_free ... rfs_tier_free (before
 * rfs_store_close).
 */
#ifndef RASTERFS_TIER_H
#define RASTERFS_TIER_H

#include <stdint.h>

#include "rasterfs/pool.h"
#include "rasterfs/stats.h"
#include "rasterfs/store.h"

#define RFS_TIER_LEASE 30        /* s: default claim lease */
#define RFS_TIER_WAIT 3600       /* s: default wait for another's claim */
#define RFS_TIER_THREADS 4
#define RFS_TIER_SLOT 1000       /* scratch slots RFS_TIER_SLOT + thread */

typedef struct rfs_tier rfs_tier;

struct rfs_tier_config {
	const char *dir;          /* shared=DIR */
	unsigned lease;           /* s, 1..3600; 0: no claims */
	unsigned wait;            /* s to wait for another node's claimed
	                             computation; 0: never wait */
	int no_publish;           /* look only, publish nothing */
	const char *source_root;  /* absolute: content records name
	                             root/source for gc; NULL: none */
	mode_t mode;              /* of the directories made in DIR */
	/* Called after each publication of a computed output (on a tier
	 * thread): rc 0 (published, or it was there already), or why not.
	 * May be NULL. */
	void (*on_publish)(void *arg, const rfs_key *key, int rc);
	void *arg;
};

/* Open DIR (rfs_shared_open), start the threads and set the tier on pool
 * (rfs_pool_set_tier).  stats (kept) gets shared_hits, shared_misses,
 * shared_published, shared_corrupt, content_hashes.  Returns 0 and *out,
 * or rfs_shared_open's codes (-RFS_E_SHARED ...), -ENOMEM, -errno. */
int rfs_tier_new(const struct rfs_tier_config *cfg, rfs_store *store,
		 rfs_pool *pool, struct rfs_stats *stats, rfs_tier **out);

/* DIR, absolute.  Never fails. */
const char *rfs_tier_dir(const rfs_tier *t);

/* Wait until nothing is being published or fetched (what was computed is
 * in DIR), at most timeout seconds.  Returns 0, or -ETIMEDOUT. */
int rfs_tier_drain(rfs_tier *t, double timeout);

/* Stop looking and publishing (see above).  NULL ok. */
void rfs_tier_stop(rfs_tier *t);

/* Release what is still held (claims), free.  After rfs_pool_free.
 * NULL ok. */
void rfs_tier_free(rfs_tier *t);

#endif
