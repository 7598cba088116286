/* history.c - the ring of ended jobs and the jobs file (see history.h). */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "rasterfs/chain.h"
#include "rasterfs/err.h"
#include "rasterfs/history.h"
#include "rasterfs/json.h"

enum end { END_DONE = 1, END_FAILED, END_CANCELLED };

/* A job that ended, for the jobs file. */
struct record {
	uint64_t id;              /* 0: an empty slot */
	rfs_key key;
	char *vpath;
	char *canonical;
	enum end end;
	double progress;
	pid_t pid;
	struct timespec wall_started;
	int started;
	double elapsed;           /* s from start (or queueing) to end */
	int code;
	char msg[RFS_MSG_MAX];
	uid_t *uids;              /* the job's, taken over */
	unsigned nuids;
};

struct rfs_history {
	struct record r[RFS_HISTORY];
	unsigned next;            /* ring index of the next record */
};

static double since(const struct timespec *t)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return (double)(now.tv_sec - t->tv_sec) +
	       (double)(now.tv_nsec - t->tv_nsec) / 1e9;
}

rfs_history *rfs_history_new(void)
{
	return calloc(1, sizeof(struct rfs_history));
}

static void record_clear(struct record *r)
{
	free(r->vpath);
	free(r->canonical);
	free(r->uids);
	memset(r, 0, sizeof(*r));
}

void rfs_history_free(rfs_history *h)
{
	if (!h)
		return;
	for (unsigned i = 0; i < RFS_HISTORY; i++)
		record_clear(&h->r[i]);
	free(h);
}

void rfs_history_record(rfs_history *h, struct rfs_job *job, int rc,
			const char *msg)
{
	struct record *r = &h->r[h->next];

	h->next = (h->next + 1) % RFS_HISTORY;
	record_clear(r);
	r->id = job->id;
	r->key = job->key;
	r->vpath = job->vpath ? strdup(job->vpath) : NULL;
	r->canonical = strdup(job->canonical);
	r->end = rc == 0 ? END_DONE :
		 rc == -RFS_E_CANCELLED ? END_CANCELLED : END_FAILED;
	r->progress = rc == 0 ? 1.0 : job->progress;
	r->pid = job->pid;
	r->started = job->state != RFS_JOB_QUEUED;
	r->wall_started = r->started ? job->wall_started : job->wall_queued;
	r->elapsed = since(r->started ? &job->t_started : &job->t_queued);
	r->code = rc;
	snprintf(r->msg, sizeof(r->msg), "%s", rc && msg ? msg : "");
	r->uids = job->uids;
	r->nuids = job->nuids;
	job->uids = NULL;
	job->nuids = 0;
}

int rfs_history_state(const rfs_history *h, const rfs_key *key,
		      const char **state, double *progress)
{
	for (unsigned i = 1; i <= RFS_HISTORY; i++) {
		const struct record *r =
			&h->r[(h->next + RFS_HISTORY - i) % RFS_HISTORY];
		if (!r->id || memcmp(r->key.b, key->b, sizeof(key->b)) != 0)
			continue;
		if (r->end == END_DONE)
			return -ENOENT; /* the store answers for it */
		if (state)
			*state = r->end == END_CANCELLED ? "cancelled" :
							   "failed";
		if (progress)
			*progress = r->progress;
		return 0;
	}
	return -ENOENT;
}

unsigned rfs_history_owners(const rfs_history *h, uint64_t id, uid_t *uids,
			    unsigned max)
{
	unsigned n = 0;

	for (unsigned i = 0; i < RFS_HISTORY; i++) {
		const struct record *r = &h->r[i];
		if (r->id != id || !id)
			continue;
		for (; n < r->nuids && n < max; n++)
			uids[n] = r->uids[n];
		break;
	}
	return n;
}

/* One line of the jobs file. */
static void job_line(struct rfs_json *j, uint64_t id, const char *vpath,
		     const char *canonical, const char *state,
		     double progress, pid_t pid,
		     const struct timespec *started, double el, int code,
		     const char *msg)
{
	rfs_json_object(j);
	rfs_json_key(j, "id");
	rfs_json_u64(j, id);
	rfs_json_key(j, "path");
	rfs_json_string(j, vpath ? vpath : "");
	rfs_json_key(j, "chain");
	rfs_json_string(j, canonical ? canonical : "");
	rfs_json_key(j, "state");
	rfs_json_string(j, state);
	rfs_json_key(j, "progress");
	rfs_json_fixed(j, 100.0 * progress, 1);
	rfs_json_key(j, "pid");
	if (pid)
		rfs_json_i64(j, pid);
	else
		rfs_json_null(j);
	rfs_json_key(j, "started");
	if (started)
		rfs_json_time(j, started->tv_sec);
	else
		rfs_json_null(j);
	rfs_json_key(j, "elapsed");
	rfs_json_fixed(j, el, 2);
	rfs_json_key(j, "error");
	rfs_json_string(j, code ? rfs_err_name(code) : NULL);
	rfs_json_key(j, "message");
	rfs_json_string(j, code ? msg : NULL);
	rfs_json_end(j);
	rfs_json_newline(j);
}

struct live {
	const rfs_jobs *jobs;
	uid_t uid;
	struct rfs_job **v;
	size_t n, cap;
	int oom;
};

static void live_add(struct rfs_job *job, void *arg)
{
	struct live *l = arg;

	if (l->oom || !rfs_jobs_may_see(l->jobs, job->uids, job->nuids,
					l->uid))
		return;
	if (l->n == l->cap) {
		size_t nc = l->cap ? 2 * l->cap : 64;
		struct rfs_job **nv = realloc(l->v, nc * sizeof(*nv));
		if (!nv) {
			l->oom = 1;
			return;
		}
		l->v = nv;
		l->cap = nc;
	}
	l->v[l->n++] = job;
}

static int by_id(const void *a, const void *b)
{
	const struct rfs_job *x = *(struct rfs_job *const *)a;
	const struct rfs_job *y = *(struct rfs_job *const *)b;

	return x->id < y->id ? -1 : x->id > y->id;
}

int rfs_history_json(const rfs_history *h, rfs_jobs *jobs, uid_t uid,
		     char **out, size_t *len)
{
	static const char *const ends[] = {
		[END_DONE] = "done",
		[END_FAILED] = "failed",
		[END_CANCELLED] = "cancelled",
	};
	struct live l = { .jobs = jobs, .uid = uid };
	struct rfs_json j;
	char *text = NULL;
	size_t n = 0;
	FILE *f = open_memstream(&text, &n);

	if (!f)
		return -ENOMEM;
	rfs_json_init(&j, f);
	/* Finished first, oldest to newest, then the live ones: a reader
	 * tailing the file sees the newest at the bottom. */
	for (unsigned i = 0; i < RFS_HISTORY; i++) {
		const struct record *r = &h->r[(h->next + i) % RFS_HISTORY];
		if (!r->id || !rfs_jobs_may_see(jobs, r->uids, r->nuids, uid))
			continue;
		job_line(&j, r->id, r->vpath, r->canonical, ends[r->end],
			 r->progress, r->pid,
			 r->started ? &r->wall_started : NULL, r->elapsed,
			 r->code, r->msg);
	}
	/* The live ones in the order they were asked for. */
	rfs_jobs_each(jobs, live_add, &l);
	if (l.n)
		qsort(l.v, l.n, sizeof(*l.v), by_id);
	for (size_t i = 0; i < l.n && !l.oom; i++) {
		struct rfs_job *job = l.v[i];
		int q = job->state == RFS_JOB_QUEUED;
		job_line(&j, job->id, job->vpath, job->canonical,
			 q ? "queued" : "running", job->progress,
			 q ? 0 : job->pid, q ? NULL : &job->wall_started,
			 since(q ? &job->t_queued : &job->t_started), 0, NULL);
	}
	free(l.v);
	if (fclose(f) != 0 || l.oom) {
		free(text);
		return -ENOMEM;
	}
	*out = text;
	*len = n;
	return 0;
}
