/* pool.c - the worker processes: spawn, dispatch, police, respawn.
 *
 * Design notes:
 *  1. GDAL runs only in workers (separate processes, exec'd afresh), so a
 *     crash, an out-of-memory kill or a cancel costs one job, never the
 *     mount.
 *  2. One job per key.  rfs_pool_request() looks the key up in the job table
 *     (jobs.h) and, only if no job exists, in the store, both under p->lock.
 *     The committer commits the index entry before finish() removes the job
 *     from the table, so a request either finds the job or finds the entry:
 *     no key is computed twice by one mount.
 *  3. Only the manager thread talks to workers and spawns them (a worker's
 *     PR_SET_PDEATHSIG follows the thread that spawned it, and the manager
 *     lives as long as the pool).
 *  4. Every call into the job table and the history is made under p->lock;
 *     the waiters the table hands back are called after it is dropped
 *     (jobs.c note 2), so they may reply to FUSE or even call
 *     rfs_pool_request() again.
 *  5. Cancelling a running job only marks it; the manager sends CANCEL and,
 *     if the worker has not answered after RFS_POOL_CANCEL_GRACE, kills it
 *     (GDAL may sit in a call that never looks at the progress callback).
 *     A killed worker's scratch is emptied and the worker respawned, so
 *     nothing of a cancelled job survives and nothing enters the store.
 *  6. Ended jobs go into the history (history.h) for the jobs file;
 *     failures are remembered by the job table (jobs.c note 3).
 *  7. Kept prefixes (keep_prefixes): a chain of two or more steps whose
 *     first step warps (proj, res, size) starts from the output of that
 *     first step alone, `S@p1`, which is an ordinary output (statistics
 *     and all, servable as itself).  A request for such a chain that finds
 *     neither S@p1 in the store nor a job for it queues a job for S@p1
 *     (counted in prefix_jobs, not jobs_started: stats.h) ahead of its
 *     own; a queued job is not dispatched while its prefix's job exists.  At dispatch,
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
 *  9. Who may see and cancel a job is the job table's to say (jobs.c
 *     note 4).
 * 10. Pinned sources: the caller opens the source once and makes the key
 *     from that descriptor's identity (fs_open.c); the pool owns the
 *     descriptor (rfs_job_spec.src_fd), keeps it with the queued job and
 *     passes it to the worker with SCM_RIGHTS at dispatch (then closes its
 *     own copy).  The worker reads only that descriptor for the source, so
 *     the bytes computed are those of the key's identity whatever happens
 *     to the name meanwhile; a source changed in place (same inode, new
 *     size or mtime) fails with RFS_E_SOURCE_CHANGED, which is not
 *     remembered: the next open makes a new key.
 * 11. Tiers (pool.h).  With a tier set, rfs_pool_request() adds a new job
 *     held (jobs.c note 6) and, once p->lock is dropped, hands the tier a
 *     duplicate of the pinned source; single flight, cancels, the jobs
 *     file and shutdown treat a held job as a queued one.  The tier's
 *     answer comes through rfs_pool_tier_answer(): found, the tier has
 *     already committed the key (note 2 holds: the entry is there before
 *     the job leaves the table), the job ends done and uncounted; not
 *     found, the job is released into the queue, its kept prefix is
 *     queued only now (a chain found in the tier needs no prefix), and
 *     job->tiered makes end_tail() tell the tier how it ended.  Kept
 *     prefixes themselves are never looked for in a tier.
 * 12. Early answers for the pieces of a lazy output (lazy.h) that readers
 *     wait for: when the worker says DONE, the pool opens the finished
 *     file (renamed out of the worker's directory, so no later job of the
 *     worker can touch it), checks that its size and XXH3-64 are those
 *     the worker computed over the bytes it wrote and fsync'ed, keeps the
 *     descriptor under the key (p->early), and answers the job's waiters
 *     at once, before the committer has renamed the file and committed
 *     the index (1-2 ms each on the first window of a lazy output: the
 *     sample, then the block; more when the committer is busy).  They
 *     read the piece through rfs_pool_early_open; the descriptor goes
 *     when the commit ends (then the store has the piece, so nobody asks
 *     the pool for it) or fails.  Why this keeps the store's rules: the
 *     bytes served are final and checked (never torn, never zero, never
 *     another file's: the descriptor was opened on this job's file, and
 *     the checksum is the worker's); a crash before the commit loses the
 *     piece, and a later read computes it again, the same bytes (a key
 *     names one sequence of bytes however it is computed: the sample and
 *     the blocks are deterministic, lazy.h, and tests/mount/test_lazy.py
 *     and test_crash.py check recomputed bytes against whole outputs), so
 *     a header answered with the sample statistics is never answered
 *     with others later.  The single flight holds: the job stays in the
 *     table, COMMITTING, until the commit ends; a request meanwhile joins
 *     it or, through rfs_pool_early_open, needs no job.  A commit that
 *     fails fails no early reader: its bytes were right.  Only pieces with
 *     waiters and of at most RFS_POOL_EARLY_MAX bytes (hashing a big one
 *     twice would cost what it saves).
 */
#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <xxhash.h>

#include "rasterfs/chain.h"
#include "rasterfs/err.h"
#include "rasterfs/history.h"
#include "rasterfs/jobs.h"
#include "rasterfs/log.h"
#include "rasterfs/pool.h"
#include "rasterfs/step.h"
#include "rasterfs/wire.h"
#include "rasterfs/worker.h"

struct slot {
	pid_t pid;                /* 0: no worker */
	int fd;                   /* our end of the socketpair, -1 if none */
	struct rfs_job *job;      /* the job it runs, or NULL */
	int exiting;              /* said it exits: no job until replaced */
	char scratch[PATH_MAX];
};

#define RFS_POOL_EARLY_MAX (16u << 20) /* bytes (note 12) */

/* A piece answered before its commit (note 12). */
struct early {
	rfs_key key;
	int fd;
	struct early *next;
};

struct rfs_pool {
	struct rfs_pool_config cfg;
	char *exe;
	rfs_store *store;
	struct rfs_stats *stats;
	pthread_mutex_t lock;     /* guards jobs, hist and the slots' jobs */
	pthread_cond_t idle;      /* signalled when a committing job ends */
	rfs_jobs *jobs;
	rfs_history *hist;
	int stopping;
	int wakefd;               /* eventfd: the manager's doorbell */
	unsigned nslots;
	struct slot *slots;
	pthread_t manager;
	int started;              /* the manager has spawned the workers */
	int start_rc;
	const struct rfs_pool_tier *tier; /* note 11, or NULL */
	void *tier_arg;
	struct early *early;      /* note 12; under lock */
};

static double elapsed(const struct timespec *t)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return (double)(now.tv_sec - t->tv_sec) +
	       (double)(now.tv_nsec - t->tv_nsec) / 1e9;
}

static void wake(struct rfs_pool *p)
{
	uint64_t one = 1;
	ssize_t n = write(p->wakefd, &one, sizeof(one));
	(void)n;
}

/* ---- ending jobs ------------------------------------------------------ */

/* Out of the table, into the history (note 6).  p->lock held. */
static struct rfs_waiter *end_locked(struct rfs_pool *p, struct rfs_job *job,
				     int rc, const char *msg)
{
	const int was_committing = job->state == RFS_JOB_COMMITTING;
	struct rfs_waiter *ws = rfs_jobs_end(p->jobs, job, rc, msg);

	rfs_history_record(p->hist, job, rc, msg);
	if (was_committing)
		pthread_cond_broadcast(&p->idle);
	/* a queued job may have waited for this one (note 7) */
	if (rfs_jobs_any_queued(p->jobs))
		wake(p);
	return ws;
}

/* Who a line about job id is for (log.h): the users who asked for it,
 * from the table (a job still in it) or the history (the record took the
 * job's uids over).  At most max; 0 if neither knows it (the line is then
 * private).  p->lock held. */
struct owners_arg {
	uint64_t id;
	uid_t *uids;
	unsigned max, n;
};

static void owners_of(struct rfs_job *job, void *arg)
{
	struct owners_arg *a = arg;

	if (job->id != a->id || a->n)
		return;
	for (unsigned i = 0; i < job->nuids && a->n < a->max; i++)
		a->uids[a->n++] = job->uids[i];
}

static unsigned job_owners_locked(struct rfs_pool *p, uint64_t id,
				  uid_t *uids, unsigned max)
{
	struct owners_arg a = { id, uids, max, 0 };

	rfs_jobs_each(p->jobs, owners_of, &a);
	if (!a.n)
		a.n = rfs_history_owners(p->hist, id, uids, max);
	return a.n;
}

/* rfs_log_capture_owners: the owners of a worker's line about job id. */
static unsigned log_owners(void *arg, uint64_t id, uid_t *uids, unsigned max)
{
	struct rfs_pool *p = arg;

	pthread_mutex_lock(&p->lock);
	unsigned n = job_owners_locked(p, id, uids, max);
	pthread_mutex_unlock(&p->lock);
	return n;
}

/* Log the end of a job, tell its waiters, free it.  p->lock not held. */
static void end_tail(struct rfs_job *job, int rc, const char *msg,
		     struct rfs_waiter *ws)
{
	/* The job table counted the end (jobs.c note 5). */
	struct rfs_pool *p = job->owner;
	uid_t own[RFS_LOG_OWNERS];
	unsigned nown = log_owners(p, job->id, own, RFS_LOG_OWNERS);

	rfs_log_capture_sync(); /* its worker's lines first (log.h) */

	if (rc == 0) {
		rfs_log_owned(own, nown, LOG_INFO, "job %llu done in %.2f s: "
			      "%s%s", (unsigned long long)job->id,
			      elapsed(&job->t_queued), job->source_rel,
			      job->canonical);
	} else if (rc == -RFS_E_CANCELLED) {
		rfs_log_owned(own, nown, LOG_NOTICE, "job %llu cancelled after "
			      "%.2f s: %s%s: %s %s",
			      (unsigned long long)job->id,
			      elapsed(&job->t_queued), job->source_rel,
			      job->canonical, rfs_err_name(rc), msg);
	} else {
		rfs_log_owned(own, nown,
			      rc == -RFS_E_SHUTDOWN ? LOG_INFO : LOG_ERR,
			      "job %llu failed after %.2f s: %s%s: %s %s",
			      (unsigned long long)job->id,
			      elapsed(&job->t_queued), job->source_rel,
			      job->canonical, rfs_err_name(rc), msg);
	}
	/* note 11: the tier publishes what was computed, or lets go; told
	 * first, so a waiter that asks the tier next finds it publishing */
	if (job->tiered && p->tier)
		p->tier->ended(p->tier_arg, job->id, &job->key, rc);
	rfs_jobs_notify(ws, rc, msg);
	rfs_job_free(job);
}

static void finish(struct rfs_pool *p, struct rfs_job *job, int rc,
		   const char *msg)
{
	if (rc && (!msg || !*msg))
		msg = rfs_strerror(rc);
	pthread_mutex_lock(&p->lock);
	struct rfs_waiter *ws = end_locked(p, job, rc, msg);
	pthread_mutex_unlock(&p->lock);
	end_tail(job, rc, msg, ws);
}

/* Note 12: key's early descriptor closed and forgotten. */
static void early_forget(struct rfs_pool *p, const rfs_key *key)
{
	struct early *gone = NULL;

	pthread_mutex_lock(&p->lock);
	for (struct early **pp = &p->early; *pp; pp = &(*pp)->next)
		if (!memcmp(&(*pp)->key, key, sizeof(*key))) {
			gone = *pp;
			*pp = gone->next;
			break;
		}
	pthread_mutex_unlock(&p->lock);
	if (gone) {
		close(gone->fd);
		free(gone);
	}
}

/* Note 12: path opened, if its bytes are size bytes of XXH3-64 checksum:
 * the descriptor, or -1. */
static int early_check(const char *path, uint64_t size, uint64_t checksum)
{
	unsigned char buf[1 << 16];
	XXH3_state_t *hs = XXH3_createState();
	struct stat st;
	uint64_t off = 0;
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);

	if (fd < 0 || !hs || fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) ||
	    (uint64_t)st.st_size != size)
		goto fail;
	XXH3_64bits_reset(hs);
	while (off < size) {
		ssize_t n = pread(fd, buf, sizeof(buf), (off_t)off);
		if (n <= 0)
			goto fail;
		XXH3_64bits_update(hs, buf, (size_t)n);
		off += (uint64_t)n;
	}
	if (off != size || XXH3_64bits_digest(hs) != checksum)
		goto fail;
	XXH3_freeState(hs);
	return fd;
fail:
	XXH3_freeState(hs);
	if (fd >= 0)
		close(fd);
	return -1;
}

int rfs_pool_early_open(rfs_pool *p, const rfs_key *key)
{
	int fd = -ENOENT;

	pthread_mutex_lock(&p->lock);
	for (struct early *e = p->early; e; e = e->next)
		if (!memcmp(&e->key, key, sizeof(*key))) {
			fd = fcntl(e->fd, F_DUPFD_CLOEXEC, 0);
			if (fd < 0)
				fd = -errno;
			break;
		}
	pthread_mutex_unlock(&p->lock);
	return fd;
}

int rfs_pool_early_has(rfs_pool *p, const rfs_key *key)
{
	int has = 0;

	pthread_mutex_lock(&p->lock);
	for (struct early *e = p->early; e && !has; e = e->next)
		has = !memcmp(&e->key, key, sizeof(*key));
	pthread_mutex_unlock(&p->lock);
	return has;
}

/* A lazy output's piece stored (or answered early, note 12): counted
 * if it is a block (lazy.h). */
static void count_piece(struct rfs_pool *p, const struct rfs_job *job)
{
	/* a lazy output's block of level 0, or of an overview: lazy.h */
	if (strstr(job->canonical, "#block="))
		rfs_stat_inc(p->stats, lazy_blocks);
	else if (strstr(job->canonical, "#ovr="))
		rfs_stat_inc(p->stats, lazy_ovr_blocks);
}

static void commit_done(void *arg, int rc)
{
	struct rfs_job *job = arg;
	struct rfs_pool *p = job->owner;

	/* counted when answered early, if it was (note 12) */
	if (rc == 0 && !job->early)
		count_piece(p, job);
	/* the store has it now (or the commit failed): no early copy */
	if (job->early)
		early_forget(p, &job->key);
	finish(p, job, rc, rc ? rfs_strerror(rc) : NULL);
}

/* ---- workers ---------------------------------------------------------- */

static int spawn_worker(struct rfs_pool *p, unsigned i)
{
	struct slot *s = &p->slots[i];
	int rc;

	rc = rfs_store_scratch_dir(p->store, i, s->scratch, sizeof(s->scratch));
	if (rc < 0)
		return rc;
	struct rfs_worker_spawn ws = {
		.exe = p->exe,
		.gdal_cache_mb = p->cfg.gdal_cache_mb,
		.log_sink = p->cfg.log_sink,
		.log_fd = p->cfg.log_fd,
		.log_level = p->cfg.log_level,
		.worker_mem = p->cfg.worker_mem,
		.max_pixels = p->cfg.max_pixels,
		.scratch = s->scratch,
		.root = p->cfg.root,
		.uid = p->cfg.worker_uid,
		.gid = p->cfg.worker_gid,
	};
	rc = rfs_worker_spawn(&ws, &s->pid, &s->fd);
	if (rc < 0) {
		s->pid = 0;
		s->fd = -1;
		return rc;
	}
	s->job = NULL;
	s->exiting = 0;
	rfs_log(LOG_DEBUG, "worker %u started: pid %ld, scratch %s", i,
		(long)s->pid, s->scratch);
	return 0;
}

/* Hand queued jobs to idle workers.  Called with p->lock held. */
static void dispatch(struct rfs_pool *p)
{
	for (unsigned i = 0; i < p->nslots && rfs_jobs_any_queued(p->jobs);
	     i++) {
		struct slot *s = &p->slots[i];
		if (s->fd < 0 || s->job || s->exiting)
			continue;
		/* the first queued job whose prefix job has ended (note 7) */
		struct rfs_job *job = rfs_jobs_next(p->jobs);
		if (!job)
			break;
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
			.expect_size = job->expect_size,
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
				wj.prefix_len = (uint32_t)job->prefix_len;
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
			rfs_jobs_requeue(p->jobs, job);
			continue;
		}
		/* The worker has its own copies now (note 10). */
		close(job->src_fd);
		job->src_fd = -1;
		int from_prefix = job->prefix_fd >= 0;
		if (from_prefix)
			close(job->prefix_fd);
		job->prefix_fd = -1;
		rfs_jobs_start(p->jobs, job);
		job->slot = (int)i;
		job->pid = s->pid;
		clock_gettime(CLOCK_MONOTONIC, &job->t_started);
		job->t_heard = job->t_started;
		clock_gettime(CLOCK_REALTIME, &job->wall_started);
		s->job = job;
		if (from_prefix)
			rfs_stat_inc(p->stats, prefix_hits);
		rfs_log_owned(job->uids, job->nuids, LOG_INFO,
			      "job %llu started on worker pid %ld: %s%s%s",
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
	struct rfs_job *job = s->job;
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
	struct rfs_job *job = s->job;

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
		/* note 12: a piece someone waits for, answered early */
		int efd = -1;
		struct rfs_waiter *ews = NULL;
		pthread_mutex_lock(&p->lock);
		int want = job->waiters != NULL &&
			   strchr(job->canonical, '#') != NULL &&
			   m->size <= RFS_POOL_EARLY_MAX;
		pthread_mutex_unlock(&p->lock);
		if (want)
			efd = early_check(job->out_path, m->size, m->checksum);
		struct early *e = efd >= 0 ? malloc(sizeof(*e)) : NULL;
		if (efd >= 0 && !e)
			close(efd);
		pthread_mutex_lock(&p->lock);
		s->job = NULL;
		rfs_jobs_commit(p->jobs, job);
		if (e) {
			e->key = job->key;
			e->fd = efd;
			e->next = p->early;
			p->early = e;
			job->early = 1;
			ews = rfs_jobs_take_waiters(p->jobs, job);
			count_piece(p, job);
		}
		pthread_mutex_unlock(&p->lock);
		/* the committer may end the job from here on */
		int rc = rfs_store_commit(p->store, &job->key, job->out_path,
					  &meta, commit_done, job);
		if (rc < 0) {
			unlink(job->out_path);
			if (job->early)
				early_forget(p, &job->key);
			finish(p, job, rc, NULL);
		}
		/* after the commit is queued: the piece is read through
		 * rfs_pool_early_open or, committed, from the store */
		rfs_jobs_notify(ews, 0, NULL);
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
		struct rfs_job *job = s->job;
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
			rfs_log_owned(job->uids, job->nuids, LOG_WARNING,
				      "job %llu: worker pid %ld sent nothing "
				      "for %u s: killing it",
				      (unsigned long long)job->id,
				      (long)s->pid, p->cfg.stall_timeout);
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
	struct rfs_jobs_config jc = {
		.retry_after = cfg->retry_after,
		.owner = cfg->owner,
	};
	if (rfs_jobs_new(&jc, stats, &p->jobs) < 0)
		p->jobs = NULL;
	p->hist = rfs_history_new();
	p->wakefd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	pthread_mutex_init(&p->lock, NULL);
	pthread_cond_init(&p->idle, NULL);
	if (!p->exe || !p->slots || !p->jobs || !p->hist)
		goto fail;
	if (p->wakefd < 0) {
		rc = -errno;
		goto fail;
	}
	for (unsigned i = 0; i < p->nslots; i++)
		p->slots[i].fd = -1;
	if (p->cfg.log_sink == RFS_LOG_DAEMON)
		rfs_log_capture_owners(log_owners, p);
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
	rfs_log_capture_owners(NULL, NULL);
	if (p->wakefd >= 0)
		close(p->wakefd);
	rfs_jobs_free(p->jobs);
	rfs_history_free(p->hist);
	free(p->slots);
	free(p->exe);
	free(p);
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
	/* Every worker is gone: the log reads their last lines while their
	 * jobs' owners are still known, and asks the pool no more. */
	if (p->cfg.log_sink == RFS_LOG_DAEMON) {
		rfs_log_capture_stop();
		rfs_log_capture_owners(NULL, NULL);
	}

	/* Fail what never ran or was cut short; wait for commits under way,
	 * whose callbacks still use the pool. */
	for (;;) {
		pthread_mutex_lock(&p->lock);
		struct rfs_job *victim = rfs_jobs_any_not_committing(p->jobs);
		if (!victim && rfs_jobs_committing(p->jobs))
			pthread_cond_wait(&p->idle, &p->lock);
		int done = !victim && !rfs_jobs_committing(p->jobs);
		pthread_mutex_unlock(&p->lock);
		if (victim)
			finish(p, victim, -RFS_E_SHUTDOWN,
			       "the mount is shutting down");
		else if (done)
			break;
	}
	/* every commit ended: no early copy is left (note 12) */
	while (p->early) {
		struct early *e = p->early;
		p->early = e->next;
		close(e->fd);
		free(e);
	}
	close(p->wakefd);
	pthread_cond_destroy(&p->idle);
	pthread_mutex_destroy(&p->lock);
	rfs_jobs_free(p->jobs);
	rfs_history_free(p->hist);
	free(p->slots);
	free(p->exe);
	free(p);
}


/* ---- the pool's face (pool.h) ----------------------------------------- */

/* Length of the first step of canonical if the chain's prefix is worth
 * keeping (note 7): a warp (the step table's RFS_STEP_WARP) followed by at
 * least one more step (not only fmt=).  0 otherwise. */
static size_t prefix_len(const char *canonical)
{
	const char *rest;

	if (strchr(canonical, '#') || /* a piece of a lazy output */
	    !rfs_step_first_has(canonical, RFS_STEP_WARP) ||
	    !(rest = strchr(canonical + 1, '@')) ||
	    !strncmp(rest, "@fmt=", 5))
		return 0;
	return (size_t)(rest - canonical);
}

static int tier_release(struct rfs_pool *p, uint64_t id, const rfs_key *key,
			int tiered);

/* Note 7: queue a job for the prefix pc of spec's chain, ahead of the
 * chain's own, unless it exists, is stored or failed lately (then the
 * chain runs from its source).  p->lock held.  Returns 0 or -ENOMEM. */
static int queue_prefix(struct rfs_pool *p, const struct rfs_job_spec *spec,
			const char *pc, const rfs_key *pk, int src_fd)
{
	char pv[PATH_MAX];
	int pfd;

	if (rfs_jobs_find(p->jobs, pk) ||
	    rfs_store_lookup(p->store, pk, &spec->src, pc, NULL) == 0 ||
	    rfs_jobs_recent_failure(p->jobs, pk) ||
	    /* no descriptor left: the chain runs from S */
	    (pfd = fcntl(src_fd, F_DUPFD_CLOEXEC, 0)) < 0)
		return 0;
	struct rfs_job_spec ps = *spec;
	snprintf(pv, sizeof(pv), "%s%s", spec->source_rel, pc);
	ps.key = *pk;
	ps.canonical = pc;
	ps.vpath = pv;
	ps.warm = 1;
	ps.expect_size = 0; /* the chain's, not the prefix's */
	ps.prefix = 1;
	struct rfs_job *job = rfs_jobs_add(p->jobs, &ps, NULL);
	if (!job) {
		close(pfd);
		return -ENOMEM;
	}
	job->owner = p;
	job->src_fd = pfd;
	rfs_log_owned(job->uids, job->nuids, LOG_INFO,
		      "job %llu keeps the prefix %s%s",
		      (unsigned long long)job->id, spec->source_rel, pc);
	return 0;
}

int rfs_pool_request(rfs_pool *p, const struct rfs_job_spec *spec,
		     rfs_pool_done_fn fn, void *arg)
{
	struct rfs_waiter *w = NULL;
	struct rfs_job *job;
	int src_fd = spec->src_fd; /* ours now, whatever happens (note 10) */
	struct rfs_tier_req treq = { .src_fd = -1 };
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
	rc = rfs_jobs_join(p->jobs, spec, w);
	if (rc != 0) {
		if (rc == 1)
			w = NULL; /* the job's now */
		rc = rc < 0 ? rc : 0;
		goto out;
	}
	/* Note 2: no job, so the entry, if any, is already committed. */
	if (rfs_store_lookup(p->store, &spec->key, &spec->src, spec->canonical,
			     NULL) == 0) {
		rc = 1;
		goto out;
	}
	/* A recent failure fails at once (jobs.h). */
	if ((rc = rfs_jobs_recent_failure(p->jobs, &spec->key)) < 0)
		goto out;
	/* note 11: a tier looks first; the prefix waits for its answer */
	struct rfs_job_spec js = *spec;
	/* the pieces of a lazy output (lazy.h) are this store's only */
	js.held = p->tier != NULL && !spec->prefix &&
		  !strchr(spec->canonical, '#') &&
		  (treq.src_fd = fcntl(src_fd, F_DUPFD_CLOEXEC, 0)) >= 0;
	size_t plen = p->cfg.keep_prefixes && !js.held ?
		      prefix_len(spec->canonical) : 0;
	rfs_key pk;
	if (plen) {
		char pc[RFS_CHAIN_TEXT_MAX];
		memcpy(pc, spec->canonical, plen);
		pc[plen] = '\0';
		rfs_key_make(&pk, &spec->src, pc);
		if ((rc = queue_prefix(p, spec, pc, &pk, src_fd)) < 0)
			goto out;
	}
	job = rfs_jobs_add(p->jobs, &js, w);
	if (!job) {
		rc = -ENOMEM;
		goto out;
	}
	w = NULL;
	job->owner = p;
	job->src_fd = src_fd;
	src_fd = -1;
	if (plen) {
		job->prefix_len = plen;
		job->prefix_key = pk;
	}
	if (js.held) {
		treq.job_id = job->id;
		treq.key = job->key;
		treq.src = job->src;
		treq.source_rel = spec->source_rel;
		treq.canonical = spec->canonical;
	} else {
		wake(p);
	}
out:
	pthread_mutex_unlock(&p->lock);
	free(w);
	if (src_fd >= 0)
		close(src_fd);
	if (treq.job_id) {
		/* outside p->lock: the tier may answer at once */
		int fd = treq.src_fd;
		if (p->tier->lookup(p->tier_arg, &treq) < 0) {
			close(fd);
			tier_release(p, treq.job_id, &treq.key, 0);
		}
	} else if (treq.src_fd >= 0) {
		close(treq.src_fd);
	}
	return rc;
}

/* Note 11: job job_id of key, if it is still held, into the queue (with
 * its kept prefix's job), remembering whether the tier wants to hear how
 * it ends.  Returns 1, or 0 if it is gone. */
static int tier_release(struct rfs_pool *p, uint64_t id, const rfs_key *key,
			int tiered)
{
	int ok = 0;

	pthread_mutex_lock(&p->lock);
	struct rfs_job *job = rfs_jobs_find(p->jobs, key);
	if (!job || job->id != id || !job->held || p->stopping)
		goto out;
	ok = 1;
	job->tiered = tiered;
	rfs_jobs_release(p->jobs, job);
	size_t plen = p->cfg.keep_prefixes ? prefix_len(job->canonical) : 0;
	if (plen && job->src_fd >= 0) {
		char pc[RFS_CHAIN_TEXT_MAX];
		rfs_key pk;
		struct rfs_job_spec spec = {
			.key = job->key,
			.src = job->src,
			.source_rel = job->source_rel,
			.canonical = job->canonical,
			.vpath = job->vpath,
			.uid = job->nuids ? job->uids[0] : 0,
		};
		memcpy(pc, job->canonical, plen);
		pc[plen] = '\0';
		rfs_key_make(&pk, &job->src, pc);
		/* out of memory: the chain runs from its source */
		if (queue_prefix(p, &spec, pc, &pk, job->src_fd) == 0) {
			job->prefix_len = plen;
			job->prefix_key = pk;
		}
	}
	wake(p);
out:
	pthread_mutex_unlock(&p->lock);
	return ok;
}

void rfs_pool_set_tier(rfs_pool *p, const struct rfs_pool_tier *tier,
		       void *arg)
{
	pthread_mutex_lock(&p->lock);
	p->tier = tier;
	p->tier_arg = arg;
	pthread_mutex_unlock(&p->lock);
}

int rfs_pool_tier_wanted(rfs_pool *p, uint64_t id, const rfs_key *key)
{
	pthread_mutex_lock(&p->lock);
	struct rfs_job *job = rfs_jobs_find(p->jobs, key);
	int wanted = job && job->id == id && job->held && !p->stopping;
	pthread_mutex_unlock(&p->lock);
	return wanted;
}

int rfs_pool_tier_answer(rfs_pool *p, uint64_t id, const rfs_key *key,
			 int found)
{
	if (!found)
		return tier_release(p, id, key, 1);
	pthread_mutex_lock(&p->lock);
	struct rfs_job *job = rfs_jobs_find(p->jobs, key);
	if (!job || job->id != id || !job->held) {
		pthread_mutex_unlock(&p->lock);
		return 0;
	}
	/* note 2: the tier committed the entry before answering */
	struct rfs_waiter *ws = end_locked(p, job, 0, NULL);
	pthread_mutex_unlock(&p->lock);
	end_tail(job, 0, NULL, ws);
	return 1;
}

int rfs_pool_job_state(rfs_pool *p, const rfs_key *key, const char **state,
		       double *progress)
{
	static const char *const names[] = {
		[RFS_JOB_QUEUED] = "queued",
		[RFS_JOB_RUNNING] = "running",
		[RFS_JOB_COMMITTING] = "running",
	};
	int rc = 0;

	pthread_mutex_lock(&p->lock);
	struct rfs_job *job = rfs_jobs_find(p->jobs, key);
	if (job) {
		if (state)
			*state = names[job->state];
		if (progress)
			*progress = job->progress;
		goto out;
	}
	/* Ended: the newest record of key says how, if it is still kept;
	 * else a remembered failure. */
	if (rfs_history_state(p->hist, key, state, progress) == 0)
		goto out;
	rc = rfs_jobs_last_error(p->jobs, key, NULL, NULL, 0, NULL);
	if (rc == 0) {
		if (state)
			*state = "failed";
		if (progress)
			*progress = 0;
	}
out:
	pthread_mutex_unlock(&p->lock);
	return rc;
}

int rfs_pool_cancel_waiter(rfs_pool *p, const rfs_key *key, void *waiter)
{
	static const char why[] = "cancelled: every reader was interrupted";
	struct rfs_job *ended;
	struct rfs_waiter *ws;

	pthread_mutex_lock(&p->lock);
	int found = rfs_jobs_detach(p->jobs, key, waiter, why, &ended, &ws);
	if (ended) {
		rfs_history_record(p->hist, ended, -RFS_E_CANCELLED, why);
		if (rfs_jobs_any_queued(p->jobs))
			wake(p);
	} else if (found) {
		wake(p); /* a running job may be marked (note 5) */
	}
	pthread_mutex_unlock(&p->lock);
	if (ended)
		end_tail(ended, -RFS_E_CANCELLED, why, ws);
	return found;
}

int rfs_pool_cancel(rfs_pool *p, const rfs_key *key, uid_t uid)
{
	static const char why[] = "cancelled on request (rasterfs cancel)";
	struct rfs_job *ended;
	struct rfs_waiter *ws;

	pthread_mutex_lock(&p->lock);
	int rc = rfs_jobs_cancel(p->jobs, key, uid, why, &ended, &ws);
	if (ended) {
		rfs_history_record(p->hist, ended, -RFS_E_CANCELLED, why);
		if (rfs_jobs_any_queued(p->jobs))
			wake(p);
	} else if (rc == 0) {
		wake(p); /* the running job is marked (note 5) */
	}
	pthread_mutex_unlock(&p->lock);
	if (ended)
		end_tail(ended, -RFS_E_CANCELLED, why, ws);
	return rc;
}

int rfs_pool_cancel_pieces(rfs_pool *p, const struct rfs_src_id *src,
			   const char *canonical, uid_t uid)
{
	static const char why[] = "cancelled on request (rasterfs cancel)";
	unsigned refused = 0;
	int n = 0;

	pthread_mutex_lock(&p->lock);
	for (;;) {
		struct rfs_job *job, *ended;
		struct rfs_waiter *ws;

		refused = 0;
		job = rfs_jobs_next_piece(p->jobs, src, canonical, uid,
					  &refused);
		if (!job)
			break;
		rfs_jobs_cancel_job(p->jobs, job, why, &ended, &ws);
		n++;
		if (!ended) {
			wake(p); /* the running job is marked (note 5) */
			continue;
		}
		rfs_history_record(p->hist, ended, -RFS_E_CANCELLED, why);
		/* the waiters are called without the lock (end_tail) */
		pthread_mutex_unlock(&p->lock);
		end_tail(ended, -RFS_E_CANCELLED, why, ws);
		pthread_mutex_lock(&p->lock);
	}
	if (n && rfs_jobs_any_queued(p->jobs))
		wake(p);
	pthread_mutex_unlock(&p->lock);
	return n == 0 && refused ? -EPERM : n;
}

int rfs_pool_last_error(rfs_pool *p, const rfs_key *key, int *code,
			char *msg, size_t len, int *fresh)
{
	pthread_mutex_lock(&p->lock);
	int rc = rfs_jobs_last_error(p->jobs, key, code, msg, len, fresh);
	pthread_mutex_unlock(&p->lock);
	return rc;
}

int rfs_pool_jobs_json(rfs_pool *p, uid_t uid, char **out, size_t *len)
{
	pthread_mutex_lock(&p->lock);
	int rc = rfs_history_json(p->hist, p->jobs, uid, out, len);
	pthread_mutex_unlock(&p->lock);
	return rc;
}
