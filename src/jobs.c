/* jobs.c - the job table: single flight, waiters, failures, cancel. */
#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "pool_int.h"
#include "rasterfs/chain.h"
#include "rasterfs/err.h"
#include "rasterfs/log.h"
#include "rasterfs/pool.h"
#include "rasterfs/step.h"

double elapsed(const struct timespec *t)
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

struct job *table_find(struct rfs_pool *p, const rfs_key *k)
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

int may_see(const struct rfs_pool *p, const uid_t *uids, unsigned n,
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

void finish(struct rfs_pool *p, struct job *job, int rc,
		   const char *msg)
{
	if (rc && (!msg || !*msg))
		msg = rfs_strerror(rc);
	pthread_mutex_lock(&p->lock);
	struct waiter *ws = end_locked(p, job, rc, msg);
	pthread_mutex_unlock(&p->lock);
	end_tail(p, job, rc, msg, ws);
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

