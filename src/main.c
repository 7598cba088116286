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
#include "rasterfs/err.h"
#include "rasterfs/fs.h"
#include "rasterfs/log.h"
#include "rasterfs/pool.h"
#include "rasterfs/store.h"
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
	/* the workers' user (confine.h) */
	unsigned uid, gid;
	int uid_set, gid_set;
};

#define OPT(t, p) { t, offsetof(struct options, p), 0 }
static const struct fuse_opt option_spec[] = {
	OPT("cache=%s", cache),
	OPT("workers=%u", workers),
	OPT("gdal_cache=%u", gdal_cache_mb),
	OPT("retry_after=%u", retry_after),
	{ "retry_after=", offsetof(struct options, retry_after_set), 1 },
	OPT("job_timeout=%u", job_timeout),
	OPT("worker_mem=%llu", worker_mem_mb),
	{ "worker_mem=", offsetof(struct options, worker_mem_set), 1 },
	OPT("max_pixels=%llu", max_pixels),
	{ "max_pixels=", offsetof(struct options, max_pixels_set), 1 },
	OPT("cache_size=%s", cache_size),
	OPT("keep_prefixes=%u", keep_prefixes),
	{ "keep_prefixes=", offsetof(struct options, keep_prefixes_set), 1 },
	OPT("stall_timeout=%u", stall_timeout),
	{ "stall_timeout=", offsetof(struct options, stall_timeout_set), 1 },
	OPT("passthrough=%u", passthrough),
	{ "passthrough=", offsetof(struct options, passthrough_set), 1 },
	OPT("uid=%u", uid),
	{ "uid=", offsetof(struct options, uid_set), 1 },
	OPT("gid=%u", gid),
	{ "gid=", offsetof(struct options, gid_set), 1 },
	FUSE_OPT_END
};

/* Subcommands: `rasterfs COMMAND ...`.  A source directory that happens to
 * be named like a command is spelled ./NAME. */
struct command {
	const char *name;
	int (*run)(int argc, char **argv); /* argv[0] is the command name */
	const char *summary;
};

static const struct command commands[] = {
	{ "status", rfs_cli_status, "MOUNTPOINT [--json]  jobs and progress" },
	{ "warm", rfs_cli_warm, "[--wait] PATH...  compute outputs ahead" },
	{ "cancel", rfs_cli_cancel, "PATH... | --all MOUNTPOINT  cancel jobs" },
	{ "cache", rfs_cli_cache, "[--cache DIR] [--json] stats|verify|gc|clear" },
	{ NULL, NULL, NULL },
};

static const struct command *find_command(const char *name)
{
	for (const struct command *c = commands; c->name; c++)
		if (strcmp(c->name, name) == 0)
			return c;
	return NULL;
}

static void usage(const char *prog)
{
	printf("usage: %s [options] SOURCE_DIR MOUNTPOINT\n\n"
	       "Serve the rasters of SOURCE_DIR at MOUNTPOINT, each with virtual\n"
	       "siblings named FILE@step[@step...], e.g. dem.tif@proj=EPSG:3857@focal=3\n\n"
	       "rasterfs options (-o NAME=VALUE[,...]):\n"
	       "    cache=DIR          cache store (default $XDG_CACHE_HOME/rasterfs\n"
	       "                       or ~/.cache/rasterfs)\n"
	       "    workers=N          worker processes (default: online CPUs)\n"
	       "    gdal_cache=MB      GDAL block cache per worker (default 256)\n"
	       "    max_pixels=N       refuse outputs over N pixels (EFBIG, RFS-E106;\n"
	       "                       default 2^31, 0: no limit)\n"
	       "    worker_mem=MB      address space per worker (RFS-E203 when over;\n"
	       "                       default RAM / workers, 0: no limit)\n"
	       "    job_timeout=S      kill jobs running longer (RFS-E205; default 0:\n"
	       "                       none)\n"
	       "    stall_timeout=S    kill a job whose worker reports no progress\n"
	       "                       for S seconds (RFS-E209; default 300, 0: never)\n"
	       "    retry_after=S      a failed output fails at once for S seconds\n"
	       "                       (default 60, 0: always retry)\n"
	       "    cache_size=SIZE    keep at most SIZE bytes of outputs (20G, 500M;\n"
	       "                       default 10%% of the cache's filesystem, at\n"
	       "                       most 50G); least recently read go first\n"
	       "    keep_prefixes=0|1  keep the first step of a chain that starts\n"
	       "                       with a warp (proj, res, size) as its own\n"
	       "                       output and start later chains from it\n"
	       "                       (default 1)\n"
	       "    passthrough=0|1    serve outputs and source files by FUSE\n"
	       "                       passthrough when the kernel allows it\n"
	       "                       (needs CAP_SYS_ADMIN; default 1)\n"
	       "    uid=N,gid=N        the user and group the worker processes\n"
	       "                       run as, when rasterfs runs as root\n"
	       "                       (default: the owner of SOURCE_DIR, if not\n"
	       "                       root; else root, still confined)\n\n",
	       prog);
	if (commands[0].name) {
		printf("commands:\n");
		for (const struct command *c = commands; c->name; c++)
			printf("    %s %-10s %s\n", prog, c->name, c->summary);
		printf("\n");
	}
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

int main(int argc, char **argv)
{
	struct fuse_args args = FUSE_ARGS_INIT(argc, argv);
	struct fuse_cmdline_opts cmd = { 0 };
	struct options opt = { 0 };
	rfs_fs *fs = NULL;
	rfs_store *store = NULL;
	rfs_pool *pool = NULL;
	struct fuse_session *se = NULL;
	struct fuse_loop_config *loop = NULL;
	int notify_fd = -1, rc, ret = 1, mounted = 0;
	char fsname[PATH_MAX + 32], *optstr = NULL;

	if (argc > 1 && strcmp(argv[1], RFS_WORKER_ARG) == 0)
		return rfs_worker_main(argc - 1, argv + 1);
	const struct command *command = argc > 1 ? find_command(argv[1]) : NULL;
	if (command)
		return command->run(argc - 1, argv + 1);

	if (fuse_opt_parse(&args, &opt, option_spec, option_proc) < 0 ||
	    fuse_parse_cmdline(&args, &cmd) != 0)
		goto out;
	if (cmd.show_help) {
		usage(argv[0]);
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
		fprintf(stderr, "rasterfs: expected SOURCE_DIR and MOUNTPOINT "
			"(see %s --help)\n", argv[0]);
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
		opt.gdal_cache_mb = 256;
	if (!opt.retry_after_set)
		opt.retry_after = 60;
	if (!opt.keep_prefixes_set)
		opt.keep_prefixes = 1;
	if (!opt.stall_timeout_set)
		opt.stall_timeout = 300;
	if (!opt.passthrough_set)
		opt.passthrough = 1;
	if (!opt.max_pixels_set)
		opt.max_pixels = 1ULL << 31;
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

	rfs_log_init("rasterfs", RFS_LOG_STDERR,
		     cmd.debug ? LOG_DEBUG : LOG_INFO);
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
	uid_t wuid;
	gid_t wgid;
	if (worker_user(&opt, rfs_fs_root(fs), &wuid, &wgid) < 0)
		goto out;
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

	if (!cmd.foreground && (rc = daemon_fork(&notify_fd)) < 0) {
		fprintf(stderr, "rasterfs: cannot daemonise: %s\n",
			strerror(-rc));
		goto out;
	}
	signal(SIGPIPE, SIG_IGN);

	struct rfs_store_options so = { .source_root = rfs_fs_root(fs) };
	if (opt.cache_size ? rfs_store_parse_size(opt.cache_size, &so.limit) :
	    rfs_store_default_limit(cache_abs, &so.limit)) {
		fprintf(stderr, "rasterfs: RFS-E400 cache_size=%s: expected a "
			"size such as 20G, 500M or a number of bytes\n",
			opt.cache_size ? opt.cache_size : "(default)");
		goto out;
	}
	if ((rc = rfs_store_open_opts(cache_abs, &so, &store)) < 0) {
		fprintf(stderr, "rasterfs: cache store %s: %s %s\n", cache_abs,
			rfs_err_name(rc), rfs_strerror(rc));
		goto out;
	}
	struct rfs_pool_config pc = {
		.workers = opt.workers,
		.exe = "/proc/self/exe",
		.gdal_cache_mb = (int)opt.gdal_cache_mb,
		.log_sink = cmd.foreground ? RFS_LOG_STDERR : RFS_LOG_SYSLOG,
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

	se = fuse_session_new(&args, &rfs_fs_ops, sizeof(rfs_fs_ops), fs);
	if (!se)
		goto out;
	rfs_fs_set_session(fs, se);
	if (fuse_set_signal_handlers(se) != 0)
		goto out;
	if (fuse_session_mount(se, cmd.mountpoint) != 0)
		goto out;
	mounted = 1;
	rfs_log(LOG_INFO, "serving %s at %s: cache %s, %u workers", rfs_fs_root(fs),
		cmd.mountpoint, cache_abs, opt.workers);
	if (notify_fd >= 0) {
		rfs_log_init("rasterfs", RFS_LOG_SYSLOG, pc.log_level);
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
	rfs_pool_free(pool);
	if (se) {
		if (mounted)
			fuse_session_unmount(se);
		fuse_remove_signal_handlers(se);
	}
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
	free(cmd.mountpoint);
	free(optstr);
	fuse_opt_free_args(&args);
	return ret;
}
