/* tier.c - the shared tier as the pool's tier (tier.h).
 *
 * Design notes:
 *  1. One item per held job (by job id: a key may get a new job while
 *     its old one is still being published).  States, each transition
 *     made by the function named:
 *
 *       LOOKUP --look()--> FETCHED: copied, handed to the committer
 *         |                  --commit_cb()--> gone (pool: found)
 *         +--look()--> COMPUTING (claim held or none; pool: not found)
 *         +--look()--> WAITING (another node's claim)
 *       WAITING --wait_step()--> FETCHED | COMPUTING | WAITING
 *       COMPUTING --renew()--> COMPUTING      (every lease/3)
 *       COMPUTING --tier_ended(rc 0)--> PUBLISH --publish()--> gone
 *       COMPUTING --tier_ended(rc < 0)--> gone (claim released)
 *
 *  2. Threads: RFS_TIER_THREADS workers take the item that is due first
 *     (item->due, monotonic) and not busy; a waiting item is due again a
 *     poll later, a computing one at its next renewal.  A thread never
 *     holds t->lock while it reads, writes or hashes, and never while it
 *     calls the pool: the pool calls in (lookup, ended) without its own
 *     lock, and the tier calls out (rfs_pool_tier_answer) without its
 *     own, so the two locks are never held together.
 *  3. Only the source's content hash needs the source: the duplicate the
 *     pool gave (the pinned descriptor, pool.c note 10) is read once and
 *     closed.  The hash is the bytes of the key's identity: the read
 *     checks that size and mtime did not move (pkey.h).
 *  4. Waiting for another node: the claim is opened at each look (NFS
 *     close-to-open); its (inode, mtime) unchanged for its whole lease on
 *     our monotonic clock means its holder is gone (shared.h); `wait`
 *     seconds bound the whole wait, and a cancelled job stops it early
 *     (rfs_pool_tier_wanted).
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "rasterfs/err.h"
#include "rasterfs/log.h"
#include "rasterfs/pkey.h"
#include "rasterfs/shared.h"
#include "rasterfs/tier.h"

#define POLL_S 0.5               /* a waiting item looks again */

enum item_state { LOOKUP, WAITING, FETCHED, COMPUTING, PUBLISH };

struct item {
	struct item *next;
	struct rfs_tier *tier;
	uint64_t job_id;
	rfs_key key;
	struct rfs_src_id src;
	int src_fd;                /* until hashed, then -1 */
	char *source_rel;
	char *canonical;
	enum item_state state;
	int busy;                  /* a thread works on it */
	double due;                /* monotonic s */
	int have_meta;             /* meta holds the key material */
	struct rfs_shared_meta meta;
	struct rfs_shared_claim *claim;
	double renewed;
	struct rfs_shared_claim_info seen;
	double seen_at, wait_from;
	char fetched[PATH_MAX];    /* FETCHED: the scratch file */
};

struct rfs_tier {
	struct rfs_tier_config cfg;
	char *source_root;
	rfs_shared *sh;
	rfs_store *store;
	rfs_pool *pool;
	struct rfs_stats *stats;
	pthread_mutex_t lock;
	pthread_cond_t cv;         /* an item is due, or stopping */
	pthread_cond_t idle;       /* an item left, or a thread is free */
	struct item *items;
	int stopping;
	unsigned nthreads;
	pthread_t threads[RFS_TIER_THREADS];
	char scratch[RFS_TIER_THREADS][PATH_MAX];
};

static double mono(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static void item_free(struct item *it)
{
	if (it->src_fd >= 0)
		close(it->src_fd);
	rfs_shared_claim_release(it->claim);
	free(it->source_rel);
	free(it->canonical);
	free(it);
}

/* Take it out of the list and free it.  t->lock held. */
static void item_drop_locked(struct rfs_tier *t, struct item *it)
{
	for (struct item **pp = &t->items; *pp; pp = &(*pp)->next) {
		if (*pp == it) {
			*pp = it->next;
			break;
		}
	}
	item_free(it);
	pthread_cond_broadcast(&t->idle);
}

static void item_drop(struct rfs_tier *t, struct item *it)
{
	pthread_mutex_lock(&t->lock);
	item_drop_locked(t, it);
	pthread_mutex_unlock(&t->lock);
}

/* Done with it for now: due again at due (< 0: only when something
 * happens to it).  t->lock not held. */
static void item_park(struct rfs_tier *t, struct item *it,
		      enum item_state st, double due)
{
	pthread_mutex_lock(&t->lock);
	it->state = st;
	it->due = due;
	it->busy = 0;
	pthread_cond_broadcast(&t->cv);
	pthread_cond_broadcast(&t->idle);
	pthread_mutex_unlock(&t->lock);
}

/* ---- answers to the pool ---------------------------------------------- */

/* Not found here: compute it.  The item stays (COMPUTING) only if the
 * pool still wants it; it then hears how the job ended (tier_ended). */
static void answer_compute(struct rfs_tier *t, struct item *it)
{
	/* parked first: tier_ended() may come before the answer returns */
	double renew = it->claim ? mono() + t->cfg.lease / 3.0 : -1;

	it->renewed = mono();
	pthread_mutex_lock(&t->lock);
	it->state = COMPUTING;
	it->due = -1;
	pthread_mutex_unlock(&t->lock);
	if (!rfs_pool_tier_answer(t->pool, it->job_id, &it->key, 0)) {
		item_drop(t, it); /* cancelled meanwhile: let go of the claim */
		return;
	}
	item_park(t, it, COMPUTING, renew);
}

static void commit_cb(void *arg, int rc)
{
	struct item *it = arg;
	struct rfs_tier *t = it->tier;

	if (rc == 0) {
		rfs_stat_inc(t->stats, shared_hits);
		rfs_log(LOG_INFO, "shared tier: %s%s served from %s (published "
			"by %s)", it->source_rel, it->canonical,
			rfs_shared_dir(t->sh), it->meta.host);
		rfs_pool_tier_answer(t->pool, it->job_id, &it->key, 1);
		item_drop(t, it);
		return;
	}
	rfs_log(LOG_WARNING, "shared tier: %s%s: the copy from %s could not "
		"be committed (%s %s): computing it", it->source_rel,
		it->canonical, rfs_shared_dir(t->sh), rfs_err_name(rc),
		rfs_strerror(rc));
	answer_compute(t, it);
}

/* m's object into the scratch of thread i, then to the committer.
 * Returns 0 (FETCHED: commit_cb answers), or a code (not fetched). */
static int fetch(struct rfs_tier *t, struct item *it, unsigned i)
{
	char hex[RFS_KEY_HEX];
	int fd, rc;

	rfs_key_hex(&it->key, hex);
	snprintf(it->fetched, sizeof(it->fetched), "%s/%s.tif",
		 t->scratch[i], hex);
	fd = open(it->fetched, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC |
		  O_NOFOLLOW, 0600);
	if (fd < 0)
		return -errno;
	rc = rfs_shared_fetch(t->sh, &it->meta, fd);
	if (!rc && fsync(fd) < 0)
		rc = -errno;
	close(fd);
	if (rc < 0) {
		unlink(it->fetched);
		if (rc == -RFS_E_SHARED_CORRUPT)
			rfs_stat_inc(t->stats, shared_corrupt);
		return rc;
	}
	struct rfs_store_meta sm = {
		.src = it->src,
		.canonical = it->canonical,
		.source = it->source_rel,
		.size = it->meta.size,
		.checksum = it->meta.checksum,
	};
	/* parked before the commit: commit_cb may come at once */
	pthread_mutex_lock(&t->lock);
	it->state = FETCHED;
	it->due = -1;
	it->busy = 0;
	pthread_mutex_unlock(&t->lock);
	rc = rfs_store_commit(t->store, &it->key, it->fetched, &sm, commit_cb,
			      it);
	if (rc < 0) {
		unlink(it->fetched);
		pthread_mutex_lock(&t->lock);
		it->busy = 1; /* the caller's again */
		pthread_mutex_unlock(&t->lock);
		return rc;
	}
	return 0;
}

/* Is it in DIR?  0 FETCHED (answered later), 1 not there, or the item
 * was dropped (-1). */
static int try_fetch(struct rfs_tier *t, struct item *it, unsigned i)
{
	struct rfs_shared_meta m = it->meta;
	int rc = rfs_shared_find(t->sh, &m);

	if (rc == -RFS_E_SHARED_CORRUPT)
		rfs_stat_inc(t->stats, shared_corrupt);
	if (rc < 0) {
		if (rc != -ENOENT && rc != -RFS_E_SHARED_CORRUPT)
			rfs_log(LOG_WARNING, "shared tier %s: %s%s: %s %s",
				rfs_shared_dir(t->sh), it->source_rel,
				it->canonical, rfs_err_name(-RFS_E_SHARED),
				rfs_strerror(rc));
		return 1;
	}
	it->meta = m;
	if ((rc = fetch(t, it, i)) == 0)
		return 0;
	if (rc != -ENOENT && rc != -RFS_E_SHARED_CORRUPT)
		rfs_log(LOG_WARNING, "shared tier %s: %s%s: cannot copy it "
			"(%s %s): computing it", rfs_shared_dir(t->sh),
			it->source_rel, it->canonical, rfs_err_name(rc),
			rfs_strerror(rc));
	return 1;
}

/* ---- the steps (note 1) ----------------------------------------------- */

/* The content hash (note 3) and the portable key into it->meta.
 * Returns 0 or a code (the tier is skipped for this job). */
static int key_material(struct rfs_tier *t, struct item *it)
{
	unsigned char content[RFS_PKEY_CONTENT];
	int rc = rfs_store_content_get(t->store, &it->src, content);

	if (rc == -ENOENT) {
		uint64_t bytes = 0;
		double t0 = mono();
		rc = rfs_pkey_content_fd(it->src_fd, &it->src, content, &bytes);
		if (rc < 0)
			return rc;
		double dt = mono() - t0;
		rfs_stat_inc(t->stats, content_hashes);
		rfs_log(LOG_INFO, "content hash of %s: %llu bytes in %.3f s "
			"(%.0f MB/s)", it->source_rel, (unsigned long long)bytes,
			dt, dt > 0 ? (double)bytes / dt / 1e6 : 0.0);
		char abs[PATH_MAX];
		int n = t->source_root ? snprintf(abs, sizeof(abs), "%s/%s",
						  t->source_root,
						  it->source_rel) : -1;
		rfs_store_content_put(t->store, &it->src, content,
				      n > 0 && (size_t)n < sizeof(abs) ?
				      abs : NULL);
	} else if (rc < 0) {
		return rc;
	}
	close(it->src_fd);
	it->src_fd = -1;
	rfs_shared_meta_init(&it->meta, content, rfs_pkey_versions(),
			     it->canonical);
	snprintf(it->meta.source, sizeof(it->meta.source), "%s",
		 it->source_rel);
	it->have_meta = 1;
	return 0;
}

/* Claim it, or see who holds it.  1: ours now (or claims are off), 0:
 * another's (it->seen), <0: an error (compute without a claim). */
static int claim(struct rfs_tier *t, struct item *it)
{
	for (int tries = 0; tries < 3; tries++) {
		int rc = rfs_shared_claim_take(t->sh, &it->meta.pkey,
					       t->cfg.lease, &it->claim);
		if (rc == 0)
			return 1;
		if (rc != -EEXIST)
			return rc;
		rc = rfs_shared_claim_peek(t->sh, &it->meta.pkey, &it->seen);
		if (rc == 0) {
			it->seen_at = mono();
			return 0;
		}
		if (rc != -ENOENT)
			return rc;
		/* released between the two: try again */
	}
	return -EAGAIN;
}

static void look(struct rfs_tier *t, struct item *it, unsigned i)
{
	int rc = key_material(t, it);

	if (rc < 0) {
		rfs_log(LOG_WARNING, "shared tier: %s%s: no content hash (%s "
			"%s): computed without the shared tier",
			it->source_rel, it->canonical, rfs_err_name(rc),
			rfs_strerror(rc));
		answer_compute(t, it);
		return;
	}
	if (try_fetch(t, it, i) == 0)
		return;
	rfs_stat_inc(t->stats, shared_misses);
	if (!t->cfg.lease) {
		answer_compute(t, it);
		return;
	}
	rc = claim(t, it);
	if (rc == 0 && t->cfg.wait) {
		char hex[RFS_KEY_HEX];
		rfs_key_hex(&it->meta.pkey, hex);
		rfs_log(LOG_INFO, "shared tier: %s%s (%s) is claimed by %s pid "
			"%ld: waiting for its object (at most %u s)",
			it->source_rel, it->canonical, hex, it->seen.host,
			it->seen.pid, t->cfg.wait);
		it->wait_from = mono();
		item_park(t, it, WAITING, mono() + POLL_S);
		return;
	}
	if (rc < 0)
		rfs_log(LOG_WARNING, "shared tier %s: %s cannot claim %s%s "
			"(%s): computing it unclaimed", rfs_shared_dir(t->sh),
			rfs_err_name(-RFS_E_SHARED), it->source_rel,
			it->canonical, rfs_strerror(rc));
	answer_compute(t, it);
}

static void wait_step(struct rfs_tier *t, struct item *it, unsigned i)
{
	struct rfs_shared_claim_info now;
	double tnow = mono();
	int rc;

	if (!rfs_pool_tier_wanted(t->pool, it->job_id, &it->key)) {
		item_drop(t, it);
		return;
	}
	if (try_fetch(t, it, i) == 0)
		return;
	rc = rfs_shared_claim_peek(t->sh, &it->meta.pkey, &now);
	if (rc == -ENOENT) {
		/* its holder gave up (failed, cancelled) without an object */
		if ((rc = claim(t, it)) != 0) {
			answer_compute(t, it);
			return;
		}
	} else if (rc == 0 && (now.ino != it->seen.ino ||
			       now.mtime_ns != it->seen.mtime_ns)) {
		it->seen = now; /* renewed, or a new holder */
		it->seen_at = tnow;
	} else if (rc == 0 && tnow - it->seen_at >= it->seen.lease) {
		rc = rfs_shared_claim_takeover(t->sh, &it->meta.pkey,
					       &it->seen, t->cfg.lease,
					       &it->claim);
		if (rc == 0) {
			answer_compute(t, it);
			return;
		}
		if (rc != -EAGAIN) {
			answer_compute(t, it);
			return;
		}
	}
	if (tnow - it->wait_from >= t->cfg.wait) {
		rfs_log(LOG_NOTICE, "shared tier: %s%s: waited %u s (wait) "
			"for another node's claim: computing it too",
			it->source_rel, it->canonical, t->cfg.wait);
		answer_compute(t, it);
		return;
	}
	item_park(t, it, WAITING, tnow + POLL_S);
}

static void renew(struct rfs_tier *t, struct item *it)
{
	if (it->claim && rfs_shared_claim_renew(it->claim) == -ENOENT) {
		rfs_log(LOG_WARNING, "shared tier: the claim of %s%s was taken "
			"over (not renewed for its lease: was this process "
			"stopped?); computing it anyway", it->source_rel,
			it->canonical);
		rfs_shared_claim_release(it->claim);
		it->claim = NULL;
	}
	it->renewed = mono();
	item_park(t, it, COMPUTING, it->claim ? it->renewed +
		  t->cfg.lease / 3.0 : -1);
}

static void publish(struct rfs_tier *t, struct item *it)
{
	struct rfs_store_entry e;
	int fd, rc, published = 0;

	rc = rfs_store_lookup(t->store, &it->key, &it->src, it->canonical, &e);
	if (rc == 0 && (fd = rfs_store_open_object(t->store, &it->key)) >= 0) {
		it->meta.size = e.size;
		it->meta.checksum = e.checksum;
		rc = rfs_shared_publish(t->sh, &it->meta, fd, &published);
		close(fd);
	} else if (rc == 0) {
		rc = fd; /* evicted already */
	}
	if (rc < 0)
		rfs_log(LOG_WARNING, "shared tier %s: cannot publish %s%s: "
			"%s %s", rfs_shared_dir(t->sh), it->source_rel,
			it->canonical, rfs_err_name(rc), rfs_strerror(rc));
	else if (published)
		rfs_stat_inc(t->stats, shared_published);
	if (published)
		rfs_log(LOG_INFO, "shared tier: published %s%s (%llu bytes) "
			"to %s", it->source_rel, it->canonical,
			(unsigned long long)it->meta.size,
			rfs_shared_dir(t->sh));
	if (t->cfg.on_publish)
		t->cfg.on_publish(t->cfg.arg, &it->key, rc);
	item_drop(t, it);
}

/* ---- the threads (note 2) --------------------------------------------- */

struct thread_arg {
	struct rfs_tier *t;
	unsigned i;
};

static void *tier_main(void *arg)
{
	struct thread_arg *ta = arg;
	struct rfs_tier *t = ta->t;
	unsigned i = ta->i;

	free(ta);
	rfs_log_set_owner(RFS_LOG_PRIVATE);
	pthread_mutex_lock(&t->lock);
	while (!t->stopping) {
		struct item *best = NULL;
		double now = mono();
		for (struct item *it = t->items; it; it = it->next)
			if (!it->busy && it->due >= 0 &&
			    (!best || it->due < best->due))
				best = it;
		if (!best || best->due > now) {
			if (!best) {
				pthread_cond_wait(&t->cv, &t->lock);
			} else {
				struct timespec ts;
				double when = best->due - now;
				clock_gettime(CLOCK_REALTIME, &ts);
				ts.tv_sec += (time_t)when;
				ts.tv_nsec += (long)((when - (double)(time_t)when)
						     * 1e9);
				if (ts.tv_nsec >= 1000000000L) {
					ts.tv_sec++;
					ts.tv_nsec -= 1000000000L;
				}
				pthread_cond_timedwait(&t->cv, &t->lock, &ts);
			}
			continue;
		}
		best->busy = 1;
		best->due = -1;
		enum item_state st = best->state;
		pthread_mutex_unlock(&t->lock);
		switch (st) {
		case LOOKUP:
			look(t, best, i);
			break;
		case WAITING:
			wait_step(t, best, i);
			break;
		case COMPUTING:
			renew(t, best);
			break;
		case PUBLISH:
			publish(t, best);
			break;
		case FETCHED:
			break; /* never due: the committer answers */
		}
		pthread_mutex_lock(&t->lock);
	}
	pthread_mutex_unlock(&t->lock);
	return NULL;
}

/* ---- the pool's tier (pool.h) ----------------------------------------- */

static int tier_lookup(void *arg, const struct rfs_tier_req *req)
{
	struct rfs_tier *t = arg;
	struct item *it = calloc(1, sizeof(*it));

	if (!it)
		return -ENOMEM;
	it->tier = t;
	it->job_id = req->job_id;
	it->key = req->key;
	it->src = req->src;
	it->src_fd = -1;
	it->source_rel = strdup(req->source_rel);
	it->canonical = strdup(req->canonical);
	if (!it->source_rel || !it->canonical) {
		item_free(it);
		return -ENOMEM;
	}
	pthread_mutex_lock(&t->lock);
	if (t->stopping) {
		pthread_mutex_unlock(&t->lock);
		item_free(it);
		return -RFS_E_SHUTDOWN;
	}
	it->src_fd = req->src_fd; /* ours from here on */
	it->state = LOOKUP;
	it->due = mono();
	it->next = t->items;
	t->items = it;
	pthread_cond_signal(&t->cv);
	pthread_mutex_unlock(&t->lock);
	return 0;
}

static void tier_ended(void *arg, uint64_t job_id, const rfs_key *key, int rc)
{
	struct rfs_tier *t = arg;
	(void)key;

	pthread_mutex_lock(&t->lock);
	struct item *it = t->items;
	while (it && it->job_id != job_id)
		it = it->next;
	if (!it) {
		pthread_mutex_unlock(&t->lock);
		return;
	}
	/* A thread may be renewing it: the next park hands it over.  Mark
	 * what comes next; a busy renewal parks it as COMPUTING, so wait. */
	while (it->busy)
		pthread_cond_wait(&t->idle, &t->lock);
	if (rc == 0 && !t->cfg.no_publish && !t->stopping && it->have_meta) {
		it->state = PUBLISH;
		it->due = mono();
		pthread_cond_signal(&t->cv);
	} else {
		item_drop_locked(t, it);
	}
	pthread_mutex_unlock(&t->lock);
}

static const struct rfs_pool_tier tier_ops = {
	.lookup = tier_lookup,
	.ended = tier_ended,
};

int rfs_tier_new(const struct rfs_tier_config *cfg, rfs_store *store,
		 rfs_pool *pool, struct rfs_stats *stats, rfs_tier **out)
{
	struct rfs_tier *t = calloc(1, sizeof(*t));
	int rc;

	if (!t)
		return -ENOMEM;
	t->cfg = *cfg;
	if (t->cfg.lease > 3600)
		t->cfg.lease = 3600;
	t->store = store;
	t->pool = pool;
	t->stats = stats;
	pthread_mutex_init(&t->lock, NULL);
	pthread_cond_init(&t->cv, NULL);
	pthread_cond_init(&t->idle, NULL);
	if (cfg->source_root && !(t->source_root = strdup(cfg->source_root))) {
		rc = -ENOMEM;
		goto fail;
	}
	if ((rc = rfs_shared_open(cfg->dir, cfg->mode ? cfg->mode : 0700,
				  &t->sh)) < 0)
		goto fail;
	for (unsigned i = 0; i < RFS_TIER_THREADS; i++)
		if ((rc = rfs_store_scratch_dir(store, RFS_TIER_SLOT + i,
						t->scratch[i],
						sizeof(t->scratch[i]))) < 0)
			goto fail;
	for (; t->nthreads < RFS_TIER_THREADS; t->nthreads++) {
		struct thread_arg *ta = malloc(sizeof(*ta));
		if (!ta) {
			rc = -ENOMEM;
			goto fail;
		}
		ta->t = t;
		ta->i = t->nthreads;
		if ((rc = -pthread_create(&t->threads[t->nthreads], NULL,
					  tier_main, ta)) < 0) {
			free(ta);
			goto fail;
		}
	}
	rfs_pool_set_tier(pool, &tier_ops, t);
	rfs_log(LOG_INFO, "shared tier %s: %s; claims %s", rfs_shared_dir(t->sh),
		rfs_pkey_versions(), t->cfg.lease ? "on" : "off");
	*out = t;
	return 0;
fail:
	rfs_tier_stop(t);
	rfs_tier_free(t);
	return rc;
}

const char *rfs_tier_dir(const rfs_tier *t)
{
	return rfs_shared_dir(t->sh);
}

int rfs_tier_drain(rfs_tier *t, double timeout)
{
	double until = mono() + timeout;
	int rc = 0;

	pthread_mutex_lock(&t->lock);
	for (;;) {
		int busy = 0;
		for (struct item *it = t->items; it; it = it->next)
			busy |= it->state == PUBLISH || it->state == FETCHED ||
				it->state == LOOKUP || it->busy;
		if (!busy)
			break;
		if (mono() >= until) {
			rc = -ETIMEDOUT;
			break;
		}
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_nsec += 100000000L;
		if (ts.tv_nsec >= 1000000000L) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000L;
		}
		pthread_cond_timedwait(&t->idle, &t->lock, &ts);
	}
	pthread_mutex_unlock(&t->lock);
	return rc;
}

void rfs_tier_stop(rfs_tier *t)
{
	if (!t)
		return;
	pthread_mutex_lock(&t->lock);
	if (t->stopping) {
		pthread_mutex_unlock(&t->lock);
		return;
	}
	t->stopping = 1;
	pthread_cond_broadcast(&t->cv);
	pthread_mutex_unlock(&t->lock);
	for (unsigned i = 0; i < t->nthreads; i++)
		pthread_join(t->threads[i], NULL);
	t->nthreads = 0;
	/* Fetches with the committer answer the pool, which is still there;
	 * what was not looked at or published is dropped (the pool ends the
	 * held jobs; a computed output stays in the store, unpublished). */
	pthread_mutex_lock(&t->lock);
	for (;;) {
		int fetching = 0;
		struct item **pp = &t->items;
		while (*pp) {
			struct item *it = *pp;
			if (it->state == FETCHED) {
				fetching = 1;
				pp = &it->next;
			} else if (it->state == COMPUTING) {
				pp = &it->next; /* the pool's end releases it */
			} else {
				*pp = it->next;
				item_free(it);
			}
		}
		if (!fetching)
			break;
		pthread_cond_wait(&t->idle, &t->lock);
	}
	pthread_mutex_unlock(&t->lock);
}

void rfs_tier_free(rfs_tier *t)
{
	if (!t)
		return;
	rfs_tier_stop(t);
	/* the pool is gone: its ends have released what they held */
	while (t->items) {
		struct item *it = t->items;
		t->items = it->next;
		item_free(it);
	}
	rfs_shared_close(t->sh);
	pthread_cond_destroy(&t->idle);
	pthread_cond_destroy(&t->cv);
	pthread_mutex_destroy(&t->lock);
	free(t->source_root);
	free(t);
}
