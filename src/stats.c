/* stats.c - the counters file. */
#include <errno.h>
#include <stdio.h>

#include "rasterfs/stats.h"

int rfs_stats_json(const struct rfs_stats *s, rfs_store *store,
		   unsigned workers, char *buf, size_t len)
{
	uint64_t objects = 0, bytes = 0;

	if (store)
		rfs_store_stats(store, &objects, &bytes);
#define F(name) (unsigned long long)atomic_load(&s->name)
	int n = snprintf(buf, len,
		"{\"jobs_started\": %llu, \"jobs_done\": %llu, "
		"\"jobs_failed\": %llu, \"jobs_running\": %llu, "
		"\"jobs_queued\": %llu, \"cache_hits\": %llu, "
		"\"cache_misses\": %llu, \"jobs_joined\": %llu, "
		"\"bad_names\": %llu, \"probes_refused\": %llu, "
		"\"workers\": %u, \"workers_restarted\": %llu, "
		"\"prefix_jobs\": %llu, "
		"\"prefix_hits\": %llu, \"stale_opens\": %llu, "
		"\"passthrough_opens\": %llu, \"passthrough_refused\": %llu, "
		"\"reads\": %llu, \"nodes\": %llu, "
		"\"store_objects\": %llu, \"store_bytes\": %llu}\n",
		F(jobs_started), F(jobs_done), F(jobs_failed), F(jobs_running),
		F(jobs_queued), F(cache_hits), F(cache_misses), F(joined),
		F(bad_names), F(probes), workers, F(workers_restarted),
		F(prefix_jobs), F(prefix_hits), F(stale_opens), F(pt_opens),
		F(pt_refused), F(reads), F(nodes),
		(unsigned long long)objects, (unsigned long long)bytes);
#undef F
	if (n < 0 || (size_t)n >= len)
		return -ENOSPC;
	return n;
}
