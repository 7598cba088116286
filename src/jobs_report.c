/* jobs_report.c - ended jobs' history and the jobs file. */
#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "pool_int.h"
#include "rasterfs/err.h"
#include "rasterfs/pool.h"

/* Put an ended job into the history ring.  p->lock held. */
void record_job(struct rfs_pool *p, struct job *job, int rc,
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
