/* op_format.c - the output formats other than the default GeoTIFF.
 *
 * Both start from the chain's last dataset, which already carries its band
 * statistics (STATISTICS_* metadata, set by ops.c).
 *
 * fmt=cog: GDAL's COG driver (GDALCreateCopy) with its creation options
 * written out, so a later GDAL with other defaults keeps a key meaning the
 * same bytes.  The driver copies band metadata, so the statistics land in
 * the COG's GDAL_METADATA tag.
 *
 * fmt=png: an 8-bit quicklook.  Bands 1-3 of a multiband raster become RGB,
 * anything else band 1 grey.  Each band is stretched on its own: [lo, hi]
 * to 0..255, lo/hi the band's minimum/maximum (minmax) or its 2nd/98th
 * percentile (p2, from a 65536-bin histogram between minimum and maximum:
 * within (max - min) / 65536 of the exact percentile).  Values outside
 * [lo, hi] are clamped.  If a used band has a nodata value, an alpha band
 * is added: 0 where any used band is nodata (or not finite), else 255; a
 * cell that is not finite without a nodata value becomes 0.  The bytes go
 * to a scratch GTiff in row strips (memory bounded), then GDAL's PNG
 * driver copies that into the output, with the text of its two sidecars
 * inside it (worldfile.h), where the FUSE layer reads them to serve X.pgw
 * and X.aux.xml: the world file, and a GDAL PAM document holding the CRS
 * (as GDAL's own PAM writes it: WKT1, else WKT2, with the data axis to
 * CRS axis mapping), the geotransform and each band's statistics.  The
 * statistics are those of the bytes written, over every cell (what GDAL
 * 3.6 computes on the PNG, which has no nodata value: the alpha band is
 * no mask to it), counted while the strips are written, so a viewer
 * finds them instead of reading the whole PNG and trying to save them.
 *
 * The format is not a step (no row in the step table: it changes no grid
 * and ends the chain), but its grammar lives here with its writers:
 * fmt=gtiff|cog|png[,STRETCH], parsed by rfs_fmt_parse for chain.c.
 */
#include <errno.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cpl_error.h>
#include <cpl_minixml.h>
#include <cpl_string.h>
#include <gdal.h>
#include <ogr_srs_api.h>

#include "lex.h"
#include "ops_int.h"
#include "steps_int.h"
#include "rasterfs/err.h"
#include "rasterfs/number.h"
#include "rasterfs/worldfile.h"

/* ------------------------------------------------------------------ */
/* Grammar (pure): fmt=gtiff|cog|png[,STRETCH] (chain.c, design note 5) */

static const char *const format_names[] = {
	[RFS_FMT_GTIFF] = "gtiff",
	[RFS_FMT_COG] = "cog",
	[RFS_FMT_PNG] = "png",
};

static const char *const stretch_names[] = {
	[RFS_STRETCH_MINMAX] = "minmax",
	[RFS_STRETCH_P2] = "p2",
};

#define N_FORMATS ((int)(sizeof(format_names) / sizeof(format_names[0])))
#define N_STRETCHES ((int)(sizeof(stretch_names) / sizeof(stretch_names[0])))
#define FMT_USAGE "fmt=gtiff|cog|png[,STRETCH] as the last step (STRETCH " \
	"for png: minmax or p2), e.g. fmt=cog or fmt=png,p2"

const char rfs_fmt_usage[] = FMT_USAGE;

const char *rfs_format_name(enum rfs_format f)
{
	return (unsigned)f < N_FORMATS ? format_names[f] : "?";
}

const char *rfs_stretch_name(enum rfs_stretch s)
{
	return (unsigned)s < N_STRETCHES ? stretch_names[s] : "?";
}

static int fmt_bad_word(struct rfs_pctx *c, struct rfs_tok t)
{
	static const char *const words[] = {
		"gtiff", "cog", "png", "minmax", "p2",
	};
	const char *s = rfs_tok_suggest(t, words, 5);

	if (s)
		return rfs_lex_fail(c, -RFS_E_BAD_ARG,
			    "fmt: '" TOKF "' is not a format "
			    "or stretch; did you mean '%s'? " FMT_USAGE,
			    TOKA(t), s);
	return rfs_lex_fail(c, -RFS_E_BAD_ARG,
			    "fmt: '" TOKF "' is not a format or "
		    "stretch: " FMT_USAGE, TOKA(t));
}

int rfs_fmt_parse(struct rfs_pctx *c, const struct rfs_tok *args,
		  struct rfs_chain *out)
{
	const struct rfs_tok argtext = *args;
	static const char *const keys[] = { "format", "stretch" };
	struct rfs_args it = { argtext, false };
	struct rfs_arg a;
	bool have_fmt = false, have_stretch = false;
	int i, rc;

	out->format = RFS_FMT_GTIFF;
	out->stretch = RFS_STRETCH_MINMAX;
	while (rfs_args_next(&it, &a)) {
		rc = rfs_arg_check(c, "fmt", &a);
		if (rc)
			return rc;
		if (a.has_key && !rfs_tok_is(a.key, "format") &&
		    !rfs_tok_is(a.key, "stretch"))
			return rfs_lex_unknown_option(c, "fmt", &a, keys, 2,
					      "format=, stretch=");
		if ((!a.has_key || rfs_tok_is(a.key, "format")) &&
		    (i = rfs_tok_find(a.val, format_names, N_FORMATS)) >= 0) {
			if (have_fmt)
				return rfs_lex_twice(c, "fmt", "format", &a);
			have_fmt = true;
			out->format = (enum rfs_format)i;
		} else if ((!a.has_key || rfs_tok_is(a.key, "stretch")) &&
			   (i = rfs_tok_find(a.val, stretch_names,
					 N_STRETCHES)) >= 0) {
			if (have_stretch)
				return rfs_lex_twice(c, "fmt", "stretch", &a);
			have_stretch = true;
			out->stretch = (enum rfs_stretch)i;
		} else {
			return fmt_bad_word(c, a.val);
		}
	}
	if (!have_fmt)
		return rfs_lex_fail(c, -RFS_E_BAD_ARG,
			    "fmt: a format is required: " FMT_USAGE);
	if (have_stretch && out->format != RFS_FMT_PNG)
		return rfs_lex_fail(c, -RFS_E_BAD_ARG,
			    "fmt: a stretch applies to png only, not %s (try "
			    "fmt=png,%s)", format_names[out->format],
			    stretch_names[out->stretch]);
	return 0;
}


/* ------------------------------------------------------------------ */
/* Writers */

#define STRIP_BYTES (8 << 20) /* per strip buffer, as doubles */
#define HIST_BINS 65536

static const char *const cog_options[] = {
	"COMPRESS=DEFLATE", "LEVEL=6", "PREDICTOR=NO", "BLOCKSIZE=512",
	"OVERVIEWS=AUTO", "OVERVIEW_RESAMPLING=AVERAGE",
	"OVERVIEW_COMPRESS=DEFLATE", "BIGTIFF=IF_SAFER", "NUM_THREADS=1",
	"SPARSE_OK=FALSE", NULL,
};

int rfs_ops_write_cog(GDALDatasetH cur, const struct rfs_op_ctx *ctx)
{
	GDALDriverH drv = GDALGetDriverByName("COG");
	GDALDatasetH out;

	CPLErrorReset();
	errno = 0;
	if (!drv) {
		snprintf(ctx->msg, ctx->msglen,
			 "fmt=cog: this GDAL has no COG driver");
		return -RFS_E_PROCESS;
	}
	out = GDALCreateCopy(drv, ctx->dst_path, cur, FALSE,
			     (char **)cog_options, ctx->progress,
			     ctx->progress_arg);
	if (!out)
		return rfs_gdal_error("fmt=cog", ctx->msg, ctx->msglen);
	CPLErrorReset();
	GDALClose(out);
	if (CPLGetLastErrorType() >= CE_Failure)
		return rfs_gdal_error("fmt=cog", ctx->msg, ctx->msglen);
	return 0;
}

/* --- png --------------------------------------------------------------- */

struct pband {
	GDALRasterBandH b;
	double nd;      /* nodata, or NaN if none (NaN never compares equal) */
	double lo, hi;  /* the stretch */
};

static int valid(double v, double nd)
{
	return isfinite(v) && v != nd;
}

/* The band's statistics as ops.c wrote them. */
static int band_minmax(GDALRasterBandH b, double *lo, double *hi)
{
	const char *a = GDALGetMetadataItem(b, "STATISTICS_MINIMUM", NULL);
	const char *z = GDALGetMetadataItem(b, "STATISTICS_MAXIMUM", NULL);

	if (!a || !z)
		return -1; /* no valid cell at all */
	*lo = strtod(a, NULL);
	*hi = strtod(z, NULL);
	return 0;
}

struct hist_pass {
	const struct pband *pb;
	double lo, w;
	uint64_t *hist, n;
};

static int hist_strip(void *arg, int y, int nrows, size_t n,
		      double *const *in, void *const *out, char *msg,
		      size_t msglen)
{
	struct hist_pass *h = arg;

	(void)y, (void)nrows, (void)out, (void)msg, (void)msglen;
	for (size_t k = 0; k < n; k++) {
		if (!valid(in[0][k], h->pb->nd))
			continue;
		long bin = (long)((in[0][k] - h->lo) / h->w);
		h->hist[bin < 0 ? 0 : bin >= HIST_BINS ? HIST_BINS - 1 : bin]++;
		h->n++;
	}
	return 0;
}

/* p2: the 2nd and 98th percentiles of the valid cells, from a histogram
 * over [lo, hi] (see the file's comment). */
static int percentiles(struct pband *pb, int W, int H,
		       const struct rfs_op_ctx *ctx)
{
	const double lo = pb->lo, hi = pb->hi, w = (hi - lo) / HIST_BINS;
	struct hist_pass hp = {
		.pb = pb, .lo = lo, .w = w,
		.hist = calloc(HIST_BINS, sizeof(*hp.hist)),
	};
	struct rfs_strips s = {
		.W = W,
		.H = H,
		.rows = rfs_gdal_strip_rows(W, sizeof(double), STRIP_BYTES),
		.nin = 1,
		.in = { pb->b },
		.map = hist_strip,
		.arg = &hp,
		.what = "fmt=png",
	};
	uint64_t c;
	int rc = 0, i;

	if (!hp.hist) {
		snprintf(ctx->msg, ctx->msglen, "fmt=png: out of memory");
		return -RFS_E_NOMEM;
	}
	if (!(hi > lo))
		goto out;
	if ((rc = rfs_gdal_strips(&s, ctx->msg, ctx->msglen)) < 0 ||
	    hp.n == 0)
		goto out;
	/* the lower edge of the bin reaching 2 %, the upper edge of the
	 * bin reaching 98 % */
	for (i = 0, c = 0; i < HIST_BINS && (c += hp.hist[i]) < 0.02 * hp.n;
	     i++)
		;
	pb->lo = lo + i * w;
	for (i = 0, c = 0; i < HIST_BINS && (c += hp.hist[i]) < 0.98 * hp.n;
	     i++)
		;
	pb->hi = i + 1 >= HIST_BINS ? hi : lo + (i + 1) * w;
out:
	free(hp.hist);
	return rc;
}

static unsigned char stretch(double v, const struct pband *pb)
{
	double t;

	if (!isfinite(v) || !(pb->hi > pb->lo))
		return 0;
	t = (v - pb->lo) / (pb->hi - pb->lo);
	t = t < 0 ? 0 : t > 1 ? 1 : t;
	return (unsigned char)lround(t * 255);
}

/* The statistics of one output band's bytes, as GDAL computes them on
 * the PNG: every cell counts (see the file's comment). */
struct bstats {
	uint64_t n, sum, sum2;
	unsigned char lo, hi;
};

static void bstats_add(struct bstats *s, const unsigned char *v, size_t n)
{
	for (size_t k = 0; k < n; k++) {
		s->sum += v[k];
		s->sum2 += (uint64_t)v[k] * v[k];
		if (v[k] < s->lo)
			s->lo = v[k];
		if (v[k] > s->hi)
			s->hi = v[k];
	}
	s->n += n;
}

struct png_pass {
	const struct pband *pb;
	int nb, alpha;
	struct bstats st[4]; /* per output band */
};

/* Each used band stretched to a byte, and the alpha band (see the file's
 * comment). */
static int png_strip(void *arg, int y, int nrows, size_t n,
		     double *const *in, void *const *out, char *msg,
		     size_t msglen)
{
	struct png_pass *p = arg;

	(void)y, (void)nrows, (void)msg, (void)msglen;
	for (size_t k = 0; k < n; k++) {
		int ok = 1;
		for (int i = 0; i < p->nb; i++) {
			const double v = in[i][k];
			ok &= valid(v, p->pb[i].nd);
			((unsigned char *)out[i])[k] = stretch(v, &p->pb[i]);
		}
		if (p->alpha)
			((unsigned char *)out[p->nb])[k] = ok ? 255 : 0;
	}
	for (int i = 0; i < p->nb + p->alpha; i++)
		bstats_add(&p->st[i], out[i], n);
	return 0;
}

static void add_mdi(CPLXMLNode *md, const char *key, double v)
{
	char num[64];
	CPLXMLNode *mdi = CPLCreateXMLElementAndValue(
		md, "MDI", rfs_format_double(v, num, sizeof(num)) < 0 ? "" :
		num);

	CPLAddXMLAttributeAndValue(mdi, "key", key);
}

/* The CRS as GDAL's PAM writes it (gdalpamdataset.cpp, SerializeToXML):
 * WKT1, or WKT2 where WKT1 cannot say it, with the axis mapping and the
 * coordinate epoch as attributes. */
static void add_srs(CPLXMLNode *root, OGRSpatialReferenceH srs)
{
	static const char *const wkt2[] = { "FORMAT=WKT2", NULL };
	char *wkt = NULL, num[64], map[64] = "";
	const int *m;
	int nm = 0;
	size_t ml = 0;
	double epoch;
	CPLXMLNode *node;

	CPLPushErrorHandler(CPLQuietErrorHandler);
	if (OSRExportToWkt(srs, &wkt) != OGRERR_NONE) {
		CPLFree(wkt);
		wkt = NULL;
		if (OSRExportToWktEx(srs, &wkt, wkt2) != OGRERR_NONE) {
			CPLFree(wkt);
			wkt = NULL;
		}
	}
	CPLPopErrorHandler();
	CPLErrorReset();
	if (!wkt || !*wkt)
		goto out;
	node = CPLCreateXMLElementAndValue(root, "SRS", wkt);
	m = OSRGetDataAxisToSRSAxisMapping(srs, &nm);
	for (int i = 0; i < nm && ml < sizeof(map); i++)
		ml += (size_t)snprintf(map + ml, sizeof(map) - ml, "%s%d",
				       i ? "," : "", m[i]);
	if (nm > 0 && ml < sizeof(map))
		CPLAddXMLAttributeAndValue(node, "dataAxisToSRSAxisMapping",
					   map);
	epoch = OSRGetCoordinateEpoch(srs);
	if (epoch > 0 && rfs_format_double(epoch, num, sizeof(num)) > 0)
		CPLAddXMLAttributeAndValue(node, "coordinateEpoch", num);
out:
	CPLFree(wkt);
}

/* The PAM document of the png (see the file's comment), serialised by
 * GDAL's XML writer: NULL if out of memory. */
static char *png_aux_xml(GDALDatasetH cur, const struct png_pass *p)
{
	CPLXMLNode *root = CPLCreateXMLNode(NULL, CXT_Element, "PAMDataset");
	OGRSpatialReferenceH srs = GDALGetSpatialRef(cur);
	double gt[6];
	char *text;

	if (srs)
		add_srs(root, srs);
	if (GDALGetGeoTransform(cur, gt) == CE_None) {
		char v[6][64];
		for (int i = 0; i < 6; i++)
			if (rfs_format_double(gt[i], v[i], sizeof(v[i])) < 0)
				v[i][0] = '\0';
		char *s = CPLStrdup(CPLSPrintf("%s,%s,%s,%s,%s,%s", v[0], v[1],
					       v[2], v[3], v[4], v[5]));
		CPLCreateXMLElementAndValue(root, "GeoTransform", s);
		CPLFree(s);
	}
	for (int i = 0; i < p->nb + p->alpha; i++) {
		const struct bstats *s = &p->st[i];
		CPLXMLNode *band = CPLCreateXMLNode(root, CXT_Element,
						    "PAMRasterBand");
		CPLXMLNode *md;
		double mean, var;

		if (s->n == 0)
			continue;
		/* exact sums; the variance from them in 128 bits */
		mean = (double)s->sum / (double)s->n;
		var = (double)((unsigned __int128)s->sum2 * s->n -
			       (unsigned __int128)s->sum * s->sum) /
		      ((double)s->n * (double)s->n);
		CPLAddXMLAttributeAndValue(band, "band",
					   CPLSPrintf("%d", i + 1));
		md = CPLCreateXMLNode(band, CXT_Element, "Metadata");
		add_mdi(md, "STATISTICS_MAXIMUM", s->hi);
		add_mdi(md, "STATISTICS_MEAN", mean);
		add_mdi(md, "STATISTICS_MINIMUM", s->lo);
		add_mdi(md, "STATISTICS_STDDEV", sqrt(var));
		add_mdi(md, "STATISTICS_VALID_PERCENT", 100);
	}
	text = CPLSerializeXMLTree(root);
	CPLDestroyXMLNode(root);
	return text;
}

int rfs_ops_write_png(GDALDatasetH cur, enum rfs_stretch how,
		      const char *byte_path, const struct rfs_op_ctx *ctx)
{
	const int W = GDALGetRasterXSize(cur), H = GDALGetRasterYSize(cur);
	const int nb = GDALGetRasterCount(cur) >= 3 ? 3 : 1;
	struct pband pb[3];
	struct png_pass pp = { .pb = pb, .nb = nb };
	struct rfs_strips s;
	int rc = 0;
	double gt[6];
	GDALDatasetH tmp = NULL, png = NULL;
	GDALDriverH gtiff = GDALGetDriverByName("GTiff");
	GDALDriverH pngdrv = GDALGetDriverByName("PNG");
	char world[RFS_WORLDFILE_MAX];
	char **co = NULL, *aux = NULL;

	for (int i = 0; i < 4; i++)
		pp.st[i].lo = 255; /* the minimum of none yet */
	for (int i = 0; i < nb; i++) {
		int has = 0;
		pb[i].b = GDALGetRasterBand(cur, i + 1);
		pb[i].nd = GDALGetRasterNoDataValue(pb[i].b, &has);
		if (!has)
			pb[i].nd = NAN;
		pp.alpha |= has;
		if (band_minmax(pb[i].b, &pb[i].lo, &pb[i].hi) < 0)
			pb[i].lo = pb[i].hi = 0;
		if (how == RFS_STRETCH_P2 &&
		    (rc = percentiles(&pb[i], W, H, ctx)) < 0)
			goto out;
	}

	CPLErrorReset();
	errno = 0;
	tmp = gtiff ? GDALCreate(gtiff, byte_path, W, H, nb + pp.alpha,
				 GDT_Byte,
				 (char **)rfs_gdal_gtiff_options) : NULL;
	if (!tmp) {
		rc = rfs_gdal_error("fmt=png", ctx->msg, ctx->msglen);
		goto out;
	}
	if (pp.alpha)
		GDALSetRasterColorInterpretation(GDALGetRasterBand(tmp, nb + 1),
						 GCI_AlphaBand);
	s = (struct rfs_strips){
		.W = W,
		.H = H,
		.rows = rfs_gdal_strip_rows(W, nb * sizeof(double),
					    STRIP_BYTES),
		.nin = nb,
		.nout = nb + pp.alpha,
		.out_type = GDT_Byte,
		.map = png_strip,
		.arg = &pp,
		.progress = ctx->progress,
		.progress_arg = ctx->progress_arg,
		.scale = 0.8, /* the PNG driver's copy is the rest */
		.what = "fmt=png",
	};
	for (int i = 0; i < nb; i++)
		s.in[i] = pb[i].b;
	for (int i = 0; i < nb + pp.alpha; i++)
		s.out[i] = GDALGetRasterBand(tmp, i + 1);
	if ((rc = rfs_gdal_strips(&s, ctx->msg, ctx->msglen)) < 0)
		goto out;
	if (GDALGetGeoTransform(cur, gt) == CE_None &&
	    rfs_worldfile_format(gt, world, sizeof(world)) == 0)
		GDALSetMetadataItem(tmp, RFS_WORLDFILE_KEY, world, NULL);
	if (!(aux = png_aux_xml(cur, &pp))) {
		snprintf(ctx->msg, ctx->msglen, "fmt=png: out of memory");
		rc = -RFS_E_NOMEM;
		goto out;
	}
	if (strlen(aux) <= RFS_PNG_TEXT_MAX)
		GDALSetMetadataItem(tmp, RFS_PNG_AUX_KEY, aux, NULL);

	co = CSLAddString(co, "ZLEVEL=6");
	co = CSLAddString(co, "WORLDFILE=NO");
	co = CSLAddString(co, "WRITE_METADATA_AS_TEXT=YES");
	CPLErrorReset();
	png = pngdrv ? GDALCreateCopy(pngdrv, ctx->dst_path, tmp, FALSE, co,
				      NULL, NULL) : NULL;
	if (!png) {
		rc = rfs_gdal_error("fmt=png", ctx->msg, ctx->msglen);
		goto out;
	}
	CPLErrorReset();
	GDALClose(png);
	if (CPLGetLastErrorType() >= CE_Failure)
		rc = rfs_gdal_error("fmt=png", ctx->msg, ctx->msglen);
out:
	if (tmp)
		GDALClose(tmp);
	unlink(byte_path);
	CSLDestroy(co);
	CPLFree(aux);
	return rc;
}
