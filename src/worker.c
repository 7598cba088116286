/* worker.c - a worker process: receive a job, run it, report.
 *
 * Limits (pool.h): every step's output grid is worked out from the
 * source's header by the step table's describe (describe.h) before any
 * pixel is computed, and a job with an output over max_pixels fails at
 * once with RFS_E_TOO_BIG.  worker_mem caps the address space
 * (RLIMIT_AS) above the idle worker's own footprint; a failed allocation
 * that GDAL reports is RFS_E_NOMEM (ops.c), and one that ends the process
 * by SIGSEGV/SIGABRT/SIGBUS near the cap is reported as RFS_E_NOMEM by the
 * handler here before the process dies.  A SIGKILL (the kernel's OOM
 * killer, or anyone) cannot be told apart from other kills: the daemon
 * reports it as a crash, RFS_E_CRASH.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>

#include <cpl_conv.h>
#include <time.h>
#include <unistd.h>

#include "rasterfs/chain.h"
#include "rasterfs/describe.h"
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

/* For the fatal-signal handler: the job running and the socket. */
static volatile sig_atomic_t cur_fd = -1;
static volatile uint64_t cur_job;
static uint64_t mem_cap; /* RLIMIT_AS set, bytes; 0: none */

/* Address space in use, from /proc/self/statm (async-signal-safe: open,
 * read, close only).  0 if unknown. */
static uint64_t vm_bytes(void)
{
	char buf[64];
	uint64_t pages = 0;
	int fd = open("/proc/self/statm", O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return 0;
	ssize_t n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	for (ssize_t i = 0; i < n && buf[i] >= '0' && buf[i] <= '9'; i++)
		pages = pages * 10 + (uint64_t)(buf[i] - '0');
	return pages * (uint64_t)sysconf(_SC_PAGESIZE);
}

/* A crash with the address space nearly at the cap is an allocation that
 * failed where nobody checked (C++ new, abort in a library): say so, then
 * die as the signal says. */
static void fatal_signal(int sig)
{
	static const char m[] = "out of memory: worker_mem reached";

	if (cur_fd >= 0 && mem_cap && vm_bytes() + (64u << 20) >= mem_cap)
		rfs_wire_send_failed(cur_fd, cur_job, -RFS_E_NOMEM, m);
	signal(sig, SIG_DFL);
	raise(sig);
}

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

static void run_job(int fd, const struct rfs_msg *m, uint64_t max_pixels)
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

	cur_job = m->job_id;
	cur_fd = fd;
	rc = rfs_chain_parse(m->canonical, &chain, msg, sizeof(msg));
	if (rc == 0 && max_pixels)
		rc = rfs_describe_limit(m->source, &chain, max_pixels, msg,
					sizeof(msg));
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
	cur_fd = -1;
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
	uint64_t worker_mem = argc > 6 ? strtoull(argv[6], NULL, 10) : 0;
	uint64_t max_pixels = argc > 7 ? strtoull(argv[7], NULL, 10) : 0;
	if (worker_mem) {
		/* Above the idle footprint: libraries map hundreds of MB of
		 * address space that cost no memory. */
		struct rlimit rl;
		mem_cap = vm_bytes() + worker_mem;
		rl.rlim_cur = rl.rlim_max = mem_cap;
		if (setrlimit(RLIMIT_AS, &rl) < 0) {
			rfs_log(LOG_WARNING, "worker_mem: setrlimit: %s",
				strerror(errno));
			mem_cap = 0;
		}
		signal(SIGSEGV, fatal_signal);
		signal(SIGABRT, fatal_signal);
		signal(SIGBUS, fatal_signal);
	}

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
			run_job(fd, &m, max_pixels);
		/* A CANCEL for a job that already ended needs nothing. */
	}
}
