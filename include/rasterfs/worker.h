/* worker.h - the worker process: runs jobs with GDAL, one at a time.
 *
 * A worker is the rasterfs binary exec'd by the pool with a hidden first
 * argument (RFS_WORKER_ARG), so it starts from a clean process image: no
 * FUSE threads, no LMDB environment, nothing inherited but its socket.  It
 * reads JOB messages (wire.h), runs them with rfs_ops_run() into its private
 * scratch directory, and answers DONE or FAILED.  It exits when the daemon
 * closes the socket, and the kernel kills it if the daemon dies
 * (PR_SET_PDEATHSIG), so workers never outlive their mount.
 */
#ifndef RASTERFS_WORKER_H
#define RASTERFS_WORKER_H

#include <stdint.h>
#include <sys/types.h>

#include "rasterfs/log.h"

#define RFS_WORKER_ARG "--internal-worker"

/* argv[0] is RFS_WORKER_ARG; argv[1..11], as pool.c's spawn_worker
 * writes them:
 *   FD             the worker's end of its socketpair with the daemon
 *   PARENT_PID     the daemon (the worker exits if it is not its parent)
 *   GDAL_CACHE_MB  GDAL's block cache, megabytes
 *   LOG LEVEL      "stderr" or "syslog", and a syslog level
 *   WORKER_MEM     bytes of address space above the idle footprint; 0: none
 *   MAX_PIXELS     largest output (width x height); 0: none
 *   SCRATCH        its scratch directory (it works there by relative names)
 *   ROOT           the absolute source root (confine.h)
 *   UID GID        the user and group to drop to, or -1 -1: stay
 * Returns the process exit status (2: too few arguments). */
int rfs_worker_main(int argc, char **argv);

/* How the daemon starts one (the pool's workers, the describers). */
struct rfs_worker_spawn {
	const char *exe;           /* the rasterfs binary */
	int gdal_cache_mb;
	enum rfs_log_sink log_sink; /* RFS_LOG_DAEMON: its stderr is log_fd,
	                              the daemon's pipe (log.h) */
	int log_fd;
	int log_level;
	uint64_t worker_mem;       /* 0: no limit */
	uint64_t max_pixels;       /* 0: no limit */
	const char *scratch;       /* its scratch directory (made, and given
	                              to uid when uid is not (uid_t)-1) */
	const char *root;          /* the absolute source root */
	uid_t uid;                 /* (uid_t)-1: the daemon's own */
	gid_t gid;
};

/* Start a worker process as s says, with the other end of a new
 * SOCK_SEQPACKET socketpair as its only inherited descriptor.  Call it
 * from the thread that will talk to the worker for its whole life (the
 * worker's PR_SET_PDEATHSIG follows the spawning thread).  Returns 0 with
 * *pid and *fd (non-blocking, close-on-exec), or -errno (logged). */
int rfs_worker_spawn(const struct rfs_worker_spawn *s, pid_t *pid, int *fd);

#endif
