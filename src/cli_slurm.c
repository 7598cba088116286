/* cli_slurm.c - `rasterfs warm --slurm[=SBATCH-OPTIONS] PATH...`: the
 * outputs of a mount computed by one Slurm job array, each task a
 * `rasterfs run --shared DIR` into the mount's shared tier; and `rasterfs
 * cache gc --shared DIR`, the tier's eviction.
 *
 * Design notes:
 *  1. The mount says how its outputs are computed elsewhere: the
 *     attribute user.rasterfs.run of a virtual file (fs.h) names its
 *     shared tier, its options (the same limits), its source root, the
 *     source and the canonical chain.  A mount without shared= is refused
 *     (RFS-E403): the tasks' outputs would reach no mount.
 *  2. Everything of one submission is in one directory of the tier,
 *     DIR/runs/<time>-<host>-<pid>/ (on the cluster's filesystem, so the
 *     nodes and the submitter see it): `tasks` (one "SOURCE@CHAIN" a line,
 *     below the root), `job.sh` (a plain sbatch script: `sbatch job.sh`
 *     runs it again as it is), `logs/<task>.out` and `results/<task>.json`
 *     (written by each task when it ends, cli_run.c note 5).
 *  3. One job array, `--array=0-(N-1)%K`: K (--max-running, default
 *     RFS_SLURM_RUNNING) tasks at most at once.  The options after
 *     --slurm= go to sbatch before the script, so they override its
 *     #SBATCH lines.
 *  4. --wait follows the array without sacct (accounting is often off):
 *     a task's result file says how it ended; a task that Slurm ended
 *     without one (cancelled, killed at its time limit, its node lost)
 *     is a failure with the code of that end, from squeue's states
 *     (RFS-E204 cancelled, RFS-E205 time limit, RFS-E203 out of memory,
 *     RFS-E202 otherwise).  Every wait is bounded: --timeout S (default
 *     none: Slurm's time limits bound the tasks), and squeue failing for
 *     RFS_SLURM_SQUEUE_GRACE s in a row, or forgetting a task that left
 *     no result for as long, ends the wait with RFS-E402.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <time.h>
#include <unistd.h>

#include "rasterfs/chain.h"
#include "rasterfs/cli.h"
#include "rasterfs/err.h"
#include "rasterfs/json.h"
#include "rasterfs/shared.h"
#include "rasterfs/store.h"

extern char **environ;

#define RFS_SLURM_RUNNING 16       /* default K of --array=...%K */
#define RFS_SLURM_SQUEUE_GRACE 120 /* s */
#define CMD_TIMEOUT 60             /* s for sbatch, squeue */
#define BAR_WIDTH 30

struct task {
	const char *path;              /* as given (in the mount) */
	char line[PATH_MAX];           /* SOURCE@CHAIN below the root */
	int ended;                     /* 1 done, -1 failed */
	char code[16];
	char message[1024];
	double forgotten_since;        /* squeue does not know it: since */
};

struct mount_run {                 /* what user.rasterfs.run says */
	char shared[PATH_MAX], options[1024], root[PATH_MAX];
	char source[PATH_MAX], chain[PATH_MAX];
};

static double mono(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static void sleep_s(double s)
{
	struct timespec ts = { (time_t)s, (long)((s - (double)(time_t)s) *
						 1e9) };

	nanosleep(&ts, NULL);
}

/* ---- note 1 ------------------------------------------------------------ */

static void field(const char *text, const char *name, char *out, size_t len)
{
	size_t nl = strlen(name);

	out[0] = '\0';
	for (const char *l = text; l && *l; l = strchr(l, '\n') ?
	     strchr(l, '\n') + 1 : NULL) {
		if (!strncmp(l, name, nl) && l[nl] == '=') {
			size_t n = strcspn(l + nl + 1, "\n");
			snprintf(out, len, "%.*s", (int)n, l + nl + 1);
			return;
		}
	}
}

/* Returns 0, or -errno of the attribute (the caller explains). */
static int ask_mount(const char *path, struct mount_run *m)
{
	char text[4 * PATH_MAX + 1024];
	ssize_t n = getxattr(path, "user.rasterfs.run", text,
			     sizeof(text) - 1);

	if (n < 0)
		return -errno;
	text[n] = '\0';
	field(text, "shared", m->shared, sizeof(m->shared));
	field(text, "options", m->options, sizeof(m->options));
	field(text, "root", m->root, sizeof(m->root));
	field(text, "source", m->source, sizeof(m->source));
	field(text, "chain", m->chain, sizeof(m->chain));
	return m->root[0] && m->source[0] && m->chain[0] ? 0 : -EPROTO;
}

/* ---- commands ----------------------------------------------------------- */

/* Run argv (searched in PATH), its stdout into out and stderr into err
 * (each cut to len), at most CMD_TIMEOUT s.  Returns its exit status
 * (>= 0), or -errno (not started, killed at the timeout: -ETIMEDOUT). */
static int run_cmd(char *const argv[], char *out, char *err, size_t len)
{
	int po[2], pe[2], rc;
	size_t no = 0, ne = 0;
	pid_t pid;
	posix_spawn_file_actions_t fa;

	out[0] = err[0] = '\0';
	if (pipe2(po, O_CLOEXEC) < 0)
		return -errno;
	if (pipe2(pe, O_CLOEXEC) < 0) {
		close(po[0]);
		close(po[1]);
		return -errno;
	}
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_adddup2(&fa, po[1], STDOUT_FILENO);
	posix_spawn_file_actions_adddup2(&fa, pe[1], STDERR_FILENO);
	rc = posix_spawnp(&pid, argv[0], &fa, NULL, argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	close(po[1]);
	close(pe[1]);
	if (rc) {
		close(po[0]);
		close(pe[0]);
		return -rc;
	}
	double until = mono() + CMD_TIMEOUT;
	struct pollfd p[2] = { { po[0], POLLIN, 0 }, { pe[0], POLLIN, 0 } };
	int open_fds = 2, timed_out = 0;
	while (open_fds) {
		int ms = (int)((until - mono()) * 1000);
		if (ms <= 0) {
			timed_out = 1;
			kill(pid, SIGKILL);
			break;
		}
		if (poll(p, 2, ms) < 0 && errno != EINTR)
			break;
		for (int i = 0; i < 2; i++) {
			char buf[4096], *dst = i ? err : out;
			size_t *used = i ? &ne : &no;
			if (p[i].fd < 0 || !p[i].revents)
				continue;
			ssize_t n = read(p[i].fd, buf, sizeof(buf));
			if (n <= 0) {
				close(p[i].fd);
				p[i].fd = -1;
				open_fds--;
				continue;
			}
			size_t take = (size_t)n < len - 1 - *used ?
				      (size_t)n : len - 1 - *used;
			memcpy(dst + *used, buf, take);
			*used += take;
			dst[*used] = '\0';
		}
	}
	for (int i = 0; i < 2; i++)
		if (p[i].fd >= 0)
			close(p[i].fd);
	int status = 0;
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	if (timed_out)
		return -ETIMEDOUT;
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128;
}

/* ---- the run directory (note 2) ---------------------------------------- */

/* 'text' quoted for sh. */
static void sh_quote(FILE *f, const char *text)
{
	fputc('\'', f);
	for (const char *c = text; *c; c++) {
		if (*c == '\'')
			fputs("'\\''", f);
		else
			fputc(*c, f);
	}
	fputc('\'', f);
}

static int write_file(const char *path, const char *text, mode_t mode)
{
	FILE *f = fopen(path, "we");

	if (!f)
		return -errno;
	int bad = fputs(text, f) < 0 || fflush(f) != 0 ||
		  fchmod(fileno(f), mode) < 0;
	if (fclose(f) != 0 || bad)
		return -EIO;
	return 0;
}

static int make_run(const struct mount_run *m, struct task *tasks, size_t n,
		    unsigned running, char *rundir, size_t len)
{
	char host[128] = "host", stamp[32], path[PATH_MAX + 32], exe[PATH_MAX];
	time_t now = time(NULL);
	struct tm tm;
	char *text = NULL;
	size_t tlen = 0;
	FILE *f;
	ssize_t el;

	gethostname(host, sizeof(host) - 1);
	for (char *c = host; *c; c++)
		if (*c == '/' || *c <= ' ')
			*c = '_';
	gmtime_r(&now, &tm);
	strftime(stamp, sizeof(stamp), "%Y%m%dT%H%M%SZ", &tm);
	int w = snprintf(rundir, len, "%s/runs/%s-%.64s-%ld", m->shared,
			 stamp, host, (long)getpid());
	if (w < 0 || (size_t)w >= len)
		return -ENAMETOOLONG;
	if (mkdir(rundir, 0777) < 0)
		return -errno;
	snprintf(path, sizeof(path), "%s/results", rundir);
	if (mkdir(path, 0777) < 0)
		return -errno;
	snprintf(path, sizeof(path), "%s/logs", rundir);
	if (mkdir(path, 0777) < 0)
		return -errno;

	if (!(f = open_memstream(&text, &tlen)))
		return -ENOMEM;
	for (size_t i = 0; i < n; i++)
		fprintf(f, "%s\n", tasks[i].line);
	fclose(f);
	snprintf(path, sizeof(path), "%s/tasks", rundir);
	int rc = write_file(path, text, 0644);
	free(text);
	if (rc < 0)
		return rc;

	/* The binary the tasks run: this one, by its absolute path (the
	 * nodes must see the same installation). */
	if ((el = readlink("/proc/self/exe", exe, sizeof(exe) - 1)) < 0)
		return -errno;
	exe[el] = '\0';
	text = NULL;
	if (!(f = open_memstream(&text, &tlen)))
		return -ENOMEM;
	fprintf(f, "#!/bin/sh\n"
		"# Written by rasterfs warm --slurm: task i computes line i+1 "
		"of tasks\n# into the shared tier; submit it again with "
		"`sbatch %s/job.sh`.\n", rundir);
	fprintf(f, "#SBATCH --job-name=rasterfs-warm\n"
		"#SBATCH --array=0-%zu%%%u\n#SBATCH --output=%s/logs/%%a.out\n"
		"#SBATCH --ntasks=1\n", n - 1, running, rundir);
	fprintf(f, "exec ");
	sh_quote(f, exe);
	fprintf(f, " run -v --no-progress --tasks ");
	snprintf(path, sizeof(path), "%s/tasks", rundir);
	sh_quote(f, path);
	fprintf(f, " --root ");
	sh_quote(f, m->root);
	fprintf(f, " --shared ");
	sh_quote(f, m->shared);
	if (m->options[0]) {
		fprintf(f, " -o ");
		sh_quote(f, m->options);
	}
	fprintf(f, "\n");
	fclose(f);
	snprintf(path, sizeof(path), "%s/job.sh", rundir);
	rc = write_file(path, text, 0755);
	free(text);
	return rc;
}

/* ---- following the array (note 4) -------------------------------------- */

static void read_result(const char *rundir, size_t i, struct task *t)
{
	char path[PATH_MAX + 64], status[16], *text;
	FILE *f;
	long len;

	snprintf(path, sizeof(path), "%s/results/%zu.json", rundir, i);
	if (!(f = fopen(path, "re")))
		return;
	if (fseek(f, 0, SEEK_END) < 0 || (len = ftell(f)) <= 0 ||
	    len > 65536 || fseek(f, 0, SEEK_SET) < 0 ||
	    !(text = calloc(1, (size_t)len + 1))) {
		fclose(f);
		return;
	}
	if (fread(text, 1, (size_t)len, f) == (size_t)len &&
	    rfs_json_flat_get(text, "status", status, sizeof(status)) == 0) {
		t->ended = strcmp(status, "done") ? -1 : 1;
		rfs_json_flat_get(text, "code", t->code, sizeof(t->code));
		rfs_json_flat_get(text, "message", t->message,
				  sizeof(t->message));
	}
	free(text);
	fclose(f);
}

/* An end Slurm made without a result: its code (note 4). */
static const char *state_code(const char *state)
{
	if (!strcmp(state, "CANCELLED"))
		return "RFS-E204";
	if (!strcmp(state, "TIMEOUT") || !strcmp(state, "DEADLINE"))
		return "RFS-E205";
	if (!strcmp(state, "OUT_OF_MEMORY"))
		return "RFS-E203";
	return "RFS-E202";
}

static int is_final(const char *s)
{
	static const char *const finals[] = { "BOOT_FAIL", "CANCELLED",
		"COMPLETED", "DEADLINE", "FAILED", "NODE_FAIL",
		"OUT_OF_MEMORY", "PREEMPTED", "TIMEOUT", "REVOKED",
		"SPECIAL_EXIT", NULL };

	for (size_t i = 0; finals[i]; i++)
		if (!strcmp(s, finals[i]))
			return 1;
	return 0;
}

static void draw(size_t done, size_t failed, size_t n, size_t running)
{
	int fill = (int)((double)(done + failed) / (double)n * BAR_WIDTH);

	fputc('\r', stderr);
	fputc('[', stderr);
	for (int i = 0; i < BAR_WIDTH; i++)
		fputc(i < fill ? '#' : '-', stderr);
	fprintf(stderr, "] %zu/%zu done, %zu failed, %zu running\033[K", done,
		n, failed, running);
	fflush(stderr);
}

/* Returns 0 when every task ended (failures counted in *failed), or a
 * code (the wait itself failed: RFS-E402 said). */
static int follow(const char *jobid, const char *rundir, struct task *tasks,
		  size_t n, unsigned timeout, size_t *failed)
{
	size_t olen = n * 32 + 4096; /* "i|STATE\n" a task */
	char *out = malloc(olen), err[4096];
	double start = mono(), squeue_ok = mono();
	int tty = isatty(STDERR_FILENO), ret = 0;

	if (!out)
		return -ENOMEM;

	for (;;) {
		size_t done = 0, bad = 0, running = 0, left = 0;
		for (size_t i = 0; i < n; i++)
			if (!tasks[i].ended)
				read_result(rundir, i, &tasks[i]);
		for (size_t i = 0; i < n; i++)
			left += !tasks[i].ended;
		if (left) {
			char *argv[] = { "squeue", "-h", "-r", "-t", "all",
					 "-j", (char *)jobid, "-o", "%K|%T",
					 NULL };
			int rc = run_cmd(argv, out, err, olen);
			double now = mono();
			if (rc == 0) {
				squeue_ok = now;
			} else if (now - squeue_ok > RFS_SLURM_SQUEUE_GRACE) {
				fprintf(stderr, "\nrasterfs warm: RFS-E402 squeue "
					"has failed for %d s: %s\n",
					RFS_SLURM_SQUEUE_GRACE, rc < 0 ?
					strerror(-rc) : err);
				ret = -RFS_E_SUBMIT;
				break;
			}
			for (size_t i = 0; rc == 0 && i < n; i++) {
				struct task *t = &tasks[i];
				char pat[32], state[32] = "";
				if (t->ended)
					continue;
				snprintf(pat, sizeof(pat), "\n%zu|", i);
				/* a line of its own: look for "\ni|" */
				char *hit = strstr(out, pat);
				if (!hit && !strncmp(out, pat + 1, strlen(pat) - 1))
					hit = out - 1;
				if (hit)
					sscanf(hit + strlen(pat), "%31[A-Z_]",
					       state);
				if (!state[0]) {
					/* pending tasks of an array show as
					 * one line "0-19%4|PENDING" */
					if (strstr(out, "PENDING"))
						continue;
					if (!t->forgotten_since)
						t->forgotten_since = now;
					if (now - t->forgotten_since <
					    RFS_SLURM_SQUEUE_GRACE)
						continue;
					snprintf(state, sizeof(state), "gone");
				}
				if (!strcmp(state, "RUNNING"))
					running++;
				if (!is_final(state) && strcmp(state, "gone"))
					continue;
				/* the task may have written its result just
				 * now: read once more */
				read_result(rundir, i, t);
				if (t->ended)
					continue;
				t->ended = -1;
				snprintf(t->code, sizeof(t->code), "%s",
					 state_code(state));
				snprintf(t->message, sizeof(t->message),
					 "the task ended %s without a result "
					 "(its log: %.800s/logs/%zu.out)", state,
					 rundir, i);
			}
		}
		left = 0;
		for (size_t i = 0; i < n; i++) {
			done += tasks[i].ended == 1;
			bad += tasks[i].ended == -1;
			left += !tasks[i].ended;
		}
		if (tty)
			draw(done, bad, n, running);
		if (!left) {
			if (tty)
				fputc('\n', stderr);
			*failed = bad;
			break;
		}
		if (timeout && mono() - start > timeout) {
			fprintf(stderr, "\nrasterfs warm: RFS-E402 %zu of %zu "
				"tasks not ended after --timeout=%u s (job %s "
				"goes on)\n", left, n, timeout, jobid);
			ret = -RFS_E_SUBMIT;
			break;
		}
		sleep_s(1.0);
	}
	free(out);
	return ret;
}

/* ---- the command ------------------------------------------------------- */

static int usage(void)
{
	fprintf(stderr, "usage: rasterfs warm --slurm[=SBATCH-OPTIONS] "
		"[--max-running K] [--wait] [--timeout S] [--dry-run] PATH...\n"
		"  PATH: a virtual path of a mount with shared=DIR; a glob "
		"before the first '@' is expanded, e.g. 'mnt/*.tif@focal=3'\n");
	return 2;
}

int rfs_cli_warm_slurm(int argc, char **argv)
{
	struct rfs_cli_paths ps = { 0 };
	const char *sbatch_opts = NULL;
	unsigned running = RFS_SLURM_RUNNING, timeout = 0;
	int wait = 0, dry = 0, ret = 1;
	struct mount_run first, m;
	struct task *tasks = NULL;
	char rundir[PATH_MAX], jobid[64] = "";

	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		if (!strcmp(a, "--slurm")) {
			continue;
		} else if (!strncmp(a, "--slurm=", 8)) {
			sbatch_opts = a + 8;
		} else if (!strcmp(a, "--wait")) {
			wait = 1;
		} else if (!strcmp(a, "--dry-run")) {
			dry = 1;
		} else if ((!strcmp(a, "--max-running") ||
			    !strcmp(a, "--timeout")) && i + 1 < argc) {
			long v = strtol(argv[++i], NULL, 10);
			if (v < (a[2] == 'm') || v > 100000) {
				fprintf(stderr, "rasterfs warm: RFS-E400 %s %s: "
					"expected a number\n", a, argv[i]);
				goto out;
			}
			*(a[2] == 'm' ? &running : &timeout) = (unsigned)v;
		} else if (a[0] == '-') {
			fprintf(stderr, "rasterfs warm: RFS-E400 unknown option "
				"%s\n", a);
			ret = usage();
			goto out;
		} else if (rfs_cli_expand(a, &ps) < 0) {
			goto out;
		}
	}
	if (!ps.n) {
		ret = usage();
		goto out;
	}
	if (!(tasks = calloc(ps.n, sizeof(*tasks))))
		goto out;
	/* note 1: one mount, with a shared tier; every name good */
	int bad = 0;
	for (size_t i = 0; i < ps.n; i++) {
		char why[RFS_MSG_MAX + 256];
		struct mount_run *mr = i ? &m : &first;
		int rc = ask_mount(ps.v[i], mr);
		tasks[i].path = ps.v[i];
		if (rc < 0) {
			if (rc != -EPERM && rfs_cli_explain(ps.v[i], why,
							    sizeof(why)))
				fprintf(stderr, "rasterfs warm: %s: %s\n",
					ps.v[i], why);
			else
				fprintf(stderr, "rasterfs warm: %s: RFS-E400 "
					"not a virtual file of a rasterfs "
					"mount (%s)\n", ps.v[i], strerror(-rc));
			bad++;
			continue;
		}
		if (!first.shared[0]) {
			fprintf(stderr, "rasterfs warm: %s %s: %s: mount it "
				"with -o shared=DIR (a directory on the "
				"cluster's filesystem)\n",
				rfs_err_name(-RFS_E_NO_SHARED),
				rfs_strerror(-RFS_E_NO_SHARED), ps.v[i]);
			goto out;
		}
		if (i && (strcmp(m.shared, first.shared) ||
			  strcmp(m.root, first.root) ||
			  strcmp(m.options, first.options))) {
			fprintf(stderr, "rasterfs warm: RFS-E400 %s is in "
				"another mount than %s: one mount per warm "
				"--slurm\n", ps.v[i], ps.v[0]);
			goto out;
		}
		int n = snprintf(tasks[i].line, sizeof(tasks[i].line), "%s%s",
				 mr->source, mr->chain);
		if (n < 0 || (size_t)n >= sizeof(tasks[i].line) ||
		    strchr(tasks[i].line, '\n')) {
			fprintf(stderr, "rasterfs warm: RFS-E400 %s: a name "
				"with a newline (or too long) cannot be a line "
				"of a task list\n", ps.v[i]);
			goto out;
		}
	}
	if (bad)
		goto out;

	int rc = make_run(&first, tasks, ps.n, running, rundir,
			  sizeof(rundir));
	if (rc < 0) {
		fprintf(stderr, "rasterfs warm: %s %s: cannot write the task "
			"list under %s/runs: %s\n",
			rfs_err_name(-RFS_E_SHARED),
			rfs_strerror(-RFS_E_SHARED), first.shared,
			strerror(-rc));
		goto out;
	}
	/* note 3: sbatch [OPTIONS] --parsable job.sh */
	char *sargv[64], *optcopy = sbatch_opts ? strdup(sbatch_opts) : NULL;
	char script[PATH_MAX + 16], out[4096], err[4096];
	size_t na = 0;
	sargv[na++] = "sbatch";
	sargv[na++] = "--parsable";
	for (char *save = NULL, *t = optcopy ? strtok_r(optcopy, " \t", &save)
	     : NULL; t && na < 60; t = strtok_r(NULL, " \t", &save))
		sargv[na++] = t;
	snprintf(script, sizeof(script), "%s/job.sh", rundir);
	sargv[na++] = script;
	sargv[na] = NULL;
	if (dry) {
		printf("would run:");
		for (size_t i = 0; i < na; i++)
			printf(" %s", sargv[i]);
		printf("\n%zu tasks in %s\n", ps.n, rundir);
		free(optcopy);
		ret = 0;
		goto out;
	}
	rc = run_cmd(sargv, out, err, sizeof(out));
	free(optcopy);
	for (size_t l = strlen(err); l && (err[l - 1] == '\n' ||
					   err[l - 1] == ' '); l--)
		err[l - 1] = '\0'; /* one message, one line end */
	/* sbatch's own lines below ours, indented: one message */
	for (char *nl = strchr(err, '\n'); nl && strlen(err) + 2 < sizeof(err);
	     nl = strchr(nl + 3, '\n')) {
		memmove(nl + 3, nl + 1, strlen(nl + 1) + 1);
		nl[1] = nl[2] = ' ';
	}
	if (rc != 0) {
		fprintf(stderr, "rasterfs warm: %s %s: %s%s\n",
			rfs_err_name(-RFS_E_SUBMIT), rfs_strerror(-RFS_E_SUBMIT),
			rc == -ENOENT ? "cannot run sbatch (is Slurm's client "
			"installed here, and in PATH?): " : rc < 0 ?
			"sbatch: " : "", rc < 0 ? strerror(-rc) : err[0] ? err :
			"sbatch failed without a message");
		/* nothing was submitted: leave no run behind in the tier */
		rfs_store_remove_tree(rundir);
		goto out;
	}
	snprintf(jobid, sizeof(jobid), "%.*s", (int)strcspn(out, ";\n"), out);
	printf("submitted job array %s: %zu tasks, at most %u at once; "
	       "tasks, script, logs and results in %s\n", jobid, ps.n,
	       running, rundir);
	fflush(stdout);
	if (!wait) {
		ret = 0;
		goto out;
	}
	size_t failed = 0;
	if (follow(jobid, rundir, tasks, ps.n, timeout, &failed) < 0) {
		ret = 3;
		goto out;
	}
	for (size_t i = 0; i < ps.n; i++)
		if (tasks[i].ended < 0)
			fprintf(stderr, "rasterfs warm: %s: %s %s\n",
				tasks[i].path, tasks[i].code, tasks[i].message);
	printf("%zu done, %zu failed\n", ps.n - failed, failed);
	ret = failed ? 1 : 0;
out:
	free(tasks);
	rfs_cli_paths_free(&ps);
	return ret;
}

/* ---- rasterfs cache gc --shared DIR ------------------------------------- */

int rfs_cli_cache_shared(const char *cmd, const char *dir, uint64_t limit,
			 unsigned min_age, int json)
{
	struct rfs_shared_gc_report r;
	int rc;

	if (strcmp(cmd, "gc")) {
		fprintf(stderr, "rasterfs cache: RFS-E400 --shared DIR: only "
			"gc (a shared tier has no index to list or verify)\n");
		return 2;
	}
	if ((rc = rfs_shared_gc(dir, limit, min_age, &r)) < 0) {
		fprintf(stderr, "rasterfs cache: shared tier %s: %s %s\n", dir,
			rfs_err_name(rc), rfs_strerror(rc));
		return 1;
	}
	if (json) {
		printf("{\"objects\": %llu, \"bytes\": %llu, \"removed\": %llu, "
		       "\"removed_bytes\": %llu, \"kept_young\": %llu, "
		       "\"orphans\": %llu, \"tmp\": %llu, \"claims\": %llu, "
		       "\"corrupt\": %llu, \"runs\": %llu}\n",
		       (unsigned long long)r.objects,
		       (unsigned long long)r.bytes,
		       (unsigned long long)r.removed,
		       (unsigned long long)r.removed_bytes,
		       (unsigned long long)r.young,
		       (unsigned long long)r.orphans, (unsigned long long)r.tmp,
		       (unsigned long long)r.claims,
		       (unsigned long long)r.corrupt, (unsigned long long)r.runs);
		return 0;
	}
	printf("shared tier %s: %llu objects, %llu bytes; evicted %llu "
	       "(%llu bytes)", dir, (unsigned long long)r.objects,
	       (unsigned long long)r.bytes, (unsigned long long)r.removed,
	       (unsigned long long)r.removed_bytes);
	if (r.young)
		printf("; %llu over the limit kept: used within %u s",
		       (unsigned long long)r.young, min_age);
	printf("; removed %llu orphans, %llu temporary files, %llu stale "
	       "claims, %llu corrupt sidecars, %llu old runs\n",
	       (unsigned long long)r.orphans, (unsigned long long)r.tmp,
	       (unsigned long long)r.claims, (unsigned long long)r.corrupt,
	       (unsigned long long)r.runs);
	return 0;
}
