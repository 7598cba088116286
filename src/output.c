/* output.c - a chain's final output, described before any pixel
 * (output.h).
 *
 * Design notes:
 *  1. One function makes the description for both processes that need
 *     it, the describer (stat) and the worker (the file), from the same
 *     source read the same way (the pinned descriptor, /vsirfs/), so the
 *     size stat reports and the size written cannot come from two
 *     computations.  The worker still compares them (worker.c).
 *  2. The metadata written is describe's, never the last dataset's: the
 *     header must exist before that dataset does.  rfs_output_check
 *     holds the dataset to it, so a step whose describe is wrong fails its
 *     job (RFS-E499) instead of writing a file whose metadata lies.
 *  3. The CRS goes to the writer as WKT2 (2019), which GDAL reads back as
 *     the same CRS; the GeoKeys are then GDAL's own (tiff.c note 1).
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cpl_conv.h>
#include <cpl_error.h>
#include <cpl_string.h>
#include <gdal.h>
#include <ogr_srs_api.h>
#include <proj.h>

#include "rasterfs/err.h"
#include "rasterfs/lazy.h"
#include "rasterfs/output.h"
#include "rasterfs/step.h"

void rfs_output_clear(struct rfs_output *out)
{
	if (!out)
		return;
	rfs_grid_clear(&out->grid);
	rfs_tiff_layout_free(&out->layout);
	free(out->strings);
	memset(out, 0, sizeof(*out));
}

/* The provenance items (output.h), their values copied into one
 * allocation. */
static int provenance(struct rfs_output *out, const char *source_rel,
		      const char *canonical)
{
	static const char *const keys[RFS_OUTPUT_ITEMS] = {
		"RASTERFS_SOURCE", "RASTERFS_CHAIN", "RASTERFS_VERSION",
		"RASTERFS_GDAL_VERSION", "RASTERFS_PROJ_VERSION",
	};
	const char *vals[RFS_OUTPUT_ITEMS] = {
		source_rel, canonical, RFS_VERSION,
		GDALVersionInfo("RELEASE_NAME"), proj_info().version,
	};
	size_t n = 0, at = 0;

	for (int i = 0; i < RFS_OUTPUT_ITEMS; i++) {
		if (!vals[i])
			vals[i] = "";
		n += strlen(vals[i]) + 1;
	}
	if (!(out->strings = malloc(n)))
		return -RFS_E_NOMEM;
	for (int i = 0; i < RFS_OUTPUT_ITEMS; i++) {
		size_t l = strlen(vals[i]) + 1;
		memcpy(out->strings + at, vals[i], l);
		out->items[i].key = keys[i];
		out->items[i].value = out->strings + at;
		at += l;
	}
	return 0;
}

/* The source's bands named as descriptions start from them (output.h). */
static int source_desc(struct rfs_grid *g, const char *source_rel)
{
	char **d = calloc(g->nbands > 0 ? (size_t)g->nbands : 1, sizeof(*d));
	int rc = 0;

	if (!d)
		return -RFS_E_NOMEM;
	for (int b = 0; b < g->nbands && !rc; b++) {
		d[b] = g->nbands == 1 ? CPLStrdup(source_rel) :
		       CPLStrdup(CPLSPrintf("%s band %d", source_rel, b + 1));
	}
	rc = rfs_grid_set_desc(g, (const char *const *)d);
	for (int b = 0; b < g->nbands; b++)
		CPLFree(d[b]);
	free(d);
	return rc;
}

/* Types rasterfs's GeoTIFF writer takes (tiff.h). */
static int writer_type(GDALDataType t)
{
	return t == GDT_Byte || t == GDT_UInt16 || t == GDT_Int16 ||
	       t == GDT_UInt32 || t == GDT_Int32 || t == GDT_Float32 ||
	       t == GDT_Float64;
}

static int north_up(const struct rfs_grid *g)
{
	return g->has_gt && g->gt[2] == 0 && g->gt[4] == 0;
}

/* Internal overviews: a large output (lazy.h) whose levels the window
 * engine can make, every grid of the chain north-up: the source's, or a
 * first step that warps it onto a north-up grid (window.h).  Another
 * large output (no georeferencing, a rotated one) has none and is
 * computed whole. */
static int wants_overviews(const struct rfs_grid *src,
			   const struct rfs_chain *chain,
			   const struct rfs_grid *g)
{
	return rfs_lazy_large(g->width, g->height) && north_up(g) &&
	       (north_up(src) ||
		rfs_step_first_has(chain->canonical, RFS_STEP_WARP));
}

/* The GeoTIFF's layout from out->grid (note 3). */
static int make_layout(struct rfs_output *out, int overviews, char *msg,
		       size_t msglen)
{
	const struct rfs_grid *g = &out->grid;
	const char *wkt_opts[] = { "FORMAT=WKT2_2019", "MULTILINE=NO", NULL };
	char *wkt = NULL;
	int rc;

	for (int b = 0; b < g->nbands; b++)
		if (!writer_type(g->bands[b].type) ||
		    g->bands[b].type != g->bands[0].type)
			return 0; /* GDAL's writer: has_layout stays 0 */
	if (g->width > INT32_MAX || g->height > INT32_MAX || g->nbands < 1 ||
	    g->nbands > RFS_TIFF_MAX_BANDS)
		return 0;
	if (g->srs && OSRExportToWktEx(g->srs, &wkt, wkt_opts) != OGRERR_NONE) {
		snprintf(msg, msglen, "the output's CRS cannot be written as "
			 "WKT");
		rc = -RFS_E_PROCESS;
		goto out;
	}
	struct rfs_tiff_desc d = {
		.width = (int)g->width,
		.height = (int)g->height,
		.bands = g->nbands,
		.type = g->bands[0].type,
		.has_geotransform = g->has_gt,
		.srs_wkt = wkt,
		.pixel_is_point = g->point,
		.has_nodata = g->bands[0].has_nodata,
		.nodata = g->bands[0].nodata,
		.items = out->items,
		.n_items = RFS_OUTPUT_ITEMS,
		.band_desc = (const char *const *)g->desc,
		/* output.h: only outputs over the lazy threshold (lazy.h) */
		.overviews = overviews,
	};
	memcpy(d.geotransform, g->gt, sizeof(d.geotransform));
	rc = rfs_tiff_layout(&d, &out->layout);
	if (rc == 0) {
		out->has_layout = 1;
	} else if (rc == -EINVAL || rc == -EFBIG) {
		rfs_tiff_layout_free(&out->layout);
		rc = 0; /* GDAL's writer */
	} else if (rc == -ENOMEM) {
		snprintf(msg, msglen, "out of memory for the output's layout");
		rc = -RFS_E_NOMEM;
	} else {
		snprintf(msg, msglen, "GDAL cannot write the output's "
			 "georeferencing");
		rc = -RFS_E_PROCESS;
	}
out:
	CPLFree(wkt);
	return rc;
}

int rfs_output_describe(const char *source, const char *source_rel,
			const struct rfs_chain *chain, uint64_t max_pixels,
			struct rfs_output *out, char *msg, size_t msglen)
{
	struct rfs_grid src;
	GDALDatasetH ds;
	int rc;

	memset(out, 0, sizeof(*out));
	rfs_grid_init(&src);
	msg[0] = '\0';
	/* Warnings (a nodata clamped by -ot ...) come again, logged, when
	 * the job runs; here they would only be said twice. */
	CPLPushErrorHandler(CPLQuietErrorHandler);
	/* VERBOSE_ERROR: a file no driver takes says so (it is otherwise
	 * no error) */
	ds = GDALOpenEx(source, GDAL_OF_RASTER | GDAL_OF_READONLY |
			GDAL_OF_VERBOSE_ERROR, NULL, NULL, NULL);
	if (!ds) {
		snprintf(msg, msglen, "cannot open the source: %s",
			 *CPLGetLastErrorMsg() ? CPLGetLastErrorMsg() :
			 "no GDAL driver takes it");
		rc = -RFS_E_SOURCE;
		goto out;
	}
	rc = rfs_grid_from_dataset(ds, &src);
	GDALClose(ds);
	if (rc == 0 && src.nbands < 1) {
		snprintf(msg, msglen, "the source has no raster band");
		rc = -RFS_E_SOURCE;
	}
	if (rc == 0)
		rc = source_desc(&src, source_rel);
	if (rc == 0)
		rc = rfs_describe_chain(chain, &src, max_pixels, &out->grid,
					msg, msglen);
	if (rc == 0)
		rc = provenance(out, source_rel, chain->canonical);
	out->source = source;
	out->chain = chain;
	if (rc == 0 && chain->format == RFS_FMT_GTIFF)
		rc = make_layout(out, wants_overviews(&src, chain, &out->grid),
				 msg, msglen);
out:
	CPLPopErrorHandler();
	CPLErrorReset();
	rfs_grid_clear(&src);
	if (rc == -RFS_E_NOMEM && !msg[0])
		snprintf(msg, msglen, "out of memory describing the output");
	return rc;
}

int rfs_output_annotate(const struct rfs_output *out, GDALDatasetH ds,
			char *msg, size_t msglen)
{
	for (int i = 0; i < RFS_OUTPUT_ITEMS; i++)
		if (GDALSetMetadataItem(ds, out->items[i].key,
					out->items[i].value, NULL) != CE_None)
			goto fail;
	for (int b = 0; out->grid.desc && b < out->grid.nbands &&
	     b < GDALGetRasterCount(ds); b++)
		GDALSetDescription(GDALGetRasterBand(ds, b + 1),
				   out->grid.desc[b]);
	return 0;
fail:
	snprintf(msg, msglen, "provenance: %s", CPLGetLastErrorMsg());
	return -RFS_E_PROCESS;
}

static int close_rel(double a, double b)
{
	return a == b || fabs(a - b) <= 1e-9 * fmax(fabs(a), fabs(b));
}

static int same_value(double a, double b)
{
	return a == b || (isnan(a) && isnan(b));
}

int rfs_output_check(const struct rfs_output *out, GDALDatasetH ds,
		     char *msg, size_t msglen)
{
	const struct rfs_grid *p = &out->grid;
	struct rfs_grid g;
	int rc = -RFS_E_INTERNAL;

	if (rfs_grid_from_dataset(ds, &g) < 0) {
		snprintf(msg, msglen, "out of memory checking the output");
		return -RFS_E_NOMEM;
	}
	if (p->width != g.width || p->height != g.height ||
	    p->nbands != g.nbands) {
		snprintf(msg, msglen, "describe said %lld x %lld x %d, the "
			 "steps made %lld x %lld x %d", p->width, p->height,
			 p->nbands, g.width, g.height, g.nbands);
		goto out;
	}
	for (int b = 0; b < p->nbands; b++) {
		const struct rfs_band_info *x = &p->bands[b], *y = &g.bands[b];
		if (x->type != y->type || x->has_nodata != y->has_nodata ||
		    (x->has_nodata && !same_value(x->nodata, y->nodata))) {
			snprintf(msg, msglen, "band %d: describe said %s, "
				 "nodata %s%.17g; the steps made %s, nodata "
				 "%s%.17g", b + 1,
				 GDALGetDataTypeName(x->type),
				 x->has_nodata ? "" : "none ", x->nodata,
				 GDALGetDataTypeName(y->type),
				 y->has_nodata ? "" : "none ", y->nodata);
			goto out;
		}
	}
	int gt_ok = p->has_gt == g.has_gt;
	for (int i = 0; gt_ok && g.has_gt && i < 6; i++)
		gt_ok = close_rel(p->gt[i], g.gt[i]);
	if (!gt_ok) {
		snprintf(msg, msglen, "describe and the steps disagree on the "
			 "geotransform (%.17g %.17g %.17g / %.17g %.17g %.17g)",
			 p->gt[0], p->gt[1], p->gt[3], g.gt[0], g.gt[1],
			 g.gt[3]);
		goto out;
	}
	/* The same CRS, whatever the order of its axes: a GeoTIFF has no
	 * place for it, so OGC:CRS84 (longitude first) as described reads
	 * back from the steps' GeoTIFF as EPSG:4326 with the traditional
	 * data axis mapping.  Every GDAL dataset maps its first data axis
	 * to east (OAMS_TRADITIONAL_GIS_ORDER), so the mapping tells
	 * nothing here. */
	static const char *const same_opts[] = {
		"IGNORE_DATA_AXIS_TO_SRS_AXIS_MAPPING=YES", NULL
	};
	if (!((!p->srs && !g.srs) ||
	      (p->srs && g.srs && OSRIsSameEx(p->srs, g.srs, same_opts)))) {
		snprintf(msg, msglen, "describe and the steps disagree on the "
			 "CRS");
		goto out;
	}
	if (p->point != g.point) {
		snprintf(msg, msglen, "describe said AREA_OR_POINT=%s, the "
			 "steps made %s", p->point ? "Point" : "Area",
			 g.point ? "Point" : "Area");
		goto out;
	}
	rc = 0;
out:
	rfs_grid_clear(&g);
	return rc;
}
