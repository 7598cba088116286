/* pool.c - worker processes, the job queue and the single-flight job table.
 *
 * Design notes:
 *  1. GDAL runs only in workers (separate processes, exec'd afresh), so a
 *     crash, an out-of-memory kill or a cancel costs one job, never the
 *     mount.
 *  2. One job per key.  rfs_pool_request() looks the key up in the job table
 *     and, only if no job exists, in the store, both under p->lock.  The
 *     committer commits the index entry before finish() removes the job from
 *     the table, so a request either finds the job or finds the entry: no
 *     key is computed twice by one mount.
 *  3. Only the manager thread talks to workers and spawns them (a worker's
 *     PR_SET_PDEATHSIG follows the thread that spawned it, and the manager
 *     lives as long as the pool).
 *  4. Waiters are called without p->lock held, so they may reply to FUSE
 *     or even call rfs_pool_request() again.  rfs_pool_cancel_waiter() is
 *     called from FUSE interrupt callbacks, which hold the request's lock:
 *     the order is request lock -> p->lock, and nothing here takes a
 *     request's lock under p->lock.
 *  5. Cancelling a running job only marks it; the manager sends CANCEL and,
 *     if the worker has not answered after RFS_POOL_CANCEL_GRACE, kills it
 *     (GDAL may sit in a call that never looks at the progress callback).
 *     A killed worker's scratch is emptied and the worker respawned, so
 *     nothing of a cancelled job survives and nothing enters the store.
 *  6. Ended jobs go into a ring of RFS_POOL_HISTORY records for the jobs
 *     file; failures (not cancels, shutdowns, crashes, stalls or a lack of
 *     file descriptors: remembered_failure()) into a table of NFAILURES
 *     keys, oldest replaced first, that makes a failed key fail fast for
 *     retry_after seconds.
 *  7. Kept prefixes (keep_prefixes): a chain of two or more steps whose
 *     first step warps (proj, res, size) starts from the output of that
 *     first step alone, `S@p1`, which is an ordinary output (statistics
 *     and all, servable as itself).  A request for such a chain that finds
 *     neither S@p1 in the store nor a job for it queues a job for S@p1
 *     (counted in prefix_jobs, not jobs_started) ahead of its own; a queued
 *     job is not dispatched while its prefix's job exists.  At dispatch,
 *     if S@p1 is in the store, the pool opens its object (so eviction
 *     cannot remove it from under the worker) and passes the descriptor
 *     to the worker with the rest of the chain; otherwise (the prefix
 *     failed or was evicted) the whole chain from S.  Both give the same
 *     bytes because ops.c materialises every step.  Measured: the warp is
 *     ~90 % of a warp+focal chain; cheap first steps are not kept.
 *  8. Nothing waits forever: a worker sends PROGRESS at least once per
 *     percent or 0.2 s while GDAL calls back, so a RUNNING job whose worker
 *     sent nothing for stall_timeout seconds is stopped (SIGSTOP'ed, stuck
 *     in a loop that never calls back, blocked on a FIFO): police() kills
 *     it (SIGKILL ends a stopped process too), worker_died() fails the job
 *     with RFS_E_STALLED, empties the scratch and starts a new worker.
 *  9. Jobs belong to the users who asked for them (job->uids): the jobs
 *     file shows a user their own, and a user may cancel a job only if
 *     nobody else waits for it (may_cancel); root and the mount's owner
 *     see and cancel all.
 * 10. Pinned sources: the caller opens the source once and makes the key
 *     from that descriptor's identity (fs.c); the pool owns the descriptor
 *     (rfs_job_spec.src_fd), keeps it with the queued job and passes it to
 *     the worker with SCM_RIGHTS at dispatch (then closes its own copy).
 *     The worker reads only that descriptor for the source, so the bytes
 *     computed are those of the key's identity whatever happens to the
 *     name meanwhile; a source changed in place (same inode, new size or
 *     mtime) fails with RFS_E_SOURCE_CHANGED, which is not remembered: the
 *     next open makes a new key.
 */
#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "rasterfs/chain.h"
#include "rasterfs/err.h"
#include "rasterfs/log.h"
#include "rasterfs/pool.h"
#include "rasterfs/step.h"
#include "rasterfs/wire.h"
#include "rasterfs/worker.h"

extern char **environ;

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

static double elapsed(const struct timespec *t)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return (double)(now.tv_sec - t->tv_sec) +
	       (double)(now.tv_nsec - t->tv_nsec) / 1e9;
}

static unsigned bucket(const rfs_key *k)
{
	return k->b[0];
}

static struct job *table_find(struct rfs_pool *p, const rfs_key *k)
{
	for (struct job *j = p->table[bucket(k)]; j; j = j->hnext)
		if (memcmp(j->key.b, k->b, sizeof(k->b)) == 0)
			return j;
	return NULL;
}

static void table_remove(struct rfs_pool *p, struct job *job)
{
	struct job **pp = &p->table[bucket(&job->key)];

	while (*pp && *pp != job)
		pp = &(*pp)->hnext;
	assert(*pp == job);
	*pp = job->hnext;
}

static void wake(struct rfs_pool *p)
{
	uint64_t one = 1;
	ssize_t n = write(p->wakefd, &one, sizeof(one));
	(void)n;
}

static void job_free(struct job *job)
{
	while (job->waiters) {
		struct waiter *w = job->waiters;
		job->waiters = w->next;
		free(w);
	}
	if (job->src_fd >= 0)
		close(job->src_fd);
	free(job->vpath);
	free(job->source_rel);
	free(job->canonical);
	free(job->uids);
	if (job->prefix_fd >= 0)
		close(job->prefix_fd);
	free(job);
}

static struct failure *failure_find(struct rfs_pool *p, const rfs_key *k)
{
	for (unsigned i = 0; i < NFAILURES; i++)
		if (p->failures[i].used &&
		    memcmp(p->failures[i].key.b, k->b, sizeof(k->b)) == 0)
			return &p->failures[i];
	return NULL;
}

/* Remember (rc < 0) or forget (rc == 0) key's failure.  p->lock held. */
static void failure_note(struct rfs_pool *p, const rfs_key *k, int rc,
			 const char *msg)
{
	struct failure *f = failure_find(p, k);

	if (rc == 0) {
		if (f)
			f->used = 0;
		return;
	}
	if (!f) {
		f = &p->failures[0];
		for (unsigned i = 0; i < NFAILURES; i++) {
			struct failure *c = &p->failures[i];
			if (!c->used) {
				f = c;
				break;
			}
			if (c->when.tv_sec < f->when.tv_sec)
				f = c;
		}
	}
	f->used = 1;
	f->key = *k;
	f->code = rc;
	clock_gettime(CLOCK_MONOTONIC, &f->when);
	snprintf(f->msg, sizeof(f->msg), "%s", msg);
}

/* Put an ended job into the history ring.  p->lock held. */
static void record_job(struct rfs_pool *p, struct job *job, int rc,
		       const char *msg)
{
	struct record *r = &p->hist[p->hist_next];

	p->hist_next = (p->hist_next + 1) % RFS_POOL_HISTORY;
	free(r->vpath);
	free(r->canonical);
	free(r->uids);
	memset(r, 0, sizeof(*r));
	r->id = job->id;
	r->key = job->key;
	r->vpath = job->vpath ? strdup(job->vpath) : NULL;
	r->canonical = strdup(job->canonical);
	r->end = rc == 0 ? END_DONE :
		 rc == -RFS_E_CANCELLED ? END_CANCELLED : END_FAILED;
	r->progress = rc == 0 ? 1.0 : job->progress;
	r->pid = job->pid;
	r->started = job->state != JOB_QUEUED;
	r->wall_started = r->started ? job->wall_started : job->wall_queued;
	r->elapsed = elapsed(r->started ? &job->t_started : &job->t_queued);
	r->code = rc;
	snprintf(r->msg, sizeof(r->msg), "%s", rc && msg ? msg : "");
	r->uids = job->uids;
	r->nuids = job->nuids;
	job->uids = NULL;
	job->nuids = 0;
}

/* Note 6: does an end with rc say something about the output itself?  A
 * cancel, an unmount, a worker killed from outside or stalled, a source
 * that changed under its job (its name has a new key now), or a lack of
 * file descriptors (the daemon's or the worker's) does not. */
static int remembered_failure(int rc)
{
	return rc != -RFS_E_CANCELLED && rc != -RFS_E_SHUTDOWN &&
	       rc != -RFS_E_CRASH && rc != -RFS_E_STALLED &&
	       rc != -RFS_E_SOURCE_CHANGED &&
	       rc != -EMFILE && rc != -ENFILE;
}

static int has_uid(const uid_t *uids, unsigned n, uid_t uid)
{
	for (unsigned i = 0; i < n; i++)
		if (uids[i] == uid)
			return 1;
	return 0;
}

/* Note 9. */
static int privileged(const struct rfs_pool *p, uid_t uid)
{
	return uid == 0 || uid == p->cfg.owner;
}

static int may_see(const struct rfs_pool *p, const uid_t *uids, unsigned n,
		   uid_t uid)
{
	return privileged(p, uid) || has_uid(uids, n, uid);
}

static int may_cancel(const struct rfs_pool *p, const struct job *job,
		      uid_t uid)
{
	return privileged(p, uid) ||
	       (job->nuids == 1 && job->uids[0] == uid);
}

/* Note that uid asked for job.  p->lock held.  Returns 0 or -ENOMEM. */
static int job_add_uid(struct job *job, uid_t uid)
{
	if (has_uid(job->uids, job->nuids, uid))
		return 0;
	uid_t *nu = realloc(job->uids, (job->nuids + 1) * sizeof(*nu));
	if (!nu)
		return -ENOMEM;
	nu[job->nuids++] = uid;
	job->uids = nu;
	return 0;
}

/* End a job: out of the table (and the queue, if it never ran), then every
 * waiter is told.  Any thread. */
static struct waiter *end_locked(struct rfs_pool *p, struct job *job, int rc,
				 const char *msg)
{
	table_remove(p, job);
	if (job->state == JOB_QUEUED) {
		struct job **pp = &p->qhead, *prev = NULL;
		while (*pp && *pp != job) {
			prev = *pp;
			pp = &(*pp)->qnext;
		}
		if (*pp) {
			*pp = job->qnext;
			if (p->qtail == job)
				p->qtail = prev;
		}
	}
	record_job(p, job, rc, msg);
	if (remembered_failure(rc))
		failure_note(p, &job->key, rc, msg);
	if (job->state == JOB_COMMITTING) {
		p->ncommitting--;
		pthread_cond_broadcast(&p->idle);
	}
	if (job->state != JOB_QUEUED)
		rfs_stat_dec(p->stats, jobs_running);
	else
		rfs_stat_dec(p->stats, jobs_queued);
	/* a queued job may have waited for this one (note 7) */
	if (p->qhead)
		wake(p);
	struct waiter *ws = job->waiters;
	job->waiters = NULL;
	return ws;
}

/* Log the end of a job, tell its waiters, free it.  p->lock not held. */
static void end_tail(struct rfs_pool *p, struct job *job, int rc,
		     const char *msg, struct waiter *ws)
{
	if (rc == 0) {
		rfs_stat_inc(p->stats, jobs_done);
		rfs_log(LOG_INFO, "job %llu done in %.2f s: %s%s",
			(unsigned long long)job->id, elapsed(&job->t_queued),
			job->source_rel, job->canonical);
	} else if (rc == -RFS_E_CANCELLED) {
		rfs_stat_inc(p->stats, jobs_failed);
		rfs_log(LOG_NOTICE, "job %llu cancelled after %.2f s: %s%s: "
			"%s %s", (unsigned long long)job->id,
			elapsed(&job->t_queued), job->source_rel,
			job->canonical, rfs_err_name(rc), msg);
	} else {
		rfs_stat_inc(p->stats, jobs_failed);
		rfs_log(rc == -RFS_E_SHUTDOWN ? LOG_INFO : LOG_ERR,
			"job %llu failed after %.2f s: %s%s: %s %s",
			(unsigned long long)job->id, elapsed(&job->t_queued),
			job->source_rel, job->canonical, rfs_err_name(rc), msg);
	}
	while (ws) {
		struct waiter *w = ws;
		ws = w->next;
		if (w->fn)
			w->fn(w->arg, rc, msg);
		free(w);
	}
	job_free(job);
}

static void finish(struct rfs_pool *p, struct job *job, int rc,
		   const char *msg)
{
	if (rc && (!msg || !*msg))
		msg = rfs_strerror(rc);
	pthread_mutex_lock(&p->lock);
	struct waiter *ws = end_locked(p, job, rc, msg);
	pthread_mutex_unlock(&p->lock);
	end_tail(p, job, rc, msg, ws);
}

static void commit_done(void *arg, int rc)
{
	struct job *job = arg;

	finish(job->pool, job, rc, rc ? rfs_strerror(rc) : NULL);
}

static int spawn_worker(struct rfs_pool *p, unsigned i)
{
	struct slot *s = &p->slots[i];
	int sv[2], rc;
	char fdarg[16], ppid[24], cache[16], level[8], mem[24], maxpix[24];
	char uid[24], gid[24];
	posix_spawn_file_actions_t fa;

	rc = rfs_store_scratch_dir(p->store, i, s->scratch, sizeof(s->scratch));
	if (rc < 0)
		return rc;
	/* A worker that drops to another user still writes its scratch: it
	 * is that user's (the directories above it stay the daemon's; the
	 * worker works in it by relative paths, confine.h). */
	if (p->cfg.worker_uid != (uid_t)-1 &&
	    chown(s->scratch, p->cfg.worker_uid, p->cfg.worker_gid) < 0) {
		rc = -errno;
		rfs_log(LOG_ERR, "cannot give scratch %s to uid %ld: %s",
			s->scratch, (long)p->cfg.worker_uid, strerror(errno));
		return rc;
	}
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
		return -errno;
	/* The worker's end is the only descriptor it inherits. */
	fcntl(sv[1], F_SETFD, 0);
	snprintf(fdarg, sizeof(fdarg), "%d", sv[1]);
	snprintf(ppid, sizeof(ppid), "%ld", (long)getpid());
	snprintf(cache, sizeof(cache), "%d", p->cfg.gdal_cache_mb);
	snprintf(level, sizeof(level), "%d", p->cfg.log_level);
	snprintf(mem, sizeof(mem), "%llu",
		 (unsigned long long)p->cfg.worker_mem);
	snprintf(maxpix, sizeof(maxpix), "%llu",
		 (unsigned long long)p->cfg.max_pixels);
	snprintf(uid, sizeof(uid), "%ld", p->cfg.worker_uid == (uid_t)-1 ?
		 -1L : (long)p->cfg.worker_uid);
	snprintf(gid, sizeof(gid), "%ld", p->cfg.worker_uid == (uid_t)-1 ?
		 -1L : (long)p->cfg.worker_gid);
	char *argv[] = {
		"rasterfs-worker", RFS_WORKER_ARG, fdarg, ppid, cache,
		p->cfg.log_sink == RFS_LOG_SYSLOG ? "syslog" : "stderr", level,
		mem, maxpix, s->scratch, (char *)p->cfg.root, uid, gid, NULL,
	};
	posix_spawn_file_actions_init(&fa);
	rc = posix_spawn(&s->pid, p->exe, &fa, NULL, argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	close(sv[1]);
	if (rc != 0) {
		close(sv[0]);
		s->pid = 0;
		rfs_log(LOG_ERR, "cannot start a worker (%s): %s", p->exe,
			strerror(rc));
		return -rc;
	}
	s->fd = sv[0];
	fcntl(s->fd, F_SETFL, O_NONBLOCK);
	s->job = NULL;
	s->exiting = 0;
	rfs_log(LOG_DEBUG, "worker %u started: pid %ld, scratch %s", i,
		(long)s->pid, s->scratch);
	return 0;
}

/* Hand queued jobs to idle workers.  Called with p->lock held. */
static void dispatch(struct rfs_pool *p)
{
	for (unsigned i = 0; i < p->nslots && p->qhead; i++) {
		struct slot *s = &p->slots[i];
		if (s->fd < 0 || s->job || s->exiting)
			continue;
		/* the first queued job whose prefix job has ended (note 7) */
		struct job *job = p->qhead, *prev = NULL;
		while (job && job->prefix_len &&
		       table_find(p, &job->prefix_key)) {
			prev = job;
			job = job->qnext;
		}
		if (!job)
			break;
		if (prev)
			prev->qnext = job->qnext;
		else
			p->qhead = job->qnext;
		if (p->qtail == job)
			p->qtail = prev;
		job->qnext = NULL;
		int rc = snprintf(job->out_path, sizeof(job->out_path),
				  "%s/%s.tif", s->scratch, job->hex);
		assert(rc > 0 && (size_t)rc < sizeof(job->out_path));
		struct rfs_wire_job wj = {
			.src = job->src,
			.source_rel = job->source_rel,
			.canonical = job->canonical,
			.out_name = strrchr(job->out_path, '/') + 1,
			.src_fd = job->src_fd,
			.prefix_fd = -1,
		};
		if (job->prefix_len) {
			char *pc = strndup(job->canonical, job->prefix_len);
			if (pc && rfs_store_lookup(p->store, &job->prefix_key,
						   &job->src, pc, NULL) == 0)
				job->prefix_fd = rfs_store_open_object(
					p->store, &job->prefix_key);
			free(pc);
			if (job->prefix_fd >= 0) {
				wj.prefix_fd = job->prefix_fd;
				wj.canonical = job->canonical + job->prefix_len;
			} else {
				job->prefix_fd = -1;
			}
		}
		rc = rfs_wire_send_job(s->fd, job->id, &wj);
		if (rc < 0) {
			/* The worker is dying; its EOF will be seen by the
			 * manager.  Put the job back at the head. */
			if (job->prefix_fd >= 0)
				close(job->prefix_fd);
			job->prefix_fd = -1;
			job->qnext = p->qhead;
			p->qhead = job;
			if (!p->qtail)
				p->qtail = job;
			continue;
		}
		/* The worker has its own copies now (note 10). */
		close(job->src_fd);
		job->src_fd = -1;
		int from_prefix = job->prefix_fd >= 0;
		if (from_prefix)
			close(job->prefix_fd);
		job->prefix_fd = -1;
		job->state = JOB_RUNNING;
		job->slot = (int)i;
		job->pid = s->pid;
		clock_gettime(CLOCK_MONOTONIC, &job->t_started);
		job->t_heard = job->t_started;
		clock_gettime(CLOCK_REALTIME, &job->wall_started);
		s->job = job;
		rfs_stat_dec(p->stats, jobs_queued);
		rfs_stat_inc(p->stats, jobs_running);
		if (from_prefix)
			rfs_stat_inc(p->stats, prefix_hits);
		rfs_log(LOG_INFO, "job %llu started on worker pid %ld: %s%s%s",
			(unsigned long long)job->id, (long)s->pid,
			job->source_rel, job->canonical,
			from_prefix ? " (from its kept prefix)" : "");
	}
}

static const char *describe_status(int status, char *buf, size_t len)
{
	if (WIFSIGNALED(status))
		snprintf(buf, len, "killed by signal %d (%s)",
			 WTERMSIG(status), strsignal(WTERMSIG(status)));
	else if (WIFEXITED(status))
		snprintf(buf, len, "exited with status %d",
			 WEXITSTATUS(status));
	else
		snprintf(buf, len, "ended");
	return buf;
}

/* A worker's socket said EOF: reap it, fail its job, start another. */
static void worker_died(struct rfs_pool *p, unsigned i)
{
	struct slot *s = &p->slots[i];
	int status = 0;
	char how[96], msg[RFS_MSG_MAX];

	close(s->fd);
	s->fd = -1;
	waitpid(s->pid, &status, 0);
	describe_status(status, how, sizeof(how));
	pthread_mutex_lock(&p->lock);
	struct job *job = s->job;
	s->job = NULL;
	pthread_mutex_unlock(&p->lock);
	rfs_store_scratch_clean(s->scratch);
	if (job && job->kill_code == RFS_E_CANCELLED) {
		snprintf(msg, sizeof(msg), "cancelled: worker pid %ld did not "
			 "stop within %.0f s and was killed", (long)s->pid,
			 RFS_POOL_CANCEL_GRACE);
		finish(p, job, -RFS_E_CANCELLED, msg);
	} else if (job && job->kill_code == RFS_E_STALLED) {
		snprintf(msg, sizeof(msg), "worker pid %ld sent nothing for "
			 "stall_timeout=%u s (stopped, or stuck where GDAL "
			 "does not call back) and was killed", (long)s->pid,
			 p->cfg.stall_timeout);
		finish(p, job, -RFS_E_STALLED, msg);
	} else if (job && job->kill_code == RFS_E_TIMEOUT) {
		snprintf(msg, sizeof(msg), "still running after job_timeout="
			 "%u s: worker pid %ld killed", p->cfg.job_timeout,
			 (long)s->pid);
		finish(p, job, -RFS_E_TIMEOUT, msg);
	} else if (job) {
		snprintf(msg, sizeof(msg),
			 "worker pid %ld %s while computing %s%s",
			 (long)s->pid, how, job->source_rel, job->canonical);
		finish(p, job, -RFS_E_CRASH, msg);
	} else if (s->exiting) {
		rfs_log(LOG_INFO, "worker pid %ld %s after its job failed, as "
			"it said it would", (long)s->pid, how);
	} else if (!p->stopping) {
		rfs_log(LOG_WARNING, "idle worker pid %ld %s", (long)s->pid,
			how);
	}
	s->pid = 0;
	if (!p->stopping) {
		rfs_stat_inc(p->stats, workers_restarted);
		if (spawn_worker(p, i) < 0)
			rfs_log(LOG_ERR, "worker slot %u stays empty", i);
	}
}

static void handle_message(struct rfs_pool *p, unsigned i,
			   const struct rfs_msg *m)
{
	struct slot *s = &p->slots[i];
	struct job *job = s->job;

	if (!job || job->id != m->job_id) {
		rfs_log(LOG_DEBUG, "message for job %llu that is not running",
			(unsigned long long)m->job_id);
		return;
	}
	switch (m->type) {
	case RFS_MSG_PROGRESS:
		pthread_mutex_lock(&p->lock);
		clock_gettime(CLOCK_MONOTONIC, &job->t_heard);
		if (m->progress > job->progress)
			job->progress = m->progress;
		pthread_mutex_unlock(&p->lock);
		break;
	case RFS_MSG_DONE: {
		struct rfs_store_meta meta = {
			.src = job->src,
			.canonical = job->canonical,
			.source = job->source_rel,
			.size = m->size,
			.checksum = m->checksum,
		};
		/* Out of the worker's directory, which is emptied when its
		 * next job fails or it dies, perhaps before the committer
		 * gets to this file: up to the pool's scratch root (the
		 * same filesystem; one file per key). */
		char pending[PATH_MAX];
		int n = snprintf(pending, sizeof(pending), "%.*s/%s.tif",
				 (int)(strrchr(s->scratch, '/') - s->scratch),
				 s->scratch, job->hex);
		if (n > 0 && (size_t)n < sizeof(pending) &&
		    rename(job->out_path, pending) == 0)
			snprintf(job->out_path, sizeof(job->out_path), "%s",
				 pending);
		pthread_mutex_lock(&p->lock);
		s->job = NULL;
		job->slot = -1;
		job->progress = 1.0;
		job->state = JOB_COMMITTING;
		p->ncommitting++;
		pthread_mutex_unlock(&p->lock);
		int rc = rfs_store_commit(p->store, &job->key, job->out_path,
					  &meta, commit_done, job);
		if (rc < 0) {
			unlink(job->out_path);
			finish(p, job, rc, NULL);
		}
		break;
	}
	case RFS_MSG_FAILED:
		pthread_mutex_lock(&p->lock);
		s->job = NULL;
		if (m->flags & RFS_WIRE_FAILED_EXIT)
			s->exiting = 1; /* its EOF follows: replaced then */
		job->slot = -1;
		pthread_mutex_unlock(&p->lock);
		rfs_store_scratch_clean(s->scratch);
		finish(p, job, m->code, m->message);
		break;
	default:
		rfs_log(LOG_WARNING, "unexpected message %d from worker pid %ld",
			(int)m->type, (long)s->pid);
	}
}

/* Notes 5 and 8: send CANCELs, kill workers that ignore them, run over
 * job_timeout or stall.  Returns the poll timeout (ms) until the next
 * check.  Called with p->lock held. */
static int police(struct rfs_pool *p)
{
	int timeout = -1;

	for (unsigned i = 0; i < p->nslots; i++) {
		struct slot *s = &p->slots[i];
		struct job *job = s->job;
		if (!job || job->kill_code)
			continue;
		if (job->cancel && !job->cancel_sent) {
			rfs_wire_send_cancel(s->fd, job->id);
			job->cancel_sent = 1;
			clock_gettime(CLOCK_MONOTONIC, &job->t_cancel);
		}
		if (job->cancel_sent &&
		    elapsed(&job->t_cancel) >= RFS_POOL_CANCEL_GRACE) {
			job->kill_code = RFS_E_CANCELLED;
			kill(s->pid, SIGKILL);
			continue;
		}
		if (p->cfg.job_timeout &&
		    elapsed(&job->t_started) >= p->cfg.job_timeout) {
			job->kill_code = RFS_E_TIMEOUT;
			kill(s->pid, SIGKILL);
			continue;
		}
		if (p->cfg.stall_timeout &&
		    elapsed(&job->t_heard) >= p->cfg.stall_timeout) {
			rfs_log(LOG_WARNING, "job %llu: worker pid %ld sent "
				"nothing for %u s: killing it",
				(unsigned long long)job->id, (long)s->pid,
				p->cfg.stall_timeout);
			job->kill_code = RFS_E_STALLED;
			kill(s->pid, SIGKILL);
			continue;
		}
		int t = job->cancel_sent ? 100 :
			p->cfg.job_timeout || p->cfg.stall_timeout ? 250 : -1;
		if (t > 0 && (timeout < 0 || t < timeout))
			timeout = t;
	}
	return timeout;
}

static void *manager_main(void *arg)
{
	struct rfs_pool *p = arg;
	struct pollfd *pfd = calloc(p->nslots + 1, sizeof(*pfd));
	static __thread struct rfs_msg m;

	int rc = pfd ? 0 : -ENOMEM;

	for (unsigned i = 0; i < p->nslots && rc == 0; i++)
		rc = spawn_worker(p, i);
	pthread_mutex_lock(&p->lock);
	p->started = 1;
	p->start_rc = rc;
	pthread_cond_broadcast(&p->idle);
	pthread_mutex_unlock(&p->lock);
	if (rc < 0)
		goto out;
	for (;;) {
		int timeout = -1;
		pthread_mutex_lock(&p->lock);
		int stopping = p->stopping;
		if (!stopping) {
			dispatch(p);
			timeout = police(p);
		}
		pthread_mutex_unlock(&p->lock);
		if (stopping)
			break;

		pfd[0] = (struct pollfd){ .fd = p->wakefd, .events = POLLIN };
		for (unsigned i = 0; i < p->nslots; i++)
			pfd[i + 1] = (struct pollfd){ .fd = p->slots[i].fd,
						      .events = POLLIN };
		if (poll(pfd, p->nslots + 1, timeout) < 0) {
			if (errno == EINTR)
				continue;
			rfs_log(LOG_ERR, "pool poll: %s", strerror(errno));
			break;
		}
		if (pfd[0].revents & POLLIN) {
			uint64_t v;
			ssize_t n = read(p->wakefd, &v, sizeof(v));
			(void)n;
		}
		for (unsigned i = 0; i < p->nslots; i++) {
			if (!pfd[i + 1].revents || p->slots[i].fd < 0)
				continue;
			for (;;) {
				int rc = rfs_wire_recv(p->slots[i].fd, &m);
				if (rc == 0) {
					handle_message(p, i, &m);
					continue;
				}
				if (rc != -EAGAIN) {
					if (rc != -EPIPE)
						rfs_log(LOG_ERR,
							"worker pid %ld: %s",
							(long)p->slots[i].pid,
							rfs_strerror(rc));
					worker_died(p, i);
				}
				break;
			}
		}
	}
out:
	free(pfd);
	return NULL;
}

int rfs_pool_new(const struct rfs_pool_config *cfg, rfs_store *store,
		 struct rfs_stats *stats, rfs_pool **out)
{
	struct rfs_pool *p = calloc(1, sizeof(*p));
	int rc = -ENOMEM;

	if (!p)
		return -ENOMEM;
	p->cfg = *cfg;
	p->exe = strdup(cfg->exe);
	p->store = store;
	p->stats = stats;
	p->nslots = cfg->workers ? cfg->workers : 1;
	p->slots = calloc(p->nslots, sizeof(*p->slots));
	p->failures = calloc(NFAILURES, sizeof(*p->failures));
	p->wakefd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	pthread_mutex_init(&p->lock, NULL);
	pthread_cond_init(&p->idle, NULL);
	if (!p->exe || !p->slots || !p->failures)
		goto fail;
	if (p->wakefd < 0) {
		rc = -errno;
		goto fail;
	}
	for (unsigned i = 0; i < p->nslots; i++)
		p->slots[i].fd = -1;
	/* Workers are spawned by the manager thread (note 3); wait for it. */
	if ((rc = -pthread_create(&p->manager, NULL, manager_main, p)) < 0)
		goto fail;
	pthread_mutex_lock(&p->lock);
	while (!p->started)
		pthread_cond_wait(&p->idle, &p->lock);
	rc = p->start_rc;
	pthread_mutex_unlock(&p->lock);
	if (rc < 0) {
		rfs_pool_free(p);
		return rc;
	}
	*out = p;
	return 0;
fail:
	if (p->wakefd >= 0)
		close(p->wakefd);
	free(p->slots);
	free(p->failures);
	free(p->exe);
	free(p);
	return rc;
}

/* Length of the first step of canonical if the chain's prefix is worth
 * keeping (note 7): a warp (the step table's RFS_STEP_WARP) followed by at
 * least one more step (not only fmt=).  0 otherwise. */
static size_t prefix_len(const char *canonical)
{
	const char *rest;

	if (!rfs_step_first_has(canonical, RFS_STEP_WARP) ||
	    !(rest = strchr(canonical + 1, '@')) ||
	    !strncmp(rest, "@fmt=", 5))
		return 0;
	return (size_t)(rest - canonical);
}

/* A new queued job for spec with waiter w (may be NULL), in the table and
 * at the queue's tail.  Called with p->lock held.  NULL: no memory. */
static struct job *job_new(struct rfs_pool *p, const struct rfs_job_spec *spec,
			   struct waiter *w)
{
	struct job *job = calloc(1, sizeof(*job));
	if (job)
		job->prefix_fd = job->src_fd = -1;
	if (!job || !(job->source_rel = strdup(spec->source_rel)) ||
	    !(job->vpath = strdup(spec->vpath ? spec->vpath :
				  spec->source_rel)) ||
	    !(job->canonical = strdup(spec->canonical))) {
		if (job)
			job_free(job);
		return NULL;
	}
	job->pool = p;
	job->id = ++p->next_id;
	job->key = spec->key;
	rfs_key_hex(&job->key, job->hex);
	job->src = spec->src;
	job->state = JOB_QUEUED;
	job->slot = -1;
	clock_gettime(CLOCK_MONOTONIC, &job->t_queued);
	clock_gettime(CLOCK_REALTIME, &job->wall_queued);
	job->warm = spec->warm;
	if (job_add_uid(job, spec->uid) < 0) {
		job_free(job);
		return NULL;
	}
	job->waiters = w;
	job->hnext = p->table[bucket(&job->key)];
	p->table[bucket(&job->key)] = job;
	if (p->qtail)
		p->qtail->qnext = job;
	else
		p->qhead = job;
	p->qtail = job;
	rfs_stat_inc(p->stats, jobs_queued);
	return job;
}

int rfs_pool_request(rfs_pool *p, const struct rfs_job_spec *spec,
		     rfs_pool_done_fn fn, void *arg)
{
	struct waiter *w = NULL;
	struct job *job;
	int src_fd = spec->src_fd; /* ours now, whatever happens (note 10) */
	int rc = 0;

	if (fn) {
		if (!(w = malloc(sizeof(*w)))) {
			if (src_fd >= 0)
				close(src_fd);
			return -ENOMEM;
		}
		w->fn = fn;
		w->arg = arg;
		w->next = NULL;
	}
	pthread_mutex_lock(&p->lock);
	if (p->stopping) {
		rc = -RFS_E_SHUTDOWN;
		goto out;
	}
	if (src_fd < 0) {
		rc = -EBADF; /* a job needs its pinned source */
		goto out;
	}
	job = table_find(p, &spec->key);
	if (job) {
		if (job_add_uid(job, spec->uid) < 0) {
			rc = -ENOMEM;
			goto out;
		}
		if (w) {
			w->next = job->waiters;
			job->waiters = w;
			w = NULL;
			rfs_stat_inc(p->stats, joined);
		}
		if (spec->warm)
			job->warm = 1;
		/* A cancel not yet sent is withdrawn: someone wants it. */
		if (job->cancel && !job->cancel_sent)
			job->cancel = 0;
		goto out;
	}
	/* Note 2: no job, so the entry, if any, is already committed. */
	if (rfs_store_lookup(p->store, &spec->key, &spec->src, spec->canonical,
			     NULL) == 0) {
		rc = 1;
		goto out;
	}
	/* Note 6: a recent failure fails at once. */
	struct failure *f = failure_find(p, &spec->key);
	if (f && p->cfg.retry_after &&
	    elapsed(&f->when) < p->cfg.retry_after) {
		rc = f->code;
		goto out;
	}
	size_t plen = p->cfg.keep_prefixes ? prefix_len(spec->canonical) : 0;
	rfs_key pk;
	if (plen) {
		/* note 7: S@p1's job goes first, unless it exists or is
		 * stored (or failed lately: then the chain runs from S) */
		char pc[RFS_CHAIN_TEXT_MAX];
		char pv[PATH_MAX];
		memcpy(pc, spec->canonical, plen);
		pc[plen] = '\0';
		rfs_key_make(&pk, &spec->src, pc);
		struct failure *pf = failure_find(p, &pk);
		int pfd = -1;
		if (!table_find(p, &pk) &&
		    rfs_store_lookup(p->store, &pk, &spec->src, pc,
				     NULL) != 0 &&
		    !(pf && p->cfg.retry_after &&
		      elapsed(&pf->when) < p->cfg.retry_after) &&
		    /* no descriptor left: the chain runs from S */
		    (pfd = fcntl(src_fd, F_DUPFD_CLOEXEC, 0)) >= 0) {
			struct rfs_job_spec ps = *spec;
			snprintf(pv, sizeof(pv), "%s%s", spec->source_rel, pc);
			ps.key = pk;
			ps.canonical = pc;
			ps.vpath = pv;
			ps.warm = 1;
			job = job_new(p, &ps, NULL);
			if (!job) {
				close(pfd);
				rc = -ENOMEM;
				goto out;
			}
			job->src_fd = pfd;
			job->is_prefix = 1;
			rfs_stat_inc(p->stats, prefix_jobs);
			rfs_log(LOG_INFO, "job %llu keeps the prefix %s%s",
				(unsigned long long)job->id,
				spec->source_rel, pc);
		}
	}
	job = job_new(p, spec, w);
	if (!job) {
		rc = -ENOMEM;
		goto out;
	}
	w = NULL;
	job->src_fd = src_fd;
	src_fd = -1;
	if (plen) {
		job->prefix_len = plen;
		job->prefix_key = pk;
	}
	rfs_stat_inc(p->stats, jobs_started);
	wake(p);
out:
	pthread_mutex_unlock(&p->lock);
	free(w);
	if (src_fd >= 0)
		close(src_fd);
	return rc;
}

int rfs_pool_job_state(rfs_pool *p, const rfs_key *key, const char **state,
		       double *progress)
{
	static const char *const names[] = {
		[JOB_QUEUED] = "queued",
		[JOB_RUNNING] = "running",
		[JOB_COMMITTING] = "running",
	};
	int rc = -ENOENT;

	pthread_mutex_lock(&p->lock);
	struct job *job = table_find(p, key);
	if (job) {
		if (state)
			*state = names[job->state];
		if (progress)
			*progress = job->progress;
		rc = 0;
		goto out;
	}
	/* Ended: the newest record of key says how, if it is still kept;
	 * else a remembered failure. */
	for (unsigned i = 1; i <= RFS_POOL_HISTORY; i++) {
		struct record *r = &p->hist[(p->hist_next + RFS_POOL_HISTORY -
					     i) % RFS_POOL_HISTORY];
		if (r->id && memcmp(r->key.b, key->b, sizeof(key->b)) == 0) {
			if (r->end == END_DONE)
				break; /* the store answers for it */
			if (state)
				*state = r->end == END_CANCELLED ?
					 "cancelled" : "failed";
			if (progress)
				*progress = r->progress;
			rc = 0;
			goto out;
		}
	}
	if (failure_find(p, key)) {
		if (state)
			*state = "failed";
		if (progress)
			*progress = 0;
		rc = 0;
	}
out:
	pthread_mutex_unlock(&p->lock);
	return rc;
}

unsigned rfs_pool_workers(const rfs_pool *p)
{
	return p->nslots;
}

void rfs_pool_free(rfs_pool *p)
{
	if (!p)
		return;
	pthread_mutex_lock(&p->lock);
	p->stopping = 1;
	pthread_mutex_unlock(&p->lock);
	wake(p);
	pthread_join(p->manager, NULL);

	/* Idle workers exit on EOF; busy ones are in GDAL and will not look,
	 * so they are killed.  Their jobs fail below. */
	for (unsigned i = 0; i < p->nslots; i++) {
		struct slot *s = &p->slots[i];
		if (!s->pid)
			continue;
		if (s->job)
			kill(s->pid, SIGKILL);
		close(s->fd);
		s->fd = -1;
	}
	for (unsigned i = 0; i < p->nslots; i++) {
		struct slot *s = &p->slots[i];
		if (!s->pid)
			continue;
		int status;
		for (int tries = 0; waitpid(s->pid, &status, WNOHANG) == 0;
		     tries++) {
			if (tries == 200) /* 2 s: it must be stuck */
				kill(s->pid, SIGKILL);
			usleep(10000);
		}
		rfs_store_scratch_clean(s->scratch);
	}

	/* Fail what never ran or was cut short; wait for commits under way,
	 * whose callbacks still use the pool. */
	pthread_mutex_lock(&p->lock);
	p->qhead = p->qtail = NULL;
	pthread_mutex_unlock(&p->lock);
	for (;;) {
		struct job *victim = NULL;
		pthread_mutex_lock(&p->lock);
		for (unsigned b = 0; b < NBUCKETS && !victim; b++)
			for (struct job *j = p->table[b]; j; j = j->hnext)
				if (j->state != JOB_COMMITTING) {
					victim = j;
					break;
				}
		if (!victim && p->ncommitting)
			pthread_cond_wait(&p->idle, &p->lock);
		int done = !victim && !p->ncommitting;
		pthread_mutex_unlock(&p->lock);
		if (victim)
			finish(p, victim, -RFS_E_SHUTDOWN,
			       "the mount is shutting down");
		else if (done)
			break;
	}
	close(p->wakefd);
	pthread_cond_destroy(&p->idle);
	pthread_mutex_destroy(&p->lock);
	for (unsigned i = 0; i < RFS_POOL_HISTORY; i++) {
		free(p->hist[i].vpath);
		free(p->hist[i].canonical);
		free(p->hist[i].uids);
	}
	free(p->failures);
	free(p->slots);
	free(p->exe);
	free(p);
}

/* Cancel job (note 5).  p->lock held; a queued job is ended here and
 * returned, to be passed to end_tail() once the lock is dropped. */
static struct job *cancel_locked(struct rfs_pool *p, struct job *job,
				 const char *why, struct waiter **ws)
{
	if (job->state == JOB_QUEUED) {
		*ws = end_locked(p, job, -RFS_E_CANCELLED, why);
		return job;
	}
	if (job->state == JOB_RUNNING && !job->cancel) {
		job->cancel = 1;
		wake(p);
	}
	return NULL;
}

int rfs_pool_cancel_waiter(rfs_pool *p, const rfs_key *key, void *waiter)
{
	static const char why[] = "cancelled: every reader was interrupted";
	struct job *ended = NULL;
	struct waiter *ws = NULL, *found = NULL;

	pthread_mutex_lock(&p->lock);
	struct job *job = table_find(p, key);
	if (job) {
		for (struct waiter **pp = &job->waiters; *pp;
		     pp = &(*pp)->next) {
			if ((*pp)->arg == waiter && (*pp)->fn) {
				found = *pp;
				*pp = found->next;
				break;
			}
		}
		if (found && !job->waiters && !job->warm)
			ended = cancel_locked(p, job, why, &ws);
	}
	pthread_mutex_unlock(&p->lock);
	free(found);
	if (ended)
		end_tail(p, ended, -RFS_E_CANCELLED, why, ws);
	return found != NULL;
}

int rfs_pool_cancel(rfs_pool *p, const rfs_key *key, uid_t uid)
{
	static const char why[] = "cancelled on request (rasterfs cancel)";
	struct job *ended = NULL;
	struct waiter *ws = NULL;
	int rc = -ENOENT;

	pthread_mutex_lock(&p->lock);
	struct job *job = table_find(p, key);
	if (job && job->state != JOB_COMMITTING) {
		if (may_cancel(p, job, uid)) {
			ended = cancel_locked(p, job, why, &ws);
			rc = 0;
		} else {
			rc = -EPERM;
		}
	}
	pthread_mutex_unlock(&p->lock);
	if (ended)
		end_tail(p, ended, -RFS_E_CANCELLED, why, ws);
	return rc;
}

int rfs_pool_last_error(rfs_pool *p, const rfs_key *key, int *code,
			char *msg, size_t len, int *fresh)
{
	int rc = -ENOENT;

	pthread_mutex_lock(&p->lock);
	struct failure *f = failure_find(p, key);
	if (f) {
		if (code)
			*code = f->code;
		if (msg)
			snprintf(msg, len, "%s", f->msg);
		if (fresh)
			*fresh = p->cfg.retry_after &&
				 elapsed(&f->when) < p->cfg.retry_after;
		rc = 0;
	}
	pthread_mutex_unlock(&p->lock);
	return rc;
}

/* A growing text buffer for the jobs file. */
struct text {
	char *s;
	size_t len, cap;
	int oom;
};

static void text_add(struct text *t, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void text_add(struct text *t, const char *fmt, ...)
{
	va_list ap;

	if (t->oom)
		return;
	for (;;) {
		va_start(ap, fmt);
		int n = vsnprintf(t->s + t->len, t->cap - t->len, fmt, ap);
		va_end(ap);
		if (n < 0) {
			t->oom = 1;
			return;
		}
		if ((size_t)n < t->cap - t->len) {
			t->len += (size_t)n;
			return;
		}
		size_t nc = 2 * t->cap + (size_t)n + 1;
		char *ns = realloc(t->s, nc);
		if (!ns) {
			t->oom = 1;
			return;
		}
		t->s = ns;
		t->cap = nc;
	}
}

/* A JSON string (RFC 8259): quote, backslash and control characters
 * escaped. */
static void text_json_string(struct text *t, const char *v)
{
	text_add(t, "\"");
	for (const unsigned char *c = (const unsigned char *)(v ? v : "");
	     *c; c++) {
		if (*c == '"' || *c == '\\')
			text_add(t, "\\%c", *c);
		else if (*c < 0x20)
			text_add(t, "\\u%04x", *c);
		else
			text_add(t, "%c", *c);
	}
	text_add(t, "\"");
}

static void text_iso_time(struct text *t, const struct timespec *ts)
{
	struct tm tm;
	char buf[40];

	gmtime_r(&ts->tv_sec, &tm);
	strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &tm);
	text_add(t, "\"%s\"", buf);
}

static void text_job(struct text *t, uint64_t id, const char *vpath,
		     const char *canonical, const char *state,
		     double progress, pid_t pid,
		     const struct timespec *started, double el, int code,
		     const char *msg)
{
	text_add(t, "{\"id\": %llu, \"path\": ", (unsigned long long)id);
	text_json_string(t, vpath);
	text_add(t, ", \"chain\": ");
	text_json_string(t, canonical);
	text_add(t, ", \"state\": \"%s\", \"progress\": %.1f, \"pid\": ",
		 state, 100.0 * progress);
	if (pid)
		text_add(t, "%ld", (long)pid);
	else
		text_add(t, "null");
	text_add(t, ", \"started\": ");
	if (started)
		text_iso_time(t, started);
	else
		text_add(t, "null");
	text_add(t, ", \"elapsed\": %.2f, \"error\": ", el);
	if (code) {
		text_json_string(t, rfs_err_name(code));
		text_add(t, ", \"message\": ");
		text_json_string(t, msg);
	} else {
		text_add(t, "null, \"message\": null");
	}
	text_add(t, "}\n");
}

static int job_cmp(const void *a, const void *b)
{
	const struct job *x = *(struct job *const *)a;
	const struct job *y = *(struct job *const *)b;

	return x->id < y->id ? -1 : x->id > y->id;
}

int rfs_pool_jobs_json(rfs_pool *p, uid_t uid, char **out, size_t *len)
{
	static const char *const ends[] = {
		[END_DONE] = "done",
		[END_FAILED] = "failed",
		[END_CANCELLED] = "cancelled",
	};
	struct text t = { .s = malloc(4096), .cap = 4096 };

	if (!t.s)
		return -ENOMEM;
	t.s[0] = '\0';
	pthread_mutex_lock(&p->lock);
	/* Finished first, oldest to newest, then the live ones: a reader
	 * tailing the file sees the newest at the bottom. */
	for (unsigned i = 0; i < RFS_POOL_HISTORY; i++) {
		struct record *r = &p->hist[(p->hist_next + i) %
					    RFS_POOL_HISTORY];
		if (!r->id || !may_see(p, r->uids, r->nuids, uid))
			continue;
		text_job(&t, r->id, r->vpath, r->canonical, ends[r->end],
			 r->progress, r->pid,
			 r->started ? &r->wall_started : NULL, r->elapsed,
			 r->code, r->msg);
	}
	/* The live ones in the order they were asked for. */
	size_t n = 0, cap = 0;
	struct job **live = NULL;
	for (unsigned b = 0; b < NBUCKETS; b++)
		for (struct job *j = p->table[b]; j; j = j->hnext) {
			if (!may_see(p, j->uids, j->nuids, uid))
				continue;
			if (n == cap) {
				size_t nc = cap ? 2 * cap : 64;
				struct job **nl = realloc(live,
							  nc * sizeof(*nl));
				if (!nl) {
					t.oom = 1;
					goto unlock;
				}
				live = nl;
				cap = nc;
			}
			live[n++] = j;
		}
	if (n)
		qsort(live, n, sizeof(*live), job_cmp);
	for (size_t i = 0; i < n; i++) {
		struct job *j = live[i];
		int q = j->state == JOB_QUEUED;
		text_job(&t, j->id, j->vpath, j->canonical,
			 q ? "queued" : "running", j->progress,
			 q ? 0 : j->pid, q ? NULL : &j->wall_started,
			 elapsed(q ? &j->t_queued : &j->t_started), 0, NULL);
	}
unlock:
	pthread_mutex_unlock(&p->lock);
	free(live);
	if (t.oom) {
		free(t.s);
		return -ENOMEM;
	}
	*out = t.s;
	*len = t.len;
	return 0;
}
