/* gdal_util.h - GDAL helpers shared by the operations (src/gdal_util.c).
 *
 * A leaf module: it depends on GDAL, the error table, the file checker
 * and the number writer only, never on a step or a chain, so that every
 * room of the operations (ops.c, describe.c, bandstats.c, op_*.c) can use
 * it without depending on another.  Called only in worker processes.
 */
#ifndef RASTERFS_GDAL_UTIL_H
#define RASTERFS_GDAL_UTIL_H

#include <stddef.h>
#include <stdint.h>

#include <gdal.h>

/* GTiff creation options of every file a chain writes (NULL-terminated):
 * tiled 256 x 256, BIGTIFF=IF_SAFER, no compression. */
extern const char *const rfs_gdal_gtiff_options[];

/* The rasterfs code for the GDAL failure just seen, with "what: <GDAL's
 * message>" in msg: -RFS_E_NOMEM for CPLE_OutOfMemory, -RFS_E_NOSPACE for
 * a full disk (ENOSPC, or GDAL's free-space check), -RFS_E_CANCELLED for
 * CPLE_UserInterrupt, else -RFS_E_PROCESS. */
int rfs_gdal_error(const char *what, char *msg, size_t msglen);

/* Create path as a GTiff with src's size, geotransform and CRS, nbands
 * bands of type t, with rfs_gdal_gtiff_options plus INTERLEAVE=BAND (the
 * steps write band after band).  Returns 0 and sets *out, or a code of
 * rfs_gdal_error() with the message in msg. */
int rfs_gdal_create_like(GDALDatasetH src, int nbands, GDALDataType t,
			 const char *path, GDALDatasetH *out, char *msg,
			 size_t msglen);

/* Close ds, checking that GDAL flushed it without error.  Returns 0, or a
 * code of rfs_gdal_error() with "what: <GDAL's message>" in msg. */
int rfs_gdal_close_checked(GDALDatasetH ds, const char *what, char *msg,
			   size_t msglen);

/* fsync the finished file at path, check its structure (filecheck.h: a
 * file cut short is never a finished output) and hash it.  Returns 0 with
 * its size and XXH3-64 checksum, or -RFS_E_NOSPACE (the sync met a full
 * disk), -RFS_E_NOMEM, -RFS_E_PROCESS (message in msg). */
int rfs_gdal_fsync_hash(const char *path, uint64_t *size, uint64_t *checksum,
			char *msg, size_t msglen);

/* Append the warp options every GDALWarp call of a step shares: the fixed
 * -wm 64 -et 0.125 (GDAL 3.6's defaults, spelled out so a key keeps its
 * bytes if GDAL's defaults change) and -wo NUM_THREADS=<online CPUs>.
 * The warper's threads split each chunk's rows between them with the same
 * transformer, so the pixels are those of a single-threaded warp
 * (checked: gdalwarp -wo NUM_THREADS=2 gives the same checksum); a lone
 * job uses every core, busy workers share them. */
char **rfs_gdal_warp_options(char **argv);

/* Append v written as rfs_format_double writes it (chain.h), so that an
 * argument reads back as the number the canonical chain says. */
char **rfs_gdal_add_num(char **argv, double v);

/* Append "-tr R R" with R written by rfs_gdal_add_num. */
char **rfs_gdal_add_tr(char **argv, double tr);

#endif
