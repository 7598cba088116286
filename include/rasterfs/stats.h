/* stats.h - counters of what a mount did, served as MOUNT/.rasterfs/stats.
 *
 * Plain atomic counters, bumped by whoever does the thing; cheap enough for
 * the lookup path.  Thread safe.
 *
 * The job counters are the exception: they move together, only through
 * rfs_stats_job_added() and rfs_stats_job_moved() (called by the job
 * table), under jobs_lock, and rfs_stats_json() reads them under it too,
 * so every rendering satisfies
 *
 *   jobs_done + jobs_failed + jobs_cancelled + jobs_running + jobs_queued
 *     == jobs_started + prefix_jobs
 *
 * jobs_started counts the jobs someone asked for (an open or a warm-up),
 * prefix_jobs the jobs the pool queued for a kept prefix on their behalf
 * (pool.c note 7); every job ends exactly once, as done, failed or
 * cancelled (RFS_E_CANCELLED: apart from the failures).
 */
#ifndef RASTERFS_STATS_H
#define RASTERFS_STATS_H

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "rasterfs/store.h"

struct rfs_stats {
	pthread_mutex_t jobs_lock;          /* the job counters (stats.h) */
	atomic_uint_fast64_t jobs_started;  /* jobs asked for (not prefixes) */
	atomic_uint_fast64_t jobs_done;
	atomic_uint_fast64_t jobs_failed;   /* ended with an error, not a
					       cancel */
	atomic_uint_fast64_t jobs_cancelled;
	atomic_uint_fast64_t jobs_running;  /* on a worker now (or being
					       committed) */
	atomic_uint_fast64_t jobs_queued;   /* waiting for a worker */
	atomic_uint_fast64_t cache_hits;    /* opens served from the store */
	atomic_uint_fast64_t cache_misses;  /* opens that started or joined a job */
	atomic_uint_fast64_t joined;        /* opens that joined a running job */
	atomic_uint_fast64_t bad_names;     /* virtual names refused at lookup */
	atomic_uint_fast64_t probes;        /* sibling probes answered ENOENT */
	atomic_uint_fast64_t workers_restarted;
	atomic_uint_fast64_t prefix_jobs;   /* jobs queued for a kept prefix
					       (a job counter) */
	atomic_uint_fast64_t prefix_hits;   /* jobs started from a kept prefix */
	atomic_uint_fast64_t stale_opens;   /* opens answered ESTALE: the
					       source changed since the
					       lookup (fs_node.c note 4) */
	atomic_uint_fast64_t pt_opens;      /* opens served by passthrough */
	atomic_uint_fast64_t pt_refused;    /* backing files the kernel
					       refused (fs_open.c note 3) */
	atomic_uint_fast64_t reads;         /* READ requests of files that
					       reached the daemon */
	atomic_uint_fast64_t nodes;         /* inodes the kernel holds now
					       (set when rendered) */
	/* the shared tier (tier.h) */
	atomic_uint_fast64_t shared_hits;   /* outputs copied from it instead
					       of computed */
	atomic_uint_fast64_t shared_misses; /* looked for there, not found */
	atomic_uint_fast64_t shared_published; /* outputs published there */
	atomic_uint_fast64_t shared_corrupt; /* objects found corrupt there
					       (RFS-E304), not served */
	atomic_uint_fast64_t content_hashes; /* sources read whole for their
					       content hash (pkey.h) */
	atomic_uint_fast64_t describes;     /* describes sent to a describer
					       process (describer.h) */
	atomic_uint_fast64_t describe_hits; /* sizes of outputs never
					       computed answered without
					       one: a description record, or
					       a describe just ended */
	/* lazy outputs (lazy.h, fs_lazy.c) */
	atomic_uint_fast64_t lazy_opens;    /* opens of large outputs served
					       before they were computed */
	atomic_uint_fast64_t lazy_blocks;   /* level-0 blocks computed and
					       stored */
	atomic_uint_fast64_t lazy_ovr_blocks; /* overview blocks (levels
						 >= 1) computed and stored */
	atomic_uint_fast64_t lazy_waits;    /* blocks a read waited for
					       (asked for, or joined) */
	atomic_uint_fast64_t lazy_ahead;    /* blocks asked for ahead of a
					       sequential reader */
	atomic_uint_fast64_t lazy_cancelled; /* blocks an interrupted read
					        stopped waiting for */
};

/* Where a job is counted (rfs_stats_job_moved). */
enum rfs_job_count {
	RFS_JOB_COUNT_QUEUED,
	RFS_JOB_COUNT_RUNNING,
	RFS_JOB_COUNT_DONE,
	RFS_JOB_COUNT_FAILED,
	RFS_JOB_COUNT_CANCELLED,
};

/* Zero the counters and make the lock.  Returns 0, or -errno of
 * pthread_mutex_init. */
int rfs_stats_init(struct rfs_stats *s);

/* Destroy the lock.  NULL ok. */
void rfs_stats_destroy(struct rfs_stats *s);

/* A job entered the queue: jobs_queued and jobs_started (prefix_jobs for
 * a kept prefix's job) go up together.  Cannot fail. */
void rfs_stats_job_added(struct rfs_stats *s, int prefix);

/* A job moved from one count to another (QUEUED -> RUNNING, or to the
 * count it ended in), both counters at once.  Cannot fail. */
void rfs_stats_job_moved(struct rfs_stats *s, enum rfs_job_count from,
			 enum rfs_job_count to);

/* The count a job ending with rc goes to: DONE (0), CANCELLED
 * (-RFS_E_CANCELLED) or FAILED (anything else, an unmount included). */
enum rfs_job_count rfs_stats_job_end_count(int rc);

#define rfs_stat_inc(s, field) atomic_fetch_add(&(s)->field, 1)
#define rfs_stat_dec(s, field) atomic_fetch_sub(&(s)->field, 1)
#define rfs_stat_add(s, field, n) atomic_fetch_add(&(s)->field, (n))

/* Render the counters (the job counters read at one moment, under
 * jobs_lock), the store's object count and bytes, and the worker count as
 * one JSON object followed by a newline.  Returns the length
 * written (< len), or -ENOSPC if buf is too small. */
int rfs_stats_json(struct rfs_stats *s, rfs_store *store,
		   unsigned workers, char *buf, size_t len);

#endif
