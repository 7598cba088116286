/* jobs.c - the job table: single flight, waiters, failures, cancel.
 *
 * Design notes:
 *  1. One job per key, found in a hash table of 256 buckets by the key's
 *     first byte (keys are hashes).  The queue is a FIFO threaded through
 *     the jobs; a job with a kept prefix (pool.c note 7) is passed over by
 *     rfs_jobs_next while its prefix's job exists.
 *  2. Waiters are handed back, never called here (jobs.h): the owner calls
 *     them without its lock, so they may reply to FUSE or ask for another
 *     job.  rfs_jobs_detach runs from FUSE interrupt callbacks, which hold
 *     the request's lock: the order is request lock -> owner's lock, and
 *     nothing here takes a lock but the counters' own (stats.h), a leaf
 *     held for a few stores.
 *  5. The table is the only writer of the job counters: a job is counted
 *     once when added (jobs_started, or prefix_jobs), moves QUEUED ->
 *     RUNNING when started, and ends in exactly one of done, failed or
 *     cancelled, so the counters add up (stats.h).
 *  3. Failures (rfs_jobs_remembered) go into a table of RFS_JOBS_FAILURES
 *     keys, the oldest replaced first, that makes a failed key fail fast
 *     for retry_after seconds.  A success forgets the key's failure.
 *  6. Held jobs (jobs.h): in the table but not in the queue, uncounted,
 *     while their owner's tier looks for the key elsewhere (pool.c note
 *     11).  rfs_jobs_release queues and counts them; an end while held
 *     moves no counter, so the counters still add up and jobs_started
 *     counts only what was queued to be computed.
 *  7. Priorities: rfs_jobs_next takes the first queued job that has a
 *     waiter (an open or a read waits for it), else the first queued job
 *     (warm-ups, kept prefixes, lazy outputs' read-ahead: lazy.h), so a
 *     reader never waits behind work nobody waits for.  The queue scan is
 *     linear: queues are short (at most a few thousand jobs).
 *  4. Jobs belong to the users who asked for them (job->uids): a user sees
 *     their own, and may cancel a job only if nobody else asked for it;
 *     root and the mount's owner see and cancel all.
 */
#include <assert.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "rasterfs/chain.h"
#include "rasterfs/err.h"
#include "rasterfs/jobs.h"

#define NBUCKETS 256

struct failure {
	rfs_key key;
	int used;
	int code;
	double when;              /* cfg.clock() */
	char msg[RFS_MSG_MAX];
};

struct rfs_jobs {
	struct rfs_jobs_config cfg;
	struct rfs_stats *stats;
	struct rfs_job *table[NBUCKETS];
	struct rfs_job *qhead, *qtail;
	unsigned ncommitting;
	uint64_t next_id;
	struct failure *failures; /* RFS_JOBS_FAILURES */
};

static double monotonic(void)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return (double)now.tv_sec + (double)now.tv_nsec / 1e9;
}

int rfs_jobs_new(const struct rfs_jobs_config *cfg, struct rfs_stats *stats,
		 rfs_jobs **out)
{
	struct rfs_jobs *t = calloc(1, sizeof(*t));

	if (!t || !(t->failures = calloc(RFS_JOBS_FAILURES,
					 sizeof(*t->failures)))) {
		free(t);
		return -ENOMEM;
	}
	t->cfg = *cfg;
	if (!t->cfg.clock)
		t->cfg.clock = monotonic;
	t->stats = stats;
	*out = t;
	return 0;
}

void rfs_job_free(struct rfs_job *job)
{
	while (job->waiters) {
		struct rfs_waiter *w = job->waiters;
		job->waiters = w->next;
		free(w);
	}
	if (job->src_fd >= 0)
		close(job->src_fd);
	if (job->prefix_fd >= 0)
		close(job->prefix_fd);
	free(job->vpath);
	free(job->source_rel);
	free(job->canonical);
	free(job->uids);
	free(job);
}

void rfs_jobs_free(rfs_jobs *t)
{
	if (!t)
		return;
	for (unsigned b = 0; b < NBUCKETS; b++)
		while (t->table[b]) {
			struct rfs_job *j = t->table[b];
			t->table[b] = j->hnext;
			rfs_job_free(j);
		}
	free(t->failures);
	free(t);
}

static unsigned bucket(const rfs_key *k)
{
	return k->b[0];
}

struct rfs_job *rfs_jobs_find(rfs_jobs *t, const rfs_key *k)
{
	for (struct rfs_job *j = t->table[bucket(k)]; j; j = j->hnext)
		if (memcmp(j->key.b, k->b, sizeof(k->b)) == 0)
			return j;
	return NULL;
}

static void table_remove(rfs_jobs *t, struct rfs_job *job)
{
	struct rfs_job **pp = &t->table[bucket(&job->key)];

	while (*pp && *pp != job)
		pp = &(*pp)->hnext;
	assert(*pp == job);
	*pp = job->hnext;
}

/* Take job off the queue if it is on it. */
static void queue_remove(rfs_jobs *t, struct rfs_job *job)
{
	struct rfs_job **pp = &t->qhead, *prev = NULL;

	while (*pp && *pp != job) {
		prev = *pp;
		pp = &(*pp)->qnext;
	}
	if (*pp) {
		*pp = job->qnext;
		if (t->qtail == job)
			t->qtail = prev;
	}
	job->qnext = NULL;
}

/* ---- failures (note 3) ------------------------------------------------ */

static struct failure *failure_find(rfs_jobs *t, const rfs_key *k)
{
	for (unsigned i = 0; i < RFS_JOBS_FAILURES; i++)
		if (t->failures[i].used &&
		    memcmp(t->failures[i].key.b, k->b, sizeof(k->b)) == 0)
			return &t->failures[i];
	return NULL;
}

/* Remember (rc < 0) or forget (rc == 0) key's failure. */
static void failure_note(rfs_jobs *t, const rfs_key *k, int rc,
			 const char *msg)
{
	struct failure *f = failure_find(t, k);

	if (rc == 0) {
		if (f)
			f->used = 0;
		return;
	}
	if (!f) {
		f = &t->failures[0];
		for (unsigned i = 0; i < RFS_JOBS_FAILURES; i++) {
			struct failure *c = &t->failures[i];
			if (!c->used) {
				f = c;
				break;
			}
			if (c->when < f->when)
				f = c;
		}
	}
	f->used = 1;
	f->key = *k;
	f->code = rc;
	f->when = t->cfg.clock();
	snprintf(f->msg, sizeof(f->msg), "%s", msg ? msg : "");
}

static int fresh(rfs_jobs *t, const struct failure *f)
{
	return t->cfg.retry_after &&
	       t->cfg.clock() - f->when < t->cfg.retry_after;
}

int rfs_jobs_remembered(int rc)
{
	return rc != -RFS_E_CANCELLED && rc != -RFS_E_SHUTDOWN &&
	       rc != -RFS_E_CRASH && rc != -RFS_E_STALLED &&
	       rc != -RFS_E_SOURCE_CHANGED &&
	       rc != -EMFILE && rc != -ENFILE;
}

int rfs_jobs_recent_failure(rfs_jobs *t, const rfs_key *key)
{
	struct failure *f = failure_find(t, key);

	return f && fresh(t, f) ? f->code : 0;
}

int rfs_jobs_last_error(rfs_jobs *t, const rfs_key *key, int *code,
			char *msg, size_t len, int *is_fresh)
{
	struct failure *f = failure_find(t, key);

	if (!f)
		return -ENOENT;
	if (code)
		*code = f->code;
	if (msg)
		snprintf(msg, len, "%s", f->msg);
	if (is_fresh)
		*is_fresh = fresh(t, f);
	return 0;
}

/* ---- requesters (note 4) ---------------------------------------------- */

static int has_uid(const uid_t *uids, unsigned n, uid_t uid)
{
	for (unsigned i = 0; i < n; i++)
		if (uids[i] == uid)
			return 1;
	return 0;
}

static int privileged(const rfs_jobs *t, uid_t uid)
{
	return uid == 0 || uid == t->cfg.owner;
}

int rfs_jobs_may_see(const rfs_jobs *t, const uid_t *uids, unsigned n,
		     uid_t uid)
{
	return privileged(t, uid) || has_uid(uids, n, uid);
}

static int may_cancel(const rfs_jobs *t, const struct rfs_job *job,
		      uid_t uid)
{
	return privileged(t, uid) ||
	       (job->nuids == 1 && job->uids[0] == uid);
}

/* Note that uid asked for job.  Returns 0 or -ENOMEM. */
static int job_add_uid(struct rfs_job *job, uid_t uid)
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

/* ---- life of a job ---------------------------------------------------- */

int rfs_jobs_join(rfs_jobs *t, const struct rfs_job_spec *spec,
		  struct rfs_waiter *w)
{
	struct rfs_job *job = rfs_jobs_find(t, &spec->key);

	if (!job)
		return 0;
	if (job_add_uid(job, spec->uid) < 0)
		return -ENOMEM;
	if (w) {
		w->next = job->waiters;
		job->waiters = w;
		rfs_stat_inc(t->stats, joined);
	}
	if (spec->warm)
		job->warm = 1;
	if (!job->expect_size)
		job->expect_size = spec->expect_size;
	/* A cancel not yet sent is withdrawn: someone wants it. */
	if (job->cancel && !job->cancel_sent)
		job->cancel = 0;
	return 1;
}

struct rfs_job *rfs_jobs_add(rfs_jobs *t, const struct rfs_job_spec *spec,
			     struct rfs_waiter *w)
{
	struct rfs_job *job = calloc(1, sizeof(*job));

	if (job)
		job->prefix_fd = job->src_fd = -1;
	if (!job || !(job->source_rel = strdup(spec->source_rel)) ||
	    !(job->vpath = strdup(spec->vpath ? spec->vpath :
				  spec->source_rel)) ||
	    !(job->canonical = strdup(spec->canonical)) ||
	    job_add_uid(job, spec->uid) < 0) {
		if (job)
			rfs_job_free(job);
		return NULL;
	}
	job->id = ++t->next_id;
	job->key = spec->key;
	rfs_key_hex(&job->key, job->hex);
	job->src = spec->src;
	job->state = RFS_JOB_QUEUED;
	job->slot = -1;
	clock_gettime(CLOCK_MONOTONIC, &job->t_queued);
	clock_gettime(CLOCK_REALTIME, &job->wall_queued);
	job->warm = spec->warm;
	job->expect_size = spec->expect_size;
	job->is_prefix = spec->prefix;
	job->waiters = w;
	job->hnext = t->table[bucket(&job->key)];
	t->table[bucket(&job->key)] = job;
	if (spec->held) {
		job->held = 1; /* note 6 */
		return job;
	}
	if (t->qtail)
		t->qtail->qnext = job;
	else
		t->qhead = job;
	t->qtail = job;
	rfs_stats_job_added(t->stats, job->is_prefix);
	return job;
}

void rfs_jobs_release(rfs_jobs *t, struct rfs_job *job)
{
	assert(job->held && job->state == RFS_JOB_QUEUED);
	job->held = 0;
	if (t->qtail)
		t->qtail->qnext = job;
	else
		t->qhead = job;
	t->qtail = job;
	rfs_stats_job_added(t->stats, job->is_prefix);
}

struct rfs_job *rfs_jobs_next(rfs_jobs *t)
{
	struct rfs_job *job = t->qhead, *prev = NULL;
	struct rfs_job *first = NULL, *first_prev = NULL;

	/* the first queued job whose prefix job has ended (note 1); a job
	 * someone waits for goes before warm work (note 7) */
	for (; job; prev = job, job = job->qnext) {
		if (job->prefix_len && rfs_jobs_find(t, &job->prefix_key))
			continue;
		if (!first) {
			first = job;
			first_prev = prev;
		}
		if (job->waiters)
			break;
	}
	if (!job) {
		job = first;
		prev = first_prev;
	}
	if (!job)
		return NULL;
	if (prev)
		prev->qnext = job->qnext;
	else
		t->qhead = job->qnext;
	if (t->qtail == job)
		t->qtail = prev;
	job->qnext = NULL;
	return job;
}

void rfs_jobs_requeue(rfs_jobs *t, struct rfs_job *job)
{
	job->qnext = t->qhead;
	t->qhead = job;
	if (!t->qtail)
		t->qtail = job;
}

int rfs_jobs_any_queued(const rfs_jobs *t)
{
	return t->qhead != NULL;
}

void rfs_jobs_start(rfs_jobs *t, struct rfs_job *job)
{
	assert(job->state == RFS_JOB_QUEUED);
	job->state = RFS_JOB_RUNNING;
	rfs_stats_job_moved(t->stats, RFS_JOB_COUNT_QUEUED,
			    RFS_JOB_COUNT_RUNNING);
}

void rfs_jobs_commit(rfs_jobs *t, struct rfs_job *job)
{
	assert(job->state == RFS_JOB_RUNNING);
	job->slot = -1;
	job->progress = 1.0;
	job->state = RFS_JOB_COMMITTING;
	t->ncommitting++;
}

unsigned rfs_jobs_committing(const rfs_jobs *t)
{
	return t->ncommitting;
}

struct rfs_job *rfs_jobs_any_not_committing(rfs_jobs *t)
{
	for (unsigned b = 0; b < NBUCKETS; b++)
		for (struct rfs_job *j = t->table[b]; j; j = j->hnext)
			if (j->state != RFS_JOB_COMMITTING)
				return j;
	return NULL;
}

struct rfs_waiter *rfs_jobs_end(rfs_jobs *t, struct rfs_job *job, int rc,
				const char *msg)
{
	table_remove(t, job);
	if (job->state == RFS_JOB_QUEUED)
		queue_remove(t, job);
	if (rc == 0 || rfs_jobs_remembered(rc))
		failure_note(t, &job->key, rc, msg);
	if (job->state == RFS_JOB_COMMITTING)
		t->ncommitting--;
	/* note 5; a held job was never counted (note 6) */
	if (!job->held)
		rfs_stats_job_moved(t->stats, job->state == RFS_JOB_QUEUED ?
				    RFS_JOB_COUNT_QUEUED :
				    RFS_JOB_COUNT_RUNNING,
				    rfs_stats_job_end_count(rc));
	struct rfs_waiter *ws = job->waiters;
	job->waiters = NULL;
	return ws;
}

void rfs_jobs_notify(struct rfs_waiter *ws, int rc, const char *msg)
{
	while (ws) {
		struct rfs_waiter *w = ws;
		ws = w->next;
		if (w->fn)
			w->fn(w->arg, rc, msg);
		free(w);
	}
}

struct rfs_waiter *rfs_jobs_take_waiters(rfs_jobs *t, struct rfs_job *job)
{
	struct rfs_waiter *ws = job->waiters;

	(void)t;
	assert(job->state == RFS_JOB_COMMITTING);
	job->waiters = NULL;
	return ws;
}

/* Cancel job with why: a queued job ends here (*ended, *ws), a running one
 * is marked for the owner to stop; a committing one is past cancelling. */
static void cancel(rfs_jobs *t, struct rfs_job *job, const char *why,
		   struct rfs_job **ended, struct rfs_waiter **ws)
{
	if (job->state == RFS_JOB_QUEUED) {
		*ws = rfs_jobs_end(t, job, -RFS_E_CANCELLED, why);
		*ended = job;
	} else if (job->state == RFS_JOB_RUNNING) {
		job->cancel = 1;
	}
}

int rfs_jobs_detach(rfs_jobs *t, const rfs_key *key, void *waiter,
		    const char *why, struct rfs_job **ended,
		    struct rfs_waiter **ws)
{
	struct rfs_job *job = rfs_jobs_find(t, key);
	struct rfs_waiter *found = NULL;

	*ended = NULL;
	*ws = NULL;
	if (!job)
		return 0;
	for (struct rfs_waiter **pp = &job->waiters; *pp; pp = &(*pp)->next) {
		if ((*pp)->arg == waiter && (*pp)->fn) {
			found = *pp;
			*pp = found->next;
			break;
		}
	}
	if (!found)
		return 0;
	free(found);
	if (!job->waiters && !job->warm)
		cancel(t, job, why, ended, ws);
	return 1;
}

int rfs_jobs_cancel(rfs_jobs *t, const rfs_key *key, uid_t uid,
		    const char *why, struct rfs_job **ended,
		    struct rfs_waiter **ws)
{
	struct rfs_job *job = rfs_jobs_find(t, key);

	*ended = NULL;
	*ws = NULL;
	if (!job || job->state == RFS_JOB_COMMITTING)
		return -ENOENT;
	if (!may_cancel(t, job, uid))
		return -EPERM;
	cancel(t, job, why, ended, ws);
	return 0;
}

/* Is job a piece of the output (src, canonical)? */
static int is_piece(const struct rfs_job *job, const struct rfs_src_id *src,
		    const char *canonical, size_t clen)
{
	return job->src.dev == src->dev && job->src.ino == src->ino &&
	       job->src.size == src->size &&
	       job->src.mtime_ns == src->mtime_ns &&
	       strncmp(job->canonical, canonical, clen) == 0 &&
	       job->canonical[clen] == '#';
}

struct rfs_job *rfs_jobs_next_piece(rfs_jobs *t, const struct rfs_src_id *src,
				    const char *canonical, uid_t uid,
				    unsigned *refused)
{
	size_t clen = strlen(canonical);

	for (unsigned b = 0; b < NBUCKETS; b++)
		for (struct rfs_job *j = t->table[b]; j; j = j->hnext) {
			if (j->state == RFS_JOB_COMMITTING ||
			    (j->state == RFS_JOB_RUNNING && j->cancel) ||
			    !is_piece(j, src, canonical, clen))
				continue;
			if (may_cancel(t, j, uid))
				return j;
			(*refused)++;
		}
	return NULL;
}

void rfs_jobs_cancel_job(rfs_jobs *t, struct rfs_job *job, const char *why,
			 struct rfs_job **ended, struct rfs_waiter **ws)
{
	*ended = NULL;
	*ws = NULL;
	cancel(t, job, why, ended, ws);
}

void rfs_jobs_each(rfs_jobs *t, void (*fn)(struct rfs_job *job, void *arg),
		   void *arg)
{
	for (unsigned b = 0; b < NBUCKETS; b++)
		for (struct rfs_job *j = t->table[b]; j; j = j->hnext)
			fn(j, arg);
}
