/* log_ring.c - what a mount keeps of its log: the last lines, with their
 * owners, for MOUNT/.rasterfs/log; and the reader of its workers' lines
 * (see log.h).
 *
 * Design notes:
 *  1. The ring is a fixed array of RFS_LOG_RING slots written round; a
 *     slot holds its line's time, level, owners and a copy of its text.
 *     One mutex guards it; it is taken after the logger's callers' locks
 *     (the pool's) and never around a call out, so it cannot deadlock.
 *  2. Whose a line is, is decided when it is logged (log.h): a job's users
 *     are known then, and a later reader needs no table that may have
 *     forgotten the job.
 *  3. Workers write their lines to one pipe shared by all of them; a line
 *     (at most ~2.1 KB) is one write of less than PIPE_BUF bytes, so lines
 *     of two workers never mix.  Each line names its worker and the job it
 *     was running (rfs_log_set_job in the worker), so its owners are that
 *     job's even if the job ended before the line is read.
 *  4. Nothing waits forever: the reader polls with a timeout and, once
 *     asked to stop, drains what the pipe holds and ends, even if a
 *     worker that should be gone still holds the write end.
 *  5. Order: a worker writes its lines before it reports the job's end on
 *     its socket, but the reader is another thread.  The pool calls
 *     rfs_log_capture_sync before it logs a job's end, which waits (at
 *     most 100 ms) until the pipe is empty and the reader idle, so the
 *     worker's lines (GDAL's error, say) come before "job N failed".
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#include "rasterfs/log.h"

/* ---- the ring ---------------------------------------------------------- */

struct ring_line {
	struct timespec t;
	int level;
	unsigned n;                       /* owners[0..n) */
	uid_t owners[RFS_LOG_OWNERS];
	char *text;                       /* NULL: an empty slot */
};

static pthread_mutex_t ring_lock = PTHREAD_MUTEX_INITIALIZER;
static struct ring_line *ring;        /* RFS_LOG_RING slots, or NULL */
static unsigned ring_next;            /* the slot written next */

int rfs_log_ring_open(void)
{
	struct ring_line *r = calloc(RFS_LOG_RING, sizeof(*r));

	if (!r)
		return -ENOMEM;
	pthread_mutex_lock(&ring_lock);
	if (!ring) {
		ring = r;
		r = NULL;
	}
	pthread_mutex_unlock(&ring_lock);
	free(r);
	return 0;
}

void rfs_log_ring_add(int level, const uid_t *owners, unsigned n,
		      const char *text)
{
	char *copy;

	if (!ring || !(copy = strdup(text)))
		return;
	pthread_mutex_lock(&ring_lock);
	struct ring_line *l = &ring[ring_next];
	ring_next = (ring_next + 1) % RFS_LOG_RING;
	free(l->text);
	clock_gettime(CLOCK_REALTIME, &l->t);
	l->level = level;
	l->n = n > RFS_LOG_OWNERS ? RFS_LOG_OWNERS : n;
	memcpy(l->owners, owners, l->n * sizeof(*owners));
	l->text = copy;
	pthread_mutex_unlock(&ring_lock);
}

static int everyones(const struct ring_line *l)
{
	return l->n == 1 && l->owners[0] == RFS_LOG_NOBODY;
}

static int is_private(const struct ring_line *l)
{
	return l->n == 1 && l->owners[0] == RFS_LOG_PRIVATE;
}

static int may_read(const struct ring_line *l, uid_t uid, int all)
{
	if (all || everyones(l))
		return 1;
	for (unsigned i = 0; i < l->n; i++)
		if (l->owners[i] == uid && uid != RFS_LOG_PRIVATE)
			return 1;
	return 0;
}

static const char *level_word(int level)
{
	static const char *const names[] = {
		"emerg", "alert", "crit", "error",
		"warning", "notice", "info", "debug",
	};
	return level >= 0 && level <= LOG_DEBUG ? names[level] : "log";
}

int rfs_log_ring_text(uid_t uid, int all, char **out, size_t *len)
{
	FILE *f = open_memstream(out, len);
	struct tm tm;

	if (!f)
		return -ENOMEM;
	pthread_mutex_lock(&ring_lock);
	for (unsigned i = 0; ring && i < RFS_LOG_RING; i++) {
		const struct ring_line *l = &ring[(ring_next + i) %
						  RFS_LOG_RING];
		if (!l->text || !may_read(l, uid, all))
			continue;
		localtime_r(&l->t.tv_sec, &tm);
		fprintf(f, "%04d-%02d-%02d %02d:%02d:%02d.%03ld %s",
			tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
			tm.tm_hour, tm.tm_min, tm.tm_sec,
			l->t.tv_nsec / 1000000, level_word(l->level));
		if (is_private(l)) {
			fputs(" [private]", f);
		} else if (!everyones(l)) {
			for (unsigned k = 0; k < l->n; k++)
				fprintf(f, "%s%lu", k ? "," : " [uid=",
					(unsigned long)l->owners[k]);
			fputc(']', f);
		}
		fprintf(f, ": %s\n", l->text);
	}
	pthread_mutex_unlock(&ring_lock);
	if (fclose(f) != 0) {
		free(*out);
		*out = NULL;
		return -ENOMEM;
	}
	return 0;
}

/* ---- the workers' lines ----------------------------------------------- */

/* The reader's progress, for rfs_log_capture_sync (note 5). */
static pthread_mutex_t sync_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t sync_cond = PTHREAD_COND_INITIALIZER;
static int cap_busy;                  /* read bytes not yet logged */

static pthread_mutex_t cap_lock = PTHREAD_MUTEX_INITIALIZER;
static rfs_log_owners_fn cap_fn;      /* under cap_lock */
static void *cap_arg;
static int cap_rfd = -1, cap_wfd = -1;
static pthread_t cap_thread;
static int cap_started;
static atomic_int cap_stop;

void rfs_log_capture_owners(rfs_log_owners_fn fn, void *arg)
{
	pthread_mutex_lock(&cap_lock);
	cap_fn = fn;
	cap_arg = arg;
	pthread_mutex_unlock(&cap_lock);
}

void rfs_log_capture_line(const char *line)
{
	uid_t uids[RFS_LOG_OWNERS];
	int level, off = 0;
	long pid;
	unsigned long long job;
	unsigned n = 0;

	/* "<level>pid job text" (log.c, RFS_LOG_DAEMON) */
	if (sscanf(line, "<%d>%ld %llu %n", &level, &pid, &job, &off) != 3 ||
	    off == 0 || level < 0 || level > LOG_DEBUG) {
		rfs_log_owned(NULL, 0, LOG_WARNING, "worker: %s", line);
		return;
	}
	if (job == RFS_LOG_JOB_PRIVATE) {
		/* a describe's: about a source, for no user in particular */
		rfs_log_owned(NULL, 0, level, "worker[%ld] describe: %s", pid,
			      line + off);
		return;
	}
	if (job == 0) {
		/* start-up and confinement: about the worker, not a job */
		uid_t nobody = RFS_LOG_NOBODY;
		rfs_log_owned(&nobody, 1, level, "worker[%ld]: %s", pid,
			      line + off);
		return;
	}
	pthread_mutex_lock(&cap_lock);
	if (cap_fn)
		n = cap_fn(cap_arg, job, uids, RFS_LOG_OWNERS);
	pthread_mutex_unlock(&cap_lock);
	rfs_log_owned(uids, n, level, "worker[%ld] job %llu: %s", pid, job,
		      line + off);
}

static void idle(void)
{
	pthread_mutex_lock(&sync_lock);
	cap_busy = 0;
	pthread_cond_broadcast(&sync_cond);
	pthread_mutex_unlock(&sync_lock);
}

/* Split what arrives into lines; an over-long line is cut, not lost. */
static void *capture_main(void *arg)
{
	char buf[8192];
	size_t have = 0;
	(void)arg;

	rfs_log_set_owner(RFS_LOG_PRIVATE);
	for (;;) {
		struct pollfd pfd = { .fd = cap_rfd, .events = POLLIN };
		int r = poll(&pfd, 1, 250);
		if (r < 0 && errno == EINTR)
			continue;
		if (r == 0) {
			if (atomic_load(&cap_stop))
				break;
			continue;
		}
		pthread_mutex_lock(&sync_lock);
		cap_busy = 1;
		pthread_mutex_unlock(&sync_lock);
		ssize_t n = read(cap_rfd, buf + have, sizeof(buf) - 1 - have);
		if (n < 0 && (errno == EINTR || errno == EAGAIN)) {
			idle();
			continue;
		}
		if (n <= 0)
			break; /* every write end closed */
		have += (size_t)n;
		char *start = buf, *nl;
		while ((nl = memchr(start, '\n', (size_t)(buf + have - start)))) {
			*nl = '\0';
			rfs_log_capture_line(start);
			start = nl + 1;
		}
		have -= (size_t)(start - buf);
		memmove(buf, start, have);
		if (have == sizeof(buf) - 1) {
			buf[have] = '\0';
			rfs_log_capture_line(buf);
			have = 0;
		}
		idle();
	}
	idle();
	if (have) {
		buf[have] = '\0';
		rfs_log_capture_line(buf);
	}
	return NULL;
}

int rfs_log_capture_start(int *wfd)
{
	int p[2], rc;

	if (cap_started) {
		*wfd = cap_wfd;
		return 0;
	}
	if (pipe2(p, O_CLOEXEC) < 0)
		return -errno;
	fcntl(p[0], F_SETFL, O_NONBLOCK);
	cap_rfd = p[0];
	cap_wfd = p[1];
	atomic_store(&cap_stop, 0);
	if ((rc = pthread_create(&cap_thread, NULL, capture_main, NULL))) {
		close(p[0]);
		close(p[1]);
		cap_rfd = cap_wfd = -1;
		return -rc;
	}
	cap_started = 1;
	*wfd = cap_wfd;
	return 0;
}

void rfs_log_capture_sync(void)
{
	struct timespec until;
	int n = 0;

	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_nsec += 100 * 1000000L;
	if (until.tv_nsec >= 1000000000L) {
		until.tv_sec++;
		until.tv_nsec -= 1000000000L;
	}
	/* under sync_lock: rfs_log_capture_stop closes cap_rfd under it */
	pthread_mutex_lock(&sync_lock);
	while (cap_rfd >= 0 &&
	       (cap_busy || (ioctl(cap_rfd, FIONREAD, &n) == 0 && n > 0)) &&
	       pthread_cond_timedwait(&sync_cond, &sync_lock, &until) == 0)
		;
	pthread_mutex_unlock(&sync_lock);
}

void rfs_log_capture_stop(void)
{
	if (!cap_started)
		return;
	close(cap_wfd);
	cap_wfd = -1;
	atomic_store(&cap_stop, 1);
	pthread_join(cap_thread, NULL);
	pthread_mutex_lock(&sync_lock);
	close(cap_rfd);
	cap_rfd = -1;
	pthread_mutex_unlock(&sync_lock);
	cap_started = 0;
}
