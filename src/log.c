/* log.c - the one logging call: where lines go, how they look, and whose
 * they are (see log.h).
 *
 * The core of logging, in the common library: it needs nothing beyond libc
 * and threads, so the cache store can log without linking libfuse or GDAL.
 * Their messages reach it through the adapters in log_adapt.c; the ring
 * of a mount's last lines and the reader of the workers' lines are in
 * log_ring.c.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "rasterfs/log.h"

#define LINE_MAX_TEXT 2048

static enum rfs_log_sink log_sink = RFS_LOG_STDERR;
static int log_max = LOG_INFO;
static const char *log_tag = "rasterfs";
static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;
/* RFS_LOG_FILE, under log_lock */
static int log_fd = -1;
static char log_path[PATH_MAX];
static uint64_t log_cap, log_size;

static atomic_int log_tee;     /* also to stderr (rfs_log_also_stderr) */
static __thread uid_t log_owner = RFS_LOG_NOBODY;
static _Atomic uint64_t log_job;

static const char *level_name(int level)
{
	static const char *const names[] = {
		"emerg", "alert", "crit", "error",
		"warning", "notice", "info", "debug",
	};
	return level >= 0 && level <= LOG_DEBUG ? names[level] : "log";
}

/* Over cap: path -> path.1, and a new path.  log_lock held.  A failure
 * keeps the current file (a log that cannot rotate still logs). */
static void file_rotate(void)
{
	char old[PATH_MAX + 2];
	int fd;

	if (snprintf(old, sizeof(old), "%s.1", log_path) >= (int)sizeof(old) ||
	    rename(log_path, old) < 0)
		return;
	fd = open(log_path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
	if (fd < 0)
		return;
	close(log_fd);
	log_fd = fd;
	log_size = 0;
}

/* The stderr form: "HH:MM:SS.mmm tag[pid] level: text\n".  Returns its
 * length (at most len, the newline kept). */
static size_t stderr_form(char *buf, size_t len, const struct timespec *ts,
			  const struct tm *tm, int level, const char *line)
{
	int n = snprintf(buf, len, "%02d:%02d:%02d.%03ld %s[%d] %s: %s\n",
			 tm->tm_hour, tm->tm_min, tm->tm_sec,
			 ts->tv_nsec / 1000000, log_tag, (int)getpid(),
			 level_name(level), line);

	if (n < 0)
		return 0;
	if ((size_t)n >= len) {
		n = (int)len - 1;
		buf[n - 1] = '\n';
	}
	return (size_t)n;
}

/* One write per line, so lines of concurrent threads (and of the workers
 * sharing a pipe) never interleave mid-line. */
static void emit(int level, const char *line)
{
	struct timespec ts;
	struct tm tm;
	char buf[LINE_MAX_TEXT + 256];
	size_t n;
	int fd = STDERR_FILENO;

	clock_gettime(CLOCK_REALTIME, &ts);
	localtime_r(&ts.tv_sec, &tm);
	if (atomic_load(&log_tee) && log_sink != RFS_LOG_STDERR &&
	    log_sink != RFS_LOG_DAEMON) {
		n = stderr_form(buf, sizeof(buf), &ts, &tm, level, line);
		ssize_t w = write(STDERR_FILENO, buf, n);
		(void)w;
	}
	switch (log_sink) {
	case RFS_LOG_SYSLOG:
		syslog(level, "%s", line);
		return;
	case RFS_LOG_DAEMON: {
		int k = snprintf(buf, sizeof(buf), "<%d>%d %llu %s\n", level,
				 (int)getpid(), (unsigned long long)log_job,
				 line);
		n = k < 0 ? 0 : (size_t)k < sizeof(buf) ? (size_t)k :
		    sizeof(buf) - 1;
		if (n)
			buf[n - 1] = '\n';
		break;
	}
	case RFS_LOG_FILE: {
		int k = snprintf(buf, sizeof(buf),
				 "%04d-%02d-%02d %02d:%02d:%02d.%03ld %s[%d] "
				 "%s: %s\n", tm.tm_year + 1900, tm.tm_mon + 1,
				 tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
				 ts.tv_nsec / 1000000, log_tag, (int)getpid(),
				 level_name(level), line);
		n = k < 0 ? 0 : (size_t)k < sizeof(buf) ? (size_t)k :
		    sizeof(buf) - 1;
		if (n)
			buf[n - 1] = '\n';
		break;
	}
	default:
		n = stderr_form(buf, sizeof(buf), &ts, &tm, level, line);
	}
	pthread_mutex_lock(&log_lock);
	if (log_sink == RFS_LOG_FILE && log_fd >= 0)
		fd = log_fd;
	ssize_t w = write(fd, buf, n);
	if (fd == log_fd && w > 0) {
		log_size += (uint64_t)w;
		if (log_cap && log_size > log_cap)
			file_rotate();
	}
	pthread_mutex_unlock(&log_lock);
}

/* Format, keep in the ring, send to the sink.  owners[0..n): the line's
 * (log.h); RFS_LOG_NOBODY alone: everyone's. */
static void log_line(int level, const uid_t *owners, unsigned n,
		     const char *fmt, va_list ap)
{
	static const uid_t private = RFS_LOG_PRIVATE;
	char line[LINE_MAX_TEXT];
	int saved = errno;

	if (level > log_max)
		goto out;
	vsnprintf(line, sizeof(line), fmt, ap);
	/* One entry per line in the ring and in a worker's pipe: a
	 * multi-line message (GDAL's, sometimes) becomes one line. */
	for (char *p = line; *p; p++)
		if (*p == '\n' || *p == '\r')
			*p = ' ';
	/* -d lines say everything about every request: not everyone's. */
	if (level == LOG_DEBUG && n == 1 && owners[0] == RFS_LOG_NOBODY)
		owners = &private;
	rfs_log_ring_add(level, owners, n, line);
	emit(level, line);
out:
	errno = saved;
}

void rfs_log_v(int level, const char *fmt, va_list ap)
{
	uid_t owner = log_owner;

	log_line(level, &owner, 1, fmt, ap);
}

void rfs_log(int level, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	rfs_log_v(level, fmt, ap);
	va_end(ap);
}

void rfs_log_owned(const uid_t *uids, unsigned n, int level,
		   const char *fmt, ...)
{
	static const uid_t private = RFS_LOG_PRIVATE;
	va_list ap;

	va_start(ap, fmt);
	if (n == 0)
		log_line(level, &private, 1, fmt, ap);
	else
		log_line(level, uids, n > RFS_LOG_OWNERS ? RFS_LOG_OWNERS : n,
			 fmt, ap);
	va_end(ap);
}

void rfs_log_set_owner(uid_t uid)
{
	log_owner = uid;
}

void rfs_log_also_stderr(int on)
{
	atomic_store(&log_tee, on);
}

uid_t rfs_log_get_owner(void)
{
	return log_owner;
}

void rfs_log_set_job(uint64_t job)
{
	log_job = job;
}

void rfs_log_open(const char *tag, enum rfs_log_sink sink, int max_level)
{
	log_tag = tag;
	log_sink = sink;
	log_max = max_level;
	if (sink == RFS_LOG_SYSLOG)
		openlog(tag, LOG_PID | LOG_NDELAY, LOG_DAEMON);
}

int rfs_log_open_file(const char *tag, const char *path, uint64_t cap,
		      int max_level)
{
	struct stat st;
	int fd;

	if (strlen(path) >= sizeof(log_path))
		return -ENAMETOOLONG;
	fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
	if (fd < 0)
		return -errno;
	pthread_mutex_lock(&log_lock);
	if (log_fd >= 0)
		close(log_fd);
	log_fd = fd;
	snprintf(log_path, sizeof(log_path), "%s", path);
	log_cap = cap;
	log_size = fstat(fd, &st) == 0 ? (uint64_t)st.st_size : 0;
	log_tag = tag;
	log_max = max_level;
	log_sink = RFS_LOG_FILE;
	pthread_mutex_unlock(&log_lock);
	return 0;
}

int rfs_log_have_syslog(void)
{
	const char *no = getenv("RASTERFS_TEST_NO_SYSLOG");
	struct stat st;

	if (no && strcmp(no, "1") == 0)
		return 0;
	return stat("/dev/log", &st) == 0 && S_ISSOCK(st.st_mode);
}

/* mkdir -p of an absolute path, 0700 for what it makes. */
static int make_dirs(char *path)
{
	for (char *p = path + 1;; p++) {
		if (*p != '/' && *p != '\0')
			continue;
		char c = *p;
		*p = '\0';
		int rc = mkdir(path, 0700) < 0 && errno != EEXIST ? -errno : 0;
		*p = c;
		if (rc < 0)
			return rc;
		if (c == '\0')
			return 0;
	}
}

int rfs_log_state_file(const char *mountpoint, char *buf, size_t len)
{
	const char *xdg = getenv("XDG_STATE_HOME"), *home = getenv("HOME");
	char dir[PATH_MAX], name[NAME_MAX + 1];
	size_t o = 0;
	int n, rc;

	/* XDG: a relative XDG_STATE_HOME is invalid and ignored. */
	if (xdg && xdg[0] == '/')
		n = snprintf(dir, sizeof(dir), "%s/rasterfs", xdg);
	else if (home && home[0] == '/')
		n = snprintf(dir, sizeof(dir), "%s/.local/state/rasterfs",
			     home);
	else
		return -ENOENT;
	if (n < 0 || (size_t)n >= sizeof(dir))
		return -ENAMETOOLONG;
	for (const char *p = mountpoint + (mountpoint[0] == '/'); *p; p++) {
		if (o + 1 >= sizeof(name) - 4)
			return -ENAMETOOLONG;
		name[o++] = *p == '/' ? '-' : *p;
	}
	name[o] = '\0';
	if ((rc = make_dirs(dir)) < 0)
		return rc;
	n = snprintf(buf, len, "%s/%s.log", dir, o ? name : "root");
	return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
}

/* ---- once per key and window ------------------------------------------ */

#define ONCE_SLOTS 512

struct once_slot {
	uint64_t hash;       /* 0: empty */
	double last;         /* when it was last logged */
	unsigned held;       /* held back since */
};

static pthread_mutex_t once_lock = PTHREAD_MUTEX_INITIALIZER;
static struct once_slot once_tab[ONCE_SLOTS];
static double (*once_clock)(void);

static double monotonic(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

void rfs_log_once_clock(double (*clock)(void))
{
	pthread_mutex_lock(&once_lock);
	once_clock = clock;
	memset(once_tab, 0, sizeof(once_tab));
	pthread_mutex_unlock(&once_lock);
}

int rfs_log_once(const char *key, unsigned window, unsigned *repeats)
{
	/* FNV-1a, 64 bit; a slot keeps only the hash: two keys that collide
	 * share a window, which costs a line, never a wrong one. */
	uint64_t h = 14695981039346656037ull;
	int log = 0;

	for (const char *p = key; *p; p++) {
		h ^= (unsigned char)*p;
		h *= 1099511628211ull;
	}
	h |= 1;
	pthread_mutex_lock(&once_lock);
	double now = once_clock ? once_clock() : monotonic();
	struct once_slot *s = &once_tab[(h >> 1) % ONCE_SLOTS];
	if (s->hash != h || now - s->last >= window) {
		if (repeats)
			*repeats = s->hash == h ? s->held : 0;
		s->hash = h;
		s->last = now;
		s->held = 0;
		log = 1;
	} else {
		s->held++;
	}
	pthread_mutex_unlock(&once_lock);
	return log;
}
