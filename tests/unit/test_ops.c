/* test_ops.c - rfs_ops_run on real GeoTIFFs in a private temporary dir.
 *
 * Oracles: the gdalwarp command lines of docs/design.md (-of VRT, then
 * gdal_translate: same grid, geotransform, nodata and
 * per-band checksum as proj), a plain reclassification loop written here,
 * the same chain run one step at a time, XXH3 of the whole file read
 * back, and exact expected codes for a bad source and a cancelled job.
 */
#include <dirent.h>
#include <errno.h>
#include <float.h>
#include <libgen.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cpl_conv.h>
#include <cpl_string.h>
#include <gdal.h>
#include <gdal_alg.h>
#include <gdal_utils.h>
#include <xxhash.h>

#include "rasterfs/chain.h"
#include "rasterfs/err.h"
#include "rasterfs/ops.h"

#include "check.h"

static char tmpdir[] = "/tmp/rfs-test-ops-XXXXXX";
static char scratch[256];
static char datadir[1024];

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
	static char path[8][512];
	static int i;
	char *p = path[i++ % 8];
	snprintf(p, sizeof(path[0]), "%s/%s", tmpdir, name);
	return p;
}

static int exists(const char *path)
{
	struct stat st;
	return stat(path, &st) == 0;
}

static int dir_entries(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	int n = 0;

	if (!d)
		return -1;
	while ((e = readdir(d)))
		if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
			n++;
	closedir(d);
	return n;
}

static int run(const char *src, const char *chain_text, const char *out,
	       GDALProgressFunc progress, void *arg,
	       struct rfs_ops_result *res, char *msg, size_t msglen)
{
	struct rfs_chain chain;
	struct rfs_ops_result dummy;
	int rc = rfs_chain_parse(chain_text, &chain, msg, msglen);

	if (rc) {
		printf("  cannot parse %s: %s\n", chain_text, msg);
		return rc;
	}
	return rfs_ops_run(src, &chain, scratch, out, progress, arg,
			   res ? res : &dummy, msg, msglen);
}

/* Same size, geotransform, type, nodata and per-band checksum. */
static int same_raster(const char *a, const char *b, const char *what)
{
	GDALDatasetH da = GDALOpen(a, GA_ReadOnly);
	GDALDatasetH db = GDALOpen(b, GA_ReadOnly);
	double ga[6], gb[6];
	int ok = 1;

	if (!da || !db) {
		printf("  %s: cannot open %s or %s\n", what, a, b);
		ok = 0;
		goto out;
	}
	if (GDALGetRasterXSize(da) != GDALGetRasterXSize(db) ||
	    GDALGetRasterYSize(da) != GDALGetRasterYSize(db) ||
	    GDALGetRasterCount(da) != GDALGetRasterCount(db)) {
		printf("  %s: size %dx%dx%d vs %dx%dx%d\n", what,
		       GDALGetRasterXSize(da), GDALGetRasterYSize(da),
		       GDALGetRasterCount(da), GDALGetRasterXSize(db),
		       GDALGetRasterYSize(db), GDALGetRasterCount(db));
		ok = 0;
		goto out;
	}
	GDALGetGeoTransform(da, ga);
	GDALGetGeoTransform(db, gb);
	if (memcmp(ga, gb, sizeof(ga))) {
		printf("  %s: geotransforms differ\n", what);
		ok = 0;
	}
	for (int i = 1; i <= GDALGetRasterCount(da); i++) {
		GDALRasterBandH ba = GDALGetRasterBand(da, i);
		GDALRasterBandH bb = GDALGetRasterBand(db, i);
		int ha = 0, hb = 0;
		double na = GDALGetRasterNoDataValue(ba, &ha);
		double nb = GDALGetRasterNoDataValue(bb, &hb);
		int ca = GDALChecksumImage(ba, 0, 0, GDALGetRasterXSize(da),
					   GDALGetRasterYSize(da));
		int cb = GDALChecksumImage(bb, 0, 0, GDALGetRasterXSize(db),
					   GDALGetRasterYSize(db));
		if (GDALGetRasterDataType(ba) != GDALGetRasterDataType(bb) ||
		    ha != hb || (ha && na != nb) || ca != cb) {
			printf("  %s band %d: type %d/%d nodata %d:%g/%d:%g "
			       "checksum %d/%d\n", what, i,
			       GDALGetRasterDataType(ba),
			       GDALGetRasterDataType(bb), ha, na, hb, nb, ca,
			       cb);
			ok = 0;
		}
	}
out:
	if (da)
		GDALClose(da);
	if (db)
		GDALClose(db);
	return ok;
}

/* The properties every output has: tiled 256x256, uncompressed, band
 * statistics inside the file that match its pixels, no .aux.xml, and
 * res describing the bytes on disk. */
static void check_output(const char *out, const struct rfs_ops_result *res,
			 const char *what)
{
	char aux[600];
	GDALDatasetH ds = GDALOpen(out, GA_ReadOnly);

	check(ds != NULL, "%s: output opens", what);
	if (!ds)
		return;
	check(strcmp(GDALGetDriverShortName(GDALGetDatasetDriver(ds)),
		     "GTiff") == 0, "%s: output is a GeoTIFF", what);
	check(GDALGetMetadataItem(ds, "COMPRESSION", "IMAGE_STRUCTURE") ==
	      NULL, "%s: output is uncompressed", what);
	for (int b = 1; b <= GDALGetRasterCount(ds); b++) {
		GDALRasterBandH band = GDALGetRasterBand(ds, b);
		int bx, by, has_nd = 0;
		GDALGetBlockSize(band, &bx, &by);
		check(bx == 256 && by == 256, "%s: tiled 256x256, got %dx%d",
		      what, bx, by);

		/* reference statistics from the pixels */
		int w = GDALGetRasterXSize(ds), h = GDALGetRasterYSize(ds);
		double nd = GDALGetRasterNoDataValue(band, &has_nd);
		double *v = malloc(sizeof(double) * w * h);
		if (GDALRasterIO(band, GF_Read, 0, 0, w, h, v, w, h,
				 GDT_Float64, 0, 0) != CE_None)
			abort();
		double mn = INFINITY, mx = -INFINITY, s = 0, q = 0;
		long n = 0;
		for (long i = 0; i < (long)w * h; i++) {
			if (isnan(v[i]) || (has_nd && v[i] == nd))
				continue;
			mn = fmin(mn, v[i]);
			mx = fmax(mx, v[i]);
			s += v[i];
			n++;
		}
		double mean = n ? s / n : 0;
		for (long i = 0; i < (long)w * h; i++)
			if (!isnan(v[i]) && !(has_nd && v[i] == nd))
				q += (v[i] - mean) * (v[i] - mean);
		free(v);
		const char *smn = GDALGetMetadataItem(band,
						      "STATISTICS_MINIMUM",
						      NULL);
		const char *smx = GDALGetMetadataItem(band,
						      "STATISTICS_MAXIMUM",
						      NULL);
		const char *sme = GDALGetMetadataItem(band, "STATISTICS_MEAN",
						      NULL);
		const char *ssd = GDALGetMetadataItem(band,
						      "STATISTICS_STDDEV",
						      NULL);
		if (n == 0) {
			check(!smn, "%s: no statistics for an empty band",
			      what);
			continue;
		}
		check(smn && smx && sme && ssd, "%s band %d: STATISTICS_* "
		      "metadata present", what, b);
		if (!(smn && smx && sme && ssd))
			continue;
		double sd = sqrt(q / n);
		check(atof(smn) == mn && atof(smx) == mx, "%s: min/max %s %s "
		      "vs %.17g %.17g", what, smn, smx, mn, mx);
		check(fabs(atof(sme) - mean) <= 1e-9 * fmax(1, fabs(mean)) &&
		      fabs(atof(ssd) - sd) <= 1e-9 * fmax(1, sd),
		      "%s: mean/std %s %s vs %.17g %.17g", what, sme, ssd,
		      mean, sd);
	}
	GDALClose(ds);

	snprintf(aux, sizeof(aux), "%s.aux.xml", out);
	check(!exists(aux), "%s: no %s", what, aux);

	/* size and XXH3 of the bytes, read back whole */
	FILE *f = fopen(out, "rb");
	struct stat st;
	if (!f || fstat(fileno(f), &st) < 0)
		abort();
	char *buf = malloc(st.st_size ? st.st_size : 1);
	if (fread(buf, 1, st.st_size, f) != (size_t)st.st_size)
		abort();
	fclose(f);
	check(res->size == (uint64_t)st.st_size, "%s: size %llu vs %lld",
	      what, (unsigned long long)res->size, (long long)st.st_size);
	check(res->checksum == XXH3_64bits(buf, st.st_size),
	      "%s: checksum of the file", what);
	free(buf);
	check(dir_entries(scratch) == 0, "%s: scratch is empty", what);
}

static void test_proj(const char *src, const char *crs, const char *opts,
		      const char *gdalwarp_opts)
{
	char chain[256], cmd[2048], msg[RFS_MSG_MAX];
	struct rfs_ops_result res;
	const char *out = tpath("proj.tif"), *ref = tpath("proj_ref.tif");

	snprintf(chain, sizeof(chain), "proj=%s%s", crs, opts);
	unlink(ref);
	/* docs/design.md's oracle: GDAL's warped VRT, copied */
	snprintf(cmd, sizeof(cmd), "gdalwarp -q -overwrite -of VRT -t_srs %s "
		 "%s '%s' '%s.vrt' && gdal_translate -q '%s.vrt' '%s'", crs,
		 gdalwarp_opts, src, ref, ref, ref);
	if (system(cmd) != 0) {
		check(0, "%s failed", cmd);
		return;
	}
	int rc = run(src, chain, out, NULL, NULL, &res, msg, sizeof(msg));
	check(rc == 0, "%s on %s: rc %d (%s)", chain, src, rc, msg);
	if (rc)
		return;
	check(same_raster(out, ref, chain), "%s on %s equals `%s`", chain,
	      basename((char *)src), cmd);
	check_output(out, &res, chain);
	unlink(out);
	unlink(ref);
}

/* reclass against a plain loop over the source pixels */
static void test_reclass(const char *src, const char *text,
			 GDALDataType want_type, double want_nd)
{
	char msg[RFS_MSG_MAX];
	struct rfs_chain chain;
	struct rfs_ops_result res;
	const char *out = tpath("reclass.tif");

	if (rfs_chain_parse(text, &chain, msg, sizeof(msg))) {
		check(0, "cannot parse %s: %s", text, msg);
		return;
	}
	const struct rfs_step *st = &chain.steps[0];
	int rc = run(src, text, out, NULL, NULL, &res, msg, sizeof(msg));
	check(rc == 0, "%s: rc %d (%s)", text, rc, msg);
	if (rc)
		return;

	GDALDatasetH s = GDALOpen(src, GA_ReadOnly);
	GDALDatasetH o = GDALOpen(out, GA_ReadOnly);
	GDALRasterBandH sb = GDALGetRasterBand(s, 1);
	GDALRasterBandH ob = GDALGetRasterBand(o, 1);
	int w = GDALGetRasterXSize(s), h = GDALGetRasterYSize(s);
	int has_snd = 0, has_ond = 0;
	double snd = GDALGetRasterNoDataValue(sb, &has_snd);
	double ond = GDALGetRasterNoDataValue(ob, &has_ond);
	double *a = malloc(sizeof(double) * w * h);
	double *b = malloc(sizeof(double) * w * h);

	check(GDALGetRasterDataType(ob) == want_type, "%s: type %s, want %s",
	      text, GDALGetDataTypeName(GDALGetRasterDataType(ob)),
	      GDALGetDataTypeName(want_type));
	check(has_ond && ond == want_nd, "%s: nodata %g, want %g", text, ond,
	      want_nd);
	if (GDALRasterIO(sb, GF_Read, 0, 0, w, h, a, w, h, GDT_Float64, 0,
			 0) != CE_None ||
	    GDALRasterIO(ob, GF_Read, 0, 0, w, h, b, w, h, GDT_Float64, 0,
			 0) != CE_None)
		abort();
	long bad = 0;
	for (long i = 0; i < (long)w * h; i++) {
		double want = ond;
		if (!isnan(a[i]) && !(has_snd && a[i] == snd)) {
			int hit = 0;
			for (int r = 0; r < st->u.reclass.n; r++) {
				const struct rfs_range *g =
					&st->u.reclass.ranges[r];
				if (a[i] >= g->lo && a[i] < g->hi) {
					want = g->value;
					hit = 1;
				}
			}
			if (!hit && st->u.reclass.has_other)
				want = st->u.reclass.other;
		}
		if (b[i] != want && bad++ < 3)
			printf("  %s: pixel %ld: %g -> %g, want %g\n", text, i,
			       a[i], b[i], want);
	}
	check(bad == 0, "%s equals the reference loop (%ld differ)", text,
	      bad);
	free(a);
	free(b);
	GDALClose(s);
	GDALClose(o);
	check_output(out, &res, text);
	unlink(out);
}

/* A chain equals its steps run one after the other, each from the
 * previous step's file (ops.c streams nothing, so a chain started from a
 * kept prefix gives the same bytes). */
static void test_chain_steps(const char *src, const char *const *steps,
			     int n)
{
	char text[1024] = "", msg[RFS_MSG_MAX];
	struct rfs_ops_result res;
	const char *prev = src;

	for (int i = 0; i < n; i++) {
		strcat(text, "@");
		strcat(text, steps[i]);
		const char *out = tpath(i % 2 ? "one_b.tif" : "one_a.tif");
		int rc = run(prev, steps[i], out, NULL, NULL, &res, msg,
			     sizeof(msg));
		check(rc == 0, "%s alone: rc %d (%s)", steps[i], rc, msg);
		if (rc)
			return;
		prev = out;
	}
	const char *out = tpath("chain.tif");
	int rc = run(src, text, out, NULL, NULL, &res, msg, sizeof(msg));
	check(rc == 0, "%s: rc %d (%s)", text, rc, msg);
	if (rc)
		return;
	check(same_raster(out, prev, text), "%s equals its steps one by one",
	      text);
	check_output(out, &res, text);
	unlink(out);
	unlink(tpath("one_a.tif"));
	unlink(tpath("one_b.tif"));
}

static void test_bad_source(void)
{
	char msg[RFS_MSG_MAX] = "";
	const char *txt = tpath("notes.txt"), *out = tpath("bad.tif");
	FILE *f = fopen(txt, "w");

	fputs("this is not a raster\n", f);
	fclose(f);
	int rc = run(txt, "focal=3", out, NULL, NULL, NULL, msg, sizeof(msg));
	check(rc == -RFS_E_SOURCE, "a text file: rc %d, want -RFS_E_SOURCE",
	      rc);
	check(msg[0] != 0, "a text file: a message (%s)", msg);
	check(!exists(out), "a text file: no output");
	rc = run(tpath("missing.tif"), "focal=3", out, NULL, NULL, NULL, msg,
		 sizeof(msg));
	check(rc == -RFS_E_SOURCE, "a missing file: rc %d", rc);
	check(dir_entries(scratch) == 0, "bad source: scratch is empty");
	unlink(txt);
}

struct cancel_at {
	double at;      /* cancel once progress reaches this */
	double last;    /* last fraction seen */
	int backwards;  /* progress went down */
	int calls;
};

static int CPL_STDCALL cancel_cb(double frac, const char *m, void *arg)
{
	struct cancel_at *c = arg;
	(void)m;
	if (frac < c->last || frac < 0 || frac > 1)
		c->backwards = 1;
	c->last = frac;
	c->calls++;
	return frac < c->at;
}

static void test_cancel(const char *src, double at)
{
	char msg[RFS_MSG_MAX] = "";
	struct cancel_at c = { .at = at };
	const char *out = tpath("cancel.tif");
	const char *chain =
		"proj=EPSG:3857@focal=5,max@reclass=0:50:1,50:inf:2";

	int rc = run(src, chain, out, cancel_cb, &c, NULL, msg, sizeof(msg));
	check(rc == -RFS_E_CANCELLED, "cancel at %.2f: rc %d (%s)", at, rc,
	      msg);
	check(!exists(out), "cancel at %.2f: no output", at);
	check(dir_entries(scratch) == 0, "cancel at %.2f: scratch is empty",
	      at);
	check(!c.backwards, "cancel at %.2f: progress in [0, 1], never "
	      "backwards", at);
}

static void test_progress(const char *src)
{
	char msg[RFS_MSG_MAX] = "";
	struct cancel_at c = { .at = 2 };
	struct rfs_ops_result res;
	const char *out = tpath("progress.tif");

	int rc = run(src, "focal=3@reclass=-inf:inf:1", out, cancel_cb, &c,
		     &res, msg, sizeof(msg));
	check(rc == 0, "progress run: rc %d (%s)", rc, msg);
	check(!c.backwards && c.calls > 2 && c.last == 1.0,
	      "progress: %d calls, monotonic, ends at 1 (last %g)", c.calls,
	      c.last);
	unlink(out);
}

static int find_data(void)
{
	return check_find_data(datadir, sizeof(datadir));
}

int main(void)
{
	if (find_data() < 0) {
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

	const char *dtm = data("opengeos_dtm.tif");     /* Float32, UTM */
	const char *srtm = data("srtm1_N48W125_crop.tif"); /* Int16, 4326 */
	const char *terra = "/work/shared/data/terra_elev.tif";

	test_proj(dtm, "EPSG:4326", "", "");
	test_proj(dtm, "EPSG:3857", "", "");
	test_proj(srtm, "EPSG:32610", "", "");
	test_proj(srtm, "EPSG:3857", ",res=50,bilinear",
		  "-tr 50 50 -r bilinear");
	test_proj(dtm, "EPSG:32618", ",res=2.5,cubic", "-tr 2.5 2.5 -r cubic");
	if (exists(terra))
		test_proj(terra, "EPSG:3035", "", "");

	test_reclass(srtm, "reclass=-inf:200:1,200:400:2,400:inf:3", GDT_Byte,
		     255);
	test_reclass(srtm, "reclass=0:100:255,100:300:1", GDT_Byte, 0);
	test_reclass(srtm, "reclass=0:100:255,100:300:0,other=7", GDT_Byte,
		     254);
	test_reclass(srtm, "reclass=0:100:-1,100:inf:2", GDT_Int16, -32768);
	test_reclass(srtm, "reclass=0:100:-32768,100:inf:2", GDT_Int16, 32767);
	test_reclass(srtm, "reclass=0:100:1,100:inf:40000", GDT_UInt16, 65535);
	test_reclass(srtm, "reclass=0:100:1,100:inf:70000", GDT_Int32,
		     -2147483648.0);
	test_reclass(dtm, "reclass=0:5:0.5,5:inf:1000,other=-2", GDT_Float32,
		     -FLT_MAX);
	test_reclass(dtm, "reclass=-inf:6.25:0.1,6.25:inf:3", GDT_Float64,
		     -DBL_MAX);

	static const char *const three[] = {
		"proj=EPSG:32610", "focal=5,max",
		"reclass=0:200:1,200:400:2,400:inf:3",
	};
	test_chain_steps(srtm, three, 3);
	static const char *const three_f[] = {
		"proj=EPSG:4326,bilinear", "focal=3,std,circle",
		"reclass=0:0.5:1,0.5:inf:2",
	};
	test_chain_steps(dtm, three_f, 3);

	test_bad_source();
	test_cancel(dtm, 0.0);
	test_cancel(dtm, 0.2);
	test_cancel(dtm, 0.5);
	test_cancel(dtm, 0.8);
	test_cancel(dtm, 0.99);
	test_progress(dtm);

	char cmd[300];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
	if (system(cmd) != 0)
		printf("could not remove %s\n", tmpdir);
	return check_report();
}
