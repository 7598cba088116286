/* log.h - the one logging call of rasterfs.
 *
 * Levels are syslog's (LOG_ERR, LOG_WARNING, LOG_NOTICE, LOG_INFO,
 * LOG_DEBUG).  Before rfs_log_open() or rfs_log_init() messages go to
 * stderr.  The daemon logs to stderr when in the foreground (-f) and to
 * syslog once daemonised; worker processes log to their inherited stderr
 * with a "worker[pid]" tag, or to syslog when the daemon does.  Thread safe.
 *
 * Two parts, so that a library can log without linking libfuse or GDAL:
 *  - the core (src/log.c, in the common library with err.c: nothing beyond
 *    libc and threads; the cache store links only it): rfs_log_open,
 *    rfs_log, rfs_log_v;
 *  - the adapters (src/log_adapt.c, linked by the daemon, its workers and
 *    the command line): rfs_log_init() also installs the handlers for
 *    libfuse (fuse_set_log_func) and GDAL (CPLSetErrorHandler), so every
 *    message of the process goes one way, and keeps GDAL's last error.
 * None of these calls fails.
 */
#ifndef RASTERFS_LOG_H
#define RASTERFS_LOG_H

#include <stdarg.h>
#include <syslog.h>

enum rfs_log_sink { RFS_LOG_STDERR, RFS_LOG_SYSLOG };

/* ---- the core (log.c) ------------------------------------------------ */

/* Where lines go from now on.  tag: "rasterfs" or "rasterfs-worker";
 * max_level: messages above it are dropped (LOG_INFO by default,
 * LOG_DEBUG with -d).  Installs no handler for libfuse or GDAL. */
void rfs_log_open(const char *tag, enum rfs_log_sink sink, int max_level);

void rfs_log(int level, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
void rfs_log_v(int level, const char *fmt, va_list ap)
	__attribute__((format(printf, 2, 0)));

/* ---- the adapters (log_adapt.c: links libfuse and GDAL) --------------- */

/* rfs_log_open(), then route libfuse's and GDAL's messages to rfs_log. */
void rfs_log_init(const char *tag, enum rfs_log_sink sink, int max_level);

/* The GDAL error handler installed by rfs_log_init() also stores the last
 * GDAL error message of this thread: rfs_log_last_gdal() returns it ("" if
 * none since rfs_log_clear_gdal()). */
const char *rfs_log_last_gdal(void);
void rfs_log_clear_gdal(void);

#endif
