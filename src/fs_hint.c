/* fs_hint.c - a read-only mount with a way forward: when a program tries
 * to write beside a virtual output (X.ovr: gdaladdo; X.aux.xml: gdalinfo
 * -hist, QGIS; X.msk), the write fails with EROFS as before and the log
 * says what to use instead (RFS-E107), once per name per minute.
 *
 * Design notes:
 *  1. What reaches the daemon (measured with strace and -d on Linux 6.x,
 *     GDAL 3.6).  The mount is "ro", so the kernel refuses a create by
 *     itself: open("X.ovr", O_RDWR|O_CREAT|O_TRUNC) sends no CREATE, only
 *     a LOOKUP of X.ovr (atomic_open without O_CREAT; its negative answer
 *     becomes EROFS), and nothing at all while the kernel keeps a negative
 *     entry for X.ovr from an earlier lookup.  gdaladdo stats X.ovr right
 *     before it creates it; gdalinfo -hist opens X.aux.xml O_WRONLY|O_CREAT
 *     with no stat before (GDAL read the directory listing).  So the lookup
 *     is the one place to see a write, and the names programs write beside
 *     an output are answered "no such file" with no negative caching
 *     (timeout 0): every lookup of them reaches us, a few microseconds.
 *     A png output's X.aux.xml exists (fs_sidecar.c): its entry is not
 *     kept either (fs.c), so a write to it reaches us the same way.
 *  2. A lookup does not say why it is made.  The requesting thread waits
 *     in its system call while we answer, so /proc/TID/syscall names the
 *     call and its arguments: open, openat, creat, mknod(at) that create or
 *     write (O_CREAT, O_TRUNC, O_WRONLY, O_RDWR) are writes; a stat, an
 *     access or a read-only open are probes and get no hint.  The file is
 *     readable for the daemon's own user's processes (root: all); a lookup
 *     by another user's (allow_other) gets no hint.
 *  3. Once per name per minute: a table of HINT_SLOTS names (hashes), the
 *     oldest replaced, so a tool retrying in a loop fills no log.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <xxhash.h>

#include "fs_int.h"
#include "rasterfs/err.h"
#include "rasterfs/log.h"

#define HINT_SLOTS 64
#define HINT_EVERY 60.0 /* seconds between two hints for one name */

/* What a program writes beside an output, and what to do instead. */
enum hint_kind { HINT_NONE, HINT_OVR, HINT_AUX, HINT_MSK };

static const struct {
	const char *suffix;
	enum hint_kind kind;
} write_suffixes[] = {
	{ ".ovr.aux.xml", HINT_OVR },
	{ ".aux.xml", HINT_AUX },
	{ ".ovr", HINT_OVR },
	{ ".msk", HINT_MSK },
};

static struct {
	pthread_mutex_t lock;
	uint64_t name[HINT_SLOTS];
	double when[HINT_SLOTS];
	unsigned next;
} seen = { .lock = PTHREAD_MUTEX_INITIALIZER };

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* The kind of name, and in *base_len the length of the output's name. */
static enum hint_kind kind_of(const char *name, size_t *base_len)
{
	size_t n = strlen(name);

	if (!strchr(name, '@'))
		return HINT_NONE;
	for (size_t i = 0; i < sizeof(write_suffixes) /
	     sizeof(*write_suffixes); i++) {
		size_t l = strlen(write_suffixes[i].suffix);
		if (n > l &&
		    strcasecmp(name + n - l, write_suffixes[i].suffix) == 0) {
			*base_len = n - l;
			return write_suffixes[i].kind;
		}
	}
	return HINT_NONE;
}

/* Note 2: is thread pid in a system call that creates or writes? */
static int is_writing(pid_t pid)
{
	char path[64], buf[256];
	long nr;
	unsigned long long a[6] = { 0 };
	int fd;
	ssize_t n;

	snprintf(path, sizeof(path), "/proc/%ld/syscall", (long)pid);
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
		return 0;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return 0;
	buf[n] = '\0';
	if (sscanf(buf, "%ld %llx %llx %llx %llx %llx %llx", &nr, &a[0], &a[1],
		   &a[2], &a[3], &a[4], &a[5]) < 4)
		return 0;
	unsigned long long flags = ~0ULL;
	switch (nr) {
#ifdef SYS_open
	case SYS_open:
		flags = a[1];
		break;
#endif
	case SYS_openat:
		flags = a[2];
		break;
#ifdef SYS_creat
	case SYS_creat:
#endif
#ifdef SYS_mknod
	case SYS_mknod:
#endif
	case SYS_mknodat:
		return 1;
	default:
		return 0;
	}
	return (flags & O_ACCMODE) != O_RDONLY ||
	       (flags & (O_CREAT | O_TRUNC)) != 0;
}

/* Note 3: 1 if name has had no hint for HINT_EVERY seconds (and now has
 * one), else 0. */
static int first_in_a_while(const char *dir, const char *name)
{
	char path[PATH_MAX + NAME_MAX + 2];
	int len = snprintf(path, sizeof(path), "%s/%s", dir, name);
	uint64_t h = XXH3_64bits(path, len > 0 ? (size_t)len : 0);
	double t = now();
	int fresh = 1;

	pthread_mutex_lock(&seen.lock);
	for (unsigned i = 0; i < HINT_SLOTS; i++) {
		if (seen.name[i] == h && seen.when[i] > 0) {
			if (t - seen.when[i] < HINT_EVERY)
				fresh = 0;
			else
				seen.when[i] = t;
			goto out;
		}
	}
	seen.name[seen.next] = h;
	seen.when[seen.next] = t;
	seen.next = (seen.next + 1) % HINT_SLOTS;
out:
	pthread_mutex_unlock(&seen.lock);
	return fresh;
}

/* Output X (base, in dir) as the hints name it: its format, and the
 * names of the same chain as a COG and as a GeoTIFF, spelled as in dir
 * (the source's name, the canonical chain); format -1 if X is not an
 * output, a name "" if too long to suggest. */
struct output {
	int format;               /* enum rfs_format, or -1 */
	char cog[PATH_MAX];
	char gtiff[PATH_MAX];
};

static void describe_output(struct rfs_fs *fs, const char *dir,
			    const char *base, struct output *o)
{
	struct rfs_name *r = malloc(sizeof(*r));

	o->format = -1;
	o->cog[0] = o->gtiff[0] = '\0';
	if (!r)
		return;
	if (rfs_resolve(&fs->root, dir, 0, base, r) == 0 &&
	    r->kind == RFS_NAME_VIRTUAL) {
		const char *src = strrchr(r->src, '/');
		char *fmt = strstr(r->canonical, "@fmt=");
		int n;

		src = src ? src + 1 : r->src;
		o->format = (int)r->format;
		if (fmt)
			*fmt = '\0';
		n = snprintf(o->cog, sizeof(o->cog), "%s%s@fmt=cog", src,
			     r->canonical);
		if (n < 0 || (size_t)n >= sizeof(o->cog))
			o->cog[0] = '\0';
		n = snprintf(o->gtiff, sizeof(o->gtiff), "%s%s", src,
			     r->canonical);
		if (n < 0 || (size_t)n >= sizeof(o->gtiff))
			o->gtiff[0] = '\0';
	}
	free(r);
}

static void hint(struct rfs_fs *fs, const char *dir, const char *name,
		 enum hint_kind kind, size_t base_len)
{
	char base[NAME_MAX + 1], path[PATH_MAX];
	const char *code = rfs_err_name(-RFS_E_READONLY);
	struct output *o = malloc(sizeof(*o));

	if (!o)
		return;
	snprintf(base, sizeof(base), "%.*s", (int)base_len, name);
	snprintf(path, sizeof(path), "%s%s%s", dir, dir[0] ? "/" : "", name);
	describe_output(fs, dir, base, o);
	if (kind == HINT_OVR && o->format == RFS_FMT_COG)
		rfs_log(LOG_NOTICE, "%s: %s the mount is read-only, and %s is "
			"a COG with the overviews GDAL's COG driver makes "
			"(halving down to 512 pixels; gdalinfo lists them)",
			path, code, base);
	else if (kind == HINT_OVR)
		rfs_log(LOG_NOTICE, "%s: %s the mount is read-only: overviews "
			"cannot be written beside an output; ask for them inside "
			"it instead, as a Cloud-Optimized GeoTIFF: '%s'", path,
			code, o->cog[0] ? o->cog : "NAME@fmt=cog");
	else if (kind == HINT_AUX && o->format == RFS_FMT_PNG)
		rfs_log(LOG_NOTICE, "%s: %s the mount is read-only: nothing is "
			"saved beside an output; this .aux.xml already holds "
			"the PNG's CRS, geotransform and band statistics "
			"(the GeoTIFF of the same chain carries them too: "
			"'%s'); to keep a histogram or your own metadata, "
			"copy the PNG and its .aux.xml out of the mount and "
			"use the copy", path, code,
			o->gtiff[0] ? o->gtiff : "NAME without @fmt=png");
	else if (kind == HINT_AUX)
		rfs_log(LOG_NOTICE, "%s: %s the mount is read-only: nothing is "
			"saved beside an output; its band statistics are in the "
			"file already (gdalinfo -stats reads them); to keep a "
			"histogram or your own metadata, copy the output out of "
			"the mount (cp '%s' DIR/) and use the copy", path, code,
			base);
	else
		rfs_log(LOG_NOTICE, "%s: %s the mount is read-only: a mask "
			"cannot be written beside an output; copy the output "
			"out of the mount (cp '%s' DIR/) and use the copy",
			path, code, base);
	free(o);
}

double fs_hint_lookup(struct rfs_fs *fs, struct rfs_node *dir,
		      const char *name, pid_t pid)
{
	size_t base_len;
	enum hint_kind kind = kind_of(name, &base_len);

	if (kind == HINT_NONE || !dir || dir->kind != RFS_NODE_REAL)
		return fs->timeout;
	if (pid > 0 && is_writing(pid) && first_in_a_while(dir->path, name))
		hint(fs, dir->path, name, kind, base_len);
	return 0; /* note 1 */
}
