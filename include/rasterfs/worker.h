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

#endif
