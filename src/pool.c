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

#include "pool_int.h"
#include "rasterfs/chain.h"
#include "rasterfs/err.h"
#include "rasterfs/log.h"
#include "rasterfs/pool.h"
#include "rasterfs/step.h"
#include "rasterfs/wire.h"
#include "rasterfs/worker.h"

extern char **environ;

void wake(struct rfs_pool *p)
{
	uint64_t one = 1;
	ssize_t n = write(p->wakefd, &one, sizeof(one));
	(void)n;
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

