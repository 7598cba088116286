/* log.h - the one logging call of rasterfs, and what a mount keeps of it.
 *
 * Levels are syslog's (LOG_ERR, LOG_WARNING, LOG_NOTICE, LOG_INFO,
 * LOG_DEBUG).  Before rfs_log_open() or rfs_log_init() messages go to
 * stderr.  Where the daemon's lines go (its sink): stderr in the
 * foreground (-f); once daemonised syslog, or, where no syslog socket
 * exists (containers), a file in the user's state directory
 * (rfs_log_open_file).  Worker processes write their lines, in a form for
 * the daemon (RFS_LOG_DAEMON), to a pipe the daemon reads
 * (rfs_log_capture_start), and the daemon logs them as its own; so the
 * daemon's sink and its ring hold the workers' lines too.  Thread safe.
 *
 * The ring (src/log_ring.c): the daemon keeps its last RFS_LOG_RING lines
 * for MOUNT/.rasterfs/log, each with its owners, the users it is about:
 *   - a line logged while a thread serves a user's request
 *     (rfs_log_set_owner) belongs to that user;
 *   - a line about a job (rfs_log_owned) to the users who asked for it;
 *   - a worker's line to the users of the job it was running;
 *   - RFS_LOG_PRIVATE lines (the store's committer, the describers,
 *     debug lines, a worker's raw stderr) to nobody: only root and the
 *     mount's owner read them;
 *   - any other line (start-up, workers restarted, ...) to everyone.
 * rfs_log_ring_text() gives a user the lines that are theirs or
 * everyone's; root and the mount's owner get all of them.
 *
 * Three parts, so that a library can log without linking libfuse or GDAL:
 *  - the core (src/log.c, in the common library with err.c: nothing beyond
 *    libc and threads; the cache store links only it): rfs_log_open*,
 *    rfs_log, rfs_log_v, rfs_log_owned, owners, rfs_log_once;
 *  - the ring and the capture of the workers' lines (src/log_ring.c, in
 *    the common library too);
 *  - the adapters (src/log_adapt.c, linked by the daemon, its workers and
 *    the command line): rfs_log_init() also installs the handlers for
 *    libfuse (fuse_set_log_func) and GDAL (CPLSetErrorHandler), so every
 *    message of the process goes one way, and keeps GDAL's last error.
 * None of the logging calls fails; the set-up calls say how they fail.
 */
#ifndef RASTERFS_LOG_H
#define RASTERFS_LOG_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <syslog.h>

enum rfs_log_sink {
	RFS_LOG_STDERR,  /* "HH:MM:SS.mmm tag[pid] level: text" */
	RFS_LOG_SYSLOG,  /* syslog(3), facility LOG_DAEMON */
	RFS_LOG_FILE,    /* a file, dated lines (rfs_log_open_file) */
	RFS_LOG_DAEMON,  /* a worker's stderr, read by its daemon
	                    (rfs_log_capture_start): "<level>pid job text" */
};

/* Owners of a line (uid_t values that are no user's). */
#define RFS_LOG_NOBODY ((uid_t)-1)   /* everyone's line */
#define RFS_LOG_PRIVATE ((uid_t)-2)  /* only root's and the owner's */
#define RFS_LOG_OWNERS 8             /* users kept per line; a job asked
                                        for by more: the first 8 */

/* ---- the core (log.c) ------------------------------------------------ */

/* Where lines go from now on.  tag: "rasterfs" or "rasterfs-worker";
 * max_level: messages above it are dropped (LOG_INFO by default,
 * LOG_DEBUG with -d).  Installs no handler for libfuse or GDAL.  For
 * RFS_LOG_FILE use rfs_log_open_file. */
void rfs_log_open(const char *tag, enum rfs_log_sink sink, int max_level);

/* Log to the file path (appended to, created 0600 by a daemon with umask
 * 077); when it grows over cap bytes it is renamed to path.1 (replacing
 * the older one) and a new one started, so the log takes at most about
 * 2 * cap bytes.  Returns 0, or -errno (the sink is then unchanged). */
int rfs_log_open_file(const char *tag, const char *path, uint64_t cap,
		      int max_level);

/* While on, lines also go to stderr in its form, whatever the sink (a
 * daemon until its caller stops reading its stderr). */
void rfs_log_also_stderr(int on);

/* Is there a syslog socket to log to (/dev/log)?  The test-only
 * environment variable RASTERFS_TEST_NO_SYSLOG=1 makes the answer no, so
 * tests can see the file sink on a machine that has syslog. */
int rfs_log_have_syslog(void);

/* The file a daemon logs to when it has no syslog: the directory
 * $XDG_STATE_HOME/rasterfs, else ~/.local/state/rasterfs (made, 0700),
 * and the mount point's absolute path with its '/' turned into '-' (the
 * leading one dropped; "/" is "root") plus ".log": /home/u/mnt/dem ->
 * home-u-mnt-dem.log.  Returns 0 with the path in buf, or -ENAMETOOLONG,
 * -ENOENT (no XDG_STATE_HOME and no HOME), -errno of making the
 * directory. */
int rfs_log_state_file(const char *mountpoint, char *buf, size_t len);

void rfs_log(int level, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
void rfs_log_v(int level, const char *fmt, va_list ap)
	__attribute__((format(printf, 2, 0)));

/* A line that belongs to the n users in uids (n == 0: RFS_LOG_PRIVATE),
 * whatever this thread's owner is: the lines about a job. */
void rfs_log_owned(const uid_t *uids, unsigned n, int level,
		   const char *fmt, ...) __attribute__((format(printf, 4, 5)));

/* The owner of the lines this thread logs from now on: a uid (the user a
 * request is served for), RFS_LOG_PRIVATE, or RFS_LOG_NOBODY (the
 * default: everyone's). */
void rfs_log_set_owner(uid_t uid);
uid_t rfs_log_get_owner(void);

/* In a worker: the job its lines are about from now on (0: none).  The
 * daemon gives them to that job's users; the lines of a describe
 * (RFS_LOG_JOB_PRIVATE: not a job of the pool, asked for by whoever
 * listed a directory) are private. */
#define RFS_LOG_JOB_PRIVATE UINT64_MAX
void rfs_log_set_job(uint64_t job);

/* Should a notice keyed by key (e.g. "uid path" of a bad name) be logged
 * now?  1 the first time and once per window seconds after, with
 * *repeats (may be NULL) the times it was held back since it was last
 * logged; 0 in between.  Keeps the last few hundred keys (a key pushed
 * out counts as new).  The clock is CLOCK_MONOTONIC unless a test sets
 * another with rfs_log_once_clock (NULL: back to it). */
int rfs_log_once(const char *key, unsigned window, unsigned *repeats);
void rfs_log_once_clock(double (*clock)(void));

/* ---- the ring and the workers' lines (log_ring.c) --------------------- */

#define RFS_LOG_RING 500           /* lines kept for MOUNT/.rasterfs/log */

/* Keep the last RFS_LOG_RING lines logged from now on (at the levels the
 * sink takes).  Returns 0 or -ENOMEM. */
int rfs_log_ring_open(void);

/* The kept lines uid may read, oldest first, one per line:
 *   "2026-11-22 03:31:10.123 notice [uid=1000]: text"
 * (the owners shown as "uid=A,B", or "private"; none for everyone's).
 * all: uid is root or the mount's owner and reads every line.  Returns 0
 * with a malloc'd text in *out (its length in *len; "" without a ring),
 * or -ENOMEM. */
int rfs_log_ring_text(uid_t uid, int all, char **out, size_t *len);

/* Called by the ring (from the core) for each line logged. */
void rfs_log_ring_add(int level, const uid_t *owners, unsigned n,
		      const char *text);

/* The daemon's end of its workers' lines: a pipe whose write end (*wfd,
 * close-on-exec) each worker gets as its stderr (posix_spawn dup2), and a
 * thread that reads it and logs each line as the daemon's, at its level:
 * "worker[PID] job N: text", owned by that job's users as owners_fn says
 * (set with rfs_log_capture_owners; without it, or for a job it does not
 * know, the line is private).  A line not in the worker form (a library
 * writing to stderr) is logged as "worker: text", private.  Returns 0, or
 * -errno (pipe, thread). */
typedef unsigned (*rfs_log_owners_fn)(void *arg, uint64_t job, uid_t *uids,
				      unsigned max);
int rfs_log_capture_start(int *wfd);

/* Say who owns the lines of a job (the pool, while it exists); NULL fn:
 * nobody from now on.  Returns once no call to the old fn runs. */
void rfs_log_capture_owners(rfs_log_owners_fn fn, void *arg);

/* Wait, at most 100 ms, until the reader has logged what the workers
 * wrote so far (so a job's end is logged after its worker's lines). */
void rfs_log_capture_sync(void);

/* Close the write end and wait for the reader to log what is left: after
 * every worker has exited (their copies of the write end keep the pipe
 * open).  No-op if not started. */
void rfs_log_capture_stop(void);

/* Log one line in the worker form as the reader does (for tests). */
void rfs_log_capture_line(const char *line);

/* ---- the adapters (log_adapt.c: links libfuse and GDAL) --------------- */

/* rfs_log_open(), then route libfuse's and GDAL's messages to rfs_log. */
void rfs_log_init(const char *tag, enum rfs_log_sink sink, int max_level);

/* The GDAL error handler installed by rfs_log_init() also stores the last
 * GDAL error message of this thread: rfs_log_last_gdal() returns it ("" if
 * none since rfs_log_clear_gdal()). */
const char *rfs_log_last_gdal(void);
void rfs_log_clear_gdal(void);

#endif
