/* tiff.c - the deterministic GeoTIFF's layout and header (see tiff.h).
 *
 * tiff_write.c writes it; tiff_geo.c makes its GeoTIFF tags.
 *
 * Design notes.
 *
 * 1. Why by hand.  libtiff and GDAL write a directory where and when they
 *    see fit (GDAL rewrites it at close and appends a new one when metadata
 *    changed), so neither can promise a file's size or a tile's offset
 *    before the pixels exist.  TIFF's container is simple enough to lay out
 *    here; what is not simple (turning an SRS into GeoKeys) is left to GDAL:
 *    the GeoTIFF tags are copied byte for byte out of a 1 x 1 GTiff that
 *    GDAL writes in /vsimem (geo_from_gdal()).
 *
 * 2. Byte map (classic TIFF; BigTIFF has the same order with 16-byte
 *    header, 8-byte counts and offsets, 20-byte entries):
 *
 *      0                 "II" 42 <offset of IFD 0>
 *      8                 IFD 0 (full resolution): tags in ascending order
 *                        then <offset of IFD 1 or 0>
 *                        its out-of-line values, each at a multiple of 8:
 *                        BitsPerSample, ExtraSamples, SampleFormat,
 *                        GeoTIFF tags, GDAL_METADATA, GDAL_NODATA
 *      ...               IFD k (overview k, NewSubfileType=1) and its values
 *      arrays_offset     per level 0..n-1: TileOffsets[], TileByteCounts[]
 *                        (omitted when they fit inline in their entry)
 *      arrays_end        zeros up to header_size (a multiple of 4096)
 *      header_size       level n-1 (coarsest overview) tiles, ..., level 0
 *                        tiles; in a level: for each tile row, each tile
 *                        column, each band, one tile of tile_bytes
 *      total_size
 *
 *    Tile t of band b (t = ty * tiles_x + tx) is element b * tiles + t of
 *    its level's arrays, as PlanarConfiguration=2 requires; on disk the
 *    bands of one tile position are adjacent, so a window of all bands is
 *    one contiguous range and a computed block is one write.
 *
 * 3. The header's length depends on the description only.  Statistics sit
 *    in GDAL_METADATA in a slot per band of fixed width: six lines
 *    (STATISTICS_APPROXIMATE, _MAXIMUM, _MEAN, _MINIMUM, _STDDEV,
 *    _VALID_PERCENT), each value followed by spaces up to STAT_WIDTH
 *    characters after the closing tag (XML whitespace between elements,
 *    which GDAL's parser drops).  An absent line (unknown statistics, or
 *    no APPROXIMATE line for exact ones) is all spaces.
 *
 * 4. GDAL_METADATA is the XML GDAL writes: <GDALMetadata>, two-space
 *    indented <Item> lines, values escaped twice (GDAL escapes the value
 *    with CPLES_XML, then its XML serialiser escapes the text again; its
 *    reader undoes both), band items with sample="b" (0-based) and the band
 *    description as <Item name="DESCRIPTION" sample="b"
 *    role="description">.  GDAL_NODATA is printed as GDAL prints it
 *    ("%.18g", "nan", "inf", "-inf").
 *
 * 5. A packed layout (rfs_tiff_layout_pack) is what the daemon keeps of a
 *    description: "RFSL", u16 version, u16 0, then u32 bigtiff, bands,
 *    type, sample_bytes, n_levels, has_nodata, f64 nodata, u64
 *    tile_bytes, header_size, total_size, arrays_offset, arrays_end, u64
 *    head_len; per level i32 width, height, tiles_x, tiles_y, u64 offset,
 *    bytes, array_at[0], array_at[1]; per band u64 slot; then head_len
 *    header bytes.  All little-endian.  Unpacking checks every number
 *    against the others (the bytes come from another process and a
 *    database), so a layout that unpacks is one rfs_tiff_layout could
 *    have made.
 */
#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cpl_conv.h>
#include <cpl_error.h>
#include <cpl_string.h>
#include <cpl_vsi.h>
#include <gdal.h>
#include <ogr_srs_api.h>

#include "rasterfs/bandstats.h"
#include "rasterfs/chain.h"
#include "rasterfs/err.h"
#include "rasterfs/tiff.h"
#include "tiff_int.h"

#define TILE RFS_TIFF_TILE
#define TILE_PIXELS ((uint64_t)TILE * TILE)
#define STAT_WIDTH 24   /* the longest shortest-round-trip double:
			 * "-2.2250738585072014e-308" */
#define KEY_MAX 64

/* Tags, in the ascending order they are written. */
enum {
	TAG_SUBFILE = 254, TAG_WIDTH = 256, TAG_LENGTH = 257, TAG_BPS = 258,
	TAG_COMPRESSION = 259, TAG_PHOTOMETRIC = 262, TAG_SPP = 277,
	TAG_PLANAR = 284, TAG_TILE_W = 322, TAG_TILE_H = 323,
	TAG_TILE_OFF = 324, TAG_TILE_CNT = 325, TAG_EXTRA = 338,
	TAG_SAMPLE_FMT = 339, TAG_GDAL_MD = 42112, TAG_GDAL_NODATA = 42113,
};

static const char *const stat_names[6] = {
	"APPROXIMATE", "MAXIMUM", "MEAN", "MINIMUM", "STDDEV", "VALID_PERCENT",
};

static void put16(unsigned char *p, uint64_t v)
{
	p[0] = (unsigned char)v;
	p[1] = (unsigned char)(v >> 8);
}

static void put32(unsigned char *p, uint64_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (unsigned char)(v >> (8 * i));
}

static void put64(unsigned char *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (unsigned char)(v >> (8 * i));
}

static uint64_t align_up(uint64_t v, uint64_t a)
{
	return (v + a - 1) / a * a;
}

/* The header's padding (tiff.h): a layout with overviews (a lazy output's,
 * read tile by tile while its tiles are computed) starts every tile at a
 * multiple of RFS_TIFF_ALIGN_OVR, so a reader's buffered reads (glibc's
 * stdio, under GDAL: 8 KiB aligned to 8 KiB) never reach into the tile of
 * another level or block and have it computed. */
static uint64_t header_align(const struct rfs_tiff_layout *l)
{
	return l->n_levels > 1 ? RFS_TIFF_ALIGN_OVR : RFS_TIFF_ALIGN;
}

static int sample_format(GDALDataType t)
{
	switch (t) {
	case GDT_Byte:
	case GDT_UInt16:
	case GDT_UInt32:
		return 1;
	case GDT_Int16:
	case GDT_Int32:
		return 2;
	case GDT_Float32:
	case GDT_Float64:
		return 3;
	default:
		return 0;
	}
}

/* ------------------------------------------------------------------ */
/* A growable byte buffer */

struct buf {
	char *p;
	size_t len, cap;
	int oom;
};

static void buf_add(struct buf *b, const void *s, size_t n)
{
	if (b->oom)
		return;
	if (b->len + n + 1 > b->cap) {
		size_t cap = b->cap ? b->cap : 1024;
		while (cap < b->len + n + 1)
			cap *= 2;
		char *p = realloc(b->p, cap);
		if (!p) {
			b->oom = 1;
			return;
		}
		b->p = p;
		b->cap = cap;
	}
	memcpy(b->p + b->len, s, n);
	b->len += n;
	b->p[b->len] = 0;
}

static void buf_str(struct buf *b, const char *s)
{
	buf_add(b, s, strlen(s));
}

/* Text escaped as GDAL writes an <Item>'s value: CPLES_XML by GDAL, then
 * again by its XML serialiser. */
static void buf_xml2(struct buf *b, const char *s)
{
	char *e1 = CPLEscapeString(s, -1, CPLES_XML);
	char *e2 = e1 ? CPLEscapeString(e1, -1, CPLES_XML_BUT_QUOTES) : NULL;

	if (!e2)
		b->oom = 1;
	else
		buf_str(b, e2);
	CPLFree(e1);
	CPLFree(e2);
}

/* ------------------------------------------------------------------ */
/* GDAL_METADATA */

static int slot_line_len(int line, int band)
{
	/* '  <Item name="STATISTICS_X" sample="B">' VALUE '</Item>' '\n' */
	int n = snprintf(NULL, 0, "  <Item name=\"STATISTICS_%s\" sample=\"%d\">",
			 stat_names[line], band);
	return n + (line == 0 ? 3 : STAT_WIDTH) + 7 + 1;
}

/* Render band's slot of st into p (the slot's line widths). */
static int slot_render(char *p, int band, const struct rfs_tiff_stats *st)
{
	enum rfs_tiff_stats_state s = st ? st->state : RFS_TIFF_STATS_UNKNOWN;
	char val[48];

	if (s != RFS_TIFF_STATS_UNKNOWN && s != RFS_TIFF_STATS_APPROX &&
	    s != RFS_TIFF_STATS_EXACT)
		return -EINVAL;
	for (int i = 0; i < 6; i++) {
		int w = slot_line_len(i, band);
		memset(p, ' ', (size_t)w);
		p[w - 1] = '\n';
		if (s == RFS_TIFF_STATS_UNKNOWN ||
		    (i == 0 && s != RFS_TIFF_STATS_APPROX)) {
			p += w;
			continue;
		}
		if (i == 0) {
			snprintf(val, sizeof(val), "YES");
		} else {
			const double v[] = { 0, st->max, st->mean, st->min,
					     st->stddev, st->valid_percent };
			int n = rfs_format_double(v[i], val, sizeof(val));
			assert(n > 0 && n <= STAT_WIDTH);
			(void)n;
		}
		int n = snprintf(p, (size_t)w,
				 "  <Item name=\"STATISTICS_%s\" sample=\"%d\">%s</Item>",
				 stat_names[i], band, val);
		p[n] = ' ';   /* snprintf's NUL becomes padding */
		p += w;
	}
	return 0;
}

static int valid_key(const char *k)
{
	size_t n = k ? strlen(k) : 0;

	if (n == 0 || n > KEY_MAX)
		return 0;
	for (size_t i = 0; i < n; i++)
		if (!(k[i] == '_' || (k[i] >= '0' && k[i] <= '9') ||
		      (k[i] >= 'A' && k[i] <= 'Z') || (k[i] >= 'a' && k[i] <= 'z')))
			return 0;
	return 1;
}

/* The XML, with each band's slot offset (from the XML's start) in slot[]. */
static int metadata_xml(const struct rfs_tiff_desc *d, struct buf *b,
			size_t *slot)
{
	char tmp[160];

	buf_str(b, "<GDALMetadata>\n");
	for (int i = 0; i < d->n_items; i++) {
		if (!valid_key(d->items[i].key) || !d->items[i].value)
			return -EINVAL;
		snprintf(tmp, sizeof(tmp), "  <Item name=\"%s\">", d->items[i].key);
		buf_str(b, tmp);
		buf_xml2(b, d->items[i].value);
		buf_str(b, "</Item>\n");
	}
	for (int band = 0; band < d->bands; band++) {
		size_t w = 0;

		for (int i = 0; i < 6; i++)
			w += (size_t)slot_line_len(i, band);
		slot[band] = b->len;
		char *s = malloc(w + 1);
		if (!s)
			return -ENOMEM;
		int rc = slot_render(s, band, d->stats ? &d->stats[band] : NULL);
		if (rc == 0)
			buf_add(b, s, w);
		free(s);
		if (rc)
			return rc;
		const char *desc = d->band_desc ? d->band_desc[band] : NULL;
		if (desc && *desc) {
			snprintf(tmp, sizeof(tmp),
				 "  <Item name=\"DESCRIPTION\" sample=\"%d\" "
				 "role=\"description\">", band);
			buf_str(b, tmp);
			buf_xml2(b, desc);
			buf_str(b, "</Item>\n");
		}
	}
	buf_str(b, "</GDALMetadata>\n");
	return b->oom ? -ENOMEM : 0;
}

static void nodata_text(double v, char *out, size_t len)
{
	if (isnan(v))
		snprintf(out, len, "nan");
	else if (isinf(v))
		snprintf(out, len, "%s", v < 0 ? "-inf" : "inf");
	else
		snprintf(out, len, "%.18g", v);
}

/* ------------------------------------------------------------------ */
/* IFDs */

enum { V_DATA, V_OFFSETS, V_COUNTS };

struct ent {
	uint16_t tag, type;
	uint64_t count;
	int kind;                  /* V_DATA or one of the tile arrays */
	const unsigned char *data; /* V_DATA: little-endian value bytes */
	size_t len;
	uint64_t at;               /* out-of-line position; 0: inline */
};

#define MAX_ENT 24

struct ifd {
	struct ent e[MAX_ENT];
	int n;
	uint64_t off;
};

/* Small values an IFD points to, kept for the fill pass. */
struct vals {
	unsigned char *bps, *fmt, *extra;  /* SHORT[bands], SHORT[bands - 1] */
	unsigned char one[5][8];           /* single SHORT/LONG values */
};

static void ent_add(struct ifd *f, uint16_t tag, uint16_t type,
		    uint64_t count, int kind, const void *data, size_t len)
{
	assert(f->n < MAX_ENT);
	f->e[f->n++] = (struct ent){ tag, type, count, kind, data, len, 0 };
}

static uint64_t level_tiles(const struct rfs_tiff_level *lv)
{
	return (uint64_t)lv->tiles_x * (uint64_t)lv->tiles_y;
}

/* The value of element k of a tile array of level lv. */
static uint64_t array_elem(const struct rfs_tiff_layout *l, int lv, int kind,
			   uint64_t k)
{
	const struct rfs_tiff_level *v = &l->level[lv];
	uint64_t tiles = level_tiles(v);
	uint64_t b = k / tiles, t = k % tiles;

	if (kind == V_COUNTS)
		return l->tile_bytes;
	return v->offset + (t * (uint64_t)l->bands + b) * l->tile_bytes;
}

static void ifd_build(const struct rfs_tiff_layout *l, int lv,
		      const struct vals *vals, const struct geo_tag *geo,
		      int n_geo, const struct buf *xml, const char *nd,
		      struct ifd *f)
{
	const struct rfs_tiff_level *v = &l->level[lv];
	uint64_t n = level_tiles(v) * (uint64_t)l->bands;
	uint16_t at = l->bigtiff ? T_LONG8 : T_LONG;
	int nb = l->bands;

	f->n = 0;
	if (lv > 0)
		ent_add(f, TAG_SUBFILE, T_LONG, 1, V_DATA, vals->one[0], 4);
	ent_add(f, TAG_WIDTH, T_LONG, 1, V_DATA, NULL, 0);
	ent_add(f, TAG_LENGTH, T_LONG, 1, V_DATA, NULL, 0);
	ent_add(f, TAG_BPS, T_SHORT, (uint64_t)nb, V_DATA, vals->bps,
		2 * (size_t)nb);
	ent_add(f, TAG_COMPRESSION, T_SHORT, 1, V_DATA, vals->one[1], 2);
	ent_add(f, TAG_PHOTOMETRIC, T_SHORT, 1, V_DATA, vals->one[1], 2);
	ent_add(f, TAG_SPP, T_SHORT, 1, V_DATA, vals->one[2], 2);
	ent_add(f, TAG_PLANAR, T_SHORT, 1, V_DATA, vals->one[3], 2);
	ent_add(f, TAG_TILE_W, T_SHORT, 1, V_DATA, vals->one[4], 2);
	ent_add(f, TAG_TILE_H, T_SHORT, 1, V_DATA, vals->one[4], 2);
	ent_add(f, TAG_TILE_OFF, at, n, V_OFFSETS, NULL, 0);
	ent_add(f, TAG_TILE_CNT, at, n, V_COUNTS, NULL, 0);
	if (nb > 1)
		ent_add(f, TAG_EXTRA, T_SHORT, (uint64_t)nb - 1, V_DATA,
			vals->extra, 2 * ((size_t)nb - 1));
	ent_add(f, TAG_SAMPLE_FMT, T_SHORT, (uint64_t)nb, V_DATA, vals->fmt,
		2 * (size_t)nb);
	if (lv == 0) {
		for (int i = 0; i < n_geo; i++)
			ent_add(f, geo[i].tag, geo[i].type, geo[i].count, V_DATA,
				geo[i].data, geo[i].len);
		ent_add(f, TAG_GDAL_MD, T_ASCII, xml->len + 1, V_DATA,
			(const unsigned char *)xml->p, xml->len + 1);
	}
	if (nd)
		ent_add(f, TAG_GDAL_NODATA, T_ASCII, strlen(nd) + 1, V_DATA,
			(const unsigned char *)nd, strlen(nd) + 1);
}

/* Place every IFD, value and array; fill l's offsets and sizes.  Returns 0
 * or -EFBIG. */
static int place(struct rfs_tiff_layout *l, struct ifd *ifds)
{
	const int big = l->bigtiff;
	const uint64_t esz = big ? 20 : 12, inl = big ? 8 : 4;
	const uint64_t elem = big ? 8 : 4;
	uint64_t pos = big ? 16 : 8;

	for (int lv = 0; lv < l->n_levels; lv++) {
		struct ifd *f = &ifds[lv];
		f->off = align_up(pos, 8);
		pos = f->off + (big ? 8 : 2) + esz * (uint64_t)f->n +
		      (big ? 8 : 4);
		for (int i = 0; i < f->n; i++) {
			struct ent *e = &f->e[i];
			if (e->kind != V_DATA || e->len <= inl)
				continue;
			e->at = align_up(pos, 8);
			pos = e->at + e->len;
		}
	}
	l->head_len = (size_t)pos;
	pos = align_up(pos, 8);
	l->arrays_offset = pos;
	for (int lv = 0; lv < l->n_levels; lv++) {
		uint64_t n = level_tiles(&l->level[lv]) * (uint64_t)l->bands;
		for (int k = 0; k < 2; k++) {
			l->array_at[lv][k] = 0;
			if (n * elem <= inl)
				continue;
			l->array_at[lv][k] = pos;
			pos += n * elem;
		}
		for (int i = 0; i < ifds[lv].n; i++)
			if (ifds[lv].e[i].kind != V_DATA)
				ifds[lv].e[i].at = l->array_at[lv][
					ifds[lv].e[i].kind == V_COUNTS];
	}
	l->arrays_end = pos;
	l->header_size = align_up(pos, header_align(l));
	pos = l->header_size;
	for (int lv = l->n_levels - 1; lv >= 0; lv--) {
		l->level[lv].offset = pos;
		if (l->level[lv].bytes > INT64_MAX - pos)
			return -EFBIG;
		pos += l->level[lv].bytes;
	}
	l->total_size = pos;
	return 0;
}

/* Write the IFDs and their values into l->head. */
static void fill(struct rfs_tiff_layout *l, const struct ifd *ifds)
{
	const int big = l->bigtiff;
	const uint64_t esz = big ? 20 : 12, inl = big ? 8 : 4;
	unsigned char *h = l->head;

	memset(h, 0, l->head_len);
	h[0] = 'I';
	h[1] = 'I';
	if (big) {
		put16(h + 2, 43);
		put16(h + 4, 8);
		put64(h + 8, ifds[0].off);
	} else {
		put16(h + 2, 42);
		put32(h + 4, ifds[0].off);
	}
	for (int lv = 0; lv < l->n_levels; lv++) {
		const struct ifd *f = &ifds[lv];
		const struct rfs_tiff_level *v = &l->level[lv];
		unsigned char *p = h + f->off;

		if (big) {
			put64(p, (uint64_t)f->n);
			p += 8;
		} else {
			put16(p, (uint64_t)f->n);
			p += 2;
		}
		for (int i = 0; i < f->n; i++, p += esz) {
			const struct ent *e = &f->e[i];
			unsigned char *val = p + (big ? 12 : 8);

			put16(p, e->tag);
			put16(p + 2, e->type);
			if (big)
				put64(p + 4, e->count);
			else
				put32(p + 4, e->count);
			if (e->tag == TAG_WIDTH || e->tag == TAG_LENGTH) {
				put32(val, (uint64_t)(e->tag == TAG_WIDTH ?
						      v->width : v->height));
			} else if (e->kind != V_DATA) {
				if (e->at) {
					(big ? put64 : put32)(val, e->at);
				} else {
					/* a single tile: its value inline */
					uint64_t x = array_elem(l, lv, e->kind, 0);
					(big ? put64 : put32)(val, x);
				}
			} else if (e->len <= inl) {
				memcpy(val, e->data, e->len);
			} else {
				(big ? put64 : put32)(val, e->at);
				memcpy(h + e->at, e->data, e->len);
			}
		}
		uint64_t next = lv + 1 < l->n_levels ? ifds[lv + 1].off : 0;
		(big ? put64 : put32)(p, next);
	}
}

/* ------------------------------------------------------------------ */
/* Layout */

void rfs_tiff_layout_free(struct rfs_tiff_layout *l)
{
	if (!l)
		return;
	free(l->head);
	free(l->slot);
	l->head = NULL;
	l->slot = NULL;
}

static int desc_check(const struct rfs_tiff_desc *d)
{
	if (d->width < 1 || d->height < 1 || d->bands < 1 ||
	    d->bands > RFS_TIFF_MAX_BANDS || sample_format(d->type) == 0 ||
	    d->n_items < 0 || (d->n_items > 0 && !d->items))
		return -EINVAL;
	if (d->has_geotransform)
		for (int i = 0; i < 6; i++)
			if (!isfinite(d->geotransform[i]))
				return -EINVAL;
	return 0;
}

int rfs_tiff_layout_limit(const struct rfs_tiff_desc *d, uint64_t classic_max,
			  struct rfs_tiff_layout *l)
{
	struct geo_tag geo[N_GEO];
	struct buf xml = { 0 };
	struct ifd *ifds = NULL;
	struct vals vals = { 0 };
	char nd[64];
	int n_geo = 0, rc;

	memset(l, 0, sizeof(*l));
	memset(geo, 0, sizeof(geo));
	rc = desc_check(d);
	if (rc)
		goto out;
	l->bands = d->bands;
	l->type = d->type;
	l->sample_bytes = GDALGetDataTypeSizeBytes(d->type);
	l->tile_bytes = TILE_PIXELS * (uint64_t)l->sample_bytes;
	l->has_nodata = d->has_nodata;
	l->nodata = d->nodata;
	for (int k = 0; k < RFS_TIFF_MAX_LEVELS; k++) {
		struct rfs_tiff_level *v = &l->level[k];
		uint64_t f = (uint64_t)1 << k;

		v->width = (int)(((uint64_t)d->width + f - 1) / f);
		v->height = (int)(((uint64_t)d->height + f - 1) / f);
		/* in 64 bits: a width near INT_MAX must not overflow here */
		v->tiles_x = (int)(((int64_t)v->width + TILE - 1) / TILE);
		v->tiles_y = (int)(((int64_t)v->height + TILE - 1) / TILE);
		if (__builtin_mul_overflow(level_tiles(v), (uint64_t)d->bands,
					   &v->bytes) ||
		    __builtin_mul_overflow(v->bytes, l->tile_bytes, &v->bytes) ||
		    v->bytes > INT64_MAX) {
			rc = -EFBIG;
			goto out;
		}
		l->n_levels = k + 1;
		if (!d->overviews || (v->width <= TILE && v->height <= TILE))
			break;
	}

	l->slot = calloc((size_t)d->bands, sizeof(*l->slot));
	vals.bps = malloc(2 * (size_t)d->bands);
	vals.fmt = malloc(2 * (size_t)d->bands);
	vals.extra = calloc((size_t)d->bands, 2);
	ifds = calloc(RFS_TIFF_MAX_LEVELS, sizeof(*ifds));
	if (!l->slot || !vals.bps || !vals.fmt || !vals.extra || !ifds) {
		rc = -ENOMEM;
		goto out;
	}
	for (int b = 0; b < d->bands; b++) {
		put16(vals.bps + 2 * b, 8 * (uint64_t)l->sample_bytes);
		put16(vals.fmt + 2 * b, (uint64_t)sample_format(d->type));
	}
	put32(vals.one[0], 1);              /* NewSubfileType: reduced image */
	put16(vals.one[1], 1);              /* no compression; MinIsBlack */
	put16(vals.one[2], (uint64_t)d->bands);
	put16(vals.one[3], 2);              /* planar: one plane per band */
	put16(vals.one[4], TILE);

	rc = metadata_xml(d, &xml, l->slot);
	if (rc)
		goto out;
	if (d->has_nodata)
		nodata_text(d->nodata, nd, sizeof(nd));
	rc = tiff_geo_from_gdal(d, geo, &n_geo);
	if (rc)
		goto out;
	tiff_geo_sort(geo, n_geo);

	/* classic if it fits, else BigTIFF */
	for (l->bigtiff = 0; l->bigtiff < 2; l->bigtiff++) {
		for (int lv = 0; lv < l->n_levels; lv++)
			ifd_build(l, lv, &vals, geo, n_geo, &xml,
				  d->has_nodata ? nd : NULL, &ifds[lv]);
		rc = place(l, ifds);
		if (rc)
			goto out;
		if (l->bigtiff || l->total_size <= classic_max)
			break;
	}
	l->head = malloc(l->head_len);
	if (!l->head) {
		rc = -ENOMEM;
		goto out;
	}
	fill(l, ifds);
	/* slots: from the XML's start to absolute header offsets */
	uint64_t xml_at = 0;
	for (int i = 0; i < ifds[0].n; i++)
		if (ifds[0].e[i].tag == TAG_GDAL_MD)
			xml_at = ifds[0].e[i].at;
	assert(xml_at != 0);
	for (int b = 0; b < d->bands; b++)
		l->slot[b] += (size_t)xml_at;
out:
	for (size_t i = 0; i < N_GEO; i++)
		free(geo[i].data);
	free(xml.p);
	free(ifds);
	free(vals.bps);
	free(vals.fmt);
	free(vals.extra);
	return rc;
}

int rfs_tiff_layout(const struct rfs_tiff_desc *d, struct rfs_tiff_layout *l)
{
	return rfs_tiff_layout_limit(d, RFS_TIFF_CLASSIC_MAX, l);
}

int rfs_tiff_set_stats(struct rfs_tiff_layout *l, int band,
		       const struct rfs_tiff_stats *st)
{
	if (band < 0 || band >= l->bands || !l->head)
		return -EINVAL;
	return slot_render((char *)l->head + l->slot[band], band, st);
}

/* ------------------------------------------------------------------ */
/* Reading the layout */

int rfs_tiff_header_read(const struct rfs_tiff_layout *l, uint64_t off,
			 void *buf, size_t len)
{
	unsigned char *out = buf;
	const uint64_t elem = l->bigtiff ? 8 : 4;
	const uint64_t end = off + len;

	if (off > l->header_size || len > l->header_size - off)
		return -EINVAL;
	memset(out, 0, len);
	if (off < l->head_len)
		memcpy(out, l->head + off,
		       (size_t)((end < l->head_len ? end : l->head_len) - off));
	if (end <= l->arrays_offset || off >= l->arrays_end)
		return 0;
	for (int lv = 0; lv < l->n_levels; lv++) {
		uint64_t n = level_tiles(&l->level[lv]) * (uint64_t)l->bands;
		for (int k = 0; k < 2; k++) {
			uint64_t a = l->array_at[lv][k], b = a + n * elem;
			if (a == 0 || b <= off || a >= end)
				continue;
			uint64_t lo = off > a ? off : a, hi = end < b ? end : b;
			for (uint64_t i = (lo - a) / elem; a + i * elem < hi; i++) {
				unsigned char e[8];
				uint64_t p = a + i * elem;
				uint64_t v = array_elem(l, lv, k ? V_COUNTS :
							V_OFFSETS, i);
				(l->bigtiff ? put64 : put32)(e, v);
				for (uint64_t j = 0; j < elem; j++)
					if (p + j >= lo && p + j < hi)
						out[p + j - off] = e[j];
			}
		}
	}
	return 0;
}

int rfs_tiff_tile_offset(const struct rfs_tiff_layout *l, int level,
			 int band, int tx, int ty, uint64_t *off)
{
	if (level < 0 || level >= l->n_levels || band < 0 ||
	    band >= l->bands)
		return -EINVAL;
	const struct rfs_tiff_level *v = &l->level[level];
	if (tx < 0 || tx >= v->tiles_x || ty < 0 || ty >= v->tiles_y)
		return -EINVAL;
	*off = v->offset + (((uint64_t)ty * (uint64_t)v->tiles_x +
			     (uint64_t)tx) * (uint64_t)l->bands +
			    (uint64_t)band) * l->tile_bytes;
	return 0;
}

int rfs_tiff_tile_at(const struct rfs_tiff_layout *l, uint64_t off,
		     struct rfs_tiff_loc *loc)
{
	if (off >= l->total_size)
		return -ERANGE;
	memset(loc, 0, sizeof(*loc));
	if (off < l->header_size) {
		loc->in_header = 1;
		loc->len = l->header_size;
		return 0;
	}
	for (int lv = 0; lv < l->n_levels; lv++) {
		const struct rfs_tiff_level *v = &l->level[lv];
		if (off < v->offset || off - v->offset >= v->bytes)
			continue;
		uint64_t i = (off - v->offset) / l->tile_bytes;
		uint64_t t = i / (uint64_t)l->bands;
		loc->level = lv;
		loc->band = (int)(i % (uint64_t)l->bands);
		loc->tx = (int)(t % (uint64_t)v->tiles_x);
		loc->ty = (int)(t / (uint64_t)v->tiles_x);
		loc->start = v->offset + i * l->tile_bytes;
		loc->len = l->tile_bytes;
		return 0;
	}
	return -RFS_E_INTERNAL;   /* the levels cover [header_size, total) */
}

/* ------------------------------------------------------------------ */
/* Packed layouts (note 5) */

#define PACK_MAGIC "RFSL"
#define PACK_VERSION 1
#define PACK_HEAD (8 + 6 * 4 + 8 + 6 * 8)
#define PACK_LEVEL (4 * 4 + 4 * 8)

static int slot_width(int band)
{
	int w = 0;

	for (int i = 0; i < 6; i++)
		w += slot_line_len(i, band);
	return w;
}

unsigned char *rfs_tiff_layout_pack(const struct rfs_tiff_layout *l,
				    size_t *len)
{
	size_t n = PACK_HEAD + (size_t)l->n_levels * PACK_LEVEL +
		   (size_t)l->bands * 8 + l->head_len;
	unsigned char *b = malloc(n), *p = b;

	if (!b)
		return NULL;
	memcpy(p, PACK_MAGIC, 4);
	put16(p + 4, PACK_VERSION);
	put16(p + 6, 0);
	p += 8;
	const uint64_t u32s[6] = { (uint64_t)l->bigtiff, (uint64_t)l->bands,
				   (uint64_t)l->type,
				   (uint64_t)l->sample_bytes,
				   (uint64_t)l->n_levels,
				   (uint64_t)l->has_nodata };
	for (int i = 0; i < 6; i++, p += 4)
		put32(p, u32s[i]);
	uint64_t nd;
	memcpy(&nd, &l->nodata, 8);
	put64(p, nd);
	p += 8;
	const uint64_t u64s[6] = { l->tile_bytes, l->header_size,
				   l->total_size, l->arrays_offset,
				   l->arrays_end, (uint64_t)l->head_len };
	for (int i = 0; i < 6; i++, p += 8)
		put64(p, u64s[i]);
	for (int lv = 0; lv < l->n_levels; lv++) {
		const struct rfs_tiff_level *v = &l->level[lv];
		put32(p, (uint64_t)v->width);
		put32(p + 4, (uint64_t)v->height);
		put32(p + 8, (uint64_t)v->tiles_x);
		put32(p + 12, (uint64_t)v->tiles_y);
		put64(p + 16, v->offset);
		put64(p + 24, v->bytes);
		put64(p + 32, l->array_at[lv][0]);
		put64(p + 40, l->array_at[lv][1]);
		p += PACK_LEVEL;
	}
	for (int b2 = 0; b2 < l->bands; b2++, p += 8)
		put64(p, (uint64_t)l->slot[b2]);
	memcpy(p, l->head, l->head_len);
	*len = n;
	return b;
}

/* The header's IFDs say what the levels say: one IFD per level, in
 * order, each with the level's width, length and tile arrays.  0 or
 * -EINVAL. */
static int head_check(const struct rfs_tiff_layout *l)
{
	const int big = l->bigtiff;
	const uint64_t esz = big ? 20 : 12, vsz = big ? 8 : 4;
	const unsigned char *h = l->head;
	uint64_t ifd;

	if (get_le(h + 2, 2) != (big ? 43u : 42u))
		return -EINVAL;
	ifd = big ? get_le(h + 8, 8) : get_le(h + 4, 4);
	for (int lv = 0; lv < l->n_levels; lv++) {
		const struct rfs_tiff_level *v = &l->level[lv];
		uint64_t n, found = 0;

		if (ifd < 8 || ifd > l->head_len - (big ? 8 : 2))
			return -EINVAL;
		n = big ? get_le(h + ifd, 8) : get_le(h + ifd, 2);
		ifd += big ? 8 : 2;
		if (l->head_len - ifd < vsz ||
		    n > (l->head_len - ifd - vsz) / esz)
			return -EINVAL;
		for (uint64_t i = 0; i < n; i++) {
			const unsigned char *e = h + ifd + i * esz;
			const unsigned char *val = e + (big ? 12 : 8);
			unsigned tag = (unsigned)get_le(e, 2);

			if (tag == TAG_WIDTH || tag == TAG_LENGTH) {
				if (get_le(val, 4) != (uint64_t)(tag == TAG_WIDTH ?
						v->width : v->height))
					return -EINVAL;
				found++;
			} else if ((tag == TAG_TILE_OFF || tag == TAG_TILE_CNT) &&
				   l->array_at[lv][tag == TAG_TILE_CNT]) {
				if (get_le(val, (int)vsz) !=
				    l->array_at[lv][tag == TAG_TILE_CNT])
					return -EINVAL;
			}
		}
		if (found != 2)
			return -EINVAL;
		ifd = get_le(h + ifd + n * esz, (int)vsz);
	}
	return ifd == 0 ? 0 : -EINVAL;
}

/* The checks of note 5.  0 or -EINVAL. */
static int unpacked_check(const struct rfs_tiff_layout *l)
{
	static const int size_of[] = { [1] = 1, [2] = 2, [3] = 4, [4] = 8 };
	const uint64_t elem = l->bigtiff ? 8 : 4, inl = l->bigtiff ? 8 : 4;
	int sf = sample_format(l->type);
	int want = 0;

	if (sf == 0 || l->bands < 1 || l->bands > RFS_TIFF_MAX_BANDS ||
	    (l->bigtiff != 0 && l->bigtiff != 1) ||
	    (l->has_nodata != 0 && l->has_nodata != 1) ||
	    l->n_levels < 1 || l->n_levels > RFS_TIFF_MAX_LEVELS)
		return -EINVAL;
	switch (l->type) {
	case GDT_Byte: want = size_of[1]; break;
	case GDT_UInt16: case GDT_Int16: want = size_of[2]; break;
	case GDT_UInt32: case GDT_Int32: case GDT_Float32:
		want = size_of[3]; break;
	default: want = size_of[4]; break;
	}
	if (l->sample_bytes != want ||
	    l->tile_bytes != TILE_PIXELS * (uint64_t)want ||
	    l->header_size % header_align(l) != 0 ||
	    l->head_len < 16 || l->head_len > l->arrays_offset ||
	    l->arrays_offset > l->arrays_end ||
	    l->arrays_end > l->header_size ||
	    l->header_size > l->total_size ||
	    memcmp(l->head, "II", 2) != 0)
		return -EINVAL;
	/* the arrays and the header's end, placed as place() places them */
	uint64_t at = l->arrays_offset;
	if (at != align_up(l->head_len, 8))
		return -EINVAL;
	for (int lv = 0; lv < l->n_levels; lv++) {
		uint64_t n = level_tiles(&l->level[lv]) * (uint64_t)l->bands;
		for (int k = 0; k < 2; k++) {
			if (n * elem <= inl) {
				if (l->array_at[lv][k] != 0)
					return -EINVAL;
				continue;
			}
			if (l->array_at[lv][k] != at)
				return -EINVAL;
			at += n * elem;
		}
	}
	if (at != l->arrays_end ||
	    l->header_size != align_up(l->arrays_end, header_align(l)))
		return -EINVAL;
	/* levels: each half the one below it, coarsest first after the
	 * header, the base last, ending at total_size */
	uint64_t pos = l->header_size;
	for (int lv = l->n_levels - 1; lv >= 0; lv--) {
		const struct rfs_tiff_level *v = &l->level[lv];
		uint64_t tiles, bytes;

		if (v->width < 1 || v->height < 1 ||
		    v->tiles_x != (v->width + TILE - 1) / TILE ||
		    v->tiles_y != (v->height + TILE - 1) / TILE ||
		    v->offset != pos)
			return -EINVAL;
		if (lv > 0 &&
		    (v->width != (l->level[lv - 1].width + 1) / 2 ||
		     v->height != (l->level[lv - 1].height + 1) / 2))
			return -EINVAL;
		tiles = level_tiles(v) * (uint64_t)l->bands;
		if (__builtin_mul_overflow(tiles, l->tile_bytes, &bytes) ||
		    bytes != v->bytes || bytes > INT64_MAX - pos)
			return -EINVAL;
		pos += bytes;
	}
	if (pos != l->total_size)
		return -EINVAL;
	for (int b = 0; b < l->bands; b++)
		if (l->slot[b] > l->head_len ||
		    (size_t)slot_width(b) > l->head_len - l->slot[b])
			return -EINVAL;
	return head_check(l);
}

int rfs_tiff_layout_unpack(const void *buf, size_t len,
			   struct rfs_tiff_layout *l)
{
	const unsigned char *p = buf, *end = p + len;
	uint64_t u32s[6], u64s[6], nd;

	memset(l, 0, sizeof(*l));
	if (len < PACK_HEAD || memcmp(p, PACK_MAGIC, 4) != 0 ||
	    get_le(p + 4, 2) != PACK_VERSION || get_le(p + 6, 2) != 0)
		return -EINVAL;
	p += 8;
	for (int i = 0; i < 6; i++, p += 4)
		u32s[i] = get_le(p, 4);
	nd = get_le(p, 8);
	p += 8;
	for (int i = 0; i < 6; i++, p += 8)
		u64s[i] = get_le(p, 8);
	if (u32s[1] < 1 || u32s[1] > RFS_TIFF_MAX_BANDS || u32s[4] < 1 ||
	    u32s[4] > RFS_TIFF_MAX_LEVELS || u32s[2] > 64 || u32s[3] > 8)
		return -EINVAL;
	l->bigtiff = (int)u32s[0];
	l->bands = (int)u32s[1];
	l->type = (GDALDataType)u32s[2];
	l->sample_bytes = (int)u32s[3];
	l->n_levels = (int)u32s[4];
	l->has_nodata = (int)u32s[5];
	memcpy(&l->nodata, &nd, 8);
	l->tile_bytes = u64s[0];
	l->header_size = u64s[1];
	l->total_size = u64s[2];
	l->arrays_offset = u64s[3];
	l->arrays_end = u64s[4];
	if ((size_t)(end - p) < (size_t)l->n_levels * PACK_LEVEL +
	    (size_t)l->bands * 8 ||
	    u64s[5] != (uint64_t)(end - p) - (size_t)l->n_levels * PACK_LEVEL -
	    (size_t)l->bands * 8)
		return -EINVAL;
	l->head_len = (size_t)u64s[5];
	for (int lv = 0; lv < l->n_levels; lv++, p += PACK_LEVEL) {
		struct rfs_tiff_level *v = &l->level[lv];
		uint64_t w = get_le(p, 4), h = get_le(p + 4, 4);
		uint64_t tx = get_le(p + 8, 4), ty = get_le(p + 12, 4);

		if (w > INT32_MAX || h > INT32_MAX || tx > INT32_MAX ||
		    ty > INT32_MAX)
			return -EINVAL;
		v->width = (int)w;
		v->height = (int)h;
		v->tiles_x = (int)tx;
		v->tiles_y = (int)ty;
		v->offset = get_le(p + 16, 8);
		v->bytes = get_le(p + 24, 8);
		l->array_at[lv][0] = get_le(p + 32, 8);
		l->array_at[lv][1] = get_le(p + 40, 8);
	}
	l->slot = calloc((size_t)l->bands, sizeof(*l->slot));
	l->head = malloc(l->head_len ? l->head_len : 1);
	if (!l->slot || !l->head)
		return -ENOMEM;
	for (int b = 0; b < l->bands; b++, p += 8) {
		uint64_t s = get_le(p, 8);
		if (s > SIZE_MAX)
			return -EINVAL;
		l->slot[b] = (size_t)s;
	}
	memcpy(l->head, p, l->head_len);
	return unpacked_check(l);
}
