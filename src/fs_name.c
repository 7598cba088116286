/* fs_name.c - what a name in the mount is. */
#include <assert.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <linux/openat2.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "fs_int.h"
#include "rasterfs/chain.h"
#include "rasterfs/crs.h"
#include "rasterfs/step.h"
#include "rasterfs/err.h"
#include "rasterfs/fs.h"
#include "rasterfs/log.h"

/* --- names --------------------------------------------------------- */

/* Files GDAL looks for beside a dataset.  None of them exists beside a
 * virtual name, and none may start a job. */
static const char *const probe_suffixes[] = {
	".aux.xml", ".ovr", ".msk", ".aux", ".xml", ".tfw", ".tifw", ".wld",
	".prj", ".imd", ".rpb", "_rpc.txt", ".pvl", ".tab", ".vat.dbf",
	".ovr.aux.xml", ".msk.aux.xml", ".gfs", ".lock", ".lck",
};

int rfs_fs_is_probe(const char *name)
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

/* World file siblings of a fmt=png output (op_format.c writes their text
 * into the PNG): for "X.png" GDAL's PNG driver looks for "X.pgw", then
 * "X.pngw", then "X.wld" (upper case too); and any png name V has "V.pgw",
 * "V.pngw" and "V.wld".  The length of the suffix, or 0. */
size_t world_suffix(const char *name)
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

int join_path(char *buf, size_t len, const char *dir, const char *name)
{
	int n = dir[0] ? snprintf(buf, len, "%s/%s", dir, name) :
			 snprintf(buf, len, "%s", name);

	return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
}

/* path below the root -> path relative to rootfd ("" -> ".") */
const char *rel(const char *path)
{
	return path[0] ? path : ".";
}

/* Is the file at path (below the root) inside the root once every symlink
 * is followed?  Writes the absolute resolved path to abs. */
int check_inside(struct rfs_fs *fs, const char *path, char *abs)
{
	char joined[PATH_MAX];

	if (snprintf(joined, sizeof(joined), "%s/%s", fs->root, path) >=
	    (int)sizeof(joined))
		return -ENAMETOOLONG;
	if (!realpath(joined, abs))
		return -errno;
	if (strncmp(abs, fs->root, fs->rootlen) != 0 ||
	    (abs[fs->rootlen] != '/' && fs->rootlen > 1))
		return -RFS_E_ESCAPE;
	return 0;
}

/* Split a virtual name in directory dir into its source and its chain, and
 * check the chain.  The source is the longest prefix, ending before an '@',
 * that names a regular file. */
int resolve_virtual(struct rfs_fs *fs, const char *dir,
			   const char *name, char *src, struct rfs_chain *chain,
			   struct stat *sst, char *msg, size_t msglen)
{
	char abs[PATH_MAX], prefix[NAME_MAX + 1];
	size_t n = strlen(name);
	int rc;

	for (size_t i = n; i-- > 0;) {
		if (name[i] != '@' || i == 0)
			continue;
		memcpy(prefix, name, i);
		prefix[i] = '\0';
		if (strcmp(prefix, "..") == 0 || strcmp(prefix, ".") == 0)
			continue;
		if ((rc = join_path(src, PATH_MAX, dir, prefix)) < 0)
			return rc;
		if (fstatat(fs->rootfd, src, sst, 0) < 0 ||
		    !S_ISREG(sst->st_mode))
			continue;
		rc = rfs_chain_parse(name + i + 1, chain, msg, msglen);
		if (rc < 0)
			return rc;
		for (int s = 0; s < chain->nsteps; s++) {
			/* the step table says which steps name a CRS */
			const char *crs = rfs_step_crs(&chain->steps[s]);
			if (crs && (rc = rfs_crs_check(crs, msg, msglen)) < 0)
				return rc;
		}
		rc = check_inside(fs, src, abs);
		if (rc == -RFS_E_ESCAPE)
			snprintf(msg, msglen,
				 "the source '%.100s' is a symlink that leaves "
				 "the source directory %.100s (it resolves to "
				 "%.100s)",
				 src, fs->root, abs);
		return rc;
	}
	snprintf(msg, msglen,
		 "no regular file of the source tree is named by a prefix of "
		 "'%.300s' ending before an '@' (expected "
		 "FILE@step[@step...])",
		 name);
	return -RFS_E_NO_SOURCE;
}

/* The world file sibling name (world_suffix() > 0) of a png output in
 * dir: the png is name without the suffix, or, when the suffix is not
 * ".wld" (a GeoTIFF's probe "X.tif"->"X.wld" must stay a probe), name with
 * ".png" in place of it.  0 with src and chain of the png, or -ENOENT. */
int resolve_world(struct rfs_fs *fs, const char *dir,
			 const char *name, char *src, struct rfs_chain *chain,
			 struct stat *sst)
{
	char base[NAME_MAX + 1], msg[RFS_MSG_MAX];
	const size_t sl = world_suffix(name), bl = strlen(name) - sl;

	if (bl + 4 >= sizeof(base))
		return -ENOENT;
	memcpy(base, name, bl);
	base[bl] = '\0';
	if (strchr(base, '@') &&
	    resolve_virtual(fs, dir, base, src, chain, sst, msg,
			    sizeof(msg)) == 0 &&
	    chain->format == RFS_FMT_PNG)
		return 0;
	if (strcasecmp(name + bl, ".wld") == 0)
		return -ENOENT;
	memcpy(base + bl, ".png", 5);
	if (strchr(base, '@') &&
	    resolve_virtual(fs, dir, base, src, chain, sst, msg,
			    sizeof(msg)) == 0 &&
	    chain->format == RFS_FMT_PNG)
		return 0;
	return -ENOENT;
}
