/* resolve.h - what a name in the mount is.
 *
 * The FUSE layer asks this module what the name NAME in directory DIR
 * (a path below the source root) stands for, and gets an answer it can act
 * on: a real file of the source tree, a virtual file "<source>@<chain>"
 * (its source and canonical chain), the world file sibling of a png
 * output, a GDAL sibling probe, the control directory or one of its files,
 * or a bad virtual name with its code and a message for the user.  Nothing
 * is replied, computed, opened or remembered here: the answer rests on the
 * name, a few fstatat/realpath calls beneath the root, and the grammar
 * (chain.h), so it is unit-tested on a plain directory (test_resolve.c).
 */
#ifndef RASTERFS_RESOLVE_H
#define RASTERFS_RESOLVE_H

#include <limits.h>
#include <stddef.h>
#include <sys/stat.h>

#include "rasterfs/chain.h"

/* The control directory, in the root of every mount. */
#define RFS_CTL_DIR ".rasterfs"

/* The source root: its realpath and an O_PATH descriptor of it. */
struct rfs_root {
	const char *path;
	size_t len;
	int fd;
};

enum rfs_name_kind {
	RFS_NAME_REAL,     /* a file, directory or symlink of the source tree */
	RFS_NAME_VIRTUAL,  /* <source>@<chain> */
	RFS_NAME_WORLD,    /* the world file of a png output (shares its key) */
	RFS_NAME_PROBE,    /* a GDAL sibling probe of a virtual name: absent,
	                      and it starts no job */
	RFS_NAME_CTL_DIR,  /* RFS_CTL_DIR in the root */
	RFS_NAME_CTL_FILE, /* a file of the control directory */
	RFS_NAME_BAD,      /* a virtual name that cannot be served */
};

/* The files of the control directory. */
enum rfs_ctl_file { RFS_CTL_STATS, RFS_CTL_JOBS, RFS_CTL_LOG, RFS_CTL_STEPS,
		    RFS_CTL_NFILES };
extern const char *const rfs_ctl_names[RFS_CTL_NFILES];

struct rfs_name {
	enum rfs_name_kind kind;
	char path[PATH_MAX];       /* below the root (not for CTL_*) */
	struct stat st;            /* REAL: its lstat; VIRTUAL, WORLD: the
	                              source's stat (following symlinks) */
	/* VIRTUAL, WORLD (of the png output) */
	char src[PATH_MAX];        /* the source, below the root */
	char canonical[RFS_CHAIN_TEXT_MAX];
	enum rfs_format format;
	/* CTL_FILE */
	enum rfs_ctl_file ctl;
	/* BAD: the code (-RFS_E_NO_SOURCE, -RFS_E_BAD_ARG, -RFS_E_BAD_CRS,
	 * -RFS_E_ESCAPE, ...) and a message that says why */
	int code;
	char msg[RFS_MSG_MAX];
};

/* What name (one path component) in directory dir (below the root; "" is
 * the root) is; in_ctl: dir is the control directory.  A real file wins
 * over a virtual reading of its name.  Returns 0 with *out filled, or
 * -ENOENT (no such file, and no '@' in the name; or not a control file),
 * -ENAMETOOLONG, or the -errno of looking at a real file. */
int rfs_resolve(const struct rfs_root *root, const char *dir, int in_ctl,
		const char *name, struct rfs_name *out);

/* Is name a GDAL sibling probe of a virtual name (X.aux.xml, X.ovr, X.msk,
 * X.aux, ...)? */
int rfs_resolve_is_probe(const char *name);

/* The length of name's world file suffix (.pgw, .pngw, .wld, any case),
 * or 0. */
size_t rfs_resolve_world_suffix(const char *name);

/* Is the file at path (below the root) inside the root once every symlink
 * is followed?  Returns 0 with the resolved absolute path in abs, or
 * -RFS_E_ESCAPE (abs says where it leads), -ENAMETOOLONG, -errno. */
int rfs_resolve_inside(const struct rfs_root *root, const char *path,
		       char abs[PATH_MAX]);

#endif
