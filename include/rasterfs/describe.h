/* describe.h - what a chain will make, from its source's header alone.
 *
 * Every step's row (step.h) has a describe: the output's grid, band
 * count, data types and nodata computed from the input's without reading
 * or computing a pixel.  For the steps that are GDAL tools (proj, res,
 * size: GDALWarp; clip, band, type, nodata: GDALTranslate) describe asks
 * the same tool, with the same arguments as the step's run, for a virtual
 * (VRT) output of a pixel-free VRT input: the tool's own arithmetic, so
 * the prediction is exact for the GDAL in use.  The other steps (focal,
 * reclass, terrain, ndi) apply the rules their run follows.
 *
 * Every step writes a GeoTIFF, which holds one type and one nodata value:
 * a description says what that file keeps of a source with mixed bands.
 *
 * A description is authoritative: the final GeoTIFF of a chain is
 * written with the metadata describe gives (output.h), and the worker
 * checks that what the steps made agrees with it (ops.c).  So every rule
 * here is a function of the metadata alone (focal on a float band without
 * nodata writes NaN where a window held no valid cell, never a nodata
 * value only the pixels would call for).
 *
 * Band descriptions: when the source grid carries them (desc), each step
 * passes them on as its row of the step table says (rfs_step_band_desc),
 * so the output's bands say what they are: "hillshade=315,45,z=1 of
 * dem.tif".
 *
 * GDAL side: worker processes and tests only.
 */
#ifndef RASTERFS_DESCRIBE_H
#define RASTERFS_DESCRIBE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <gdal.h>
#include <ogr_srs_api.h>

#include "rasterfs/chain.h"

struct rfs_band_info {
	GDALDataType type;
	bool has_nodata;
	double nodata;
};

/* A raster without its pixels. */
struct rfs_grid {
	long long width, height;  /* within int, except in the answer of a
	                             describe that returned -RFS_E_TOO_BIG */
	bool has_gt;
	double gt[6];             /* GDAL's geotransform */
	OGRSpatialReferenceH srs; /* owned; NULL: no CRS */
	int nbands;
	struct rfs_band_info *bands; /* owned, nbands */
	bool point;               /* AREA_OR_POINT=Point: what GDAL's GTiff
	                             writes as RasterPixelIsPoint */
	char **desc;              /* owned, nbands descriptions, or NULL */
};

/* An empty grid (nothing owned). */
void rfs_grid_init(struct rfs_grid *g);
/* Free what g owns and make it empty. */
void rfs_grid_clear(struct rfs_grid *g);

/* The grid of an open dataset (no descriptions: desc NULL).  Returns 0,
 * or -RFS_E_NOMEM. */
int rfs_grid_from_dataset(GDALDatasetH ds, struct rfs_grid *g);

/* out = in's size, geotransform and CRS with nbands bands of type t, no
 * nodata, AREA_OR_POINT=Area and no descriptions (the caller fills them
 * in): a file a step creates.  Returns 0 or -RFS_E_NOMEM. */
int rfs_grid_like(const struct rfs_grid *in, int nbands, GDALDataType t,
		  struct rfs_grid *out);

/* A VRT dataset with g's grid and bands and no pixel source: what the GDAL
 * tools are asked about.  NULL if GDAL refuses (its message in
 * CPLGetLastErrorMsg). */
GDALDatasetH rfs_grid_dataset(const struct rfs_grid *g);

/* The output of one step from input in (the step's row's describe).
 * Returns 0 and fills out (empty it with rfs_grid_clear), or:
 *   -RFS_E_TOO_BIG   the output would be larger than GDAL's limit of
 *                    INT_MAX pixels a side; out->width and out->height
 *                    hold the size it would have (nothing else in out)
 *   -RFS_E_PROCESS   the step would fail (a band that does not exist, a
 *                    clip outside the raster ...), with the message its
 *                    run would give
 *   -RFS_E_NOMEM
 * and msg says why. */
int rfs_describe_step(const struct rfs_step *st, const struct rfs_grid *in,
		      struct rfs_grid *out, char *msg, size_t msglen);

/* Give g the band descriptions desc[0..g->nbands) (copied).  Returns 0 or
 * -RFS_E_NOMEM. */
int rfs_grid_set_desc(struct rfs_grid *g, const char *const *desc);

/* The output of chain from the source grid src, step after step, with
 * each step's output held to max_pixels (0: no limit).  Returns 0 and
 * fills out (may be NULL), or -RFS_E_TOO_BIG with msg naming the step
 * and the grid:
 *   "output of step 2 (size=2000,2000,near) would be 2000 x 2000 =
 *    4000000 pixels, over max_pixels=400000"
 * or the error of a step's describe (see rfs_describe_step). */
int rfs_describe_chain(const struct rfs_chain *chain,
		       const struct rfs_grid *src, uint64_t max_pixels,
		       struct rfs_grid *out, char *msg, size_t msglen);

/* The worker's check before any pixel: open source (a path GDAL reads),
 * describe chain from its header and hold every step to max_pixels.
 * Returns 0, or -RFS_E_TOO_BIG with msg set (rfs_describe_chain).  A
 * source or step that cannot be described is left to the job itself to
 * fail on: 0. */
int rfs_describe_limit(const char *source, const struct rfs_chain *chain,
		       uint64_t max_pixels, char *msg, size_t msglen);

/* rfs_describe_limit, and the chain's output grid in out (when it could
 * be described; else out is empty: width 0).  Empty out with
 * rfs_grid_clear.  Same returns. */
int rfs_describe_source(const char *source, const struct rfs_chain *chain,
			uint64_t max_pixels, struct rfs_grid *out, char *msg,
			size_t msglen);

#endif
