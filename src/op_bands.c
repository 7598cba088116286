/* op_bands.c - band, type, nodata and ndi.
 *
 * band=N,...  is `gdal_translate -b N ...` (select, repeat or reorder).
 * type=T      is `gdal_translate -ot T`: values are rounded to the nearest
 *             integer for integer types and clamped to the type's range
 *             (GDALCopyWords), never wrapped: 300 becomes 255 in a Byte.
 * nodata=V    is `gdal_translate -a_nodata V` (none: -a_nodata none): the
 *             value is declared, no pixel changes.
 * A band number over the input's band count fails the job with GDAL's
 * message ("Band 7 requested, but only bands 1 to 6 available"): the band
 * count is not known at lookup.
 *
 * ndi=A,B is the normalised difference (A - B) / (A + B), computed in
 * double and stored as Float32 (NDVI is ndi=NIR,RED).  A cell is nodata
 * where A or B is nodata or NaN, where A + B == 0, or where the result is
 * not finite; the nodata value is -3.4028234663852886e+38 (-FLT_MAX, the
 * Float32 nodata of reclass too), outside any ratio's [-1, 1].  GDAL 3.6
 * has no library call for band arithmetic (gdal_calc.py is a Python script,
 * and a VRT would need a Python pixel function), so it is a plain loop,
 * streamed in blocks of rows.
 */
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include <cpl_error.h>
#include <cpl_string.h>
#include <gdal.h>

#include "ops_int.h"
#include "rasterfs/chain.h"
#include "rasterfs/err.h"

#define NDI_NODATA (-FLT_MAX)
#define BLOCK_ROWS 256            /* one row of output tiles */
#define BLOCK_BYTES (32 << 20)

static int run_ndi(GDALDatasetH src, const struct rfs_step *step,
		   const struct rfs_op_ctx *ctx, GDALDatasetH *out)
{
	const int nb = GDALGetRasterCount(src);
	const int W = GDALGetRasterXSize(src), H = GDALGetRasterYSize(src);
	const int ia = step->u.ndi.a, ib = step->u.ndi.b;
	GDALDatasetH ds = NULL;
	double *a = NULL, *b = NULL;
	float *o = NULL;
	int rows = BLOCK_ROWS, rc = 0;

	if (ia > nb || ib > nb) {
		snprintf(ctx->msg, ctx->msglen, "ndi: band %d does not exist; "
			 "the input has %d band%s (1 to %d)", ia > nb ? ia : ib,
			 nb, nb == 1 ? "" : "s", nb);
		return -RFS_E_PROCESS;
	}
	while (rows > 1 && (size_t)rows * W * 2 * sizeof(double) > BLOCK_BYTES)
		rows /= 2;
	rows = rows < H ? rows : H;
	a = malloc((size_t)rows * W * sizeof(double));
	b = malloc((size_t)rows * W * sizeof(double));
	o = malloc((size_t)rows * W * sizeof(float));
	if (!a || !b || !o) {
		snprintf(ctx->msg, ctx->msglen, "ndi: out of memory for %d "
			 "rows of %d cells", rows, W);
		rc = -RFS_E_NOMEM;
		goto out;
	}
	rc = rfs_ops_create_like(src, 1, GDT_Float32, ctx, &ds);
	if (rc)
		goto out;

	GDALRasterBandH ba = GDALGetRasterBand(src, ia);
	GDALRasterBandH bb = GDALGetRasterBand(src, ib);
	GDALRasterBandH bo = GDALGetRasterBand(ds, 1);
	int has_a = 0, has_b = 0;
	const double nda = GDALGetRasterNoDataValue(ba, &has_a);
	const double ndb = GDALGetRasterNoDataValue(bb, &has_b);

	if (GDALSetRasterNoDataValue(bo, NDI_NODATA) != CE_None)
		goto gdal_fail;
	for (int y = 0; y < H; y += rows) {
		const int n = y + rows <= H ? rows : H - y;
		const size_t cells = (size_t)n * W;

		if (GDALRasterIO(ba, GF_Read, 0, y, W, n, a, W, n,
				 GDT_Float64, 0, 0) != CE_None ||
		    GDALRasterIO(bb, GF_Read, 0, y, W, n, b, W, n,
				 GDT_Float64, 0, 0) != CE_None)
			goto gdal_fail;
		for (size_t i = 0; i < cells; i++) {
			const double x = a[i], z = b[i], s = x + z;
			const double r = (x - z) / s;

			if ((has_a && x == nda) || (has_b && z == ndb) ||
			    s == 0 || !isfinite(r))
				o[i] = NDI_NODATA;
			else
				o[i] = (float)r;
		}
		if (GDALRasterIO(bo, GF_Write, 0, y, W, n, o, W, n,
				 GDT_Float32, 0, 0) != CE_None)
			goto gdal_fail;
		if (!ctx->progress((double)(y + n) / H, "",
				   ctx->progress_arg)) {
			snprintf(ctx->msg, ctx->msglen, "ndi: cancelled");
			rc = -RFS_E_CANCELLED;
			goto out;
		}
	}
	*out = ds;
	ds = NULL;
	goto out;

gdal_fail:
	rc = rfs_ops_gdal_error("ndi", ctx->msg, ctx->msglen);
out:
	if (ds)
		GDALClose(ds);
	free(a);
	free(b);
	free(o);
	return rc;
}

int rfs_op_bands_run(GDALDatasetH src, const struct rfs_step *step,
		     const struct rfs_op_ctx *ctx, GDALDatasetH *out)
{
	char **argv = NULL;
	char num[48];

	switch (step->op) {
	case RFS_OP_BAND:
		for (int i = 0; i < step->u.band.n; i++) {
			snprintf(num, sizeof(num), "%d", step->u.band.bands[i]);
			argv = CSLAddString(argv, "-b");
			argv = CSLAddString(argv, num);
		}
		break;
	case RFS_OP_TYPE:
		argv = CSLAddString(argv, "-ot");
		argv = CSLAddString(argv, rfs_type_name(step->u.type.type));
		break;
	case RFS_OP_NODATA:
		argv = CSLAddString(argv, "-a_nodata");
		if (step->u.nodata.none)
			snprintf(num, sizeof(num), "none");
		else
			rfs_format_double(step->u.nodata.value, num,
					  sizeof(num));
		argv = CSLAddString(argv, num);
		break;
	case RFS_OP_NDI:
		return run_ndi(src, step, ctx, out);
	default:
		snprintf(ctx->msg, ctx->msglen, "bands: not a band step");
		return -RFS_E_INTERNAL;
	}
	return rfs_ops_translate(src, argv, rfs_op_name(step->op), ctx, out);
}
