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

/* argv after RFS_WORKER_ARG: FD PARENT_PID GDAL_CACHE_MB LOG(stderr|syslog)
 * LEVEL.  Returns the process exit status. */
int rfs_worker_main(int argc, char **argv);

#endif
