/* log.h - the one logging call of rasterfs.
 *
 * Levels are syslog's (LOG_ERR, LOG_WARNING, LOG_NOTICE, LOG_INFO,
 * LOG_DEBUG).  Before rfs_log_init() messages go to stderr.  The daemon
 * logs to stderr when in the foreground (-f) and to syslog once daemonised;
 * worker processes log to their inherited stderr with a "worker[pid]" tag,
 * or to syslog when the daemon does.  rfs_log_init() also installs the
 * handler for libfuse (fuse_set_log_func) and for GDAL (CPLSetErrorHandler),
 * so every message of the process goes one way.  Thread safe.
 */
#ifndef RASTERFS_LOG_H
#define RASTERFS_LOG_H

#include <syslog.h>

enum rfs_log_sink { RFS_LOG_STDERR, RFS_LOG_SYSLOG };

/* tag: "rasterfs" or "rasterfs-worker"; max_level: messages above it are
 * dropped (LOG_INFO by default, LOG_DEBUG with -d). */
void rfs_log_init(const char *tag, enum rfs_log_sink sink, int max_level);

void rfs_log(int level, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* The GDAL error handler used by rfs_log_init(); also stores the last GDAL
 * error message of this thread, retrievable with rfs_log_last_gdal(). */
const char *rfs_log_last_gdal(void);
void rfs_log_clear_gdal(void);

#endif
