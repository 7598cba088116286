/* test_steps.c - the step table, and describe against real runs.
 *
 * Table: every enum rfs_op value has a row at its index, names are unique
 * and found again by name, every example parses to itself, the flags the
 * FUSE layer and the pool read answer as the rows say.
 *
 * describe: for every step (and chains of 2 to 4 steps) on the real
 * rasters of tests/data, the grid rfs_describe_chain predicts from the
 * source's header equals what rfs_ops_run writes, read back with GDAL:
 * size, geotransform (1e-9 relative), CRS (OSRIsSame), band count, each
 * band's type and nodata; also on a VRT whose bands differ in type and
 * nodata, of which a GeoTIFF keeps one.  A step that cannot run (a band that does not
 * exist, a clip outside the raster) must fail in describe too.  Then the
 * limits: outputs beyond max_pixels or GDAL's int sizes are refused with a
 * message naming the step and the grid.
 */
#include <errno.h>
#include <libgen.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cpl_conv.h>
#include <gdal.h>
#include <ogr_srs_api.h>

#include "rasterfs/chain.h"
#include "rasterfs/describe.h"
#include "rasterfs/err.h"
#include "rasterfs/ops.h"
#include "rasterfs/output.h"
#include "rasterfs/step.h"

#include "check.h"

static int runs;
static char tmpdir[] = "/tmp/rfs-test-steps-XXXXXX";
static char scratch[256];
static char datadir[1024];

static int find_data(void)
{
	return check_find_data(datadir, sizeof(datadir));
}

/* ------------------------------------------------------------------ */
/* The table */

static void test_table(void)
{
	struct rfs_chain chain;
	char msg[RFS_MSG_MAX], text[RFS_CHAIN_TEXT_MAX], want[256];

	for (int i = 0; i < RFS_OP_COUNT; i++) {
		const struct rfs_step_desc *d = rfs_step_desc((enum rfs_op)i);

		check(d && d == &rfs_steps[i] && d->name && (int)d->op == i,
		      "row %d is there, at its op's index", i);
		if (!d || !d->name)
			continue;
		check(d->parse && d->write && d->engine && d->summary &&
		      d->usage && d->args && d->example,
		      "%s: every field filled", d->name);
		check(strcmp(rfs_op_name(d->op), d->name) == 0,
		      "%s: rfs_op_name", d->name);
		for (int j = 0; j < i; j++)
			check(strcmp(rfs_steps[j].name, d->name) != 0,
			      "%s: name unique", d->name);
		check(rfs_step_find(d->name, strlen(d->name)) == d,
		      "%s: found by name", d->name);
		/* the example is canonical: it parses to itself */
		snprintf(want, sizeof(want), "@%s", d->example);
		int rc = rfs_chain_parse(d->example, &chain, msg, sizeof(msg));
		check(rc == 0 && chain.nsteps == 1 &&
		      chain.steps[0].op == d->op &&
		      strcmp(chain.canonical, want) == 0,
		      "%s: example '%s' parses to itself (rc %d, '%s', %s)",
		      d->name, d->example, rc, chain.canonical, msg);
		rc = rfs_step_canonical(&chain.steps[0], text, sizeof(text));
		check(rc > 0 && strcmp(text, d->example) == 0,
		      "%s: rfs_step_canonical '%s'", d->name, text);
		check(rfs_step_canonical(&chain.steps[0], text, 3) == -1,
		      "%s: canonical text too long for 3 bytes", d->name);
		/* a bare name is a step exactly when the row says so */
		rc = rfs_chain_parse(d->name, &chain, msg, sizeof(msg));
		check((rc == 0) == !!(d->flags & RFS_STEP_BARE),
		      "%s: bare name rc %d (%s)", d->name, rc, msg);
		if (d->flags & RFS_STEP_NOARGS)
			check(d->flags & RFS_STEP_BARE, "%s: NOARGS is BARE",
			      d->name);
		if (!(d->flags & RFS_STEP_BARE))
			check(strstr(msg, d->usage) != NULL,
			      "%s: the usage is in the message: %s", d->name,
			      msg);
		int n = 0;
		for (const struct rfs_step_arg *a = d->args; a->name; a++)
			n++;
		check((n == 0) == !!(d->flags & RFS_STEP_NOARGS),
		      "%s: arguments listed unless it takes none", d->name);
		/* CRS flag: where the CRS lies in the struct */
		if (d->flags & RFS_STEP_CRS)
			check(d->crs_at >= offsetof(struct rfs_step, u) &&
			      d->crs_at < sizeof(struct rfs_step),
			      "%s: crs_at inside the step", d->name);
	}
	check(rfs_step_desc(RFS_OP_COUNT) == NULL &&
	      rfs_step_find("fmt", 3) == NULL &&
	      rfs_step_find("PROJ", 4) == &rfs_steps[RFS_OP_PROJ] &&
	      rfs_step_find("proj", 3) == NULL,
	      "lookups outside the table");

	/* the FUSE layer's question: which CRS a step names */
	rfs_chain_parse("proj=epsg:3857@clip=0,0,1,1@clip=0,0,1,1,ESRI:54009"
			"@focal=3", &chain, msg, sizeof(msg));
	check(chain.nsteps == 4 &&
	      strcmp(rfs_step_crs(&chain.steps[0]), "EPSG:3857") == 0 &&
	      rfs_step_crs(&chain.steps[1]) == NULL &&
	      strcmp(rfs_step_crs(&chain.steps[2]), "ESRI:54009") == 0 &&
	      rfs_step_crs(&chain.steps[3]) == NULL, "rfs_step_crs");
	/* the pool's question: does the chain start with a warp */
	check(rfs_step_first_has("@proj=EPSG:3857,near@focal=3,mean,square",
				 RFS_STEP_WARP) &&
	      rfs_step_first_has("@res=30,near@slope=degrees",
				 RFS_STEP_WARP) &&
	      rfs_step_first_has("@size=5,5,near", RFS_STEP_WARP) &&
	      !rfs_step_first_has("@focal=3,mean,square@proj=EPSG:3857,near",
				  RFS_STEP_WARP) &&
	      !rfs_step_first_has("@clip=0,0,1,1", RFS_STEP_WARP) &&
	      !rfs_step_first_has("@aspect@res=3,near", RFS_STEP_WARP) &&
	      !rfs_step_first_has("@fmt=png,minmax", RFS_STEP_WARP) &&
	      !rfs_step_first_has("", RFS_STEP_WARP),
	      "rfs_step_first_has");
}

/* ------------------------------------------------------------------ */
/* The completion words (rfs_steps_complete), against the grammar */

/* Arguments that put a word where the row says it goes: the required
 * arguments before it (fmt's stretch needs png). */
static const char *const *word_prefixes(const char *step)
{
	static const struct {
		const char *step;
		const char *pre[3];
	} ctx[] = {
		{ "proj", { "EPSG:3857,", NULL } },
		{ "focal", { "3,", NULL } },
		{ "reclass", { "0:1:1,", NULL } },
		{ "res", { "30,", NULL } },
		{ "size", { "8,8,", NULL } },
		{ "clip", { "0,0,1,1,", NULL } },
		{ "fmt", { "", "png,", NULL } },
	};
	static const char *const none[] = { "", NULL };

	for (size_t i = 0; i < sizeof(ctx) / sizeof(ctx[0]); i++)
		if (strcmp(ctx[i].step, step) == 0)
			return ctx[i].pre;
	return none;
}

/* Does "step=PRE TEXT" parse, for one of the step's prefixes, to a
 * canonical chain that holds want (case-insensitive)? */
static bool word_parses(const char *step, const char *text, const char *want)
{
	const char *const *pre = word_prefixes(step);
	struct rfs_chain chain;
	char name[256], msg[RFS_MSG_MAX];

	for (; *pre; pre++) {
		snprintf(name, sizeof(name), "%s=%s%s", step, *pre, text);
		if (rfs_chain_parse(name, &chain, msg, sizeof(msg)) == 0 &&
		    strcasestr(chain.canonical, want))
			return true;
	}
	return false;
}

static void test_words(void)
{
	char *text = NULL, *save = NULL, msg[RFS_MSG_MAX], name[256];
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);
	struct rfs_chain chain;
	int nsteps = 0, nwords = 0, nkeys = 0;

	rfs_steps_complete(f);
	fclose(f);
	for (char *line = strtok_r(text, "\n", &save); line;
	     line = strtok_r(NULL, "\n", &save)) {
		char tag[4], step[32], rest[1024] = "", *w, *ws = NULL;
		int n = sscanf(line, "%3s %31s %1023[^\n]", tag, step, rest);
		check(n >= 2, "line '%s'", line);
		const struct rfs_step_desc *d = rfs_step_find(step,
							      strlen(step));
		check(d || strcmp(step, "fmt") == 0, "%s: a step", step);
		if (strcmp(tag, "S") == 0) {
			nsteps++;
			/* each form: a bare name parses alone, "name=" leads
			 * to arguments */
			for (w = strtok_r(rest, " ", &ws); w;
			     w = strtok_r(NULL, " ", &ws)) {
				size_t l = strlen(w);
				if (w[l - 1] == '=')
					check(strncmp(w, step, l - 1) == 0 &&
					      l - 1 == strlen(step) &&
					      (!d || !(d->flags &
						       RFS_STEP_NOARGS)),
					      "%s: form %s", step, w);
				else
					check(d && strcmp(w, step) == 0 &&
					      rfs_chain_parse(w, &chain, msg,
							      sizeof(msg)) == 0,
					      "%s: bare form %s (%s)", step, w,
					      msg);
			}
		} else if (strcmp(tag, "P") == 0) {
			for (w = strtok_r(rest, " ", &ws); w;
			     w = strtok_r(NULL, " ", &ws), nwords++)
				check(word_parses(step, w, w),
				      "%s: positional word %s parses", step, w);
		} else if (strcmp(tag, "K") == 0) {
			char key[32], kv[128];
			nkeys++;
			w = strtok_r(rest, " ", &ws);
			snprintf(key, sizeof(key), "%s", w ? w : "");
			check(key[0] != '\0', "%s: K line with a key", step);
			/* the parser knows the key: a bad value is not an
			 * unknown option */
			const char *const *pre = word_prefixes(step);
			snprintf(name, sizeof(name), "%s=%s%s=zz9", step, pre[0],
				 key);
			rfs_chain_parse(name, &chain, msg, sizeof(msg));
			check(!strstr(msg, "unknown option"),
			      "%s: key %s= is known (%s)", step, key, msg);
			while ((w = strtok_r(NULL, " ", &ws)) != NULL) {
				snprintf(kv, sizeof(kv), "%s=%s", key, w);
				nwords++;
				check(word_parses(step, kv, w),
				      "%s: %s parses", step, kv);
			}
		} else {
			check(0, "unknown tag in '%s'", line);
		}
	}
	check(nsteps == RFS_OP_COUNT + 1, "an S line per step and fmt: %d",
	      nsteps);
	check(nwords > 40 && nkeys > 10, "words %d, keys %d", nwords, nkeys);

	/* and the other way: every key a parser lists in its "Options:"
	 * message is on a K line of its step */
	free(text);
	f = open_memstream(&text, &len);
	rfs_steps_complete(f);
	fclose(f);
	for (int i = 0; i <= RFS_OP_COUNT; i++) {
		const char *step = i < RFS_OP_COUNT ? rfs_steps[i].name : "fmt";
		const char *o;
		snprintf(name, sizeof(name), "%s=%szqx=1", step,
			 word_prefixes(step)[0]);
		rfs_chain_parse(name, &chain, msg, sizeof(msg));
		if (!(o = strstr(msg, "Options: "))) {
			char k[64];
			snprintf(k, sizeof(k), "\nK %s ", step);
			check(!strstr(text, k), "%s: keys listed, none parsed "
			      "(%s)", step, msg);
			continue;
		}
		for (o += strlen("Options: "); *o;) {
			size_t n = strcspn(o, "=");
			char k[96];
			if (!o[n])
				break;
			snprintf(k, sizeof(k), "\nK %s %.*s", step, (int)n, o);
			size_t kl = strlen(k);
			const char *at = strstr(text, k);
			check(at && (at[kl] == ' ' || at[kl] == '\n'),
			      "%s: the parser's key %.*s= is on a K line", step,
			      (int)n, o);
			o += n + 1;
			o += strspn(o, ", ");
		}
	}
	free(text);
}

/* ------------------------------------------------------------------ */
/* describe against run */

static int close_rel(double a, double b)
{
	return a == b || fabs(a - b) <= 1e-9 * fmax(fabs(a), fabs(b));
}

static int same_value(double a, double b)
{
	return a == b || (isnan(a) && isnan(b));
}

/* Compare the prediction p with the file at path; report as what. */
static void compare(const struct rfs_grid *p, const char *path,
		    const char *what)
{
	GDALDatasetH ds = GDALOpen(path, GA_ReadOnly);
	struct rfs_grid g;

	check(ds != NULL, "%s: output opens", what);
	if (!ds)
		return;
	rfs_grid_from_dataset(ds, &g);
	GDALClose(ds);
	check(p->width == g.width && p->height == g.height,
	      "%s: size %lld x %lld predicted, %lld x %lld made", what,
	      p->width, p->height, g.width, g.height);
	int gt_ok = p->has_gt == g.has_gt;
	for (int i = 0; gt_ok && g.has_gt && i < 6; i++)
		gt_ok = close_rel(p->gt[i], g.gt[i]);
	check(gt_ok, "%s: geotransform %.17g %.17g %.17g / %.17g %.17g %.17g",
	      what, p->gt[0], p->gt[1], p->gt[3], g.gt[0], g.gt[1], g.gt[3]);
	check((!p->srs && !g.srs) ||
	      (p->srs && g.srs && OSRIsSame(p->srs, g.srs)),
	      "%s: same CRS", what);
	check(p->nbands == g.nbands, "%s: %d bands predicted, %d made", what,
	      p->nbands, g.nbands);
	check(p->point == g.point, "%s: AREA_OR_POINT=%s predicted", what,
	      p->point ? "Point" : "Area");
	for (int b = 0; b < p->nbands && b < g.nbands; b++) {
		const struct rfs_band_info *x = &p->bands[b], *y = &g.bands[b];
		check(x->type == y->type, "%s: band %d type %s / %s", what,
		      b + 1, GDALGetDataTypeName(x->type),
		      GDALGetDataTypeName(y->type));
		check(x->has_nodata == y->has_nodata &&
		      (!x->has_nodata || same_value(x->nodata, y->nodata)),
		      "%s: band %d nodata %d %.17g / %d %.17g", what, b + 1,
		      x->has_nodata, x->nodata, y->has_nodata, y->nodata);
	}
	rfs_grid_clear(&g);
}

/* The output's description (output.h) against the file rfs_ops_run
 * made: the size predicted from the metadata alone is the file's size,
 * and GDAL reads back the band descriptions and provenance items. */
static void check_output(const char *src, const struct rfs_chain *chain,
			 const char *out, const struct rfs_ops_result *res,
			 const char *what)
{
	struct rfs_output o;
	char msg[RFS_MSG_MAX];
	const char *base = strrchr(src, '/') ? strrchr(src, '/') + 1 : src;
	int rc = rfs_output_describe(src, base, chain, 0, &o, msg,
				     sizeof(msg));

	check(rc == 0, "%s: rfs_output_describe %d (%s)", what, rc, msg);
	if (rc == 0 && chain->format == RFS_FMT_GTIFF) {
		check(o.has_layout, "%s: a layout for the GeoTIFF", what);
		check(!o.has_layout || o.layout.total_size == res->size,
		      "%s: %llu bytes predicted, %llu written", what,
		      (unsigned long long)o.layout.total_size,
		      (unsigned long long)res->size);
		GDALDatasetH ds = GDALOpen(out, GA_ReadOnly);
		if (ds) {
			const char *c = GDALGetMetadataItem(
				ds, "RASTERFS_CHAIN", NULL);
			check(c && strcmp(c, chain->canonical) == 0,
			      "%s: RASTERFS_CHAIN %s", what, c ? c : "(none)");
			for (int b = 0; b < o.grid.nbands; b++) {
				const char *d = GDALGetDescription(
					GDALGetRasterBand(ds, b + 1));
				check(o.grid.desc && strcmp(d, o.grid.desc[b]) == 0,
				      "%s: band %d description '%s'", what,
				      b + 1, d);
			}
			GDALClose(ds);
		}
	}
	rfs_output_clear(&o);
}

static void describe_vs_run(const char *file, const char *text)
{
	char src[1200], out[600], what[1400];
	char msg[RFS_MSG_MAX], dmsg[RFS_MSG_MAX];
	struct rfs_chain chain;
	struct rfs_grid sg, pred;
	struct rfs_ops_result res;
	GDALDatasetH ds;
	int rc, drc;

	if (file[0] == '/')
		snprintf(src, sizeof(src), "%s", file);
	else
		snprintf(src, sizeof(src), "%s/%s", datadir, file);
	snprintf(out, sizeof(out), "%s/out-%d.tif", tmpdir, runs++);
	snprintf(what, sizeof(what), "%s@%s", file, text);
	rc = rfs_chain_parse(text, &chain, msg, sizeof(msg));
	check(rc == 0, "%s: parses (%s)", what, msg);
	if (rc)
		return;
	ds = GDALOpen(src, GA_ReadOnly);
	if (!ds || rfs_grid_from_dataset(ds, &sg) < 0) {
		check(0, "%s: source opens", what);
		if (ds)
			GDALClose(ds);
		return;
	}
	GDALClose(ds);
	drc = rfs_describe_chain(&chain, &sg, 0, &pred, dmsg, sizeof(dmsg));
	rc = rfs_ops_run(src, &chain, scratch, out, NULL, NULL, &res, msg,
			 sizeof(msg));
	check((rc == 0) == (drc == 0),
	      "%s: describe %d (%s), run %d (%s)", what, drc,
	      drc ? dmsg : "", rc, rc ? msg : "");
	if (rc == 0 && drc == 0)
		compare(&pred, out, what);
	if (rc == 0 && drc == 0)
		check_output(src, &chain, out, &res, what);
	if (rc && drc)
		check(drc == rc || drc == -RFS_E_PROCESS,
		      "%s: describe fails as run does (%d, %d)", what, drc,
		      rc);
	unlink(out);
	rfs_grid_clear(&pred);
	rfs_grid_clear(&sg);
}

struct raster {
	const char *file;
	double px;             /* |pixel width|, in its CRS's units */
	const char *clip_in;   /* a window inside it */
	const char *clip_half; /* a window half outside it */
	const char *clip_out;  /* a window outside it */
	const char *clip_crs;  /* a window in EPSG:4326 */
};

/* A source whose bands differ in type and nodata (a VRT of two bands of
 * stars_L7_ETMs.tif): what the GeoTIFF of each step keeps of them. */
static char mixed[600];

static void make_mixed(void)
{
	static const char *const fmt =
		"<VRTDataset rasterXSize=\"349\" rasterYSize=\"352\">\n"
		"  <SRS>EPSG:31985</SRS>\n"
		"  <GeoTransform>288776.25, 28.5, 0, 9120760.75, 0, -28.5"
		"</GeoTransform>\n"
		"  <VRTRasterBand dataType=\"Byte\" band=\"1\">\n"
		"    <NoDataValue>3</NoDataValue>\n"
		"    <SimpleSource><SourceFilename relativeToVRT=\"0\">%s"
		"</SourceFilename><SourceBand>1</SourceBand></SimpleSource>\n"
		"  </VRTRasterBand>\n"
		"  <VRTRasterBand dataType=\"Int16\" band=\"2\">\n"
		"    <NoDataValue>-5</NoDataValue>\n"
		"    <SimpleSource><SourceFilename relativeToVRT=\"0\">%s"
		"</SourceFilename><SourceBand>2</SourceBand></SimpleSource>\n"
		"  </VRTRasterBand>\n"
		"</VRTDataset>\n";
	char l7[1100];
	FILE *f;

	snprintf(l7, sizeof(l7), "%s/stars_L7_ETMs.tif", datadir);
	snprintf(mixed, sizeof(mixed), "%s/mixed.vrt", tmpdir);
	f = fopen(mixed, "w");
	check(f != NULL, "write %s", mixed);
	if (f) {
		fprintf(f, fmt, l7, l7);
		fclose(f);
	}
}

static const struct raster rasters[] = {
	{ "opengeos_dtm.tif", 2,
	  "321600,4297600,321900,4297900",
	  "321300,4297000,321700,4297500.5",
	  "100,100,200,200",
	  "-77.05,38.81,-77.04,38.815,EPSG:4326" },
	{ "srtm1_N48W125_crop.tif", 0.000277777777778,
	  "-124.2,48.45,-124.15,48.5",
	  "-124.3,48.5,-124.2,48.6",
	  "0,0,1,1",
	  "-124.2,48.45,-124.15,48.5,EPSG:4326" },
	{ "stars_L7_ETMs.tif", 28.5,
	  "290000,9115000,295000,9118000",
	  "280000,9110000,290000,9115000",
	  "0,0,10,10",
	  "-34.9,-8.04,-34.88,-8.02,EPSG:4326" },
	{ "rgbify_elev.tif", 6.72,
	  "-13629000,4551000,-13628000,4552000",
	  "-13631000,4550000,-13629000,4552000",
	  "0,0,10,10",
	  "-122.44,37.74,-122.43,37.75,EPSG:4326" },
	{ "stars_olinda_dem_utm25s.tif", 90,
	  "290000,9115000,295000,9118000",
	  "280000,9110000,290000,9115000",
	  "0,0,10,10",
	  NULL },
};

static const char *const steps[] = {
	"proj=EPSG:3857", "proj=EPSG:4326,res=0.0005,bilinear",
	"proj=EPSG:32610,res=250,average", "proj=ESRI:54009,cubic",
	"focal=3", "focal=5,max,circle", "focal=3,min", "focal=3,sum",
	"focal=3,std", "focal=3,range,circle", "focal=3,median",
	"reclass=0:100:1,100:inf:2",
	"reclass=-inf:0:-1,0:inf:70000",
	"reclass=0:10:255,10:inf:0,other=7",
	"reclass=-inf:50:0.5,50:inf:2",
	"reclass=0:100:1.5e300",
	"slope", "slope=percent", "aspect", "hillshade",
	"hillshade=alt=30,z=2,multidirectional", "roughness", "tri", "tpi",
	"size=100,80", "size=37,211,average", "size=2,2",
	"band=1", "band=1,1", "band=3,2,1", "band=7",
	"type=Byte", "type=Int16", "type=UInt16", "type=Int32",
	"type=Float32", "type=Float64",
	"nodata=-9999", "nodata=none", "nodata=0.1", "nodata=300",
	"ndi=2,1", "ndi=4,3",
	"fmt=gtiff",
};

static const char *const chains[] = {
	"proj=EPSG:3857@focal=3",
	"focal=5,max@proj=EPSG:4326@reclass=-inf:100:1,100:inf:2",
	"band=1@type=Byte@nodata=7@slope",
	"size=50,60,average@proj=EPSG:3857,res=100@type=Int16@nodata=none",
	"ndi=2,1@reclass=-1:0:1,0:1:2@size=30,30,mode",
	"hillshade@focal=3,median@type=Float64",
	"tri@proj=EPSG:32633@band=1,1,1@ndi=1,2",
	"reclass=0:50:1,50:inf:300@focal=3,max,circle@aspect",
	"nodata=none@focal=3,mean",
	"type=UInt16@focal=3,sum@size=12,14",
};

static void test_describe(void)
{
	const size_t n = sizeof(rasters) / sizeof(rasters[0]);
	char text[512];

	make_mixed();
	for (size_t r = 0; r <= n; r++) {
		struct raster ra_mixed = rasters[2];
		const struct raster *ra = r < n ? &rasters[r] : &ra_mixed;

		ra_mixed.file = mixed;

		for (size_t s = 0; s < sizeof(steps) / sizeof(steps[0]); s++)
			describe_vs_run(ra->file, steps[s]);
		for (size_t s = 0; s < sizeof(chains) / sizeof(chains[0]);
		     s++)
			describe_vs_run(ra->file, chains[s]);
		/* res and clip in the raster's own units */
		snprintf(text, sizeof(text), "res=%.17g", ra->px * 1.7);
		describe_vs_run(ra->file, text);
		snprintf(text, sizeof(text), "res=%.17g,bilinear@focal=3",
			 ra->px * 0.6);
		describe_vs_run(ra->file, text);
		snprintf(text, sizeof(text), "clip=%s", ra->clip_in);
		describe_vs_run(ra->file, text);
		snprintf(text, sizeof(text), "clip=%s", ra->clip_half);
		describe_vs_run(ra->file, text);
		snprintf(text, sizeof(text), "clip=%s", ra->clip_out);
		describe_vs_run(ra->file, text);
		snprintf(text, sizeof(text), "focal=3@clip=%s@slope@res=%.17g",
			 ra->clip_in, ra->px * 3);
		describe_vs_run(ra->file, text);
		if (ra->clip_crs) {
			snprintf(text, sizeof(text), "clip=%s", ra->clip_crs);
			describe_vs_run(ra->file, text);
		}
	}
}

/* ------------------------------------------------------------------ */
/* Limits */

static void source_grid(const char *file, struct rfs_grid *g)
{
	char src[1200];
	GDALDatasetH ds;

	snprintf(src, sizeof(src), "%s/%s", datadir, file);
	ds = GDALOpen(src, GA_ReadOnly);
	rfs_grid_init(g);
	if (ds) {
		rfs_grid_from_dataset(ds, g);
		GDALClose(ds);
	}
}

/* rfs_describe_chain with max_pixels: rc and msg must be as expected. */
static void limit(const char *file, const char *text, uint64_t max_pixels,
		  int want, const char *in_msg)
{
	struct rfs_chain chain;
	struct rfs_grid sg, out;
	char msg[RFS_MSG_MAX] = "";

	source_grid(file, &sg);
	rfs_chain_parse(text, &chain, msg, sizeof(msg));
	int rc = rfs_describe_chain(&chain, &sg, max_pixels, &out, msg,
				    sizeof(msg));
	check(rc == want && (!in_msg || strstr(msg, in_msg)),
	      "%s@%s, max_pixels=%llu: rc %d (want %d), '%s' (want '%s')",
	      file, text, (unsigned long long)max_pixels, rc, want, msg,
	      in_msg ? in_msg : "");
	rfs_grid_clear(&out);
	rfs_grid_clear(&sg);

	/* the worker's entry point gives the same answer from the path */
	char src[1200];
	snprintf(src, sizeof(src), "%s/%s", datadir, file);
	msg[0] = '\0';
	rc = rfs_describe_limit(src, &chain, max_pixels, msg, sizeof(msg));
	check(rc == (want == -RFS_E_TOO_BIG ? want : 0) &&
	      (want != -RFS_E_TOO_BIG || !in_msg || strstr(msg, in_msg)),
	      "rfs_describe_limit %s@%s: %d '%s'", file, text, rc, msg);
}

static void test_limits(void)
{
	const char *srtm = "srtm1_N48W125_crop.tif"; /* 600 x 600, degrees */

	limit(srtm, "focal=3", 360000, 0, NULL);
	limit(srtm, "focal=3", 359999, -RFS_E_TOO_BIG,
	      "output of step 1 (focal=3,mean,square) would be 600 x 600 = "
	      "360000 pixels, over max_pixels=359999");
	limit(srtm, "size=2000,2000", 400000, -RFS_E_TOO_BIG,
	      "output of step 1 (size=2000,2000,near) would be 2000 x 2000 "
	      "= 4000000 pixels, over max_pixels=400000");
	limit(srtm, "size=1000000,1000000", 1ULL << 31, -RFS_E_TOO_BIG,
	      "1000000 x 1000000 = 1000000000000 pixels");
	/* -tr as gdalwarp computes it: 600 * 0.000277... / 0.00005 */
	limit(srtm, "res=0.00005", 400000, -RFS_E_TOO_BIG,
	      "output of step 1 (res=5e-05,near) would be 3333 x 3333 = "
	      "11108889 pixels");
	limit(srtm, "proj=EPSG:4326,res=0.00005", 400000, -RFS_E_TOO_BIG,
	      "(proj=EPSG:4326,res=5e-05,near) would be 3333 x 3333");
	/* a later step over the limit is named by its position */
	limit(srtm, "focal=3@size=2000,2000,average@focal=3", 400000,
	      -RFS_E_TOO_BIG, "output of step 2 (size=2000,2000,average)");
	limit(srtm, "size=100,100@res=0.00001", 400000, -RFS_E_TOO_BIG,
	      "output of step 2 (res=1e-05,near) would be 16667 x "
	      "16667");
	/* beyond GDAL's int sizes: said, never cast */
	limit(srtm, "res=1e-12", 0, -RFS_E_TOO_BIG,
	      "beyond GDAL's limit of 2147483647 pixels a side");
	limit(srtm, "res=1e-12", 400000, -RFS_E_TOO_BIG,
	      "over max_pixels=400000");
	/* a clip window far larger than the raster */
	limit(srtm, "clip=-180,-90,180,90", 400000, -RFS_E_TOO_BIG,
	      "(clip=-180,-90,180,90) would be 1296000 x 648000");
	limit(srtm, "clip=-1e300,-90,1e300,90", 0, -RFS_E_TOO_BIG,
	      "beyond GDAL's limit");
	limit(srtm, "clip=-124.2,48.45,-124.15,48.5", 400000, 0, NULL);
	/* a clip that misses the raster: the job's own error, not a limit */
	limit(srtm, "clip=0,0,1,1", 400000, -RFS_E_PROCESS,
	      "clip: the window does not overlap the raster");
	/* under the limit */
	limit(srtm, "size=500,500@proj=EPSG:3857", 400000, 0, NULL);
}

int main(void)
{
	if (find_data() < 0) {
		printf("test data not found\n");
		return 1;
	}
	if (!mkdtemp(tmpdir)) {
		perror("mkdtemp");
		return 1;
	}
	snprintf(scratch, sizeof(scratch), "%s/scratch", tmpdir);
	mkdir(scratch, 0700);
	rfs_ops_init(64);
	CPLSetErrorHandler(CPLQuietErrorHandler); /* messages are in msg */

	test_table();
	test_words();
	test_describe();
	test_limits();

	char cmd[300];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
	if (system(cmd) != 0)
		printf("could not remove %s\n", tmpdir);
	printf("%d runs\n", runs);
	return check_report();
}
