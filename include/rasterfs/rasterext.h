/* rasterext.h - which files of the source tree are rasters, by name alone.
 *
 * A view (resolve.h) lists the rasters of a directory without opening any
 * of them: listing never computes and never opens a raster, so a file is
 * a raster by its name.  The rule:
 *
 *   A file is a raster when the extension after its last '.' (compared
 *   without case) is one that a raster driver of this installation's GDAL
 *   declares (GDAL_DMD_EXTENSIONS of the drivers with GDAL_DCAP_RASTER),
 *   unless it is one of these exceptions (rfs_rasterext_never):
 *     - sidecars and metadata GDAL reads beside a dataset: xml (also
 *       X.aux.xml), json, hdr, lbl, aux, ovr, msk, rrd, prj and world
 *       files (tfw, pgw, wld, ...);
 *     - formats that are mostly documents or vectors, which GDAL can open
 *       as a raster but a step would rarely be meant for: pdf, dwg, gpkg,
 *       kml, kmz, sqlite.
 *   VRTs are rasters.  A name without an extension, or one GDAL declares
 *   for no raster driver (ENVI data without one, an Arc/Info grid
 *   directory's hdr.adf), is not in a view; it still has its '@' names.
 *
 * The list comes from GDAL, and GDAL runs only in worker processes: the
 * daemon starts the rasterfs binary once, before it mounts, with a hidden
 * first argument (RFS_RASTEREXT_ARG); that process registers GDAL's
 * drivers, prints their extensions on one line and exits
 * (rfs_rasterext_main, src/rasterext_gdal.c).  It opens no source.  The
 * set and the rule are pure (src/rasterext.c) and unit-tested.
 */
#ifndef RASTERFS_RASTEREXT_H
#define RASTERFS_RASTEREXT_H

#include <stdbool.h>
#include <stddef.h>

#define RFS_RASTEREXT_ARG "--internal-raster-extensions"
#define RFS_RASTEREXT_MAX 512    /* extensions kept */
#define RFS_RASTEREXT_LEN 16     /* longest extension, with NUL */
#define RFS_RASTEREXT_TIMEOUT 60 /* s the daemon waits for the list */

/* A set of extensions, lower case, sorted, without the dot. */
struct rfs_rasterext {
	size_t n;
	char ext[RFS_RASTEREXT_MAX][RFS_RASTEREXT_LEN];
};

/* Fill out from text: extensions separated by white space, with or
 * without a leading dot, any case ("tif tiff vrt IMG .png").  Words
 * longer than RFS_RASTEREXT_LEN - 1 or with a character other than a
 * letter, digit, '-' or '_' are skipped; duplicates are kept once.
 * Returns 0, or -EINVAL (no extension at all), -E2BIG (more than
 * RFS_RASTEREXT_MAX). */
int rfs_rasterext_parse(const char *text, struct rfs_rasterext *out);

/* Is ext (without the dot, any case) in s? */
bool rfs_rasterext_has(const struct rfs_rasterext *s, const char *ext);

/* Is ext (without the dot, any case) one of the exceptions above? */
bool rfs_rasterext_never(const char *ext);

/* Is the file named name (one path component) a raster by the rule
 * above?  s NULL: nothing is. */
bool rfs_rasterext_match(const struct rfs_rasterext *s, const char *name);

/* Run exe with RFS_RASTEREXT_ARG and parse what it prints into out, within
 * timeout seconds (the process is killed after).  Returns 0, or
 * -RFS_E_DRIVERS with a sentence in msg (it could not be started, timed
 * out, failed, or printed no extension). */
int rfs_rasterext_probe(const char *exe, double timeout,
			struct rfs_rasterext *out, char *msg, size_t len);

/* The process rfs_rasterext_probe starts: argv[0] is RFS_RASTEREXT_ARG.
 * Prints the extensions of GDAL's raster drivers on stdout, one line.
 * Returns the exit status (0, or 1 if GDAL has no raster driver). */
int rfs_rasterext_main(int argc, char **argv);

#endif
