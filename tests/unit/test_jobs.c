/* test_jobs.c - the job table (jobs.h) on its own: no worker process, no
 * thread, no store.  Single flight and joining, waiters told exactly once,
 * failures remembered for retry_after (on a clock the test moves), the
 * ends that are not remembered, the cancel of the last waiter, warm jobs
 * that readers never cancel, who may cancel and see, the queue's order
 * with kept prefixes, and the counters. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "rasterfs/err.h"
#include "rasterfs/jobs.h"
#include "rasterfs/stats.h"

#include "check.h"

#define OWNER 500

static double now_s;

static double fake_clock(void)
{
	return now_s;
}

/* A reader waiting for a job: how often and with what it was told. */
struct reader {
	int calls;
	int rc;
	char msg[128];
};

static void told(void *arg, int rc, const char *msg)
{
	struct reader *r = arg;

	r->calls++;
	r->rc = rc;
	snprintf(r->msg, sizeof(r->msg), "%s", msg ? msg : "");
}

static struct rfs_waiter *waiter(struct reader *r)
{
	struct rfs_waiter *w = calloc(1, sizeof(*w));

	if (!w) {
		perror("calloc");
		exit(2);
	}
	w->fn = told;
	w->arg = r;
	return w;
}

static rfs_key key(unsigned char n)
{
	rfs_key k;

	memset(k.b, 0, sizeof(k.b));
	k.b[0] = n;       /* the bucket */
	k.b[15] = n ^ 0x5a;
	return k;
}

static struct rfs_job_spec spec(unsigned char n, uid_t uid, int warm)
{
	struct rfs_job_spec s = {
		.key = key(n),
		.src = { 1, 2, 3, 4 },
		.src_fd = -1,
		.source_rel = "dem.tif",
		.canonical = "@focal=3",
		.vpath = "dem.tif@focal=3",
		.warm = warm,
		.uid = uid,
	};
	return s;
}

static rfs_jobs *table(unsigned retry_after, struct rfs_stats *st)
{
	struct rfs_jobs_config cfg = {
		.retry_after = retry_after,
		.owner = OWNER,
		.clock = fake_clock,
	};
	rfs_jobs *t;

	if (rfs_stats_init(st) < 0 || rfs_jobs_new(&cfg, st, &t) < 0) {
		perror("rfs_jobs_new");
		exit(2);
	}
	return t;
}

/* End job with rc, tell its waiters, free it. */
static void end(rfs_jobs *t, struct rfs_job *job, int rc, const char *msg)
{
	rfs_jobs_notify(rfs_jobs_end(t, job, rc, msg), rc, msg);
	rfs_job_free(job);
}

static void test_join(void)
{
	struct rfs_stats st;
	rfs_jobs *t = table(60, &st);
	struct reader a = { 0 }, b = { 0 }, c = { 0 };
	struct rfs_job_spec s = spec(1, 1000, 0);

	/* a waiter given to a join that found no job is still the caller's */
	struct rfs_waiter *wa = waiter(&a);
	check(rfs_jobs_join(t, &s, wa) == 0, "join of an empty table: no job");
	struct rfs_job *job = rfs_jobs_add(t, &s, wa);
	check(job != NULL, "add");
	check(job->state == RFS_JOB_QUEUED && job->id == 1 &&
	      job->nuids == 1 && job->uids[0] == 1000,
	      "a new job is QUEUED, id 1, asked for by uid 1000");
	check(rfs_jobs_find(t, &s.key) == job, "found by its key");
	check(atomic_load(&st.jobs_queued) == 1, "jobs_queued 1");

	struct rfs_job_spec s2 = spec(1, 1001, 0);
	check(rfs_jobs_join(t, &s2, waiter(&b)) == 1, "a second reader joins");
	check(rfs_jobs_join(t, &s, waiter(&c)) == 1,
	      "the first uid again joins");
	check(job->nuids == 2, "each uid counted once (%u)", job->nuids);
	check(atomic_load(&st.joined) == 2, "joined 2");
	check(rfs_jobs_find(t, &s.key) == job, "still one job for the key");

	struct rfs_job *next = rfs_jobs_next(t);
	check(next == job && rfs_jobs_next(t) == NULL,
	      "the queue holds it once");
	rfs_jobs_start(t, job);
	check(job->state == RFS_JOB_RUNNING &&
	      atomic_load(&st.jobs_queued) == 0 &&
	      atomic_load(&st.jobs_running) == 1, "started: RUNNING");
	rfs_jobs_commit(t, job);
	check(job->state == RFS_JOB_COMMITTING &&
	      rfs_jobs_committing(t) == 1 &&
	      rfs_jobs_any_not_committing(t) == NULL, "COMMITTING");
	end(t, job, 0, NULL);
	check(a.calls == 1 && b.calls == 1 && c.calls == 1 &&
	      a.rc == 0 && b.rc == 0 && c.rc == 0,
	      "every waiter told once, with 0 (%d %d %d)", a.calls, b.calls,
	      c.calls);
	check(rfs_jobs_find(t, &s.key) == NULL && rfs_jobs_committing(t) == 0,
	      "gone from the table");
	check(atomic_load(&st.jobs_running) == 0, "jobs_running 0");
	check(rfs_jobs_last_error(t, &s.key, NULL, NULL, 0, NULL) == -ENOENT,
	      "a success leaves no failure");
	rfs_jobs_free(t);
}

/* pool.c note 12: the waiters of a committing job are taken and told
 * early; a reader that joins afterwards waits for the end; a cancel of a
 * taken waiter finds nothing; the job stays the key's until it ends. */
static void test_take_waiters(void)
{
	struct rfs_stats st;
	rfs_jobs *t = table(60, &st);
	struct reader a = { 0 }, b = { 0 };
	struct rfs_job_spec s = spec(2, 1000, 0);
	struct rfs_job *job = rfs_jobs_add(t, &s, waiter(&a)), *ended;
	struct rfs_waiter *ws, *none;

	check(job && rfs_jobs_next(t) == job, "queued");
	rfs_jobs_start(t, job);
	rfs_jobs_commit(t, job);
	ws = rfs_jobs_take_waiters(t, job);
	check(ws && !ws->next && job->waiters == NULL, "the one waiter taken");
	check(rfs_jobs_detach(t, &s.key, &a, "why", &ended, &none) == 0 &&
	      ended == NULL && job->state == RFS_JOB_COMMITTING,
	      "a taken waiter is not found; the job is not cancelled");
	rfs_jobs_notify(ws, 0, NULL);
	check(a.calls == 1 && a.rc == 0, "told early, once");
	check(rfs_jobs_find(t, &s.key) == job, "still the key's job");
	check(rfs_jobs_join(t, &s, waiter(&b)) == 1, "a later reader joins");
	end(t, job, 0, NULL);
	check(a.calls == 1 && b.calls == 1 && b.rc == 0,
	      "the end tells the later reader only (%d %d)", a.calls,
	      b.calls);
	rfs_jobs_free(t);
}

static void test_fail_and_retry_after(void)
{
	struct rfs_stats st;
	rfs_jobs *t = table(60, &st);
	struct reader a = { 0 };
	struct rfs_job_spec s = spec(2, 1000, 0);
	char msg[64];
	int code = 0, fresh = -1;

	now_s = 1000;
	struct rfs_job *job = rfs_jobs_add(t, &s, waiter(&a));
	end(t, job, -RFS_E_PROCESS, "focal: boom");
	check(a.calls == 1 && a.rc == -RFS_E_PROCESS &&
	      !strcmp(a.msg, "focal: boom"), "the waiter gets the failure");
	check(rfs_jobs_recent_failure(t, &s.key) == -RFS_E_PROCESS,
	      "fails at once within retry_after");
	check(rfs_jobs_last_error(t, &s.key, &code, msg, sizeof(msg),
				  &fresh) == 0 &&
	      code == -RFS_E_PROCESS && !strcmp(msg, "focal: boom") &&
	      fresh == 1, "last error: code, message, fresh");
	now_s = 1059.5;
	check(rfs_jobs_recent_failure(t, &s.key) == -RFS_E_PROCESS,
	      "still within 60 s at 59.5 s");
	now_s = 1060.5;
	check(rfs_jobs_recent_failure(t, &s.key) == 0,
	      "retried after retry_after");
	check(rfs_jobs_last_error(t, &s.key, &code, NULL, 0, &fresh) == 0 &&
	      fresh == 0, "the failure is kept, no longer fresh");

	/* the next job for the key succeeds: the failure is forgotten */
	job = rfs_jobs_add(t, &s, NULL);
	end(t, job, 0, NULL);
	check(rfs_jobs_last_error(t, &s.key, NULL, NULL, 0, NULL) == -ENOENT,
	      "a success forgets the failure");
	rfs_jobs_free(t);

	/* retry_after=0: never fails fast, but the error is kept */
	t = table(0, &st);
	job = rfs_jobs_add(t, &s, NULL);
	end(t, job, -RFS_E_PROCESS, "boom");
	check(rfs_jobs_recent_failure(t, &s.key) == 0,
	      "retry_after=0: retried at once");
	check(rfs_jobs_last_error(t, &s.key, &code, NULL, 0, &fresh) == 0 &&
	      code == -RFS_E_PROCESS && fresh == 0,
	      "retry_after=0: the error is still told");
	rfs_jobs_free(t);
}

static void test_not_remembered(void)
{
	static const int forgotten[] = {
		-RFS_E_CANCELLED, -RFS_E_SHUTDOWN, -RFS_E_CRASH,
		-RFS_E_STALLED, -RFS_E_SOURCE_CHANGED, -EMFILE, -ENFILE,
	};
	static const int kept[] = {
		-RFS_E_PROCESS, -RFS_E_NOSPACE, -RFS_E_NOMEM, -RFS_E_TIMEOUT,
		-RFS_E_SOURCE,
	};
	struct rfs_stats st;
	rfs_jobs *t = table(60, &st);

	now_s = 5000;
	for (size_t i = 0; i < sizeof(forgotten) / sizeof(*forgotten); i++) {
		struct rfs_job_spec s = spec((unsigned char)(10 + i), 1000, 0);
		end(t, rfs_jobs_add(t, &s, NULL), forgotten[i], "x");
		check(rfs_jobs_recent_failure(t, &s.key) == 0 &&
		      rfs_jobs_last_error(t, &s.key, NULL, NULL, 0, NULL) ==
		      -ENOENT, "%s is not remembered",
		      rfs_err_name(forgotten[i]));
	}
	for (size_t i = 0; i < sizeof(kept) / sizeof(*kept); i++) {
		struct rfs_job_spec s = spec((unsigned char)(30 + i), 1000, 0);
		end(t, rfs_jobs_add(t, &s, NULL), kept[i], "x");
		check(rfs_jobs_recent_failure(t, &s.key) == kept[i],
		      "%s is remembered", rfs_err_name(kept[i]));
	}
	rfs_jobs_free(t);
}

/* More failures than the table holds: the oldest goes first. */
static void test_failure_table_full(void)
{
	struct rfs_stats st;
	rfs_jobs *t = table(3600, &st);
	rfs_key first = { { 0 } }, last = { { 0 } };

	for (unsigned i = 0; i <= RFS_JOBS_FAILURES; i++) {
		struct rfs_job_spec s = spec(7, 1000, 0);
		s.key.b[1] = (unsigned char)(i & 0xff);
		s.key.b[2] = (unsigned char)(i >> 8);
		now_s = 10000 + i;
		end(t, rfs_jobs_add(t, &s, NULL), -RFS_E_PROCESS, "x");
		if (i == 0)
			first = s.key;
		last = s.key;
	}
	check(rfs_jobs_recent_failure(t, &first) == 0,
	      "the oldest of %d failures was replaced", RFS_JOBS_FAILURES + 1);
	check(rfs_jobs_recent_failure(t, &last) == -RFS_E_PROCESS,
	      "the newest is remembered");
	rfs_jobs_free(t);
}

static void test_cancel_last_waiter(void)
{
	static const char why[] = "every reader was interrupted";
	struct rfs_stats st;
	rfs_jobs *t = table(60, &st);
	struct reader a = { 0 }, b = { 0 };
	struct rfs_job_spec s = spec(3, 1000, 0);
	struct rfs_job *ended;
	struct rfs_waiter *ws;

	/* queued: the last waiter's going ends it */
	struct rfs_job *job = rfs_jobs_add(t, &s, waiter(&a));
	rfs_jobs_join(t, &s, waiter(&b));
	check(rfs_jobs_detach(t, &s.key, &b, why, &ended, &ws) == 1 &&
	      !ended && rfs_jobs_find(t, &s.key) == job,
	      "one of two readers goes: the job stays");
	check(rfs_jobs_detach(t, &s.key, &b, why, &ended, &ws) == 0,
	      "a reader detached twice is not found");
	check(rfs_jobs_detach(t, &s.key, &a, why, &ended, &ws) == 1 &&
	      ended == job && ws == NULL,
	      "the last reader goes: the queued job ends, nobody to tell");
	check(rfs_jobs_find(t, &s.key) == NULL && rfs_jobs_next(t) == NULL &&
	      !rfs_jobs_any_queued(t), "out of the table and the queue");
	check(atomic_load(&st.jobs_queued) == 0, "jobs_queued 0");
	rfs_job_free(ended);
	check(a.calls == 0 && b.calls == 0, "detached readers are not told");
	check(rfs_jobs_recent_failure(t, &s.key) == 0,
	      "a cancel is not remembered");

	/* running: marked for the pool to stop */
	a.calls = 0;
	job = rfs_jobs_add(t, &s, waiter(&a));
	check(rfs_jobs_next(t) == job, "next");
	rfs_jobs_start(t, job);
	check(rfs_jobs_detach(t, &s.key, &a, why, &ended, &ws) == 1 &&
	      !ended && job->cancel == 1,
	      "the last reader of a running job goes: it is marked");
	check(rfs_jobs_find(t, &s.key) == job, "still in the table");
	/* someone asks again before the CANCEL is sent: withdrawn */
	check(rfs_jobs_join(t, &s, waiter(&b)) == 1 && job->cancel == 0,
	      "a new reader withdraws a cancel not yet sent");
	check(rfs_jobs_detach(t, &s.key, &b, why, &ended, &ws) == 1 &&
	      job->cancel == 1, "marked again");
	job->cancel_sent = 1; /* the pool sent CANCEL */
	check(rfs_jobs_join(t, &s, NULL) == 1 && job->cancel == 1,
	      "a cancel already sent stays");
	end(t, job, -RFS_E_CANCELLED, why);
	check(a.calls == 0 && b.calls == 0, "nobody left to tell");

	/* a waiter that is not the one given: not found */
	check(rfs_jobs_detach(t, &s.key, &a, why, &ended, &ws) == 0 && !ended,
	      "no job: not found");
	rfs_jobs_free(t);
}

static void test_warm_never_cancelled_by_readers(void)
{
	static const char why[] = "interrupted";
	struct rfs_stats st;
	rfs_jobs *t = table(60, &st);
	struct reader a = { 0 };
	struct rfs_job_spec warm = spec(4, 1000, 1), reader = spec(4, 1001, 0);
	struct rfs_job *ended;
	struct rfs_waiter *ws;

	/* a warm-up first, then a reader who goes */
	struct rfs_job *job = rfs_jobs_add(t, &warm, NULL);
	check(job->warm == 1, "a warm job");
	rfs_jobs_join(t, &reader, waiter(&a));
	check(job->warm == 1, "a reader's join keeps it warm");
	check(rfs_jobs_detach(t, &reader.key, &a, why, &ended, &ws) == 1 &&
	      !ended && !job->cancel && rfs_jobs_find(t, &warm.key) == job,
	      "queued warm job: its last reader going cancels nothing");
	rfs_jobs_next(t);
	rfs_jobs_start(t, job);
	rfs_jobs_join(t, &reader, waiter(&a));
	check(rfs_jobs_detach(t, &reader.key, &a, why, &ended, &ws) == 1 &&
	      !ended && !job->cancel,
	      "running warm job: its last reader going cancels nothing");
	end(t, job, 0, NULL);

	/* a reader first, then a warm-up joins: warm from then on */
	job = rfs_jobs_add(t, &reader, waiter(&a));
	rfs_jobs_join(t, &warm, NULL);
	check(job->warm == 1, "a warm-up's join makes the job warm");
	check(rfs_jobs_detach(t, &reader.key, &a, why, &ended, &ws) == 1 &&
	      !ended && rfs_jobs_find(t, &reader.key) == job,
	      "the reader going cancels nothing");
	end(t, job, 0, NULL);
	check(a.calls == 0, "detached readers are not told");

	/* but an explicit cancel does */
	job = rfs_jobs_add(t, &warm, NULL);
	check(rfs_jobs_cancel(t, &warm.key, 1000, "on request", &ended,
			      &ws) == 0 && ended == job,
	      "rfs_jobs_cancel ends a queued warm job");
	rfs_job_free(ended);
	rfs_jobs_free(t);
}

static void test_who_may(void)
{
	static const char why[] = "on request";
	struct rfs_stats st;
	rfs_jobs *t = table(60, &st);
	struct rfs_job_spec s = spec(5, 1000, 0), s2 = spec(5, 1001, 0);
	struct rfs_job *ended;
	struct rfs_waiter *ws;
	const uid_t mine[] = { 1000 };

	check(rfs_jobs_cancel(t, &s.key, 0, why, &ended, &ws) == -ENOENT,
	      "no job: -ENOENT");
	struct rfs_job *job = rfs_jobs_add(t, &s, NULL);
	check(rfs_jobs_cancel(t, &s.key, 1001, why, &ended, &ws) == -EPERM &&
	      !ended, "another user may not cancel");
	rfs_jobs_join(t, &s2, NULL);
	check(rfs_jobs_cancel(t, &s.key, 1000, why, &ended, &ws) == -EPERM,
	      "a requester may not cancel a job another asked for too");
	rfs_jobs_next(t);
	rfs_jobs_start(t, job);
	check(rfs_jobs_cancel(t, &s.key, OWNER, why, &ended, &ws) == 0 &&
	      !ended && job->cancel, "the mount's owner may: marked");
	job->cancel = 0;
	check(rfs_jobs_cancel(t, &s.key, 0, why, &ended, &ws) == 0 &&
	      job->cancel, "root may");
	rfs_jobs_commit(t, job);
	check(rfs_jobs_cancel(t, &s.key, 0, why, &ended, &ws) == -ENOENT,
	      "a committing job is past cancelling");
	end(t, job, 0, NULL);

	job = rfs_jobs_add(t, &s, NULL);
	check(rfs_jobs_cancel(t, &s.key, 1000, why, &ended, &ws) == 0 &&
	      ended == job, "the only requester may cancel");
	rfs_job_free(ended);

	check(rfs_jobs_may_see(t, mine, 1, 1000) &&
	      !rfs_jobs_may_see(t, mine, 1, 1001) &&
	      rfs_jobs_may_see(t, mine, 1, 0) &&
	      rfs_jobs_may_see(t, mine, 1, OWNER),
	      "seen by its requester, root and the owner only");
	rfs_jobs_free(t);
}

static void test_queue_order(void)
{
	struct rfs_stats st;
	rfs_jobs *t = table(60, &st);
	struct rfs_job_spec p = spec(6, 1000, 1), a = spec(8, 1000, 0),
			    b = spec(9, 1000, 0);

	struct rfs_job *pj = rfs_jobs_add(t, &p, NULL);
	struct rfs_job *aj = rfs_jobs_add(t, &a, NULL);
	aj->prefix_len = 8;
	aj->prefix_key = p.key;
	struct rfs_job *bj = rfs_jobs_add(t, &b, NULL);
	check(rfs_jobs_next(t) == pj, "the prefix's job first");
	rfs_jobs_start(t, pj);
	check(rfs_jobs_next(t) == bj,
	      "a job waits while its prefix's job exists; the next goes");
	rfs_jobs_requeue(t, bj);
	check(rfs_jobs_next(t) == bj, "requeued at the head");
	check(rfs_jobs_next(t) == NULL && rfs_jobs_any_queued(t),
	      "only the waiting job is queued");
	end(t, pj, 0, NULL);
	check(rfs_jobs_next(t) == aj, "its prefix ended: it goes");
	end(t, aj, -RFS_E_SHUTDOWN, "x");
	end(t, bj, -RFS_E_SHUTDOWN, "x");
	check(atomic_load(&st.jobs_queued) == 0 &&
	      atomic_load(&st.jobs_running) == 0, "counters back to 0");
	rfs_jobs_free(t);
}

/* stats.h: done + failed + cancelled + running + queued == started +
 * prefix_jobs, counted from the outside: every job added is in exactly
 * one of the five. */
static int add_up(struct rfs_stats *st, unsigned long long started,
		  unsigned long long prefixes)
{
	unsigned long long sum = atomic_load(&st->jobs_done) +
		atomic_load(&st->jobs_failed) +
		atomic_load(&st->jobs_cancelled) +
		atomic_load(&st->jobs_running) + atomic_load(&st->jobs_queued);

	return atomic_load(&st->jobs_started) == started &&
	       atomic_load(&st->prefix_jobs) == prefixes &&
	       sum == started + prefixes;
}

static void test_counters_add_up(void)
{
	static const char why[] = "every reader was interrupted";
	struct rfs_stats st;
	rfs_jobs *t = table(60, &st);
	struct reader a = { 0 };
	struct rfs_job_spec pre = spec(20, 1000, 1), done = spec(21, 1000, 0),
			    fail = spec(22, 1000, 0), cq = spec(23, 1000, 0),
			    cr = spec(24, 1000, 0), warm = spec(25, 1000, 1);
	struct rfs_job *ended;
	struct rfs_waiter *ws;

	pre.prefix = 1;
	struct rfs_job *pj = rfs_jobs_add(t, &pre, NULL);
	struct rfs_job *dj = rfs_jobs_add(t, &done, NULL);
	struct rfs_job *fj = rfs_jobs_add(t, &fail, NULL);
	rfs_jobs_add(t, &cq, waiter(&a));
	struct rfs_job *rj = rfs_jobs_add(t, &cr, NULL);
	struct rfs_job *wj = rfs_jobs_add(t, &warm, NULL);
	check(pj->is_prefix && !dj->is_prefix, "a prefix job is one");
	check(add_up(&st, 5, 1) && atomic_load(&st.jobs_queued) == 6,
	      "six queued: five asked for, one prefix");
	/* all but the one with a reader run */
	struct rfs_job *j, *cj = NULL;
	while ((j = rfs_jobs_next(t))) {
		if (j->waiters)
			cj = j;
		else
			rfs_jobs_start(t, j);
	}
	rfs_jobs_requeue(t, cj);
	check(add_up(&st, 5, 1), "adds up with jobs running");
	end(t, pj, 0, NULL);
	end(t, dj, 0, NULL);
	end(t, fj, -RFS_E_PROCESS, "x");
	check(rfs_jobs_detach(t, &cq.key, &a, why, &ended, &ws) == 1 && ended,
	      "a queued job cancelled");
	rfs_jobs_notify(ws, -RFS_E_CANCELLED, why);
	rfs_job_free(ended);
	end(t, rj, -RFS_E_CANCELLED, why);
	end(t, wj, -RFS_E_SHUTDOWN, "x");
	check(add_up(&st, 5, 1) && atomic_load(&st.jobs_done) == 2 &&
	      atomic_load(&st.jobs_failed) == 2 &&
	      atomic_load(&st.jobs_cancelled) == 2 &&
	      atomic_load(&st.jobs_running) == 0 &&
	      atomic_load(&st.jobs_queued) == 0,
	      "2 done, 2 failed (an unmount too), 2 cancelled apart");
	rfs_jobs_free(t);
	rfs_stats_destroy(&st);
}

/* The table owns descriptors given to its jobs: freed with the job, and
 * with the table (jobs still in it, waiters freed, not told). */
static void test_free(void)
{
	struct rfs_stats st;
	rfs_jobs *t = table(60, &st);
	struct reader a = { 0 };
	struct rfs_job_spec s = spec(12, 1000, 0);
	int fds[2];

	if (pipe(fds) < 0) {
		perror("pipe");
		exit(2);
	}
	struct rfs_job *job = rfs_jobs_add(t, &s, waiter(&a));
	job->src_fd = fds[0];
	job->prefix_fd = fds[1];
	rfs_jobs_free(t);
	check(fcntl(fds[0], F_GETFD) < 0 && errno == EBADF &&
	      fcntl(fds[1], F_GETFD) < 0 && errno == EBADF,
	      "the job's descriptors are closed with the table");
	check(a.calls == 0, "waiters are freed, not told");
}

/* A lazy output's pieces (lazy.h): the jobs "CHAIN#..." of the same source
 * are found for cancelling; the whole output's, another chain's whose
 * text merely starts the same, and another source's are not. */
static void test_pieces(void)
{
	struct rfs_stats st;
	rfs_jobs *t = table(60, &st);
	struct rfs_job_spec whole = spec(1, 1000, 0), b1 = spec(2, 1000, 1),
			    b2 = spec(3, 1000, 0), other = spec(4, 1000, 0),
			    longer = spec(5, 1000, 0), mine = spec(6, 1001, 0);
	struct rfs_job *ended, *j;
	struct rfs_waiter *ws;
	const struct rfs_src_id src = { 1, 2, 3, 4 };
	unsigned refused = 0;
	int n = 0;

	b1.canonical = "@focal=3#block=0,0";
	b2.canonical = "@focal=3#stats";
	other.canonical = "@focal=3#block=1,0";
	other.src.ino = 99;
	longer.canonical = "@focal=33#block=0,0";
	mine.canonical = "@focal=3#block=2,0";
	rfs_jobs_add(t, &whole, NULL);
	rfs_jobs_add(t, &b1, NULL);
	struct rfs_job *running = rfs_jobs_add(t, &b2, NULL);
	rfs_jobs_add(t, &other, NULL);
	rfs_jobs_add(t, &longer, NULL);
	rfs_jobs_add(t, &mine, NULL);
	check(rfs_jobs_next_piece(t, &src, "@focal=3", 1002, &refused) ==
	      NULL && refused == 3, "another user may cancel none of 3");
	/* take b2 out of the queue as the pool would: running */
	while ((j = rfs_jobs_next(t)) && j != running)
		;
	rfs_jobs_start(t, running);
	for (;;) {
		refused = 0;
		j = rfs_jobs_next_piece(t, &src, "@focal=3", 1000, &refused);
		if (!j)
			break;
		check(strncmp(j->canonical, "@focal=3#", 9) == 0 &&
		      j->src.ino == 2, "a piece of this output");
		rfs_jobs_cancel_job(t, j, "on request", &ended, &ws);
		if (ended)
			rfs_job_free(ended);
		n++;
	}
	check(n == 2 && refused == 1, "two pieces cancelled; user 1001's "
	      "refused to user 1000");
	check(running->cancel == 1 && rfs_jobs_find(t, &b2.key) == running,
	      "a running piece is marked, not ended");
	check(rfs_jobs_find(t, &whole.key) && rfs_jobs_find(t, &other.key) &&
	      rfs_jobs_find(t, &longer.key) && rfs_jobs_find(t, &mine.key),
	      "the whole output, another source, another chain stay");
	refused = 0;
	check((j = rfs_jobs_next_piece(t, &src, "@focal=3", OWNER,
				       &refused)) &&
	      strcmp(j->canonical, "@focal=3#block=2,0") == 0,
	      "the owner may cancel user 1001's");
	rfs_jobs_free(t);
}

int main(void)
{
	test_join();
	test_take_waiters();
	test_fail_and_retry_after();
	test_not_remembered();
	test_failure_table_full();
	test_cancel_last_waiter();
	test_warm_never_cancelled_by_readers();
	test_who_may();
	test_queue_order();
	test_counters_add_up();
	test_free();
	test_pieces();
	return check_report();
}
