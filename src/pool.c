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
 *     or even call rfs_pool_request() again.
 */
#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "rasterfs/chain.h"
#include "rasterfs/err.h"
#include "rasterfs/log.h"
#include "rasterfs/pool.h"
#include "rasterfs/wire.h"
#include "rasterfs/worker.h"

extern char **environ;

enum job_state { JOB_QUEUED, JOB_RUNNING, JOB_COMMITTING };

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
	char *source;
	char *source_rel;
	char *canonical;
	enum job_state state;
	double progress;
	int slot;                 /* worker slot while RUNNING, else -1 */
	struct timespec t_queued, t_started;
	char out_path[PATH_MAX];
	uint64_t checksum;
	struct waiter *waiters;
	struct job *hnext;        /* job table chain */
	struct job *qnext;        /* queue link */
	struct rfs_pool *pool;
};

struct slot {
	pid_t pid;                /* 0: no worker */
	int fd;                   /* our end of the socketpair, -1 if none */
	struct job *job;          /* the job it runs, or NULL */
	char scratch[PATH_MAX];
};

#define NBUCKETS 256

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
	free(job->source);
	free(job->source_rel);
	free(job->canonical);
	free(job);
}

/* End a job: out of the table, then every waiter is told.  Any thread. */
static void finish(struct rfs_pool *p, struct job *job, int rc,
		   const char *msg)
{
	pthread_mutex_lock(&p->lock);
	table_remove(p, job);
	if (job->state == JOB_COMMITTING) {
		p->ncommitting--;
		pthread_cond_broadcast(&p->idle);
	}
	if (job->state != JOB_QUEUED)
		rfs_stat_dec(p->stats, jobs_running);
	else
		rfs_stat_dec(p->stats, jobs_queued);
	struct waiter *ws = job->waiters;
	job->waiters = NULL;
	pthread_mutex_unlock(&p->lock);

	if (rc == 0) {
		rfs_stat_inc(p->stats, jobs_done);
		rfs_log(LOG_INFO, "job %llu done in %.2f s: %s%s",
			(unsigned long long)job->id, elapsed(&job->t_queued),
			job->source_rel, job->canonical);
	} else {
		rfs_stat_inc(p->stats, jobs_failed);
		if (!msg || !*msg)
			msg = rfs_strerror(rc);
		rfs_log(rc == -RFS_E_SHUTDOWN ? LOG_INFO : LOG_ERR,
			"job %llu failed after %.2f s: %s%s: %s %s",
			(unsigned long long)job->id, elapsed(&job->t_queued),
			job->source_rel, job->canonical, rfs_err_name(rc), msg);
	}
	while (ws) {
		struct waiter *w = ws;
		ws = w->next;
		w->fn(w->arg, rc, msg);
		free(w);
	}
	job_free(job);
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
	char fdarg[16], ppid[24], cache[16], level[8];
	posix_spawn_file_actions_t fa;

	rc = rfs_store_scratch_dir(p->store, i, s->scratch, sizeof(s->scratch));
	if (rc < 0)
		return rc;
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
		return -errno;
	/* The worker's end is the only descriptor it inherits. */
	fcntl(sv[1], F_SETFD, 0);
	snprintf(fdarg, sizeof(fdarg), "%d", sv[1]);
	snprintf(ppid, sizeof(ppid), "%ld", (long)getpid());
	snprintf(cache, sizeof(cache), "%d", p->cfg.gdal_cache_mb);
	snprintf(level, sizeof(level), "%d", p->cfg.log_level);
	char *argv[] = {
		"rasterfs-worker", RFS_WORKER_ARG, fdarg, ppid, cache,
		p->cfg.log_sink == RFS_LOG_SYSLOG ? "syslog" : "stderr", level,
		NULL,
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
	rfs_log(LOG_DEBUG, "worker %u started: pid %ld, scratch %s", i,
		(long)s->pid, s->scratch);
	return 0;
}

/* Hand queued jobs to idle workers.  Called with p->lock held. */
static void dispatch(struct rfs_pool *p)
{
	for (unsigned i = 0; i < p->nslots && p->qhead; i++) {
		struct slot *s = &p->slots[i];
		if (s->fd < 0 || s->job)
			continue;
		struct job *job = p->qhead;
		p->qhead = job->qnext;
		if (!p->qhead)
			p->qtail = NULL;
		job->qnext = NULL;
		int rc = snprintf(job->out_path, sizeof(job->out_path),
				  "%s/%s.tif", s->scratch, job->hex);
		assert(rc > 0 && (size_t)rc < sizeof(job->out_path));
		rc = rfs_wire_send_job(s->fd, job->id, job->source,
					   job->canonical, job->out_path);
		if (rc < 0) {
			/* The worker is dying; its EOF will be seen by the
			 * manager.  Put the job back at the head. */
			job->qnext = p->qhead;
			p->qhead = job;
			if (!p->qtail)
				p->qtail = job;
			continue;
		}
		job->state = JOB_RUNNING;
		job->slot = (int)i;
		clock_gettime(CLOCK_MONOTONIC, &job->t_started);
		s->job = job;
		rfs_stat_dec(p->stats, jobs_queued);
		rfs_stat_inc(p->stats, jobs_running);
		rfs_log(LOG_INFO, "job %llu started on worker pid %ld: %s%s",
			(unsigned long long)job->id, (long)s->pid,
			job->source_rel, job->canonical);
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
	if (job) {
		snprintf(msg, sizeof(msg),
			 "worker pid %ld %s while computing %s%s",
			 (long)s->pid, how, job->source_rel, job->canonical);
		finish(p, job, -RFS_E_CRASH, msg);
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
		if (m->progress > job->progress)
			job->progress = m->progress;
		pthread_mutex_unlock(&p->lock);
		break;
	case RFS_MSG_DONE: {
		struct rfs_store_meta meta = {
			.src = job->src,
			.canonical = job->canonical,
			.source = job->source_rel,
			.checksum = m->checksum,
		};
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
		pthread_mutex_lock(&p->lock);
		int stopping = p->stopping;
		if (!stopping)
			dispatch(p);
		pthread_mutex_unlock(&p->lock);
		if (stopping)
			break;

		pfd[0] = (struct pollfd){ .fd = p->wakefd, .events = POLLIN };
		for (unsigned i = 0; i < p->nslots; i++)
			pfd[i + 1] = (struct pollfd){ .fd = p->slots[i].fd,
						      .events = POLLIN };
		if (poll(pfd, p->nslots + 1, -1) < 0) {
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
	p->wakefd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	pthread_mutex_init(&p->lock, NULL);
	pthread_cond_init(&p->idle, NULL);
	if (!p->exe || !p->slots)
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
	free(p->exe);
	free(p);
	return rc;
}

int rfs_pool_request(rfs_pool *p, const struct rfs_job_spec *spec,
		     rfs_pool_done_fn fn, void *arg)
{
	struct waiter *w = malloc(sizeof(*w));
	struct job *job;
	int rc = 0;

	if (!w)
		return -ENOMEM;
	w->fn = fn;
	w->arg = arg;
	pthread_mutex_lock(&p->lock);
	if (p->stopping) {
		rc = -RFS_E_SHUTDOWN;
		goto out;
	}
	job = table_find(p, &spec->key);
	if (job) {
		w->next = job->waiters;
		job->waiters = w;
		w = NULL;
		rfs_stat_inc(p->stats, joined);
		goto out;
	}
	/* Note 2: no job, so the entry, if any, is already committed. */
	if (rfs_store_lookup(p->store, &spec->key, &spec->src, spec->canonical,
			     NULL) == 0) {
		rc = 1;
		goto out;
	}
	job = calloc(1, sizeof(*job));
	if (!job || !(job->source = strdup(spec->source)) ||
	    !(job->source_rel = strdup(spec->source_rel)) ||
	    !(job->canonical = strdup(spec->canonical))) {
		if (job)
			job_free(job);
		rc = -ENOMEM;
		goto out;
	}
	job->pool = p;
	job->id = ++p->next_id;
	job->key = spec->key;
	rfs_key_hex(&job->key, job->hex);
	job->src = spec->src;
	job->state = JOB_QUEUED;
	job->slot = -1;
	clock_gettime(CLOCK_MONOTONIC, &job->t_queued);
	w->next = NULL;
	job->waiters = w;
	w = NULL;
	job->hnext = p->table[bucket(&job->key)];
	p->table[bucket(&job->key)] = job;
	if (p->qtail)
		p->qtail->qnext = job;
	else
		p->qhead = job;
	p->qtail = job;
	rfs_stat_inc(p->stats, jobs_started);
	rfs_stat_inc(p->stats, jobs_queued);
	wake(p);
out:
	pthread_mutex_unlock(&p->lock);
	free(w);
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
	}
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
	free(p->slots);
	free(p->exe);
	free(p);
}
