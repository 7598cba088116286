/* stats.h - counters of what a mount did, served as MOUNT/.rasterfs/stats.
 *
 * Plain atomic counters, bumped by whoever does the thing; cheap enough for
 * the lookup path.  Thread safe.
 */
#ifndef RASTERFS_STATS_H
#define RASTERFS_STATS_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "rasterfs/store.h"

struct rfs_stats {
	atomic_uint_fast64_t jobs_started;  /* jobs handed to a worker queue */
	atomic_uint_fast64_t jobs_done;
	atomic_uint_fast64_t jobs_failed;
	atomic_uint_fast64_t jobs_running;  /* on a worker now */
	atomic_uint_fast64_t jobs_queued;   /* waiting for a worker */
	atomic_uint_fast64_t cache_hits;    /* opens served from the store */
	atomic_uint_fast64_t cache_misses;  /* opens that started or joined a job */
	atomic_uint_fast64_t joined;        /* opens that joined a running job */
	atomic_uint_fast64_t bad_names;     /* virtual names refused at lookup */
	atomic_uint_fast64_t probes;        /* sibling probes answered ENOENT */
	atomic_uint_fast64_t workers_restarted;
	atomic_uint_fast64_t prefix_jobs;   /* jobs queued for a kept prefix */
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
};

#define rfs_stat_inc(s, field) atomic_fetch_add(&(s)->field, 1)
#define rfs_stat_dec(s, field) atomic_fetch_sub(&(s)->field, 1)
#define rfs_stat_add(s, field, n) atomic_fetch_add(&(s)->field, (n))

/* Render the counters, the store's object count and bytes, and the worker
 * count as one JSON object followed by a newline.  Returns the length
 * written (< len), or -ENOSPC if buf is too small. */
int rfs_stats_json(const struct rfs_stats *s, rfs_store *store,
		   unsigned workers, char *buf, size_t len);

#endif
