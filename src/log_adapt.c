/* log_adapt.c - libfuse's and GDAL's messages into rfs_log.
 *
 * Apart from the core of logging (log.c) because it links libfuse and
 * GDAL: the daemon, its workers and the command line link it; the cache
 * store does not.
 */
#include <stdarg.h>
#include <stdio.h>

#include <cpl_error.h>
#include <fuse_log.h>

#include "rasterfs/log.h"

/* GDAL reports errors per thread; a step wants the text of the last one. */
static __thread char gdal_last[512];

static void fuse_log_handler(enum fuse_log_level level, const char *fmt,
			     va_list ap)
{
	/* libfuse's levels are syslog's. */
	rfs_log_v((int)level, fmt, ap);
}

static void gdal_error_handler(CPLErr cls, CPLErrorNum num, const char *msg)
{
	int level;

	switch (cls) {
	case CE_Debug:
		level = LOG_DEBUG;
		break;
	case CE_Warning:
		level = LOG_WARNING;
		break;
	case CE_None:
		level = LOG_INFO;
		break;
	default:
		snprintf(gdal_last, sizeof(gdal_last), "%s", msg);
		level = LOG_ERR;
		break;
	}
	rfs_log(level, "GDAL%s%d: %s", cls == CE_Debug ? " debug " : " error ",
		(int)num, msg);
}

const char *rfs_log_last_gdal(void)
{
	return gdal_last;
}

void rfs_log_clear_gdal(void)
{
	gdal_last[0] = '\0';
}

void rfs_log_init(const char *tag, enum rfs_log_sink sink, int max_level)
{
	rfs_log_open(tag, sink, max_level);
	fuse_set_log_func(fuse_log_handler);
	CPLSetErrorHandler(gdal_error_handler);
}
