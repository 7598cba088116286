/* cli_status.c - `rasterfs status`, `rasterfs warm`, `rasterfs cancel`.
 *
 * Clients of a running mount, through its files only (cli.h): status reads
 * MOUNT/.rasterfs/jobs, whose lines are flat JSON objects written by
 * rfs_pool_jobs_json(), so a field is found by its key; warm and cancel
 * read the command attributes user.rasterfs.warm and user.rasterfs.cancel
 * of virtual files (a read-only filesystem refuses setxattr, and a getxattr
 * needs no open, so it never waits for a job).
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <time.h>
#include <unistd.h>

#include "rasterfs/chain.h"
#include "rasterfs/cli.h"
#include "rasterfs/fs.h"
#include "rasterfs/lazy.h"

#define BAR_WIDTH 30

static void sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

	nanosleep(&ts, NULL);
}

/* Read a whole file; NULL on error (errno set). */
static char *slurp(const char *path)
{
	FILE *f = fopen(path, "re");
	char *buf = NULL;
	size_t len = 0, cap = 0;

	if (!f)
		return NULL;
	for (;;) {
		if (cap - len < 4096) {
			char *nb = realloc(buf, cap = cap * 2 + 8192);
			if (!nb) {
				free(buf);
				fclose(f);
				errno = ENOMEM;
				return NULL;
			}
			buf = nb;
		}
		size_t n = fread(buf + len, 1, cap - len - 1, f);
		if (n == 0)
			break;
		len += n;
	}
	fclose(f);
	buf[len] = '\0';
	return buf;
}

/* The value of "key" in one line of the jobs file, unquoted and unescaped
 * into out ("" for null).  Returns 0, or -1 if the key is missing. */
static int json_field(const char *line, const char *key, char *out,
		      size_t len)
{
	char pat[64];
	size_t o = 0;

	snprintf(pat, sizeof(pat), "\"%s\": ", key);
	const char *p = strstr(line, pat);
	if (!p || len == 0)
		return -1;
	p += strlen(pat);
	if (*p == '"') {
		for (p++; *p && *p != '"' && o + 1 < len; p++) {
			if (*p == '\\' && p[1] == 'u' && p[2]) {
				out[o++] = (char)strtol((char[]){ p[4], p[5],
							0 }, NULL, 16);
				p += 5;
			} else if (*p == '\\' && p[1]) {
				out[o++] = *++p;
			} else {
				out[o++] = *p;
			}
		}
	} else if (strncmp(p, "null", 4) != 0) {
		while (*p && *p != ',' && *p != '}' && o + 1 < len)
			out[o++] = *p++;
	}
	out[o] = '\0';
	return 0;
}

struct job_line {
	char id[24], state[16], progress[16], elapsed[24], pid[16];
	char path[PATH_MAX], error[16], message[512];
};

static int parse_line(const char *line, struct job_line *j)
{
	if (json_field(line, "id", j->id, sizeof(j->id)) < 0 ||
	    json_field(line, "state", j->state, sizeof(j->state)) < 0)
		return -1;
	json_field(line, "progress", j->progress, sizeof(j->progress));
	json_field(line, "elapsed", j->elapsed, sizeof(j->elapsed));
	json_field(line, "pid", j->pid, sizeof(j->pid));
	json_field(line, "path", j->path, sizeof(j->path));
	json_field(line, "error", j->error, sizeof(j->error));
	json_field(line, "message", j->message, sizeof(j->message));
	return 0;
}

static int is_live(const struct job_line *j)
{
	return strcmp(j->state, "queued") == 0 ||
	       strcmp(j->state, "running") == 0;
}

static void bar(FILE *f, double pct)
{
	int fill = (int)(pct / 100 * BAR_WIDTH + 0.5);

	fputc('[', f);
	for (int i = 0; i < BAR_WIDTH; i++)
		fputc(i < fill ? '#' : '.', f);
	fprintf(f, "] %5.1f%%", pct);
}

/* The jobs of a lazy output's pieces (lazy.h: its blocks and sample
 * statistics, "PATH#block=BX,BY", "PATH#stats") are shown as one row per
 * output, with the output's stored blocks (its user.rasterfs.blocks) as
 * the progress: a cp of a 20000^2 output is 1,600 jobs. */
struct group {
	char path[PATH_MAX];      /* the output, without the '#' suffix */
	int running, queued, done, failed, cancelled;
	double elapsed;           /* the longest of its live jobs */
	char error[16], message[512];  /* its first failure */
	int seen;                 /* its first line was met */
};

/* The output a piece job's path names: its length, or 0 when the path is
 * not a piece's.  The suffix is after the last '#' (a chain has none; a
 * directory's name may); lazy.h says what it may be. */
static size_t piece_of(const char *path)
{
	const char *h = strrchr(path, '#');
	enum rfs_lazy_part part;
	size_t chain_len;
	int level, bx, by;

	if (!h || rfs_lazy_parse(h, &chain_len, &part, &level, &bx, &by) < 0 ||
	    part == RFS_LAZY_WHOLE)
		return 0;
	return (size_t)(h - path);
}

static struct group *group_of(struct group **gs, int *ng, const char *path,
			      size_t len)
{
	for (int i = 0; i < *ng; i++)
		if (strlen((*gs)[i].path) == len &&
		    strncmp((*gs)[i].path, path, len) == 0)
			return &(*gs)[i];
	struct group *ng2 = realloc(*gs, (*ng + 1) * sizeof(**gs));
	if (!ng2)
		return NULL;
	*gs = ng2;
	struct group *g = &(*gs)[(*ng)++];
	memset(g, 0, sizeof(*g));
	snprintf(g->path, sizeof(g->path), "%.*s", (int)len, path);
	return g;
}

static void group_add(struct group *g, const struct job_line *j)
{
	if (strcmp(j->state, "running") == 0)
		g->running++;
	else if (strcmp(j->state, "queued") == 0)
		g->queued++;
	else if (strcmp(j->state, "done") == 0)
		g->done++;
	else if (strcmp(j->state, "cancelled") == 0)
		g->cancelled++;
	else
		g->failed++;
	if (is_live(j) && atof(j->elapsed) > g->elapsed)
		g->elapsed = atof(j->elapsed);
	if (j->error[0] && !g->error[0] && strcmp(j->state, "failed") == 0) {
		snprintf(g->error, sizeof(g->error), "%s", j->error);
		snprintf(g->message, sizeof(g->message), "%s", j->message);
	}
}

/* A group's row: its stored blocks out of all (from the mount), what its
 * jobs do. */
static void print_group(const char *mnt, struct group *g, int bars)
{
	char full[PATH_MAX * 2], blocks[64] = "";
	long stored = 0, all = 0;
	int live = g->running + g->queued;
	double pct = 0;

	snprintf(full, sizeof(full), "%s/%s", mnt, g->path);
	ssize_t n = getxattr(full, "user.rasterfs.blocks", blocks,
			     sizeof(blocks) - 1);
	if (n > 0) {
		blocks[n] = '\0';
		if (sscanf(blocks, "%ld/%ld", &stored, &all) == 2 && all > 0)
			pct = 100.0 * (double)stored / (double)all;
	}
	printf("%-6s %-9s ", "-", live ? (g->running ? "running" : "queued")
				      : g->failed ? "failed"
				      : g->cancelled ? "cancelled" : "done");
	if (bars)
		bar(stdout, pct);
	else
		printf("%7.1f%%", pct);
	printf(" %8.1fs %8s  %s\n", g->elapsed, "-", g->path);
	printf("%-6s blocks %s", "", all > 0 ? blocks : "?");
	if (live)
		printf(", %d running, %d queued", g->running, g->queued);
	if (g->done || g->failed || g->cancelled)
		printf("; recently %d done, %d failed, %d cancelled", g->done,
		       g->failed, g->cancelled);
	putchar('\n');
	if (g->error[0])
		printf("%-6s %s %s\n", "", g->error, g->message);
}

/* One table of the jobs in text; returns how many are queued or running.
 * bars: progress bars for running jobs, and only the last few ended.
 * A lazy output's piece jobs make one row (struct group). */
static int print_jobs(const char *mnt, char *text, int bars)
{
	struct job_line j;
	struct group *gs = NULL;
	int ng = 0, live = 0, ended = 0, skip = 0;
	size_t plen;

	for (char *l = text; l && *l; l = strchr(l, '\n') ? strchr(l, '\n') + 1
							  : NULL) {
		if (strncmp(l, "{", 1) != 0 || parse_line(l, &j) != 0)
			continue;
		if ((plen = piece_of(j.path))) {
			struct group *g = group_of(&gs, &ng, j.path, plen);
			if (g)
				group_add(g, &j);
		} else if (!is_live(&j)) {
			ended++;
		}
	}
	for (int i = 0; i < ng; i++)
		if (!gs[i].running && !gs[i].queued)
			ended++;
	if (bars && ended > 5)
		skip = ended - 5;
	printf("%-6s %-9s %-*s %9s %8s  %s\n", "ID", "STATE",
	       bars ? BAR_WIDTH + 9 : 8, "PROGRESS", "ELAPSED", "PID",
	       "PATH");
	for (char *l = text; l && *l;) {
		char *nl = strchr(l, '\n');
		if (nl)
			*nl = '\0';
		if (parse_line(l, &j) == 0) {
			int lv = is_live(&j);
			live += lv;
			if ((plen = piece_of(j.path))) {
				struct group *g = group_of(&gs, &ng, j.path,
							   plen);
				/* a group is shown where its first job is */
				if (g && !g->seen++ &&
				    (g->running || g->queued || skip-- <= 0))
					print_group(mnt, g, bars);
			} else if (lv || skip-- <= 0) {
				double pct = atof(j.progress);
				printf("%-6s %-9s ", j.id, j.state);
				if (bars)
					bar(stdout, pct);
				else
					printf("%7.1f%%", pct);
				printf(" %8.1fs %8s  %s\n", atof(j.elapsed),
				       j.pid[0] ? j.pid : "-", j.path);
				if (j.error[0])
					printf("%-6s %s %s\n", "", j.error,
					       j.message);
			}
		}
		l = nl ? nl + 1 : NULL;
	}
	free(gs);
	return live;
}

static void jobs_path(const char *mnt, char *buf, size_t len)
{
	snprintf(buf, len, "%s/%s/jobs", mnt, RFS_CTL_DIR);
}

int rfs_cli_status(int argc, char **argv)
{
	const char *mnt = NULL;
	int json = 0;
	char path[PATH_MAX];

	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--json") == 0)
			json = 1;
		else if (!mnt && argv[i][0] != '-')
			mnt = argv[i];
		else
			mnt = NULL, i = argc;
	}
	if (!mnt) {
		fprintf(stderr, "usage: rasterfs status MOUNTPOINT [--json]\n");
		return 2;
	}
	jobs_path(mnt, path, sizeof(path));
	int live = isatty(STDOUT_FILENO) && !json;
	for (;;) {
		char *text = slurp(path);
		if (!text) {
			fprintf(stderr, "rasterfs status: %s: %s (is %s a "
				"rasterfs mount?)\n", path, strerror(errno),
				mnt);
			return 1;
		}
		if (json) {
			fputs(text, stdout);
			free(text);
			return 0;
		}
		if (live)
			printf("\033[H\033[J"); /* home, clear: redraw */
		int running = print_jobs(mnt, text, live);
		free(text);
		fflush(stdout);
		if (!live || !running)
			return 0;
		sleep_ms(500);
	}
}

/* --- warm and cancel ----------------------------------------------- */

static int get_attr(const char *path, const char *name, char *buf,
		    size_t len)
{
	ssize_t n = getxattr(path, name, buf, len - 1);

	if (n < 0) {
		buf[0] = '\0';
		return -errno;
	}
	buf[n] = '\0';
	return 0;
}

/* A command attribute failed: say why as `rasterfs check` does (the
 * mount refused the name: its code, the grammar's message and what to do;
 * the lookup's errno alone says only "No such file or directory"), or
 * the errno when the name itself is fine (EPERM, EACCES, ...). */
static void refused(const char *cmd, const char *path, int rc)
{
	char why[RFS_MSG_MAX + 256];

	if (rc != -EPERM && rfs_cli_explain(path, why, sizeof(why)))
		fprintf(stderr, "rasterfs %s: %s: %s\n", cmd, path, why);
	else
		fprintf(stderr, "rasterfs %s: %s: %s\n", cmd, path,
			strerror(-rc));
}

static int is_end_state(const char *s)
{
	return strcmp(s, "done") == 0 || strcmp(s, "failed") == 0 ||
	       strcmp(s, "cancelled") == 0 || strcmp(s, "absent") == 0 ||
	       strcmp(s, "partial") == 0;
}

int rfs_cli_warm(int argc, char **argv)
{
	struct rfs_cli_paths ps = { 0 };
	int wait = 0, bad = 0, rc = 0;
	char buf[1024];

	for (int i = 1; i < argc; i++)
		if (strncmp(argv[i], "--slurm", 7) == 0)
			return rfs_cli_warm_slurm(argc, argv); /* cli_slurm.c */
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--wait") == 0)
			wait = 1;
		else if (rfs_cli_expand(argv[i], &ps) < 0)
			return 1;
	}
	if (ps.n == 0) {
		fprintf(stderr, "usage: rasterfs warm [--wait] PATH...\n"
			"  PATH: a virtual path; a glob before the first '@' "
			"is expanded, e.g. 'mnt/*.tif@focal=3'\n");
		rfs_cli_paths_free(&ps);
		return 2;
	}
	char *state = calloc(ps.n, 1); /* 1: ended */
	if (!state)
		return 1;
	size_t queued = 0;
	for (size_t i = 0; i < ps.n; i++) {
		rc = get_attr(ps.v[i], "user.rasterfs.warm", buf, sizeof(buf));
		if (rc < 0) {
			refused("warm", ps.v[i], rc);
			state[i] = 1;
			bad++;
		} else if (strncmp(buf, "failed", 6) == 0) {
			fprintf(stderr, "rasterfs warm: %s: %s\n", ps.v[i],
				buf + 7);
			state[i] = 1;
			bad++;
		} else if (strcmp(buf, "done") == 0) {
			state[i] = 1;
		} else {
			queued++;
		}
	}
	if (!wait) {
		printf("%zu queued, %zu already cached, %d failed\n", queued,
		       ps.n - queued - (size_t)bad, bad);
		goto out;
	}
	int tty = isatty(STDERR_FILENO);
	for (;;) {
		double sum = 0;
		size_t left = 0;
		for (size_t i = 0; i < ps.n; i++) {
			if (state[i]) {
				sum += 100;
				continue;
			}
			if (get_attr(ps.v[i], "user.rasterfs.state", buf,
				     sizeof(buf)) < 0 || is_end_state(buf)) {
				int ok = strcmp(buf, "done") == 0;
				if (!ok) {
					char err[1024];
					get_attr(ps.v[i], "user.rasterfs.error",
						 err, sizeof(err));
					if (tty)
						fputc('\n', stderr);
					fprintf(stderr, "rasterfs warm: %s: %s "
						"%s\n", ps.v[i], buf,
						err[0] ? err : "");
					bad++;
				}
				state[i] = 1;
				sum += 100;
				continue;
			}
			left++;
			if (get_attr(ps.v[i], "user.rasterfs.progress", buf,
				     sizeof(buf)) == 0)
				sum += atof(buf);
		}
		if (tty) {
			fputc('\r', stderr);
			bar(stderr, sum / (double)ps.n);
			fprintf(stderr, " %zu/%zu", ps.n - left, ps.n);
			fflush(stderr);
		}
		if (!left)
			break;
		sleep_ms(200);
	}
	if (tty)
		fputc('\n', stderr);
	printf("%zu done, %d failed\n", ps.n - (size_t)bad, bad);
out:
	free(state);
	rfs_cli_paths_free(&ps);
	return bad ? 1 : 0;
}

int rfs_cli_cancel(int argc, char **argv)
{
	struct rfs_cli_paths ps = { 0 };
	int all = 0, bad = 0, n = 0;
	char buf[64];

	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--all") == 0)
			all = 1;
		else if (rfs_cli_expand(argv[i], &ps) < 0)
			return 1;
	}
	if (ps.n == 0 || (all && ps.n != 1)) {
		fprintf(stderr, "usage: rasterfs cancel PATH... | "
			"rasterfs cancel --all MOUNTPOINT\n");
		rfs_cli_paths_free(&ps);
		return 2;
	}
	if (all) {
		char jp[PATH_MAX], p[PATH_MAX * 2];
		struct job_line j;
		jobs_path(ps.v[0], jp, sizeof(jp));
		char *text = slurp(jp);
		if (!text) {
			fprintf(stderr, "rasterfs cancel: %s: %s\n", jp,
				strerror(errno));
			rfs_cli_paths_free(&ps);
			return 1;
		}
		struct rfs_cli_paths live = { 0 };
		for (char *l = text; l && *l;) {
			char *nl = strchr(l, '\n');
			if (nl)
				*nl = '\0';
			if (parse_line(l, &j) == 0 && is_live(&j)) {
				/* a piece's job: cancel its output (once) */
				size_t pl = piece_of(j.path);
				snprintf(p, sizeof(p), "%s/%.*s", ps.v[0],
					 (int)(pl ? pl : strlen(j.path)),
					 j.path);
				int dup = 0;
				for (size_t k = 0; k < live.n && !dup; k++)
					dup = strcmp(live.v[k], p) == 0;
				if (!dup)
					rfs_cli_paths_add(&live, p);
			}
			l = nl ? nl + 1 : NULL;
		}
		free(text);
		rfs_cli_paths_free(&ps);
		ps = live;
	}
	for (size_t i = 0; i < ps.n; i++) {
		int rc = get_attr(ps.v[i], "user.rasterfs.cancel", buf,
				  sizeof(buf));
		if (rc < 0) {
			refused("cancel", ps.v[i], rc);
			bad++;
		} else if (strcmp(buf, "cancelled") == 0) {
			n++;
		}
	}
	printf("%d cancelled\n", n);
	rfs_cli_paths_free(&ps);
	return bad ? 1 : 0;
}
