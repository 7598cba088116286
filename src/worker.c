/* worker.c - a worker process: receive a job, run it, report. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <time.h>
#include <unistd.h>

#include "rasterfs/chain.h"
#include "rasterfs/err.h"
#include "rasterfs/log.h"
#include "rasterfs/ops.h"
#include "rasterfs/wire.h"
#include "rasterfs/worker.h"

struct job_ctx {
	int fd;
	uint64_t id;
	double last_sent;
	struct timespec last_time;
	int cancelled;
};

static double since(const struct timespec *t)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return (double)(now.tv_sec - t->tv_sec) +
	       (double)(now.tv_nsec - t->tv_nsec) / 1e9;
}

/* GDAL progress callback: report at most once per percent or per 0.2 s,
 * and look for a CANCEL from the daemon without blocking. */
static int CPL_STDCALL job_progress(double frac, const char *msg, void *arg)
{
	struct job_ctx *c = arg;
	struct pollfd p = { .fd = c->fd, .events = POLLIN };
	(void)msg;

	while (poll(&p, 1, 0) > 0) {
		struct rfs_msg m;
		int rc = rfs_wire_recv(c->fd, &m);
		if (rc == -EPIPE)
			_exit(1); /* the daemon is gone; nobody wants this */
		if (rc == 0 && m.type == RFS_MSG_CANCEL && m.job_id == c->id)
			c->cancelled = 1;
		if (rc < 0)
			break;
	}
	if (c->cancelled)
		return FALSE;
	if (frac - c->last_sent >= 0.01 || since(&c->last_time) >= 0.2) {
		rfs_wire_send_progress(c->fd, c->id, frac);
		c->last_sent = frac;
		clock_gettime(CLOCK_MONOTONIC, &c->last_time);
	}
	return TRUE;
}

static void run_job(int fd, const struct rfs_msg *m)
{
	struct rfs_chain chain;
	struct rfs_ops_result res = { 0 };
	char msg[RFS_MSG_MAX] = "";
	char scratch[PATH_MAX];
	struct job_ctx ctx = { .fd = fd, .id = m->job_id };
	struct timespec t0;
	int rc;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	ctx.last_time = t0;
	snprintf(scratch, sizeof(scratch), "%s", m->out_path);
	char *slash = strrchr(scratch, '/');
	if (slash)
		*slash = '\0';

	rc = rfs_chain_parse(m->canonical, &chain, msg, sizeof(msg));
	if (rc == 0)
		rc = rfs_ops_run(m->source, &chain, scratch, m->out_path,
				 job_progress, &ctx, &res, msg, sizeof(msg));
	if (rc == 0) {
		rfs_log(LOG_DEBUG, "job %llu done in %.2f s: %llu bytes",
			(unsigned long long)m->job_id, since(&t0),
			(unsigned long long)res.size);
		rfs_wire_send_done(fd, m->job_id, res.size, res.checksum);
	} else {
		if (!msg[0])
			snprintf(msg, sizeof(msg), "%s", rfs_strerror(rc));
		rfs_wire_send_failed(fd, m->job_id, rc, msg);
	}
}

int rfs_worker_main(int argc, char **argv)
{
	if (argc < 6) {
		fprintf(stderr, "rasterfs: %s is internal to rasterfs\n",
			RFS_WORKER_ARG);
		return 2;
	}
	int fd = atoi(argv[1]);
	pid_t parent = (pid_t)atol(argv[2]);
	int cache_mb = atoi(argv[3]);
	enum rfs_log_sink sink = strcmp(argv[4], "syslog") == 0 ?
		RFS_LOG_SYSLOG : RFS_LOG_STDERR;

	/* Keep nothing of the daemon's but the socket: not its LMDB files,
	 * not (once it is a daemon) the terminal or pipe it was started from,
	 * which a reader such as `rasterfs SRC MNT | cat` waits on. */
	if (fd > 3)
		close_range(3, (unsigned)fd - 1, 0);
	close_range((unsigned)fd + 1, ~0U, 0);
	if (sink == RFS_LOG_SYSLOG) {
		int null = open("/dev/null", O_RDWR | O_CLOEXEC);
		if (null >= 0) {
			dup2(null, STDIN_FILENO);
			dup2(null, STDOUT_FILENO);
			dup2(null, STDERR_FILENO);
			close(null);
		}
	}

	/* Die with the daemon; if it already died, do not linger. */
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (getppid() != parent)
		return 1;
	signal(SIGPIPE, SIG_IGN);
	/* Ctrl-C on a foreground mount reaches the whole process group; the
	 * daemon decides when workers stop. */
	signal(SIGINT, SIG_IGN);
	rfs_log_init("rasterfs-worker", sink, atoi(argv[5]));
	rfs_ops_init(cache_mb);

	for (;;) {
		static struct rfs_msg m;
		int rc = rfs_wire_recv(fd, &m);
		if (rc == -EPIPE)
			return 0;
		if (rc < 0) {
			rfs_log(LOG_ERR, "bad message from the daemon: %s",
				rfs_strerror(rc));
			return 1;
		}
		if (m.type == RFS_MSG_JOB)
			run_job(fd, &m);
		/* A CANCEL for a job that already ended needs nothing. */
	}
}
