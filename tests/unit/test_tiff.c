/* test_tiff.c - rasterfs's own GeoTIFF writer (src/tiff.c) against GDAL,
 * libtiff's tools and plain references written here.
 *
 * Oracles: GDAL reading the written file (pixels compared buffer to
 * buffer with the source dataset, geotransform, OSRIsSame, nodata,
 * metadata, descriptions, statistics, overview sizes, BLOCK_OFFSET_x_y of
 * every tile), GDALInfo with every CPL message captured, tiffinfo /
 * tiffdump / tiffcp exit codes and messages, the GeoTIFF tags of the file
 * gdal_translate -co TILED=YES makes from the same dataset (read with a
 * TIFF directory reader written here, not the one in tiff.c), overview
 * pixels from a plain block mean over the source, statistics from a plain
 * two-pass loop, and byte-for-byte comparison of files written in other
 * orders.
 */
#include <errno.h>
#include <fcntl.h>
#include <float.h>
#include <inttypes.h>
#include <libgen.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cpl_conv.h>
#include <cpl_error.h>
#include <cpl_string.h>
#include <gdal.h>
#include <gdal_utils.h>
#include <ogr_srs_api.h>

#include "rasterfs/err.h"
#include "rasterfs/tiff.h"

#include "check.h"

static char tmpdir[] = "/tmp/rfs-test-tiff-XXXXXX";
static char datadir[1024];

static const char *tmp(const char *name)
{
	static char p[8][512];
	static int i;
	char *s = p[i++ % 8];
	snprintf(s, sizeof(p[0]), "%s/%s", tmpdir, name);
	return s;
}

/* ------------------------------------------------------------------ */
/* CPL messages */

struct cpl_log {
	int warnings, errors;
	char first[512];
};

static void CPL_STDCALL cpl_count(CPLErr e, CPLErrorNum n, const char *msg)
{
	struct cpl_log *log = CPLGetErrorHandlerUserData();

	(void)n;
	if (e == CE_Debug || e == CE_None)
		return;
	if (e == CE_Warning)
		log->warnings++;
	else
		log->errors++;
	if (!log->first[0])
		snprintf(log->first, sizeof(log->first), "%s", msg);
}

/* ------------------------------------------------------------------ */
/* Files */

static unsigned char *slurp(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	unsigned char *d = NULL;
	struct stat st;

	*len = 0;
	if (!f)
		return NULL;
	if (fstat(fileno(f), &st) == 0 && (d = malloc((size_t)st.st_size + 1)))
		*len = fread(d, 1, (size_t)st.st_size, f);
	fclose(f);
	return d;
}

static int same_file(const char *a, const char *b)
{
	size_t la, lb;
	unsigned char *da = slurp(a, &la), *db = slurp(b, &lb);
	int same = da && db && la == lb && memcmp(da, db, la) == 0;
	free(da);
	free(db);
	return same;
}

static off_t file_size(const char *p)
{
	struct stat st;
	return stat(p, &st) == 0 ? st.st_size : -1;
}

/* A TIFF directory reader of its own (little-endian classic or BigTIFF):
 * the oracle must not share code with tiff.c. */
struct tag {
	unsigned tag, type;
	uint64_t count;
	uint64_t at;     /* absolute offset of the value bytes */
	uint64_t len;
};

static int tsize(unsigned t)
{
	static const int s[] = { 0, 1, 1, 2, 4, 8, 1, 1, 2, 4, 8, 4, 8, 4, 0,
				 0, 8, 8, 8 };
	return t < sizeof(s) / sizeof(s[0]) ? s[t] : 0;
}

static uint64_t le(const unsigned char *p, int n)
{
	uint64_t v = 0;
	while (n-- > 0)
		v = v << 8 | p[n];
	return v;
}

/* Tags of directory `dir` (0: first); returns their number or -1. */
static int read_ifd(const unsigned char *d, size_t n, int dir,
		    struct tag *out, int max)
{
	if (n < 16 || d[0] != 'I' || d[1] != 'I')
		return -1;
	int big = le(d + 2, 2) == 43;
	uint64_t off = big ? le(d + 8, 8) : le(d + 4, 4);
	for (int k = 0; k < dir && off; k++) {
		if (off + 8 > n)
			return -1;
		uint64_t cnt = big ? le(d + off, 8) : le(d + off, 2);
		uint64_t nx = off + (big ? 8 : 2) + cnt * (big ? 20 : 12);
		if (nx + 8 > n)
			return -1;
		off = big ? le(d + nx, 8) : le(d + nx, 4);
	}
	if (!off || off + 8 > n)
		return -1;
	uint64_t cnt = big ? le(d + off, 8) : le(d + off, 2);
	const unsigned char *e = d + off + (big ? 8 : 2);
	if ((int)cnt > max || off + cnt * 20 > n)
		return -1;
	for (uint64_t i = 0; i < cnt; i++, e += big ? 20 : 12) {
		struct tag *t = &out[i];
		t->tag = (unsigned)le(e, 2);
		t->type = (unsigned)le(e + 2, 2);
		t->count = big ? le(e + 4, 8) : le(e + 4, 4);
		t->len = t->count * (uint64_t)tsize(t->type);
		uint64_t vpos = (uint64_t)(e - d) + (big ? 12 : 8);
		t->at = t->len <= (big ? 8u : 4u) ? vpos :
			le(e + (big ? 12 : 8), big ? 8 : 4);
	}
	return (int)cnt;
}

static const struct tag *find_tag(const struct tag *t, int n, unsigned id)
{
	for (int i = 0; i < n; i++)
		if (t[i].tag == id)
			return &t[i];
	return NULL;
}

/* The six GeoTIFF tags of two files are the same (type, count, bytes). */
static void check_geotags(const char *ours, const char *gdals, const char *what)
{
	static const unsigned ids[] = { 33550, 33922, 34264, 34735, 34736,
					34737 };
	size_t la, lb;
	unsigned char *a = slurp(ours, &la), *b = slurp(gdals, &lb);
	struct tag ta[64], tb[64];
	int na = a ? read_ifd(a, la, 0, ta, 64) : -1;
	int nb = b ? read_ifd(b, lb, 0, tb, 64) : -1;

	check(na > 0 && nb > 0, "%s: both directories read", what);
	for (size_t i = 0; na > 0 && nb > 0 && i < 6; i++) {
		const struct tag *x = find_tag(ta, na, ids[i]);
		const struct tag *y = find_tag(tb, nb, ids[i]);
		int same = (!x && !y) ||
			   (x && y && x->type == y->type &&
			    x->count == y->count && x->at + x->len <= la &&
			    y->at + y->len <= lb &&
			    memcmp(a + x->at, b + y->at, x->len) == 0);
		check(same, "%s: GeoTIFF tag %u equals gdal_translate's "
		      "(ours %s, GDAL's %s)", what, ids[i], x ? "set" : "absent",
		      y ? "set" : "absent");
	}
	free(a);
	free(b);
}

/* libtiff's own tools accept the file: tiffinfo and tiffdump exit 0, and
 * say nothing but "unknown tag" for the GeoTIFF and GDAL tags (which they
 * print for GDAL's own files too); with l, tiffcp copies every level (it
 * reads all its tiles) - but only levels at least one tile wide: tiffcp
 * fails on narrower ones in GDAL's own files as well ("image raster scan
 * line size is too large"). */
static void check_libtiff(const char *path, const struct rfs_tiff_layout *l)
{
	char cmd[2048], line[512], err[512], cp[512];

	snprintf(err, sizeof(err), "%s", tmp("tiff.err"));
	snprintf(cp, sizeof(cp), "%s", tmp("tiffcp.tif"));
	for (int i = 0; i < 2 + (l ? l->n_levels : 0); i++) {
		const char *tool = i == 0 ? "tiffinfo" : i == 1 ? "tiffdump" :
				   "tiffcp";
		if (i >= 2 && l->level[i - 2].width < 256)
			continue;
		if (i >= 2)
			snprintf(cmd, sizeof(cmd), "tiffcp '%s,%d' '%s' 2>'%s'",
				 path, i - 2, cp, err);
		else
			snprintf(cmd, sizeof(cmd), "%s '%s' >/dev/null 2>'%s'",
				 tool, path, err);
		int st = system(cmd);
		check(st == 0, "%s %s (%d) exits 0 (status %d)", tool, path,
		      i - 2, st);
		FILE *f = fopen(err, "r");
		int bad = 0;
		while (f && fgets(line, sizeof(line), f)) {
			unsigned tag;
			if (sscanf(line, "TIFFReadDirectory: Warning, Unknown "
				   "field with tag %u", &tag) == 1 &&
			    (tag == 33550 || tag == 33922 || tag == 34264 ||
			     tag == 34735 || tag == 34736 || tag == 34737 ||
			     tag == 42112 || tag == 42113))
				continue;
			if (!bad)
				printf("  %s says: %s", tool, line);
			bad++;
		}
		if (f)
			fclose(f);
		check(bad == 0, "%s %s: no other message", tool, path);
	}
	unlink(cp);
}

/* ------------------------------------------------------------------ */
/* Sources */

enum geo { G_4326, G_32610, G_GT_ONLY, G_NONE, G_ROTATED, G_POINT,
	   G_SRS_ONLY, G_COMPOUND, G_N };
static const char *const geo_name[] = { "EPSG:4326", "EPSG:32610",
	"geotransform only", "no georeferencing", "rotated EPSG:32610",
	"EPSG:32610 PixelIsPoint", "CRS only", "EPSG:32610+5703" };

static const GDALDataType types[] = { GDT_Byte, GDT_Int16, GDT_UInt16,
				      GDT_Int32, GDT_Float32, GDT_Float64 };

static double nodata_of(GDALDataType t)
{
	switch (t) {
	case GDT_Byte:
		return 255;
	case GDT_Int16:
		return -32768;
	case GDT_UInt16:
		return 65535;
	case GDT_Int32:
		return -2147483648.0;
	case GDT_Float32:
		return -9999;
	default:
		return -9999.5;
	}
}

static int is_float(GDALDataType t)
{
	return t == GDT_Float32 || t == GDT_Float64;
}

static int is_signed(GDALDataType t)
{
	return t == GDT_Int16 || t == GDT_Int32 || is_float(t);
}

/* Values exact in every type (halves only in floats), so block means are
 * exact too; nodata cells scattered and a 40 x 40 nodata corner in band 1
 * (whole overview blocks without a valid pixel); NaNs in float bands. */
static double pixel(GDALDataType t, int nd, int b, int x, int y)
{
	double v = (double)((x * 7 + y * 13 + b * 31) % 200);

	if (is_signed(t))
		v -= 100;
	if (is_float(t))
		v += 0.5 * ((x + b) % 2);
	if (t == GDT_Int32 || t == GDT_UInt16)
		v *= 300;   /* beyond 16 or 8 bits */
	if (nd && ((x * y + b) % 17 == 0 || (b == 0 && x < 40 && y < 40)))
		return nodata_of(t);
	if (is_float(t) && (x + 2 * y + b) % 23 == 0)
		return NAN;
	return v;
}

static char *wkt_of(int epsg)
{
	OGRSpatialReferenceH s = OSRNewSpatialReference(NULL);
	char *w = NULL;
	OSRImportFromEPSG(s, epsg);
	OSRExportToWkt(s, &w);
	OSRDestroySpatialReference(s);
	return w;
}

static GDALDatasetH make_source(int W, int H, int B, GDALDataType t,
				enum geo g, int nd)
{
	GDALDatasetH ds = GDALCreate(GDALGetDriverByName("MEM"), "", W, H, B,
				     t, NULL);
	double *row = malloc(sizeof(double) * (size_t)W);
	double gt4326[6] = { -124.25, 1.0 / 3600, 0, 48.58, 0, -1.0 / 3600 };
	double gtutm[6] = { 500000, 30, 0, 4200000, 0, -30 };
	double gtrot[6] = { 500000, 30, 5, 4200000, 4, -30 };
	char *wkt = NULL;

	if (g == G_4326) {
		wkt = wkt_of(4326);
		GDALSetGeoTransform(ds, gt4326);
	} else if (g == G_32610 || g == G_POINT) {
		wkt = wkt_of(32610);
		GDALSetGeoTransform(ds, gtutm);
	} else if (g == G_ROTATED) {
		wkt = wkt_of(32610);
		GDALSetGeoTransform(ds, gtrot);
	} else if (g == G_GT_ONLY) {
		GDALSetGeoTransform(ds, gtutm);
	} else if (g == G_SRS_ONLY) {
		wkt = wkt_of(32610);
	} else if (g == G_COMPOUND) {
		/* vertical: GDAL's ModelPixelScale then carries a Z scale */
		OGRSpatialReferenceH s = OSRNewSpatialReference(NULL);
		OSRSetFromUserInput(s, "EPSG:32610+5703");
		OSRExportToWkt(s, &wkt);
		OSRDestroySpatialReference(s);
		GDALSetGeoTransform(ds, gtutm);
	}
	if (wkt)
		GDALSetProjection(ds, wkt);
	CPLFree(wkt);
	if (g == G_POINT)
		GDALSetMetadataItem(ds, "AREA_OR_POINT", "Point", NULL);
	for (int b = 0; b < B; b++) {
		GDALRasterBandH band = GDALGetRasterBand(ds, b + 1);
		if (nd)
			GDALSetRasterNoDataValue(band, nodata_of(t));
		for (int y = 0; y < H; y++) {
			for (int x = 0; x < W; x++)
				row[x] = pixel(t, nd, b, x, y);
			if (GDALRasterIO(band, GF_Write, 0, y, W, 1, row, W, 1,
					 GDT_Float64, 0, 0) != CE_None)
				abort();
		}
	}
	free(row);
	return ds;
}

/* ------------------------------------------------------------------ */
/* Plain references */

/* Overview level k of band b as doubles: the block mean of the valid base
 * cells, fill when none. */
static double *ref_level(const double *base, int W, int H, int k, int nd,
			 double ndv, double fill, int *ow, int *oh)
{
	const int f = 1 << k;
	const int w = (W + f - 1) / f, h = (H + f - 1) / f;
	double *o = malloc(sizeof(double) * (size_t)w * (size_t)h);

	for (int j = 0; j < h; j++)
		for (int i = 0; i < w; i++) {
			double s = 0;
			long n = 0;
			for (int y = j * f; y < (j + 1) * f && y < H; y++)
				for (int x = i * f; x < (i + 1) * f && x < W; x++) {
					double v = base[(size_t)y * W + x];
					if (isnan(v) || (nd && v == ndv))
						continue;
					s += v;
					n++;
				}
			o[(size_t)j * w + i] = n ? s / (double)n : fill;
		}
	*ow = w;
	*oh = h;
	return o;
}

/* A double converted to the type the way tiff.h documents (nearest,
 * halves away from zero, clamped; floats rounded to nearest). */
static void to_type(double v, GDALDataType t, void *out)
{
	double lo = 0, hi = 0;

	switch (t) {
	case GDT_Float32:
		*(float *)out = (float)v;
		return;
	case GDT_Float64:
		*(double *)out = v;
		return;
	case GDT_Byte: lo = 0; hi = 255; break;
	case GDT_Int16: lo = -32768; hi = 32767; break;
	case GDT_UInt16: lo = 0; hi = 65535; break;
	case GDT_Int32: lo = -2147483648.0; hi = 2147483647.0; break;
	default: abort();
	}
	v = round(v);
	v = v < lo ? lo : v > hi ? hi : v;
	switch (t) {
	case GDT_Byte: *(uint8_t *)out = (uint8_t)v; break;
	case GDT_Int16: *(int16_t *)out = (int16_t)v; break;
	case GDT_UInt16: *(uint16_t *)out = (uint16_t)v; break;
	default: *(int32_t *)out = (int32_t)v; break;
	}
}

static int same_value(double a, double b, double tol)
{
	if (isnan(a) || isnan(b))
		return isnan(a) && isnan(b);
	return fabs(a - b) <= tol * fmax(1, fabs(b));
}

/* Plain two-pass statistics over finite non-nodata values. */
static int ref_stats(const double *v, size_t n, int nd, double ndv,
		     double out[5])
{
	long double s = 0, q = 0;
	double mn = INFINITY, mx = -INFINITY;
	size_t c = 0;

	for (size_t i = 0; i < n; i++) {
		if (!isfinite(v[i]) || (nd && v[i] == ndv))
			continue;
		s += v[i];
		mn = fmin(mn, v[i]);
		mx = fmax(mx, v[i]);
		c++;
	}
	if (!c)
		return 0;
	long double m = s / c;
	for (size_t i = 0; i < n; i++)
		if (isfinite(v[i]) && !(nd && v[i] == ndv))
			q += (v[i] - m) * (v[i] - m);
	out[0] = mn;
	out[1] = mx;
	out[2] = (double)m;
	out[3] = (double)sqrtl(q / c);
	out[4] = round(1e4 * (double)c / (double)n) / 100;
	return 1;
}

/* ------------------------------------------------------------------ */
/* One case */

enum stats_mode { S_COMPUTE, S_EXACT, S_APPROX, S_UNKNOWN, S_N };
static const char *const stats_name[] = { "computed", "exact", "approx",
					  "unknown" };

struct tcase {
	char name[200];
	GDALDatasetH src;
	int overviews;
	enum stats_mode stats;
	int force_big;
	int pixel_is_point;
	double tol;           /* overview tolerance (0: exact) */
};

static const char *const item_vals[] = {
	"sub/dem.tif & <x> \"q\" 'a'\n\ttab", "@proj=EPSG:3857@focal=3",
	"0.1.0", "3.6.2",
};

static void desc_from(GDALDatasetH ds, struct tcase *c,
		      struct rfs_tiff_desc *d, char **bdesc,
		      struct rfs_tiff_stats *st, struct rfs_tiff_item *items)
{
	const int B = GDALGetRasterCount(ds);
	GDALRasterBandH b1 = GDALGetRasterBand(ds, 1);
	const char *aop = GDALGetMetadataItem(ds, "AREA_OR_POINT", NULL);
	int has;

	memset(d, 0, sizeof(*d));
	/* now: GDALGetProjectionRef may free the metadata string */
	d->pixel_is_point = aop && EQUAL(aop, "Point");
	d->width = GDALGetRasterXSize(ds);
	d->height = GDALGetRasterYSize(ds);
	d->bands = B;
	d->type = GDALGetRasterDataType(b1);
	d->has_geotransform = GDALGetGeoTransform(ds, d->geotransform) ==
			      CE_None;
	d->srs_wkt = GDALGetProjectionRef(ds);
	d->nodata = GDALGetRasterNoDataValue(b1, &has);
	d->has_nodata = has;
	items[0] = (struct rfs_tiff_item){ "RFS_SOURCE", item_vals[0] };
	items[1] = (struct rfs_tiff_item){ "RFS_CHAIN", item_vals[1] };
	items[2] = (struct rfs_tiff_item){ "RFS_VERSION", item_vals[2] };
	items[3] = (struct rfs_tiff_item){ "GDAL_VERSION", item_vals[3] };
	d->items = items;
	d->n_items = 4;
	for (int b = 0; b < B; b++) {
		bdesc[b] = b == 1 ? NULL : CPLStrdup(CPLSPrintf(
			"band %d of <%s> & \"more\"", b + 1, c->name));
		memset(&st[b], 0, sizeof(st[b]));
		/* values that need every digit, and a sign */
		st[b].state = c->stats == S_EXACT ? RFS_TIFF_STATS_EXACT :
			      c->stats == S_APPROX ? RFS_TIFF_STATS_APPROX :
			      RFS_TIFF_STATS_UNKNOWN;
		st[b].min = -1.0 / 3 - b;
		st[b].max = 1e300 / 7;
		st[b].mean = -2.2250738585072014e-308;
		st[b].stddev = 0.1 + b;
		st[b].valid_percent = 99.99;
	}
	d->band_desc = (const char *const *)bdesc;
	d->stats = st;
	d->overviews = c->overviews;
}

static int expected_levels(int W, int H, int ovr)
{
	int n = 1;
	while (ovr && (W > 256 || H > 256)) {
		W = (W + 1) / 2;
		H = (H + 1) / 2;
		n++;
	}
	return n;
}

/* Pixels of tile (tx, ty) of an image w x h held as `img` (type t), into a
 * 256 x 256 buffer whose outside is garbage. */
static void cut_tile(const unsigned char *img, int w, int h, int sb, int tx,
		     int ty, unsigned char *tile)
{
	memset(tile, 0xAB, (size_t)256 * 256 * sb);
	for (int r = 0; r < 256 && ty * 256 + r < h; r++) {
		int cw = w - tx * 256 < 256 ? w - tx * 256 : 256;
		memcpy(tile + (size_t)r * 256 * sb,
		       img + ((size_t)(ty * 256 + r) * w + tx * 256) * sb,
		       (size_t)cw * sb);
	}
}

struct tile_id {
	int level, band, tx, ty;
};

static unsigned rnd_state = 12345;
static unsigned rnd(void)
{
	rnd_state = rnd_state * 1103515245u + 12345u;
	return rnd_state >> 8;
}

static void run_case(struct tcase *c)
{
	GDALDatasetH src = c->src, out = NULL;
	const int W = GDALGetRasterXSize(src), H = GDALGetRasterYSize(src);
	const int B = GDALGetRasterCount(src);
	struct rfs_tiff_desc d;
	struct rfs_tiff_layout l, l2;
	struct rfs_tiff_item items[4];
	char **bdesc = calloc((size_t)B, sizeof(char *));
	struct rfs_tiff_stats *st = calloc((size_t)B, sizeof(*st));
	struct rfs_tiff_stats *got = calloc((size_t)B, sizeof(*got));
	const struct rfs_tiff_stats *used;
	char p1[512], p2[512], p3[512], p4[512];
	double **base = calloc((size_t)B, sizeof(double *));
	double ***ovr = NULL;   /* [band][level] */
	int rc, nl;
	struct cpl_log log = { 0 };

	snprintf(p1, sizeof(p1), "%s", tmp("a.tif"));
	snprintf(p2, sizeof(p2), "%s", tmp("b.tif"));
	snprintf(p3, sizeof(p3), "%s", tmp("c.tif"));
	snprintf(p4, sizeof(p4), "%s", tmp("gdal.tif"));
	desc_from(src, c, &d, bdesc, st, items);
	const GDALDataType t = d.type;
	const int sb = GDALGetDataTypeSizeBytes(t);
	rc = rfs_tiff_layout_limit(&d, c->force_big ? 0 : RFS_TIFF_CLASSIC_MAX,
				   &l);
	check(rc == 0, "%s: layout rc=%d", c->name, rc);
	if (rc)
		goto out;
	nl = expected_levels(W, H, c->overviews);
	check(l.n_levels == nl, "%s: %d levels, expected %d", c->name,
	      l.n_levels, nl);
	check(l.bigtiff == (c->force_big || l.total_size > 0xFFFFFFFFull),
	      "%s: bigtiff=%d", c->name, l.bigtiff);
	check(l.header_size % 4096 == 0 && l.header_size >= l.head_len,
	      "%s: header size %" PRIu64, c->name, l.header_size);

	/* the whole file from the dataset */
	rc = rfs_tiff_write_from_dataset(src, &l, p1,
					 c->stats == S_COMPUTE ? got : NULL,
					 NULL, NULL);
	check(rc == 0, "%s: write_from_dataset rc=%d (%s)", c->name, rc,
	      rfs_strerror(rc));
	if (rc)
		goto out;
	used = c->stats == S_COMPUTE ? got : st;
	check(file_size(p1) == (off_t)l.total_size,
	      "%s: size %lld, predicted %" PRIu64, c->name,
	      (long long)file_size(p1), l.total_size);

	/* GDAL reads it back, silently */
	CPLPushErrorHandlerEx(cpl_count, &log);
	out = GDALOpen(p1, GA_ReadOnly);
	char *info = NULL;
	if (out) {
		char *argv[] = { "-mdd", "all", "-nogcp", NULL };
		GDALInfoOptions *io = GDALInfoOptionsNew(argv, NULL);
		info = GDALInfo(out, io);
		GDALInfoOptionsFree(io);
	}
	CPLPopErrorHandler();
	check(out && info, "%s: GDAL opens it", c->name);
	check(log.warnings == 0 && log.errors == 0,
	      "%s: GDALOpen+GDALInfo: %d warnings, %d errors (%s)", c->name,
	      log.warnings, log.errors, log.first);
	CPLFree(info);
	if (!out)
		goto out;
	check(GDALGetRasterXSize(out) == W && GDALGetRasterYSize(out) == H &&
	      GDALGetRasterCount(out) == B, "%s: size and bands", c->name);

	/* georeferencing */
	double gs[6], go[6];
	int hs = GDALGetGeoTransform(src, gs) == CE_None;
	int ho = GDALGetGeoTransform(out, go) == CE_None;
	check(hs == ho && (!hs || memcmp(gs, go, sizeof(gs)) == 0),
	      "%s: geotransform (%d/%d) %.17g %.17g %.17g / %.17g %.17g %.17g",
	      c->name, hs, ho, gs[0], gs[1], gs[2], go[0], go[1], go[2]);
	OGRSpatialReferenceH ss = GDALGetSpatialRef(src);
	OGRSpatialReferenceH so = GDALGetSpatialRef(out);
	check((!ss && !so) || (ss && so && OSRIsSame(ss, so)),
	      "%s: SRS the same", c->name);
	/* AREA_OR_POINT as GDAL's own copy of the source reports it */
	{
		char *argv[] = { "-of", "GTiff", "-co", "TILED=YES", NULL };
		GDALTranslateOptions *o = GDALTranslateOptionsNew(argv, NULL);
		GDALDatasetH g = GDALTranslate(p4, src, o, NULL);
		GDALTranslateOptionsFree(o);
		check(g != NULL, "%s: gdal_translate", c->name);
		if (g) {
			GDALClose(g);
			g = GDALOpen(p4, GA_ReadOnly);
		}
		const char *a = GDALGetMetadataItem(out, "AREA_OR_POINT", NULL);
		const char *b = g ? GDALGetMetadataItem(g, "AREA_OR_POINT",
							 NULL) : NULL;
		check(g && ((!a && !b) || (a && b && strcmp(a, b) == 0)),
		      "%s: AREA_OR_POINT=%s, GDAL's copy says %s", c->name,
		      a ? a : "-", b ? b : "-");
		if (g)
			GDALClose(g);
	}

	/* metadata */
	for (int i = 0; i < 4; i++) {
		const char *v = GDALGetMetadataItem(out, items[i].key, NULL);
		check(v && strcmp(v, items[i].value) == 0,
		      "%s: item %s = '%s'", c->name, items[i].key, v ? v : "-");
	}

	/* bands */
	size_t npx = (size_t)W * H;
	unsigned char *bs = malloc(npx * sb), *bo = malloc(npx * sb);
	ovr = calloc((size_t)B, sizeof(double **));
	for (int b = 0; b < B; b++) {
		GDALRasterBandH sbd = GDALGetRasterBand(src, b + 1);
		GDALRasterBandH obd = GDALGetRasterBand(out, b + 1);
		int hn_s, hn_o;
		double nd_s = GDALGetRasterNoDataValue(sbd, &hn_s);
		double nd_o = GDALGetRasterNoDataValue(obd, &hn_o);

		check(GDALGetRasterDataType(obd) == t, "%s: type", c->name);
		check(hn_s == hn_o && (!hn_s || same_value(nd_s, nd_o, 0)),
		      "%s band %d: nodata %d %g / %d %g", c->name, b + 1, hn_s,
		      nd_s, hn_o, nd_o);
		int ok = GDALRasterIO(sbd, GF_Read, 0, 0, W, H, bs, W, H, t, 0,
				      0) == CE_None &&
			 GDALRasterIO(obd, GF_Read, 0, 0, W, H, bo, W, H, t, 0,
				      0) == CE_None;
		check(ok && memcmp(bs, bo, npx * sb) == 0,
		      "%s band %d: pixels equal the source's", c->name, b + 1);
		const char *ds_ = GDALGetDescription(obd);
		const char *want = bdesc[b] ? bdesc[b] : "";
		check(strcmp(ds_, want) == 0, "%s band %d: description '%s'",
		      c->name, b + 1, ds_);

		base[b] = malloc(sizeof(double) * npx);
		GDALCopyWords(bs, t, sb, base[b], GDT_Float64, 8, (int)npx);

		/* statistics */
		double mn, mx, mean, sd;
		const char *ap = GDALGetMetadataItem(obd,
						     "STATISTICS_APPROXIMATE",
						     NULL);
		const char *vp = GDALGetMetadataItem(obd,
						     "STATISTICS_VALID_PERCENT",
						     NULL);
		const struct rfs_tiff_stats *u = &used[b];
		if (u->state == RFS_TIFF_STATS_UNKNOWN) {
			CPLPushErrorHandler(CPLQuietErrorHandler);
			CPLErr e = GDALGetRasterStatistics(obd, TRUE, FALSE,
							   &mn, &mx, &mean,
							   &sd);
			CPLPopErrorHandler();
			check(e != CE_None && !vp && !ap &&
			      !GDALGetMetadataItem(obd, "STATISTICS_MINIMUM",
						   NULL),
			      "%s band %d: no statistics", c->name, b + 1);
		} else {
			CPLErr e = GDALGetRasterStatistics(
				obd, u->state == RFS_TIFF_STATS_APPROX, FALSE,
				&mn, &mx, &mean, &sd);
			check(e == CE_None && mn == u->min && mx == u->max &&
			      mean == u->mean && sd == u->stddev && vp &&
			      CPLAtof(vp) == u->valid_percent,
			      "%s band %d: statistics round trip (%.17g %.17g "
			      "%.17g %.17g)", c->name, b + 1, mn, mx, mean, sd);
			if (u->state == RFS_TIFF_STATS_APPROX) {
				CPLPushErrorHandler(CPLQuietErrorHandler);
				e = GDALGetRasterStatistics(obd, FALSE, FALSE,
							    &mn, &mx, &mean,
							    &sd);
				CPLPopErrorHandler();
				check(ap && EQUAL(ap, "YES") && e != CE_None,
				      "%s band %d: approximate, refused to an "
				      "exact request", c->name, b + 1);
			} else {
				check(!ap, "%s band %d: not approximate",
				      c->name, b + 1);
			}
		}
		if (c->stats == S_COMPUTE) {
			double r[5] = { 0 };
			int has = ref_stats(base[b], npx, hn_s, nd_s, r);
			check(has ? (u->state == RFS_TIFF_STATS_EXACT &&
				     u->min == r[0] && u->max == r[1] &&
				     same_value(u->mean, r[2], 1e-12) &&
				     same_value(u->stddev, r[3], 1e-9) &&
				     u->valid_percent == r[4]) :
				    u->state == RFS_TIFF_STATS_UNKNOWN,
			      "%s band %d: computed statistics %g %g %.17g "
			      "%.17g %g vs %g %g %.17g %.17g %g", c->name, b + 1,
			      u->min, u->max, u->mean, u->stddev,
			      u->valid_percent, r[0], r[1], r[2], r[3], r[4]);
		}

		/* overviews */
		ovr[b] = calloc((size_t)l.n_levels, sizeof(double *));
		check(GDALGetOverviewCount(obd) == l.n_levels - 1,
		      "%s band %d: %d overviews", c->name, b + 1,
		      GDALGetOverviewCount(obd));
		for (int k = 1; k < l.n_levels; k++) {
			int ow, oh;
			double fill = hn_s ? nd_s : NAN;
			ovr[b][k] = ref_level(base[b], W, H, k, hn_s, nd_s,
					      fill, &ow, &oh);
			GDALRasterBandH ob = GDALGetOverview(obd, k - 1);
			if (!ob)
				continue;
			check(GDALGetRasterBandXSize(ob) == ow &&
			      GDALGetRasterBandYSize(ob) == oh,
			      "%s band %d level %d: %dx%d", c->name, b + 1, k,
			      GDALGetRasterBandXSize(ob),
			      GDALGetRasterBandYSize(ob));
			double *gv = malloc(sizeof(double) * ow * oh);
			unsigned char *tv = malloc((size_t)ow * oh * sb);
			unsigned char one[8];
			check(GDALRasterIO(ob, GF_Read, 0, 0, ow, oh, tv, ow, oh,
					   t, 0, 0) == CE_None,
			      "%s band %d level %d: read", c->name, b + 1, k);
			GDALCopyWords(tv, t, sb, gv, GDT_Float64, 8, ow * oh);
			int bad = 0;
			for (int i = 0; i < ow * oh; i++) {
				double want_v;
				to_type(ovr[b][k][i], t, one);
				GDALCopyWords(one, t, 0, &want_v, GDT_Float64,
					      0, 1);
				if (!same_value(gv[i], want_v, c->tol))
					bad++;
			}
			check(bad == 0, "%s band %d level %d: %d pixels differ "
			      "from the block mean", c->name, b + 1, k, bad);
			int onh;
			double ond = GDALGetRasterNoDataValue(ob, &onh);
			check(onh == hn_s && (!onh || same_value(ond, nd_s, 0)),
			      "%s band %d level %d: nodata", c->name, b + 1, k);
			if (k == 1) {
				/* a reduced read of the base is served from
				 * the overview */
				unsigned char *rv = malloc((size_t)ow * oh * sb);
				int rd = GDALRasterIO(obd, GF_Read, 0, 0, W, H,
						      rv, ow, oh, t, 0, 0);
				check(rd == CE_None &&
				      memcmp(rv, tv, (size_t)ow * oh * sb) == 0,
				      "%s band %d: GDAL reads the overview for "
				      "a 1:2 view", c->name, b + 1);
				free(rv);
			}
			free(gv);
			free(tv);
		}

		/* every tile's offset is GDAL's BLOCK_OFFSET, and tile_at
		 * finds it again */
		int bad = 0, badat = 0;
		for (int k = 0; k < l.n_levels; k++) {
			GDALRasterBandH ob = k ? GDALGetOverview(obd, k - 1)
					       : obd;
			for (int ty = 0; ob && ty < l.level[k].tiles_y; ty++)
				for (int tx = 0; tx < l.level[k].tiles_x; tx++) {
					char key[64];
					uint64_t off = 0;
					struct rfs_tiff_loc loc;
					snprintf(key, sizeof(key),
						 "BLOCK_OFFSET_%d_%d", tx, ty);
					const char *g = GDALGetMetadataItem(
						ob, key, "TIFF");
					rfs_tiff_tile_offset(&l, k, b, tx, ty,
							     &off);
					if (!g || strtoull(g, NULL, 10) != off)
						bad++;
					uint64_t probe = off + rnd() %
						l.tile_bytes;
					if (rfs_tiff_tile_at(&l, probe, &loc) ||
					    loc.in_header || loc.level != k ||
					    loc.band != b || loc.tx != tx ||
					    loc.ty != ty || loc.start != off ||
					    loc.len != l.tile_bytes)
						badat++;
				}
		}
		check(bad == 0, "%s band %d: %d tile offsets differ from "
		      "GDAL's BLOCK_OFFSET", c->name, b + 1, bad);
		check(badat == 0, "%s band %d: tile_at wrong %d times", c->name,
		      b + 1, badat);
	}
	free(bs);
	free(bo);
	GDALClose(out);
	out = NULL;

	struct rfs_tiff_loc loc;
	check(rfs_tiff_tile_at(&l, 0, &loc) == 0 && loc.in_header &&
	      rfs_tiff_tile_at(&l, l.header_size - 1, &loc) == 0 &&
	      loc.in_header && rfs_tiff_tile_at(&l, l.total_size, &loc) ==
	      -ERANGE && rfs_tiff_tile_at(&l, l.total_size - 1, &loc) == 0 &&
	      !loc.in_header && loc.level == 0 && loc.band == B - 1,
	      "%s: tile_at at the header and the ends", c->name);

	check_libtiff(p1, &l);

	/* the GeoTIFF tags are GDAL's */
	check_geotags(p1, p4, c->name);
	unlink(p4);

	/* the same bytes a second time */
	rc = rfs_tiff_write_from_dataset(src, &l, p2, NULL, NULL, NULL);
	check(rc == 0 && same_file(p1, p2), "%s: written twice, same bytes",
	      c->name);

	/* the same description gives the same header */
	rc = rfs_tiff_layout_limit(&d, c->force_big ? 0 : RFS_TIFF_CLASSIC_MAX,
				   &l2);
	if (rc == 0) {
		for (int b = 0; b < B; b++)
			rfs_tiff_set_stats(&l2, b, &used[b]);
		unsigned char *h1 = malloc(l.header_size);
		unsigned char *h2 = malloc(l.header_size);
		rfs_tiff_header_read(&l, 0, h1, l.header_size);
		rfs_tiff_header_read(&l2, 0, h2, l.header_size);
		check(l2.header_size == l.header_size &&
		      l2.total_size == l.total_size &&
		      memcmp(h1, h2, l.header_size) == 0,
		      "%s: same description, same header", c->name);

		/* other statistics change only GDAL_METADATA's text */
		struct tag tg[64];
		int nt = read_ifd(h1, l.header_size, 0, tg, 64);
		const struct tag *md = nt > 0 ? find_tag(tg, nt, 42112) : NULL;
		for (int s = 0; s < 3 && md; s++) {
			struct rfs_tiff_stats o = { s, -5e-324, 1e-5, -0.0,
						    123456789.125, 0.01 };
			for (int b = 0; b < B; b++) {
				o.max = b;
				rfs_tiff_set_stats(&l2, b, &o);
			}
			rfs_tiff_header_read(&l2, 0, h2, l.header_size);
			int outside = 0;
			for (uint64_t i = 0; i < l.header_size; i++)
				if (h1[i] != h2[i] && (i < md->at ||
						       i >= md->at + md->len))
					outside++;
			check(outside == 0, "%s: statistics state %d changes "
			      "%d bytes outside GDAL_METADATA", c->name, s,
			      outside);
		}
		check(md != NULL, "%s: GDAL_METADATA found", c->name);
		free(h1);
		free(h2);
	}
	rfs_tiff_layout_free(&l2);

	/* tiles one by one, in random order, from plain references; then
	 * half of them, the header, the rest */
	{
		int n = 0, cap = 0;
		struct tile_id *ids = NULL;
		unsigned char **img = calloc((size_t)B * l.n_levels,
					     sizeof(*img));
		unsigned char *tile = malloc(l.tile_bytes);

		for (int k = 0; k < l.n_levels; k++)
			for (int b = 0; b < B; b++) {
				const struct rfs_tiff_level *v = &l.level[k];
				size_t np = (size_t)v->width * v->height;
				unsigned char *m = malloc(np * sb);
				for (size_t i = 0; i < np; i++)
					to_type(k ? ovr[b][k][i] : base[b][i], t,
						m + i * sb);
				img[k * B + b] = m;
				for (int ty = 0; ty < v->tiles_y; ty++)
					for (int tx = 0; tx < v->tiles_x; tx++) {
						if (n == cap) {
							cap = cap ? 2 * cap : 64;
							ids = realloc(ids, cap *
								      sizeof(*ids));
						}
						ids[n++] = (struct tile_id){
							k, b, tx, ty };
					}
			}
		for (int pass = 0; pass < 2; pass++) {
			for (int i = n - 1; i > 0; i--) {
				int j = (int)(rnd() % (unsigned)(i + 1));
				struct tile_id x = ids[i];
				ids[i] = ids[j];
				ids[j] = x;
			}
			int fd = open(p3, O_WRONLY | O_CREAT | O_TRUNC, 0600);
			int bad = fd < 0 || ftruncate(fd, (off_t)l.total_size);
			struct rfs_tiff_layout l3;
			/* a fresh layout: the header comes from the
			 * description and the statistics alone */
			bad |= rfs_tiff_layout_limit(&d, c->force_big ? 0 :
						     RFS_TIFF_CLASSIC_MAX, &l3);
			int half = pass ? n / 2 : n;
			for (int i = 0; i < n && !bad; i++) {
				if (i == half)
					bad |= rfs_tiff_write_header(fd, &l3,
								     used);
				const struct rfs_tiff_level *v =
					&l.level[ids[i].level];
				cut_tile(img[ids[i].level * B + ids[i].band],
					 v->width, v->height, sb, ids[i].tx,
					 ids[i].ty, tile);
				bad |= rfs_tiff_write_tile(fd, &l3, ids[i].level,
							   ids[i].band, ids[i].tx,
							   ids[i].ty, tile);
			}
			if (half == n)
				bad |= rfs_tiff_write_header(fd, &l3, used);
			if (fd >= 0)
				close(fd);
			rfs_tiff_layout_free(&l3);
			check(!bad && same_file(p1, p3),
			      "%s: %s, same bytes", c->name,
			      pass ? "half the tiles, the header, the rest" :
				     "tiles in random order");
		}
		for (int i = 0; i < B * l.n_levels; i++)
			free(img[i]);
		free(img);
		free(ids);
		free(tile);
	}
out:
	if (out)
		GDALClose(out);
	for (int b = 0; b < B; b++) {
		CPLFree(bdesc[b]);
		free(base[b]);
		for (int k = 0; ovr && ovr[b] && k < l.n_levels; k++)
			free(ovr[b][k]);
		if (ovr)
			free(ovr[b]);
	}
	free(ovr);
	free(base);
	free(bdesc);
	free(st);
	free(got);
	rfs_tiff_layout_free(&l);
	unlink(p1);
	unlink(p2);
	unlink(p3);
}

/* ------------------------------------------------------------------ */
/* The matrix */

static void test_matrix(void)
{
	static const int sizes[][2] = { { 1, 1 }, { 255, 257 }, { 256, 256 },
					{ 1000, 600 } };
	static const int bandc[] = { 1, 3, 7 };
	int i = 0;

	for (size_t ti = 0; ti < sizeof(types) / sizeof(types[0]); ti++)
		for (int si = 0; si < 4; si++)
			for (int bi = 0; bi < 3; bi++, i++) {
				struct tcase c = { 0 };
				int W = sizes[si][0], H = sizes[si][1];
				enum geo g = (enum geo)(i % G_N);
				int nd = (i / 2) % 2;
				c.overviews = (i % 3) != 1;
				c.stats = (enum stats_mode)((i / 3) % S_N);
				c.force_big = i % 4 == 3;
				snprintf(c.name, sizeof(c.name),
					 "%s %dx%dx%d %s%s%s stats %s%s",
					 GDALGetDataTypeName(types[ti]), W, H,
					 bandc[bi], geo_name[g],
					 nd ? " nodata" : "",
					 c.overviews ? " overviews" : "",
					 stats_name[c.stats],
					 c.force_big ? " BigTIFF" : "");
				c.src = make_source(W, H, bandc[bi], types[ti],
						    g, nd);
				run_case(&c);
				GDALClose(c.src);
			}
}

/* The rasters of tests/data, with overviews and computed statistics. */
static void test_real(void)
{
	static const char *const files[] = {
		"opengeos_dtm.tif", "stars_olinda_dem_utm25s.tif",
		"rgbify_elev.tif", "stars_L7_ETMs.tif",
		"srtm1_N48W125_crop.tif",
	};

	for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
		struct tcase c = { 0 };
		char p[1200];
		snprintf(p, sizeof(p), "%s/%s", datadir, files[i]);
		c.src = GDALOpen(p, GA_ReadOnly);
		check(c.src != NULL, "open %s", p);
		if (!c.src)
			continue;
		snprintf(c.name, sizeof(c.name), "%s", files[i]);
		c.overviews = 1;
		c.stats = S_COMPUTE;
		c.force_big = i == 2;
		/* real float data: the sums are not exact in every order */
		c.tol = is_float(GDALGetRasterDataType(
			GDALGetRasterBand(c.src, 1))) ? 1e-6 : 0;
		run_case(&c);
		GDALClose(c.src);
	}
}

/* Around the real classic/BigTIFF threshold, with sparse files: only the
 * header and two tiles are written. */
static void test_threshold(void)
{
	struct rfs_tiff_desc d = { .width = 256 * 255, .bands = 1,
				   .type = GDT_Byte };
	struct rfs_tiff_layout lc, lb, lx;
	int lo = 200 * 256, hi = 300 * 256;

	/* the largest height that is still classic */
	while (hi - lo > 1) {
		int mid = (lo + hi) / 2;
		d.height = mid;
		if (rfs_tiff_layout(&d, &lx) != 0)
			break;
		if (lx.bigtiff)
			hi = mid;
		else
			lo = mid;
		rfs_tiff_layout_free(&lx);
	}
	for (int big = 0; big < 2; big++) {
		d.height = big ? hi : lo;
		struct rfs_tiff_layout *l = big ? &lb : &lc;
		int rc = rfs_tiff_layout(&d, l);
		check(rc == 0 && l->bigtiff == big, "threshold %dx%d: bigtiff %d",
		      d.width, d.height, l->bigtiff);
		if (rc)
			continue;
		/* what the classic layout would take */
		rc = rfs_tiff_layout_limit(&d, UINT64_MAX, &lx);
		check(rc == 0 && !lx.bigtiff &&
		      (big ? lx.total_size > RFS_TIFF_CLASSIC_MAX :
			     lx.total_size <= RFS_TIFF_CLASSIC_MAX) &&
		      (big || lx.total_size == l->total_size),
		      "threshold %dx%d: classic size %" PRIu64, d.width,
		      d.height, lx.total_size);
		rfs_tiff_layout_free(&lx);

		const char *p = tmp("sparse.tif");
		int fd = open(p, O_RDWR | O_CREAT | O_TRUNC, 0600);
		unsigned char *tile = malloc(l->tile_bytes);
		for (size_t i = 0; i < l->tile_bytes; i++)
			tile[i] = (unsigned char)(i * 7 + big);
		const int tx = l->level[0].tiles_x - 1, ty = l->level[0].tiles_y - 1;
		rc = fd < 0 || ftruncate(fd, (off_t)l->total_size) ||
		     rfs_tiff_write_header(fd, l, NULL) ||
		     rfs_tiff_write_tile(fd, l, 0, 0, tx, ty, tile) ||
		     rfs_tiff_write_tile(fd, l, 0, 0, 0, 0, tile);
		if (fd >= 0)
			close(fd);
		check(rc == 0 && file_size(p) == (off_t)l->total_size,
		      "threshold %d: sparse file written", big);
		struct cpl_log log = { 0 };
		CPLPushErrorHandlerEx(cpl_count, &log);
		GDALDatasetH ds = GDALOpen(p, GA_ReadOnly);
		unsigned char *got = malloc(l->tile_bytes);
		int ok = ds && GDALGetRasterXSize(ds) == d.width &&
			 GDALGetRasterYSize(ds) == d.height;
		for (int k = 0; ok && k < 2; k++) {
			/* the written tiles, and an unwritten one (zeros) */
			GDALRasterBandH b = GDALGetRasterBand(ds, 1);
			int x = k ? tx * 256 : 0, y = k ? ty * 256 : 0;
			int w = d.width - x < 256 ? d.width - x : 256;
			int h = d.height - y < 256 ? d.height - y : 256;
			memset(got, 1, l->tile_bytes);
			ok = GDALRasterIO(b, GF_Read, x, y, w, h, got, w, h,
					  GDT_Byte, 1, 256) == CE_None;
			for (int r = 0; ok && r < h; r++)
				ok = memcmp(got + r * 256, tile + r * 256,
					    (size_t)w) == 0;
			ok = ok && GDALRasterIO(b, GF_Read, 256, 256, 256, 256,
						got, 256, 256, GDT_Byte, 0, 0) ==
					   CE_None && got[0] == 0 &&
			     got[l->tile_bytes - 1] == 0;
		}
		if (ds)
			GDALClose(ds);
		CPLPopErrorHandler();
		check(ok && log.warnings == 0 && log.errors == 0,
		      "threshold %d: GDAL reads the written tiles (%s)", big,
		      log.first);
		check_libtiff(p, NULL);
		free(tile);
		free(got);
		unlink(p);
		rfs_tiff_layout_free(l);
	}
}

static int cancel_now(double f, const char *m, void *a)
{
	(void)f;
	(void)m;
	(void)a;
	return FALSE;
}

static void test_errors(void)
{
	struct rfs_tiff_desc ok = { .width = 10, .height = 10, .bands = 1,
				    .type = GDT_Float32 };
	struct rfs_tiff_desc d;
	struct rfs_tiff_layout l;
	struct rfs_tiff_item bad_item = { "BAD KEY", "x" };
	unsigned char px[256 * 256 * 4] = { 0 };

	d = ok; d.width = 0;
	check(rfs_tiff_layout(&d, &l) == -EINVAL, "width 0 refused");
	rfs_tiff_layout_free(&l);
	d = ok; d.bands = 0;
	check(rfs_tiff_layout(&d, &l) == -EINVAL, "0 bands refused");
	rfs_tiff_layout_free(&l);
	d = ok; d.bands = 70000;
	check(rfs_tiff_layout(&d, &l) == -EINVAL, "70000 bands refused");
	rfs_tiff_layout_free(&l);
	d = ok; d.type = GDT_CInt16;
	check(rfs_tiff_layout(&d, &l) == -EINVAL, "complex type refused");
	rfs_tiff_layout_free(&l);
	d = ok; d.items = &bad_item; d.n_items = 1;
	check(rfs_tiff_layout(&d, &l) == -EINVAL, "bad item key refused");
	rfs_tiff_layout_free(&l);
	d = ok; d.srs_wkt = "not a CRS at all";
	check(rfs_tiff_layout(&d, &l) == -RFS_E_PROCESS, "bad SRS: RFS-E201");
	rfs_tiff_layout_free(&l);
	d = ok; d.width = d.height = 2147483647; d.bands = 65535;
	d.type = GDT_Float64;
	check(rfs_tiff_layout(&d, &l) == -EFBIG, "2^83 bytes: EFBIG");
	rfs_tiff_layout_free(&l);
	d = ok; d.has_geotransform = 1; d.geotransform[1] = NAN;
	check(rfs_tiff_layout(&d, &l) == -EINVAL, "NaN geotransform refused");
	rfs_tiff_layout_free(&l);

	d = ok;
	check(rfs_tiff_layout(&d, &l) == 0, "small layout");
	uint64_t off;
	struct rfs_tiff_stats bs = { 7, 0, 0, 0, 0, 0 };
	unsigned char b4[4];
	check(rfs_tiff_tile_offset(&l, 0, 0, 1, 0, &off) == -EINVAL &&
	      rfs_tiff_tile_offset(&l, 1, 0, 0, 0, &off) == -EINVAL &&
	      rfs_tiff_tile_offset(&l, 0, 1, 0, 0, &off) == -EINVAL &&
	      rfs_tiff_write_tile(-1, &l, 0, 0, 0, -1, px) == -EINVAL,
	      "tile indices out of range refused");
	check(rfs_tiff_set_stats(&l, 1, &bs) == -EINVAL &&
	      rfs_tiff_set_stats(&l, 0, &bs) == -EINVAL,
	      "bad statistics refused");
	check(rfs_tiff_header_read(&l, l.header_size - 2, b4, 4) == -EINVAL &&
	      rfs_tiff_header_read(&l, l.header_size, b4, 0) == 0,
	      "header reads past the header refused");
	check(rfs_tiff_write_tile(-1, &l, 0, 0, 0, 0, px) == -EBADF,
	      "write error reported (%d)", rfs_tiff_write_tile(-1, &l, 0, 0,
							       0, 0, px));

	GDALDatasetH m = GDALCreate(GDALGetDriverByName("MEM"), "", 10, 11, 1,
				    GDT_Float32, NULL);
	check(rfs_tiff_write_from_dataset(m, &l, tmp("x.tif"), NULL, NULL,
					  NULL) == -EINVAL,
	      "a dataset of another size refused");
	GDALClose(m);
	m = GDALCreate(GDALGetDriverByName("MEM"), "", 10, 10, 1, GDT_Float32,
		       NULL);
	check(rfs_tiff_write_from_dataset(m, &l, tmp("x.tif"), NULL,
					  cancel_now, NULL) ==
	      -RFS_E_CANCELLED, "cancelled by progress: RFS-E204");
	check(rfs_tiff_write_from_dataset(m, &l, "/nonexistent/dir/x.tif",
					  NULL, NULL, NULL) == -ENOENT,
	      "unwritable path: ENOENT");
	GDALClose(m);
	unlink(tmp("x.tif"));
	rfs_tiff_layout_free(&l);
}

/* The byte map of a small example, for the reader of the test log. */
static void print_example(void)
{
	GDALDatasetH src = make_source(300, 200, 2, GDT_Int16, G_32610, 1);
	struct tcase c = { .overviews = 1, .stats = S_EXACT };
	struct rfs_tiff_desc d;
	struct rfs_tiff_layout l;
	struct rfs_tiff_item items[4];
	char *bdesc[2];
	struct rfs_tiff_stats st[2];

	snprintf(c.name, sizeof(c.name), "example");
	desc_from(src, &c, &d, bdesc, st, items);
	if (rfs_tiff_layout(&d, &l) == 0) {
		printf("example 300x200x2 Int16 EPSG:32610 nodata overviews: "
		       "%s, IFDs+values [0,%zu), arrays [%" PRIu64 ",%" PRIu64
		       "), header %" PRIu64 "\n", l.bigtiff ? "BigTIFF" :
		       "classic", l.head_len, l.arrays_offset, l.arrays_end,
		       l.header_size);
		for (int k = l.n_levels - 1; k >= 0; k--)
			printf("  level %d %dx%d: %dx%d tiles x %d bands at "
			       "[%" PRIu64 ",%" PRIu64 ")\n", k,
			       l.level[k].width, l.level[k].height,
			       l.level[k].tiles_x, l.level[k].tiles_y, l.bands,
			       l.level[k].offset,
			       l.level[k].offset + l.level[k].bytes);
		printf("  total %" PRIu64 "\n", l.total_size);
	}
	rfs_tiff_layout_free(&l);
	CPLFree(bdesc[0]);
	CPLFree(bdesc[1]);
	GDALClose(src);
}

static int find_data(void)
{
	return check_find_data(datadir, sizeof(datadir));
}

/* Packed layouts: unpacking gives a layout whose every public number and
 * every header byte (IFDs, values, generated tile arrays) are the
 * original's, and which places statistics the same way; a packed layout
 * cut short, grown, or with any single number changed is refused. */
static void pack_case(const struct rfs_tiff_desc *d, uint64_t classic_max,
		      const char *name)
{
	struct rfs_tiff_layout l, u;
	size_t len;
	unsigned char *p;
	int rc = rfs_tiff_layout_limit(d, classic_max, &l);

	check(rc == 0, "pack %s: layout %d", name, rc);
	if (rc) {
		rfs_tiff_layout_free(&l);
		return;
	}
	p = rfs_tiff_layout_pack(&l, &len);
	check(p != NULL, "pack %s", name);
	rc = p ? rfs_tiff_layout_unpack(p, len, &u) : -ENOMEM;
	check(rc == 0, "unpack %s: %d", name, rc);
	if (rc == 0) {
		check(u.bigtiff == l.bigtiff && u.bands == l.bands &&
		      u.type == l.type && u.n_levels == l.n_levels &&
		      u.header_size == l.header_size &&
		      u.total_size == l.total_size &&
		      u.tile_bytes == l.tile_bytes &&
		      u.has_nodata == l.has_nodata &&
		      (u.nodata == l.nodata ||
		       (isnan(u.nodata) && isnan(l.nodata))),
		      "unpack %s: the numbers", name);
		unsigned char *a = malloc(l.header_size);
		unsigned char *b = malloc(l.header_size);
		struct rfs_tiff_stats st = { RFS_TIFF_STATS_EXACT, -1.5, 2e300,
					     0.25, 3, 99.5 };
		if (a && b) {
			rfs_tiff_set_stats(&l, l.bands - 1, &st);
			rfs_tiff_set_stats(&u, u.bands - 1, &st);
			rfs_tiff_header_read(&l, 0, a, l.header_size);
			rfs_tiff_header_read(&u, 0, b, u.header_size);
			check(memcmp(a, b, l.header_size) == 0,
			      "unpack %s: the same %llu header bytes", name,
			      (unsigned long long)l.header_size);
		}
		free(a);
		free(b);
		for (int lv = 0; lv < l.n_levels; lv++) {
			uint64_t o1 = 0, o2 = 1;
			rfs_tiff_tile_offset(&l, lv, l.bands - 1,
					     l.level[lv].tiles_x - 1,
					     l.level[lv].tiles_y - 1, &o1);
			rfs_tiff_tile_offset(&u, lv, u.bands - 1,
					     u.level[lv].tiles_x - 1,
					     u.level[lv].tiles_y - 1, &o2);
			check(o1 == o2, "unpack %s: level %d tiles", name, lv);
		}
	}
	rfs_tiff_layout_free(&u);
	if (p) {
		struct rfs_tiff_layout x;
		check(rfs_tiff_layout_unpack(p, len - 1, &x) == -EINVAL,
		      "unpack %s: cut short", name);
		rfs_tiff_layout_free(&x);
		unsigned char *q = malloc(len + 1);
		memcpy(q, p, len);
		q[len] = 0;
		check(rfs_tiff_layout_unpack(q, len + 1, &x) == -EINVAL,
		      "unpack %s: a byte too many", name);
		rfs_tiff_layout_free(&x);
		/* every number of the fixed part and of the levels */
		size_t nums = 8 + 6 * 4 + 8 + 6 * 8 +
			      (size_t)l.n_levels * 48;
		int refused = 0, tried = 0;
		for (size_t off = 0; off < nums; off++) {
			if (off >= 32 && off < 40)
				continue; /* the nodata value: any double */
			memcpy(q, p, len);
			q[off] ^= 0x10;
			tried++;
			int r = rfs_tiff_layout_unpack(q, len, &x) != 0;
			if (!r)
				printf("  accepted change at byte %zu\n", off);
			refused += r;
			rfs_tiff_layout_free(&x);
		}
		check(refused == tried, "unpack %s: %d of %d changed bytes "
		      "refused", name, refused, tried);
		free(q);
	}
	free(p);
	rfs_tiff_layout_free(&l);
}

static void test_pack(void)
{
	static const struct rfs_tiff_item items[] = {
		{ "RASTERFS_SOURCE", "sub/d\xc3\xa9m <&> .tif" },
		{ "RASTERFS_CHAIN", "@focal=3,mean,square" },
	};
	static const char *const descs[] = { "a", "focal of b", "" };
	const double gt[6] = { 500000, 30, 0, 4200000, 0, -30 };
	struct rfs_tiff_desc d = {
		.width = 1000, .height = 700, .bands = 3, .type = GDT_Int16,
		.has_geotransform = 1, .srs_wkt = "EPSG:32633",
		.has_nodata = 1, .nodata = -32768, .items = items,
		.n_items = 2, .band_desc = descs,
	};

	memcpy(d.geotransform, gt, sizeof(gt));
	pack_case(&d, RFS_TIFF_CLASSIC_MAX, "Int16 1000x700x3");
	d.overviews = 1;
	pack_case(&d, RFS_TIFF_CLASSIC_MAX, "Int16 1000x700x3 overviews");
	pack_case(&d, 0, "Int16 1000x700x3 overviews BigTIFF");
	d.bands = 1;
	d.width = d.height = 1;
	d.type = GDT_Float64;
	d.nodata = NAN;
	d.srs_wkt = NULL;
	pack_case(&d, RFS_TIFF_CLASSIC_MAX, "Float64 1x1 NaN nodata");
}

int main(void)
{
	GDALAllRegister();
	if (find_data() < 0) {
		printf("FAIL: tests/data not found (set RASTERFS_TEST_DATA)\n");
		return 1;
	}
	if (system("command -v tiffinfo >/dev/null && "
		   "command -v tiffdump >/dev/null && "
		   "command -v tiffcp >/dev/null") != 0) {
		printf("FAIL: libtiff-tools missing (scripts/setup.sh)\n");
		return 1;
	}
	if (!mkdtemp(tmpdir)) {
		perror("mkdtemp");
		return 1;
	}
	print_example();
	test_errors();
	test_matrix();
	test_real();
	test_threshold();
	test_pack();

	char cmd[600];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
	if (system(cmd) != 0)
		printf("could not remove %s\n", tmpdir);
	return check_report();
}
