/* rasterext.c - which files are rasters, by name (rasterext.h): the set of
 * GDAL's raster extensions, the rule with its exceptions, and the daemon's
 * side of the probe process that prints the set.  No GDAL here: the probe
 * process's side is src/rasterext_gdal.c. */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "rasterfs/err.h"
#include "rasterfs/rasterext.h"

extern char **environ;

static int ext_cmp(const void *a, const void *b)
{
	return strcmp(a, b);
}

int rfs_rasterext_parse(const char *text, struct rfs_rasterext *out)
{
	const char *p = text;

	out->n = 0;
	while (*p) {
		char w[RFS_RASTEREXT_LEN];
		size_t l = 0;
		int ok = 1;

		while (*p && isspace((unsigned char)*p))
			p++;
		if (*p == '.')
			p++;
		const char *start = p;
		while (*p && !isspace((unsigned char)*p)) {
			unsigned char c = (unsigned char)*p++;
			if (!isalnum(c) && c != '-' && c != '_')
				ok = 0;
			if (l + 1 < sizeof(w))
				w[l] = (char)tolower(c);
			l++;
		}
		if (!ok || l == 0 || l >= sizeof(w) || p == start)
			continue;
		w[l] = '\0';
		if (rfs_rasterext_has(out, w))
			continue;
		if (out->n == RFS_RASTEREXT_MAX)
			return -E2BIG;
		memcpy(out->ext[out->n++], w, l + 1);
		qsort(out->ext, out->n, sizeof(out->ext[0]), ext_cmp);
	}
	return out->n ? 0 : -EINVAL;
}

bool rfs_rasterext_has(const struct rfs_rasterext *s, const char *ext)
{
	char w[RFS_RASTEREXT_LEN];
	size_t l = strlen(ext);

	if (!s || l == 0 || l >= sizeof(w))
		return false;
	for (size_t i = 0; i <= l; i++)
		w[i] = (char)tolower((unsigned char)ext[i]);
	return bsearch(w, s->ext, s->n, sizeof(s->ext[0]), ext_cmp) != NULL;
}

bool rfs_rasterext_never(const char *ext)
{
	static const char *const never[] = {
		/* sidecars and metadata beside a dataset */
		"xml", "json", "hdr", "lbl", "aux", "ovr", "msk", "rrd", "prj",
		"wld", "tfw", "tifw", "tiffw", "pgw", "pngw", "jgw", "jpgw",
		"jpegw", "gfw", "gifw", "bpw", "bmpw", "j2w", "blw",
		/* mostly documents or vectors */
		"pdf", "dwg", "gpkg", "kml", "kmz", "sqlite",
	};

	for (size_t i = 0; i < sizeof(never) / sizeof(*never); i++)
		if (strcasecmp(ext, never[i]) == 0)
			return true;
	return false;
}

bool rfs_rasterext_match(const struct rfs_rasterext *s, const char *name)
{
	const char *dot = strrchr(name, '.');

	/* ".tif" alone is a hidden file with no extension */
	if (!s || !dot || dot == name || !dot[1])
		return false;
	return !rfs_rasterext_never(dot + 1) && rfs_rasterext_has(s, dot + 1);
}

/* ---- the probe process, the daemon's side ----------------------------- */

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

int rfs_rasterext_probe(const char *exe, double timeout,
			struct rfs_rasterext *out, char *msg, size_t len)
{
	char *const argv[] = { (char *)exe, (char *)RFS_RASTEREXT_ARG, NULL };
	posix_spawn_file_actions_t fa;
	char buf[16384];
	size_t used = 0;
	int p[2], rc, status = 0, timed_out = 0;
	pid_t pid;

	if (pipe2(p, O_CLOEXEC) < 0) {
		snprintf(msg, len, "pipe: %s", strerror(errno));
		return -RFS_E_DRIVERS;
	}
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_addopen(&fa, STDIN_FILENO, "/dev/null",
					 O_RDONLY, 0);
	posix_spawn_file_actions_adddup2(&fa, p[1], STDOUT_FILENO);
	rc = posix_spawn(&pid, exe, &fa, NULL, argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	close(p[1]);
	if (rc != 0) {
		close(p[0]);
		snprintf(msg, len, "cannot start %s %s: %s", exe,
			 RFS_RASTEREXT_ARG, strerror(rc));
		return -RFS_E_DRIVERS;
	}
	/* Bounded: a GDAL that hangs while registering its drivers must not
	 * hang the mount's start. */
	const double deadline = now() + timeout;
	for (;;) {
		struct pollfd pfd = { .fd = p[0], .events = POLLIN };
		double left = deadline - now();
		if (left <= 0) {
			timed_out = 1;
			break;
		}
		int n = poll(&pfd, 1, (int)(left * 1000) + 1);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			continue; /* the deadline decides */
		ssize_t r = read(p[0], buf + used, sizeof(buf) - 1 - used);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		used += (size_t)r;
		if (used == sizeof(buf) - 1)
			break; /* more than any GDAL declares: parse what came */
	}
	close(p[0]);
	buf[used] = '\0';
	if (timed_out)
		kill(pid, SIGKILL);
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	if (timed_out) {
		snprintf(msg, len, "GDAL's drivers were not listed within %.0f "
			 "s (%s %s)", timeout, exe, RFS_RASTEREXT_ARG);
		return -RFS_E_DRIVERS;
	}
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		snprintf(msg, len, "listing GDAL's drivers failed (%s %s: %s "
			 "%d)", exe, RFS_RASTEREXT_ARG,
			 WIFEXITED(status) ? "exit status" : "signal",
			 WIFEXITED(status) ? WEXITSTATUS(status) :
			 WTERMSIG(status));
		return -RFS_E_DRIVERS;
	}
	if (rfs_rasterext_parse(buf, out) < 0) {
		snprintf(msg, len, "GDAL declares no raster file extension "
			 "(%s %s printed '%.60s')", exe, RFS_RASTEREXT_ARG, buf);
		return -RFS_E_DRIVERS;
	}
	return 0;
}
