/* resolve.c - what a name in the mount is: real, virtual, world, probe,
 * control or bad (see resolve.h). */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "rasterfs/chain.h"
#include "rasterfs/crs.h"
#include "rasterfs/err.h"
#include "rasterfs/resolve.h"
#include "rasterfs/step.h"

const char *const rfs_ctl_names[RFS_CTL_NFILES] = {
	[RFS_CTL_STATS] = "stats",
	[RFS_CTL_JOBS] = "jobs",
	[RFS_CTL_LOG] = "log",
	[RFS_CTL_STEPS] = "steps",
};

/* Files GDAL looks for beside a dataset.  None of them exists beside a
 * virtual name, and none may start a job. */
static const char *const probe_suffixes[] = {
	".aux.xml", ".ovr", ".msk", ".aux", ".xml", ".tfw", ".tifw", ".wld",
	".prj", ".imd", ".rpb", "_rpc.txt", ".pvl", ".tab", ".vat.dbf",
	".ovr.aux.xml", ".msk.aux.xml", ".gfs", ".lock", ".lck",
};

int rfs_resolve_is_probe(const char *name)
{
	size_t n = strlen(name);

	if (!strchr(name, '@'))
		return 0;
	for (size_t i = 0; i < sizeof(probe_suffixes) / sizeof(*probe_suffixes);
	     i++) {
		size_t l = strlen(probe_suffixes[i]);
		if (n > l && strcasecmp(name + n - l, probe_suffixes[i]) == 0)
			return 1;
	}
	return 0;
}

/* World file siblings of a fmt=png output (worldfile.h): for "X.png"
 * GDAL's PNG driver looks for "X.pgw", then "X.pngw", then "X.wld" (upper
 * case too); and any png name V has "V.pgw", "V.pngw" and "V.wld". */
size_t rfs_resolve_world_suffix(const char *name)
{
	static const char *const sfx[] = { ".pgw", ".pngw", ".wld" };
	size_t n = strlen(name);

	for (size_t i = 0; i < sizeof(sfx) / sizeof(*sfx); i++) {
		size_t l = strlen(sfx[i]);
		if (n > l && strcasecmp(name + n - l, sfx[i]) == 0)
			return l;
	}
	return 0;
}

static int join_path(char *buf, size_t len, const char *dir, const char *name)
{
	int n = dir[0] ? snprintf(buf, len, "%s/%s", dir, name) :
			 snprintf(buf, len, "%s", name);

	return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
}

int rfs_resolve_inside(const struct rfs_root *root, const char *path,
		       char abs[PATH_MAX])
{
	char joined[PATH_MAX];

	if (snprintf(joined, sizeof(joined), "%s/%s", root->path, path) >=
	    (int)sizeof(joined))
		return -ENAMETOOLONG;
	if (!realpath(joined, abs))
		return -errno;
	if (strncmp(abs, root->path, root->len) != 0 ||
	    (abs[root->len] != '/' && root->len > 1))
		return -RFS_E_ESCAPE;
	return 0;
}

/* Split a virtual name in directory dir into its source and its chain, and
 * check the chain.  The source is the longest prefix, ending before an '@',
 * that names a regular file.  Returns 0 with out's src, st, canonical and
 * format, or a code with out->msg. */
static int resolve_virtual(const struct rfs_root *root, const char *dir,
			   const char *name, struct rfs_name *out)
{
	char abs[PATH_MAX], prefix[NAME_MAX + 1];
	struct rfs_chain chain;
	size_t n = strlen(name);
	int rc;

	for (size_t i = n; i-- > 0;) {
		if (name[i] != '@' || i == 0 || i > NAME_MAX)
			continue;
		memcpy(prefix, name, i);
		prefix[i] = '\0';
		if (strcmp(prefix, "..") == 0 || strcmp(prefix, ".") == 0)
			continue;
		if ((rc = join_path(out->src, sizeof(out->src), dir,
				    prefix)) < 0)
			return rc;
		if (fstatat(root->fd, out->src, &out->st, 0) < 0 ||
		    !S_ISREG(out->st.st_mode))
			continue;
		rc = rfs_chain_parse(name + i + 1, &chain, out->msg,
				     sizeof(out->msg));
		if (rc < 0)
			return rc;
		for (int s = 0; s < chain.nsteps; s++) {
			/* the step table says which steps name a CRS */
			const char *crs = rfs_step_crs(&chain.steps[s]);
			if (crs && (rc = rfs_crs_check(crs, out->msg,
						       sizeof(out->msg))) < 0)
				return rc;
		}
		rc = rfs_resolve_inside(root, out->src, abs);
		if (rc == -RFS_E_ESCAPE)
			snprintf(out->msg, sizeof(out->msg),
				 "the source '%.100s' is a symlink that leaves "
				 "the source directory %.100s (it resolves to "
				 "%.100s)",
				 out->src, root->path, abs);
		if (rc < 0)
			return rc;
		memcpy(out->canonical, chain.canonical,
		       sizeof(out->canonical));
		out->format = chain.format;
		return 0;
	}
	snprintf(out->msg, sizeof(out->msg),
		 "no regular file of the source tree is named by a prefix of "
		 "'%.300s' ending before an '@' (expected "
		 "FILE@step[@step...])",
		 name);
	return -RFS_E_NO_SOURCE;
}

/* The world file sibling name (a world suffix) of a png output in dir:
 * the png is name without the suffix, or, when the suffix is not ".wld"
 * (a GeoTIFF's probe "X.tif"->"X.wld" must stay a probe), name with ".png"
 * in place of it.  0 with out's src, st, canonical and format of the png,
 * or -ENOENT. */
static int resolve_world(const struct rfs_root *root, const char *dir,
			 const char *name, struct rfs_name *out)
{
	char base[NAME_MAX + 1];
	const size_t sl = rfs_resolve_world_suffix(name);
	const size_t bl = strlen(name) - sl;

	if (bl + 4 >= sizeof(base))
		return -ENOENT;
	memcpy(base, name, bl);
	base[bl] = '\0';
	if (strchr(base, '@') && resolve_virtual(root, dir, base, out) == 0 &&
	    out->format == RFS_FMT_PNG)
		return 0;
	if (strcasecmp(name + bl, ".wld") == 0)
		return -ENOENT;
	memcpy(base + bl, ".png", 5);
	if (strchr(base, '@') && resolve_virtual(root, dir, base, out) == 0 &&
	    out->format == RFS_FMT_PNG)
		return 0;
	return -ENOENT;
}

int rfs_resolve(const struct rfs_root *root, const char *dir, int in_ctl,
		const char *name, struct rfs_name *out)
{
	int rc;

	out->path[0] = out->src[0] = out->canonical[0] = out->msg[0] = '\0';
	out->code = 0;
	if (in_ctl) {
		for (int i = 0; i < RFS_CTL_NFILES; i++)
			if (strcmp(name, rfs_ctl_names[i]) == 0) {
				out->kind = RFS_NAME_CTL_FILE;
				out->ctl = (enum rfs_ctl_file)i;
				return 0;
			}
		return -ENOENT;
	}
	if (dir[0] == '\0' && strcmp(name, RFS_CTL_DIR) == 0) {
		out->kind = RFS_NAME_CTL_DIR;
		return 0;
	}
	if ((rc = join_path(out->path, sizeof(out->path), dir, name)) < 0)
		return rc;

	/* A real file wins, even one whose name has an '@'. */
	if (fstatat(root->fd, out->path, &out->st, AT_SYMLINK_NOFOLLOW) == 0) {
		out->kind = RFS_NAME_REAL;
		return 0;
	}
	if (errno != ENOENT || !strchr(name, '@'))
		return -errno;
	if (rfs_resolve_world_suffix(name) &&
	    resolve_world(root, dir, name, out) == 0) {
		out->kind = RFS_NAME_WORLD;
		return 0;
	}
	if (rfs_resolve_is_probe(name)) {
		out->kind = RFS_NAME_PROBE;
		return 0;
	}
	out->msg[0] = '\0';
	rc = resolve_virtual(root, dir, name, out);
	if (rc < 0) {
		out->kind = RFS_NAME_BAD;
		out->code = rc;
		return 0;
	}
	out->kind = RFS_NAME_VIRTUAL;
	return 0;
}
