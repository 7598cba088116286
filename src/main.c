/* main.c - rasterfs: parse -> store -> workers -> session -> mount -> loop
 * -> unwind. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pwd.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fuse_lowlevel.h>
#include <gdal.h>

#include "rasterfs/cli.h"
#include "rasterfs/confine.h"
#include "rasterfs/crs.h"
#include "rasterfs/describer.h"
#include "rasterfs/doc.h"
#include "rasterfs/err.h"
#include "rasterfs/fs.h"
#include "rasterfs/log.h"
#include "rasterfs/mountopt.h"
#include "rasterfs/pool.h"
#include "rasterfs/rasterext.h"
#include "rasterfs/store.h"
#include "rasterfs/tier.h"
#include "rasterfs/worker.h"

struct options {
	char *source;
	char *cache;
	unsigned workers;
	unsigned gdal_cache_mb;
	/* limits (issue 5); the *_set flags tell "0" from "not given" */
	unsigned retry_after;
	int retry_after_set;
	unsigned job_timeout;
	unsigned long long worker_mem_mb;
	int worker_mem_set;
	unsigned long long max_pixels;
	int max_pixels_set;
	char *cache_size;
	unsigned keep_prefixes;
	int keep_prefixes_set;
	unsigned stall_timeout;
	int stall_timeout_set;
	unsigned passthrough;
	int passthrough_set;
	unsigned lazy;
	int lazy_set;
	unsigned complete;
	/* the workers' user (confine.h) */
	unsigned uid, gid;
	int uid_set, gid_set;
	/* describers (describer.h) */
	unsigned describers;
	int describers_set;
	unsigned describe_timeout;
	int describe_timeout_set;
	/* named views: the values of view=NAME:CHAIN, in order */
	char **views;
	size_t nviews;
	/* the shared tier (tier.h) */
	char *shared;
	unsigned shared_lease;
	int shared_lease_set;
	unsigned shared_wait;
	int shared_wait_set;
};

enum { KEY_VIEW = 1 };

/* Defaults stated by the option table and applied by main(): one number
 * each, so the documentation cannot say another. */
#define DFLT_GDAL_CACHE 256
#define DFLT_MAX_PIXELS 2147483648
#define DFLT_STALL_TIMEOUT 300
#define DFLT_RETRY_AFTER 60
#define DFLT_KEEP_PREFIXES 1
#define DFLT_PASSTHROUGH 1
#define DFLT_LAZY 1
#define DFLT_COMPLETE 0
#define DFLT_DESCRIBERS 2           /* 1 on a single CPU */
#define DFLT_DESCRIBE_TIMEOUT 10
#define STR_(x) #x
#define STR(x) STR_(x)

/* The mount options (doc.h): parsed through the fuse_opt list built from
 * these rows (build_spec) and documented from them (--help, rasterfs(1),
 * completion).  OWN: the option and where its value goes; GIVEN: where
 * "it was given" goes, to tell 0 from the default. */
#define OWN(n, fmt, field) \
	.name = n, .templ = n "=" fmt, .at = offsetof(struct options, field)
#define GIVEN(n, flag) \
	.given = n "=", .given_at = offsetof(struct options, flag)

static const struct rfs_option options[] = {
	{ OWN("cache", "%s", cache), .arg = "DIR",
	  .dflt = "$XDG_CACHE_HOME/rasterfs, else ~/.cache/rasterfs",
	  .what = "the cache store, created if missing",
	  .more = "Mounts that name the same store share it: what one "
		  "computed, the other finds. mount(8) removes HOME from the "
		  "environment, so give cache= in fstab and mount -t lines." },
	{ OWN("workers", "%u", workers), .arg = "N",
	  .dflt = "the number of online CPUs",
	  .what = "worker processes computing outputs in parallel, 1 to 256" },
	{ OWN("gdal_cache", "%u", gdal_cache_mb), .arg = "MB",
	  .dflt = STR(DFLT_GDAL_CACHE),
	  .what = "GDAL's block cache in each worker, up to 65536" },
	{ OWN("max_pixels", "%llu", max_pixels),
	  GIVEN("max_pixels", max_pixels_set), .arg = "N",
	  .dflt = "2^31 = " STR(DFLT_MAX_PIXELS),
	  .what = "refuse an output or intermediate over N pixels (EFBIG, "
		  "RFS-E106) before computing any; 0: no limit",
	  .more = "Each step's grid is worked out from the source's header, "
		  "so the open fails within a fraction of a second, naming "
		  "the step and its grid." },
	{ OWN("worker_mem", "%llu", worker_mem_mb),
	  GIVEN("worker_mem", worker_mem_set), .arg = "MB",
	  .dflt = "physical RAM / workers",
	  .what = "address space each worker may use (RLIMIT_AS); a job that "
		  "needs more fails with ENOMEM (RFS-E203); 0: no limit" },
	{ OWN("job_timeout", "%u", job_timeout), .arg = "S",
	  .dflt = "0, none",
	  .what = "stop a job running longer than S seconds (RFS-E205)" },
	{ OWN("stall_timeout", "%u", stall_timeout),
	  GIVEN("stall_timeout", stall_timeout_set), .arg = "S",
	  .dflt = STR(DFLT_STALL_TIMEOUT),
	  .what = "stop a job whose worker reported no progress for S "
		  "seconds (ETIMEDOUT, RFS-E209); 0: never" },
	{ OWN("retry_after", "%u", retry_after),
	  GIVEN("retry_after", retry_after_set), .arg = "S",
	  .dflt = STR(DFLT_RETRY_AFTER),
	  .what = "a failed output fails again at once for S seconds instead "
		  "of being recomputed; 0: always retry",
	  .more = "A changed source or a remount retries at once; cancelled "
		  "jobs, dead or stalled workers and sources that changed "
		  "under their job are not remembered." },
	{ OWN("cache_size", "%s", cache_size), .arg = "SIZE",
	  .dflt = "10% of the cache's filesystem, at most 50G",
	  .what = "keep at most SIZE bytes of outputs (20G, 500M, 64K: powers "
		  "of 1024, or bytes); the least recently read go first" },
	{ OWN("keep_prefixes", "%u", keep_prefixes),
	  GIVEN("keep_prefixes", keep_prefixes_set), .arg = "0|1",
	  .dflt = STR(DFLT_KEEP_PREFIXES),
	  .what = "keep the first step of a chain that starts with a warp "
		  "(proj, res, size) as an output of its own and start later "
		  "chains from it" },
	{ OWN("passthrough", "%u", passthrough),
	  GIVEN("passthrough", passthrough_set), .arg = "0|1",
	  .dflt = STR(DFLT_PASSTHROUGH),
	  .what = "serve finished outputs and source files by FUSE "
		  "passthrough when the daemon may (CAP_SYS_ADMIN, Linux >= "
		  "6.9, built with libfuse >= 3.16); 0: never",
	  .more = "The mount's log says at start whether passthrough is on "
		  "and, if not, why." },
	{ OWN("lazy", "%u", lazy),
	  GIVEN("lazy", lazy_set), .arg = "0|1",
	  .dflt = STR(DFLT_LAZY),
	  .what = "open a GeoTIFF output of more than 2^25 pixels at once and "
		  "compute only the 512 x 512 blocks that reads touch; 0: "
		  "compute it whole at its first open",
	  .more = "The bytes are the same either way (docs/large-outputs.md)." },
	{ OWN("complete", "%u", complete), .arg = "0|1",
	  .dflt = STR(DFLT_COMPLETE),
	  .what = "finish an opened lazy output in the background, behind "
		  "the blocks readers wait for; 0: compute only what is read",
	  .more = "0 by default: a viewer that drew a corner of a huge output "
		  "should not cost the whole of it." },
	{ OWN("describers", "%u", describers),
	  GIVEN("describers", describers_set), .arg = "N",
	  .dflt = STR(DFLT_DESCRIBERS) ", 1 on a single CPU",
	  .what = "processes that describe GeoTIFF outputs before they are "
		  "computed, so stat and ls -l tell their exact size; 0 to 16; "
		  "0: size 0 until computed",
	  .more = "A describe reads headers only and starts no job; the store "
		  "keeps what it found, so a second ls -l, or one after a "
		  "remount, asks no describer." },
	{ OWN("describe_timeout", "%u", describe_timeout),
	  GIVEN("describe_timeout", describe_timeout_set), .arg = "S",
	  .dflt = STR(DFLT_DESCRIBE_TIMEOUT),
	  .what = "a describe not answered in S seconds, 1 to 3600, leaves "
		  "the output's size 0 until it is computed" },
	{ OWN("uid", "%u", uid), GIVEN("uid", uid_set), .arg = "N",
	  .dflt = "the owner of SOURCE_DIR if not root, else root, confined",
	  .what = "the user the workers run as, when rasterfs runs as root" },
	{ OWN("gid", "%u", gid), GIVEN("gid", gid_set), .arg = "N",
	  .dflt = "uid's primary group; without uid, the group of SOURCE_DIR",
	  .what = "the group the workers run as (needs uid=)" },
	{ OWN("shared", "%s", shared), .arg = "DIR", .dflt = "none",
	  .what = "a shared tier on the cluster's filesystem: outputs not in "
		  "the store are looked for there (by portable key) before "
		  "they are computed, and what is computed is published there",
	  .more = "Reading a source whole for its content hash is the price "
		  "(once per source version). See docs/cluster.md; rasterfs "
		  "warm --slurm needs it." },
	{ OWN("shared_lease", "%u", shared_lease),
	  GIVEN("shared_lease", shared_lease_set), .arg = "S",
	  .dflt = STR(RFS_TIER_LEASE),
	  .what = "claims in the shared tier: a key being computed is claimed "
		  "for S seconds, renewed while it runs; others wait for it, "
		  "and take a claim not renewed for S seconds over; 0: no "
		  "claims" },
	{ OWN("shared_wait", "%u", shared_wait),
	  GIVEN("shared_wait", shared_wait_set), .arg = "S",
	  .dflt = STR(RFS_TIER_WAIT),
	  .what = "wait at most S seconds for another node's claimed "
		  "computation, then compute it too; 0: never wait" },
	{ .name = "view", .templ = "view=", .key = KEY_VIEW,
	  .arg = "NAME:CHAIN",
	  .what = "a directory NAME in the mount's root mirroring the tree "
		  "with CHAIN applied, e.g. view=hs:@proj=EPSG:3857@hillshade; "
		  "repeatable; escape commas: view=peaks:@focal=5\\,max" },
	/* libfuse's, passed on to it */
	{ .name = "allow_other",
	  .what = "let other users use the mount, with the source's "
		  "permissions (needs user_allow_other in /etc/fuse.conf "
		  "unless root)" },
	{ .name = "auto_unmount",
	  .what = "unmount when rasterfs exits, even when killed" },
	{ .name = "max_threads", .arg = "N", .dflt = "10",
	  .what = "threads serving FUSE requests (a waiting open holds none), "
		  "up to 1024" },
	{ .name = NULL },
};

/* libfuse's option list for options[]: each own row, and its GIVEN. */
static struct fuse_opt option_spec[2 * sizeof(options) / sizeof(options[0])
				    + 1];

static void build_spec(void)
{
	size_t n = 0;

	for (const struct rfs_option *o = options; o->name; o++) {
		if (!o->templ)
			continue;
		if (o->key)
			option_spec[n++] = (struct fuse_opt)
				FUSE_OPT_KEY(o->templ, o->key);
		else
			option_spec[n++] = (struct fuse_opt){ o->templ, o->at,
							      0 };
		if (o->given)
			option_spec[n++] = (struct fuse_opt){ o->given,
							      o->given_at, 1 };
	}
	option_spec[n] = (struct fuse_opt)FUSE_OPT_END;
}

/* Subcommands: `rasterfs COMMAND ...`.  A source directory that happens to
 * be named like a command is spelled ./NAME. */
static const struct rfs_command commands[] = {
	{ "status", rfs_cli_status, "MOUNTPOINT [--json]",
	  "show the jobs and their progress",
	  "On a terminal a table with live progress bars, refreshed until no "
	  "job is queued or running; otherwise a plain table, once. --json "
	  "prints MOUNTPOINT/.rasterfs/jobs as it is." },
	{ "warm", rfs_cli_warm, "[--wait] PATH...",
	  "compute outputs ahead of their readers",
	  "The part of a PATH before the first @ of its last component may "
	  "be a glob (quote it). With --wait, wait for every output, with a "
	  "progress bar on a terminal; exit status 1 if any failed." },
	{ "cancel", rfs_cli_cancel, "PATH... | --all MOUNTPOINT",
	  "cancel the jobs of outputs, or all of a mount",
	  "Readers waiting on them get ECANCELED (RFS-E204)." },
	{ "cache", rfs_cli_cache,
	  "[--cache DIR] [--json] stats|ls [PATTERN]|verify|gc [--limit "
	  "SIZE]|clear",
	  "look after a cache store, mounted or not",
	  "stats: objects, bytes, ages, outputs per source. ls: every output "
	  "by its virtual name, PATTERN a glob. verify: check every object's "
	  "size and checksum (exit status 1 on a problem). gc: repair, drop "
	  "outputs of changed or removed sources, evict to SIZE. clear: "
	  "remove every output (refused while mounted). DIR defaults to the "
	  "mounts' default." },
	{ "check", rfs_cli_check, "[--json] NAME...",
	  "say whether each name is right, and why not",
	  "Prints the source, the canonical chain and the portable spelling, "
	  "or the error's code, errno, message and what to do; a path inside "
	  "a mount is resolved as the mount resolves it. Exit status 1 if "
	  "any name is bad." },
	{ "run", rfs_cli_run,
	  "[--root DIR] [--cache DIR] [--shared DIR] [-o OPTIONS] "
	  "[--progress] SRC@CHAIN [OUT]",
	  "compute one output without FUSE, as a mount would",
	  "The same steps, limits, confinement and error codes as a mount; "
	  "OUT is written whole or not at all (OUT.tmp-XXXXXX, fsync, "
	  "rename). --cache DIR commits into a store a mount with cache=DIR "
	  "serves; --shared DIR looks in and publishes to a shared tier. "
	  "OPTIONS: max_pixels=, worker_mem=, job_timeout=, stall_timeout=, "
	  "gdal_cache=, keep_prefixes=, shared_lease=, shared_wait=, "
	  "cache_size=, uid=, gid=. Exit status 0 done, 1 the output cannot "
	  "be made, 2 bad usage, 3 a failure a retry may get past (worker "
	  "crashed or stalled, interrupted, store or shared tier failed)." },
	{ "steps", rfs_cli_steps, "",
	  "list every step, its arguments, defaults and an example", NULL },
	{ NULL, NULL, NULL, NULL, NULL },
};

static const struct rfs_command *find_command(const char *name)
{
	for (const struct rfs_command *c = commands; c->name; c++)
		if (strcmp(c->name, name) == 0)
			return c;
	return NULL;
}

/* The first non-option argument is the source; the second is left for
 * fuse_parse_cmdline() as the mount point. */
static int option_proc(void *data, const char *arg, int key,
		       struct fuse_args *outargs)
{
	struct options *o = data;
	(void)outargs;

	if (key == FUSE_OPT_KEY_NONOPT && !o->source) {
		o->source = strdup(arg);
		return 0;
	}
	if (key == KEY_VIEW) {
		char **v = realloc(o->views, (o->nviews + 1) * sizeof(*v));
		if (!v)
			return -1;
		o->views = v;
		if (!(v[o->nviews] = strdup(arg + strlen("view="))))
			return -1;
		o->nviews++;
		return 0;
	}
	return 1;
}

/* The user and group the workers run as (confine.h): only a root daemon
 * can give them another; by default the owner of the source directory
 * when it is not root.  Returns 0 and *uid, *gid ((uid_t)-1: the daemon's
 * own), or -RFS_E_OPTION with a message on stderr. */
static int worker_user(const struct options *o, const char *root,
		       uid_t *uid, gid_t *gid)
{
	struct stat st;

	*uid = (uid_t)-1;
	*gid = (gid_t)-1;
	if (geteuid() != 0) {
		if ((o->uid_set && o->uid != geteuid()) ||
		    (o->gid_set && o->gid != getegid())) {
			fprintf(stderr, "rasterfs: RFS-E400 uid=, gid=: only a "
				"rasterfs running as root can run its workers "
				"as another user\n");
			return -RFS_E_OPTION;
		}
		return 0;
	}
	if (o->uid_set) {
		struct passwd *pw = getpwuid(o->uid);
		*uid = o->uid;
		*gid = o->gid_set ? o->gid : pw ? pw->pw_gid : o->uid;
		return 0;
	}
	if (o->gid_set) {
		fprintf(stderr, "rasterfs: RFS-E400 gid= needs uid=\n");
		return -RFS_E_OPTION;
	}
	if (stat(root, &st) == 0 && st.st_uid != 0) {
		*uid = st.st_uid;
		*gid = st.st_gid;
	}
	return 0;
}

/* shared=DIR: the tier (tier.h) on the pool (none: *out NULL); and what
 * user.rasterfs.run says (fs.h): the tier and the options a task that
 * computes this mount's outputs elsewhere takes, the same limits
 * (worker_mem only when given: its default depends on the machine).
 * Returns 0, or a code (said on stderr). */
static int start_tier(const struct options *o, rfs_fs *fs, rfs_store *store,
		      rfs_pool *pool, rfs_tier **out)
{
	struct rfs_tier_config tc = {
		.dir = o->shared,
		.lease = o->shared_lease,
		.wait = o->shared_wait,
		.source_root = rfs_fs_root(fs),
	};
	char text[PATH_MAX + 512], mem[40] = "";
	int rc = o->shared ? rfs_tier_new(&tc, store, pool, rfs_fs_stats(fs),
					  out) : 0;

	if (rc < 0) {
		/* every failure to open DIR is the tier's: RFS-E305 */
		fprintf(stderr, "rasterfs: shared=%s: %s %s\n", o->shared,
			rfs_err_name(-RFS_E_SHARED), rfs_err_is_rfs(rc) ?
			rfs_strerror(rc) : strerror(-rc));
		return rc;
	}
	if (o->worker_mem_set)
		snprintf(mem, sizeof(mem), ",worker_mem=%llu",
			 o->worker_mem_mb);
	snprintf(text, sizeof(text), "shared=%s\noptions=max_pixels=%llu,"
		 "job_timeout=%u,stall_timeout=%u,gdal_cache=%u,"
		 "keep_prefixes=%u,shared_lease=%u,shared_wait=%u%s\n",
		 *out ? rfs_tier_dir(*out) : "", o->max_pixels, o->job_timeout,
		 o->stall_timeout, o->gdal_cache_mb, o->keep_prefixes,
		 o->shared_lease, o->shared_wait, mem);
	return rfs_fs_set_run(fs, text);
}

/* Each open handle of an output holds one descriptor of the daemon: the
 * soft limit (1024 by default) would fail opens and jobs long before the
 * hard one (often 2^20), so take the hard one. */
static void raise_fd_limit(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
			fprintf(stderr, "rasterfs: cannot raise the open file "
				"limit: %s\n", strerror(errno));
	}
}

/* Fork before anything starts a thread or opens the store; the parent
 * waits until the child reports the mount ready (or failed) and exits with
 * that status, so `rasterfs SRC MNT && ls MNT` works. */
static int daemon_fork(int *notify_fd)
{
	int p[2];
	char status = 1;

	if (pipe2(p, O_CLOEXEC) < 0)
		return -errno;
	pid_t pid = fork();
	if (pid < 0)
		return -errno;
	if (pid > 0) {
		close(p[1]);
		if (read(p[0], &status, 1) != 1)
			status = 1;
		_exit(status);
	}
	close(p[0]);
	setsid();
	*notify_fd = p[1];
	return 0;
}

static void daemon_ready(int notify_fd, char status)
{
	int null;

	if (notify_fd < 0)
		return;
	/* the caller stops reading our stderr (daemon_log) */
	rfs_log_also_stderr(0);
	if (status == 0 && (null = open("/dev/null", O_RDWR)) >= 0) {
		dup2(null, STDIN_FILENO);
		dup2(null, STDOUT_FILENO);
		dup2(null, STDERR_FILENO);
		if (null > STDERR_FILENO)
			close(null);
	}
	if (write(notify_fd, &status, 1) != 1)
		status = 1;
	close(notify_fd);
}

/* Once forked, where the log goes: syslog, or, with no syslog socket
 * (/dev/log; containers often have none), a file in the user's state
 * directory (log.h, rfs_log_state_file), at most about 2 x 8 MiB.  Said
 * on stderr while the caller still reads it, and until the mount is up
 * (daemon_ready) every line goes to that stderr too, so a failed start
 * shows its reason where it was asked for. */
#define LOG_FILE_CAP (8u << 20)

static void daemon_log(const char *mountpoint, int level)
{
	char abs[PATH_MAX], path[PATH_MAX];
	int rc;

	rfs_log_also_stderr(1);
	if (rfs_log_have_syslog()) {
		rfs_log_init("rasterfs", RFS_LOG_SYSLOG, level);
		fprintf(stderr, "rasterfs: logging to syslog; the last %d "
			"lines are in %s/.rasterfs/log\n", RFS_LOG_RING,
			mountpoint);
		return;
	}
	if (!realpath(mountpoint, abs))
		snprintf(abs, sizeof(abs), "%s", mountpoint);
	if ((rc = rfs_log_state_file(abs, path, sizeof(path))) < 0 ||
	    (rc = rfs_log_open_file("rasterfs", path, LOG_FILE_CAP,
				    level)) < 0) {
		fprintf(stderr, "rasterfs: no syslog socket (/dev/log) and no "
			"log file (%s): the last %d lines are only in "
			"%s/.rasterfs/log\n", strerror(-rc), RFS_LOG_RING,
			mountpoint);
		return;
	}
	fprintf(stderr, "rasterfs: no syslog socket (/dev/log): logging to "
		"%s; the last %d lines are also in %s/.rasterfs/log\n", path,
		RFS_LOG_RING, mountpoint);
}

int main(int argc, char **argv)
{
	struct fuse_args args = FUSE_ARGS_INIT(0, NULL);
	struct fuse_cmdline_opts cmd = { 0 };
	struct options opt = { 0 };
	rfs_fs *fs = NULL;
	rfs_store *store = NULL;
	rfs_pool *pool = NULL;
	rfs_tier *tier = NULL;
	rfs_describer *describer = NULL;
	struct fuse_session *se = NULL;
	struct fuse_loop_config *loop = NULL;
	int notify_fd = -1, rc, ret = 1, mounted = 0, handlers = 0;
	char fsname[PATH_MAX + 32], *optstr = NULL, msg[PATH_MAX + 256];
	unsigned mflags;

	if (argc > 1 && strcmp(argv[1], RFS_WORKER_ARG) == 0)
		return rfs_worker_main(argc - 1, argv + 1);
	if (argc > 1 && strcmp(argv[1], RFS_RASTEREXT_ARG) == 0)
		return rfs_rasterext_main(argc - 1, argv + 1);
	/* The documentation from the tables (doc.h): the build's man page,
	 * the completion script's words. */
	if (argc == 3 && strcmp(argv[1], RFS_DOC_MAN_ARG) == 0)
		return rfs_doc_man(stdout, argv[2], options, commands) < 0 ||
		       fflush(stdout) != 0;
	if (argc == 2 && strcmp(argv[1], RFS_DOC_COMPLETE_ARG) == 0) {
		rfs_doc_complete(stdout, options, commands);
		return fflush(stdout) != 0;
	}
	/* As mount.fuse.rasterfs, argv[1] is the source, whatever its name. */
	const struct rfs_command *command = argc > 1 &&
		!rfs_mountopt_is_helper(argv[0]) ? find_command(argv[1]) : NULL;
	if (command)
		return command->run(argc - 1, argv + 1);

	/* mount(8)'s helper convention and the options it adds (mountopt.h);
	 * every option error on one line, libfuse's too. */
	if ((rc = rfs_mountopt_args(argc, argv, &args, &mflags, msg,
				    sizeof(msg))) < 0) {
		fprintf(stderr, "rasterfs: %s %s\n", rfs_err_name(rc),
			msg[0] ? msg : rfs_strerror(rc));
		goto out;
	}
	build_spec();
	rfs_mountopt_capture_begin();
	rc = fuse_opt_parse(&args, &opt, option_spec, option_proc) < 0 ||
	     fuse_parse_cmdline(&args, &cmd) != 0;
	if (rfs_mountopt_capture_end(msg, sizeof(msg)) && !rc)
		fprintf(stderr, "rasterfs: %s\n", msg);
	if (rc) {
		fprintf(stderr, "rasterfs: RFS-E400 %s (see rasterfs "
			"--help)\n", msg[0] ? msg : "bad arguments");
		goto out;
	}
	if (cmd.show_help) {
		rfs_doc_help(stdout, argv[0], options, commands);
		fuse_cmdline_help();
		fuse_lowlevel_help();
		ret = 0;
		goto out;
	}
	if (cmd.show_version) {
		printf("rasterfs %s (libfuse %s, %s, PROJ through GDAL)\n",
		       RFS_VERSION, fuse_pkgversion(),
		       GDALVersionInfo("--version"));
		ret = 0;
		goto out;
	}
	if (!opt.source || !cmd.mountpoint) {
		fprintf(stderr, "rasterfs: RFS-E400 expected SOURCE_DIR and "
			"MOUNTPOINT (see rasterfs --help)\n");
		goto out;
	}
	if (rfs_mountopt_check_target(cmd.mountpoint, msg, sizeof(msg)) ==
	    -RFS_E_OPTION) {
		fprintf(stderr, "rasterfs: RFS-E400 %s\n", msg);
		goto out;
	}
	if (!opt.cache && (rc = rfs_store_default_dir(&opt.cache)) < 0) {
		fprintf(stderr, "rasterfs: cache: %s\n", rfs_strerror(rc));
		goto out;
	}
	if (!opt.workers) {
		long n = sysconf(_SC_NPROCESSORS_ONLN);
		opt.workers = n > 0 ? (unsigned)n : 1;
	}
	if (!opt.gdal_cache_mb)
		opt.gdal_cache_mb = DFLT_GDAL_CACHE;
	if (!opt.retry_after_set)
		opt.retry_after = DFLT_RETRY_AFTER;
	if (!opt.keep_prefixes_set)
		opt.keep_prefixes = DFLT_KEEP_PREFIXES;
	if (!opt.stall_timeout_set)
		opt.stall_timeout = DFLT_STALL_TIMEOUT;
	if (!opt.passthrough_set)
		opt.passthrough = DFLT_PASSTHROUGH;
	if (!opt.lazy_set)
		opt.lazy = DFLT_LAZY;
	if (!opt.max_pixels_set)
		opt.max_pixels = DFLT_MAX_PIXELS;
	if (!opt.describers_set)
		opt.describers = sysconf(_SC_NPROCESSORS_ONLN) > 1 ?
				 DFLT_DESCRIBERS : 1;
	if (!opt.describe_timeout_set)
		opt.describe_timeout = DFLT_DESCRIBE_TIMEOUT;
	if (opt.describers > 16 || opt.describe_timeout < 1 ||
	    opt.describe_timeout > 3600) {
		fprintf(stderr, "rasterfs: RFS-E400 describers=%u, "
			"describe_timeout=%u: expected describers from 0 to 16 "
			"and describe_timeout from 1 to 3600 (s)\n",
			opt.describers, opt.describe_timeout);
		goto out;
	}
	if (!opt.worker_mem_set) {
		long pages = sysconf(_SC_PHYS_PAGES), psz = sysconf(_SC_PAGESIZE);
		if (pages > 0 && psz > 0)
			opt.worker_mem_mb = (unsigned long long)pages *
				(unsigned long long)psz / opt.workers >> 20;
	}
	if (opt.worker_mem_mb > (1ULL << 40)) {
		fprintf(stderr, "rasterfs: RFS-E400 worker_mem=%llu: expected "
			"megabytes\n", opt.worker_mem_mb);
		goto out;
	}
	if (!opt.shared_lease_set)
		opt.shared_lease = RFS_TIER_LEASE;
	if (!opt.shared_wait_set)
		opt.shared_wait = RFS_TIER_WAIT;
	if (opt.shared_lease > 3600) {
		fprintf(stderr, "rasterfs: RFS-E400 shared_lease=%u: expected "
			"seconds up to 3600\n", opt.shared_lease);
		goto out;
	}
	if (opt.complete > 1) {
		fprintf(stderr, "rasterfs: RFS-E400 complete=%u: expected 0 or "
			"1\n", opt.complete);
		goto out;
	}
	if (opt.lazy > 1) {
		fprintf(stderr, "rasterfs: RFS-E400 lazy=%u: expected 0 or 1\n",
			opt.lazy);
		goto out;
	}
	if (opt.passthrough > 1) {
		fprintf(stderr, "rasterfs: RFS-E400 passthrough=%u: expected 0 "
			"or 1\n", opt.passthrough);
		goto out;
	}
	if (opt.workers > 256 || opt.gdal_cache_mb > 65536) {
		fprintf(stderr, "rasterfs: RFS-E400 workers=%u, gdal_cache=%u: "
			"expected workers from 1 to 256 and gdal_cache up to "
			"65536 (MB)\n", opt.workers, opt.gdal_cache_mb);
		goto out;
	}
	if (mflags & RFS_MOUNTOPT_FAKE) {
		ret = 0; /* mount -f: everything but the mount */
		goto out;
	}

	rfs_log_init("rasterfs", RFS_LOG_STDERR,
		     cmd.debug ? LOG_DEBUG : LOG_INFO);
	/* MOUNTPOINT/.rasterfs/log: the last lines, whatever the sink. */
	if (rfs_log_ring_open() < 0)
		goto out;
	/* Whatever the daemon or its workers create (store directories,
	 * objects, scratch files) is private to the mount's owner; readers
	 * reach outputs only through the mount, with the source's
	 * permissions (fs_node.c note 3). */
	umask(077);
	raise_fd_limit();
	if ((rc = rfs_fs_new(opt.source, &fs)) < 0) {
		fprintf(stderr, "rasterfs: source %s: %s\n", opt.source,
			rfs_strerror(rc));
		goto out;
	}
	rfs_fs_set_passthrough(fs, (int)opt.passthrough);
	rfs_fs_set_lazy(fs, (int)opt.lazy, (int)opt.complete);
	uid_t wuid;
	gid_t wgid;
	if (worker_user(&opt, rfs_fs_root(fs), &wuid, &wgid) < 0)
		goto out;
	for (size_t i = 0; i < opt.nviews; i++) {
		char msg[RFS_MSG_MAX + 256];
		if ((rc = rfs_fs_add_view(fs, opt.views[i], msg,
					  sizeof(msg))) < 0) {
			fprintf(stderr, "rasterfs: %s %s\n", rfs_err_name(rc),
				rc == -RFS_E_OPTION ? msg : rfs_strerror(rc));
			goto out;
		}
	}
	/* Which files views list: GDAL's raster extensions, from a process
	 * of our own (GDAL runs only outside the daemon; rasterext.h). */
	{
		struct rfs_rasterext *exts = malloc(sizeof(*exts));
		char msg[RFS_MSG_MAX];
		rc = exts ? rfs_rasterext_probe("/proc/self/exe",
						RFS_RASTEREXT_TIMEOUT, exts,
						msg, sizeof(msg)) : -ENOMEM;
		if (rc == 0)
			rc = rfs_fs_set_rasters(fs, exts);
		free(exts);
		if (rc < 0) {
			fprintf(stderr, "rasterfs: %s %s\n", rfs_err_name(rc),
				rc == -RFS_E_DRIVERS ? msg : rfs_strerror(rc));
			goto out;
		}
	}
	if ((rc = rfs_store_make_dir(opt.cache)) < 0) {
		fprintf(stderr, "rasterfs: cache %s: %s\n", opt.cache,
			rfs_strerror(rc));
		goto out;
	}
	char cache_abs[PATH_MAX];
	if (!realpath(opt.cache, cache_abs)) {
		fprintf(stderr, "rasterfs: cache %s: %s\n", opt.cache,
			strerror(errno));
		goto out;
	}

	/* Read-only, kernel-checked permissions, and a name in the mount
	 * table that says what is mounted. */
	snprintf(fsname, sizeof(fsname), "fsname=rasterfs:%s",
		 rfs_fs_root(fs));
	if (fuse_opt_add_opt_escaped(&optstr, fsname) < 0 ||
	    fuse_opt_add_opt(&optstr, "ro,default_permissions,subtype=rasterfs") < 0 ||
	    fuse_opt_add_arg(&args, "-o") < 0 ||
	    fuse_opt_add_arg(&args, optstr) < 0)
		goto out;
	/* libfuse's options are known only here: before the fork, the store
	 * and the workers, so a bad one fails at once, on one line. */
	rfs_mountopt_capture_begin();
	se = fuse_session_new(&args, &rfs_fs_ops, sizeof(rfs_fs_ops), fs);
	rfs_mountopt_capture_end(msg, sizeof(msg));
	rfs_log_init("rasterfs", RFS_LOG_STDERR,
		     cmd.debug ? LOG_DEBUG : LOG_INFO);
	if (!se) {
		fprintf(stderr, "rasterfs: RFS-E400 %s (see rasterfs "
			"--help)\n", msg[0] ? msg : "libfuse refused the options");
		goto out;
	}
	rfs_fs_set_session(fs, se);

	/* Every option is checked before the fork: a bad one is one line. */
	struct rfs_store_options so = { .source_root = rfs_fs_root(fs) };
	if (opt.cache_size ? rfs_store_parse_size(opt.cache_size, &so.limit) :
	    rfs_store_default_limit(cache_abs, &so.limit)) {
		fprintf(stderr, "rasterfs: RFS-E400 cache_size=%s: expected a "
			"size such as 20G, 500M or a number of bytes\n",
			opt.cache_size ? opt.cache_size : "(default)");
		goto out;
	}
	if (!cmd.foreground && (rc = daemon_fork(&notify_fd)) < 0) {
		fprintf(stderr, "rasterfs: cannot daemonise: %s\n",
			strerror(-rc));
		goto out;
	}
	if (notify_fd >= 0)
		daemon_log(cmd.mountpoint, cmd.debug ? LOG_DEBUG : LOG_INFO);
	signal(SIGPIPE, SIG_IGN);
	/* The workers' lines come through the daemon (log.h), after the
	 * fork: the reader is a thread. */
	int log_wfd = -1;
	if ((rc = rfs_log_capture_start(&log_wfd)) < 0)
		fprintf(stderr, "rasterfs: cannot read the workers' log lines "
			"(%s): they go to %s\n", strerror(-rc),
			cmd.foreground ? "stderr" : "syslog");

	if ((rc = rfs_store_open_opts(cache_abs, &so, &store)) < 0) {
		fprintf(stderr, "rasterfs: cache store %s: %s %s\n", cache_abs,
			rfs_err_name(rc), rfs_strerror(rc));
		goto out;
	}
	struct rfs_pool_config pc = {
		.workers = opt.workers,
		.exe = "/proc/self/exe",
		.gdal_cache_mb = (int)opt.gdal_cache_mb,
		.log_sink = log_wfd >= 0 ? RFS_LOG_DAEMON :
			    cmd.foreground ? RFS_LOG_STDERR : RFS_LOG_SYSLOG,
		.log_fd = log_wfd,
		.log_level = cmd.debug ? LOG_DEBUG : LOG_INFO,
		.retry_after = opt.retry_after,
		.job_timeout = opt.job_timeout,
		.worker_mem = opt.worker_mem_mb << 20,
		.max_pixels = opt.max_pixels,
		.keep_prefixes = opt.keep_prefixes != 0,
		.stall_timeout = opt.stall_timeout,
		.owner = getuid(),
		.root = rfs_fs_root(fs),
		.worker_uid = wuid,
		.worker_gid = wgid,
	};
	if (geteuid() == 0 && wuid == (uid_t)-1)
		rfs_log(LOG_NOTICE, "workers run as root (confined): %s is "
			"owned by root; -o uid=N,gid=N runs them as another "
			"user", rfs_fs_root(fs));
	if (rfs_confine_landlock_abi() == 0)
		rfs_log(LOG_WARNING, "this kernel has no Landlock: workers "
			"are confined by no_new_privs and seccomp only, not to "
			"the files a job may read");
	if ((rc = rfs_pool_new(&pc, store, rfs_fs_stats(fs), &pool)) < 0) {
		fprintf(stderr, "rasterfs: cannot start workers: %s\n",
			rfs_strerror(rc));
		goto out;
	}
	rfs_fs_attach(fs, store, pool);
	if ((rc = start_tier(&opt, fs, store, pool, &tier)) < 0)
		goto out;
	if (opt.describers) {
		struct rfs_describer_config dc = {
			.procs = opt.describers,
			.spawn = {
				.exe = pc.exe,
				/* a describe reads headers, no pixel */
				.gdal_cache_mb = 16,
				.log_sink = pc.log_sink,
				.log_fd = pc.log_fd,
				.log_level = pc.log_level,
				.worker_mem = pc.worker_mem,
				.max_pixels = pc.max_pixels,
				.root = pc.root,
				.uid = wuid,
				.gid = wgid,
			},
			.timeout = opt.describe_timeout,
			.retry_after = opt.retry_after,
			.first_slot = 1000,
		};
		if ((rc = rfs_describer_new(&dc, store, rfs_fs_stats(fs),
					    &describer)) < 0) {
			fprintf(stderr, "rasterfs: cannot start describers: "
				"%s\n", rfs_strerror(rc));
			goto out;
		}
		rfs_fs_attach_describer(fs, describer);
	}

	if (fuse_set_signal_handlers(se) != 0)
		goto out;
	handlers = 1;
	if (fuse_session_mount(se, cmd.mountpoint) != 0)
		goto out;
	mounted = 1;
	rfs_log(LOG_INFO, "serving %s at %s: cache %s, %u workers", rfs_fs_root(fs),
		cmd.mountpoint, cache_abs, opt.workers);
	if (notify_fd >= 0) {
		daemon_ready(notify_fd, 0);
		notify_fd = -1;
		if (chdir("/") < 0)
			rfs_log(LOG_WARNING, "chdir /: %s", strerror(errno));
	}

	if (cmd.singlethread) {
		ret = fuse_session_loop(se);
	} else {
		loop = fuse_loop_cfg_create();
		fuse_loop_cfg_set_clone_fd(loop, cmd.clone_fd);
		/* UINT_MAX means "not given" (libfuse warns if passed on). */
		if (cmd.max_idle_threads != UINT_MAX)
			fuse_loop_cfg_set_idle_threads(loop,
						       cmd.max_idle_threads);
		/* Waiting opens hold no thread, so threads serve readers only. */
		fuse_loop_cfg_set_max_threads(loop, cmd.max_threads > 0 &&
					      cmd.max_threads <= 1024 ?
					      cmd.max_threads : 64);
		ret = fuse_session_loop_mt(se, loop);
	}
	ret = ret < 0 ? 1 : 0;
	rfs_log(LOG_INFO, "unmounting %s", cmd.mountpoint);
out:
	/* Unwind in reverse.  The jobs end first, while the FUSE device is
	 * still open: on SIGTERM (or SIGINT) with readers waiting, they are
	 * answered RFS-E206 (EIO) rather than cut off by the unmount
	 * (ECONNABORTED), and no reply is written to a closed device.  The
	 * workers stop before the store closes, so every finished job is
	 * committed or dropped before the index goes. */
	rfs_tier_stop(tier); /* tier.h: stop, pool, free */
	/* Parked lookups are answered (provisional) while the device is
	 * open; records on their way are written before the store closes.
	 * The describers go before the workers: once both are gone the
	 * pool stops the capture of their lines (log.h), whose pipe they
	 * share. */
	rfs_describer_free(describer);
	rfs_pool_free(pool);
	rfs_fs_stop(fs); /* an assembly under way commits before the store
			    closes */
	rfs_tier_free(tier);
	rfs_log_capture_stop(); /* if the pool did not (no pool) */
	if (mounted)
		fuse_session_unmount(se);
	if (handlers)
		fuse_remove_signal_handlers(se);
	rfs_store_close(store);
	if (se)
		fuse_session_destroy(se);
	if (loop)
		fuse_loop_cfg_destroy(loop);
	rfs_fs_free(fs);
	rfs_crs_cleanup();
	daemon_ready(notify_fd, 1);
	free(opt.source);
	free(opt.cache);
	free(opt.cache_size);
	free(opt.shared);
	for (size_t i = 0; i < opt.nviews; i++)
		free(opt.views[i]);
	free(opt.views);
	free(cmd.mountpoint);
	free(optstr);
	fuse_opt_free_args(&args);
	return ret;
}
