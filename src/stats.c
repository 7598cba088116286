/* stats.c - the counters file, and the job counters that add up
 * (stats.h). */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "rasterfs/err.h"
#include "rasterfs/stats.h"

int rfs_stats_init(struct rfs_stats *s)
{
	memset(s, 0, sizeof(*s));
	return -pthread_mutex_init(&s->jobs_lock, NULL);
}

void rfs_stats_destroy(struct rfs_stats *s)
{
	if (s)
		pthread_mutex_destroy(&s->jobs_lock);
}

static atomic_uint_fast64_t *job_counter(struct rfs_stats *s,
					 enum rfs_job_count c)
{
	switch (c) {
	case RFS_JOB_COUNT_QUEUED:
		return &s->jobs_queued;
	case RFS_JOB_COUNT_RUNNING:
		return &s->jobs_running;
	case RFS_JOB_COUNT_DONE:
		return &s->jobs_done;
	case RFS_JOB_COUNT_FAILED:
		return &s->jobs_failed;
	case RFS_JOB_COUNT_CANCELLED:
		break;
	}
	return &s->jobs_cancelled;
}

void rfs_stats_job_added(struct rfs_stats *s, int prefix)
{
	pthread_mutex_lock(&s->jobs_lock);
	if (prefix)
		rfs_stat_inc(s, prefix_jobs);
	else
		rfs_stat_inc(s, jobs_started);
	rfs_stat_inc(s, jobs_queued);
	pthread_mutex_unlock(&s->jobs_lock);
}

void rfs_stats_job_moved(struct rfs_stats *s, enum rfs_job_count from,
			 enum rfs_job_count to)
{
	pthread_mutex_lock(&s->jobs_lock);
	atomic_fetch_sub(job_counter(s, from), 1);
	atomic_fetch_add(job_counter(s, to), 1);
	pthread_mutex_unlock(&s->jobs_lock);
}

enum rfs_job_count rfs_stats_job_end_count(int rc)
{
	if (rc == 0)
		return RFS_JOB_COUNT_DONE;
	return rc == -RFS_E_CANCELLED ? RFS_JOB_COUNT_CANCELLED :
	       RFS_JOB_COUNT_FAILED;
}

int rfs_stats_json(struct rfs_stats *s, rfs_store *store,
		   unsigned workers, char *buf, size_t len)
{
	uint64_t objects = 0, bytes = 0;
	unsigned long long started, done, failed, cancelled, running, queued;
	unsigned long long prefix_jobs;

	if (store)
		rfs_store_stats(store, &objects, &bytes);
#define F(name) (unsigned long long)atomic_load(&s->name)
	/* One moment of the job counters (stats.h): they add up. */
	pthread_mutex_lock(&s->jobs_lock);
	started = F(jobs_started);
	done = F(jobs_done);
	failed = F(jobs_failed);
	cancelled = F(jobs_cancelled);
	running = F(jobs_running);
	queued = F(jobs_queued);
	prefix_jobs = F(prefix_jobs);
	pthread_mutex_unlock(&s->jobs_lock);
	int n = snprintf(buf, len,
		"{\"jobs_started\": %llu, \"jobs_done\": %llu, "
		"\"jobs_failed\": %llu, \"jobs_cancelled\": %llu, "
		"\"jobs_running\": %llu, "
		"\"jobs_queued\": %llu, \"cache_hits\": %llu, "
		"\"cache_misses\": %llu, \"jobs_joined\": %llu, "
		"\"bad_names\": %llu, \"probes_refused\": %llu, "
		"\"workers\": %u, \"workers_restarted\": %llu, "
		"\"prefix_jobs\": %llu, "
		"\"prefix_hits\": %llu, \"stale_opens\": %llu, "
		"\"passthrough_opens\": %llu, \"passthrough_refused\": %llu, "
		"\"reads\": %llu, \"nodes\": %llu, "
		"\"shared_hits\": %llu, \"shared_misses\": %llu, "
		"\"shared_published\": %llu, \"shared_corrupt\": %llu, "
		"\"content_hashes\": %llu, \"describes\": %llu, "
		"\"describe_hits\": %llu, "
		"\"lazy_opens\": %llu, \"lazy_blocks\": %llu, "
		"\"lazy_ovr_blocks\": %llu, "
		"\"lazy_waits\": %llu, \"lazy_ahead\": %llu, "
		"\"lazy_cancelled\": %llu, "
		"\"store_objects\": %llu, \"store_bytes\": %llu}\n",
		started, done, failed, cancelled, running, queued,
		F(cache_hits), F(cache_misses), F(joined),
		F(bad_names), F(probes), workers, F(workers_restarted),
		prefix_jobs, F(prefix_hits), F(stale_opens), F(pt_opens),
		F(pt_refused), F(reads), F(nodes), F(shared_hits),
		F(shared_misses), F(shared_published), F(shared_corrupt),
		F(content_hashes), F(describes), F(describe_hits),
		F(lazy_opens), F(lazy_blocks), F(lazy_ovr_blocks),
		F(lazy_waits), F(lazy_ahead),
		F(lazy_cancelled), (unsigned long long)objects, (unsigned long long)bytes);
#undef F
	if (n < 0 || (size_t)n >= len)
		return -ENOSPC;
	return n;
}
