/* pool_int.h - private to the pool's rooms: pool.c (workers), jobs.c (the
 * job table) and jobs_report.c (history and the jobs file). */
#ifndef RASTERFS_POOL_INT_H
#define RASTERFS_POOL_INT_H

#include <limits.h>
#include <pthread.h>
#include <stdint.h>
#include <time.h>
#include <sys/types.h>

#include "rasterfs/chain.h"
#include "rasterfs/err.h"
#include "rasterfs/pool.h"

enum job_state { JOB_QUEUED, JOB_RUNNING, JOB_COMMITTING };

enum { END_DONE = 3, END_FAILED, END_CANCELLED };

struct waiter {
	rfs_pool_done_fn fn;
	void *arg;
	struct waiter *next;
};

struct job {
	uint64_t id;
	rfs_key key;
	char hex[RFS_KEY_HEX];
	struct rfs_src_id src;
	int src_fd;               /* the pinned source until dispatch, or -1
	                             (note 10) */
	char *source_rel;
	char *canonical;
	enum job_state state;
	double progress;
	int slot;                 /* worker slot while RUNNING, else -1 */
	struct timespec t_queued, t_started;
	struct timespec wall_queued, wall_started; /* CLOCK_REALTIME */
	char *vpath;              /* the first requester's virtual path */
	int warm;                 /* asked for by warm-up */
	pid_t pid;                /* the worker that ran it, or 0 */
	int cancel;               /* cancel asked for (note 5) */
	int cancel_sent;          /* CANCEL sent at t_cancel */
	struct timespec t_cancel;
	int kill_code;            /* why the manager killed its worker */
	struct timespec t_heard;  /* last message from its worker (note 8) */
	uid_t *uids;              /* who asked for it, each once (note 9) */
	unsigned nuids;
	char out_path[PATH_MAX];
	uint64_t checksum;
	struct waiter *waiters;
	struct job *hnext;        /* job table chain */
	struct job *qnext;        /* queue link */
	struct rfs_pool *pool;
	int is_prefix;            /* a job for a kept prefix (note 7) */
	size_t prefix_len;        /* >0: starts from canonical[0, prefix_len) */
	rfs_key prefix_key;
	int prefix_fd;            /* the prefix object during dispatch, or -1 */
};

struct slot {
	pid_t pid;                /* 0: no worker */
	int fd;                   /* our end of the socketpair, -1 if none */
	struct job *job;          /* the job it runs, or NULL */
	int exiting;              /* said it exits: no job until replaced */
	char scratch[PATH_MAX];
};

#define NBUCKETS 256
#define NFAILURES 1024

/* A job that ended, for the jobs file (note 6). */
struct record {
	uint64_t id;
	rfs_key key;
	char *vpath;
	char *canonical;
	int end;                  /* END_* */
	double progress;
	pid_t pid;
	struct timespec wall_started;
	int started;
	double elapsed;           /* s from start (or queueing) to end */
	int code;
	char msg[RFS_MSG_MAX];
	uid_t *uids;              /* the job's, taken over (note 9) */
	unsigned nuids;
};

struct failure {
	rfs_key key;
	int used;
	int code;
	struct timespec when;     /* CLOCK_MONOTONIC */
	char msg[RFS_MSG_MAX];
};

struct rfs_pool {
	struct rfs_pool_config cfg;
	char *exe;
	rfs_store *store;
	struct rfs_stats *stats;
	pthread_mutex_t lock;
	pthread_cond_t idle;      /* signalled when a committing job ends */
	struct job *table[NBUCKETS];
	struct job *qhead, *qtail;
	unsigned ncommitting;
	uint64_t next_id;
	int stopping;
	int wakefd;               /* eventfd: the manager's doorbell */
	unsigned nslots;
	struct slot *slots;
	pthread_t manager;
	int started;              /* the manager has spawned the workers */
	int start_rc;
	struct record hist[RFS_POOL_HISTORY];
	unsigned hist_next;       /* ring index of the next record */
	struct failure *failures; /* NFAILURES */
};

double elapsed(const struct timespec *t);
struct job *table_find(struct rfs_pool *p, const rfs_key *k);
void wake(struct rfs_pool *p);
void record_job(struct rfs_pool *p, struct job *job, int rc,
		const char *msg);
int may_see(const struct rfs_pool *p, const uid_t *uids, unsigned n,
	    uid_t uid);
void finish(struct rfs_pool *p, struct job *job, int rc, const char *msg);

#endif
