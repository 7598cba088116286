/* steps.c - the step table: one row per step (see step.h).
 *
 * The row is the only place a step is known: its name, what it needs
 * (flags), its parser and canonical writer, its usage text, arguments and
 * example, and its engine (describe, run).  The grammar, the FUSE layer,
 * the pool, the worker and the operations read it; nothing else lists
 * steps.  Rows are in enum rfs_op's order, which is also the order of the
 * "Steps: ..." list in the grammar's messages.
 */
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "lex.h"
#include "steps_int.h"
#include "rasterfs/step.h"

#define NOARG { NULL, NULL, NULL, NULL, NULL }

/* The words of the arguments (step.h, rfs_step_arg.word).  An enum's
 * words come from its name function, which reads the array the parser
 * matches, so a new value is listed here without an edit; "?" is the name
 * functions' answer past the last value. */
static const char *enum_word(const char *name)
{
	return strcmp(name, "?") != 0 ? name : NULL;
}

static const char *rs_word(int i)
{
	return i >= 0 && i < rfs_lex_n_rs ? rfs_lex_rs_names[i] : NULL;
}

static const char *stat_word(int i)
{
	return enum_word(rfs_focal_stat_name((enum rfs_focal_stat)i));
}

static const char *shape_word(int i)
{
	return enum_word(rfs_focal_shape_name((enum rfs_focal_shape)i));
}

static const char *type_word(int i)
{
	return enum_word(rfs_type_name((enum rfs_type)i));
}

/* Words a parser matches with rfs_tok_is or a private array; test_steps.c
 * checks that each one parses where the row puts it. */
#define WORDS(fn, ...)                                                  \
	static const char *fn(int i)                                    \
	{                                                               \
		static const char *const w[] = { __VA_ARGS__, NULL };   \
		return i >= 0 && i < (int)(sizeof(w) / sizeof(w[0])) ? \
			w[i] : NULL;                                    \
	}
WORDS(unit_word, "degrees", "percent")
WORDS(multi_word, "multidirectional")
WORDS(none_word, "none")
WORDS(other_word, "nodata")

static const struct rfs_step_arg proj_args[] = {
	{ "CRS", NULL, "the target CRS, AUTHORITY:CODE or the portable "
	  "AUTHORITY_CODE (crs=)", "crs", NULL },
	{ "res=R", "GDAL's choice", "pixel size in the target CRS's units",
	  "res", NULL },
	{ "RESAMPLING", "near", "gdalwarp -r: " RS_LIST " (resampling=)",
	  "resampling", rs_word },
	NOARG,
};
static const struct rfs_step_arg focal_args[] = {
	{ "SIZE", NULL, "odd window size, 3 to 255 (size=)", "size", NULL },
	{ "STAT", "mean", "mean, min, max, sum, std, range, median (stat=); "
	  "median up to 63", "stat", stat_word },
	{ "SHAPE", "square", "square or circle (shape=)", "shape",
	  shape_word },
	NOARG,
};
static const struct rfs_step_arg reclass_args[] = {
	{ "a:b:v", NULL, "maps [a,b) to v (portable: a_b_v); a and b may be "
	  "inf or -inf; up to 64 ranges, never overlapping", NULL, NULL },
	{ "other=V", "nodata", "the value of cells in no range", "other",
	  other_word },
	NOARG,
};
static const struct rfs_step_arg slope_args[] = {
	{ "UNIT", "degrees", "degrees or percent", NULL, unit_word },
	NOARG,
};
static const struct rfs_step_arg hillshade_args[] = {
	{ "AZIMUTH", "315", "light from, degrees clockwise from north (az=)",
	  "az", NULL },
	{ "ALTITUDE", "45", "sun height, degrees (alt=)", "alt", NULL },
	{ "z=F", "1", "vertical exaggeration", "z", NULL },
	{ "multidirectional", "off", "light from several azimuths (no "
	  "AZIMUTH then)", NULL, multi_word },
	NOARG,
};
static const struct rfs_step_arg none_args[] = { NOARG };
static const struct rfs_step_arg res_args[] = {
	{ "R", NULL, "pixel size in the source CRS's units (res=)", "res",
	  NULL },
	{ "RESAMPLING", "near", "gdalwarp -r (resampling=)", "resampling",
	  rs_word },
	NOARG,
};
static const struct rfs_step_arg size_args[] = {
	{ "W", NULL, "width in pixels, 1 to 1000000", NULL, NULL },
	{ "H", NULL, "height in pixels, 1 to 1000000", NULL, NULL },
	{ "RESAMPLING", "near", "gdalwarp -r (resampling=)", "resampling",
	  rs_word },
	NOARG,
};
static const struct rfs_step_arg clip_args[] = {
	{ "MINX,MINY,MAXX,MAXY", NULL, "the window; snapped to whole source "
	  "pixels (gdal_translate -projwin)", NULL, NULL },
	{ "CRS", "the source's", "the window's CRS, AUTHORITY:CODE or the "
	  "portable AUTHORITY_CODE (crs=)", "crs", NULL },
	NOARG,
};
static const struct rfs_step_arg band_args[] = {
	{ "N", NULL, "band numbers, 1-based, in output order; up to 64",
	  NULL, NULL },
	NOARG,
};
static const struct rfs_step_arg type_args[] = {
	{ "TYPE", NULL, "Byte, Int16, UInt16, Int32, Float32, Float64", NULL,
	  type_word },
	NOARG,
};
static const struct rfs_step_arg nodata_args[] = {
	{ "V", NULL, "a finite number, or none to remove it", NULL,
	  none_word },
	NOARG,
};
static const struct rfs_step_arg ndi_args[] = {
	{ "A", NULL, "band A, 1-based", NULL, NULL },
	{ "B", NULL, "band B, 1-based, not A", NULL, NULL },
	NOARG,
};

/* A row at index o whose op is o: the two cannot disagree. */
#define ROW(o, ...) [o] = { .op = o, __VA_ARGS__ }

#define TERRAIN(o, n, what, fam, fl, u, a, ex)                          \
	ROW(o, .name = n, .flags = RFS_STEP_BARE | (fl),                \
	    .parse = rfs_##fam##_parse, .write = rfs_##fam##_write,     \
	    .summary = what, .usage = u, .args = a, .example = ex,      \
	    .bands = rfs_terrain_bands, .engine = &rfs_terrain_engine)

const struct rfs_step_desc rfs_steps[] = {
	ROW(RFS_OP_PROJ,
		.name = "proj",
		.flags = RFS_STEP_CRS | RFS_STEP_WARP | RFS_STEP_GRID,
		.crs_at = offsetof(struct rfs_step, u.proj.crs),
		.parse = rfs_proj_parse, .write = rfs_proj_write,
		.summary = "reproject with GDAL's warper (gdalwarp -t_srs)",
		.usage = "proj=CRS[,res=R][,RESAMPLING], e.g. proj=EPSG:3857 "
			 "or proj=EPSG:32633,res=30,bilinear",
		.args = proj_args,
		.example = "proj=EPSG:32633,res=30,bilinear",
		.engine = &rfs_proj_engine,
	),
	ROW(RFS_OP_FOCAL,
		.name = "focal",
		.parse = rfs_focal_parse, .write = rfs_focal_write,
		.summary = "moving-window statistic, nodata left out",
		.usage = "focal=SIZE[,STAT][,SHAPE], e.g. focal=3 or "
			 "focal=5,max,circle",
		.args = focal_args,
		.example = "focal=5,max,circle",
		.engine = &rfs_focal_engine,
	),
	ROW(RFS_OP_RECLASS,
		.name = "reclass",
		.flags = RFS_STEP_PIXELWISE,
		.parse = rfs_reclass_parse, .write = rfs_reclass_write,
		.summary = "value ranges [a,b) to classes v",
		.usage = "reclass=a:b:v[,a:b:v...][,other=V], e.g. "
			 "reclass=0:100:1,100:inf:2",
		.args = reclass_args,
		.example = "reclass=0:100:1,100:inf:2,other=nodata",
		.engine = &rfs_reclass_engine,
	),
	TERRAIN(RFS_OP_SLOPE, "slope", "terrain slope (gdaldem slope)",
		slope, 0,
		"slope[=degrees|percent], e.g. slope or slope=percent",
		slope_args, "slope=percent"),
	TERRAIN(RFS_OP_ASPECT, "aspect", "terrain aspect (gdaldem aspect)",
		bare, RFS_STEP_NOARGS, "aspect", none_args, "aspect"),
	TERRAIN(RFS_OP_HILLSHADE, "hillshade",
		"shaded relief (gdaldem hillshade)", hillshade, 0,
		"hillshade[=AZIMUTH,ALTITUDE][,z=F][,multidirectional], e.g. "
		"hillshade or hillshade=300,30,z=2 or "
		"hillshade=alt=45,multidirectional",
		hillshade_args, "hillshade=300,30,z=2"),
	TERRAIN(RFS_OP_ROUGHNESS, "roughness",
		"terrain roughness (gdaldem roughness)", bare,
		RFS_STEP_NOARGS, "roughness", none_args, "roughness"),
	TERRAIN(RFS_OP_TRI, "tri",
		"terrain ruggedness index (gdaldem TRI -alg Riley)", bare,
		RFS_STEP_NOARGS, "tri", none_args, "tri"),
	TERRAIN(RFS_OP_TPI, "tpi", "topographic position index (gdaldem TPI)",
		bare, RFS_STEP_NOARGS, "tpi", none_args, "tpi"),
	ROW(RFS_OP_RES,
		.name = "res",
		.flags = RFS_STEP_WARP | RFS_STEP_GRID,
		.parse = rfs_res_parse, .write = rfs_res_write,
		.summary = "new pixel size, same CRS (gdalwarp -tr)",
		.usage = "res=R[,RESAMPLING], e.g. res=30 or res=30,bilinear",
		.args = res_args,
		.example = "res=30,bilinear",
		.engine = &rfs_warp_grid_engine,
	),
	ROW(RFS_OP_SIZE,
		.name = "size",
		.flags = RFS_STEP_WARP | RFS_STEP_GRID,
		.parse = rfs_size_parse, .write = rfs_size_write,
		.summary = "new grid size, same CRS (gdalwarp -ts)",
		.usage = "size=W,H[,RESAMPLING], e.g. size=512,512 or "
			 "size=512,512,average",
		.args = size_args,
		.example = "size=512,512,average",
		.engine = &rfs_warp_grid_engine,
	),
	ROW(RFS_OP_CLIP,
		.name = "clip",
		.flags = RFS_STEP_CRS | RFS_STEP_GRID,
		.crs_at = offsetof(struct rfs_step, u.clip.crs),
		.parse = rfs_clip_parse, .write = rfs_clip_write,
		.summary = "cut a window of whole source pixels "
			   "(gdal_translate -projwin)",
		.usage = "clip=MINX,MINY,MAXX,MAXY[,CRS], e.g. "
			 "clip=500000,4100000,510000,4110000 or "
			 "clip=-125,48,-124.5,48.5,EPSG:4326",
		.args = clip_args,
		.example = "clip=-125,48,-124.5,48.5,EPSG:4326",
		.engine = &rfs_clip_engine,
	),
	ROW(RFS_OP_BAND,
		.name = "band",
		.flags = RFS_STEP_PIXELWISE,
		.parse = rfs_band_parse, .write = rfs_band_write,
		.summary = "select, repeat or reorder bands (gdal_translate -b)",
		.usage = "band=N[,N...] (1-based), e.g. band=1 or band=3,2,1",
		.args = band_args,
		.example = "band=3,2,1",
		.bands = rfs_band_bands,
		.engine = &rfs_translate_bands_engine,
	),
	ROW(RFS_OP_TYPE,
		.name = "type",
		.flags = RFS_STEP_PIXELWISE,
		.parse = rfs_type_parse, .write = rfs_type_write,
		.summary = "convert, rounding and clamping (gdal_translate -ot)",
		.usage = "type=Byte|Int16|UInt16|Int32|Float32|Float64, "
			 "e.g. type=Byte",
		.args = type_args,
		.example = "type=Byte",
		.engine = &rfs_translate_bands_engine,
	),
	ROW(RFS_OP_NODATA,
		.name = "nodata",
		.flags = RFS_STEP_PIXELWISE,
		.parse = rfs_nodata_parse, .write = rfs_nodata_write,
		.summary = "declare or drop the nodata value "
			   "(gdal_translate -a_nodata)",
		.usage = "nodata=V or nodata=none, e.g. nodata=-9999",
		.args = nodata_args,
		.example = "nodata=-9999",
		.engine = &rfs_translate_bands_engine,
	),
	ROW(RFS_OP_NDI,
		.name = "ndi",
		.flags = RFS_STEP_PIXELWISE,
		.parse = rfs_ndi_parse, .write = rfs_ndi_write,
		.summary = "normalised difference (A - B) / (A + B), Float32",
		.usage = "ndi=A,B (bands, 1-based), e.g. ndi=4,3",
		.args = ndi_args,
		.example = "ndi=4,3",
		.bands = rfs_ndi_bands,
		.engine = &rfs_ndi_engine,
	),
};

/* Every enum value has a row, and (ROW) each row sits at its op's index.
 * The array's size is that of its highest index, so a missing last row
 * fails here; a missing row in the middle would be all zeros, which
 * test_steps.c catches (NULL name). */
_Static_assert(sizeof(rfs_steps) / sizeof(rfs_steps[0]) == RFS_OP_COUNT,
	       "one row per enum rfs_op value");
_Static_assert(RFS_OP_PROJ == 0 && RFS_OP_NDI == RFS_OP_COUNT - 1,
	       "the table covers the enum from its first value to its last");

const struct rfs_step_desc *rfs_step_desc(enum rfs_op op)
{
	return (unsigned)op < RFS_OP_COUNT ? &rfs_steps[op] : NULL;
}

const char *rfs_op_name(enum rfs_op op)
{
	return (unsigned)op < RFS_OP_COUNT ? rfs_steps[op].name : "?";
}

const struct rfs_step_desc *rfs_step_find(const char *name, size_t n)
{
	struct rfs_tok t = { name, n };

	for (int i = 0; i < RFS_OP_COUNT; i++)
		if (rfs_tok_is(t, rfs_steps[i].name))
			return &rfs_steps[i];
	return NULL;
}

const char *rfs_step_crs(const struct rfs_step *st)
{
	const struct rfs_step_desc *d = rfs_step_desc(st->op);
	const char *crs;

	if (!d || !(d->flags & RFS_STEP_CRS))
		return NULL;
	crs = (const char *)st + d->crs_at;
	return crs[0] ? crs : NULL;
}

bool rfs_step_first_has(const char *canonical, unsigned flags)
{
	const struct rfs_step_desc *d;
	size_t n;

	if (canonical[0] != '@')
		return false;
	canonical++;
	n = strcspn(canonical, "=@");
	d = rfs_step_find(canonical, n);
	return d && (d->flags & flags) == flags;
}

/* Append s to buf (len bytes used at most, NUL kept) at *n. */
static void desc_add(char *buf, size_t len, size_t *n, const char *s)
{
	size_t k = strlen(s);

	if (*n + k >= len)
		k = len - 1 - *n;
	memcpy(buf + *n, s, k);
	*n += k;
	buf[*n] = '\0';
}

int rfs_step_band_desc(const struct rfs_step *st, const char *const *in,
		       int nin, int out, char *buf, size_t len)
{
	const struct rfs_step_desc *d = rfs_step_desc(st->op);
	char text[RFS_CHAIN_TEXT_MAX];
	int from[2] = { out, -1 }, k = 1;
	size_t n = 0;

	if (len > RFS_BAND_DESC_MAX)
		len = RFS_BAND_DESC_MAX;
	if (!d || len < 8 || out < 0)
		return -1;
	if (d->bands)
		k = d->bands(st, out, from);
	for (int i = 0; i < (k ? k : 1); i++)
		if (from[i] < 0 || from[i] >= nin)
			return -1;
	buf[0] = '\0';
	if (k == 0) {
		desc_add(buf, len, &n, in[from[0]] ? in[from[0]] : "");
	} else {
		if (rfs_step_canonical(st, text, sizeof(text)) < 0)
			return -1;
		desc_add(buf, len, &n, text);
		desc_add(buf, len, &n, " of ");
		desc_add(buf, len, &n, in[from[0]] ? in[from[0]] : "");
		if (k == 2) {
			desc_add(buf, len, &n, " and ");
			desc_add(buf, len, &n, in[from[1]] ? in[from[1]] : "");
		}
	}
	/* Cut: end with "..." on a character boundary (UTF-8). */
	if (n == len - 1) {
		size_t c = len - 4;
		while (c > 0 && ((unsigned char)buf[c] & 0xC0) == 0x80)
			c--;
		memcpy(buf + c, "...", 4);
	}
	return 0;
}

int rfs_step_canonical(const struct rfs_step *st, char *buf, size_t len)
{
	const struct rfs_step_desc *d = rfs_step_desc(st->op);
	struct rfs_cbuf cb = { .p = buf, .cap = len };

	if (!d || len == 0)
		return -1;
	buf[0] = '\0';
	d->write(st, &cb);
	return cb.over ? -1 : (int)cb.n;
}
