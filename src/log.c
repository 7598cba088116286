/* log.c - the one logging call: where lines go, and how they look.
 *
 * The core of logging, in the common library: it needs nothing beyond libc
 * and threads, so the cache store can log without linking libfuse or GDAL.
 * Their messages reach it through the adapters in log_adapt.c.
 */
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "rasterfs/log.h"

static enum rfs_log_sink log_sink = RFS_LOG_STDERR;
static int log_max = LOG_INFO;
static const char *log_tag = "rasterfs";
static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;

static const char *level_name(int level)
{
	static const char *const names[] = {
		"emerg", "alert", "crit", "error",
		"warning", "notice", "info", "debug",
	};
	return level >= 0 && level <= LOG_DEBUG ? names[level] : "log";
}

void rfs_log_v(int level, const char *fmt, va_list ap)
{
	char line[2048];
	int saved = errno;

	if (level > log_max)
		goto out;
	vsnprintf(line, sizeof(line), fmt, ap);
	if (log_sink == RFS_LOG_SYSLOG) {
		syslog(level, "%s", line);
		goto out;
	}
	/* One write per line so lines of concurrent threads and of workers
	 * sharing this stderr never interleave mid-line. */
	struct timespec ts;
	struct tm tm;
	char buf[2300];
	clock_gettime(CLOCK_REALTIME, &ts);
	localtime_r(&ts.tv_sec, &tm);
	int n = snprintf(buf, sizeof(buf),
			 "%02d:%02d:%02d.%03ld %s[%d] %s: %s\n",
			 tm.tm_hour, tm.tm_min, tm.tm_sec, ts.tv_nsec / 1000000,
			 log_tag, (int)getpid(), level_name(level), line);
	if (n > (int)sizeof(buf))
		n = sizeof(buf);
	pthread_mutex_lock(&log_lock);
	ssize_t w = write(STDERR_FILENO, buf, (size_t)n);
	(void)w;
	pthread_mutex_unlock(&log_lock);
out:
	errno = saved;
}

void rfs_log(int level, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	rfs_log_v(level, fmt, ap);
	va_end(ap);
}

void rfs_log_open(const char *tag, enum rfs_log_sink sink, int max_level)
{
	log_tag = tag;
	log_sink = sink;
	log_max = max_level;
	if (sink == RFS_LOG_SYSLOG)
		openlog(tag, LOG_PID | LOG_NDELAY, LOG_DAEMON);
}
