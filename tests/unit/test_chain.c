/* test_chain.c - the chain grammar, the CRS check and the error table.
 *
 * Oracles: exact expected canonical texts and codes written here, Python's
 * repr() shortest-round-trip spellings for rfs_format_double, PROJ's own
 * database for CRS codes, and the errno mapping spelled out in issue 2.
 * The fuzz loop checks properties instead: any byte string gives 0 or one
 * of the documented codes with a message, and canonical text reparses to
 * exactly the same steps.
 *
 * Portable names (issue 12): hand-written portable spellings, and a
 * generator of valid chains that writes each one three ways (':' only,
 * the portable '_' only, mixed) and spells the expected portable text
 * itself from the canonical one, character by character (':' -> '_',
 * '_' -> "__", then the extension), independently of the step writers.
 */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rasterfs/chain.h"
#include "rasterfs/crs.h"
#include "rasterfs/err.h"
#include "rasterfs/step.h"

#include "check.h"


static struct rfs_chain ch, ch2;

/* ------------------------------------------------------------------ */

static const struct {
	const char *in, *canonical;
} canon[] = {
	{ "proj=EPSG:3857", "@proj=EPSG:3857,near" },
	{ "@proj=EPSG:3857", "@proj=EPSG:3857,near" },
	{ "proj=epsg:3857", "@proj=EPSG:3857,near" },
	{ "PROJ=Epsg:3857,NEAREST", "@proj=EPSG:3857,near" },
	{ "proj=EPSG:03857", "@proj=EPSG:3857,near" },
	{ "proj=crs=EPSG:3857", "@proj=EPSG:3857,near" },
	{ "proj=EPSG:32633,res=30,bilinear",
	  "@proj=EPSG:32633,res=30,bilinear" },
	{ "proj=bilinear,res=30.0,EPSG:32633",
	  "@proj=EPSG:32633,res=30,bilinear" },
	{ "proj=EPSG:4326,res=0.000277777777777778,resampling=cubicspline",
	  "@proj=EPSG:4326,res=0.000277777777777778,cubicspline" },
	{ "proj=EPSG:3857,res=1e2,q3", "@proj=EPSG:3857,res=100,q3" },
	{ "proj=IGNF:LAMB93,lanczos", "@proj=IGNF:LAMB93,lanczos" },
	{ "proj=ignf:LAMB93", "@proj=IGNF:LAMB93,near" },
	{ "proj=OGC:CRS84h,rms", "@proj=OGC:CRS84h,rms" },
	{ "proj=ESRI:54009,res=.5,mode", "@proj=ESRI:54009,res=0.5,mode" },
	{ "focal=3", "@focal=3,mean,square" },
	{ "focal=3,mean,square", "@focal=3,mean,square" },
	{ "focal=size=3", "@focal=3,mean,square" },
	{ "focal=circle,max,5", "@focal=5,max,circle" },
	{ "FOCAL=5,MAX,Circle", "@focal=5,max,circle" },
	{ "focal=stat=median,shape=circle,size=063",
	  "@focal=63,median,circle" },
	{ "focal=255,std", "@focal=255,std,square" },
	{ "focal=7,range", "@focal=7,range,square" },
	{ "focal=9,sum", "@focal=9,sum,square" },
	{ "focal=3,min", "@focal=3,min,square" },
	{ "reclass=0:200:1,200:400:2,400:inf:3",
	  "@reclass=0:200:1,200:400:2,400:inf:3,other=nodata" },
	{ "reclass=400:inf:3,0:200:1,200:400:2",
	  "@reclass=0:200:1,200:400:2,400:inf:3,other=nodata" },
	{ "reclass=-INF:0:-1,0:Inf:1,other=nodata",
	  "@reclass=-inf:0:-1,0:inf:1,other=nodata" },
	{ "reclass=0:1e3:1.50,other=-9999",
	  "@reclass=0:1000:1.5,other=-9999" },
	{ "reclass=-0:+5:-0", "@reclass=0:5:0,other=nodata" },
	{ "reclass=0.1:0.3:2,1e20:1e21:1e-7",
	  "@reclass=0.1:0.3:2,1e+20:1e+21:1e-07,other=nodata" },
	{ "proj=EPSG:32631@focal=5,max@reclass=0:200:1,200:400:2,400:inf:3",
	  "@proj=EPSG:32631,near@focal=5,max,square"
	  "@reclass=0:200:1,200:400:2,400:inf:3,other=nodata" },
	{ "focal=3@focal=3", "@focal=3,mean,square@focal=3,mean,square" },
	/* issue 3: terrain */
	{ "slope", "@slope=degrees" },
	{ "slope=degrees", "@slope=degrees" },
	{ "SLOPE=Percent", "@slope=percent" },
	{ "aspect", "@aspect" },
	{ "roughness", "@roughness" },
	{ "tri", "@tri" },
	{ "TPI", "@tpi" },
	{ "hillshade", "@hillshade=315,45,z=1" },
	{ "hillshade=300", "@hillshade=300,45,z=1" },
	{ "hillshade=300,30,z=2.5", "@hillshade=300,30,z=2.5" },
	{ "hillshade=z=2,alt=30,az=0", "@hillshade=0,30,z=2" },
	{ "hillshade=multidirectional",
	  "@hillshade=alt=45,z=1,multidirectional" },
	{ "hillshade=Multidirectional,altitude=60,z=3",
	  "@hillshade=alt=60,z=3,multidirectional" },
	/* resampling, clipping */
	{ "res=30", "@res=30,near" },
	{ "res=bilinear,30.0", "@res=30,bilinear" },
	{ "res=res=0.5,resampling=nearest", "@res=0.5,near" },
	{ "size=512,512", "@size=512,512,near" },
	{ "size=average,0100,50", "@size=100,50,average" },
	{ "size=10,20,resampling=cubic", "@size=10,20,cubic" },
	/* small numbers are W and H, not misspelt q1/q3 (found by fuzzing) */
	{ "size=3,3", "@size=3,3,near" },
	{ "size=11,100,q3", "@size=11,100,q3" },
	{ "size=051,51251", "@size=51,51251,near" },
	{ "clip=0,0,100,50", "@clip=0,0,100,50" },
	{ "clip=-124.9,48.1,-124.8,48.2,epsg:4326",
	  "@clip=-124.9,48.1,-124.8,48.2,EPSG:4326" },
	{ "clip=crs=EPSG:32610,1e3,2e3,3e3,4e3",
	  "@clip=1000,2000,3000,4000,EPSG:32610" },
	/* bands and types */
	{ "band=1", "@band=1" },
	{ "band=3,2,01", "@band=3,2,1" },
	{ "band=1,1,1", "@band=1,1,1" },
	{ "type=byte", "@type=Byte" },
	{ "type=UINT16", "@type=UInt16" },
	{ "type=Float64", "@type=Float64" },
	{ "nodata=-9999.0", "@nodata=-9999" },
	{ "nodata=NONE", "@nodata=none" },
	{ "nodata=0.5", "@nodata=0.5" },
	{ "ndi=4,3", "@ndi=4,3" },
	{ "ndi=04,3", "@ndi=4,3" },
	{ "proj=EPSG:32610@res=30@slope@hillshade",
	  "@proj=EPSG:32610,near@res=30,near@slope=degrees"
	  "@hillshade=315,45,z=1" },
	{ "band=4,3@type=Float32@ndi=1,2@nodata=none",
	  "@band=4,3@type=Float32@ndi=1,2@nodata=none" },
};

/* Pairs that must name one cache entry. */
static const char *const same[][2] = {
	{ "focal=3", "focal=3,mean,square" },
	{ "focal=3", "focal=size=3" },
	{ "focal=3", "focal=square,3,mean" },
	{ "proj=epsg:3857", "proj=EPSG:3857,near" },
	{ "proj=EPSG:3857,nearest", "proj=EPSG:3857,resampling=near" },
	{ "reclass=0:1:1,1:2:2", "reclass=1:2:2,0:1:1" },
	{ "reclass=0:1:1,other=nodata", "reclass=0:1:1" },
	{ "reclass=0:1:1,other=5", "reclass=other=5,0:1:1" },
	{ "proj=EPSG:4326,res=0.5", "proj=EPSG:4326,res=5e-1" },
	{ "slope", "slope=degrees" },
	{ "hillshade", "hillshade=315,45,z=1" },
	{ "hillshade=315", "hillshade=az=315,alt=45" },
	{ "res=30", "res=30,near" },
	{ "size=5,6", "size=5,6,nearest" },
	{ "type=int16", "type=Int16" },
};

static void test_canonical(void)
{
	char msg[RFS_MSG_MAX];
	size_t i;
	int rc;

	for (i = 0; i < sizeof(canon) / sizeof(canon[0]); i++) {
		rc = rfs_chain_parse(canon[i].in, &ch, msg, sizeof(msg));
		check(rc == 0, "parse '%s': rc %d (%s)", canon[i].in, rc, msg);
		if (rc)
			continue;
		check(strcmp(ch.canonical, canon[i].canonical) == 0,
		      "canonical of '%s': got '%s', want '%s'", canon[i].in,
		      ch.canonical, canon[i].canonical);
		rc = rfs_chain_parse(ch.canonical, &ch2, msg, sizeof(msg));
		check(rc == 0 && memcmp(&ch, &ch2, sizeof(ch)) == 0,
		      "canonical '%s' does not reparse to itself",
		      ch.canonical);
	}
	for (i = 0; i < sizeof(same) / sizeof(same[0]); i++) {
		rc = rfs_chain_parse(same[i][0], &ch, msg, sizeof(msg));
		rc |= rfs_chain_parse(same[i][1], &ch2, msg, sizeof(msg));
		check(rc == 0 && strcmp(ch.canonical, ch2.canonical) == 0,
		      "'%s' and '%s' should be one cache entry", same[i][0],
		      same[i][1]);
	}
}

static void test_fields(void)
{
	const struct rfs_step *s;
	char msg[RFS_MSG_MAX];
	int rc;

	rc = rfs_chain_parse("proj=EPSG:32633,res=30,bilinear@focal=5,max,"
			     "circle@reclass=400:inf:3,0:200:1,other=7.5",
			     &ch, msg, sizeof(msg));
	check(rc == 0 && ch.nsteps == 3, "three-step chain: %d %s", rc, msg);
	if (rc)
		return;
	s = &ch.steps[0];
	check(s->op == RFS_OP_PROJ && strcmp(s->u.proj.crs, "EPSG:32633") == 0
	      && s->u.proj.res == 30 &&
	      s->u.proj.resampling == RFS_RS_BILINEAR, "proj fields");
	s = &ch.steps[1];
	check(s->op == RFS_OP_FOCAL && s->u.focal.size == 5 &&
	      s->u.focal.stat == RFS_FOCAL_MAX &&
	      s->u.focal.shape == RFS_FOCAL_CIRCLE, "focal fields");
	s = &ch.steps[2];
	check(s->op == RFS_OP_RECLASS && s->u.reclass.n == 2 &&
	      s->u.reclass.ranges[0].lo == 0 &&
	      s->u.reclass.ranges[0].hi == 200 &&
	      s->u.reclass.ranges[0].value == 1 &&
	      s->u.reclass.ranges[1].lo == 400 &&
	      isinf(s->u.reclass.ranges[1].hi) &&
	      s->u.reclass.ranges[1].hi > 0 &&
	      s->u.reclass.ranges[1].value == 3 &&
	      s->u.reclass.has_other && s->u.reclass.other == 7.5,
	      "reclass fields");

	rc = rfs_chain_parse("proj=EPSG:3857", &ch, msg, sizeof(msg));
	check(rc == 0 && ch.steps[0].u.proj.res == 0 &&
	      ch.steps[0].u.proj.resampling == RFS_RS_NEAR,
	      "proj defaults: res 0, near");
	rc = rfs_chain_parse("reclass=0:1:1", &ch, msg, sizeof(msg));
	check(rc == 0 && !ch.steps[0].u.reclass.has_other,
	      "reclass default: no other");

	/* issue 3 steps */
	rc = rfs_chain_parse("slope=percent@hillshade=300.5,30,z=2@aspect@tri"
			     "@hillshade=alt=10,multidirectional",
			     &ch, msg, sizeof(msg));
	check(rc == 0 && ch.nsteps == 5, "terrain chain: %d %s", rc, msg);
	if (rc)
		return;
	check(ch.steps[0].op == RFS_OP_SLOPE && ch.steps[0].u.slope.percent,
	      "slope fields");
	s = &ch.steps[1];
	check(s->op == RFS_OP_HILLSHADE && s->u.hillshade.azimuth == 300.5 &&
	      s->u.hillshade.altitude == 30 && s->u.hillshade.z == 2 &&
	      !s->u.hillshade.multidirectional, "hillshade fields");
	check(ch.steps[2].op == RFS_OP_ASPECT && ch.steps[3].op == RFS_OP_TRI,
	      "aspect, tri");
	s = &ch.steps[4];
	check(s->op == RFS_OP_HILLSHADE && s->u.hillshade.altitude == 10 &&
	      s->u.hillshade.z == 1 && s->u.hillshade.multidirectional,
	      "multidirectional fields");

	rc = rfs_chain_parse("res=2.5,cubic@size=640,480,average@clip=-1.5,2,"
			     "3,4.25,epsg:4326@clip=0,0,1,1", &ch, msg,
			     sizeof(msg));
	check(rc == 0 && ch.nsteps == 4, "grid chain: %d %s", rc, msg);
	if (rc)
		return;
	s = &ch.steps[0];
	check(s->op == RFS_OP_RES && s->u.res.res == 2.5 &&
	      s->u.res.resampling == RFS_RS_CUBIC, "res fields");
	s = &ch.steps[1];
	check(s->op == RFS_OP_SIZE && s->u.size.width == 640 &&
	      s->u.size.height == 480 &&
	      s->u.size.resampling == RFS_RS_AVERAGE, "size fields");
	s = &ch.steps[2];
	check(s->op == RFS_OP_CLIP && s->u.clip.minx == -1.5 &&
	      s->u.clip.miny == 2 && s->u.clip.maxx == 3 &&
	      s->u.clip.maxy == 4.25 &&
	      strcmp(s->u.clip.crs, "EPSG:4326") == 0, "clip fields");
	check(ch.steps[3].u.clip.crs[0] == '\0', "clip without CRS");

	rc = rfs_chain_parse("band=6,1,6@type=uint16@nodata=-0.5@nodata=none"
			     "@ndi=2,1", &ch, msg, sizeof(msg));
	check(rc == 0 && ch.nsteps == 5, "band chain: %d %s", rc, msg);
	if (rc)
		return;
	s = &ch.steps[0];
	check(s->op == RFS_OP_BAND && s->u.band.n == 3 &&
	      s->u.band.bands[0] == 6 && s->u.band.bands[1] == 1 &&
	      s->u.band.bands[2] == 6, "band fields");
	check(ch.steps[1].op == RFS_OP_TYPE &&
	      ch.steps[1].u.type.type == RFS_TYPE_UINT16 &&
	      strcmp(rfs_type_name(RFS_TYPE_UINT16), "UInt16") == 0,
	      "type fields");
	check(ch.steps[2].op == RFS_OP_NODATA && !ch.steps[2].u.nodata.none &&
	      ch.steps[2].u.nodata.value == -0.5, "nodata fields");
	check(ch.steps[3].op == RFS_OP_NODATA && ch.steps[3].u.nodata.none,
	      "nodata=none");
	check(ch.steps[4].op == RFS_OP_NDI && ch.steps[4].u.ndi.a == 2 &&
	      ch.steps[4].u.ndi.b == 1, "ndi fields");

	check(strcmp(rfs_op_name(RFS_OP_RECLASS), "reclass") == 0 &&
	      strcmp(rfs_focal_stat_name(RFS_FOCAL_STD), "std") == 0 &&
	      strcmp(rfs_focal_shape_name(RFS_FOCAL_CIRCLE), "circle") == 0 &&
	      strcmp(rfs_resampling_name(RFS_RS_CUBICSPLINE),
		     "cubicspline") == 0 &&
	      strcmp(rfs_resampling_name(RFS_RS_Q1), "q1") == 0,
	      "name functions");
}

/* ------------------------------------------------------------------ */

static const struct {
	const char *in;
	int rc;
	const char *needle;	/* must appear in the message, or NULL */
} errs[] = {
	{ "fokal=3", -RFS_E_UNKNOWN_STEP, "did you mean 'focal'" },
	{ "porj=EPSG:3857", -RFS_E_UNKNOWN_STEP, "did you mean 'proj'" },
	{ "reclas=0:1:1", -RFS_E_UNKNOWN_STEP, "did you mean 'reclass'" },
	{ "slpoe", -RFS_E_UNKNOWN_STEP, "did you mean 'slope'" },
	{ "hilshade=1", -RFS_E_UNKNOWN_STEP, "did you mean 'hillshade'" },
	{ "blur", -RFS_E_UNKNOWN_STEP, "Steps: proj, focal, reclass, slope, "
	  "aspect, hillshade, roughness, tri, tpi, res, size, clip, band, "
	  "type, nodata, ndi" },
	/* issue 3: every new step's bad arguments */
	{ "slope=radians", -RFS_E_BAD_ARG, "degrees or percent" },
	{ "slope=percnt", -RFS_E_BAD_ARG, "did you mean 'percent'" },
	{ "slope=degrees,percent", -RFS_E_BAD_ARG, "twice" },
	{ "slope=", -RFS_E_BAD_ARG, "nothing after '='" },
	{ "aspect=1", -RFS_E_BAD_ARG, "takes no arguments" },
	{ "roughness=3", -RFS_E_BAD_ARG, "takes no arguments" },
	{ "tri=riley", -RFS_E_BAD_ARG, "takes no arguments" },
	{ "tpi=x", -RFS_E_BAD_ARG, "takes no arguments" },
	{ "tpi=", -RFS_E_BAD_ARG, "nothing after '='" },
	{ "hillshade=360", -RFS_E_BAD_ARG, "0 <= AZIMUTH < 360" },
	{ "hillshade=315,91", -RFS_E_BAD_ARG, "0 to 90" },
	{ "hillshade=315,45,z=0", -RFS_E_BAD_ARG, "positive" },
	{ "hillshade=315,45,10", -RFS_E_BAD_ARG, "at most two numbers" },
	{ "hillshade=315,multidirectional", -RFS_E_BAD_ARG,
	  "refuses -az with -multidirectional" },
	{ "hillshade=multidirectinal", -RFS_E_BAD_ARG,
	  "did you mean 'multidirectional'" },
	{ "hillshade=sun=3", -RFS_E_BAD_ARG, "unknown option" },
	{ "hillshade=nan", -RFS_E_BAD_ARG, "NaN" },
	{ "res", -RFS_E_BAD_ARG, "res=R[,RESAMPLING]" },
	{ "res=0", -RFS_E_BAD_ARG, "positive pixel size" },
	{ "res=-30", -RFS_E_BAD_ARG, "positive pixel size" },
	{ "res=30,40", -RFS_E_BAD_ARG, "twice" },
	{ "res=30,bilnear", -RFS_E_BAD_ARG, "did you mean 'bilinear'" },
	{ "res=near", -RFS_E_BAD_ARG, "pixel size R is required" },
	{ "size=512", -RFS_E_BAD_ARG, "both W and H" },
	{ "size=0,512", -RFS_E_BAD_ARG, "from 1 to 1000000" },
	{ "size=512,1.5", -RFS_E_BAD_ARG, "whole number" },
	{ "size=512,2000000", -RFS_E_BAD_ARG, "from 1 to 1000000" },
	{ "size=512,512,512", -RFS_E_BAD_ARG, "third number" },
	{ "size=512,512,near,cubic", -RFS_E_BAD_ARG, "twice" },
	{ "clip=0,0,100", -RFS_E_BAD_ARG, "four bounds" },
	{ "clip=100,0,0,50", -RFS_E_BAD_ARG, "MINX >= MAXX" },
	{ "clip=0,50,100,50", -RFS_E_BAD_ARG, "MINY >= MAXY" },
	{ "clip=0,0,100,50,7", -RFS_E_BAD_ARG, "fifth value" },
	{ "clip=0,0,100,50,4326", -RFS_E_BAD_ARG, "fifth value" },
	{ "clip=0,0,inf,50", -RFS_E_BAD_ARG, "MAXX must be a finite number" },
	{ "clip=0,0,100,50,EPSG:", -RFS_E_BAD_ARG, "clip: CRS" },
	{ "clip=0,0,100,50,EPSG:4326,EPSG:3857", -RFS_E_BAD_ARG, "twice" },
	{ "band=0", -RFS_E_BAD_ARG, "first band is 1" },
	{ "band=1,x", -RFS_E_BAD_ARG, "from 1 to 65535" },
	{ "band=65536", -RFS_E_BAD_ARG, "from 1 to 65535" },
	{ "band=n=1", -RFS_E_BAD_ARG, "takes no options" },
	{ "band=", -RFS_E_BAD_ARG, "band=N[,N...]" },
	{ "type=uint8", -RFS_E_BAD_ARG, "Byte, Int16, UInt16" },
	{ "type=Int61", -RFS_E_BAD_ARG, "did you mean 'Int16'" },
	{ "type=CFloat32", -RFS_E_BAD_ARG, "did you mean 'Float32'" },
	{ "type", -RFS_E_BAD_ARG, "type=Byte|Int16" },
	{ "nodata=abc", -RFS_E_BAD_ARG, "finite number or 'none'" },
	{ "nodata=inf", -RFS_E_BAD_ARG, "finite" },
	{ "nodata=1,2", -RFS_E_BAD_ARG, "finite number or 'none'" },
	{ "ndi=4", -RFS_E_BAD_ARG, "two bands A,B" },
	{ "ndi=4,4", -RFS_E_BAD_ARG, "different bands" },
	{ "ndi=4,3,2", -RFS_E_BAD_ARG, "third" },
	{ "ndi=0,1", -RFS_E_BAD_ARG, "first band is 1" },
	{ "ndi=a=4,3", -RFS_E_BAD_ARG, "takes no options" },
	{ "focal=3@blur=5", -RFS_E_UNKNOWN_STEP, "blur" },
	{ "focal=4", -RFS_E_BAD_ARG, "try focal=3 or focal=5" },
	{ "focal=1", -RFS_E_BAD_ARG, "odd integer from 3 to 255" },
	{ "focal=257", -RFS_E_BAD_ARG, "focal=255" },
	{ "focal=99999999999999999999", -RFS_E_BAD_ARG, "odd integer" },
	{ "focal=3.0", -RFS_E_BAD_ARG, "odd integer" },
	{ "focal=-3", -RFS_E_BAD_ARG, "odd integer" },
	{ "focal=65,median", -RFS_E_BAD_ARG, "63" },
	{ "focal=3,meen", -RFS_E_BAD_ARG, "did you mean 'mean'" },
	{ "focal=3,stat=avg", -RFS_E_BAD_ARG, "statistic" },
	{ "focal=3,shape=cirle", -RFS_E_BAD_ARG, "did you mean 'circle'" },
	{ "focal=3,5", -RFS_E_BAD_ARG, "twice" },
	{ "focal=3,size=3", -RFS_E_BAD_ARG, "twice" },
	{ "focal=3,max,min", -RFS_E_BAD_ARG, "twice" },
	{ "focal=3,square,circle", -RFS_E_BAD_ARG, "twice" },
	{ "focal=mean", -RFS_E_BAD_ARG, "SIZE is required" },
	{ "focal", -RFS_E_BAD_ARG, "needs arguments" },
	{ "focal=", -RFS_E_BAD_ARG, "needs arguments" },
	{ "focal=3,,mean", -RFS_E_BAD_ARG, "empty argument" },
	{ "focal=3,", -RFS_E_BAD_ARG, "empty argument" },
	{ "focal=3,window=5", -RFS_E_BAD_ARG, "unknown option" },
	{ "focal=3,sise=5", -RFS_E_BAD_ARG, "did you mean 'size='" },
	{ "focal=3,=5", -RFS_E_BAD_ARG, "no option name" },
	{ "focal=3,stat=", -RFS_E_BAD_ARG, "no value" },
	{ "proj=3857", -RFS_E_BAD_ARG, "proj=EPSG:3857" },
	{ "proj=EPSG", -RFS_E_BAD_ARG, "AUTHORITY:CODE" },
	{ "proj=EPSG:", -RFS_E_BAD_ARG, "authority and a code" },
	{ "proj=:3857", -RFS_E_BAD_ARG, "authority and a code" },
	{ "proj=EPSG:38:57", -RFS_E_BAD_ARG, "CRS code" },
	{ "proj=EP-SG:3857", -RFS_E_BAD_ARG, "CRS authority" },
	{ "proj=EPSG:3857,bilnear", -RFS_E_BAD_ARG, "did you mean 'bilinear'" },
	{ "proj=EPSG:3857,resampling=fancy", -RFS_E_BAD_ARG, "cubicspline" },
	{ "proj=EPSG:3857,near,cubic", -RFS_E_BAD_ARG, "twice" },
	{ "proj=EPSG:3857,EPSG:4326", -RFS_E_BAD_ARG, "twice" },
	{ "proj=EPSG:3857,res=0", -RFS_E_BAD_ARG, "positive" },
	{ "proj=EPSG:3857,res=-30", -RFS_E_BAD_ARG, "positive" },
	{ "proj=EPSG:3857,res=inf", -RFS_E_BAD_ARG, "finite" },
	{ "proj=EPSG:3857,res=nan", -RFS_E_BAD_ARG, "NaN" },
	{ "proj=EPSG:3857,res=0x1p4", -RFS_E_BAD_ARG, "not a decimal" },
	{ "proj=EPSG:3857,res=30m", -RFS_E_BAD_ARG, "not a decimal" },
	{ "proj=EPSG:3857,res=1e999", -RFS_E_BAD_ARG, "out of range" },
	{ "proj=EPSG:3857,res=30,res=30", -RFS_E_BAD_ARG, "twice" },
	{ "proj=EPSG:3857,ress=30", -RFS_E_BAD_ARG, "did you mean 'res='" },
	{ "proj=near", -RFS_E_BAD_ARG, "CRS is required" },
	{ "reclass=0:100", -RFS_E_BAD_ARG, "a:b:v" },
	{ "reclass=0:100:1:2", -RFS_E_BAD_ARG, "a:b:v" },
	{ "reclass=100:0:1", -RFS_E_BAD_ARG, "less than" },
	{ "reclass=5:5:1", -RFS_E_BAD_ARG, "less than" },
	{ "reclass=0:100:inf", -RFS_E_BAD_ARG, "finite" },
	{ "reclass=0:100:nan", -RFS_E_BAD_ARG, "NaN" },
	{ "reclass=nan:100:1", -RFS_E_BAD_ARG, "NaN" },
	{ "reclass=0:infinity:1", -RFS_E_BAD_ARG, "not a decimal" },
	{ "reclass=0:0x10:1", -RFS_E_BAD_ARG, "not a decimal" },
	{ "reclass=0:1e-999:1", -RFS_E_BAD_ARG, "out of range" },
	{ "reclass=0:200:1,100:300:2",
	  -RFS_E_BAD_ARG, "0:200:1 and 100:300:2 overlap" },
	{ "reclass=100:300:2,0:200:1",
	  -RFS_E_BAD_ARG, "0:200:1 and 100:300:2 overlap" },
	{ "reclass=0:1:1,0:1:1", -RFS_E_BAD_ARG, "overlap" },
	{ "reclass=-inf:inf:1,5:6:2", -RFS_E_BAD_ARG, "overlap" },
	{ "reclass=0:1:1,other=inf", -RFS_E_BAD_ARG, "finite" },
	{ "reclass=0:1:1,other=x", -RFS_E_BAD_ARG, "nodata" },
	{ "reclass=0:1:1,other=1,other=2", -RFS_E_BAD_ARG, "twice" },
	{ "reclass=0:1:1,else=2", -RFS_E_BAD_ARG, "other=" },
	{ "reclass=other=2", -RFS_E_BAD_ARG, "at least one range" },
	{ "", -RFS_E_BAD_ARG, "no steps" },
	{ "@", -RFS_E_BAD_ARG, "no steps" },
	{ "focal=3@@focal=3", -RFS_E_BAD_ARG, "empty step" },
	{ "focal=3@", -RFS_E_BAD_ARG, "ends with '@'" },
	{ "@@focal=3", -RFS_E_BAD_ARG, "empty step" },
	{ "=3", -RFS_E_BAD_ARG, "no name" },
	{ "focal=3/../x", -RFS_E_BAD_ARG, "'/'" },
	{ "proj=EPSG:3857@focal=3/", -RFS_E_BAD_ARG, "'/'" },
	{ "reclass=0..5:1:1", -RFS_E_BAD_ARG, "'..'" },
	{ "..", -RFS_E_BAD_ARG, "'..'" },
	{ "focal=3 ", -RFS_E_BAD_ARG, "byte 0x20" },
	{ "focal=3\t", -RFS_E_BAD_ARG, "byte 0x09" },
	{ "focal=3;rm", -RFS_E_BAD_ARG, "character ';'" },
	{ "focal=\xc3\xa9", -RFS_E_BAD_ARG, "byte 0xc3" },
	{ "focal=3\n", -RFS_E_BAD_ARG, "byte 0x0a" },
	{ "proj=EPSG:3857,res=1.000000000000000000000000000000000000000000"
	  "000000000000000000000000000000000000", -RFS_E_TOO_LONG, "longer" },
	{ "proj=EPSG:3857000000000000000000000000000000000000000000000000000"
	  "00000000000000000000000", -RFS_E_TOO_LONG, "longer" },
};

static void test_errors(void)
{
	char msg[RFS_MSG_MAX], big[8192], *p;
	size_t i;
	int rc, k;

	for (i = 0; i < sizeof(errs) / sizeof(errs[0]); i++) {
		strcpy(msg, "stale");
		rc = rfs_chain_parse(errs[i].in, &ch, msg, sizeof(msg));
		check(rc == errs[i].rc, "'%s': rc %d (%s), want %d (%s) [%s]",
		      errs[i].in, rc, rfs_err_name(rc), errs[i].rc,
		      rfs_err_name(errs[i].rc), msg);
		check(msg[0] != '\0' && strcmp(msg, "stale") != 0,
		      "'%s': empty message", errs[i].in);
		if (errs[i].needle)
			check(strstr(msg, errs[i].needle) != NULL,
			      "'%s': message '%s' lacks '%s'", errs[i].in,
			      msg, errs[i].needle);
	}

	/* The examples of the brief, word for word. */
	rfs_chain_parse("fokal=3", &ch, msg, sizeof(msg));
	check(strcmp(msg, "'fokal' is not a step; did you mean 'focal'? "
		     "Steps: proj, focal, reclass, slope, aspect, hillshade, "
		     "roughness, tri, tpi, res, size, clip, band, type, "
		     "nodata, ndi") == 0, "fokal: '%s'", msg);
	rfs_chain_parse("focal=4", &ch, msg, sizeof(msg));
	check(strcmp(msg, "focal: SIZE must be an odd integer from 3 to 255, "
		     "got '4' (try focal=3 or focal=5)") == 0,
	      "focal=4: '%s'", msg);

	/* Limits: 16 steps, 64 ranges, canonical length, input length. */
	p = big;
	for (k = 0; k < RFS_CHAIN_MAX_STEPS; k++)
		p += sprintf(p, "@focal=3");
	rc = rfs_chain_parse(big, &ch, msg, sizeof(msg));
	check(rc == 0 && ch.nsteps == RFS_CHAIN_MAX_STEPS, "16 steps: %d %s",
	      rc, msg);
	sprintf(p, "@focal=3");
	rc = rfs_chain_parse(big, &ch, msg, sizeof(msg));
	check(rc == -RFS_E_TOO_LONG, "17 steps: %d", rc);

	p = big + sprintf(big, "reclass=");
	for (k = 0; k < RFS_CHAIN_MAX_RANGES; k++)
		p += sprintf(p, "%s%d:%d:%d", k ? "," : "", k, k + 1, k);
	rc = rfs_chain_parse(big, &ch, msg, sizeof(msg));
	check(rc == 0 && ch.steps[0].u.reclass.n == RFS_CHAIN_MAX_RANGES,
	      "64 ranges: %d %s", rc, msg);
	sprintf(p, ",100:101:1");
	rc = rfs_chain_parse(big, &ch, msg, sizeof(msg));
	check(rc == -RFS_E_TOO_LONG, "65 ranges: %d", rc);

	p = big + sprintf(big, "reclass=");
	for (k = 0; k < 40; k++)
		p += sprintf(p, "%s%d.123456789:%d.123456789:%d.123456789",
			     k ? "," : "", k, k + 1, k);
	rc = rfs_chain_parse(big, &ch, msg, sizeof(msg));
	check(rc == -RFS_E_TOO_LONG && strstr(msg, "canonical"),
	      "canonical over %d: %d %s", RFS_CHAIN_TEXT_MAX, rc, msg);

	p = big + sprintf(big, "band=");
	for (k = 0; k < RFS_CHAIN_MAX_BANDS; k++)
		p += sprintf(p, "%s%d", k ? "," : "", k + 1);
	rc = rfs_chain_parse(big, &ch, msg, sizeof(msg));
	check(rc == 0 && ch.steps[0].u.band.n == RFS_CHAIN_MAX_BANDS,
	      "64 bands: %d %s", rc, msg);
	sprintf(p, ",1");
	rc = rfs_chain_parse(big, &ch, msg, sizeof(msg));
	check(rc == -RFS_E_TOO_LONG, "65 bands: %d", rc);

	memset(big, 'a', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	rc = rfs_chain_parse(big, &ch, msg, sizeof(msg));
	check(rc == -RFS_E_TOO_LONG, "8 KiB input: %d", rc);

	/* msg may be NULL or tiny. */
	rc = rfs_chain_parse("fokal=3", &ch, NULL, 0);
	check(rc == -RFS_E_UNKNOWN_STEP, "NULL msg");
	msg[0] = 'x';
	rc = rfs_chain_parse("fokal=3", &ch, msg, 1);
	check(rc == -RFS_E_UNKNOWN_STEP && msg[0] == '\0', "msglen 1");
	rc = rfs_chain_parse(NULL, &ch, msg, sizeof(msg));
	check(rc == -RFS_E_BAD_ARG, "NULL text");
}

/* ------------------------------------------------------------------ */
/* Output formats and trailing extensions */

static const struct {
	const char *in, *canonical;
	enum rfs_format f;
	enum rfs_stretch s;
} fmts[] = {
	/* the default GeoTIFF keeps the key it had before formats */
	{ "focal=3", "@focal=3,mean,square", RFS_FMT_GTIFF, 0 },
	{ "focal=3.tif", "@focal=3,mean,square", RFS_FMT_GTIFF, 0 },
	{ "focal=3.TIFF", "@focal=3,mean,square", RFS_FMT_GTIFF, 0 },
	{ "focal=3@fmt=gtiff", "@focal=3,mean,square", RFS_FMT_GTIFF, 0 },
	{ "focal=3@FMT=GTiff.tif", "@focal=3,mean,square", RFS_FMT_GTIFF, 0 },
	{ "proj=EPSG:3857.tif", "@proj=EPSG:3857,near", RFS_FMT_GTIFF, 0 },
	{ "proj=EPSG:4326,res=0.5.tif", "@proj=EPSG:4326,res=0.5,near",
	  RFS_FMT_GTIFF, 0 },
	{ "proj=EPSG:4326,res=0.5", "@proj=EPSG:4326,res=0.5,near",
	  RFS_FMT_GTIFF, 0 },
	{ "proj=EPSG:4326,res=.5.png",
	  "@proj=EPSG:4326,res=0.5,near@fmt=png,minmax", RFS_FMT_PNG, 0 },
	{ "focal=3.png", "@focal=3,mean,square@fmt=png,minmax",
	  RFS_FMT_PNG, 0 },
	{ "focal=3@fmt=png", "@focal=3,mean,square@fmt=png,minmax",
	  RFS_FMT_PNG, 0 },
	{ "focal=3@fmt=png.png", "@focal=3,mean,square@fmt=png,minmax",
	  RFS_FMT_PNG, 0 },
	{ "focal=3@fmt=p2,png", "@focal=3,mean,square@fmt=png,p2",
	  RFS_FMT_PNG, RFS_STRETCH_P2 },
	{ "focal=3@fmt=format=png,stretch=P2.PNG",
	  "@focal=3,mean,square@fmt=png,p2", RFS_FMT_PNG, RFS_STRETCH_P2 },
	{ "focal=3@fmt=cog", "@focal=3,mean,square@fmt=cog", RFS_FMT_COG, 0 },
	{ "focal=3@fmt=cog.tif", "@focal=3,mean,square@fmt=cog",
	  RFS_FMT_COG, 0 },
	{ "reclass=0:1:2.png", "@reclass=0:1:2,other=nodata@fmt=png,minmax",
	  RFS_FMT_PNG, 0 },
	/* a chain of only a format converts the source */
	{ "fmt=png", "@fmt=png,minmax", RFS_FMT_PNG, 0 },
	{ "fmt=gtiff", "@fmt=gtiff", RFS_FMT_GTIFF, 0 },
	{ "@fmt=cog", "@fmt=cog", RFS_FMT_COG, 0 },
};

static const struct {
	const char *in;
	const char *needle;	/* must appear in the message, or NULL */
} fmt_errs[] = {
	{ "fmt=png@focal=3", "must be the last step" },
	{ "fmt=cog@fmt=cog", "must be the last step" },
	{ "focal=3@fmt=jpeg", "not a format" },
	{ "focal=3@fmt=pnk", "did you mean 'png'" },
	{ "focal=3@fmt", "fmt needs arguments" },
	{ "focal=3@fmt=", "fmt needs arguments" },
	{ "focal=3@fmt=png,png", "given twice" },
	{ "focal=3@fmt=png,p2,minmax", "given twice" },
	{ "focal=3@fmt=cog,p2", "applies to png only" },
	{ "focal=3@fmt=p2", "a format is required" },
	{ "focal=3@fmt=png,level=9", "unknown option" },
	{ "focal=3@fmt=png.tif", "contradicts fmt=png" },
	{ "focal=3@fmt=cog.png", "contradicts fmt=cog" },
	{ "focal=3@fmt=gtiff.png", "contradicts fmt=gtiff" },
	{ "focal=3@.png", "ends with '@'" },
	{ "focal=3.png.png", NULL },
	{ "focal=3.jpg", NULL },
	{ ".png", "no steps" },
};

static void test_formats(void)
{
	char msg[RFS_MSG_MAX];
	size_t i;
	int rc;

	for (i = 0; i < sizeof(fmts) / sizeof(fmts[0]); i++) {
		rc = rfs_chain_parse(fmts[i].in, &ch, msg, sizeof(msg));
		check(rc == 0, "parse '%s': rc %d (%s)", fmts[i].in, rc, msg);
		if (rc)
			continue;
		check(strcmp(ch.canonical, fmts[i].canonical) == 0,
		      "canonical of '%s': got '%s', want '%s'", fmts[i].in,
		      ch.canonical, fmts[i].canonical);
		check(ch.format == fmts[i].f && ch.stretch == fmts[i].s,
		      "'%s': format %s/%s", fmts[i].in,
		      rfs_format_name(ch.format), rfs_stretch_name(ch.stretch));
		rc = rfs_chain_parse(ch.canonical, &ch2, msg, sizeof(msg));
		check(rc == 0 && memcmp(&ch, &ch2, sizeof(ch)) == 0,
		      "canonical '%s' does not reparse to itself",
		      ch.canonical);
	}
	/* every error is EINVAL at the FUSE boundary, with a message */
	for (i = 0; i < sizeof(fmt_errs) / sizeof(fmt_errs[0]); i++) {
		msg[0] = '\0';
		rc = rfs_chain_parse(fmt_errs[i].in, &ch, msg, sizeof(msg));
		check(rc == -RFS_E_BAD_ARG, "'%s': rc %d (%s), want EINVAL "
		      "[%s]", fmt_errs[i].in, rc, rfs_err_name(rc), msg);
		check(rfs_err_errno(rc) == EINVAL, "'%s': errno %d",
		      fmt_errs[i].in, rfs_err_errno(rc));
		check(msg[0] != '\0', "'%s': no message", fmt_errs[i].in);
		if (fmt_errs[i].needle)
			check(strstr(msg, fmt_errs[i].needle) != NULL,
			      "'%s': message '%s' lacks '%s'", fmt_errs[i].in,
			      msg, fmt_errs[i].needle);
	}
}

/* ------------------------------------------------------------------ */
/* Random numbers for the generator and the fuzz loop: xorshift64*
 * (Vigna 2016). */

static uint64_t xorshift(uint64_t *s)
{
	*s ^= *s >> 12;
	*s ^= *s << 25;
	*s ^= *s >> 27;
	return *s * 2685821657736338717ull;
}

/* The fuzz loop's sequence, and the generator's own, so that neither
 * changes the other's cases. */
static uint64_t rng = 0x9e3779b97f4a7c15ull, gen_rng = 0x2545f4914f6cdd1dull;

static uint64_t rnd(void)
{
	return xorshift(&rng);
}

static uint64_t grnd(void)
{
	return xorshift(&gen_rng);
}

/* ------------------------------------------------------------------ */
/* Portable names: no ':' (Windows, SMB, rsync HOST:PATH, GRASS "EPSG:") */

/* The characters a portable name may hold, and the last one it may end in
 * (Windows drops a trailing '.' or ' '; < > : " / \ | ? * are forbidden). */
static int portable_ok(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || s[n - 1] == '.' || s[n - 1] == ' ')
		return 0;
	if (strpbrk(s, "<>:\"/\\|?*"))
		return 0;
	for (; *s; s++)
		if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') ||
		      (*s >= '0' && *s <= '9') || strchr("@=,.-+_", *s)))
			return 0;
	return 1;
}

/* The test's own spelling of the portable text of a canonical chain: ':'
 * becomes '_', '_' becomes "__" (only CRS codes hold either, and reclass
 * ranges), then the format's extension, with fmt= kept where the
 * extension does not say it all. */
static void expect_portable(const char *canonical, char *out, size_t len)
{
	const char *fmt = strstr(canonical, "@fmt=");
	const char *end = fmt ? fmt : canonical + strlen(canonical);
	size_t n = 0;

	for (const char *q = canonical; q < end && n + 3 < len; q++) {
		if (*q == ':')
			out[n++] = '_';
		else if (*q == '_') {
			out[n++] = '_';
			out[n++] = '_';
		} else
			out[n++] = *q;
	}
	out[n] = '\0';
	if (!fmt)
		snprintf(out + n, len - n, ".tif");
	else if (strcmp(fmt, "@fmt=png,minmax") == 0 && fmt != canonical)
		snprintf(out + n, len - n, ".png");
	else
		snprintf(out + n, len - n, "%s.%s", fmt,
			 strstr(fmt, "png") ? "png" : "tif");
}

/* text parses; its portable spelling is the expected one, holds only
 * allowed characters, and parses back to the same chain; once more from
 * the canonical text. */
static void portable_one(const char *text)
{
	char msg[RFS_MSG_MAX], port[RFS_CHAIN_PORTABLE_MAX], port2[sizeof(port)];
	char want[RFS_CHAIN_PORTABLE_MAX + 16];
	int rc, n;

	rc = rfs_chain_parse(text, &ch, msg, sizeof(msg));
	if (rc) {
		check(0, "portable: '%s' does not parse: %s", text, msg);
		return;
	}
	n = rfs_chain_portable(&ch, port, sizeof(port));
	check(n == (int)strlen(port), "portable of '%s': rc %d", text, n);
	expect_portable(ch.canonical, want, sizeof(want));
	check(strcmp(port, want) == 0, "portable of '%s': '%s', want '%s'",
	      text, port, want);
	check(portable_ok(port), "portable '%s' holds a character Windows, "
	      "SMB or rsync cannot take", port);
	rc = rfs_chain_parse(port, &ch2, msg, sizeof(msg));
	check(rc == 0 && strcmp(ch2.canonical, ch.canonical) == 0 &&
	      memcmp(&ch, &ch2, sizeof(ch)) == 0,
	      "portable '%s' parses to '%s' (%d %s), not '%s'", port,
	      ch2.canonical, rc, msg, ch.canonical);
	/* canonical -> portable -> canonical */
	rc = rfs_chain_parse(ch.canonical, &ch2, msg, sizeof(msg));
	n = rc ? -1 : rfs_chain_portable(&ch2, port2, sizeof(port2));
	check(n >= 0 && strcmp(port2, port) == 0,
	      "canonical '%s' gives portable '%s', not '%s'", ch.canonical,
	      n >= 0 ? port2 : "", port);
	/* the portable text is its own portable text */
	rc = rfs_chain_parse(port, &ch2, msg, sizeof(msg));
	n = rc ? -1 : rfs_chain_portable(&ch2, port2, sizeof(port2));
	check(n >= 0 && strcmp(port2, port) == 0,
	      "portable '%s' is not a fixed point ('%s')", port, port2);
}

static const struct {
	const char *in, *portable;
} portables[] = {
	{ "proj=EPSG:3857", "@proj=EPSG_3857,near.tif" },
	{ "proj=EPSG:32633,res=30,bilinear",
	  "@proj=EPSG_32633,res=30,bilinear.tif" },
	{ "proj=IAU_2015:49900", "@proj=IAU__2015_49900,near.tif" },
	{ "proj=IGNF:STPM50_V,cubic", "@proj=IGNF_STPM50__V,cubic.tif" },
	{ "proj=IGNF:ATIGBONNE.BOURD", "@proj=IGNF_ATIGBONNE.BOURD,near.tif" },
	{ "proj=OGC:CRS84h", "@proj=OGC_CRS84h,near.tif" },
	{ "clip=-124.9,48.1,-124.8,48.2,EPSG:4326",
	  "@clip=-124.9,48.1,-124.8,48.2,EPSG_4326.tif" },
	{ "clip=0,0,100,50", "@clip=0,0,100,50.tif" },
	{ "reclass=-inf:0:-1,0:200:1,200:inf:2",
	  "@reclass=-inf_0_-1,0_200_1,200_inf_2,other=nodata.tif" },
	{ "reclass=-inf:-5:-1,-5:inf:1,other=-9999",
	  "@reclass=-inf_-5_-1,-5_inf_1,other=-9999.tif" },
	{ "reclass=1e20:1e21:1e-7", "@reclass=1e+20_1e+21_1e-07,"
	  "other=nodata.tif" },
	{ "proj=EPSG:32631@focal=5,max@reclass=0:200:1,200:400:2,400:inf:3",
	  "@proj=EPSG_32631,near@focal=5,max,square"
	  "@reclass=0_200_1,200_400_2,400_inf_3,other=nodata.tif" },
	{ "focal=3", "@focal=3,mean,square.tif" },
	{ "slope", "@slope=degrees.tif" },
	{ "focal=3.png", "@focal=3,mean,square.png" },
	{ "focal=3@fmt=png,p2", "@focal=3,mean,square@fmt=png,p2.png" },
	{ "focal=3@fmt=cog", "@focal=3,mean,square@fmt=cog.tif" },
	{ "proj=EPSG:4326,res=0.5", "@proj=EPSG_4326,res=0.5,near.tif" },
	{ "nodata=-0.5", "@nodata=-0.5.tif" },
	{ "fmt=gtiff", "@fmt=gtiff.tif" },
	{ "fmt=png", "@fmt=png,minmax.png" },
	{ "fmt=cog", "@fmt=cog.tif" },
};

/* Portable (or mixed) inputs and the canonical text they must give. */
static const struct {
	const char *in, *canonical;
} portable_in[] = {
	{ "proj=EPSG_3857", "@proj=EPSG:3857,near" },
	{ "proj=epsg_3857,bilinear", "@proj=EPSG:3857,bilinear" },
	{ "proj=bilinear,res=30,EPSG_032633",
	  "@proj=EPSG:32633,res=30,bilinear" },
	{ "proj=crs=EPSG_3857,resampling=nearest", "@proj=EPSG:3857,near" },
	{ "proj=IAU__2015_49900", "@proj=IAU_2015:49900,near" },
	{ "proj=iau__2015_49900", "@proj=IAU_2015:49900,near" },
	{ "proj=IAU_2015:49900", "@proj=IAU_2015:49900,near" },
	{ "proj=IGNF_STPM50__V", "@proj=IGNF:STPM50_V,near" },
	{ "proj=ignf_LAMB93", "@proj=IGNF:LAMB93,near" },
	{ "proj=OGC_CRS84h", "@proj=OGC:CRS84h,near" },
	{ "proj=A____B_C", "@proj=A__B:C,near" },
	{ "clip=0,0,1,1,EPSG_4326", "@clip=0,0,1,1,EPSG:4326" },
	{ "clip=crs=epsg_4326,-1,-2,3,4", "@clip=-1,-2,3,4,EPSG:4326" },
	{ "reclass=0_200_1,200_400_2,400_inf_3",
	  "@reclass=0:200:1,200:400:2,400:inf:3,other=nodata" },
	{ "reclass=-INF_-5_-1,-5_Inf_1,other=0",
	  "@reclass=-inf:-5:-1,-5:inf:1,other=0" },
	{ "reclass=-1e3_-1e-3_2.50", "@reclass=-1000:-0.001:2.5,other=nodata" },
	{ "reclass=0:1:1,1_2_2", "@reclass=0:1:1,1:2:2,other=nodata" },
	{ "proj=EPSG_32631@focal=5,max@reclass=0_200_1,200_inf_3.tif",
	  "@proj=EPSG:32631,near@focal=5,max,square"
	  "@reclass=0:200:1,200:inf:3,other=nodata" },
	{ "proj=EPSG_3857,near@fmt=png,p2.png",
	  "@proj=EPSG:3857,near@fmt=png,p2" },
};

static const struct {
	const char *in;
	const char *needle;
} portable_errs[] = {
	{ "proj=IAU_2015_49900", "more than one single '_'" },
	{ "proj=IAU_2015_49900", "IAU__2015_49900 is IAU_2015:49900" },
	{ "proj=EPSG_3857_", "more than one single '_'" },
	{ "proj=EPSG_38_57", "more than one single '_'" },
	{ "proj=EPSG___3857", "run of 3 '_'" },
	{ "proj=EPSG_____3857", "run of 5 '_'" },
	{ "proj=EPSG__3857", "no single '_'" },
	{ "proj=_EPSG_3857", "more than one single '_'" },
	{ "proj=_3857", "needs both an authority and a code" },
	{ "proj=EPSG_", "needs both an authority and a code" },
	{ "proj=__EPSG_3857", "begins or ends with '_'" },
	{ "proj=EPSG_3857__", "begins or ends with '_'" },
	{ "proj=EPSG_:3857", "begins or ends with '_'" },
	{ "proj=EPSG:_3857", "begins or ends with '_'" },
	{ "clip=0,0,1,1,IGNF:X.", "begins or ends with '_' or '.'" },
	{ "proj=IGNF_.X", "begins or ends with '_' or '.'" },
	{ "proj=EP-SG_3857", "CRS authority" },
	{ "proj=EPSG_38.57!", "character '!'" },
	{ "proj=3857", "proj=EPSG_3857" },
	{ "proj=EPSG_3857,EPSG_4326", "twice" },
	{ "clip=0,0,1,1,EPSG__4326", "no single '_'" },
	{ "clip=0,0,1,1,EPSG_4326,EPSG:4326", "twice" },
	{ "reclass=0_100:1", "mixes ':' and '_'" },
	{ "reclass=0_100", "a:b:v or a_b_v" },
	{ "reclass=0_100_1_2", "a:b:v or a_b_v" },
	{ "reclass=0__100_1", "a:b:v or a_b_v" },
	{ "reclass=100_0_1", "less than" },
	{ "reclass=0_100_inf", "finite" },
};

static void test_portable(void)
{
	char msg[RFS_MSG_MAX], port[RFS_CHAIN_PORTABLE_MAX], small[8];
	size_t i;
	int rc, n;

	for (i = 0; i < sizeof(portables) / sizeof(portables[0]); i++) {
		rc = rfs_chain_parse(portables[i].in, &ch, msg, sizeof(msg));
		check(rc == 0, "parse '%s': %s", portables[i].in, msg);
		if (rc)
			continue;
		n = rfs_chain_portable(&ch, port, sizeof(port));
		check(n > 0 && strcmp(port, portables[i].portable) == 0,
		      "portable of '%s': '%s', want '%s'", portables[i].in,
		      port, portables[i].portable);
		portable_one(portables[i].in);
	}
	/* every step's example, and every canonical example above */
	for (i = 0; i < RFS_OP_COUNT; i++)
		portable_one(rfs_steps[i].example);
	for (i = 0; i < sizeof(canon) / sizeof(canon[0]); i++)
		portable_one(canon[i].in);
	for (i = 0; i < sizeof(fmts) / sizeof(fmts[0]); i++)
		portable_one(fmts[i].in);

	for (i = 0; i < sizeof(portable_in) / sizeof(portable_in[0]); i++) {
		rc = rfs_chain_parse(portable_in[i].in, &ch, msg, sizeof(msg));
		check(rc == 0 && strcmp(ch.canonical,
					portable_in[i].canonical) == 0,
		      "'%s': rc %d (%s), canonical '%s', want '%s'",
		      portable_in[i].in, rc, msg, rc ? "" : ch.canonical,
		      portable_in[i].canonical);
		if (rc == 0)
			portable_one(portable_in[i].in);
	}
	for (i = 0; i < sizeof(portable_errs) / sizeof(portable_errs[0]);
	     i++) {
		strcpy(msg, "stale");
		rc = rfs_chain_parse(portable_errs[i].in, &ch, msg,
				     sizeof(msg));
		check(rc == -RFS_E_BAD_ARG, "'%s': rc %d (%s), want EINVAL "
		      "[%s]", portable_errs[i].in, rc, rfs_err_name(rc), msg);
		check(strstr(msg, portable_errs[i].needle) != NULL,
		      "'%s': message '%s' lacks '%s'", portable_errs[i].in,
		      msg, portable_errs[i].needle);
	}

	/* a buffer too small, NULL, a chain that is not one */
	rc = rfs_chain_parse("proj=EPSG:3857", &ch, msg, sizeof(msg));
	n = rfs_chain_portable(&ch, small, sizeof(small));
	check(rc == 0 && n == -RFS_E_TOO_LONG && strlen(small) < sizeof(small),
	      "portable into 8 bytes: %d '%s'", n, small);
	check(rfs_chain_portable(&ch, NULL, 0) == -RFS_E_TOO_LONG,
	      "portable into nothing");
	check(rfs_chain_portable(NULL, port, sizeof(port)) == -RFS_E_BAD_ARG,
	      "portable of NULL");
	ch.steps[0].op = RFS_OP_COUNT;
	check(rfs_chain_portable(&ch, port, sizeof(port)) == -RFS_E_BAD_ARG,
	      "portable of a step not in the table");
	/* a CRS of many '_', each doubled */
	rc = rfs_chain_parse("proj=A_B_C_D_E_F_G_H_I_J_K_L:M_N_O_P_Q_R_S_T_U_V_"
			     "W_X", &ch, msg, sizeof(msg));
	n = rc ? -1 : rfs_chain_portable(&ch, port, sizeof(port));
	check(n > 0 && strcmp(port, "@proj=A__B__C__D__E__F__G__H__I__J__K__"
			      "L_M__N__O__P__Q__R__S__T__U__V__W__X,near.tif")
	      == 0,
	      "CRS with many '_': %d %s '%s'", rc, msg, n > 0 ? port : "");
}

/* A generator of valid chains over every step, each written with ':'
 * only, with '_' only (portable) and mixed; all three must give one
 * canonical text, and its portable spelling must be the expected one. */

static const char *const gen_crs_pool[] = {
	"EPSG:3857", "EPSG:32633", "EPSG:4326", "ESRI:54009", "IGNF:LAMB93",
	"IGNF:STPM50_V", "IGNF:ATIGBONNE.BOURD", "IAU_2015:49900",
	"IAU_2015:30100", "OGC:CRS84h", "OGC:CRS84", "NKG:ETRF14",
};

/* A CRS in the ':' spelling: from PROJ's shapes, or made up with '_' and
 * '.' inside (never at either end, never "..", the grammar's rules). */
static void gen_crs(char *out, size_t len)
{
	static const char a_chars[] = "AEIOUXYZ0123456789eps__";
	static const char c_chars[] = "ABCxyz0123456789__.";
	size_t an, cn, k = 0;

	if (grnd() % 2) {
		snprintf(out, len, "%s",
			 gen_crs_pool[grnd() % (sizeof(gen_crs_pool) /
					       sizeof(gen_crs_pool[0]))]);
		return;
	}
	an = 1 + grnd() % 9;
	cn = 1 + grnd() % 12;
	for (size_t i = 0; i < an; i++) {
		char c = a_chars[grnd() % (sizeof(a_chars) - 1)];
		if (c == '_' && (i == 0 || i + 1 == an))
			c = 'Q';
		out[k++] = c;
	}
	out[k++] = ':';
	for (size_t i = 0; i < cn; i++) {
		char c = c_chars[grnd() % (sizeof(c_chars) - 1)];
		if (((c == '_' || c == '.') && (i == 0 || i + 1 == cn)) ||
		    (c == '.' && out[k - 1] == '.'))
			c = 'k';
		out[k++] = c;
	}
	out[k] = '\0';
}

/* Spell a ':' text portable: '_' -> "__", ':' -> '_'. */
static void to_portable(const char *in, char *out, size_t len)
{
	size_t n = 0;

	for (; *in && n + 3 < len; in++) {
		if (*in == '_') {
			out[n++] = '_';
			out[n++] = '_';
		} else {
			out[n++] = *in == ':' ? '_' : *in;
		}
	}
	out[n] = '\0';
}

/* A number of a range: integers, eighths, exponents (exact doubles, so
 * the order below is the order of the values). */
static double gen_step_size(void)
{
	switch (grnd() % 4) {
	case 0:
		return (double)(1 + grnd() % 1000);
	case 1:
		return (double)(1 + grnd() % 64) / 8;
	case 2:
		return 1e6 * (double)(1 + grnd() % 9);
	default:
		return 0.001 * (double)(1 + grnd() % 5);
	}
}

/* Append to the three spellings: t[0] ':' only, t[1] '_' only, t[2]
 * each piece either way. */
struct gen_text {
	char t[3][2048];
	size_t n[3];
};

static void gen_add(struct gen_text *g, const char *colon)
{
	char port[512];

	to_portable(colon, port, sizeof(port));
	for (int i = 0; i < 3; i++) {
		const char *s = i == 0 ? colon : i == 1 ? port :
				(grnd() % 2 ? colon : port);
		g->n[i] += (size_t)snprintf(g->t[i] + g->n[i],
					    sizeof(g->t[i]) - g->n[i], "%s", s);
	}
}

/* Text without ':' or '_', the same in all three. */
static void gen_plain(struct gen_text *g, const char *s)
{
	for (int i = 0; i < 3; i++)
		g->n[i] += (size_t)snprintf(g->t[i] + g->n[i],
					    sizeof(g->t[i]) - g->n[i], "%s", s);
}

static void gen_reclass(struct gen_text *g)
{
	char piece[256], a[48], b[48], v[48];
	int n = 1 + (int)(grnd() % 6), order[8];
	double x = -1000.0 * (double)(grnd() % 3), bounds[9];

	for (int i = 0; i <= n; i++) {
		bounds[i] = x;
		x += gen_step_size();
	}
	for (int i = 0; i < n; i++)
		order[i] = i;
	for (int i = n - 1; i > 0; i--) {	/* ranges in any order */
		int j = (int)(grnd() % (uint64_t)(i + 1)), t = order[i];
		order[i] = order[j];
		order[j] = t;
	}
	gen_plain(g, "reclass=");
	for (int k = 0; k < n; k++) {
		int i = order[k];

		if (i == 0 && grnd() % 3 == 0)
			snprintf(a, sizeof(a), grnd() % 2 ? "-inf" : "-INF");
		else
			snprintf(a, sizeof(a), "%.17g", bounds[i]);
		if (i == n - 1 && grnd() % 3 == 0)
			snprintf(b, sizeof(b), grnd() % 2 ? "inf" : "+Inf");
		else
			snprintf(b, sizeof(b), "%.17g", bounds[i + 1]);
		snprintf(v, sizeof(v), "%d", (int)(grnd() % 2001) - 1000);
		snprintf(piece, sizeof(piece), "%s%s:%s:%s", k ? "," : "", a,
			 b, v);
		gen_add(g, piece);
	}
	if (grnd() % 3 == 0)
		gen_plain(g, grnd() % 2 ? ",other=nodata" : ",other=-9999");
}

static void gen_chain(struct gen_text *g)
{
	static const char *const plain[] = {
		"focal=3", "focal=5,max,circle", "focal=size=7,stat=median",
		"slope", "slope=percent", "aspect", "roughness", "tri", "tpi",
		"hillshade", "hillshade=300,30,z=2",
		"hillshade=multidirectional", "res=30", "res=0.5,bilinear",
		"size=512,256", "size=100,100,average", "clip=0,0,100,50",
		"band=3,2,1", "type=Byte", "type=float32", "nodata=-9999",
		"nodata=none", "ndi=4,3",
	};
	static const char *const tails[] = {
		"", "", "", ".tif", ".TIFF", ".png", "@fmt=png", "@fmt=png,p2",
		"@fmt=cog", "@fmt=cog.tif", "@fmt=gtiff", "@fmt=png,p2.png",
	};
	char crs[80], piece[160];
	int nsteps = 1 + (int)(grnd() % 5);

	memset(g, 0, sizeof(*g));
	for (int s = 0; s < nsteps; s++) {
		if (s)
			gen_plain(g, "@");
		switch (grnd() % 5) {
		case 0:
			gen_crs(crs, sizeof(crs));
			gen_plain(g, "proj=");
			switch (grnd() % 3) {
			case 0:
				gen_add(g, crs);
				break;
			case 1:
				gen_plain(g, "bilinear,");
				gen_add(g, crs);
				break;
			default:
				snprintf(piece, sizeof(piece), "crs=%s", crs);
				gen_add(g, piece);
				gen_plain(g, ",res=30");
			}
			break;
		case 1:
			gen_crs(crs, sizeof(crs));
			snprintf(piece, sizeof(piece), "clip=-%d,-5,10.5,%d,%s",
				 (int)(grnd() % 100), 1 + (int)(grnd() % 100),
				 crs);
			gen_add(g, piece);
			break;
		case 2:
			gen_reclass(g);
			break;
		default:
			gen_plain(g, plain[grnd() % (sizeof(plain) /
						   sizeof(plain[0]))]);
		}
	}
	gen_plain(g, tails[grnd() % (sizeof(tails) / sizeof(tails[0]))]);
}

static void test_portable_generated(void)
{
	struct gen_text g;
	char msg[RFS_MSG_MAX], canonical[RFS_CHAIN_TEXT_MAX];
	int rc, i, n = 0;

	for (int iter = 0; iter < 30000; iter++) {
		gen_chain(&g);
		rc = rfs_chain_parse(g.t[0], &ch, msg, sizeof(msg));
		if (rc) {
			check(0, "generated '%s' does not parse: %s", g.t[0],
			      msg);
			continue;
		}
		snprintf(canonical, sizeof(canonical), "%s", ch.canonical);
		check(strchr(g.t[1], ':') == NULL, "'%s' has a ':'", g.t[1]);
		for (i = 1; i < 3; i++) {
			rc = rfs_chain_parse(g.t[i], &ch, msg, sizeof(msg));
			check(rc == 0 && strcmp(ch.canonical, canonical) == 0,
			      "'%s' gives '%s' (%d %s), but '%s' gives '%s'",
			      g.t[i], rc ? "" : ch.canonical, rc, msg, g.t[0],
			      canonical);
		}
		portable_one(g.t[0]);
		portable_one(g.t[1]);
		n++;
	}
	printf("portable: %d generated chains, each written three ways\n", n);
}

/* ------------------------------------------------------------------ */
/* Fuzz: random and mutated text (rnd() above). */

static const char *const seeds[] = {
	"proj=EPSG:3857", "proj=EPSG:32633,res=30,bilinear", "focal=3",
	"focal=5,max,circle", "reclass=0:100:1,100:500:2,500:inf:3",
	"reclass=-inf:0:0,other=-9999", "focal=size=7,stat=median,shape=circle",
	"proj=ESRI:54009,resampling=cubic@focal=3@reclass=0:1:1",
	"proj=crs=IGNF:LAMB93,res=2.5e1,nearest",
	"slope=percent@aspect@tri@tpi@roughness", "hillshade=300,30,z=2",
	"hillshade=alt=45,multidirectional", "res=30,bilinear",
	"size=512,512,average", "clip=0,0,100,50,EPSG:4326",
	"band=3,2,1@type=Byte@nodata=none", "ndi=4,3@nodata=-9999",
};

static const char *const pieces[] = {
	"@", "=", ",", ":", ".", "-", "+", "e", "E", "inf", "nan", "0", "1",
	"3", "9", "255", "1e308", "1e-400", "proj", "focal", "reclass", "res",
	"crs", "size", "stat", "shape", "other", "nodata", "EPSG", "max",
	"median", "circle", "near", "..", "/", "\xff", " ", "\0", "0x1p3",
	"_", "q1", "99999999999", "slope", "hillshade", "multidirectional",
	"z", "alt", "az", "size", "clip", "band", "type", "Byte", "none",
	"ndi", "tri", "percent",
	"_", "q1", "99999999999", "fmt", "png", "cog", "gtiff", ".tif",
	".png", ".tiff", "p2", "stretch",
};

static void fuzz_one(const char *text)
{
	char msg[RFS_MSG_MAX];
	int rc, rc2;

	msg[0] = 'x';
	rc = rfs_chain_parse(text, &ch, msg, sizeof(msg));
	if (rc != 0 && rc != -RFS_E_UNKNOWN_STEP && rc != -RFS_E_BAD_ARG &&
	    rc != -RFS_E_TOO_LONG) {
		check(0, "fuzz '%s': unexpected rc %d", text, rc);
		return;
	}
	if (rc) {
		if (msg[0] == '\0' || strlen(msg) >= sizeof(msg))
			check(0, "fuzz '%s': no message", text);
		else
			passed++;
		return;
	}
	if (ch.nsteps < 0 || ch.nsteps > RFS_CHAIN_MAX_STEPS ||
	    (ch.nsteps == 0 && !strstr(ch.canonical, "@fmt=")) ||
	    ch.canonical[0] != '@' ||
	    strlen(ch.canonical) >= RFS_CHAIN_TEXT_MAX) {
		check(0, "fuzz '%s': bad result", text);
		return;
	}
	rc2 = rfs_chain_parse(ch.canonical, &ch2, msg, sizeof(msg));
	if (rc2 || memcmp(&ch, &ch2, sizeof(ch)) != 0)
		check(0, "fuzz '%s': canonical '%s' does not reparse to "
		      "itself (%d %s)", text, ch.canonical, rc2, msg);
	else
		passed++;
}

static void test_fuzz(void)
{
	char buf[600];
	size_t n, m, len, k;
	int iter, j, ok0 = passed, accepted = 0;
	const char *pc;

	for (iter = 0; iter < 200000; iter++) {
		if (iter % 3 == 0) {
			/* Random bytes, mostly from the grammar's alphabet. */
			static const char alpha[] =
				"@=,:.-+_0123456789eEinfaxmcrsqpoj/ ";
			len = rnd() % 60;
			for (k = 0; k < len; k++)
				buf[k] = rnd() % 16 ? alpha[rnd() %
					(sizeof(alpha) - 1)] :
					(char)(rnd() % 256);
			buf[len] = '\0';
		} else {
			/* A valid seed (or two joined), then a few edits. */
			len = (size_t)snprintf(buf, sizeof(buf), "%s",
					       seeds[rnd() % 9]);
			if (rnd() % 2)
				len += (size_t)snprintf(buf + len,
						sizeof(buf) - len, "@%s",
						seeds[rnd() % 9]);
			for (j = (int)(rnd() % 4); j >= 0; j--) {
				k = len ? rnd() % (len + 1) : 0;
				switch (rnd() % 3) {
				case 0:	/* delete a run */
					m = rnd() % 4;
					if (k + m > len)
						m = len - k;
					memmove(buf + k, buf + k + m,
						len - k - m + 1);
					len -= m;
					break;
				case 1:	/* insert a piece */
					pc = pieces[rnd() % (sizeof(pieces) /
						sizeof(pieces[0]))];
					n = strlen(pc);
					if (len + n + 1 >= sizeof(buf))
						break;
					memmove(buf + k + n, buf + k,
						len - k + 1);
					memcpy(buf + k, pc, n);
					len += n;
					break;
				default: /* replace a byte */
					if (k < len)
						buf[k] = (char)rnd();
					break;
				}
			}
			buf[len] = '\0';
		}
		fuzz_one(buf);
		if (rfs_chain_parse(buf, &ch, NULL, 0) == 0) {
			accepted++;
			portable_one(buf);
		}
	}
	/* The mutations must exercise both paths. */
	check(accepted > 1000 && accepted < 190000,
	      "fuzz: %d of 200000 accepted", accepted);
	printf("fuzz: %d cases checked, %d accepted\n", passed - ok0,
	       accepted);
}

/* ------------------------------------------------------------------ */

static void test_format_double(void)
{
	/* Expected texts: Python's repr() (shortest round trip), except
	 * that integers below 1e15 are written in plain digits. */
	static const struct {
		double v;
		const char *s;
	} t[] = {
		{ 0.5, "0.5" }, { 500, "500" }, { 1e20, "1e+20" },
		{ 0, "0" }, { -2.5, "-2.5" }, { 0.1, "0.1" },
		{ 1.0 / 3, "0.3333333333333333" },
		{ 2.0 / 3, "0.6666666666666666" },
		{ 1e-5, "1e-05" }, { 123456.789, "123456.789" },
		{ 1e15, "1e+15" }, { 999999999999999, "999999999999999" },
		{ 5e-324, "5e-324" },
		{ 1.7976931348623157e308, "1.7976931348623157e+308" },
		{ 0.000277777777777778, "0.000277777777777778" },
		{ -9999, "-9999" }, { 30, "30" },
	};
	char buf[64];
	size_t i;
	int n, k;
	union {
		uint64_t u;
		double d;
	} r;

	for (i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		n = rfs_format_double(t[i].v, buf, sizeof(buf));
		check(n == (int)strlen(t[i].s) && strcmp(buf, t[i].s) == 0,
		      "format %.17g: '%s', want '%s'", t[i].v, buf, t[i].s);
	}
	n = rfs_format_double(INFINITY, buf, sizeof(buf));
	check(n == 3 && strcmp(buf, "inf") == 0, "format inf");
	n = rfs_format_double(-INFINITY, buf, sizeof(buf));
	check(n == 4 && strcmp(buf, "-inf") == 0, "format -inf");
	n = rfs_format_double(0.5, buf, 3);
	check(n == -1, "format into a short buffer: %d", n);
	n = rfs_format_double(0.5, buf, 4);
	check(n == 3, "format into an exact buffer: %d", n);

	/* Random bit patterns: round trip, and one digit fewer would not. */
	for (k = 0; k < 100000; k++) {
		char shorter[400];
		int digits = 0;
		const char *q;

		r.u = rnd();
		if (!isfinite(r.d))
			continue;
		n = rfs_format_double(r.d, buf, sizeof(buf));
		if (n <= 0 || strtod(buf, NULL) != r.d) {
			check(0, "round trip of %a: '%s'", r.d, buf);
			continue;
		}
		/* Significant digits: skip the sign, leading zeros and the
		 * point; integers below 1e15 are plain digits by design. */
		for (q = buf; *q == '-' || *q == '0' || *q == '.'; q++)
			;
		for (; *q && *q != 'e'; q++)
			digits += *q >= '0' && *q <= '9';
		if (!(r.d == trunc(r.d) && fabs(r.d) < 1e15) && digits > 1) {
			snprintf(shorter, sizeof(shorter), "%.*g", digits - 1,
				 r.d);
			if (strtod(shorter, NULL) == r.d) {
				check(0, "'%s' is not shortest ('%s')", buf,
				      shorter);
				continue;
			}
		}
		passed++;
	}
}

/* ------------------------------------------------------------------ */

static void test_crs(void)
{
	static const struct {
		const char *crs;
		int rc;
		const char *needle;
	} t[] = {
		{ "EPSG:3857", 0, NULL },
		{ "EPSG:32633", 0, NULL },
		{ "ESRI:54009", 0, NULL },
		{ "EPSG:4326", 0, NULL },
		{ "IGNF:LAMB93", 0, NULL },
		{ "OGC:CRS84", 0, NULL },
		{ "EPSG:99999", -RFS_E_BAD_CRS, "not a CRS in PROJ's" },
		{ "EPSG:7030", -RFS_E_BAD_CRS, "ellipsoid" },
		{ "EPSG:6326", -RFS_E_BAD_CRS, "datum" },
		{ "IGNF:lamb93", -RFS_E_BAD_CRS, "IGNF:LAMB93" },
		{ "FOO:4326", -RFS_E_BAD_CRS, "not an authority" },
		{ "EPSG", -RFS_E_BAD_CRS, "AUTHORITY:CODE" },
		{ "", -RFS_E_BAD_CRS, "AUTHORITY:CODE" },
	};
	char msg[RFS_MSG_MAX];
	size_t i;
	int rc, pass;

	/* Twice: the second pass is answered from the memo. */
	for (pass = 0; pass < 2; pass++) {
		for (i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
			strcpy(msg, "stale");
			rc = rfs_crs_check(t[i].crs, msg, sizeof(msg));
			check(rc == t[i].rc, "crs %s (pass %d): rc %d, want "
			      "%d [%s]", t[i].crs, pass, rc, t[i].rc, msg);
			if (t[i].rc)
				check(t[i].needle && strstr(msg, t[i].needle),
				      "crs %s: message '%s' lacks '%s'",
				      t[i].crs, msg, t[i].needle);
			else
				check(msg[0] == '\0', "crs %s: message '%s' "
				      "on success", t[i].crs, msg);
		}
	}
	rc = rfs_crs_check(NULL, msg, sizeof(msg));
	check(rc == -RFS_E_BAD_CRS, "crs NULL");

	/* More codes than memo slots, then the first ones again. */
	for (i = 0; i < 330; i++) {
		char code[32];

		snprintf(code, sizeof(code), "EPSG:%zu", 32601 + i % 60);
		if (i >= 60)
			snprintf(code, sizeof(code), "EPSG:%zu", 900000 + i);
		rc = rfs_crs_check(code, NULL, 0);
		check(rc == (i < 60 ? 0 : -RFS_E_BAD_CRS), "crs %s: %d",
		      code, rc);
	}
	rc = rfs_crs_check("EPSG:32601", msg, sizeof(msg));
	check(rc == 0, "crs after memo churn");
	rfs_crs_cleanup();
	rc = rfs_crs_check("EPSG:3857", msg, sizeof(msg));
	check(rc == 0, "crs after cleanup");
	rfs_crs_cleanup();
}

/* ------------------------------------------------------------------ */

static void test_err(void)
{
	/* The mapping of issue 2, spelled out independently of err.c. */
	static const struct {
		int code;
		const char *name;
		int err;
	} t[] = {
		{ RFS_E_UNKNOWN_STEP, "RFS-E100", ENOENT },
		{ RFS_E_BAD_ARG, "RFS-E101", EINVAL },
		{ RFS_E_BAD_CRS, "RFS-E102", EINVAL },
		{ RFS_E_ESCAPE, "RFS-E103", EACCES },
		{ RFS_E_TOO_LONG, "RFS-E104", ENAMETOOLONG },
		{ RFS_E_NO_SOURCE, "RFS-E105", ENOENT },
		{ RFS_E_TOO_BIG, "RFS-E106", EFBIG },
		{ RFS_E_SOURCE, "RFS-E200", EIO },
		{ RFS_E_PROCESS, "RFS-E201", EIO },
		{ RFS_E_CRASH, "RFS-E202", EIO },
		{ RFS_E_NOMEM, "RFS-E203", ENOMEM },
		{ RFS_E_CANCELLED, "RFS-E204", ECANCELED },
		{ RFS_E_TIMEOUT, "RFS-E205", ETIMEDOUT },
		{ RFS_E_SHUTDOWN, "RFS-E206", EIO },
		{ RFS_E_NOSPACE, "RFS-E300", ENOSPC },
		{ RFS_E_STORE_IO, "RFS-E301", EIO },
		{ RFS_E_STORE_CORRUPT, "RFS-E302", EIO },
		{ RFS_E_STORE_VERSION, "RFS-E303", EIO },
		{ RFS_E_OPTION, "RFS-E400", EINVAL },
		{ RFS_E_INTERNAL, "RFS-E499", EIO },
	};
	const char *generic = rfs_strerror(-(RFS_E_BASE + 998));
	size_t i, j;

	for (i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		int c = t[i].code;

		check(strcmp(rfs_err_name(-c), t[i].name) == 0 &&
		      strcmp(rfs_err_name(c), t[i].name) == 0,
		      "name of %d: %s", c, rfs_err_name(-c));
		check(rfs_err_errno(-c) == t[i].err, "errno of %s: %d",
		      t[i].name, rfs_err_errno(-c));
		check(rfs_err_is_rfs(-c) && rfs_err_is_rfs(c), "is_rfs %s",
		      t[i].name);
		check(rfs_strerror(-c)[0] && strcmp(rfs_strerror(-c),
						    generic) != 0,
		      "message of %s", t[i].name);
		for (j = 0; j < i; j++)
			check(strcmp(rfs_strerror(-c),
				     rfs_strerror(-t[j].code)) != 0,
			      "%s and %s share a message", t[i].name,
			      t[j].name);
	}
	check(strcmp(rfs_err_name(-ENOENT), "ENOENT") == 0 &&
	      strcmp(rfs_err_name(EACCES), "EACCES") == 0,
	      "errno names");
	check(strcmp(rfs_strerror(-ENOENT), "No such file or directory") == 0,
	      "errno message: %s", rfs_strerror(-ENOENT));
	check(rfs_err_errno(-ENOENT) == ENOENT && rfs_err_errno(EIO) == EIO,
	      "errno passes through");
	check(!rfs_err_is_rfs(-ENOENT) && !rfs_err_is_rfs(0), "errno not rfs");
	check(rfs_strerror(0)[0] && rfs_err_name(0)[0], "code 0");
	check(rfs_strerror(-(RFS_E_BASE + 998))[0] &&
	      rfs_err_name(-(RFS_E_BASE + 998))[0] &&
	      rfs_err_errno(-(RFS_E_BASE + 998)) == EIO,
	      "unknown rfs code");
	check(rfs_strerror(-4000)[0] && rfs_err_name(-4000)[0] &&
	      rfs_strerror(-2147483647 - 1)[0], "unknown errno");
	check(rfs_err_from_store_errno(ENOSPC) == -RFS_E_NOSPACE &&
	      rfs_err_from_store_errno(EDQUOT) == -RFS_E_NOSPACE &&
	      rfs_err_from_store_errno(-EIO) == -RFS_E_STORE_IO &&
	      rfs_err_from_store_errno(EACCES) == -EACCES,
	      "store errno mapping");
}

int main(void)
{
	test_canonical();
	test_fields();
	test_errors();
	test_formats();
	test_portable();
	test_portable_generated();
	test_fuzz();
	test_format_double();
	test_crs();
	test_err();
	return check_report();
}
