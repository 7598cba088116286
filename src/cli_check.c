/* cli_check.c - `rasterfs check NAME...` and `rasterfs steps`; the
 * explanation `rasterfs warm` and `cancel` give for a name a mount
 * refused (cli.h).
 *
 * A verdict comes from the same code as a mount's: a name inside a
 * rasterfs mount is resolved by resolve.c against the mount itself (its
 * real files are the source tree's, so the split of source and steps is
 * the mount's), CRS codes are checked against PROJ by crs.c; elsewhere
 * the grammar alone judges the steps.  Then the mount is asked (a stat,
 * the user.rasterfs.* attributes, which never start a job) whether it
 * agrees, and what it knows of the output: key, job state, progress,
 * last error.  A mount is found in /proc/self/mountinfo (type
 * fuse.rasterfs; its source field is "rasterfs:SOURCE_DIR").
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "rasterfs/chain.h"
#include "rasterfs/cli.h"
#include "rasterfs/crs.h"
#include "rasterfs/err.h"
#include "rasterfs/json.h"
#include "rasterfs/resolve.h"
#include "rasterfs/step.h"

struct verdict {
	const char *name;              /* as given */
	int rc;                        /* 0: good; else its code */
	char msg[RFS_MSG_MAX];         /* why, or what it is */
	const char *kind;              /* virtual, world, real, probe,
	                                  control, none */
	char source[PATH_MAX];         /* the source part, "" if none */
	int source_found;              /* 1 a regular file, 0 none, -1 not
	                                  looked for */
	char canonical[RFS_CHAIN_TEXT_MAX];
	const char *format;
	/* the mount the name is in, if any */
	int in_mount;
	char mnt[PATH_MAX], mnt_source[PATH_MAX];
	int mount_errno;               /* its answer to a stat: 0, an errno,
	                                  -1 not asked */
	char key[80], state[32], progress[16];
	char error[RFS_MSG_MAX + 16];  /* user.rasterfs.error, "" none */
};

/* ---- the mount a path is in ------------------------------------------- */

/* mountinfo escapes blanks, tabs, newlines and backslashes as \ooo. */
static void unescape(char *s)
{
	char *o = s;

	for (; *s; s++) {
		if (s[0] == '\\' && s[1] >= '0' && s[1] <= '3' &&
		    s[2] >= '0' && s[2] <= '7' && s[3] >= '0' && s[3] <= '7') {
			*o++ = (char)((s[1] - '0') * 64 + (s[2] - '0') * 8 +
				      (s[3] - '0'));
			s += 3;
		} else {
			*o++ = *s;
		}
	}
	*o = '\0';
}

/* The rasterfs mount holding the absolute path dir (the longest mount
 * point that is dir or above it): 1 with its mount point and source
 * directory, 0 if none. */
static int find_mount(const char *dir, char *mnt, size_t mlen, char *src,
		      size_t slen)
{
	FILE *f = fopen("/proc/self/mountinfo", "re");
	char *line = NULL;
	size_t cap = 0, best = 0;
	int found = 0;

	if (!f)
		return 0;
	while (getline(&line, &cap, f) > 0) {
		char *save = NULL, *mp = NULL, *tok;
		int field = 0;
		for (tok = strtok_r(line, " \n", &save); tok;
		     tok = strtok_r(NULL, " \n", &save), field++) {
			if (field == 4)
				mp = tok;
			if (strcmp(tok, "-") == 0)
				break;
		}
		char *type = strtok_r(NULL, " \n", &save);
		char *source = strtok_r(NULL, " \n", &save);
		if (!mp || !type || !source || strcmp(type, "fuse.rasterfs"))
			continue;
		unescape(mp);
		unescape(source);
		size_t l = strlen(mp);
		int under = strncmp(dir, mp, l) == 0 &&
			    (dir[l] == '\0' || dir[l] == '/' || l == 1);
		if (!under || l < best)
			continue;
		best = l;
		snprintf(mnt, mlen, "%s", mp);
		snprintf(src, slen, "%s", strncmp(source, "rasterfs:", 9) ?
			 source : source + 9);
		found = 1;
	}
	free(line);
	fclose(f);
	return found;
}

/* ---- the verdict ------------------------------------------------------ */

static void set_bad(struct verdict *v, int rc, const char *msg)
{
	v->rc = rc;
	if (msg != v->msg)
		snprintf(v->msg, sizeof(v->msg), "%s", msg);
}

/* The grammar's verdict on the steps text (after the '@' that ends the
 * source), with the CRS codes checked against PROJ. */
static void judge_chain(struct verdict *v, const char *steps)
{
	struct rfs_chain chain;
	int rc = rfs_chain_parse(steps, &chain, v->msg, sizeof(v->msg));

	if (rc == 0)
		rc = rfs_crs_check_chain(&chain, v->msg, sizeof(v->msg));
	if (rc < 0) {
		set_bad(v, rc, v->msg);
		return;
	}
	snprintf(v->canonical, sizeof(v->canonical), "%s", chain.canonical);
	v->format = rfs_format_name(chain.format);
}

/* Is path a regular file of a source tree?  Through a mount (mounted)
 * a virtual file is one too, but it describes itself in
 * user.rasterfs.chain. */
static int is_source(const char *path, int mounted)
{
	struct stat st;
	char c;

	return stat(path, &st) == 0 && S_ISREG(st.st_mode) &&
	       (!mounted || (getxattr(path, "user.rasterfs.chain", &c, 0) < 0 &&
			     errno == ENODATA));
}

/* Without the source tree: the source is the longest prefix ending before
 * an '@' that is a regular file in dir (as a mount splits it), else the
 * part before the first '@', not found (no error outside a mount: there
 * is no source tree to look in).  mounted: dir is in a mount whose
 * source directory this user cannot open. */
static void judge_alone(struct verdict *v, const char *dir, const char *base,
			int mounted)
{
	const char *at = strchr(base, '@');
	char path[PATH_MAX * 2];
	struct stat st;

	if (!at) {
		snprintf(path, sizeof(path), "%s/%s", dir, base);
		v->kind = "none";
		if (stat(path, &st) == 0) {
			v->kind = "real";
			snprintf(v->msg, sizeof(v->msg), "no '@': a file, not "
				 "a virtual name");
		} else {
			set_bad(v, -ENOENT, "no '@': not a virtual name "
				"(FILE@step[@step...]), and no such file");
		}
		return;
	}
	v->kind = at == base ? "chain" : "virtual";
	for (size_t i = strlen(base); i-- > 0;) {
		if (base[i] != '@' || i == 0)
			continue;
		snprintf(path, sizeof(path), "%s/%.*s", dir, (int)i, base);
		if (is_source(path, mounted)) {
			at = base + i;
			v->source_found = 1;
			break;
		}
	}
	if (v->source_found != 1)
		v->source_found = at == base ? -1 : 0;
	snprintf(v->source, sizeof(v->source), "%.*s", (int)(at - base), base);
	judge_chain(v, at + 1);
	/* in a mount, no source is the mount's first answer (resolve.c) */
	if (mounted && v->source_found == 0) {
		snprintf(v->msg, sizeof(v->msg), "no regular file of the "
			 "source tree is named by a prefix of '%.300s' ending "
			 "before an '@' (expected FILE@step[@step...])", base);
		v->rc = -RFS_E_NO_SOURCE;
	}
}

/* Inside mount v->mnt: what the mount's resolver makes of base in the
 * directory rel (below the mount point), run on the mount's source
 * directory as the daemon runs it.  Returns 0, or -1 if this user cannot
 * open that directory (the caller judges without it). */
static int judge_in_mount(struct verdict *v, const char *rel,
			  const char *base)
{
	struct rfs_root root = { .path = v->mnt_source,
				 .len = strlen(v->mnt_source) };
	struct rfs_name *r;
	int rc;

	root.fd = open(v->mnt_source, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (root.fd < 0)
		return -1;
	if (!(r = calloc(1, sizeof(*r)))) {
		close(root.fd);
		set_bad(v, -ENOMEM, "out of memory");
		return 0;
	}
	rc = rfs_resolve(&root, rel, strcmp(rel, RFS_CTL_DIR) == 0, base, r);
	close(root.fd);
	if (rc < 0) {
		v->kind = "none";
		set_bad(v, rc, rc == -ENOENT ? "no such file, and no '@': not "
			"a virtual name (FILE@step[@step...])" :
			strerror(-rc));
		goto out;
	}
	snprintf(v->source, sizeof(v->source), "%s", r->src);
	snprintf(v->canonical, sizeof(v->canonical), "%s", r->canonical);
	switch (r->kind) {
	case RFS_NAME_REAL:
		v->kind = "real";
		snprintf(v->msg, sizeof(v->msg), "a file of the source tree");
		break;
	case RFS_NAME_CTL_DIR:
	case RFS_NAME_CTL_FILE:
		v->kind = "control";
		snprintf(v->msg, sizeof(v->msg), "the mount's control files");
		break;
	case RFS_NAME_PROBE:
		v->kind = "probe";
		set_bad(v, -ENOENT, "a sibling GDAL looks for beside a "
			"virtual name (.aux.xml, .ovr, .msk, ...): it never "
			"exists and starts no work");
		break;
	case RFS_NAME_VIEW:
		v->kind = "view";
		snprintf(v->msg, sizeof(v->msg), "a view directory: the tree "
			 "below it with the chain applied");
		break;
	case RFS_NAME_WORLD:
	case RFS_NAME_AUX:
	case RFS_NAME_VIRTUAL:
		v->kind = r->kind == RFS_NAME_WORLD ? "world" :
			  r->kind == RFS_NAME_AUX ? "aux" : "virtual";
		v->source_found = 1;
		v->format = rfs_format_name(r->format);
		break;
	case RFS_NAME_BAD:
		v->kind = "virtual";
		v->source_found = r->code != -RFS_E_NO_SOURCE;
		if (r->code == -RFS_E_NO_SOURCE) {
			/* the grammar's verdict on the steps still helps */
			const char *at = strchr(base, '@');
			if (at && at != base)
				snprintf(v->source, sizeof(v->source), "%.*s",
					 (int)(at - base), base);
		}
		set_bad(v, r->code, r->msg);
		break;
	}
out:
	free(r);
	return 0;
}

static void get_attr(const char *path, const char *name, char *buf,
		     size_t len)
{
	ssize_t n = getxattr(path, name, buf, len - 1);

	buf[n < 0 ? 0 : n] = '\0';
}

/* What the mount says: does its lookup take the name (a stat, which never
 * computes), and what it knows of the output. */
static void ask_mount(struct verdict *v, const char *path)
{
	struct stat st;

	v->mount_errno = stat(path, &st) < 0 ? errno : 0;
	if (v->mount_errno) {
		/* a png's .aux.xml is there once the png is computed */
		if (v->rc == 0 && strcmp(v->kind, "probe") != 0 &&
		    !(strcmp(v->kind, "aux") == 0 &&
		      v->mount_errno == ENOENT)) {
			/* e.g. a symlinked source that leaves the source
			 * tree through a relative link */
			v->rc = -v->mount_errno;
			snprintf(v->msg, sizeof(v->msg), "the mount refuses "
				 "it: %s (%.300s/%s/log says why)",
				 strerror(v->mount_errno), v->mnt, RFS_CTL_DIR);
		}
		return;
	}
	if (strcmp(v->kind, "virtual") && strcmp(v->kind, "world") &&
	    strcmp(v->kind, "aux"))
		return;
	get_attr(path, "user.rasterfs.key", v->key, sizeof(v->key));
	get_attr(path, "user.rasterfs.state", v->state, sizeof(v->state));
	get_attr(path, "user.rasterfs.progress", v->progress,
		 sizeof(v->progress));
	get_attr(path, "user.rasterfs.error", v->error, sizeof(v->error));
}

static void judge(struct verdict *v, const char *path)
{
	char dir[PATH_MAX], abs[PATH_MAX];
	const char *slash = strrchr(path, '/');
	const char *base = slash ? slash + 1 : path;

	memset(v, 0, sizeof(*v));
	v->name = path;
	v->kind = "none";
	v->source_found = -1;
	v->mount_errno = -1;
	snprintf(dir, sizeof(dir), "%.*s",
		 slash ? (int)(slash - path) + (slash == path) : 1,
		 slash ? path : ".");
	if (!base[0]) {
		set_bad(v, -EISDIR, "a directory, not a file name");
		return;
	}
	/* The directory (1), or else (one that is not there, a view) its
	 * longest existing prefix (-1), to find the mount by. */
	int dir_real = realpath(dir, abs) != NULL;
	if (!dir_real) {
		char up[PATH_MAX];
		snprintf(up, sizeof(up), "%s", dir);
		for (char *cut; !dir_real && (cut = strrchr(up, '/'));) {
			*cut = '\0';
			if (realpath(up[0] ? up : "/", abs))
				dir_real = -1;
		}
	}
	v->in_mount = dir_real && find_mount(abs, v->mnt, sizeof(v->mnt),
					     v->mnt_source,
					     sizeof(v->mnt_source));
	size_t l = strlen(v->mnt);
	const char *rel = l == 1 ? abs + 1 : abs + l + (abs[l] == '/');
	if (!v->in_mount || dir_real != 1 ||
	    judge_in_mount(v, rel, base) < 0)
		judge_alone(v, dir_real == 1 ? abs : dir, base,
			    v->in_mount && dir_real == 1);
	if (v->rc == 0 && strlen(base) > NAME_MAX)
		set_bad(v, -RFS_E_TOO_LONG, "the name is longer than 255 "
			"bytes (NAME_MAX): no program can open it");
	if (v->in_mount)
		ask_mount(v, path);
}

/* The name's portable spelling (chain.h: no ':' in it, for file systems
 * and tools that refuse one): the source part, then the chain written by
 * rfs_chain_portable.  NULL for a bad name or one without steps. */
static const char *portable_spelling(const struct verdict *v)
{
	static char buf[PATH_MAX + RFS_CHAIN_PORTABLE_MAX];
	char chain_text[RFS_CHAIN_PORTABLE_MAX], msg[RFS_MSG_MAX];
	struct rfs_chain *c;
	const char *out = NULL;

	if (v->rc != 0 || !v->canonical[0] || !v->source[0])
		return NULL;
	if (!(c = malloc(sizeof(*c))))
		return NULL;
	if (rfs_chain_parse(v->canonical, c, msg, sizeof(msg)) == 0 &&
	    rfs_chain_portable(c, chain_text, sizeof(chain_text)) >= 0 &&
	    snprintf(buf, sizeof(buf), "%s%s", v->source, chain_text) <
	    (int)sizeof(buf))
		out = buf;
	free(c);
	return out;
}

/* ---- output ----------------------------------------------------------- */

static const char *errno_name(int e)
{
	const char *s = strerrorname_np(e);

	return s ? s : "E???";
}

static void print_text(const struct verdict *v)
{
	const char *portable = portable_spelling(v);

	printf("%s\n", v->name);
	if (v->rc && rfs_err_is_rfs(v->rc)) {
		printf("  verdict  %s %s: %s\n", rfs_err_name(v->rc),
		       errno_name(rfs_err_errno(v->rc)), rfs_strerror(v->rc));
	} else if (v->rc) {
		printf("  verdict  %s: %s\n", errno_name(-v->rc),
		       rfs_strerror(v->rc));
	}
	if (v->rc) {
		printf("  message  %s\n", v->msg);
		if (rfs_err_remedy(v->rc))
			printf("  remedy   %s\n", rfs_err_remedy(v->rc));
	} else {
		printf("  verdict  ok: %s\n", v->msg[0] ? v->msg :
		       strcmp(v->kind, "world") == 0 ?
		       "the world file of a png output" :
		       strcmp(v->kind, "aux") == 0 ?
		       "the GDAL .aux.xml of a png output (its CRS, "
		       "geotransform and statistics), there once the png "
		       "is computed" :
		       strcmp(v->kind, "chain") == 0 ? "a chain" :
		       "a virtual name");
	}
	if (v->source[0])
		printf("  source   %s%s\n", v->source,
		       v->source_found == 1 ? "" : v->source_found == 0 ?
		       (v->in_mount ? " (no such file)" :
			" (not found here; not in a mount, so not checked)") :
		       "");
	if (v->canonical[0])
		printf("  chain    %s\n", v->canonical);
	if (portable)
		printf("  portable %s\n", portable);
	if (v->format)
		printf("  format   %s\n", v->format);
	if (!v->in_mount)
		return;
	printf("  mount    %s (source %s)", v->mnt, v->mnt_source);
	if (v->mount_errno > 0)
		printf(": refuses the name (%s)", errno_name(v->mount_errno));
	else if (v->mount_errno == 0 && v->rc && strcmp(v->kind, "probe"))
		printf(": takes the name (this check and the mount disagree: "
		       "another rasterfs version?)");
	printf("\n");
	if (v->key[0])
		printf("  key      %s\n", v->key);
	if (v->state[0])
		printf("  state    %s, %s%% done\n", v->state,
		       v->progress[0] ? v->progress : "0");
	if (v->key[0])
		printf("  error    %s\n", v->error[0] ? v->error : "none");
}

static void json_str_or_null(struct rfs_json *j, const char *key,
			     const char *s)
{
	rfs_json_key(j, key);
	rfs_json_string(j, s && s[0] ? s : NULL);
}

static void print_json(struct rfs_json *j, const struct verdict *v)
{
	rfs_json_object(j);
	json_str_or_null(j, "name", v->name);
	rfs_json_key(j, "ok");
	rfs_json_bool(j, v->rc == 0);
	json_str_or_null(j, "kind", v->kind);
	json_str_or_null(j, "source", v->source);
	rfs_json_key(j, "source_found");
	if (v->source_found < 0)
		rfs_json_null(j);
	else
		rfs_json_bool(j, v->source_found);
	json_str_or_null(j, "chain", v->canonical);
	json_str_or_null(j, "portable", portable_spelling(v));
	json_str_or_null(j, "format", v->format);
	json_str_or_null(j, "code", v->rc ? rfs_err_name(v->rc) : NULL);
	json_str_or_null(j, "errno", v->rc ?
			 errno_name(rfs_err_errno(v->rc)) : NULL);
	json_str_or_null(j, "message", v->msg);
	json_str_or_null(j, "remedy", v->rc ? rfs_err_remedy(v->rc) : NULL);
	rfs_json_key(j, "mount");
	if (!v->in_mount) {
		rfs_json_null(j);
	} else {
		rfs_json_object(j);
		json_str_or_null(j, "path", v->mnt);
		json_str_or_null(j, "source_dir", v->mnt_source);
		json_str_or_null(j, "errno", v->mount_errno > 0 ?
				 errno_name(v->mount_errno) : NULL);
		json_str_or_null(j, "key", v->key);
		json_str_or_null(j, "state", v->state);
		rfs_json_key(j, "progress");
		if (v->progress[0])
			rfs_json_u64(j, strtoull(v->progress, NULL, 10));
		else
			rfs_json_null(j);
		json_str_or_null(j, "error", v->error);
		rfs_json_end(j);
	}
	rfs_json_end(j);
	rfs_json_newline(j);
}

int rfs_cli_check(int argc, char **argv)
{
	struct verdict *v = malloc(sizeof(*v));
	struct rfs_json j;
	int json = 0, names = 0, bad = 0, opts = 1;

	if (!v)
		return 1;
	rfs_json_init(&j, stdout);
	for (int i = 1; i < argc; i++) {
		if (opts && strcmp(argv[i], "--json") == 0) {
			json = 1;
			continue;
		}
		if (opts && strcmp(argv[i], "--") == 0) {
			opts = 0;
			continue;
		}
		names++;
	}
	if (!names) {
		fprintf(stderr, "usage: rasterfs check [--json] NAME...\n"
			"  NAME: a virtual name (dem.tif@focal=3), a chain "
			"(@focal=3), or a path inside a\n  mount "
			"(mnt/dem.tif@focal=3), which the mount is asked "
			"about too\n");
		free(v);
		return 2;
	}
	opts = 1;
	for (int i = 1; i < argc; i++) {
		if (opts && (strcmp(argv[i], "--json") == 0 ||
			     strcmp(argv[i], "--") == 0)) {
			opts = strcmp(argv[i], "--") != 0;
			continue;
		}
		judge(v, argv[i]);
		bad += v->rc != 0;
		if (json)
			print_json(&j, v);
		else
			print_text(v);
	}
	fflush(stdout);
	rfs_crs_cleanup();
	free(v);
	return bad ? 1 : 0;
}

int rfs_cli_explain(const char *path, char *buf, size_t len)
{
	struct verdict *v = malloc(sizeof(*v));
	int rc = 0;

	if (!v)
		return 0;
	judge(v, path);
	if (v->rc) {
		const char *remedy = rfs_err_remedy(v->rc);
		snprintf(buf, len, "%s %s%s%s", rfs_err_name(v->rc), v->msg,
			 remedy ? "\n  what to do: " : "",
			 remedy ? remedy : "");
		rc = 1;
	}
	free(v);
	return rc;
}

int rfs_cli_steps(int argc, char **argv)
{
	(void)argv;
	if (argc > 1) {
		fprintf(stderr, "usage: rasterfs steps\n");
		return 2;
	}
	rfs_steps_write(stdout);
	return fflush(stdout) == 0 ? 0 : 1;
}
