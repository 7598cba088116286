/* jobs.h - the job table: one job per key, its waiters and requesters,
 * failures remembered for retry_after, and cancels.
 *
 * Pure bookkeeping (src/jobs.c): no process, no thread, no store, no
 * descriptor opened.  It is not thread safe: its owner (the pool) holds
 * its own lock around every call, and calls the waiters a call hands back
 * only after dropping it (rfs_jobs_notify), so that a waiter may reply to
 * FUSE or ask for another job.  Unit-tested on its own (test_jobs.c).
 *
 * Life of a job in the table (the pool makes the transitions):
 *
 *   rfs_jobs_add() --> QUEUED --rfs_jobs_next(), rfs_jobs_start()-->
 *   RUNNING --rfs_jobs_commit()--> COMMITTING --rfs_jobs_end()--> gone
 *   any state --rfs_jobs_end(rc)--> gone, the waiters handed back
 *   QUEUED --last waiter detached, or rfs_jobs_cancel()--> gone (cancelled)
 *   RUNNING --the same--> marked: job->cancel (the pool stops its worker)
 *
 * Held jobs (note 6): a job added with spec->held waits outside the queue,
 * in the table (so it is joined, seen and cancelled as a queued one), and
 * is not counted in the job counters until rfs_jobs_release() queues it;
 * a held job that ends (its output was found elsewhere, or it was
 * cancelled) moves no counter: nothing was started.
 *
 * Single flight: a key has at most one job; rfs_jobs_join() adds a waiter
 * and a requester to it.  A job that ended with a failure that says
 * something about the output (rfs_jobs_remembered) is remembered: for
 * retry_after seconds rfs_jobs_recent_failure() gives its code, so a
 * request fails at once.  At most RFS_JOBS_FAILURES keys are remembered,
 * the oldest replaced first.
 *
 * Who may see and cancel a job: each job records the uids that asked for
 * it.  Root and the mount's owner see and cancel every job; another user
 * sees the jobs they asked for and cancels only one nobody else asked for.
 */
#ifndef RASTERFS_JOBS_H
#define RASTERFS_JOBS_H

#include <limits.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>
#include <sys/types.h>

#include "rasterfs/stats.h"
#include "rasterfs/store.h"

typedef struct rfs_jobs rfs_jobs;

#define RFS_JOBS_FAILURES 1024    /* keys whose failure is remembered */

/* Called once per waiter when its job ends, without the owner's lock.  rc
 * is 0 when the key is now in the store; otherwise a negative code, with a
 * one-line message. */
typedef void (*rfs_pool_done_fn)(void *waiter, int rc, const char *msg);

/* What a job is asked for (the pool's rfs_pool_request). */
struct rfs_job_spec {
	rfs_key key;
	struct rfs_src_id src;     /* identity of src_fd, the key's source */
	int src_fd;                /* the source, opened once beneath the root
	                              (pool.c note 10): given to the pool, which
	                              closes it in every case (job exists, key
	                              stored, error, or when the job ends) */
	const char *source_rel;    /* path below the source root: names the
	                              source for GDAL (its sidecars and
	                              relative references) and for humans */
	const char *canonical;     /* canonical chain */
	const char *vpath;         /* the virtual path as named (for humans) */
	int warm;                  /* warm-up: no waiter; never cancelled
	                              because readers went away */
	int prefix;                /* a job for a kept prefix (pool.c note
	                              7): counted in prefix_jobs, not
	                              jobs_started (stats.h) */
	uid_t uid;                 /* who asks (FUSE request's uid) */
	int held;                  /* held for a tier (pool.h, "Tiers"):
	                              out of the queue and not counted
	                              until rfs_jobs_release() */
	uint64_t expect_size;      /* the size the output was described
	                              with (output.h), which the worker holds
	                              the file to; 0: not described */
};

enum rfs_job_state { RFS_JOB_QUEUED, RFS_JOB_RUNNING, RFS_JOB_COMMITTING };

struct rfs_waiter {
	rfs_pool_done_fn fn;
	void *arg;
	struct rfs_waiter *next;
};

/* A job.  The table owns the fields above the line; the pool's own
 * (which worker runs it, its output, its policing) follow. */
struct rfs_job {
	uint64_t id;              /* 1, 2, ... in the order of rfs_jobs_add */
	rfs_key key;
	char hex[RFS_KEY_HEX];
	struct rfs_src_id src;
	int src_fd;               /* the pinned source until dispatch, or -1:
	                             closed by rfs_job_free */
	char *source_rel;
	char *canonical;
	char *vpath;              /* the first requester's virtual path */
	enum rfs_job_state state;
	double progress;          /* 0..1 */
	int warm;                 /* asked for by a warm-up */
	int cancel;               /* a cancel was asked for */
	uid_t *uids;              /* who asked for it, each once */
	unsigned nuids;
	struct rfs_waiter *waiters;
	struct timespec t_queued, wall_queued;   /* MONOTONIC, REALTIME */
	int is_prefix;            /* a job for a kept prefix (pool.c note 7) */
	int held;                 /* out of the queue and uncounted while a
	                             tier looks for its key (note 6) */
	int tiered;               /* the tier has state for it and is told
	                             how it ended (pool.c note 11) */
	uint64_t expect_size;     /* rfs_job_spec's; a joining request with
	                             a description gives it if 0 */
	size_t prefix_len;        /* >0: waits for the job of prefix_key */
	rfs_key prefix_key;
	struct rfs_job *hnext;    /* table chain */
	struct rfs_job *qnext;    /* queue link */
	/* ---- the pool's ---- */
	int slot;                 /* worker slot while RUNNING, else -1 */
	pid_t pid;                /* the worker that ran it, or 0 */
	struct timespec t_started, wall_started; /* MONOTONIC, REALTIME */
	int cancel_sent;          /* CANCEL sent at t_cancel */
	struct timespec t_cancel;
	int kill_code;            /* why the pool killed its worker */
	struct timespec t_heard;  /* last message from its worker */
	char out_path[PATH_MAX];
	int early;                /* answered before its commit (pool.c note
	                             12): counted then */
	int prefix_fd;            /* the prefix object during dispatch, or -1:
	                             closed by rfs_job_free */
	void *owner;              /* the pool */
};

struct rfs_jobs_config {
	unsigned retry_after;     /* s a failed key fails at once; 0: never */
	uid_t owner;              /* the mount's owner: sees and cancels all */
	/* Seconds on a monotonic clock; NULL: CLOCK_MONOTONIC.  Tests pass
	 * their own to age a failure without waiting. */
	double (*clock)(void);
};

/* A new, empty table.  stats (kept, not owned) gets the job counters
 * (rfs_stats_job_added, rfs_stats_job_moved: jobs_started, prefix_jobs,
 * jobs_queued, jobs_running, jobs_done, jobs_failed, jobs_cancelled) and
 * joined.  Returns 0 and *out, or -ENOMEM. */
int rfs_jobs_new(const struct rfs_jobs_config *cfg, struct rfs_stats *stats,
		 rfs_jobs **out);

/* Free the table, the failures and every job still in it (their waiters
 * are freed, not called).  NULL ok. */
void rfs_jobs_free(rfs_jobs *t);

/* key's job, or NULL. */
struct rfs_job *rfs_jobs_find(rfs_jobs *t, const rfs_key *key);

/* Join key's job, if there is one, for spec: w (may be NULL: a warm-up)
 * becomes one of its waiters and spec->uid one of its requesters, a warm
 * spec makes it a warm job, and a cancel not yet acted on is withdrawn
 * (someone wants the output).  Returns 1 (joined; w is the job's now), 0
 * (no job for the key), or -ENOMEM (w is still the caller's). */
int rfs_jobs_join(rfs_jobs *t, const struct rfs_job_spec *spec,
		  struct rfs_waiter *w);

/* A new QUEUED job for spec at the tail of the queue, with waiter w (may
 * be NULL); src_fd, prefix_len and prefix_key are the caller's to set.
 * The spec's strings are copied.  Returns the job, or NULL (no memory;
 * w is still the caller's). */
struct rfs_job *rfs_jobs_add(rfs_jobs *t, const struct rfs_job_spec *spec,
			     struct rfs_waiter *w);

/* A held job (spec->held) is queued at the tail now and counted as
 * added (jobs_queued, and jobs_started or prefix_jobs). */
void rfs_jobs_release(rfs_jobs *t, struct rfs_job *job);

/* The first queued job that may run now (a job with a prefix waits while
 * the prefix's job exists), taken off the queue; still QUEUED and in the
 * table.  NULL: none. */
struct rfs_job *rfs_jobs_next(rfs_jobs *t);

/* Put job, taken by rfs_jobs_next, back at the head of the queue. */
void rfs_jobs_requeue(rfs_jobs *t, struct rfs_job *job);

/* Is any job queued? */
int rfs_jobs_any_queued(const rfs_jobs *t);

/* QUEUED (taken by rfs_jobs_next) -> RUNNING. */
void rfs_jobs_start(rfs_jobs *t, struct rfs_job *job);

/* RUNNING -> COMMITTING: its output is with the store's committer. */
void rfs_jobs_commit(rfs_jobs *t, struct rfs_job *job);

/* Jobs COMMITTING now. */
unsigned rfs_jobs_committing(const rfs_jobs *t);

/* A job that is not COMMITTING, or NULL (the pool's shutdown ends them). */
struct rfs_job *rfs_jobs_any_not_committing(rfs_jobs *t);

/* Does an end with rc say something about the output itself?  Not: a
 * cancel, an unmount, a worker that crashed or stalled, a source changed
 * under its job (its name has a new key now), or a lack of file
 * descriptors (EMFILE, ENFILE). */
int rfs_jobs_remembered(int rc);

/* End job with rc (0: its key is stored) and msg: out of the table (and
 * the queue), its failure remembered (rfs_jobs_remembered) or a stale one
 * forgotten (rc 0).  Returns its waiters, to be given to rfs_jobs_notify
 * once the lock is dropped; the job itself is the caller's (rfs_job_free),
 * still holding its requesters for the history. */
struct rfs_waiter *rfs_jobs_end(rfs_jobs *t, struct rfs_job *job, int rc,
				const char *msg);

/* Call each waiter of ws with rc and msg, and free them. */
void rfs_jobs_notify(struct rfs_waiter *ws, int rc, const char *msg);

/* The waiters of job, a COMMITTING one, taken off it (the pool answers
 * them before the commit ends: pool.c note 12); requests that join it
 * later wait for its end as usual.  Call rfs_jobs_notify on them. */
struct rfs_waiter *rfs_jobs_take_waiters(rfs_jobs *t, struct rfs_job *job);

/* Free a job taken out by rfs_jobs_end (closes src_fd and prefix_fd). */
void rfs_job_free(struct rfs_job *job);

/* Detach waiter (the arg of a struct rfs_waiter) from key's job.  When it
 * was the last waiter of a job that is not a warm-up, the job is
 * cancelled with why: a QUEUED job is ended (*ended, its waiters in *ws,
 * for the caller to notify and free), a RUNNING one marked (job->cancel).
 * Returns 1 if the waiter was detached (it will not be called), 0 if it
 * was not found (it has been or will be called). */
int rfs_jobs_detach(rfs_jobs *t, const rfs_key *key, void *waiter,
		    const char *why, struct rfs_job **ended,
		    struct rfs_waiter **ws);

/* Cancel key's job on behalf of uid, whoever waits on it: as
 * rfs_jobs_detach does for the last waiter.  Returns 0, -ENOENT (no job
 * queued or running for key), or -EPERM (uid may not cancel it). */
int rfs_jobs_cancel(rfs_jobs *t, const rfs_key *key, uid_t uid,
		    const char *why, struct rfs_job **ended,
		    struct rfs_waiter **ws);

/* The next job to cancel among the pieces of one output (lazy.h: the jobs
 * of source src whose canonical chain is canonical followed by '#'): one
 * queued, or running and not yet marked, that uid may cancel.  NULL when
 * none is left; *refused counts those uid may not cancel (the caller
 * zeroes it; each is counted each time the table is searched). */
struct rfs_job *rfs_jobs_next_piece(rfs_jobs *t, const struct rfs_src_id *src,
				    const char *canonical, uid_t uid,
				    unsigned *refused);

/* Cancel job (from rfs_jobs_next_piece) as rfs_jobs_cancel does. */
void rfs_jobs_cancel_job(rfs_jobs *t, struct rfs_job *job, const char *why,
			 struct rfs_job **ended, struct rfs_waiter **ws);

/* The remembered failure of key: 0 with its code, its message in msg and
 * in *fresh whether it is within retry_after (any may be NULL), or
 * -ENOENT. */
int rfs_jobs_last_error(rfs_jobs *t, const rfs_key *key, int *code,
			char *msg, size_t len, int *fresh);

/* The code of key's failure if it is within retry_after, else 0. */
int rfs_jobs_recent_failure(rfs_jobs *t, const rfs_key *key);

/* May uid see a job asked for by uids[0..n)? */
int rfs_jobs_may_see(const rfs_jobs *t, const uid_t *uids, unsigned n,
		     uid_t uid);

/* Call fn on every job in the table, in no order. */
void rfs_jobs_each(rfs_jobs *t, void (*fn)(struct rfs_job *job, void *arg),
		   void *arg);

#endif
