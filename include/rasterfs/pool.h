/* pool.h - the worker pool: jobs computed by worker processes.
 *
 * The pool owns N worker processes (worker.h) and the job table (jobs.h:
 * a FIFO queue of jobs and a table of them by cache key).  A job exists once per key however many
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
 *   QUEUED --last waiter cancelled, or rfs_pool_cancel()--> gone (cancelled)
 *   RUNNING --cancel--> CANCEL sent; the worker answers FAILED, or is killed
 *     after RFS_POOL_CANCEL_GRACE s --> gone (cancelled)
 *   RUNNING --over job_timeout--> worker killed --> gone (RFS_E_TIMEOUT)
 *   RUNNING --no message from the worker for stall_timeout--> worker killed
 *     --> gone (RFS_E_STALLED)
 *
 * A job that ended is kept in a history of the last RFS_HISTORY jobs
 * (history.h, rfs_pool_jobs_json), and a key whose job failed (not
 * cancelled) is remembered (jobs.h): for retry_after seconds a request
 * for it fails at once with the same code.  Not remembered: ends that say nothing about the output
 * (a cancel, an unmount, a crash, a stall, a job that ran out of file
 * descriptors: EMFILE/ENFILE).
 *
 * Who may see and cancel a job: each job records the uids that asked for
 * it (waiters of opens, warm-ups).  Root and the mount's owner see and
 * cancel every job; another user sees the jobs they asked for and cancels
 * only a job nobody else asked for.
 */
#ifndef RASTERFS_POOL_H
#define RASTERFS_POOL_H

#include <stdint.h>
#include <sys/types.h>

#include "rasterfs/jobs.h"
#include "rasterfs/log.h"
#include "rasterfs/stats.h"
#include "rasterfs/store.h"

typedef struct rfs_pool rfs_pool;

struct rfs_pool_config {
	unsigned workers;          /* >= 1 */
	const char *exe;           /* the rasterfs binary to exec for workers */
	int gdal_cache_mb;         /* GDAL block cache per worker */
	enum rfs_log_sink log_sink; /* the workers': RFS_LOG_DAEMON: their
	                              stderr is log_fd, the daemon's pipe
	                              (rfs_log_capture_start) */
	int log_fd;
	int log_level;
	unsigned retry_after;      /* s a failed key is not retried; 0: always */
	unsigned job_timeout;      /* s; 0: no limit */
	uint64_t worker_mem;       /* bytes of address space per worker above
	                              its idle footprint; 0: no limit */
	uint64_t max_pixels;       /* largest output (width x height); 0: none */
	int keep_prefixes;         /* start warp-first chains from their
	                              first step's output (pool.c note 7) */
	unsigned stall_timeout;    /* s without a message from a running
	                              job's worker before it is killed
	                              (RFS_E_STALLED); 0: never */
	uid_t owner;               /* the mount's owner: sees and cancels
	                              every job, like root */
	const char *root;          /* absolute source root: the only tree a
	                              worker reads beneath (confine.h) */
	uid_t worker_uid;          /* user the workers drop to (the daemon
	                              must be root), or (uid_t)-1: stay */
	gid_t worker_gid;
};

#define RFS_POOL_CANCEL_GRACE 1.0  /* s between CANCEL and SIGKILL */

/* Start the workers and the manager thread.  With log_sink RFS_LOG_DAEMON
 * the pool tells the log who owns a job's worker lines
 * (rfs_log_capture_owners) until rfs_pool_free.  Returns 0 and *out, or -errno
 * (a worker could not be started). */
int rfs_pool_new(const struct rfs_pool_config *cfg, rfs_store *store,
		 struct rfs_stats *stats, rfs_pool **out);

/* Ask for key to be computed.  With fn NULL (warm-up) no waiter is added.
 * spec->src_fd becomes the pool's whatever is returned.
 * Returns:
 *    0  the waiter is attached to a new or running job; fn(waiter, ...)
 *       will be called exactly once
 *    1  key is already in the store (committed since the caller looked);
 *       fn will not be called
 *   <0  -RFS_E_SHUTDOWN, -ENOMEM, or the code of the key's failure less
 *       than retry_after seconds ago (rfs_pool_last_error() has its
 *       message): fn will not be called */
int rfs_pool_request(rfs_pool *p, const struct rfs_job_spec *spec,
		     rfs_pool_done_fn fn, void *waiter);

/* A piece of a lazy output (lazy.h) whose worker has finished it and
 * whose waiters were answered before its commit ended (pool.c note 12):
 * a new descriptor of its file (read only; the bytes are final and were
 * checked against the worker's size and XXH3-64), or -ENOENT (no such
 * piece: committed by now, or never finished; ask the store). */
int rfs_pool_early_open(rfs_pool *p, const rfs_key *key);

/* Is key such a piece?  1 or 0. */
int rfs_pool_early_has(rfs_pool *p, const rfs_key *key);

/* State of key's job: "queued" or "running" (progress 0..1) while it
 * exists; after it ended, "cancelled" or "failed" from the history or the
 * remembered failures.  Returns 0 and fills the fields (any may be NULL),
 * or -ENOENT (no job now, and none that failed or was cancelled is
 * remembered: ask the store). */
int rfs_pool_job_state(rfs_pool *p, const rfs_key *key, const char **state,
		       double *progress);

/* Detach waiter (the pointer given to rfs_pool_request) from key's job.
 * If it was the last waiter and the job is not a warm-up, the job is
 * cancelled.  Returns 1 if the waiter was detached (fn will not be called
 * for it), 0 if it was not found (fn has been or will be called).  Takes
 * the pool's lock: callable from a FUSE interrupt callback. */
int rfs_pool_cancel_waiter(rfs_pool *p, const rfs_key *key, void *waiter);

/* Cancel key's job on behalf of uid, whoever waits on it (waiters get
 * -RFS_E_CANCELLED).  Returns 0, -ENOENT if no job is queued or running
 * for key, or -EPERM if uid may not cancel it (see above). */
int rfs_pool_cancel(rfs_pool *p, const rfs_key *key, uid_t uid);

/* Cancel, on behalf of uid, every job computing a piece of the lazy output
 * (src, canonical) (lazy.h: its blocks and sample statistics), as
 * rfs_pool_cancel cancels one.  Returns how many were cancelled (0: none
 * queued or running), or -EPERM when there were some and uid may cancel
 * none of them. */
int rfs_pool_cancel_pieces(rfs_pool *p, const struct rfs_src_id *src,
			   const char *canonical, uid_t uid);

/* The last failure of key: 0 and code, "message" in msg, and in *fresh
 * whether it is still within retry_after; or -ENOENT. */
int rfs_pool_last_error(rfs_pool *p, const rfs_key *key, int *code,
			char *msg, size_t len, int *fresh);

/* Render queued, running and the last finished jobs that uid may see, one
 * JSON object per line.  Returns a malloc'd string (*out) and 0, or
 * -ENOMEM. */
int rfs_pool_jobs_json(rfs_pool *p, uid_t uid, char **out, size_t *len);

unsigned rfs_pool_workers(const rfs_pool *p);

/* ---- tiers (above) ----------------------------------------------------- */

/* What a held job asks its tier (valid during the lookup call only). */
struct rfs_tier_req {
	uint64_t job_id;
	rfs_key key;
	struct rfs_src_id src;
	int src_fd;               /* a duplicate of the pinned source: the
	                             tier's to close, in every case */
	const char *source_rel;
	const char *canonical;
};

struct rfs_pool_tier {
	/* Look for req->key without blocking; answer later, from any thread,
	 * with rfs_pool_tier_answer().  Called without the pool's lock.
	 * Returns 0 (an answer will come), or a negative code: not looked
	 * for, the job is queued at once and the tier is not told how it
	 * ends. */
	int (*lookup)(void *arg, const struct rfs_tier_req *req);
	/* A job the tier answered "not found" ended: rc 0, its output is in
	 * the store (called on the committer's thread right after its
	 * commit), else how it failed.  Without the pool's lock; must not
	 * block. */
	void (*ended)(void *arg, uint64_t job_id, const rfs_key *key, int rc);
};

/* Ask tier (kept, not owned; NULL: none) before computing.  Call before
 * the first request, or with NULL to stop calling ended() (the tier is
 * going). */
void rfs_pool_set_tier(rfs_pool *p, const struct rfs_pool_tier *tier,
		       void *arg);

/* The tier's answer for job job_id of key: found 1, the tier committed
 * key into the store; 0, not found: compute it.  Returns 1 if the job was
 * waiting for it (with found 0, ended() will be called for it), 0 if the
 * job is gone (cancelled, or the pool is stopping): the tier drops what
 * it holds for it.  Takes the pool's lock; not from a tier callback. */
int rfs_pool_tier_answer(rfs_pool *p, uint64_t job_id, const rfs_key *key,
			 int found);

/* Is job job_id of key still held, waiting for the tier's answer?  (A
 * tier that waits long may give up early on a job cancelled meanwhile.)
 * Takes the pool's lock. */
int rfs_pool_tier_wanted(rfs_pool *p, uint64_t job_id, const rfs_key *key);

/* Stop: workers are stopped (a busy one is killed), queued and running jobs
 * fail with -RFS_E_SHUTDOWN, jobs being committed finish first.  With
 * log_sink RFS_LOG_DAEMON, once the workers are gone the capture of their
 * lines is stopped (rfs_log_capture_stop), so their last lines are logged
 * with their jobs' owners.  NULL ok. */
void rfs_pool_free(rfs_pool *p);

#endif
