/* test_window.c - rfs_window_run against whole outputs, on real GDAL.
 *
 * For each chain on the rasters in tests/data: windows computed alone
 * (every corner and edge of the raster, 1-pixel windows, windows that
 * straddle the 256-cell tiles, focal's 256-cell blocks and the warper's
 * 512 x 128 blocks, the whole raster, a few random ones) are byte for byte
 * the same window of
 *   - the whole output of rfs_ops_run, and, for single steps,
 *   - GDAL's own tool: docs/design.md's gdalwarp oracle (-of VRT, then
 *     gdal_translate), gdaldem, gdal_translate (command lines run here).
 * Focal has no GDAL tool: a brute-force loop written here checks a window
 * to 1e-5 (focal's own tests check its arithmetic; here the blocks).
 * Levels (the overview prototype): windows of a level equal the same
 * cells of the whole level, and a warp-first chain's level 1 equals
 * gdalwarp onto the level grid.
 */
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cpl_conv.h>
#include <cpl_string.h>
#include <gdal.h>

#include "rasterfs/chain.h"
#include "rasterfs/err.h"
#include "rasterfs/ops.h"
#include "rasterfs/window.h"

#include "check.h"

static char tmpdir[] = "/tmp/rfs-test-window-XXXXXX";
static char scratch[256];
static char datadir[1024];
static int nwindows;

static const char *data(const char *name)
{
	static char path[4][1200];
	static int i;
	char *p = path[i++ % 4];

	snprintf(p, sizeof(path[0]), "%s/%s", datadir, name);
	return p;
}

static const char *tpath(const char *name)
{
	static char path[4][512];
	static int i;
	char *p = path[i++ % 4];

	snprintf(p, sizeof(path[0]), "%s/%s", tmpdir, name);
	return p;
}

/* The windows to try on a W x H output (clipped to it). */
static int windows(int W, int H, struct rfs_win *out, int max)
{
	const struct rfs_win want[] = {
		{ 0, 0, 1, 1 }, { W - 1, 0, 1, 1 }, { 0, H - 1, 1, 1 },
		{ W - 1, H - 1, 1, 1 },            /* corners */
		{ 255, 255, 2, 2 }, { 256, 127, 1, 2 }, /* tile / block edges */
		{ 250, 120, 20, 20 },              /* straddles both */
		{ 500, 100, 30, 60 },              /* warp blocks 0/1, rows */
		{ 0, 0, W, H },                    /* the whole */
		{ 0, 10, W, 3 }, { W - 2, 0, 2, H }, /* left .. right, top ..
						      * bottom edges */
		{ 240, H - 17, 300, 17 },          /* bottom edge, across */
		{ W - 300, 5, 300, 251 },          /* right edge */
		{ 17, 33, 256, 256 },              /* a tile-sized window */
		{ 256, 256, 256, 256 },            /* a tile */
	};
	int n = 0;

	for (size_t i = 0; i < sizeof(want) / sizeof(want[0]) && n < max;
	     i++) {
		struct rfs_win w = want[i];

		if (w.x < 0)
			w.w += w.x, w.x = 0;
		if (w.y < 0)
			w.h += w.y, w.y = 0;
		if (w.x >= W || w.y >= H)
			continue;
		if (w.x + w.w > W)
			w.w = W - w.x;
		if (w.y + w.h > H)
			w.h = H - w.y;
		if (w.w < 1 || w.h < 1)
			continue;
		out[n++] = w;
	}
	/* a few more, fixed pseudo-random */
	unsigned s = (unsigned)(W * 31 + H);
	for (int i = 0; i < 3 && n < max; i++) {
		s = s * 1103515245u + 12345u;
		int w = 1 + (int)((s >> 8) % (unsigned)(W < 90 ? W : 90));
		s = s * 1103515245u + 12345u;
		int h = 1 + (int)((s >> 8) % (unsigned)(H < 90 ? H : 90));
		s = s * 1103515245u + 12345u;
		int x = (int)((s >> 8) % (unsigned)(W - w + 1));
		s = s * 1103515245u + 12345u;
		int y = (int)((s >> 8) % (unsigned)(H - h + 1));
		out[n++] = (struct rfs_win){ x, y, w, h };
	}
	return n;
}

/* The first maxwin (<= 32) windows of the chain at level on src, each
 * computed alone, against the same cells of the raster at `whole` (a file;
 * for levels the level read as one window when whole is NULL).  Returns
 * the number that differ. */
static int compare_windows(const char *src, const char *text, int level,
			   const char *whole, const char *what, int maxwin)
{
	char msg[RFS_MSG_MAX];
	struct rfs_chain chain;
	struct rfs_window *w = NULL;
	struct rfs_win wins[32];
	void *seq[32] = { 0 }, *par[32] = { 0 };
	GDALDatasetH ref = NULL;
	unsigned char *all = NULL, *got = NULL, *want = NULL;
	int bad = 0, rc;

	if (rfs_chain_parse(text, &chain, msg, sizeof(msg))) {
		check(0, "%s: cannot parse: %s", text, msg);
		return 1;
	}
	rc = rfs_window_open(src, &chain, level, &w, msg, sizeof(msg));
	check(rc == 0, "%s: open at level %d: %d %s", what, level, rc, msg);
	if (rc)
		return 1;
	const struct rfs_grid *g = rfs_window_grid(w);
	const int W = (int)g->width, H = (int)g->height, nb = g->nbands;
	const GDALDataType t = g->bands[0].type;
	const int ts = GDALGetDataTypeSizeBytes(t);
	const struct rfs_win full = { 0, 0, W, H };

	if (whole) {
		ref = GDALOpen(whole, GA_ReadOnly);
		check(ref != NULL, "%s: %s opens", what, whole);
		if (!ref) {
			bad = 1;
			goto out;
		}
		check(GDALGetRasterXSize(ref) == W &&
		      GDALGetRasterYSize(ref) == H &&
		      GDALGetRasterCount(ref) == nb &&
		      GDALGetRasterDataType(GDALGetRasterBand(ref, 1)) == t,
		      "%s: window grid %dx%dx%d %s is the whole output's "
		      "%dx%dx%d %s", what, W, H, nb, GDALGetDataTypeName(t),
		      GDALGetRasterXSize(ref), GDALGetRasterYSize(ref),
		      GDALGetRasterCount(ref), GDALGetDataTypeName(
			      GDALGetRasterDataType(GDALGetRasterBand(ref,
								     1))));
		if (GDALGetRasterXSize(ref) != W ||
		    GDALGetRasterYSize(ref) != H ||
		    GDALGetRasterCount(ref) != nb) {
			bad = 1;
			goto out;
		}
	} else {
		/* the level computed as one window */
		all = malloc(rfs_window_bytes(w, &full));
		rc = rfs_window_read(w, &full, all, rfs_window_bytes(w, &full),
				     msg, sizeof(msg));
		check(rc == 0, "%s: the whole level: %d %s", what, rc, msg);
		if (rc) {
			bad = 1;
			goto out;
		}
	}

	const int n = windows(W, H, wins, maxwin);
	for (int i = 0; i < n; i++) {
		const struct rfs_win *v = &wins[i];
		const size_t len = rfs_window_bytes(w, v);

		got = malloc(len);
		want = malloc(len);
		rc = rfs_window_read(w, v, got, len, msg, sizeof(msg));
		check(rc == 0, "%s: window %d,%d %dx%d: %d %s", what, v->x,
		      v->y, v->w, v->h, rc, msg);
		if (rc == 0 && ref &&
		    GDALDatasetRasterIO(ref, GF_Read, v->x, v->y, v->w, v->h,
					want, v->w, v->h, t, nb, NULL, 0, 0,
					0) != CE_None)
			rc = -1;
		if (rc == 0 && !ref) {
			for (int b = 0; b < nb; b++)
				for (int r = 0; r < v->h; r++)
					memcpy(want + (((size_t)b * v->h + r) *
						       v->w) * ts,
					       all + (((size_t)b * H + v->y +
						       r) * W + v->x) * ts,
					       (size_t)v->w * ts);
		}
		nwindows++;
		if (rc || memcmp(got, want, len)) {
			size_t first = 0;
			while (rc == 0 && first < len &&
			       got[first] == want[first])
				first++;
			check(0, "%s: window %d,%d %dx%d differs from the "
			      "whole (first byte %zu of %zu)", what, v->x, v->y,
			      v->w, v->h, first, len);
			bad++;
		} else {
			passed++;
		}
		seq[i] = rc == 0 ? got : NULL;
		if (rc)
			free(got);
		free(want);
		got = want = NULL;
	}
	/* the same windows at once, in threads (rfs_window_read_many, each
	 * thread a handle of its own), equal to the ones read one by one */
	struct rfs_window *w2 = NULL;
	rc = rfs_window_open(src, &chain, level, &w2, msg, sizeof(msg));
	check(rc == 0, "%s: second open: %d %s", what, rc, msg);
	for (int i = 0; i < n && rc == 0; i++)
		if (!(par[i] = malloc(rfs_window_bytes(w2, &wins[i]))))
			abort();
	if (rc == 0) {
		rc = rfs_window_read_many(w2, src, 3, wins, par, n, msg,
					  sizeof(msg));
		check(rc == 0, "%s: %d windows in threads: %d %s", what, n, rc,
		      msg);
	}
	for (int i = 0; i < n && rc == 0; i++) {
		if (seq[i] && memcmp(seq[i], par[i],
				     rfs_window_bytes(w2, &wins[i]))) {
			check(0, "%s: window %d,%d %dx%d read in threads "
			      "differs from the one read alone", what,
			      wins[i].x, wins[i].y, wins[i].w, wins[i].h);
			bad++;
		} else {
			passed++;
		}
	}
	rfs_window_close(w2);
	for (int i = 0; i < 32; i++) {
		free(seq[i]);
		free(par[i]);
	}
out:
	free(all);
	if (ref)
		GDALClose(ref);
	rfs_window_close(w);
	return bad;
}

/* The chain's whole output by rfs_ops_run, then its windows against it. */
static void against_whole_n(const char *src, const char *text, int maxwin)
{
	char msg[RFS_MSG_MAX], what[600];
	struct rfs_chain chain;
	struct rfs_ops_result res;
	const char *out = tpath("whole.tif");

	snprintf(what, sizeof(what), "%s@%s", strrchr(src, '/') + 1, text);
	if (rfs_chain_parse(text, &chain, msg, sizeof(msg))) {
		check(0, "%s: cannot parse: %s", what, msg);
		return;
	}
	int rc = rfs_ops_run(src, &chain, scratch, out, NULL, NULL, &res, msg,
			     sizeof(msg));
	check(rc == 0, "%s: whole run: %d %s", what, rc, msg);
	if (rc == 0)
		compare_windows(src, text, 0, out, what, maxwin);
	unlink(out);
}

static void against_whole(const char *src, const char *text)
{
	against_whole_n(src, text, 32);
}

/* The whole output of GDAL's own tool (cmd, with %s for the source and
 * %s for the output), then the chain's windows against it. */
static void against_tool(const char *src, const char *text, const char *cmd)
{
	char line[4096], what[600];
	const char *ref = tpath("tool.tif");

	snprintf(what, sizeof(what), "%s@%s vs `%s`", strrchr(src, '/') + 1,
		 text, cmd);
	snprintf(line, sizeof(line), cmd, src, ref);
	unlink(ref);
	if (system(line) != 0) {
		check(0, "%s failed", line);
		return;
	}
	compare_windows(src, text, 0, ref, what, 32);
	unlink(ref);
}

/* docs/design.md's gdalwarp oracle: GDAL's warped VRT, copied. */
static void against_gdalwarp(const char *src, const char *text,
			     const char *args)
{
	char cmd[2048];

	snprintf(cmd, sizeof(cmd), "gdalwarp -q -overwrite -of VRT %s "
		 "-wm 64 -et 0.125 '%%s' '%s/w.vrt' && gdal_translate -q "
		 "'%s/w.vrt' '%%s'", args, tmpdir, tmpdir);
	against_tool(src, text, cmd);
	against_whole(src, text);
}

/* focal=5,std (square) of window win of the first band of src, brute
 * force in double, against rfs_window_run: within 1e-5. */
static void focal_brute(const char *src, int size, const struct rfs_win *v)
{
	char msg[RFS_MSG_MAX], text[64];
	struct rfs_chain chain;
	GDALDatasetH ds = GDALOpen(src, GA_ReadOnly);
	const int W = GDALGetRasterXSize(ds), H = GDALGetRasterYSize(ds);
	const int r = size / 2;
	int has = 0, bad = 0;
	const double nd = GDALGetRasterNoDataValue(GDALGetRasterBand(ds, 1),
						   &has);
	double *a = malloc(sizeof(double) * W * H);
	float *got = malloc(sizeof(float) * v->w * v->h);

	snprintf(text, sizeof(text), "focal=%d,std", size);
	if (GDALRasterIO(GDALGetRasterBand(ds, 1), GF_Read, 0, 0, W, H, a, W,
			 H, GDT_Float64, 0, 0) != CE_None ||
	    rfs_chain_parse(text, &chain, msg, sizeof(msg)))
		abort();
	int rc = rfs_window_run(src, &chain, v, got,
				sizeof(float) * v->w * v->h, msg, sizeof(msg));
	check(rc == 0, "brute %s: %d %s", text, rc, msg);
	for (int y = v->y; rc == 0 && y < v->y + v->h; y++)
		for (int x = v->x; x < v->x + v->w; x++) {
			double s = 0, q = 0;
			int n = 0;
			for (int yy = y - r; yy <= y + r; yy++)
				for (int xx = x - r; xx <= x + r; xx++) {
					if (xx < 0 || yy < 0 || xx >= W ||
					    yy >= H)
						continue;
					const double c = a[(size_t)yy * W + xx];
					if (isnan(c) || (has && c == nd))
						continue;
					s += c;
					n++;
				}
			const double m = n ? s / n : 0;
			for (int yy = y - r; yy <= y + r; yy++)
				for (int xx = x - r; xx <= x + r; xx++) {
					if (xx < 0 || yy < 0 || xx >= W ||
					    yy >= H)
						continue;
					const double c = a[(size_t)yy * W + xx];
					if (isnan(c) || (has && c == nd))
						continue;
					q += (c - m) * (c - m);
				}
			const double g = got[(size_t)(y - v->y) * v->w +
					     (x - v->x)];
			const double want = sqrt(q / n);
			if (n && fabs(g - want) > 1e-5 * fmax(1, want))
				bad++;
		}
	check(bad == 0, "brute %s on %d,%d %dx%d: %d cells differ", text,
	      v->x, v->y, v->w, v->h, bad);
	free(a);
	free(got);
	GDALClose(ds);
}

/* Bad windows and bad levels: clear codes. */
static void test_errors(const char *src)
{
	char msg[RFS_MSG_MAX];
	struct rfs_chain chain;
	struct rfs_window *w = NULL;
	unsigned char buf[64];

	if (rfs_chain_parse("focal=3", &chain, msg, sizeof(msg)))
		abort();
	const struct rfs_win outside = { 280, 0, 4, 1 }, empty = { 0, 0, 0, 1 };
	const struct rfs_win big = { 0, 0, 8, 8 };
	CHECK(rfs_window_run(src, &chain, &outside, buf, sizeof(buf), msg,
			     sizeof(msg)) == -RFS_E_BAD_ARG,
	      "a window leaving the raster: %s", msg);
	CHECK(rfs_window_run(src, &chain, &empty, buf, sizeof(buf), msg,
			     sizeof(msg)) == -RFS_E_BAD_ARG,
	      "an empty window: %s", msg);
	CHECK(rfs_window_run(src, &chain, &big, buf, sizeof(buf), msg,
			     sizeof(msg)) == -RFS_E_BAD_ARG,
	      "a short buffer: %s", msg);
	CHECK(rfs_window_run(tpath("nothing.tif"), &chain, &big, buf,
			     sizeof(buf), msg, sizeof(msg)) == -RFS_E_SOURCE,
	      "no source: %s", msg);
	CHECK(rfs_window_open(src, &chain, 12, &w, msg, sizeof(msg)) ==
	      -RFS_E_BAD_ARG && !w, "a level beyond the raster: %s", msg);
	if (rfs_chain_parse("focal=3.png", &chain, msg, sizeof(msg)))
		abort();
	CHECK(rfs_window_open(src, &chain, 0, &w, msg, sizeof(msg)) ==
	      -RFS_E_BAD_ARG && !w, "a PNG output: %s", msg);
	if (rfs_chain_parse("band=9", &chain, msg, sizeof(msg)))
		abort();
	CHECK(rfs_window_open(src, &chain, 0, &w, msg, sizeof(msg)) ==
	      -RFS_E_PROCESS && !w, "a band that does not exist: %s", msg);
}

int main(void)
{
	if (check_find_data(datadir, sizeof(datadir)) < 0) {
		printf("test data not found; skipped\n");
		return 77;
	}
	if (!mkdtemp(tmpdir)) {
		perror("mkdtemp");
		return 1;
	}
	snprintf(scratch, sizeof(scratch), "%s/scratch", tmpdir);
	mkdir(scratch, 0700);
	rfs_ops_init(64);

	const char *dtm = data("opengeos_dtm.tif");        /* Float32 UTM */
	const char *srtm = data("srtm1_N48W125_crop.tif"); /* Int16 4326 */
	const char *l7 = data("stars_L7_ETMs.tif");        /* 6 x Byte */
	const char *rgb = data("rgbify_elev.tif");         /* Float32 3857 */

	/* warps: docs/design.md's gdalwarp oracle and the whole output */
	against_gdalwarp(srtm, "proj=EPSG:32610", "-t_srs EPSG:32610 -r near");
	against_gdalwarp(srtm, "proj=EPSG:32610,res=15,bilinear",
			 "-t_srs EPSG:32610 -tr 15 15 -r bilinear");
	against_gdalwarp(srtm, "proj=EPSG:3857,cubic",
			 "-t_srs EPSG:3857 -r cubic");
	against_gdalwarp(dtm, "proj=EPSG:4326,lanczos",
			 "-t_srs EPSG:4326 -r lanczos");
	against_gdalwarp(srtm, "proj=EPSG:32610,res=70,average",
			 "-t_srs EPSG:32610 -tr 70 70 -r average");
	against_gdalwarp(l7, "proj=EPSG:4326,mode", "-t_srs EPSG:4326 -r mode");
	against_gdalwarp(rgb, "proj=EPSG:4326,res=0.0002,sum",
			 "-t_srs EPSG:4326 -tr 0.0002 0.0002 -r sum");
	against_gdalwarp(dtm, "res=0.75,cubicspline",
			 "-tr 0.75 0.75 -r cubicspline");
	against_gdalwarp(srtm, "res=0.0007,average",
			 "-tr 0.0007 0.0007 -r average");
	against_gdalwarp(dtm, "size=700,650,bilinear",
			 "-ts 700 650 -r bilinear");
	against_gdalwarp(l7, "size=100,120,mode", "-ts 100 120 -r mode");

	/* clip, band, type, nodata: gdal_translate */
	against_tool(dtm, "clip=321600,4297600,321900,4297900",
		     "gdal_translate -q -projwin 321600 4297900 321900 "
		     "4297600 '%s' '%s'");
	against_tool(srtm, "clip=-124.2,48.45,-124.1,48.5",
		     "gdal_translate -q -projwin -124.2 48.5 -124.1 48.45 "
		     "'%s' '%s'");
	against_tool(srtm, "clip=412000,5367500,418000,5372000,EPSG:32610",
		     "gdal_translate -q -projwin 412000 5372000 418000 "
		     "5367500 -projwin_srs EPSG:32610 '%s' '%s'");
	against_whole(dtm, "clip=321000,4297000,321900,4297900");
	against_tool(l7, "band=3,2,1", "gdal_translate -q -b 3 -b 2 -b 1 "
		     "'%s' '%s'");
	against_tool(srtm, "type=Byte", "gdal_translate -q -ot Byte '%s' '%s'");
	against_tool(l7, "nodata=0", "gdal_translate -q -a_nodata 0 '%s' "
		     "'%s'");

	/* terrain: gdaldem (geographic: -s 111120) */
	static const struct { const char *step, *args; } dem[] = {
		{ "slope", "slope -alg Horn" },
		{ "slope=percent", "slope -alg Horn -p" },
		{ "aspect", "aspect -alg Horn" },
		{ "hillshade", "hillshade -alg Horn -az 315 -alt 45 -z 1" },
		{ "hillshade=alt=30,z=2,multidirectional",
		  "hillshade -alg Horn -multidirectional -alt 30 -z 2" },
		{ "roughness", "roughness" },
		{ "tri", "TRI -alg Riley" },
		{ "tpi", "TPI" },
	};
	for (size_t i = 0; i < sizeof(dem) / sizeof(dem[0]); i++) {
		char cmd[512];
		const int scaled = !strncmp(dem[i].args, "slope", 5) ||
			!strncmp(dem[i].args, "hillshade", 9);

		snprintf(cmd, sizeof(cmd), "gdaldem %s%s -q '%%s' '%%s'",
			 dem[i].args, scaled ? " -s 111120" : "");
		against_tool(srtm, dem[i].step, cmd);
		snprintf(cmd, sizeof(cmd), "gdaldem %s -q '%%s' '%%s'",
			 dem[i].args);
		against_tool(dtm, dem[i].step, cmd);
	}

	/* focal: every statistic, both shapes, sizes 3 and 31; Float32
	 * (dtm: its 283 x 259 cells cross a block edge) and Int16 */
	static const char *const stats[] = {
		"mean", "min", "max", "sum", "std", "range", "median",
	};
	for (size_t i = 0; i < sizeof(stats) / sizeof(stats[0]); i++)
		for (int shape = 0; shape < 2; shape++) {
			char text[64];
			const char *sh = shape ? "circle" : "square";

			snprintf(text, sizeof(text), "focal=3,%s,%s",
				 stats[i], sh);
			against_whole(srtm, text);
			snprintf(text, sizeof(text), "focal=31,%s,%s",
				 stats[i], sh);
			/* a median of 961 cells is slow: the small windows */
			against_whole_n(dtm, text, strcmp(stats[i], "median") ?
					32 : 8);
		}
	against_whole(rgb, "focal=5,std");
	focal_brute(dtm, 5, &(struct rfs_win){ 240, 240, 43, 19 });
	focal_brute(rgb, 31, &(struct rfs_win){ 200, 230, 90, 60 });

	/* cell by cell */
	against_whole(dtm, "reclass=-inf:20:1,20:40:2,40:inf:3");
	against_whole(l7, "ndi=4,3");
	against_whole(l7, "band=6,1@type=Int16@nodata=-7");
	against_whole(dtm, "fmt=gtiff");

	/* chains of three, warps before and after the others */
	against_whole(srtm, "proj=EPSG:32610@focal=5@reclass=0:200:1,"
		      "200:400:2,400:inf:3");
	against_whole(srtm, "focal=3,max@proj=EPSG:32610,bilinear@hillshade");
	against_whole(dtm, "slope@res=3,average@focal=5,median,circle");
	against_whole(l7, "ndi=4,3@proj=EPSG:4326@focal=3,std");
	against_whole(dtm, "clip=321000,4297000,321900,4297900@tpi@"
		      "proj=EPSG:3857,cubic");

	/* levels (the prototype): windows against the whole level, and a
	 * warp-first level against gdalwarp onto the level grid */
	compare_windows(srtm, "proj=EPSG:32610", 1, NULL, "level 1 proj", 32);
	compare_windows(srtm, "hillshade", 1, NULL, "level 1 hillshade", 32);
	compare_windows(dtm, "proj=EPSG:3857@focal=5", 2, NULL,
			"level 2 proj@focal", 32);
	compare_windows(dtm, "focal=3@res=4,bilinear@slope", 1, NULL,
			"level 1 focal@res@slope", 32);
	{
		/* level 1 of srtm@proj=EPSG:32610: the level grid from the
		 * base output's, then gdalwarp onto it */
		char msg[RFS_MSG_MAX], cmd[2048];
		struct rfs_chain chain;
		struct rfs_window *w;
		if (rfs_chain_parse("proj=EPSG:32610", &chain, msg,
				    sizeof(msg)) ||
		    rfs_window_open(srtm, &chain, 1, &w, msg, sizeof(msg)))
			abort();
		const struct rfs_grid *g = rfs_window_grid(w);
		snprintf(cmd, sizeof(cmd), "gdalwarp -q -overwrite -of VRT "
			 "-t_srs EPSG:32610 -r near -wm 64 -et 0.125 -te %.17g "
			 "%.17g %.17g %.17g -ts %lld %lld '%%s' '%s/l.vrt' && "
			 "gdal_translate -q '%s/l.vrt' '%%s'", g->gt[0],
			 g->gt[3] + g->height * g->gt[5],
			 g->gt[0] + g->width * g->gt[1], g->gt[3], g->width,
			 g->height, tmpdir, tmpdir);
		rfs_window_close(w);
		char line[4096];
		const char *ref = tpath("level.tif");
		snprintf(line, sizeof(line), cmd, srtm, ref);
		check(system(line) == 0, "%s", line);
		compare_windows(srtm, "proj=EPSG:32610", 1, ref,
				"level 1 proj vs gdalwarp -te -ts", 32);
	}

	test_errors(dtm);

	printf("%d windows compared\n", nwindows);
	char cmd[300];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
	if (system(cmd) != 0)
		printf("could not remove %s\n", tmpdir);
	return check_report();
}
