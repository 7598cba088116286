/* cli_run.c - `rasterfs run SRC@CHAIN [OUT]`: one output without FUSE.
 *
 * Design notes:
 *  1. The same parts as a mount, so the same bytes and the same codes:
 *     the name is resolved by resolve.c against a source root (--root,
 *     else SRC's directory), CRS codes checked by crs.c, the source pinned
 *     beneath the root (pin.h), the key made by the store's rule, and the
 *     job run by a pool of one worker (pool.h): a worker process spawned,
 *     confined (confine.h: the root and GDAL's data only, no network, a
 *     root caller's workers drop to the root's owner) and policed
 *     (max_pixels, worker_mem, job_timeout, stall_timeout) exactly as a
 *     mount's.  GDAL never runs in this process.
 *  2. A pool needs a store: --cache DIR (a mount with cache=DIR then
 *     serves the output), else a private store in a temporary directory,
 *     removed at exit (SIGINT, SIGTERM and SIGHUP included; only SIGKILL
 *     leaves it, in $TMPDIR/rasterfs-run.*).
 *  3. OUT is written as OUT.tmp-XXXXXX in OUT's directory, fsynced, then
 *     renamed over OUT (and the directory fsynced): OUT is never a partial
 *     file, whatever kills us.
 *  4. --shared DIR plugs the shared tier in (tier.h), as shared=DIR does
 *     for a mount: found there, the output is copied instead of computed;
 *     computed, it is published before we exit 0.  Without OUT and
 *     --cache, an output already published is checked (content hash and
 *     sidecar) and nothing else is done.
 *  5. --tasks FILE takes the name from line N+1 of FILE (N: --index, else
 *     $SLURM_ARRAY_TASK_ID; names relative to --root) and writes the
 *     outcome to FILE's directory, results/N.json, for `rasterfs warm
 *     --slurm --wait` (cli_slurm.c).
 *  6. Exit status: 0 done; 1 the output cannot be made from this input
 *     (a bad name, a bad source, a job that failed in a way a retry
 *     repeats: the codes a mount remembers for retry_after); 2 bad usage
 *     (RFS-E400); 3 a failure that says nothing about the output (the
 *     worker crashed or stalled, interrupted, the store or the shared
 *     tier failed): retrying may succeed.  One line on stderr carries the
 *     code: "rasterfs run: NAME: RFS-Ennn message".
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "rasterfs/cli.h"
#include "rasterfs/confine.h"
#include "rasterfs/crs.h"
#include "rasterfs/err.h"
#include "rasterfs/jobs.h"
#include "rasterfs/json.h"
#include "rasterfs/log.h"
#include "rasterfs/pin.h"
#include "rasterfs/pkey.h"
#include "rasterfs/pool.h"
#include "rasterfs/resolve.h"
#include "rasterfs/shared.h"
#include "rasterfs/stats.h"
#include "rasterfs/store.h"
#include "rasterfs/tier.h"

#define EXIT_FAILED 1
#define EXIT_USAGE 2
#define EXIT_TRANSIENT 3
#define BAR_WIDTH 30
#define PUBLISH_TIMEOUT 3600.0  /* s: at most, after the job ended */

struct run_opts {
	const char *root, *cache, *shared, *tasks;
	long index;
	int index_set;
	int progress;                /* -1: on a terminal */
	int verbose;
	const char *name, *out;
	/* -o, the mount's spellings */
	unsigned long long max_pixels, worker_mem_mb;
	int max_pixels_set, worker_mem_set;
	unsigned job_timeout, stall_timeout, gdal_cache, keep_prefixes;
	int stall_set, keep_set;
	unsigned shared_lease, shared_wait;
	int lease_set, wait_set;
	unsigned uid, gid;
	int uid_set, gid_set;
	const char *cache_size;
};

/* What happened, for the message, the result file and the exit status. */
struct outcome {
	int rc;
	char msg[RFS_MSG_MAX + 256];
	const char *how;             /* "computed", "shared", "cached",
	                                "published already" */
};

static volatile sig_atomic_t stop_signal;

static void on_signal(int sig)
{
	stop_signal = sig;
}

static double mono(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static void usage(FILE *f)
{
	fprintf(f, "usage: rasterfs run [--root DIR] [--cache DIR] "
		"[--shared DIR] [-o OPTIONS] [--progress|--no-progress] [-v] "
		"SRC@CHAIN [OUT]\n"
		"       rasterfs run --tasks FILE [--index N] --root DIR "
		"[--shared DIR] [-o OPTIONS]\n"
		"  OPTIONS: max_pixels=N, worker_mem=MB, job_timeout=S, "
		"stall_timeout=S, gdal_cache=MB, keep_prefixes=0|1, "
		"shared_lease=S, shared_wait=S, cache_size=SIZE, uid=N, gid=N "
		"(as for a mount)\n"
		"  exit status: 0 done, 1 the output cannot be made, 2 bad "
		"usage, 3 a failure a retry may get past (crash, stall, signal, "
		"store or shared tier)\n");
}

static int bad_usage(const char *what)
{
	fprintf(stderr, "rasterfs run: RFS-E400 %s\n", what);
	usage(stderr);
	return EXIT_USAGE;
}

/* ---- -o OPTIONS ------------------------------------------------------- */

static int parse_num(const char *v, unsigned long long max,
		     unsigned long long *out)
{
	char *end;

	if (!*v || *v == '-')
		return -1;
	errno = 0;
	*out = strtoull(v, &end, 10);
	return errno || *end || *out > max ? -1 : 0;
}

static int parse_o(struct run_opts *o, char *list)
{
	const struct {
		const char *name;
		unsigned long long max;
		unsigned long long *ull; /* one of these two */
		unsigned *u;
		int *set;                /* may be NULL */
	} nums[] = {
		{ "max_pixels", 1ULL << 62, &o->max_pixels, NULL,
		  &o->max_pixels_set },
		{ "worker_mem", 1ULL << 40, &o->worker_mem_mb, NULL,
		  &o->worker_mem_set },
		{ "job_timeout", 1U << 30, NULL, &o->job_timeout, NULL },
		{ "stall_timeout", 1U << 30, NULL, &o->stall_timeout,
		  &o->stall_set },
		{ "gdal_cache", 65536, NULL, &o->gdal_cache, NULL },
		{ "keep_prefixes", 1, NULL, &o->keep_prefixes, &o->keep_set },
		{ "shared_lease", 3600, NULL, &o->shared_lease, &o->lease_set },
		{ "shared_wait", 1U << 30, NULL, &o->shared_wait, &o->wait_set },
		{ "uid", (unsigned)-2, NULL, &o->uid, &o->uid_set },
		{ "gid", (unsigned)-2, NULL, &o->gid, &o->gid_set },
	};
	char *save = NULL;

	for (char *kv = strtok_r(list, ",", &save); kv;
	     kv = strtok_r(NULL, ",", &save)) {
		char *v = strchr(kv, '=');
		size_t i;
		if (!v) {
			fprintf(stderr, "rasterfs run: RFS-E400 -o %s: expected "
				"NAME=VALUE\n", kv);
			return -1;
		}
		*v++ = '\0';
		if (!strcmp(kv, "cache_size")) {
			o->cache_size = v;
			continue;
		}
		for (i = 0; i < sizeof(nums) / sizeof(nums[0]); i++)
			if (!strcmp(kv, nums[i].name))
				break;
		if (i == sizeof(nums) / sizeof(nums[0])) {
			fprintf(stderr, "rasterfs run: RFS-E400 -o %s: not an "
				"option of rasterfs run\n", kv);
			return -1;
		}
		unsigned long long n;
		if (parse_num(v, nums[i].max, &n) < 0) {
			fprintf(stderr, "rasterfs run: RFS-E400 -o %s=%s: not a "
				"valid value\n", kv, v);
			return -1;
		}
		if (nums[i].ull)
			*nums[i].ull = n;
		else
			*nums[i].u = (unsigned)n;
		if (nums[i].set)
			*nums[i].set = 1;
	}
	return 0;
}

/* ---- the name ------------------------------------------------------- */

/* Line index + 1 of file: the task's name, into buf.  Returns 0 or -1
 * (said). */
static int task_line(const char *file, long index, char *buf, size_t len)
{
	FILE *f = fopen(file, "re");
	char *line = NULL;
	size_t cap = 0;
	long i = 0;
	int rc = -1;

	if (!f) {
		fprintf(stderr, "rasterfs run: RFS-E400 --tasks %s: %s\n", file,
			strerror(errno));
		return -1;
	}
	for (ssize_t n; (n = getline(&line, &cap, f)) >= 0; i++) {
		if (i != index)
			continue;
		if (n && line[n - 1] == '\n')
			line[--n] = '\0';
		if ((size_t)n < len) {
			memcpy(buf, line, (size_t)n + 1);
			rc = 0;
		}
		break;
	}
	if (rc < 0)
		fprintf(stderr, "rasterfs run: RFS-E400 --tasks %s: no task %ld "
			"(the file has %ld)\n", file, index, i);
	free(line);
	fclose(f);
	return rc;
}

/* Split name into its root and the path below it, and resolve it as a
 * mount would (resolve.h).  Returns 0 with r, or a code with out->msg. */
static int resolve_name(const struct run_opts *o, struct rfs_root *root,
			char *root_abs, struct rfs_name *r, struct outcome *out)
{
	const char *slash = strrchr(o->name, '/');
	const char *base = slash ? slash + 1 : o->name;
	char dir[PATH_MAX], dir_abs[PATH_MAX];
	int rc;

	if (!*base || !strchr(base, '@')) {
		snprintf(out->msg, sizeof(out->msg), "%s is not a virtual "
			 "name (SRC@CHAIN)", o->name);
		return -RFS_E_OPTION;
	}
	snprintf(dir, sizeof(dir), "%.*s", slash ? (int)(slash - o->name) +
		 (slash == o->name) : 1, slash ? o->name : ".");
	if (o->tasks && o->root) /* task names are below the root */
		snprintf(dir, sizeof(dir), "%s/%.*s", o->root,
			 slash ? (int)(slash - o->name) : 0, o->name);
	if (!realpath(dir, dir_abs)) {
		rc = -errno;
		snprintf(out->msg, sizeof(out->msg), "directory %.300s: %s", dir,
			 strerror(errno));
		return rc == -ENOENT ? -RFS_E_NO_SOURCE : rc;
	}
	if (!realpath(o->root ? o->root : dir_abs, root_abs)) {
		rc = -errno;
		snprintf(out->msg, sizeof(out->msg), "--root %s: %s", o->root,
			 strerror(errno));
		return -RFS_E_OPTION;
	}
	size_t rl = strlen(root_abs);
	if (strncmp(dir_abs, root_abs, rl) ||
	    (dir_abs[rl] && dir_abs[rl] != '/' && rl > 1)) {
		snprintf(out->msg, sizeof(out->msg), "%.300s is not below the "
			 "source root %.300s", o->name, root_abs);
		return -RFS_E_ESCAPE;
	}
	const char *rel = dir_abs + rl;
	while (*rel == '/')
		rel++;
	root->path = root_abs;
	root->len = rl;
	root->fd = open(root_abs, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (root->fd < 0) {
		snprintf(out->msg, sizeof(out->msg), "source root %s: %s",
			 root_abs, strerror(errno));
		return -errno;
	}
	if ((rc = rfs_resolve(root, rel, 0, base, r)) < 0) {
		snprintf(out->msg, sizeof(out->msg), "%s", strerror(-rc));
		return rc == -ENOENT ? -RFS_E_NO_SOURCE : rc;
	}
	switch (r->kind) {
	case RFS_NAME_VIRTUAL:
		return 0;
	case RFS_NAME_BAD:
		snprintf(out->msg, sizeof(out->msg), "%s", r->msg);
		return r->code;
	default:
		snprintf(out->msg, sizeof(out->msg), "%s is not an output: a "
			 "file of the source tree, a sidecar, a probe or a view",
			 o->name);
		return -RFS_E_NO_SOURCE;
	}
}

/* The workers' user, as a mount picks it (main.c): a caller that is not
 * root keeps its own; root runs them as uid=/gid=, else as the owner of
 * the source root when that is not root. */
static int worker_user(const struct run_opts *o, const char *root,
		       uid_t *uid, gid_t *gid)
{
	struct stat st;

	*uid = (uid_t)-1;
	*gid = (gid_t)-1;
	if (geteuid() != 0) {
		if ((o->uid_set && o->uid != geteuid()) ||
		    (o->gid_set && o->gid != getegid())) {
			fprintf(stderr, "rasterfs run: RFS-E400 uid=, gid=: "
				"only root can run its workers as another "
				"user\n");
			return -RFS_E_OPTION;
		}
		return 0;
	}
	if (o->uid_set) {
		struct passwd *pw = getpwuid(o->uid);
		*uid = o->uid;
		*gid = o->gid_set ? o->gid : pw ? pw->pw_gid : o->uid;
	} else if (stat(root, &st) == 0 && st.st_uid != 0) {
		*uid = st.st_uid;
		*gid = st.st_gid;
	}
	return 0;
}

/* ---- waiting for the job ----------------------------------------------- */

struct done {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int done, rc;
	char msg[RFS_MSG_MAX];
	int published;               /* -1 unknown, else on_publish's rc */
};

static void job_done(void *arg, int rc, const char *msg)
{
	struct done *d = arg;

	pthread_mutex_lock(&d->mu);
	d->done = 1;
	d->rc = rc;
	snprintf(d->msg, sizeof(d->msg), "%s", msg ? msg : "");
	pthread_cond_broadcast(&d->cv);
	pthread_mutex_unlock(&d->mu);
}

static void on_publish(void *arg, const rfs_key *key, int rc)
{
	struct done *d = arg;
	(void)key;

	pthread_mutex_lock(&d->mu);
	d->published = rc;
	pthread_mutex_unlock(&d->mu);
}

static void draw_bar(const char *name, const char *state, double progress,
		     double elapsed)
{
	int fill = (int)(progress * BAR_WIDTH + 0.5);

	fprintf(stderr, "\r[");
	for (int i = 0; i < BAR_WIDTH; i++)
		fputc(i < fill ? '#' : '-', stderr);
	fprintf(stderr, "] %3.0f%% %-8s %5.1fs %.40s\033[K", progress * 100,
		state, elapsed, name);
	fflush(stderr);
}

/* Wait for d, drawing the bar when bars; a signal cancels the job (it
 * then ends RFS-E204). */
static void wait_job(rfs_pool *pool, const rfs_key *key, struct done *d,
		     int bars, const char *name)
{
	double t0 = mono();
	int cancelled = 0;

	pthread_mutex_lock(&d->mu);
	while (!d->done) {
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_nsec += 200000000L;
		if (ts.tv_nsec >= 1000000000L) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000L;
		}
		pthread_cond_timedwait(&d->cv, &d->mu, &ts);
		if (d->done)
			break;
		pthread_mutex_unlock(&d->mu);
		if (stop_signal && !cancelled) {
			cancelled = 1;
			rfs_pool_cancel(pool, key, getuid());
		}
		if (bars) {
			const char *state = "queued";
			double progress = 0;
			rfs_pool_job_state(pool, key, &state, &progress);
			draw_bar(name, state, progress, mono() - t0);
		}
		pthread_mutex_lock(&d->mu);
	}
	pthread_mutex_unlock(&d->mu);
	if (bars) {
		draw_bar(name, d->rc ? "failed" : "done", d->rc ? 0 : 1,
			 mono() - t0);
		fputc('\n', stderr);
	}
}

/* ---- OUT (note 3) ------------------------------------------------------ */

static int copy_fd(int in, int out)
{
	char buf[1 << 16];

	for (;;) {
		ssize_t n = copy_file_range(in, NULL, out, NULL, 1 << 30, 0);
		if (n > 0)
			continue;
		if (n == 0)
			return 0;
		if (errno != EXDEV && errno != EINVAL && errno != ENOSYS &&
		    errno != EOPNOTSUPP)
			return -errno;
		break; /* not between these files: copy by hand */
	}
	for (;;) {
		ssize_t n = read(in, buf, sizeof(buf));
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (n == 0)
			return 0;
		for (ssize_t w = 0; w < n;) {
			ssize_t m = write(out, buf + w, (size_t)(n - w));
			if (m < 0) {
				if (errno == EINTR)
					continue;
				return -errno;
			}
			w += m;
		}
	}
}

static int write_out(rfs_store *st, const rfs_key *key, const char *out,
		     char *msg, size_t len)
{
	char tmp[PATH_MAX + 16], dir[PATH_MAX];
	const char *slash = strrchr(out, '/');
	int in = rfs_store_open_object(st, key), fd = -1, rc;
	mode_t um = umask(0);

	umask(um);
	snprintf(dir, sizeof(dir), "%.*s", slash ? (int)(slash - out) +
		 (slash == out) : 1, slash ? out : ".");
	if (in < 0) {
		snprintf(msg, len, "the output is stored but cannot be "
			 "opened: %s", strerror(-in));
		return -RFS_E_STORE_IO;
	}
	snprintf(tmp, sizeof(tmp), "%s.tmp-XXXXXX", out);
	if ((fd = mkostemp(tmp, O_CLOEXEC)) < 0) {
		rc = errno == ENOSPC || errno == EDQUOT ? -RFS_E_NOSPACE :
		     -RFS_E_STORE_IO;
		snprintf(msg, len, "writing %s: %s", out, strerror(errno));
		goto out;
	}
	rc = copy_fd(in, fd);
	/* mkostemp makes 0600; an output is a file like any the user makes */
	if (!rc && fchmod(fd, 0666 & ~um) < 0)
		rc = -errno;
	if (!rc && fsync(fd) < 0)
		rc = -errno;
	if (close(fd) < 0 && !rc)
		rc = -errno;
	fd = -1;
	if (!rc && rename(tmp, out) < 0)
		rc = -errno;
	if (rc) {
		snprintf(msg, len, "writing %s: %s", out, strerror(-rc));
		unlink(tmp);
		/* the code of the condition, as a store write would have */
		rc = rc == -ENOSPC || rc == -EDQUOT ? -RFS_E_NOSPACE :
		     -RFS_E_STORE_IO;
		goto out;
	}
	int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd >= 0) {
		fsync(dfd);
		close(dfd);
	}
out:
	close(in);
	return rc;
}

/* Note 3: OUT's directory must exist and take a new file, and OUT must
 * not be a directory: checked before any work, so a typo in OUT costs
 * nothing (RFS-E400, exit status 2).  Returns 0, or -RFS_E_OPTION with
 * msg. */
static int check_out(const char *out, char *msg, size_t len)
{
	char dir[PATH_MAX];
	const char *slash = strrchr(out, '/');
	struct stat st;

	snprintf(dir, sizeof(dir), "%.*s", slash ? (int)(slash - out) +
		 (slash == out) : 1, slash ? out : ".");
	if (!*(slash ? slash + 1 : out) ||
	    (stat(out, &st) == 0 && S_ISDIR(st.st_mode))) {
		snprintf(msg, len, "OUT %.300s is a directory: name the file "
			 "to write", out);
		return -RFS_E_OPTION;
	}
	const char *why = stat(dir, &st) < 0 ? strerror(errno) :
			  !S_ISDIR(st.st_mode) ? strerror(ENOTDIR) :
			  access(dir, W_OK | X_OK) < 0 ? strerror(errno) : NULL;
	if (why) {
		snprintf(msg, len, "OUT %.300s: its directory %.300s: %s", out,
			 dir, why);
		return -RFS_E_OPTION;
	}
	return 0;
}

/* ---- the result file (note 5) ------------------------------------------ */

static int exit_status(int rc)
{
	if (rc == 0)
		return 0;
	if (rc == -RFS_E_OPTION)
		return EXIT_USAGE;
	/* note 6: what a mount does not remember, and the stores' failures */
	if (!rfs_jobs_remembered(rc) || rc == -ENOMEM || rc == -EIO ||
	    (-rc >= RFS_E_NOSPACE && -rc <= RFS_E_SHARED))
		return EXIT_TRANSIENT;
	return EXIT_FAILED;
}

static void write_result(const struct run_opts *o, const struct outcome *r,
			 double seconds)
{
	char path[PATH_MAX + 64], tmp[PATH_MAX + 80], host[256] = "";
	const char *slash = strrchr(o->tasks, '/');
	FILE *f;
	struct rfs_json j;

	snprintf(path, sizeof(path), "%.*s/results", slash ?
		 (int)(slash - o->tasks) : 1, slash ? o->tasks : ".");
	mkdir(path, 0777);
	snprintf(path + strlen(path), sizeof(path) - strlen(path), "/%ld.json",
		 o->index);
	snprintf(tmp, sizeof(tmp), "%s.tmp.%ld", path, (long)getpid());
	gethostname(host, sizeof(host) - 1);
	if (!(f = fopen(tmp, "we")))
		return;
	rfs_json_init(&j, f);
	rfs_json_object(&j);
	rfs_json_key(&j, "index");
	rfs_json_i64(&j, o->index);
	rfs_json_key(&j, "name");
	rfs_json_string(&j, o->name);
	rfs_json_key(&j, "status");
	rfs_json_string(&j, r->rc ? "failed" : "done");
	rfs_json_key(&j, "code");
	rfs_json_string(&j, rfs_err_name(r->rc));
	rfs_json_key(&j, "message");
	rfs_json_string(&j, r->rc ? r->msg : r->how);
	rfs_json_key(&j, "exit");
	rfs_json_i64(&j, exit_status(r->rc));
	rfs_json_key(&j, "seconds");
	rfs_json_fixed(&j, seconds, 2);
	rfs_json_key(&j, "host");
	rfs_json_string(&j, host);
	rfs_json_end(&j);
	rfs_json_newline(&j);
	int bad = ferror(f) | (fflush(f) != 0) | (fsync(fileno(f)) < 0);
	if (fclose(f) != 0 || bad || rename(tmp, path) < 0)
		unlink(tmp);
}

/* ---- the run ------------------------------------------------------------ */

/* Note 4: is it published already?  1 yes, 0 no (or cannot tell). */
static int published_already(const struct run_opts *o, int src_fd,
			     const struct stat *sst, const struct rfs_name *r)
{
	unsigned char content[RFS_PKEY_CONTENT];
	struct rfs_src_id id;
	struct rfs_shared_meta m;
	rfs_shared *sh;
	int found = 0;

	rfs_src_id_from_stat(&id, sst);
	if (rfs_pkey_content_fd(src_fd, &id, content, NULL) < 0 ||
	    rfs_shared_open(o->shared, 0700, &sh) < 0)
		return 0;
	rfs_shared_meta_init(&m, content, rfs_pkey_versions(), r->canonical);
	found = rfs_shared_find(sh, &m) == 0;
	rfs_shared_close(sh);
	return found;
}

static void run(const struct run_opts *o, struct outcome *res)
{
	struct rfs_root root = { .fd = -1 };
	char root_abs[PATH_MAX], tmpdir[PATH_MAX] = "";
	struct rfs_name *r = calloc(1, sizeof(*r));
	struct rfs_stats stats;
	struct stat sst;
	rfs_store *store = NULL;
	rfs_pool *pool = NULL;
	rfs_tier *tier = NULL;
	struct done d = { .published = -1 };
	int src_fd = -1, rc, stats_ok = 0;
	rfs_key key;

	pthread_mutex_init(&d.mu, NULL);
	pthread_cond_init(&d.cv, NULL);
	res->how = "computed";
	if (!r) {
		rc = -ENOMEM;
		goto out;
	}
	if ((rc = resolve_name(o, &root, root_abs, r, res)) < 0)
		goto out;
	if (o->out && (rc = check_out(o->out, res->msg,
				      sizeof(res->msg))) < 0)
		goto out;
	if ((src_fd = rfs_pin_source(&root, r->src, &sst)) < 0) {
		rc = src_fd == -ENOENT ? -RFS_E_NO_SOURCE : src_fd;
		snprintf(res->msg, sizeof(res->msg), "cannot open the source "
			 "%.300s: %s", r->src, rfs_strerror(src_fd));
		goto out;
	}
	if (o->shared && !o->out && !o->cache &&
	    published_already(o, src_fd, &sst, r)) {
		res->how = "published already";
		rc = 0;
		goto out;
	}
	struct rfs_src_id id;
	rfs_src_id_from_stat(&id, &sst);
	rfs_key_make(&key, &id, r->canonical);

	/* the store (note 2) */
	struct rfs_store_options so = { .source_root = root_abs };
	const char *dir = o->cache;
	if (!dir) {
		const char *t = getenv("TMPDIR");
		snprintf(tmpdir, sizeof(tmpdir), "%s/rasterfs-run.XXXXXX",
			 t && *t == '/' ? t : "/tmp");
		if (!mkdtemp(tmpdir)) {
			rc = -errno;
			tmpdir[0] = '\0';
			snprintf(res->msg, sizeof(res->msg), "cannot make a "
				 "temporary store: %s", strerror(errno));
			goto out;
		}
		dir = tmpdir;
	} else if ((rc = rfs_store_make_dir(dir)) < 0) {
		snprintf(res->msg, sizeof(res->msg), "cache %s: %s", dir,
			 rfs_strerror(rc));
		goto out;
	}
	if (o->cache_size ? rfs_store_parse_size(o->cache_size, &so.limit) :
	    o->cache ? rfs_store_default_limit(dir, &so.limit) : 0) {
		rc = -RFS_E_OPTION;
		snprintf(res->msg, sizeof(res->msg), "cache_size=%s: expected "
			 "a size such as 20G", o->cache_size);
		goto out;
	}
	if ((rc = rfs_store_open_opts(dir, &so, &store)) < 0) {
		snprintf(res->msg, sizeof(res->msg), "cache store %s: %s", dir,
			 rfs_strerror(rc));
		goto out;
	}

	/* one worker, confined and policed as a mount's (note 1) */
	uid_t wuid;
	gid_t wgid;
	if ((rc = worker_user(o, root_abs, &wuid, &wgid)) < 0) {
		snprintf(res->msg, sizeof(res->msg), "uid=, gid=");
		goto out;
	}
	long pages = sysconf(_SC_PHYS_PAGES), psz = sysconf(_SC_PAGESIZE);
	struct rfs_pool_config pc = {
		.workers = 1,
		.exe = "/proc/self/exe",
		.gdal_cache_mb = o->gdal_cache ? (int)o->gdal_cache : 256,
		.log_sink = RFS_LOG_STDERR,
		.log_level = o->verbose ? LOG_INFO : LOG_CRIT,
		.retry_after = 0,
		.job_timeout = o->job_timeout,
		.worker_mem = o->worker_mem_set ? o->worker_mem_mb << 20 :
			      pages > 0 && psz > 0 ? (uint64_t)pages *
			      (uint64_t)psz : 0,
		.max_pixels = o->max_pixels_set ? o->max_pixels :
			      2147483648ULL,
		/* a private store keeps nothing for later chains */
		.keep_prefixes = o->keep_set ? (int)o->keep_prefixes :
				 o->cache != NULL,
		.stall_timeout = o->stall_set ? o->stall_timeout : 300,
		.owner = getuid(),
		.root = root_abs,
		.worker_uid = wuid,
		.worker_gid = wgid,
	};
	if ((rc = rfs_stats_init(&stats)) < 0)
		goto out;
	stats_ok = 1;
	if ((rc = rfs_pool_new(&pc, store, &stats, &pool)) < 0) {
		snprintf(res->msg, sizeof(res->msg), "cannot start a worker: "
			 "%s", rfs_strerror(rc));
		goto out;
	}
	if (o->shared) {
		struct rfs_tier_config tc = {
			.dir = o->shared,
			.lease = o->lease_set ? o->shared_lease :
				 RFS_TIER_LEASE,
			.wait = o->wait_set ? o->shared_wait : RFS_TIER_WAIT,
			.source_root = root_abs,
			.on_publish = on_publish,
			.arg = &d,
		};
		/* the tier logs why it cannot use DIR at LOG_ERR: shown
		 * even without -v, above the one line */
		if (!o->verbose)
			rfs_log_open("rasterfs", RFS_LOG_STDERR, LOG_ERR);
		rc = rfs_tier_new(&tc, store, pool, &stats, &tier);
		if (!o->verbose)
			rfs_log_open("rasterfs", RFS_LOG_STDERR, LOG_CRIT);
		if (rc < 0) {
			snprintf(res->msg, sizeof(res->msg), "shared tier %s: "
				 "%s", o->shared, rfs_err_is_rfs(rc) ?
				 rfs_strerror(rc) : strerror(-rc));
			if (rc != -RFS_E_SHARED)
				rc = -RFS_E_SHARED;
			goto out;
		}
	}

	struct rfs_job_spec spec = {
		.key = key,
		.src = id,
		.src_fd = src_fd,
		.source_rel = r->src,
		.canonical = r->canonical,
		.vpath = o->name,
		.uid = getuid(),
	};
	src_fd = -1; /* the pool's */
	rc = rfs_pool_request(pool, &spec, job_done, &d);
	if (rc == 1) {
		res->how = "cached";
		rc = 0;
	} else if (rc == 0) {
		int bars = o->progress < 0 ? isatty(STDERR_FILENO) :
			   o->progress;
		wait_job(pool, &key, &d, bars, o->name);
		rc = d.rc;
		if (rc && stop_signal) {
			/* a scheduler signals every process of the task, the
			 * worker too: what ended the job was the signal */
			snprintf(res->msg, sizeof(res->msg), "interrupted by %s "
				 "(the job: %s %.300s)", strsignal(stop_signal),
				 rfs_err_name(rc), d.msg);
			rc = -RFS_E_CANCELLED;
			goto out;
		}
		if (rc) {
			snprintf(res->msg, sizeof(res->msg), "%s",
				 d.msg[0] ? d.msg : rfs_strerror(rc));
			goto out;
		}
		if (atomic_load(&stats.shared_hits))
			res->how = "shared";
	} else {
		char msg[RFS_MSG_MAX] = "";
		rfs_pool_last_error(pool, &key, NULL, msg, sizeof(msg), NULL);
		snprintf(res->msg, sizeof(res->msg), "%s",
			 msg[0] ? msg : rfs_strerror(rc));
		goto out;
	}
	if (o->out && (rc = write_out(store, &key, o->out, res->msg,
				      sizeof(res->msg))) < 0)
		goto out;
	/* note 4: computed here, published before we say done */
	if (tier && strcmp(res->how, "computed") == 0) {
		if (rfs_tier_drain(tier, PUBLISH_TIMEOUT) < 0 ||
		    d.published != 0) {
			rc = -RFS_E_SHARED;
			snprintf(res->msg, sizeof(res->msg), "computed, but not "
				 "published to %s: %s", o->shared,
				 d.published < -1 ? rfs_strerror(d.published) :
				 "not within the time allowed (see the log)");
			goto out;
		}
		res->how = "computed and published";
	}
out:
	if (src_fd >= 0)
		close(src_fd);
	rfs_tier_stop(tier);
	rfs_pool_free(pool);
	rfs_tier_free(tier);
	rfs_store_close(store);
	if (stats_ok)
		rfs_stats_destroy(&stats);
	int rmrc = tmpdir[0] ? rfs_store_remove_tree(tmpdir) : 0;
	if (rmrc < 0)
		fprintf(stderr, "rasterfs run: %s cannot remove the temporary "
			"store %s: %s\n", rfs_err_name(-RFS_E_STORE_IO), tmpdir,
			strerror(-rmrc));
	if (root.fd >= 0)
		close(root.fd);
	free(r);
	pthread_cond_destroy(&d.cv);
	pthread_mutex_destroy(&d.mu);
	res->rc = rc;
	if (rc && !res->msg[0])
		snprintf(res->msg, sizeof(res->msg), "%s", rfs_strerror(rc));
}

int rfs_cli_run(int argc, char **argv)
{
	struct run_opts o = { .progress = -1 };
	struct outcome res = { 0 };
	char taskname[PATH_MAX];
	char *olist = NULL;
	int nargs = 0;

	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		const char **val = !strcmp(a, "--root") ? &o.root :
				   !strcmp(a, "--cache") ? &o.cache :
				   !strcmp(a, "--shared") ? &o.shared :
				   !strcmp(a, "--tasks") ? &o.tasks : NULL;
		if (val || !strcmp(a, "-o") || !strcmp(a, "--index")) {
			if (++i >= argc)
				return bad_usage("an option needs a value");
			if (val)
				*val = argv[i];
			else if (!strcmp(a, "-o"))
				olist = argv[i];
			else {
				unsigned long long n;
				if (parse_num(argv[i], 1UL << 30, &n) < 0)
					return bad_usage("--index N: N is a "
							 "task number, 0 or "
							 "more");
				o.index = (long)n;
				o.index_set = 1;
			}
		} else if (!strcmp(a, "--progress")) {
			o.progress = 1;
		} else if (!strcmp(a, "--no-progress")) {
			o.progress = 0;
		} else if (!strcmp(a, "-v")) {
			o.verbose = 1;
		} else if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
			usage(stdout);
			return 0;
		} else if (a[0] == '-' && a[1]) {
			fprintf(stderr, "rasterfs run: RFS-E400 unknown option "
				"%s\n", a);
			usage(stderr);
			return EXIT_USAGE;
		} else if (nargs == 0) {
			o.name = a;
			nargs++;
		} else if (nargs == 1) {
			o.out = a;
			nargs++;
		} else {
			return bad_usage("too many arguments");
		}
	}
	if (olist) {
		char *copy = strdup(olist);
		int bad = !copy || parse_o(&o, copy) < 0;
		free(copy);
		if (bad)
			return EXIT_USAGE;
	}
	if (o.tasks) {
		const char *env = getenv("SLURM_ARRAY_TASK_ID");
		if (!o.index_set && env && *env) {
			o.index = strtol(env, NULL, 10);
			o.index_set = o.index >= 0;
		}
		if (!o.index_set || !o.root || o.name)
			return bad_usage("--tasks FILE takes --root DIR and "
					 "--index N (or $SLURM_ARRAY_TASK_ID), "
					 "and no name");
		if (task_line(o.tasks, o.index, taskname, sizeof(taskname)) < 0)
			return EXIT_USAGE;
		o.name = taskname;
	}
	if (!o.name)
		return bad_usage("expected SRC@CHAIN");

	/* quiet but for the one line below, unless -v (the Slurm script of
	 * warm --slurm passes it: the task's log is its output file) */
	rfs_log_init("rasterfs", RFS_LOG_STDERR,
		     o.verbose ? LOG_INFO : LOG_CRIT);
	struct sigaction sa = { .sa_handler = on_signal };
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);

	double t0 = mono();
	run(&o, &res);
	rfs_crs_cleanup();
	if (res.rc)
		fprintf(stderr, "rasterfs run: %s: %s %s\n", o.name,
			rfs_err_name(res.rc), res.msg);
	else if (o.verbose || o.tasks)
		fprintf(stderr, "rasterfs run: %s: %s in %.2f s\n", o.name,
			res.how, mono() - t0);
	if (o.tasks)
		write_result(&o, &res, mono() - t0);
	return exit_status(res.rc);
}
