/* resolve.h - what a name in the mount is.
 *
 * The FUSE layer asks this module what the name NAME in directory DIR
 * (a path below the source root) stands for, and gets an answer it can act
 * on: a real file of the source tree, a virtual file "<source>@<chain>"
 * (its source and canonical chain), a sidecar of a png output (its world
 * file or its .aux.xml), a GDAL sibling probe, a view directory, the control directory or
 * one of its files, or a bad virtual name with its code and a message for
 * the user.  Nothing is replied, computed, opened or remembered here: the
 * answer rests on the name, a few fstatat/realpath calls beneath the root
 * (and, to list a view, one read of a source directory), and the grammar
 * (chain.h), so it is unit-tested on a plain directory (test_resolve.c).
 *
 * Views.  A directory whose name is '@' and a chain ("@proj=EPSG:3857@
 * hillshade"), in the root or in any real directory D of the tree, is a
 * view of D: it mirrors D's tree with the chain applied.  Its entries:
 *   - every real sub-directory of D (not a symlink to one: a link could
 *     make a loop that find and tar cannot see), itself a view;
 *   - every raster of D (rasterext.h: by name, never opened), regular
 *     file or symlink to one inside the root, named as the source plus
 *     the output format's extension unless it already ends with one:
 *     GeoTIFF and COG ".tif" (".tif" and ".tiff" kept), PNG ".png"
 *     ("dem.tif" -> "dem.tif" in a GeoTIFF view, "dem.tif.png" in a png
 *     view, "mosaic.vrt" -> "mosaic.vrt.tif").  So a view's files end with
 *     their format's extension (file dialogs filtering *.tif or *.png
 *     find them) and "VIEW/sub/NAME" is exactly "sub/SOURCE@CHAIN": the
 *     same canonical chain and source, so the same key.  If the appended
 *     name is also the name of another entry of D, that entry wins and
 *     the source is left out;
 *   - in a png view, "B.pgw" (also ".pngw", ".wld", and "V.pgw" for a
 *     name V) beside each png output "B.png": its world file; and
 *     "B.png.aux.xml": its GDAL PAM file (worldfile.h);
 *   - nothing else: non-rasters, sidecars, FIFOs, symlinks to directories
 *     and symlinks that leave the root are left out.
 * A bad chain fails like the same chain after a file name (same code).  A
 * name starting with '@' is a view only when no prefix of it before a
 * later '@' names a regular file ("@a.tif@slope" is a virtual file of a
 * real "@a.tif"), and a real entry always wins.  Named views (the mount
 * option view=NAME:CHAIN) are views of the root, listed in it as NAME.
 */
#ifndef RASTERFS_RESOLVE_H
#define RASTERFS_RESOLVE_H

#include <limits.h>
#include <stddef.h>
#include <sys/stat.h>

#include "rasterfs/chain.h"
#include "rasterfs/rasterext.h"

/* The control directory, in the root of every mount. */
#define RFS_CTL_DIR ".rasterfs"

/* A named view: NAME in the mount's root is the view of the root with a
 * chain (rfs_resolve_named_view). */
struct rfs_named_view {
	char name[NAME_MAX + 1];
	char canonical[RFS_CHAIN_TEXT_MAX];
	enum rfs_format format;
};

/* The source root: its realpath and an O_PATH descriptor of it; and how
 * the tree looks through the mount: which names are rasters in a view
 * (NULL: none) and the named views. */
struct rfs_root {
	const char *path;
	size_t len;
	int fd;
	const struct rfs_rasterext *rasters;
	const struct rfs_named_view *views;
	size_t nviews;
};

enum rfs_name_kind {
	RFS_NAME_REAL,     /* a file, directory or symlink of the source tree */
	RFS_NAME_VIRTUAL,  /* <source>@<chain> */
	RFS_NAME_WORLD,    /* the world file of a png output (shares its key) */
	RFS_NAME_AUX,      /* "X.aux.xml" of a png output X: its GDAL PAM
	                      file (shares its key) */
	RFS_NAME_PROBE,    /* a GDAL sibling probe of a virtual name: absent,
	                      and it starts no job */
	RFS_NAME_VIEW,     /* a view directory (see above) */
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
	char path[PATH_MAX];       /* in the mount (not for CTL_*): below the
	                              root, views' names included */
	struct stat st;            /* REAL: its lstat; VIRTUAL, WORLD, AUX:
	                              the source's stat (following symlinks);
	                              VIEW: the mirrored directory's lstat */
	/* VIRTUAL, WORLD and AUX (of the png output), VIEW */
	char src[PATH_MAX];        /* the source (VIEW: the directory it
	                              mirrors), below the root */
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

/* A view directory, as the FUSE layer keeps it: its path in the mount,
 * the directory it mirrors and its chain. */
struct rfs_view {
	const char *path;          /* "@hillshade/sub", "hs", "d/@slope" */
	const char *src;           /* below the root: "sub", "", "d" */
	const char *canonical;
	enum rfs_format format;
};

/* What name (one path component) in view v is: RFS_NAME_VIEW (a
 * sub-directory), RFS_NAME_VIRTUAL (a raster's output), RFS_NAME_WORLD or
 * RFS_NAME_AUX (a png output's sidecar), or RFS_NAME_BAD (-RFS_E_ESCAPE: a raster
 * symlink that leaves the root).  Returns 0 with *out filled, or -ENOENT
 * (not an entry of the view), -ENAMETOOLONG, -errno of looking at the
 * source directory. */
int rfs_resolve_in_view(const struct rfs_root *root, const struct rfs_view *v,
			const char *name, struct rfs_name *out);

/* Call fn for each entry of view v, in strcmp order of the source names,
 * with what rfs_resolve_in_view says of that entry's name (kind
 * RFS_NAME_VIEW or RFS_NAME_VIRTUAL; sidecars are not listed here: they
 * are listed once their png is computed, which only the store knows).  Reads
 * the source directory once and stats its entries; opens no file.  Stops
 * at fn's first nonzero return and returns it; else 0, or -ENOMEM,
 * -ENOTDIR, -errno of reading the directory. */
int rfs_resolve_view_list(const struct rfs_root *root,
			  const struct rfs_view *v,
			  int (*fn)(void *arg, const struct rfs_name *r),
			  void *arg);

/* The name of source file name in a view of format f (see above) into
 * out.  Returns 0, or -ENAMETOOLONG. */
int rfs_resolve_view_name(const char *name, enum rfs_format f,
			  char out[NAME_MAX + 1]);

/* Check the mount option value spec, "NAME:CHAIN", against the root:
 * NAME (before the first ':') a plain directory name, not "." or "..",
 * without '/' or '@', not RFS_CTL_DIR and no entry of the root; CHAIN (the
 * rest, with or without its leading '@') a chain a name accepts.  Returns
 * 0 and *out, or -RFS_E_OPTION with a sentence in msg (the chain's own
 * message for a bad chain). */
int rfs_resolve_named_view(const struct rfs_root *root, const char *spec,
			   struct rfs_named_view *out, char *msg, size_t len);

/* Is name a GDAL sibling probe of a virtual name (X.aux.xml, X.ovr, X.msk,
 * X.aux, ...)? */
int rfs_resolve_is_probe(const char *name);

/* The length of name's world file suffix (.pgw, .pngw, .wld, any case),
 * or 0. */
size_t rfs_resolve_world_suffix(const char *name);

/* The length of name's GDAL PAM suffix (".aux.xml", the case GDAL writes
 * it in), or 0. */
size_t rfs_resolve_aux_suffix(const char *name);

/* Is the file at path (below the root) inside the root once every symlink
 * is followed?  Returns 0 with the resolved absolute path in abs, or
 * -RFS_E_ESCAPE (abs says where it leads), -ENAMETOOLONG, -errno. */
int rfs_resolve_inside(const struct rfs_root *root, const char *path,
		       char abs[PATH_MAX]);

#endif
