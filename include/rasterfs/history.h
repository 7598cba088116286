/* history.h - ended jobs and the jobs file (MOUNT/.rasterfs/jobs).
 *
 * A ring of the last RFS_HISTORY jobs that ended (src/history.c), and the
 * rendering of the jobs file from it and the job table: one JSON object
 * per line, the finished jobs oldest first, then the queued and running
 * ones in the order they were asked for.  Like the job table, not thread
 * safe: the pool's lock covers every call.
 */
#ifndef RASTERFS_HISTORY_H
#define RASTERFS_HISTORY_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "rasterfs/jobs.h"

#define RFS_HISTORY 100            /* finished jobs kept for the jobs file */

typedef struct rfs_history rfs_history;

/* Returns a new, empty ring, or NULL (no memory). */
rfs_history *rfs_history_new(void);
void rfs_history_free(rfs_history *h);

/* Record job, just ended with rc (0: done) and msg, as the newest entry;
 * the record takes over the job's requesters (job->uids).  Without memory
 * for its strings the record keeps what it could. */
void rfs_history_record(rfs_history *h, struct rfs_job *job, int rc,
			const char *msg);

/* How key's newest recorded job ended, if it is still kept and did not
 * succeed (a success is the store's to report): 0 with "cancelled" or
 * "failed" and its progress (either may be NULL), or -ENOENT. */
int rfs_history_state(const rfs_history *h, const rfs_key *key,
		      const char **state, double *progress);

/* The users who asked for job id, if it is still kept: up to max of them
 * into uids; returns how many (0: not kept). */
unsigned rfs_history_owners(const rfs_history *h, uint64_t id, uid_t *uids,
			    unsigned max);

/* The jobs file for uid (rfs_jobs_may_see): a malloc'd text in *out, its
 * length in *len.  Returns 0 or -ENOMEM. */
int rfs_history_json(const rfs_history *h, rfs_jobs *jobs, uid_t uid,
		     char **out, size_t *len);

#endif
