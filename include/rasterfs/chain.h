/* chain.h - the chain grammar: the part of a virtual name after the source.
 *
 *     <source-file>@<step>[@<step>...]
 *     step := name[=arg[,arg...]]      args positional or key=value
 *
 * The parser is pure: no I/O, no global state, no allocation beyond the
 * caller's rfs_chain, so it is cheap to call at every lookup and easy to
 * fuzz.  Checks that need a database (is EPSG:3857 a CRS PROJ knows?) are
 * not done here; see crs.h.
 *
 * Every step has one canonical spelling with every default filled in, so
 * "@focal=3" and "@focal=3,mean,square" name the same cache entry.  The
 * canonical chain (rfs_chain.canonical) is also what the daemon sends a
 * worker: the worker parses it again.
 *
 * Each step is a row of the step table (step.h: name, parser, canonical
 * writer, flags, describe, run); its parser lives with its operation in
 * src/op_<family>.c.  Steps (see docs/grammar.md for the user's view):
 *   proj=CRS[,res=R][,RESAMPLING]      reproject with GDAL's warper
 *       canonical: proj=EPSG:3857,near   proj=EPSG:32633,res=30,bilinear
 *   focal=SIZE[,STAT][,SHAPE]          moving-window statistic
 *       canonical: focal=3,mean,square
 *   reclass=a:b:v[,a:b:v...][,other=V] half-open ranges [a,b) -> v
 *       canonical: reclass=0:200:1,200:400:2,400:inf:3,other=nodata
 *   slope[=degrees|percent]            terrain, by GDALDEMProcessing
 *       canonical: slope=degrees
 *   aspect, roughness, tri, tpi        terrain, no arguments
 *   hillshade[=AZ,ALT][,z=F][,multidirectional]
 *       canonical: hillshade=315,45,z=1
 *                  hillshade=alt=45,z=1,multidirectional (no azimuth)
 *   res=R[,RESAMPLING]                 new pixel size, same CRS (gdalwarp)
 *       canonical: res=30,near
 *   size=W,H[,RESAMPLING]              new grid size, same CRS (gdalwarp)
 *       canonical: size=512,512,near
 *   clip=MINX,MINY,MAXX,MAXY[,CRS]     gdal_translate -projwin
 *       canonical: clip=0,0,100,50     clip=-124.9,48.1,-124.8,48.2,EPSG:4326
 *   band=N[,N...]                      select or reorder bands
 *       canonical: band=3,2,1
 *   type=TYPE                          convert with clamping (GDAL's names)
 *       canonical: type=Byte  (Byte Int16 UInt16 Int32 Float32 Float64)
 *   nodata=V|none                      declare (or drop) the nodata value
 *       canonical: nodata=-9999  nodata=none
 *   ndi=A,B                            (A - B) / (A + B) as Float32
 *       canonical: ndi=4,3
 *
 * The output format is not a step but a property of the chain
 * (rfs_chain.format), named by a last step fmt=gtiff|cog|png[,STRETCH] or
 * by a trailing extension: ".tif"/".tiff" (GeoTIFF; also allowed after
 * fmt=cog) or ".png" at the very end of the text.  "focal=3.png" is
 * "focal=3@fmt=png".  Canonical form: the default GeoTIFF adds nothing
 * ("@focal=3,mean,square", so existing keys stay valid), except in a
 * chain with no step ("@fmt=gtiff"); others end with "@fmt=cog" or
 * "@fmt=png,minmax" / "@fmt=png,p2".
 *
 * Portable spelling.  A ':' cannot be in a file name on Windows or an SMB
 * share, makes rsync read "x.tif@proj=EPSG:3857" as HOST:PATH, and makes
 * GRASS's `grass -c FILE` take the name for an EPSG code.  The only ':'
 * of the grammar are in CRS codes and reclass ranges, and each has a
 * second spelling without it, read as the same step (same canonical text,
 * so the same cache entry):
 *   CRS    AUTH_CODE: one '_' for the ':', and a '_' inside the authority
 *          or the code doubled: EPSG_3857, IAU__2015_49900 (IAU_2015:49900),
 *          IGNF_STPM50__V (IGNF:STPM50_V).  A CRS with a ':' is read as
 *          before, its '_' as written.
 *   range  a_b_v: 0_200_1, -inf_0_1, 400_inf_3 (no number holds a '_').
 * Refused with RFS_E_BAD_ARG, because they read two ways: a portable CRS
 * with two single '_' (IAU_2015_49900) or a run of three, an authority or
 * code that begins or ends with '_' or '.' (either spelling; none in PROJ
 * does), a range that mixes ':' and '_'.  The canonical text keeps the ':' spelling; the portable
 * one is rfs_chain_portable's.
 */
#ifndef RASTERFS_CHAIN_H
#define RASTERFS_CHAIN_H

#include <stdbool.h>
#include <stddef.h>

#include "rasterfs/number.h"

#define RFS_CHAIN_MAX_STEPS 16
#define RFS_CHAIN_MAX_RANGES 64
#define RFS_CHAIN_TEXT_MAX 1024   /* longest canonical chain, with NUL */
/* longest portable spelling, with NUL: a '_' may double, ".tif" is added */
#define RFS_CHAIN_PORTABLE_MAX (2 * RFS_CHAIN_TEXT_MAX + 4)
#define RFS_CRS_MAX 64            /* longest CRS code, with NUL */
#define RFS_FOCAL_MAX_SIZE 255    /* largest focal window */
#define RFS_FOCAL_MAX_MEDIAN 63   /* largest window for median (O(k^2)) */
#define RFS_MSG_MAX 512           /* room for an error message */
#define RFS_CHAIN_MAX_BANDS 64    /* most bands in band=N,... */
#define RFS_BAND_MAX 65535        /* largest band number */
#define RFS_SIZE_MAX 1000000      /* largest W or H of size=W,H */

enum rfs_op {
	RFS_OP_PROJ,
	RFS_OP_FOCAL,
	RFS_OP_RECLASS,
	RFS_OP_SLOPE,
	RFS_OP_ASPECT,
	RFS_OP_HILLSHADE,
	RFS_OP_ROUGHNESS,
	RFS_OP_TRI,
	RFS_OP_TPI,
	RFS_OP_RES,
	RFS_OP_SIZE,
	RFS_OP_CLIP,
	RFS_OP_BAND,
	RFS_OP_TYPE,
	RFS_OP_NODATA,
	RFS_OP_NDI,
	RFS_OP_COUNT,	/* not a step: the number of steps (step.h) */
};

/* The output types of type=, in GDAL's spelling (GDALGetDataTypeByName). */
enum rfs_type {
	RFS_TYPE_BYTE, RFS_TYPE_INT16, RFS_TYPE_UINT16, RFS_TYPE_INT32,
	RFS_TYPE_FLOAT32, RFS_TYPE_FLOAT64,
};

enum rfs_focal_stat {
	RFS_FOCAL_MEAN,
	RFS_FOCAL_MIN,
	RFS_FOCAL_MAX,
	RFS_FOCAL_SUM,
	RFS_FOCAL_STD,   /* population standard deviation (ddof = 0) */
	RFS_FOCAL_RANGE, /* max - min */
	RFS_FOCAL_MEDIAN,/* even count: mean of the two middle values */
};

enum rfs_focal_shape {
	RFS_FOCAL_SQUARE,
	RFS_FOCAL_CIRCLE, /* cells whose centre is within SIZE/2 of the centre */
};

/* GDAL's resampling names, as gdalwarp -r spells them. */
enum rfs_resampling {
	RFS_RS_NEAR, RFS_RS_BILINEAR, RFS_RS_CUBIC, RFS_RS_CUBICSPLINE,
	RFS_RS_LANCZOS, RFS_RS_AVERAGE, RFS_RS_RMS, RFS_RS_MODE, RFS_RS_MAX,
	RFS_RS_MIN, RFS_RS_MED, RFS_RS_Q1, RFS_RS_Q3, RFS_RS_SUM,
};

/* The output file's format. */
enum rfs_format {
	RFS_FMT_GTIFF,   /* tiled GeoTIFF (the default) */
	RFS_FMT_COG,     /* Cloud Optimised GeoTIFF with internal overviews */
	RFS_FMT_PNG,     /* 8-bit quicklook + world file sibling */
};

/* How fmt=png maps values to 0..255, per band. */
enum rfs_stretch {
	RFS_STRETCH_MINMAX, /* the band's minimum..maximum */
	RFS_STRETCH_P2,     /* the 2nd..98th percentile */
};

struct rfs_range {
	double lo;    /* inclusive; may be -INFINITY */
	double hi;    /* exclusive; may be +INFINITY; lo < hi */
	double value; /* finite */
};

struct rfs_step {
	enum rfs_op op;
	union {
		struct {
			char crs[RFS_CRS_MAX]; /* "EPSG:3857": authority upper-cased */
			double res;            /* target pixel size; 0 = GDAL's choice */
			enum rfs_resampling resampling;
		} proj;
		struct {
			int size;              /* odd, 3..RFS_FOCAL_MAX_SIZE */
			enum rfs_focal_stat stat;
			enum rfs_focal_shape shape;
		} focal;
		struct {
			int n;                 /* 1..RFS_CHAIN_MAX_RANGES, sorted by lo,
			                          never overlapping */
			struct rfs_range ranges[RFS_CHAIN_MAX_RANGES];
			bool has_other;        /* false: unmatched values -> nodata */
			double other;
		} reclass;
		struct {
			bool percent;          /* false: degrees */
		} slope;
		struct {
			double azimuth;        /* degrees, [0, 360); unused when
			                          multidirectional */
			double altitude;       /* degrees, [0, 90] */
			double z;              /* vertical exaggeration, > 0 */
			bool multidirectional;
		} hillshade;
		struct {
			double res;            /* > 0, source CRS units */
			enum rfs_resampling resampling;
		} res;
		struct {
			int width, height;     /* 1..RFS_SIZE_MAX */
			enum rfs_resampling resampling;
		} size;
		struct {
			/* minx < maxx, miny < maxy */
			double minx, miny, maxx, maxy;
			char crs[RFS_CRS_MAX]; /* "" = the source's CRS */
		} clip;
		struct {
			int n;                 /* 1..RFS_CHAIN_MAX_BANDS */
			int bands[RFS_CHAIN_MAX_BANDS]; /* 1..RFS_BAND_MAX */
		} band;
		struct {
			enum rfs_type type;
		} type;
		struct {
			bool none;             /* true: remove nodata */
			double value;          /* finite */
		} nodata;
		struct {
			int a, b;              /* 1..RFS_BAND_MAX, a != b */
		} ndi;
	} u;
};

struct rfs_chain {
	int nsteps;                            /* 0..RFS_CHAIN_MAX_STEPS; 0
	                                          only with an explicit fmt */
	struct rfs_step steps[RFS_CHAIN_MAX_STEPS];
	enum rfs_format format;
	enum rfs_stretch stretch;              /* RFS_FMT_PNG only */
	/* "@proj=EPSG:3857,near@focal=3,mean,square": every step with its
	 * leading '@', canonical spelling. */
	char canonical[RFS_CHAIN_TEXT_MAX];
};

/* Parse the steps of a virtual name: the text after the '@' that ends the
 * source ("proj=EPSG:3857@focal=3"; a leading '@' is also accepted).
 *
 * On success 0 is returned and *out is filled, canonical text included.
 * On error *out is undefined, msg (if not NULL) receives one sentence that
 * says what is wrong and what would be right, e.g.
 *   "focal: SIZE must be an odd integer from 3 to 255, got '4' (try focal=3 or focal=5)"
 * and one of these is returned:
 *   -RFS_E_UNKNOWN_STEP  a step name that is not known (unknown steps get
 *                        ENOENT at the FUSE boundary)
 *   -RFS_E_BAD_ARG       a known step with bad, missing, repeated or extra
 *                        arguments; an empty step; a '/' or ".." anywhere;
 *                        fmt= anywhere but last, or an extension that
 *                        contradicts it (fmt=png.tif)
 *   -RFS_E_TOO_LONG      more than RFS_CHAIN_MAX_STEPS steps, a parameter
 *                        or canonical text over its limit
 */
int rfs_chain_parse(const char *text, struct rfs_chain *out,
		    char *msg, size_t msglen);

/* Write the portable spelling of a parsed chain into buf: the canonical
 * chain with no ':' ("@proj=EPSG_3857,near@reclass=0_200_1,200_inf_2,
 * other=nodata.tif"), made only of letters, digits and "@=,.-+_", never
 * ending in '.' or ' ', so a valid name on Windows and SMB, and safe for
 * rsync and GRASS.  It ends with the output's extension (".tif", ".png")
 * for programs that go by it; fmt= stays only where the extension does
 * not say everything ("@fmt=cog.tif", "@fmt=png,p2.png", a chain of no
 * step).  rfs_chain_parse reads it back to the same canonical text.
 * Append it to the source's name: "dem.tif" + portable.
 *
 * Returns its length (>= 0, without the NUL) on success, or
 *   -RFS_E_TOO_LONG  it does not fit in len bytes (RFS_CHAIN_PORTABLE_MAX
 *                    always suffices); buf then holds a truncated string
 *                    (or nothing if len is 0)
 *   -RFS_E_BAD_ARG   c is NULL or holds a step that is not in the table
 *                    (not a chain from rfs_chain_parse)
 */
int rfs_chain_portable(const struct rfs_chain *c, char *buf, size_t len);

/* "gtiff", "cog", "png"; "minmax", "p2". */
const char *rfs_format_name(enum rfs_format f);
const char *rfs_stretch_name(enum rfs_stretch s);

/* The step's name ("proj", "focal", "reclass", ...). */
const char *rfs_op_name(enum rfs_op op);
const char *rfs_type_name(enum rfs_type t); /* GDAL's: "Byte", "Int16" */
const char *rfs_focal_stat_name(enum rfs_focal_stat s);
const char *rfs_focal_shape_name(enum rfs_focal_shape s);
const char *rfs_resampling_name(enum rfs_resampling r); /* gdalwarp -r name */

/* rfs_format_double (number.h) writes the numbers of canonical texts. */

#endif
