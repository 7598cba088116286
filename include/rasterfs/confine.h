/* confine.h - confining a worker process to what a job may touch.
 *
 * Sources come from strangers, and a GDAL dataset can name any path or URL
 * (VRT sources, raw bands, /vsicurl/).  So a worker, once GDAL and PROJ are
 * set up and warmed up and before its first job, gives up for good:
 *
 *   - its privileges: a worker started by a root daemon drops to the
 *     configured user (setgroups, setgid, setuid), then
 *     PR_SET_NO_NEW_PRIVS;
 *   - the filesystem (Landlock, best ABI the kernel offers): it may read
 *     the source root and the read-only directories the caller lists (GDAL
 *     and PROJ data), read and execute /usr and the library directories
 *     (GDAL may dlopen), read a few named files of /proc and /sys that the
 *     C library and GDAL read while working, read /dev/null and
 *     /dev/urandom, and read, write, create and remove files only in its
 *     working directory (its scratch).  Nothing else: not /etc, /home,
 *     /tmp, nor the cache store's objects;
 *   - the network: Landlock ABI >= 4 handles TCP bind and connect with no
 *     rule (all refused), ABI >= 6 scopes abstract unix sockets and
 *     signals to the worker itself, and a seccomp filter makes socket()
 *     (and io_uring_setup, which could make sockets behind seccomp's back)
 *     fail with EACCES.
 *
 * Without Landlock (kernel < 5.13, or disabled) the worker goes on with
 * no_new_privs and seccomp; rfs_confine_landlock_abi() lets the daemon
 * log that once.  A syslog connection must be opened before (LOG_NDELAY):
 * no socket can be made after.
 *
 * Rules the caller relies on:
 *  - Call rfs_confine_apply() once, in a single-threaded process (Landlock
 *    confines the calling thread and its future children only), with the
 *    working directory already the scratch directory: after the drop the
 *    directories above it (the cache store, 0700) may not be traversable,
 *    so the worker names everything in scratch by relative paths.
 *  - Descriptors opened before (the socket, the source root, sources
 *    passed with SCM_RIGHTS) keep working: Landlock checks opens, not
 *    reads.
 */
#ifndef RASTERFS_CONFINE_H
#define RASTERFS_CONFINE_H

#include <stddef.h>
#include <sys/types.h>

struct rfs_confine {
	const char *root;           /* the source root: read-only */
	const char *const *ro_dirs; /* more read-only directories (GDAL and
	                               PROJ data), NULL-terminated; may be
	                               NULL; missing ones are skipped */
	uid_t uid;                  /* user to drop to, or (uid_t)-1 */
	gid_t gid;
};

/* What rfs_confine_apply() managed, for the log. */
struct rfs_confine_report {
	int landlock_abi;      /* 0: the kernel has no Landlock */
	int dropped;           /* privileges dropped to uid/gid */
};

/* The Landlock ABI version of the running kernel, 0 if it has none. */
int rfs_confine_landlock_abi(void);

/* Confine the calling process for good (above).  Returns 0 and fills *rep
 * (may be NULL), or a negative errno with a sentence in msg:
 *   -EBUSY    the process has more than one thread
 *   -EPERM    the drop to uid/gid failed (the daemon is not root)
 *   -errno    prctl, Landlock or seccomp refused (the process may be half
 *             confined: it must exit) */
int rfs_confine_apply(const struct rfs_confine *c,
		      struct rfs_confine_report *rep, char *msg, size_t len);

#endif
