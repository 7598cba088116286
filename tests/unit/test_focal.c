/* test_focal.c - rfs_focal_band against a plain O(k^2) reference.
 *
 * Every statistic x both shapes x sizes 3, 5, 7 (and 31 for mean, min and
 * max), on GDAL MEM bands with random values, scattered nodata cells, a
 * nodata block larger than the smallest windows, and NaN cells; Int16 and
 * Float32 inputs; rasters taller than one strip so strip seams are crossed.
 * min/max/median/range must match exactly; mean/sum/std within 1e-6
 * relative.
 */
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <gdal.h>

#include "rasterfs/chain.h"
#include "rasterfs/err.h"
#include "rasterfs/focal.h"

#include "check.h"


/* The statistics focal counted while writing must be what GDAL computes
 * from the written band (GDAL is the oracle). */
static void check_stats(GDALRasterBandH out, const struct rfs_bstats *st,
			const char *tn, int size, enum rfs_focal_stat stat)
{
	double mn, mx, mean, sd;
	CPLPushErrorHandler(CPLQuietErrorHandler);
	CPLErr e = GDALComputeRasterStatistics(out, FALSE, &mn, &mx, &mean,
					       &sd, NULL, NULL);
	CPLPopErrorHandler();
	if (e != CE_None) { /* no valid cell */
		CHECK(st->n == 0, "%s focal=%d,%s: stats counted %g cells of "
		      "an empty band", tn, size, rfs_focal_stat_name(stat),
		      st->n);
		return;
	}
	/* GDAL counts infinities; rasterfs's statistics leave non-finite
	 * values out, like nodata, so bands holding them are not compared. */
	if (!isfinite(mn) || !isfinite(mx))
		return;
	double sdv = sqrt(st->m2 / st->n);
	CHECK(st->min == mn && st->max == mx &&
	      fabs(st->mean - mean) <= 1e-9 * fmax(1, fabs(mean)) &&
	      fabs(sdv - sd) <= 1e-6 * fmax(1, sd),
	      "%s focal=%d,%s: stats %g %g %g %g, GDAL %g %g %g %g", tn, size,
	      rfs_focal_stat_name(stat), st->min, st->max, st->mean, sdv, mn,
	      mx, mean, sd);
}

static const char *stat_names[] = {
	"mean", "min", "max", "sum", "std", "range", "median",
};

struct grid {
	int w, h;
	GDALDataType type;
	int has_nd;
	double nd;
	double *v; /* as stored in the band (after the type's rounding) */
};

static unsigned long long rng_state = 88172645463325252ULL;

static double urand(void) /* xorshift64, uniform in [0, 1) */
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 7;
	rng_state ^= rng_state << 17;
	return (rng_state >> 11) * (1.0 / 9007199254740992.0);
}

static void make_grid(struct grid *g, int w, int h, GDALDataType type,
		      int has_nd, double nd, int with_nan)
{
	g->w = w;
	g->h = h;
	g->type = type;
	g->has_nd = has_nd;
	g->nd = nd;
	g->v = malloc(sizeof(double) * w * h);
	for (int y = 0; y < h; y++) {
		for (int x = 0; x < w; x++) {
			double v;
			if (type == GDT_Int16)
				v = floor(urand() * 2000) - 1000;
			else
				v = (double)(float)(urand() * 2000 - 1000);
			/* a few repeated values so medians see ties */
			if (urand() < 0.1)
				v = 7;
			double u = urand();
			if (has_nd && u < 0.15)
				v = nd;
			else if (with_nan && u > 0.95)
				v = NAN;
			/* a block with no valid cell, bigger than 7x7 */
			if (x >= 5 && x < 15 && y >= 130 && y < 141 && h > 141)
				v = has_nd ? nd : NAN;
			g->v[y * w + x] = v;
		}
	}
}

static GDALDatasetH mem_band(const struct grid *g, GDALDataType type)
{
	GDALDriverH drv = GDALGetDriverByName("MEM");
	GDALDatasetH ds = GDALCreate(drv, "", g->w, g->h, 1, type, NULL);
	return ds;
}

static int valid(const struct grid *g, double v)
{
	return !isnan(v) && !(g->has_nd && v == g->nd);
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

/* The plain reference: gather the window's valid cells, then compute. */
static int reference(const struct grid *g, int x, int y, int size,
		     enum rfs_focal_stat stat, enum rfs_focal_shape shape,
		     double *buf, double *out)
{
	int r = size / 2, n = 0;
	for (int dy = -r; dy <= r; dy++) {
		for (int dx = -r; dx <= r; dx++) {
			int xx = x + dx, yy = y + dy;
			if (xx < 0 || yy < 0 || xx >= g->w || yy >= g->h)
				continue;
			if (shape == RFS_FOCAL_CIRCLE &&
			    dx * dx + dy * dy > r * r)
				continue;
			double v = g->v[yy * g->w + xx];
			if (valid(g, v))
				buf[n++] = v;
		}
	}
	if (n == 0)
		return 0;
	double s = 0, mn = INFINITY, mx = -INFINITY;
	for (int i = 0; i < n; i++) {
		s += buf[i];
		mn = fmin(mn, buf[i]);
		mx = fmax(mx, buf[i]);
	}
	switch (stat) {
	case RFS_FOCAL_MEAN: *out = s / n; break;
	case RFS_FOCAL_SUM: *out = s; break;
	case RFS_FOCAL_MIN: *out = mn; break;
	case RFS_FOCAL_MAX: *out = mx; break;
	case RFS_FOCAL_RANGE: *out = mx - mn; break;
	case RFS_FOCAL_STD: {
		double m = s / n, q = 0;
		for (int i = 0; i < n; i++)
			q += (buf[i] - m) * (buf[i] - m);
		*out = sqrt(q / n);
		break;
	}
	case RFS_FOCAL_MEDIAN:
		qsort(buf, n, sizeof(double), cmp_double);
		*out = n % 2 ? buf[n / 2] : (buf[n / 2 - 1] + buf[n / 2]) / 2;
		break;
	}
	return 1;
}

static double as_type(GDALDataType t, double v)
{
	if (t == GDT_Float32)
		return (double)(float)v;
	return v;
}

static void run_case(const struct grid *g, int size,
		     enum rfs_focal_stat stat, enum rfs_focal_shape shape)
{
	char msg[RFS_MSG_MAX] = "";
	GDALDatasetH ids = mem_band(g, g->type);
	GDALRasterBandH in = GDALGetRasterBand(ids, 1);
	GDALDataType ot = rfs_focal_out_type(g->type, stat);
	GDALDatasetH ods = mem_band(g, ot);
	GDALRasterBandH out = GDALGetRasterBand(ods, 1);
	double *res = malloc(sizeof(double) * g->w * g->h);
	double *buf = malloc(sizeof(double) * size * size);
	const char *tn = GDALGetDataTypeName(g->type);
	int bad = 0, nd_cells = 0;

	if (g->has_nd)
		GDALSetRasterNoDataValue(in, g->nd);
	if (GDALRasterIO(in, GF_Write, 0, 0, g->w, g->h, g->v, g->w, g->h,
			 GDT_Float64, 0, 0) != CE_None)
		abort();
	struct rfs_bstats st;
	rfs_bstats_init(&st);
	int rc = rfs_focal_band(in, out, size, stat, shape, NULL, NULL, &st,
				msg, sizeof(msg));
	check_stats(out, &st, tn, size, stat);
	CHECK(rc == 0, "%s %dx%d focal=%d,%s,%s: rc %d (%s)", tn, g->w, g->h,
	      size, stat_names[stat], shape ? "circle" : "square", rc, msg);
	if (rc) {
		bad = 1;
		goto out;
	}
	if (GDALRasterIO(out, GF_Read, 0, 0, g->w, g->h, res, g->w, g->h,
			 GDT_Float64, 0, 0) != CE_None)
		abort();
	int has_ond = 0;
	double ond = GDALGetRasterNoDataValue(out, &has_ond);
	for (int y = 0; y < g->h && bad < 5; y++) {
		for (int x = 0; x < g->w && bad < 5; x++) {
			double ref, got = res[y * g->w + x];
			int ok;
			if (!reference(g, x, y, size, stat, shape, buf,
				       &ref)) {
				/* no valid cell: nodata, or NaN for an input
				 * without nodata (describe.h) */
				nd_cells++;
				ok = has_ond ? got == ond : isnan(got);
				ref = NAN;
			} else if (stat == RFS_FOCAL_MEAN ||
				   stat == RFS_FOCAL_SUM ||
				   stat == RFS_FOCAL_STD) {
				double tol = 1e-6 * fmax(fabs(ref), 1.0);
				ok = fabs(got - ref) <= tol &&
				     !(has_ond && got == ond);
			} else {
				ok = got == as_type(ot, ref);
			}
			if (!ok) {
				bad++;
				printf("  %s focal=%d,%s,%s at (%d,%d): "
				       "got %.17g want %.17g\n", tn, size,
				       stat_names[stat],
				       shape ? "circle" : "square", x, y, got,
				       ref);
			}
		}
	}
	CHECK(!bad, "%s %dx%d focal=%d,%s,%s differs from the reference", tn,
	      g->w, g->h, size, stat_names[stat],
	      shape ? "circle" : "square");
	CHECK(!!has_ond == !!g->has_nd, "%s focal=%d,%s: nodata declared "
	      "%d, the input's %d (%d empty windows)", tn, size,
	      stat_names[stat], has_ond, g->has_nd, nd_cells);
out:
	free(res);
	free(buf);
	GDALClose(ids);
	GDALClose(ods);
}

static void run_grid(const struct grid *g, int big)
{
	static const int sizes[] = { 3, 5, 7 };

	for (int st = RFS_FOCAL_MEAN; st <= RFS_FOCAL_MEDIAN; st++)
		for (int sh = RFS_FOCAL_SQUARE; sh <= RFS_FOCAL_CIRCLE; sh++)
			for (int i = 0; i < 3; i++)
				run_case(g, sizes[i], st, sh);
	if (!big)
		return;
	for (int sh = RFS_FOCAL_SQUARE; sh <= RFS_FOCAL_CIRCLE; sh++) {
		run_case(g, 31, RFS_FOCAL_MEAN, sh);
		run_case(g, 31, RFS_FOCAL_MIN, sh);
		run_case(g, 31, RFS_FOCAL_MAX, sh);
		run_case(g, 31, RFS_FOCAL_STD, sh);
	}
}

/* Valid infinities next to nodata: max of a window holding only -inf is
 * -inf, not nodata. */
static void test_infinities(void)
{
	struct grid g;
	make_grid(&g, 9, 7, GDT_Float32, 1, -9999, 0);
	for (int i = 0; i < 63; i++)
		g.v[i] = -9999;
	g.v[3 * 9 + 4] = -INFINITY;
	g.v[0] = INFINITY;
	g.v[6 * 9 + 8] = 5;
	for (int sh = RFS_FOCAL_SQUARE; sh <= RFS_FOCAL_CIRCLE; sh++) {
		run_case(&g, 3, RFS_FOCAL_MAX, sh);
		run_case(&g, 3, RFS_FOCAL_MIN, sh);
		run_case(&g, 5, RFS_FOCAL_MAX, sh);
	}
	free(g.v);
}

static int cancel_after_first(double frac, const char *m, void *arg)
{
	(void)frac;
	(void)m;
	return ++*(int *)arg < 2;
}

static void test_cancel(void)
{
	struct grid g;
	char msg[RFS_MSG_MAX];
	int calls = 0;

	make_grid(&g, 20, 400, GDT_Float32, 0, 0, 0);
	GDALDatasetH ids = mem_band(&g, GDT_Float32);
	GDALDatasetH ods = mem_band(&g, GDT_Float32);
	int rc = rfs_focal_band(GDALGetRasterBand(ids, 1),
				GDALGetRasterBand(ods, 1), 3, RFS_FOCAL_MEAN,
				RFS_FOCAL_SQUARE, cancel_after_first, &calls,
				NULL, msg, sizeof(msg));
	CHECK(rc == -RFS_E_CANCELLED, "cancel: rc %d", rc);
	CHECK(calls == 2, "cancel: progress called %d times", calls);
	GDALClose(ids);
	GDALClose(ods);
	free(g.v);
}

static void test_types(void)
{
	CHECK(rfs_focal_out_type(GDT_Int16, RFS_FOCAL_MIN) == GDT_Int16,
	      "min keeps Int16");
	CHECK(rfs_focal_out_type(GDT_Byte, RFS_FOCAL_SUM) == GDT_Float64,
	      "sum is Float64");
	CHECK(rfs_focal_out_type(GDT_Int16, RFS_FOCAL_MEAN) == GDT_Float32,
	      "mean of Int16 is Float32");
	CHECK(rfs_focal_out_type(GDT_Int32, RFS_FOCAL_MEDIAN) == GDT_Float64,
	      "median of Int32 is Float64");
	CHECK(rfs_focal_out_type(GDT_Float64, RFS_FOCAL_STD) == GDT_Float64,
	      "std of Float64 is Float64");
	CHECK(rfs_focal_out_nodata(GDT_Int16, GDT_Float32, RFS_FOCAL_MEAN, 1,
				   -32768) == -32768,
	      "Int16 minimum kept as nodata of the mean");
	CHECK(rfs_focal_out_nodata(GDT_Int16, GDT_Float32, RFS_FOCAL_MEAN, 1,
				   0) == -FLT_MAX,
	      "a nodata inside the data range is replaced for the mean");
	CHECK(rfs_focal_out_nodata(GDT_Float32, GDT_Float32, RFS_FOCAL_STD, 1,
				   -9999) == -9999,
	      "negative nodata kept for std");
	CHECK(rfs_focal_out_nodata(GDT_UInt16, GDT_Float32, RFS_FOCAL_RANGE, 1,
				   0) == -FLT_MAX,
	      "nodata 0 replaced for range (a range can be 0)");
	CHECK(rfs_focal_out_nodata(GDT_Int16, GDT_Float64, RFS_FOCAL_SUM, 1,
				   -32768) == -DBL_MAX,
	      "sum never keeps the input nodata");
	CHECK(rfs_focal_out_nodata(GDT_Float32, GDT_Float32, RFS_FOCAL_MEAN, 0,
				   0) == -FLT_MAX,
	      "Float32 default nodata");
	CHECK(rfs_focal_out_nodata(GDT_Float64, GDT_Float64, RFS_FOCAL_MAX, 1,
				   NAN) == -DBL_MAX,
	      "NaN nodata replaced");
	CHECK(rfs_focal_out_nodata(GDT_Float64, GDT_Float32, RFS_FOCAL_MEAN, 1,
				   1e300) == -FLT_MAX,
	      "unrepresentable nodata replaced");
	CHECK(rfs_focal_out_nodata(GDT_Int16, GDT_Int16, RFS_FOCAL_MIN, 1,
				   -9999) == -9999,
	      "min keeps the Int16 nodata");
}

int main(void)
{
	struct grid g;

	GDALAllRegister();

	test_types();

	/* Int16 with nodata; 300 rows cross the 128-row strips. */
	make_grid(&g, 45, 300, GDT_Int16, 1, -32768, 0);
	run_grid(&g, 1);
	free(g.v);

	/* Float32 with nodata and NaN cells */
	make_grid(&g, 40, 290, GDT_Float32, 1, -9999, 1);
	run_grid(&g, 1);
	free(g.v);

	/* Float32 without nodata but with NaN: output nodata appears */
	make_grid(&g, 33, 150, GDT_Float32, 0, 0, 1);
	run_grid(&g, 0);
	free(g.v);

	/* a raster smaller than the window */
	make_grid(&g, 23, 9, GDT_Int16, 1, -32768, 0);
	run_grid(&g, 1);
	free(g.v);

	test_infinities();
	test_cancel();

	return check_report();
}
