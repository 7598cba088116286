/* describer.c - describer processes and their single-flight table
 * (describer.h).
 *
 * Design notes:
 *  1. Dedicated processes.  A describe costs a header read and a few VRT
 *     set-ups (milliseconds), a job may take minutes: sharing the pool's
 *     workers would make `ls -l` wait for the jobs ahead of it.  The
 *     describers are the pool's worker processes in every respect
 *     (rfs_worker_spawn: confinement, uid, memory cap, PDEATHSIG) but are
 *     only ever sent DESCRIBE.  Only the manager thread talks to them and
 *     spawns them (their PR_SET_PDEATHSIG follows it).
 *  2. One describe per key.  The table holds a key from its first request
 *     until its record is written (DONE: later lookups get the size from
 *     the entry until the store has it) or its failure is forgotten
 *     (FAILED: retry_after), so no key is described twice at once and a
 *     failing one is not asked again at every getattr of a provisional
 *     output (attribute timeout 0).
 *  3. Every wait is bounded: a describe queued or running for longer than
 *     the timeout fails (its describer, if running, is killed: SIGKILL
 *     ends a stopped process too, and a new one is started).  Its waiters
 *     are answered, the output stays provisional, and its open computes
 *     it as before.
 *  4. Waiters are called with no lock held (a FUSE reply may block), in
 *     the order of the manager's loop; a request that finds the key DONE
 *     answers at once without a waiter.
 */
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
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <gdal.h>
#include <proj.h>
#include <xxhash.h>

#include "rasterfs/describer.h"
#include "rasterfs/err.h"
#include "rasterfs/log.h"
#include "rasterfs/wire.h"

#define NBUCKETS 1024
#define PUT_WAIT_S 5 /* how long free waits for records on their way */

enum dstate { D_QUEUED, D_RUNNING, D_DONE, D_FAILED };

struct dwaiter {
	rfs_describe_done_fn fn;
	void *arg;
	struct dwaiter *next;
};

struct dentry {
	rfs_key key;
	struct rfs_src_id src;
	int src_fd;               /* until dispatch, then -1 */
	char *source_rel;
	char *canonical;
	enum dstate state;
	uint64_t id;
	uint64_t size;            /* DONE */
	int rc;                   /* FAILED */
	double t_queued;          /* monotonic seconds */
	double t_failed;
	int slot;                 /* RUNNING: its describer */
	struct dwaiter *waiters;
	struct dentry *hnext, *qnext;
};

struct dproc {
	pid_t pid;                /* 0: none */
	int fd;
	struct dentry *cur;       /* RUNNING on it */
	int killed;               /* why: RFS_E_STALLED, or 0 */
	char scratch[PATH_MAX];
};

struct rfs_describer {
	struct rfs_describer_config cfg;
	rfs_store *store;
	struct rfs_stats *stats;
	uint64_t stamp;
	pthread_mutex_t lock;
	pthread_cond_t cv;        /* started; puts drained */
	struct dentry *table[NBUCKETS];
	struct dentry *qhead, *qtail;
	unsigned puts;            /* records on their way to the store */
	uint64_t next_id;
	int stopping, started, start_rc;
	int wakefd;
	unsigned nprocs;
	struct dproc *procs;
	pthread_t manager;
};

static double mono(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static void wake(struct rfs_describer *d)
{
	uint64_t one = 1;
	ssize_t n = write(d->wakefd, &one, sizeof(one));
	(void)n;
}

uint64_t rfs_describer_stamp(void)
{
	char s[256];
	int n = snprintf(s, sizeof(s), "rasterfs %s; GDAL %s; PROJ %s",
			 RFS_VERSION, GDALVersionInfo("RELEASE_NAME"),
			 proj_info().version);

	return XXH3_64bits(s, n > 0 ? (size_t)n : 0);
}

/* ---- the table (note 2); d->lock held --------------------------------- */

static unsigned bucket(const rfs_key *k)
{
	unsigned v;

	memcpy(&v, k->b, sizeof(v));
	return v % NBUCKETS;
}

static struct dentry *find(struct rfs_describer *d, const rfs_key *k)
{
	for (struct dentry *e = d->table[bucket(k)]; e; e = e->hnext)
		if (!memcmp(e->key.b, k->b, sizeof(k->b)))
			return e;
	return NULL;
}

static void unlink_entry(struct rfs_describer *d, struct dentry *e)
{
	struct dentry **pp = &d->table[bucket(&e->key)];

	while (*pp && *pp != e)
		pp = &(*pp)->hnext;
	if (*pp)
		*pp = e->hnext;
}

static void entry_free(struct dentry *e)
{
	if (!e)
		return;
	if (e->src_fd >= 0)
		close(e->src_fd);
	free(e->source_rel);
	free(e->canonical);
	free(e);
}

static void enqueue(struct rfs_describer *d, struct dentry *e)
{
	e->qnext = NULL;
	if (d->qtail)
		d->qtail->qnext = e;
	else
		d->qhead = e;
	d->qtail = e;
}

static void dequeue(struct rfs_describer *d, struct dentry *e)
{
	struct dentry **pp = &d->qhead, *prev = NULL;

	while (*pp && *pp != e) {
		prev = *pp;
		pp = &(*pp)->qnext;
	}
	if (!*pp)
		return;
	*pp = e->qnext;
	if (d->qtail == e)
		d->qtail = prev;
	e->qnext = NULL;
}

/* ---- ending describes (d->lock held; waiters returned) ----------------- */

/* FAILED: remembered for retry_after (note 2) unless it says nothing
 * about the key (a source changed under it: a new key). */
static struct dwaiter *fail_locked(struct rfs_describer *d, struct dentry *e,
				   int rc)
{
	struct dwaiter *ws = e->waiters;

	e->waiters = NULL;
	e->state = D_FAILED;
	e->rc = rc;
	e->t_failed = mono();
	if (e->src_fd >= 0) {
		close(e->src_fd);
		e->src_fd = -1;
	}
	if (rc == -RFS_E_SOURCE_CHANGED || rc == -RFS_E_SHUTDOWN ||
	    !d->cfg.retry_after) {
		unlink_entry(d, e);
		entry_free(e);
	}
	return ws;
}

static void notify(struct dwaiter *ws, int rc, uint64_t size)
{
	while (ws) {
		struct dwaiter *next = ws->next;
		ws->fn(ws->arg, rc, size);
		free(ws);
		ws = next;
	}
}

struct put_cookie {
	struct rfs_describer *d;
	struct dentry *e;
};

/* The record is written (or not): the store answers from now on (or the
 * next lookup describes again). */
static void put_done(void *arg, int rc)
{
	struct put_cookie *c = arg;
	struct rfs_describer *d = c->d;

	if (rc)
		rfs_log(LOG_WARNING, "description of %s%s not recorded: %s",
			c->e->source_rel, c->e->canonical, rfs_strerror(rc));
	pthread_mutex_lock(&d->lock);
	unlink_entry(d, c->e);
	d->puts--;
	pthread_cond_broadcast(&d->cv);
	pthread_mutex_unlock(&d->lock);
	entry_free(c->e);
	free(c);
}

/* DESCRIBED: DONE, the record handed to the committer.  d->lock not
 * held (the store's queue has a lock of its own). */
static void described(struct rfs_describer *d, struct dentry *e,
		      uint64_t size, const void *blob, size_t len)
{
	struct put_cookie *c = malloc(sizeof(*c));
	struct rfs_store_desc rec = {
		.src = e->src,
		.canonical = e->canonical,
		.source = e->source_rel,
		.stamp = d->stamp,
		.size = size,
		.layout = blob,
		.layout_len = len,
	};
	struct dwaiter *ws;
	int rc = -ENOMEM;

	pthread_mutex_lock(&d->lock);
	e->state = D_DONE;
	e->size = size;
	ws = e->waiters;
	e->waiters = NULL;
	d->puts++;
	pthread_mutex_unlock(&d->lock);
	if (c) {
		c->d = d;
		c->e = e;
		rc = rfs_store_describe_put(d->store, &e->key, &rec, put_done,
					    c);
	}
	if (rc < 0) {
		/* not recorded: the key is described again when asked */
		free(c);
		pthread_mutex_lock(&d->lock);
		unlink_entry(d, e);
		d->puts--;
		pthread_cond_broadcast(&d->cv);
		pthread_mutex_unlock(&d->lock);
		entry_free(e);
	}
	notify(ws, 0, size);
}

/* ---- the describers (note 1); the manager thread only ----------------- */

static int spawn(struct rfs_describer *d, unsigned i)
{
	struct dproc *p = &d->procs[i];
	struct rfs_worker_spawn ws = d->cfg.spawn;
	int rc;

	rc = rfs_store_scratch_dir(d->store, d->cfg.first_slot + i,
				   p->scratch, sizeof(p->scratch));
	if (rc < 0)
		return rc;
	ws.scratch = p->scratch;
	rc = rfs_worker_spawn(&ws, &p->pid, &p->fd);
	if (rc < 0) {
		p->pid = 0;
		p->fd = -1;
		return rc;
	}
	p->cur = NULL;
	p->killed = 0;
	rfs_log(LOG_DEBUG, "describer %u started: pid %ld", i, (long)p->pid);
	return 0;
}

static void dispatch(struct rfs_describer *d)
{
	for (unsigned i = 0; i < d->nprocs && d->qhead; i++) {
		struct dproc *p = &d->procs[i];
		struct dentry *e = d->qhead;

		if (p->fd < 0 || p->cur)
			continue;
		int rc = rfs_wire_send_describe(p->fd, e->id, &e->src,
						e->source_rel, e->canonical,
						e->src_fd);
		if (rc < 0)
			continue; /* it is dying: its EOF comes next */
		dequeue(d, e);
		close(e->src_fd); /* the describer has its own copy */
		e->src_fd = -1;
		e->state = D_RUNNING;
		e->slot = (int)i;
		p->cur = e;
		rfs_stat_inc(d->stats, describes);
	}
}

/* Note 3: queued describes past the timeout fail; running ones have their
 * describer killed.  Returns the poll timeout (ms).  d->lock held;
 * waiters to answer go to *ws (their rc is -RFS_E_TIMEOUT). */
static int police(struct rfs_describer *d, double now, struct dwaiter **ws)
{
	const double limit = d->cfg.timeout;
	int next = d->qhead || d->puts ? 250 : 1000;

	for (unsigned i = 0; i < d->nprocs; i++) {
		struct dproc *p = &d->procs[i];
		if (p->cur && !p->killed && now - p->cur->t_queued >= limit) {
			rfs_log(LOG_WARNING, "describe of %s%s: no answer "
				"from describer pid %ld for %u s: killing it",
				p->cur->source_rel, p->cur->canonical,
				(long)p->pid, d->cfg.timeout);
			p->killed = RFS_E_STALLED;
			kill(p->pid, SIGKILL);
		}
		if (p->cur && !p->killed)
			next = 100;
	}
	while (d->qhead && now - d->qhead->t_queued >= limit) {
		struct dentry *e = d->qhead;
		dequeue(d, e);
		rfs_log(LOG_NOTICE, "describe of %s%s: queued for %u s; "
			"the output stays provisional", e->source_rel,
			e->canonical, d->cfg.timeout);
		struct dwaiter *w = fail_locked(d, e, -RFS_E_TIMEOUT);
		while (w) {
			struct dwaiter *n = w->next;
			w->next = *ws;
			*ws = w;
			w = n;
		}
	}
	/* forget old failures (note 2) */
	for (unsigned b = 0; b < NBUCKETS; b++) {
		struct dentry **pp = &d->table[b];
		while (*pp) {
			struct dentry *e = *pp;
			if (e->state == D_FAILED &&
			    now - e->t_failed >= d->cfg.retry_after) {
				*pp = e->hnext;
				entry_free(e);
				continue;
			}
			pp = &e->hnext;
		}
	}
	return next;
}

static void proc_died(struct rfs_describer *d, unsigned i)
{
	struct dproc *p = &d->procs[i];
	struct dwaiter *ws = NULL;
	int status = 0;

	close(p->fd);
	p->fd = -1;
	waitpid(p->pid, &status, 0);
	pthread_mutex_lock(&d->lock);
	struct dentry *e = p->cur;
	p->cur = NULL;
	int rc = p->killed ? -p->killed : -RFS_E_CRASH;
	if (e) {
		rfs_log(rc == -RFS_E_CRASH ? LOG_ERR : LOG_NOTICE,
			"describe of %s%s: describer pid %ld %s; the output "
			"stays provisional", e->source_rel, e->canonical,
			(long)p->pid, rc == -RFS_E_CRASH ? "died" :
			"was killed");
		ws = fail_locked(d, e, rc);
	} else if (!d->stopping) {
		rfs_log(LOG_WARNING, "idle describer pid %ld ended",
			(long)p->pid);
	}
	int stopping = d->stopping;
	pthread_mutex_unlock(&d->lock);
	rfs_store_scratch_clean(p->scratch);
	notify(ws, rc, 0);
	p->pid = 0;
	if (!stopping && spawn(d, i) < 0)
		rfs_log(LOG_ERR, "describer slot %u stays empty", i);
}

static void handle(struct rfs_describer *d, unsigned i,
		   const struct rfs_msg *m)
{
	struct dproc *p = &d->procs[i];
	struct dwaiter *ws = NULL;

	pthread_mutex_lock(&d->lock);
	struct dentry *e = p->cur;
	if (!e || e->id != m->job_id ||
	    (m->type != RFS_MSG_DESCRIBED && m->type != RFS_MSG_FAILED)) {
		pthread_mutex_unlock(&d->lock);
		rfs_log(LOG_DEBUG, "describer pid %ld: unexpected message %d",
			(long)p->pid, (int)m->type);
		return;
	}
	p->cur = NULL;
	if (m->type == RFS_MSG_FAILED) {
		rfs_log(LOG_INFO, "describe of %s%s: %s %s; the output stays "
			"provisional", e->source_rel, e->canonical,
			rfs_err_name(m->code), m->message);
		ws = fail_locked(d, e, m->code < 0 ? m->code :
				 -RFS_E_PROCESS);
		pthread_mutex_unlock(&d->lock);
		notify(ws, m->code < 0 ? m->code : -RFS_E_PROCESS, 0);
		return;
	}
	pthread_mutex_unlock(&d->lock);
	described(d, e, m->size, m->blob, m->blob_len);
}

static void *manager_main(void *arg)
{
	struct rfs_describer *d = arg;
	struct pollfd *pfd = calloc(d->nprocs + 1, sizeof(*pfd));
	static __thread struct rfs_msg m;
	int rc = pfd ? 0 : -ENOMEM;

	/* Its lines name sources and chains that whoever listed a directory
	 * asked about, not one user: private (log.h). */
	rfs_log_set_owner(RFS_LOG_PRIVATE);
	for (unsigned i = 0; i < d->nprocs && rc == 0; i++)
		rc = spawn(d, i);
	pthread_mutex_lock(&d->lock);
	d->started = 1;
	d->start_rc = rc;
	pthread_cond_broadcast(&d->cv);
	pthread_mutex_unlock(&d->lock);
	if (rc < 0)
		goto out;
	for (;;) {
		struct dwaiter *ws = NULL;
		int timeout;

		pthread_mutex_lock(&d->lock);
		int stopping = d->stopping;
		if (!stopping) {
			dispatch(d);
			timeout = police(d, mono(), &ws);
		}
		pthread_mutex_unlock(&d->lock);
		notify(ws, -RFS_E_TIMEOUT, 0);
		if (stopping)
			break;
		pfd[0] = (struct pollfd){ .fd = d->wakefd, .events = POLLIN };
		for (unsigned i = 0; i < d->nprocs; i++)
			pfd[i + 1] = (struct pollfd){ .fd = d->procs[i].fd,
						      .events = POLLIN };
		if (poll(pfd, d->nprocs + 1, timeout) < 0) {
			if (errno == EINTR)
				continue;
			rfs_log(LOG_ERR, "describer poll: %s", strerror(errno));
			break;
		}
		if (pfd[0].revents & POLLIN) {
			uint64_t v;
			ssize_t n = read(d->wakefd, &v, sizeof(v));
			(void)n;
		}
		for (unsigned i = 0; i < d->nprocs; i++) {
			if (!pfd[i + 1].revents || d->procs[i].fd < 0)
				continue;
			for (;;) {
				int r = rfs_wire_recv(d->procs[i].fd, &m);
				if (r == 0) {
					handle(d, i, &m);
					continue;
				}
				if (r != -EAGAIN) {
					if (r != -EPIPE)
						rfs_log(LOG_ERR, "describer "
							"pid %ld: %s",
							(long)d->procs[i].pid,
							rfs_strerror(r));
					proc_died(d, i);
				}
				break;
			}
		}
	}
out:
	free(pfd);
	return NULL;
}

/* ---- the face (describer.h) ------------------------------------------- */

int rfs_describer_new(const struct rfs_describer_config *cfg,
		      rfs_store *store, struct rfs_stats *stats,
		      rfs_describer **out)
{
	struct rfs_describer *d = calloc(1, sizeof(*d));
	int rc = -ENOMEM;

	if (!d)
		return -ENOMEM;
	d->cfg = *cfg;
	if (d->cfg.timeout < 1)
		d->cfg.timeout = 1;
	d->store = store;
	d->stats = stats;
	d->stamp = rfs_describer_stamp();
	d->nprocs = cfg->procs ? cfg->procs : 1;
	d->procs = calloc(d->nprocs, sizeof(*d->procs));
	d->wakefd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	pthread_mutex_init(&d->lock, NULL);
	pthread_cond_init(&d->cv, NULL);
	if (!d->procs)
		goto fail;
	if (d->wakefd < 0) {
		rc = -errno;
		goto fail;
	}
	for (unsigned i = 0; i < d->nprocs; i++)
		d->procs[i].fd = -1;
	if ((rc = -pthread_create(&d->manager, NULL, manager_main, d)) < 0)
		goto fail;
	pthread_mutex_lock(&d->lock);
	while (!d->started)
		pthread_cond_wait(&d->cv, &d->lock);
	rc = d->start_rc;
	pthread_mutex_unlock(&d->lock);
	if (rc < 0) {
		rfs_describer_free(d);
		return rc;
	}
	*out = d;
	return 0;
fail:
	if (d->wakefd >= 0)
		close(d->wakefd);
	pthread_cond_destroy(&d->cv);
	pthread_mutex_destroy(&d->lock);
	free(d->procs);
	free(d);
	return rc;
}

int rfs_describer_lookup(rfs_describer *d, const rfs_key *key,
			 const struct rfs_src_id *src, const char *canonical,
			 uint64_t *size)
{
	pthread_mutex_lock(&d->lock);
	struct dentry *e = find(d, key);
	/* the key material too, as the store compares it */
	int done = e && e->state == D_DONE && e->src.dev == src->dev &&
		   e->src.ino == src->ino && e->src.size == src->size &&
		   e->src.mtime_ns == src->mtime_ns &&
		   !strcmp(e->canonical, canonical);
	if (done)
		*size = e->size;
	pthread_mutex_unlock(&d->lock);
	if (done)
		return 0;
	return rfs_store_describe_get(d->store, key, src, canonical, d->stamp,
				      size, NULL, NULL) == 0 ? 0 : -ENOENT;
}

int rfs_describer_request(rfs_describer *d,
			  const struct rfs_describe_spec *spec,
			  rfs_describe_done_fn fn, void *arg, uint64_t *size)
{
	struct dwaiter *w = malloc(sizeof(*w));
	struct dentry *e;
	int src_fd = spec->src_fd, rc = 0;

	pthread_mutex_lock(&d->lock);
	if (!w || d->stopping) {
		rc = w ? -RFS_E_SHUTDOWN : -ENOMEM;
		goto out;
	}
	w->fn = fn;
	w->arg = arg;
	e = find(d, &spec->key);
	if (e && e->state == D_FAILED && mono() - e->t_failed <
	    d->cfg.retry_after) {
		rc = e->rc;
		goto out;
	}
	if (e && e->state == D_DONE) {
		*size = e->size;
		rc = 1;
		goto out;
	}
	if (e && e->state == D_FAILED) {
		/* forgotten: described again (note 2) */
		unlink_entry(d, e);
		entry_free(e);
		e = NULL;
	}
	if (!e) {
		if (!(e = calloc(1, sizeof(*e))) ||
		    !(e->source_rel = strdup(spec->source_rel)) ||
		    !(e->canonical = strdup(spec->canonical))) {
			if (e) {
				e->src_fd = -1;
				entry_free(e);
			}
			rc = -ENOMEM;
			goto out;
		}
		e->key = spec->key;
		e->src = spec->src;
		e->src_fd = src_fd;
		src_fd = -1;
		e->id = ++d->next_id;
		e->state = D_QUEUED;
		e->slot = -1;
		e->t_queued = mono();
		e->hnext = d->table[bucket(&e->key)];
		d->table[bucket(&e->key)] = e;
		enqueue(d, e);
		wake(d);
	}
	w->next = e->waiters;
	e->waiters = w;
	w = NULL;
out:
	pthread_mutex_unlock(&d->lock);
	free(w);
	if (src_fd >= 0)
		close(src_fd);
	return rc;
}

int rfs_describer_cancel_waiter(rfs_describer *d, const rfs_key *key,
				void *arg)
{
	int found = 0;

	pthread_mutex_lock(&d->lock);
	struct dentry *e = find(d, key);
	for (struct dwaiter **pp = e ? &e->waiters : NULL; pp && *pp;
	     pp = &(*pp)->next) {
		if ((*pp)->arg == arg) {
			struct dwaiter *w = *pp;
			*pp = w->next;
			free(w);
			found = 1;
			break;
		}
	}
	pthread_mutex_unlock(&d->lock);
	return found;
}

void rfs_describer_free(rfs_describer *d)
{
	struct dwaiter *ws = NULL;
	struct timespec until;

	if (!d)
		return;
	pthread_mutex_lock(&d->lock);
	d->stopping = 1;
	pthread_mutex_unlock(&d->lock);
	wake(d);
	pthread_join(d->manager, NULL);
	for (unsigned i = 0; i < d->nprocs; i++) {
		struct dproc *p = &d->procs[i];
		if (!p->pid)
			continue;
		kill(p->pid, SIGKILL); /* a describe is worth nothing now */
		close(p->fd);
		waitpid(p->pid, NULL, 0);
		rfs_store_scratch_clean(p->scratch);
	}
	/* every queued or running describe fails; DONE ones are the
	 * store's until their records are written */
	pthread_mutex_lock(&d->lock);
	for (unsigned b = 0; b < NBUCKETS; b++) {
		struct dentry **pp = &d->table[b];
		while (*pp) {
			struct dentry *e = *pp;
			if (e->state == D_DONE) {
				pp = &e->hnext;
				continue;
			}
			*pp = e->hnext;
			for (struct dwaiter *w = e->waiters, *n; w; w = n) {
				n = w->next;
				w->next = ws;
				ws = w;
			}
			entry_free(e);
		}
	}
	d->qhead = d->qtail = NULL;
	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += PUT_WAIT_S;
	while (d->puts && pthread_cond_timedwait(&d->cv, &d->lock,
						 &until) == 0)
		;
	int leak = d->puts != 0;
	pthread_mutex_unlock(&d->lock);
	notify(ws, -RFS_E_SHUTDOWN, 0);
	if (leak) {
		/* the committer still holds cookies pointing here */
		rfs_log(LOG_WARNING, "describer: %u records still on their way "
			"to the store after %d s", d->puts, PUT_WAIT_S);
		return;
	}
	close(d->wakefd);
	pthread_cond_destroy(&d->cv);
	pthread_mutex_destroy(&d->lock);
	free(d->procs);
	free(d);
}
