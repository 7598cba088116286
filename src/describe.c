/* describe.c - a chain's outputs from its source's header (describe.h).
 *
 * Design notes:
 * 1. A step that is a GDAL tool is described by that tool: the same
 *    arguments as its run, "-of VRT" in place of the GTiff output, on a
 *    VRT input that has the grid and bands but no pixel source.  GDAL
 *    builds a virtual dataset (a warped VRT for GDALWarp) and reads no
 *    pixel, so the grid, types and nodata are GDAL's own to the last bit
 *    (checked against real runs by tests/unit/test_steps.c), and no
 *    formula of gdalwarp or gdal_translate is copied here.
 * 2. GDAL 3.6 casts gdalwarp's -tr size to int unchecked (a tiny res gives
 *    "Attempt to create -2147483648x-2147483648 dataset"), so a warp with
 *    -tr is first described without it: gdalwarp's -tr grid spans that
 *    suggested grid's extent, (extent + R/2) / R pixels a side; when that
 *    is beyond INT_MAX, describe answers -RFS_E_TOO_BIG with that size
 *    instead of asking GDAL.
 * 3. Every step writes a GeoTIFF, which holds one data type and one
 *    nodata value (TIFFTAG_GDAL_NODATA is the dataset's).  A VRT holds one
 *    per band, so each description ends with what the GeoTIFF keeps
 *    (gtiff_holds): a copy (GDALTranslate, GDALCreateCopy) takes band 1's
 *    type and nodata; a created file (the warper, focal, ...) keeps the
 *    last nodata set on any band, for all bands.  Only sources with mixed
 *    bands (a VRT, a netCDF) show the difference.
 * 4. The limit check (rfs_describe_limit) costs a header read and a few
 *    VRT set-ups, milliseconds, and runs in the worker before any pixel.
 */
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cpl_error.h>
#include <cpl_string.h>
#include <gdal.h>
#include <gdal_utils.h>
#include <ogr_srs_api.h>

#include "ops_int.h"
#include "rasterfs/describe.h"
#include "rasterfs/err.h"
#include "rasterfs/log.h"
#include "rasterfs/step.h"

void rfs_grid_init(struct rfs_grid *g)
{
	memset(g, 0, sizeof(*g));
}

static void desc_free(char **desc, int n)
{
	for (int b = 0; desc && b < n; b++)
		free(desc[b]);
	free(desc);
}

void rfs_grid_clear(struct rfs_grid *g)
{
	if (g->srs)
		OSRDestroySpatialReference(g->srs);
	free(g->bands);
	desc_free(g->desc, g->nbands);
	rfs_grid_init(g);
}

int rfs_grid_set_desc(struct rfs_grid *g, const char *const *desc)
{
	char **d = calloc(g->nbands > 0 ? (size_t)g->nbands : 1, sizeof(*d));

	if (!d)
		return -RFS_E_NOMEM;
	for (int b = 0; b < g->nbands; b++)
		if (!(d[b] = strdup(desc[b] ? desc[b] : ""))) {
			desc_free(d, g->nbands);
			return -RFS_E_NOMEM;
		}
	desc_free(g->desc, g->nbands);
	g->desc = d;
	return 0;
}

static int grid_bands(struct rfs_grid *g, int nbands)
{
	g->nbands = nbands;
	g->bands = calloc(nbands > 0 ? (size_t)nbands : 1, sizeof(*g->bands));
	return g->bands ? 0 : -RFS_E_NOMEM;
}

int rfs_grid_from_dataset(GDALDatasetH ds, struct rfs_grid *g)
{
	OGRSpatialReferenceH srs = GDALGetSpatialRef(ds);

	rfs_grid_init(g);
	g->width = GDALGetRasterXSize(ds);
	g->height = GDALGetRasterYSize(ds);
	g->has_gt = GDALGetGeoTransform(ds, g->gt) == CE_None;
	const char *aop = GDALGetMetadataItem(ds, "AREA_OR_POINT", NULL);
	g->point = aop && EQUAL(aop, "Point");
	if (srs && !(g->srs = OSRClone(srs)))
		goto nomem;
	if (grid_bands(g, GDALGetRasterCount(ds)) < 0)
		goto nomem;
	for (int b = 0; b < g->nbands; b++) {
		GDALRasterBandH band = GDALGetRasterBand(ds, b + 1);
		int has = 0;

		g->bands[b].type = GDALGetRasterDataType(band);
		g->bands[b].nodata = GDALGetRasterNoDataValue(band, &has);
		g->bands[b].has_nodata = has != 0;
	}
	return 0;
nomem:
	rfs_grid_clear(g);
	return -RFS_E_NOMEM;
}

int rfs_grid_like(const struct rfs_grid *in, int nbands, GDALDataType t,
		  struct rfs_grid *out)
{
	rfs_grid_init(out);
	out->width = in->width;
	out->height = in->height;
	out->has_gt = in->has_gt;
	memcpy(out->gt, in->gt, sizeof(out->gt));
	if ((in->srs && !(out->srs = OSRClone(in->srs))) ||
	    grid_bands(out, nbands) < 0) {
		rfs_grid_clear(out);
		return -RFS_E_NOMEM;
	}
	for (int b = 0; b < nbands; b++)
		out->bands[b].type = t;
	return 0;
}

GDALDatasetH rfs_grid_dataset(const struct rfs_grid *g)
{
	GDALDriverH vrt = GDALGetDriverByName("VRT");
	GDALDatasetH ds;

	if (!vrt || g->width < 1 || g->height < 1 || g->width > INT_MAX ||
	    g->height > INT_MAX)
		return NULL;
	ds = GDALCreate(vrt, "", (int)g->width, (int)g->height, 0, GDT_Byte,
			NULL);
	if (!ds)
		return NULL;
	for (int b = 0; b < g->nbands; b++) {
		if (GDALAddBand(ds, g->bands[b].type, NULL) != CE_None)
			goto fail;
		if (g->bands[b].has_nodata &&
		    GDALSetRasterNoDataValue(GDALGetRasterBand(ds, b + 1),
					     g->bands[b].nodata) != CE_None)
			goto fail;
	}
	if (g->has_gt && GDALSetGeoTransform(ds, (double *)g->gt) != CE_None)
		goto fail;
	if (g->srs && GDALSetSpatialRef(ds, g->srs) != CE_None)
		goto fail;
	/* the tools carry AREA_OR_POINT on (gdalwarp, gdal_translate) */
	if (g->point &&
	    GDALSetMetadataItem(ds, "AREA_OR_POINT", "Point", NULL) != CE_None)
		goto fail;
	return ds;
fail:
	GDALClose(ds);
	return NULL;
}

/* What a GeoTIFF written as g keeps of it (note 3): copy is true for
 * GDALCreateCopy, false for GDALCreate then a nodata per band. */
static void gtiff_holds(struct rfs_grid *g, bool copy)
{
	struct rfs_band_info one;
	int from = -1;

	if (g->nbands < 1)
		return;
	if (copy) {
		from = 0;
	} else {
		for (int b = 0; b < g->nbands; b++)
			if (g->bands[b].has_nodata)
				from = b;
	}
	one = g->bands[from >= 0 ? from : 0];
	for (int b = 0; b < g->nbands; b++) {
		if (copy)
			g->bands[b].type = one.type;
		if (from >= 0) {
			g->bands[b].has_nodata = one.has_nodata;
			g->bands[b].nodata = one.nodata;
		}
	}
}

/* The input as a dataset, with GDAL's message in msg if it cannot be. */
static GDALDatasetH input_dataset(const struct rfs_grid *in, const char *what,
				  char *msg, size_t msglen, int *rc)
{
	GDALDatasetH ds;

	CPLErrorReset();
	ds = rfs_grid_dataset(in);
	if (!ds)
		*rc = rfs_gdal_error(what, msg, msglen);
	return ds;
}

/* One GDALWarp of src to a VRT with argv plus "-of VRT" (argv kept). */
static int warp_vrt(GDALDatasetH src, char **argv, const char *what,
		    struct rfs_grid *out, char *msg, size_t msglen)
{
	char **a = CSLAddString(CSLAddString(CSLDuplicate(argv), "-of"),
				"VRT");
	GDALWarpAppOptions *opts = NULL;
	GDALDatasetH d = NULL;
	int rc = 0;

	CPLErrorReset();
	opts = GDALWarpAppOptionsNew(a, NULL);
	if (opts)
		d = GDALWarp("", NULL, 1, &src, opts, NULL);
	if (!d)
		rc = rfs_gdal_error(what, msg, msglen);
	else
		rc = rfs_grid_from_dataset(d, out);
	if (d)
		GDALClose(d);
	GDALWarpAppOptionsFree(opts);
	CSLDestroy(a);
	return rc;
}

static long long clamp_ll(double v)
{
	return v >= (double)LLONG_MAX ? LLONG_MAX : v < 0 ? 0 : (long long)v;
}

int rfs_describe_warp(const struct rfs_grid *in, char **argv, double tr,
		      const char *what, struct rfs_grid *out, char *msg,
		      size_t msglen)
{
	GDALDatasetH src = NULL;
	struct rfs_grid g;
	int rc = 0;

	rfs_grid_init(&g);
	rfs_grid_init(out);
	if (!(src = input_dataset(in, what, msg, msglen, &rc)))
		goto out;
	if (tr > 0) {
		/* note 2: gdalwarp's -tr grid, in doubles, before GDAL
		 * makes it an int */
		rc = warp_vrt(src, argv, what, &g, msg, msglen);
		if (rc)
			goto out;
		const double w = (fabs(g.gt[1] * g.width) + tr / 2) / tr;
		const double h = (fabs(g.gt[5] * g.height) + tr / 2) / tr;
		if (!(w < INT_MAX) || !(h < INT_MAX)) {
			out->width = clamp_ll(w);
			out->height = clamp_ll(h);
			snprintf(msg, msglen, "%s: the output would be %lld x "
				 "%lld pixels, beyond GDAL's limit of %d a "
				 "side", what, out->width, out->height,
				 INT_MAX);
			rc = -RFS_E_TOO_BIG;
			goto out;
		}
		argv = rfs_gdal_add_tr(argv, tr);
	}
	rc = warp_vrt(src, argv, what, out, msg, msglen);
	/* the warped VRT is copied to the GeoTIFF (rfs_ops_warp) */
	if (rc == 0)
		gtiff_holds(out, true);
out:
	rfs_grid_clear(&g);
	if (src)
		GDALClose(src);
	CSLDestroy(argv);
	return rc;
}

int rfs_describe_translate(const struct rfs_grid *in, char **argv,
			   const char *what, struct rfs_grid *out, char *msg,
			   size_t msglen)
{
	GDALTranslateOptions *opts = NULL;
	GDALDatasetH src = NULL, d = NULL;
	int rc = 0;

	rfs_grid_init(out);
	argv = CSLAddString(CSLAddString(argv, "-of"), "VRT");
	if (!(src = input_dataset(in, what, msg, msglen, &rc)))
		goto out;
	CPLErrorReset();
	opts = GDALTranslateOptionsNew(argv, NULL);
	if (opts)
		d = GDALTranslate("", src, opts, NULL);
	if (!d)
		rc = rfs_gdal_error(what, msg, msglen);
	else if ((rc = rfs_grid_from_dataset(d, out)) == 0)
		gtiff_holds(out, true);
out:
	if (d)
		GDALClose(d);
	if (src)
		GDALClose(src);
	GDALTranslateOptionsFree(opts);
	CSLDestroy(argv);
	return rc;
}

int rfs_describe_step(const struct rfs_step *st, const struct rfs_grid *in,
		      struct rfs_grid *out, char *msg, size_t msglen)
{
	const struct rfs_step_desc *d = rfs_step_desc(st->op);
	int rc;

	rfs_grid_init(out);
	if (!d) {
		snprintf(msg, msglen, "no step %d", (int)st->op);
		return -RFS_E_INTERNAL;
	}
	rc = d->engine->describe(st, in, out, msg, msglen);
	if (rc == 0)
		gtiff_holds(out, false);
	return rc;
}

/* The band descriptions of out, the output of step st from in (the step
 * table says which input bands each output band is made of).  Returns 0,
 * -RFS_E_PROCESS (a band the step names is missing: msg says so, as the
 * step's run would fail), -RFS_E_NOMEM. */
static int step_desc(const struct rfs_step *st, const struct rfs_grid *in,
		     struct rfs_grid *out, char *msg, size_t msglen)
{
	char **d = calloc(out->nbands > 0 ? (size_t)out->nbands : 1,
			  sizeof(*d));
	int rc = 0;

	if (!d)
		return -RFS_E_NOMEM;
	for (int b = 0; b < out->nbands && !rc; b++) {
		if (!(d[b] = malloc(RFS_BAND_DESC_MAX))) {
			rc = -RFS_E_NOMEM;
		} else if (rfs_step_band_desc(st, (const char *const *)in->desc,
					      in->nbands, b, d[b],
					      RFS_BAND_DESC_MAX) < 0) {
			snprintf(msg, msglen, "%s: output band %d names a band "
				 "the input (%d bands) does not have",
				 rfs_op_name(st->op), b + 1, in->nbands);
			rc = -RFS_E_PROCESS;
		}
	}
	if (rc) {
		desc_free(d, out->nbands);
		return rc;
	}
	out->desc = d;
	return 0;
}

/* "4000000", or "more than 18446744073709551615" past uint64_t. */
static void pixel_count(long long w, long long h, char *buf, size_t len)
{
	const unsigned long long uw = (unsigned long long)w;
	const unsigned long long uh = (unsigned long long)h;

	if (uw && uh > ULLONG_MAX / uw)
		snprintf(buf, len, "more than %llu", ULLONG_MAX);
	else
		snprintf(buf, len, "%llu", uw * uh);
}

int rfs_describe_chain(const struct rfs_chain *chain,
		       const struct rfs_grid *src, uint64_t max_pixels,
		       struct rfs_grid *out, char *msg, size_t msglen)
{
	struct rfs_grid cur, next;
	char text[RFS_CHAIN_TEXT_MAX], count[48];
	int rc = 0;

	rfs_grid_init(&cur);
	rfs_grid_init(&next);
	if (out)
		rfs_grid_init(out);
	for (int i = 0; i < chain->nsteps; i++) {
		const struct rfs_step *st = &chain->steps[i];

		rc = rfs_describe_step(st, i ? &cur : src, &next, msg, msglen);
		if (rc && rc != -RFS_E_TOO_BIG)
			goto out;
		if (rc == 0 && (i ? &cur : src)->desc &&
		    (rc = step_desc(st, i ? &cur : src, &next, msg, msglen)))
			goto out;
		const unsigned long long uw = (unsigned long long)next.width;
		const unsigned long long uh = (unsigned long long)next.height;
		const int over = max_pixels && uw &&
			(uh > max_pixels / uw || uw * uh > max_pixels);
		if (rc == 0 && !over) {
			rfs_grid_clear(&cur);
			cur = next;
			rfs_grid_init(&next);
			continue;
		}
		if (rfs_step_canonical(st, text, sizeof(text)) < 0)
			snprintf(text, sizeof(text), "%s", rfs_op_name(st->op));
		pixel_count(next.width, next.height, count, sizeof(count));
		if (over)
			snprintf(msg, msglen, "output of step %d (%s) would be "
				 "%lld x %lld = %s pixels, over max_pixels=%llu",
				 i + 1, text, next.width, next.height, count,
				 (unsigned long long)max_pixels);
		else
			snprintf(msg, msglen, "output of step %d (%s) would be "
				 "%lld x %lld = %s pixels, beyond GDAL's limit "
				 "of %d pixels a side", i + 1, text,
				 next.width, next.height, count, INT_MAX);
		rc = -RFS_E_TOO_BIG;
		goto out;
	}
	if (out) {
		/* no step: the output is the source's grid */
		if (chain->nsteps == 0 &&
		    (rc = rfs_grid_like(src, src->nbands, GDT_Unknown, &cur)))
			goto out;
		if (chain->nsteps == 0) {
			/* the source copied as it is (GDALCreateCopy) */
			memcpy(cur.bands, src->bands,
			       (size_t)src->nbands * sizeof(*cur.bands));
			gtiff_holds(&cur, true);
			cur.point = src->point;
			if (src->desc && (rc = rfs_grid_set_desc(&cur,
					(const char *const *)src->desc)))
				goto out;
		}
		*out = cur;
		rfs_grid_init(&cur);
	}
out:
	rfs_grid_clear(&cur);
	rfs_grid_clear(&next);
	return rc;
}

int rfs_describe_source(const char *source, const struct rfs_chain *chain,
			uint64_t max_pixels, struct rfs_grid *out, char *msg,
			size_t msglen)
{
	GDALDatasetH ds;
	struct rfs_grid src;
	char why[RFS_MSG_MAX];
	int rc;

	if (out)
		rfs_grid_init(out);
	/* GDAL's warnings (a nodata clamped by -ot ...) come again, logged,
	 * when the job runs; here they would only be said twice */
	CPLPushErrorHandler(CPLQuietErrorHandler);
	ds = GDALOpenEx(source, GDAL_OF_RASTER | GDAL_OF_READONLY, NULL, NULL,
			NULL);
	rc = ds ? rfs_grid_from_dataset(ds, &src) : -RFS_E_SOURCE;
	if (ds)
		GDALClose(ds);
	if (rc == 0) {
		rc = rfs_describe_chain(chain, &src, max_pixels, out, why,
					sizeof(why));
		rfs_grid_clear(&src);
	} else {
		snprintf(why, sizeof(why), "the source does not open");
	}
	CPLPopErrorHandler();
	CPLErrorReset();
	if (rc == -RFS_E_TOO_BIG) {
		snprintf(msg, msglen, "%s", why);
		if (out)
			rfs_grid_clear(out);
		return rc;
	}
	if (rc) {
		rfs_log(LOG_DEBUG, "describe: %s (left to the job)", why);
		if (out)
			rfs_grid_clear(out);
	}
	return 0;
}

int rfs_describe_limit(const char *source, const struct rfs_chain *chain,
		       uint64_t max_pixels, char *msg, size_t msglen)
{
	return rfs_describe_source(source, chain, max_pixels, NULL, msg,
				   msglen);
}
