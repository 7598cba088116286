/* cli_glob.c - the names a client command is given: DIR/GLOB@CHAIN
 * patterns expanded over the real files of DIR (`rasterfs warm`, `warm
 * --slurm`, `cancel`).
 */
#include <glob.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "rasterfs/cli.h"

int rfs_cli_paths_add(struct rfs_cli_paths *p, const char *s)
{
	if (p->n == p->cap) {
		size_t nc = p->cap ? 2 * p->cap : 16;
		char **nv = realloc(p->v, nc * sizeof(*nv));
		if (!nv)
			return -1;
		p->v = nv;
		p->cap = nc;
	}
	return (p->v[p->n++] = strdup(s)) ? 0 : -1;
}

void rfs_cli_paths_free(struct rfs_cli_paths *p)
{
	for (size_t i = 0; i < p->n; i++)
		free(p->v[i]);
	free(p->v);
}

/* A pattern is DIR/GLOB@CHAIN: GLOB is expanded over the real files of
 * DIR (virtual names are never listed), then @CHAIN is appended.  The
 * chain never holds a '/', so the first '@' after the last '/' starts it.
 * A pattern that matches nothing is kept as it is, to fail visibly. */
int rfs_cli_expand(const char *pattern, struct rfs_cli_paths *out)
{
	const char *slash = strrchr(pattern, '/');
	const char *at = strchr(slash ? slash + 1 : pattern, '@');
	char file_glob[PATH_MAX], name[PATH_MAX];
	glob_t g;

	if (!at)
		return rfs_cli_paths_add(out, pattern);
	snprintf(file_glob, sizeof(file_glob), "%.*s", (int)(at - pattern),
		 pattern);
	if (glob(file_glob, 0, NULL, &g) != 0)
		return rfs_cli_paths_add(out, pattern);
	int rc = 0;
	for (size_t i = 0; i < g.gl_pathc && rc == 0; i++) {
		struct stat st;
		if (lstat(g.gl_pathv[i], &st) < 0 || !S_ISREG(st.st_mode))
			continue;
		snprintf(name, sizeof(name), "%s%s", g.gl_pathv[i], at);
		rc = rfs_cli_paths_add(out, name);
	}
	globfree(&g);
	return rc;
}
