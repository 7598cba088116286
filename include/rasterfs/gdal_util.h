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

/* Rows per strip for a raster W cells wide: 256, halved while a strip of
 * bytes_per_cell bytes a cell needs more than budget bytes (at least 1). */
int rfs_gdal_strip_rows(int W, size_t bytes_per_cell, size_t budget);

#define RFS_STRIPS_MAX_BANDS 4

/* One pass over the rows of bands of one size, a strip of rows at a time:
 * the strip of each input band is read as Float64, map makes the output
 * strips from them, the strip of each output band is written as out_type,
 * and progress is told how far the pass is; FALSE from it cancels. */
struct rfs_strips {
	int W, H;                  /* the bands' size */
	int rows;                  /* rows per strip (rfs_gdal_strip_rows) */
	int nin;                   /* 1..RFS_STRIPS_MAX_BANDS bands read */
	GDALRasterBandH in[RFS_STRIPS_MAX_BANDS];
	int nout;                  /* 0..RFS_STRIPS_MAX_BANDS bands written */
	GDALRasterBandH out[RFS_STRIPS_MAX_BANDS];
	GDALDataType out_type;
	int in_place;              /* map writes into the input strips, which
	                              are written (nout == nin, Float64) */
	/* Make the output strips of n cells (rows y .. y+nrows) from the
	 * input ones: in[i] holds input band i's values, out[i] takes output
	 * band i's (of out_type).  Returns 0, or a negative code with the
	 * message in msg. */
	int (*map)(void *arg, int y, int nrows, size_t n, double *const *in,
		   void *const *out, char *msg, size_t msglen);
	void *arg;
	GDALProgressFunc progress; /* may be NULL: no progress, no cancel */
	void *progress_arg;
	double base, scale;        /* progress: base + scale * rows done / H */
	const char *what;          /* for messages ("what: ...") */
	int say_cancel;            /* a cancel says "what: cancelled" */
};

/* Run s.  Returns 0, -RFS_E_CANCELLED, -RFS_E_NOMEM ("what: out of memory
 * for R rows of W cells"), a code of rfs_gdal_error() ("what: <GDAL's
 * message>"), or map's code; the message in msg. */
int rfs_gdal_strips(const struct rfs_strips *s, char *msg, size_t msglen);

#endif
