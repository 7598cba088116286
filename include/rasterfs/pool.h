/* pool.h - the worker pool and the job table.
 *
 * The pool owns N worker processes (worker.h), a FIFO queue of jobs, and a
 * table of jobs by cache key.  A job exists once per key however many
 * readers wait on it (single flight); each waiter is called back exactly
 * once when the job ends.  One manager thread talks to the workers: it
 * dispatches queued jobs to idle workers, follows their progress, hands
 * finished files to the store's committer, notices a worker that died,
 * fails its job and starts a new worker in its place.
 *
 * Life of a job (the manager thread makes every transition except the last):
 *
 *   QUEUED --dispatch()--> RUNNING --worker DONE--> COMMITTING --commit cb-->
 *   gone (waiters called with 0)
 *   RUNNING --worker FAILED or died--> gone (waiters called with the error)
 */
#ifndef RASTERFS_POOL_H
#define RASTERFS_POOL_H

#include <stdint.h>

#include "rasterfs/log.h"
#include "rasterfs/stats.h"
#include "rasterfs/store.h"

typedef struct rfs_pool rfs_pool;

struct rfs_pool_config {
	unsigned workers;          /* >= 1 */
	const char *exe;           /* the rasterfs binary to exec for workers */
	int gdal_cache_mb;         /* GDAL block cache per worker */
	enum rfs_log_sink log_sink;
	int log_level;
};

struct rfs_job_spec {
	rfs_key key;
	struct rfs_src_id src;
	const char *source;        /* absolute, resolved path of the source */
	const char *source_rel;    /* path below the source root, for humans */
	const char *canonical;     /* canonical chain */
};

/* Called once per waiter when its job ends, on the pool's manager thread or
 * the store's committer thread.  rc is 0 when key is now in the store;
 * otherwise a negative code, with a one-line message. */
typedef void (*rfs_pool_done_fn)(void *waiter, int rc, const char *msg);

/* Start the workers and the manager thread.  Returns 0 and *out, or -errno
 * (a worker could not be started). */
int rfs_pool_new(const struct rfs_pool_config *cfg, rfs_store *store,
		 struct rfs_stats *stats, rfs_pool **out);

/* Ask for key to be computed.  Returns:
 *    0  the waiter is attached to a new or running job; fn(waiter, ...)
 *       will be called exactly once
 *    1  key is already in the store (committed since the caller looked);
 *       fn will not be called
 *   <0  -RFS_E_SHUTDOWN, -ENOMEM: fn will not be called */
int rfs_pool_request(rfs_pool *p, const struct rfs_job_spec *spec,
		     rfs_pool_done_fn fn, void *waiter);

/* State of key's job, if one exists: returns 0 and fills the fields (any
 * may be NULL), or -ENOENT. */
int rfs_pool_job_state(rfs_pool *p, const rfs_key *key, const char **state,
		       double *progress);

unsigned rfs_pool_workers(const rfs_pool *p);

/* Stop: workers are stopped (a busy one is killed), queued and running jobs
 * fail with -RFS_E_SHUTDOWN, jobs being committed finish first.  NULL ok. */
void rfs_pool_free(rfs_pool *p);

#endif
