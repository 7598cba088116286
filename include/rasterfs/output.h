/* output.h - a chain's final output, described before any pixel.
 *
 * What an output will be is worked out from its source's header alone:
 * the chain's description (describe.h: grid, bands, type, nodata,
 * AREA_OR_POINT, band descriptions), the provenance items that say where
 * it came from, and, for the default format (a GeoTIFF), the byte layout
 * rasterfs's own writer gives it (tiff.h): the header's bytes, the offset
 * of every tile, the exact size.  The describer processes send that
 * layout to the daemon, so `stat` tells the exact size of an output never
 * computed (describer.h); the worker that computes it works out the same
 * layout from the same source and writes the file into it (ops.c), so
 * the two agree by construction, and the worker checks it.
 *
 * Provenance (GDAL metadata items of the dataset, in this order):
 *   RASTERFS_SOURCE        the source, below the source root ("sub/dem.tif")
 *   RASTERFS_CHAIN         the canonical chain ("@hillshade=315,45,z=1")
 *   RASTERFS_VERSION       rasterfs's version
 *   RASTERFS_GDAL_VERSION  GDAL's release ("3.6.2")
 *   RASTERFS_PROJ_VERSION  PROJ's ("9.1.1")
 * and per band a description of what it is, made by the step table
 * (rfs_step_band_desc) from the source's bands, named "dem.tif" (a source
 * of one band) or "l7.tif band 4": "hillshade=315,45,z=1 of dem.tif".
 *
 * Internal overviews: none up to the lazy threshold (docs/performance.md
 * has the measurement: a third more bytes to compute and write on every
 * cold read, for a benefit only large outputs see); outputs over it
 * (lazy.h: rfs_lazy_large) have them, computed lazily as the chain at
 * each level's resolution.
 *
 * GDAL side: worker processes (jobs and describers) and tests only.
 */
#ifndef RASTERFS_OUTPUT_H
#define RASTERFS_OUTPUT_H

#include <stddef.h>
#include <stdint.h>

#include "rasterfs/chain.h"
#include "rasterfs/describe.h"
#include "rasterfs/tiff.h"

#define RFS_OUTPUT_ITEMS 5

struct rfs_output {
	struct rfs_grid grid;       /* the chain's output, with band
	                               descriptions */
	struct rfs_tiff_item items[RFS_OUTPUT_ITEMS]; /* provenance */
	char *strings;              /* owned: what items point into */
	int has_layout;             /* layout holds the GeoTIFF's bytes: the
	                               default format, and a type the writer
	                               takes (not complex, not 64-bit
	                               integers) */
	struct rfs_tiff_layout layout;
	/* What it was described from, borrowed (the caller of
	 * rfs_output_describe keeps them alive while out is used): a lazy
	 * output's overviews are computed from them (lazy.h, ops.c). */
	const char *source;
	const struct rfs_chain *chain;
};

/* Describe chain on the raster GDAL opens as source, which is source_rel
 * below the source root (named in the provenance and band descriptions),
 * holding every step to max_pixels (0: no limit).  Fills *out (empty it
 * with rfs_output_clear, also after a failure).  Returns 0, or:
 *   -RFS_E_SOURCE    GDAL cannot open source
 *   -RFS_E_TOO_BIG   a step's output is over max_pixels (msg names it)
 *   -RFS_E_PROCESS   a step would fail (describe.h), or the layout cannot
 *                    be made (GDAL cannot write the georeferencing)
 *   -RFS_E_NOMEM
 * with msg set.  A GeoTIFF of a type the writer does not take is no
 * error: has_layout is 0 and GDAL's GTiff driver writes it (ops.c). */
int rfs_output_describe(const char *source, const char *source_rel,
			const struct rfs_chain *chain, uint64_t max_pixels,
			struct rfs_output *out, char *msg, size_t msglen);

/* Free what out holds; it may be described again.  NULL is fine. */
void rfs_output_clear(struct rfs_output *out);

/* Set out's provenance and band descriptions on ds (a COG's source: the
 * GeoTIFF writer takes them from out itself).  Returns 0 or
 * -RFS_E_PROCESS with GDAL's message in msg. */
int rfs_output_annotate(const struct rfs_output *out, GDALDatasetH ds,
			char *msg, size_t msglen);

/* Does ds hold what out says the chain makes: size, band count, each
 * band's type and nodata, geotransform (to 1e-9, relative), CRS
 * (OSRIsSame) and AREA_OR_POINT?  Returns 0, or -RFS_E_INTERNAL with the
 * first difference in msg (describe and the steps disagree: a bug). */
int rfs_output_check(const struct rfs_output *out, GDALDatasetH ds,
		     char *msg, size_t msglen);

#endif
