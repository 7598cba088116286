/* bench_window.c - timings behind issue 11's choices (not a test).
 *
 *   bench_window whole SRC CHAIN
 *       rfs_ops_run of the whole output, seconds.
 *   bench_window grain SRC CHAIN N
 *       N windows each of 256^2, 512^2, 1024^2 and 2048^2 cells at aligned places
 *       spread over the output: the time of one window computed alone
 *       (open the source, every step's window and halo, read), and with
 *       the source opened once; per 256^2 tile.
 *   bench_window warp SRC CRS RESAMPLING
 *       the whole warp three ways: gdalwarp to a GeoTIFF (-et 0.125, the
 *       old scheme), the same with -et 0, and GDAL's warped VRT copied
 *       (the new scheme, rfs_ops_warp), best of 2 (-et 0: once).
 *   bench_window level SRC CHAIN LEVEL...
 *       per level: open, the whole level as one window, the level in
 *       256^2 tiles each computed alone, and the level's statistics.
 *   bench_window resample SRC FACTOR
 *       ways to bring a source without overviews to 1/FACTOR: the warper
 *       (average, near) and GDAL's RasterIO decimation (nearest).
 *
 * Timings are wall clock on a shared machine: compare ratios of one run.
 */
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cpl_conv.h>
#include <cpl_string.h>
#include <cpl_vsi.h>
#include <gdal.h>
#include <gdal_utils.h>

#include "rasterfs/chain.h"
#include "rasterfs/err.h"
#include "rasterfs/ops.h"
#include "rasterfs/window.h"

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void parse(const char *text, struct rfs_chain *c)
{
	char msg[RFS_MSG_MAX];

	if (rfs_chain_parse(text, c, msg, sizeof(msg))) {
		fprintf(stderr, "%s: %s\n", text, msg);
		exit(2);
	}
}

static double whole(const char *src, const char *text)
{
	char msg[RFS_MSG_MAX], dir[] = "/tmp/rfs-bench-window-XXXXXX";
	char out[64];
	struct rfs_chain c;
	struct rfs_ops_result res;

	parse(text, &c);
	if (!mkdtemp(dir))
		exit(1);
	snprintf(out, sizeof(out), "%s/out.tif", dir);
	const double t0 = now();
	int rc = rfs_ops_run(src, &c, dir, out, NULL, NULL, &res, msg,
			     sizeof(msg));
	const double t = now() - t0;
	if (rc)
		fprintf(stderr, "whole %s: %s\n", text, msg);
	GDALDatasetH ds = rc ? NULL : GDALOpen(out, GA_ReadOnly);
	if (ds) {
		GDALRasterBandH b = GDALGetRasterBand(ds, 1);
		const char *k[] = { "MINIMUM", "MAXIMUM", "MEAN", "STDDEV" };
		printf("  exact statistics of band 1:");
		for (int i = 0; i < 4; i++) {
			const char *v = GDALGetMetadataItem(b,
				CPLSPrintf("STATISTICS_%s", k[i]), NULL);
			printf(" %s %s", k[i], v ? v : "-");
		}
		printf("\n");
		GDALClose(ds);
	}
	unlink(out);
	rmdir(dir);
	return t;
}

static void grain(const char *src, const char *text, int n)
{
	char msg[RFS_MSG_MAX];
	struct rfs_chain c;
	struct rfs_window *w;
	static const int sizes[] = { 256, 512, 1024, 2048 };

	parse(text, &c);
	if (rfs_window_open(src, &c, 0, &w, msg, sizeof(msg))) {
		fprintf(stderr, "%s\n", msg);
		exit(1);
	}
	const struct rfs_grid *g = rfs_window_grid(w);
	const int W = (int)g->width, H = (int)g->height;
	printf("%s @%s: output %d x %d\n", strrchr(src, '/') + 1, text, W, H);
	for (size_t s = 0; s < sizeof(sizes) / sizeof(sizes[0]); s++) {
		const int k = sizes[s];
		double fresh = 0, reuse = 0, open_t = 0;
		void *buf = malloc(rfs_window_bytes(w,
			&(struct rfs_win){ 0, 0, k, k }));

		for (int i = 0; i < n; i++) {
			/* aligned, spread along the diagonal, inside */
			const int cx = (W - k) / k, cy = (H - k) / k;
			struct rfs_win v = {
				(int)((long)(i + 1) * cx / (n + 1)) * k,
				(int)((long)(i + 1) * cy / (n + 1)) * k, k, k,
			};
			if (v.x + v.w > W)
				v.w = W - v.x;
			if (v.y + v.h > H)
				v.h = H - v.y;
			const size_t len = rfs_window_bytes(w, &v);
			double t0 = now();
			struct rfs_window *f;
			if (rfs_window_open(src, &c, 0, &f, msg, sizeof(msg)))
				exit(1);
			const double t1 = now();
			if (rfs_window_read(f, &v, buf, len, msg, sizeof(msg)))
				fprintf(stderr, "read: %s\n", msg);
			rfs_window_close(f);
			const double t2 = now();
			if (rfs_window_read(w, &v, buf, len, msg, sizeof(msg)))
				fprintf(stderr, "read: %s\n", msg);
			const double t3 = now();
			open_t += t1 - t0;
			fresh += t2 - t0;
			reuse += t3 - t2;
		}
		const double tiles = (double)k * k / (256.0 * 256.0);
		printf("  %4d^2: alone %7.1f ms (open %5.1f), source kept open "
		       "%7.1f ms; per 256^2 tile %6.1f / %6.1f ms\n", k,
		       1e3 * fresh / n, 1e3 * open_t / n, 1e3 * reuse / n,
		       1e3 * fresh / n / tiles, 1e3 * reuse / n / tiles);
		free(buf);
	}
	rfs_window_close(w);
}

/* One GDALWarp of src; vrt: to a warped VRT then copied. */
static double warp_once(const char *src, const char *crs, const char *rs,
			const char *et, int vrt)
{
	const char *out = "/tmp/rfs-bench-warp.tif";
	char **argv = NULL;
	GDALDatasetH s = GDALOpen(src, GA_ReadOnly);

	argv = CSLAddString(argv, "-q");
	argv = CSLAddString(argv, "-t_srs");
	argv = CSLAddString(argv, crs);
	argv = CSLAddString(argv, "-r");
	argv = CSLAddString(argv, rs);
	argv = CSLAddString(argv, "-wm");
	argv = CSLAddString(argv, "64");
	argv = CSLAddString(argv, "-et");
	argv = CSLAddString(argv, et);
	argv = CSLAddString(argv, "-wo");
	argv = CSLAddString(argv, "NUM_THREADS=2");
	argv = CSLAddString(argv, "-of");
	argv = CSLAddString(argv, vrt ? "VRT" : "GTiff");
	if (!vrt) {
		argv = CSLAddString(argv, "-co");
		argv = CSLAddString(argv, "TILED=YES");
	}
	unlink(out);
	const double t0 = now();
	GDALWarpAppOptions *o = GDALWarpAppOptionsNew(argv, NULL);
	GDALDatasetH d = GDALWarp(vrt ? "" : out, NULL, 1, &s, o, NULL);
	if (vrt) {
		char *targv[] = { "-co", "TILED=YES", NULL };
		GDALTranslateOptions *to = GDALTranslateOptionsNew(targv, NULL);
		GDALDatasetH c = GDALTranslate(out, d, to, NULL);
		GDALClose(c);
		GDALTranslateOptionsFree(to);
	}
	GDALClose(d);
	const double t = now() - t0;
	GDALWarpAppOptionsFree(o);
	CSLDestroy(argv);
	GDALClose(s);
	unlink(out);
	return t;
}

static void warp(const char *src, const char *crs, const char *rs)
{
	double best[3] = { 1e9, 1e9, 1e9 };

	/* -et 0 is slow: once */
	best[1] = warp_once(src, crs, rs, "0", 0);
	for (int r = 0; r < 2; r++) {
		best[0] = fmin(best[0], warp_once(src, crs, rs, "0.125", 0));
		best[2] = fmin(best[2], warp_once(src, crs, rs, "0.125", 1));
	}
	printf("%s -t_srs %s -r %s: gdalwarp -et 0.125 %.2f s, -et 0 %.2f s "
	       "(x%.2f), warped VRT copied %.2f s (x%.2f)\n",
	       strrchr(src, '/') + 1, crs, rs, best[0], best[1],
	       best[1] / best[0], best[2], best[2] / best[0]);
}

/* min, max, mean, std of band 1 of a buffer of doubles. */
static void stats(const double *v, size_t n, int has, double nd, double *o)
{
	double mn = INFINITY, mx = -INFINITY, s = 0, q = 0;
	size_t k = 0;

	for (size_t i = 0; i < n; i++) {
		if (isnan(v[i]) || (has && v[i] == nd))
			continue;
		mn = fmin(mn, v[i]);
		mx = fmax(mx, v[i]);
		s += v[i];
		k++;
	}
	const double m = k ? s / k : NAN;
	for (size_t i = 0; i < n; i++)
		if (!isnan(v[i]) && !(has && v[i] == nd))
			q += (v[i] - m) * (v[i] - m);
	o[0] = mn, o[1] = mx, o[2] = m, o[3] = k ? sqrt(q / k) : NAN;
}

static void level(const char *src, const char *text, int lv)
{
	char msg[RFS_MSG_MAX];
	struct rfs_chain c;
	struct rfs_window *w;

	parse(text, &c);
	double t0 = now();
	if (rfs_window_open(src, &c, lv, &w, msg, sizeof(msg))) {
		fprintf(stderr, "level %d: %s\n", lv, msg);
		return;
	}
	const double t_open = now() - t0;
	const struct rfs_grid *g = rfs_window_grid(w);
	const int W = (int)g->width, H = (int)g->height;
	const struct rfs_win all = { 0, 0, W, H };
	const size_t len = rfs_window_bytes(w, &all);
	void *buf = malloc(len);

	t0 = now();
	if (rfs_window_read(w, &all, buf, len, msg, sizeof(msg)))
		fprintf(stderr, "level %d: %s\n", lv, msg);
	const double t_one = now() - t0 + t_open;
	/* its statistics, band 1 */
	double *d = malloc(sizeof(double) * W * H), st[4];
	GDALCopyWords(buf, g->bands[0].type,
		      GDALGetDataTypeSizeBytes(g->bands[0].type), d,
		      GDT_Float64, 8, W * H);
	stats(d, (size_t)W * H, g->bands[0].has_nodata, g->bands[0].nodata,
	      st);
	free(d);
	rfs_window_close(w);
	/* tile by tile, each alone */
	int tiles = 0;
	t0 = now();
	for (int y = 0; y < H; y += 256)
		for (int x = 0; x < W; x += 256) {
			struct rfs_win v = { x, y, W - x < 256 ? W - x : 256,
					     H - y < 256 ? H - y : 256 };
			struct rfs_window *f;
			if (rfs_window_open(src, &c, lv, &f, msg, sizeof(msg)))
				exit(1);
			if (rfs_window_read(f, &v, buf, len, msg, sizeof(msg)))
				fprintf(stderr, "tile: %s\n", msg);
			rfs_window_close(f);
			tiles++;
		}
	const double t_tiles = now() - t0;
	printf("@%s level %d (%d x %d): one window %.2f s (open %.2f); %d "
	       "tiles alone %.2f s; stats min %.6g max %.6g mean %.6g std "
	       "%.6g\n", text, lv, W, H, t_one, t_open, tiles, t_tiles,
	       st[0], st[1], st[2], st[3]);
	free(buf);
}

static void resample(const char *src, int f)
{
	GDALDatasetH s = GDALOpen(src, GA_ReadOnly);
	const int W = GDALGetRasterXSize(s), H = GDALGetRasterYSize(s);
	const int w = (W + f - 1) / f, h = (H + f - 1) / f;
	float *buf = malloc(sizeof(float) * w * h);
	static const char *const rs[] = { "average", "near" };

	for (int i = 0; i < 2; i++) {
		char ts[2][16];
		snprintf(ts[0], 16, "%d", w);
		snprintf(ts[1], 16, "%d", h);
		char *argv[] = { "-q", "-of", "VRT", "-ts", ts[0], ts[1], "-r",
				 (char *)rs[i], "-wo", "NUM_THREADS=2", NULL };
		const double t0 = now();
		GDALWarpAppOptions *o = GDALWarpAppOptionsNew(argv, NULL);
		GDALDatasetH d = GDALWarp("", NULL, 1, &s, o, NULL);
		if (GDALRasterIO(GDALGetRasterBand(d, 1), GF_Read, 0, 0, w, h,
				 buf, w, h, GDT_Float32, 0, 0) != CE_None)
			fprintf(stderr, "warp read failed\n");
		GDALClose(d);
		GDALWarpAppOptionsFree(o);
		printf("%s to 1/%d (%d x %d): warper %s %.2f s\n",
		       strrchr(src, '/') + 1, f, w, h, rs[i], now() - t0);
	}
	GDALFlushCache(s);
	const double t0 = now();
	if (GDALRasterIO(GDALGetRasterBand(s, 1), GF_Read, 0, 0, W, H, buf, w,
			 h, GDT_Float32, 0, 0) != CE_None)
		fprintf(stderr, "decimation failed\n");
	printf("%s to 1/%d: RasterIO nearest decimation %.2f s\n",
	       strrchr(src, '/') + 1, f, now() - t0);
	free(buf);
	GDALClose(s);
}

int main(int argc, char **argv)
{
	rfs_ops_init(256);
	if (argc == 4 && !strcmp(argv[1], "whole")) {
		printf("%s @%s: whole %.2f s\n", strrchr(argv[2], '/') + 1,
		       argv[3], whole(argv[2], argv[3]));
	} else if (argc == 5 && !strcmp(argv[1], "grain")) {
		grain(argv[2], argv[3], atoi(argv[4]));
	} else if (argc == 5 && !strcmp(argv[1], "warp")) {
		warp(argv[2], argv[3], argv[4]);
	} else if (argc >= 5 && !strcmp(argv[1], "level")) {
		for (int i = 4; i < argc; i++)
			level(argv[2], argv[3], atoi(argv[i]));
	} else if (argc == 4 && !strcmp(argv[1], "resample")) {
		resample(argv[2], atoi(argv[3]));
	} else {
		fprintf(stderr, "usage: see the top of tests/bench_window.c\n");
		return 2;
	}
	return 0;
}
