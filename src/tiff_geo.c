/* tiff_geo.c - the GeoTIFF tags of a grid and CRS, as GDAL writes them.
 *
 * Why (tiff.c note 1): turning an SRS into GeoKeys is GDAL's job, so GDAL
 * writes a 1 x 1 GTiff of the grid and CRS in /vsimem and its GeoTIFF
 * tags are copied out byte for byte (a tiny reader: only what GDAL just
 * wrote has to be understood).  Results are cached per grid and CRS.
 */
#include <errno.h>
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

#include "rasterfs/err.h"
#include "rasterfs/tiff.h"
#include "tiff_int.h"

static int type_size(unsigned type)
{
	switch (type) {
	case T_ASCII:
		return 1;
	case T_SHORT:
		return 2;
	case T_DOUBLE:
		return 8;
	default:
		return 0;
	}
}

/* Copy the GeoTIFF tags of IFD 0 out of a little-endian TIFF or BigTIFF
 * held in memory.  A tiny reader: only what GDAL just wrote has to be
 * understood, and every offset is checked against the buffer. */
static int geo_parse(const unsigned char *d, size_t n, struct geo_tag *out,
		     int *n_out)
{
	uint64_t ifd, cnt;
	int big, esz, vsz, m = 0;

	if (n < 16 || d[0] != 'I' || d[1] != 'I')
		return -RFS_E_PROCESS;
	big = get_le(d + 2, 2) == 43;
	if (!big && get_le(d + 2, 2) != 42)
		return -RFS_E_PROCESS;
	ifd = big ? get_le(d + 8, 8) : get_le(d + 4, 4);
	esz = big ? 20 : 12;
	vsz = big ? 8 : 4;
	if (ifd > n - (big ? 8 : 2))
		return -RFS_E_PROCESS;
	cnt = big ? get_le(d + ifd, 8) : get_le(d + ifd, 2);
	ifd += big ? 8 : 2;
	if (cnt > (n - ifd) / (uint64_t)esz)
		return -RFS_E_PROCESS;
	for (uint64_t i = 0; i < cnt; i++) {
		const unsigned char *e = d + ifd + i * (uint64_t)esz;
		unsigned tag = (unsigned)get_le(e, 2);
		unsigned type = (unsigned)get_le(e + 2, 2);
		uint64_t count = big ? get_le(e + 4, 8) : get_le(e + 4, 4);
		const unsigned char *val = e + (big ? 12 : 8);
		size_t k;

		for (k = 0; k < N_GEO; k++)
			if (geo_tag_ids[k] == tag)
				break;
		if (k == N_GEO)
			continue;
		int ts = type_size(type);
		if (ts == 0 || count == 0 || count > n / (uint64_t)ts)
			return -RFS_E_PROCESS;
		uint64_t len = count * (uint64_t)ts;
		if (len > (uint64_t)vsz) {
			uint64_t at = get_le(val, vsz);
			if (at > n || len > n - at)
				return -RFS_E_PROCESS;
			val = d + at;
		}
		out[m].data = malloc(len);
		if (!out[m].data)
			return -ENOMEM;
		memcpy(out[m].data, val, len);
		out[m].tag = (uint16_t)tag;
		out[m].type = (uint16_t)type;
		out[m].count = count;
		out[m].len = len;
		m++;
		*n_out = m;
	}
	return 0;
}

/* Let GDAL write georeferencing into a 1 x 1 GTiff in memory and take its
 * GeoTIFF tags (the pixel count does not enter them, the band count only
 * as one or more).  with_srs: set the SRS too. */
static int geo_gdal(const struct rfs_tiff_desc *d, int with_srs,
		    struct geo_tag *out, int *n_out)
{
	static atomic_ulong seq;
	char name[96];
	const char *opts[] = { "ENDIANNESS=LITTLE", NULL };
	GDALDatasetH ds;
	GDALDriverH drv;
	vsi_l_offset len = 0;
	int rc = 0;

	*n_out = 0;
	snprintf(name, sizeof(name), "/vsimem/rfs_tiff_geo_%ld_%lu.tif",
		 (long)getpid(), atomic_fetch_add(&seq, 1));
	CPLPushErrorHandler(CPLQuietErrorHandler);
	CPLErrorReset();
	drv = GDALGetDriverByName("GTiff");
	/* one band or more: with a vertical SRS, GDAL writes a Z scale of 1
	 * in ModelPixelScale for a single-band file only */
	ds = drv ? GDALCreate(drv, name, 1, 1, d->bands == 1 ? 1 : 2, GDT_Byte,
			      (char **)opts) : NULL;
	if (!ds) {
		rc = -RFS_E_PROCESS;
		goto out;
	}
	if (d->has_geotransform &&
	    GDALSetGeoTransform(ds, (double *)d->geotransform) != CE_None)
		rc = -RFS_E_PROCESS;
	if (with_srs && GDALSetProjection(ds, d->srs_wkt) != CE_None)
		rc = -RFS_E_PROCESS;
	if (d->pixel_is_point &&
	    GDALSetMetadataItem(ds, "AREA_OR_POINT", "Point", NULL) != CE_None)
		rc = -RFS_E_PROCESS;
	GDALClose(ds);   /* writes the tags; void before GDAL 3.7 */
	if (CPLGetLastErrorType() == CE_Failure)
		rc = -RFS_E_PROCESS;
	if (rc)
		goto out;
	GByte *mem = VSIGetMemFileBuffer(name, &len, FALSE);
	if (!mem) {
		rc = -RFS_E_PROCESS;
		goto out;
	}
	rc = geo_parse(mem, (size_t)len, out, n_out);
out:
	VSIUnlink(name);
	CPLPopErrorHandler();
	return rc;
}

/* GDAL turns an SRS into GeoKeys in 0.3 ms for an EPSG code but in 14 ms
 * for a CRS it has to identify (no authority code), and a directory of
 * rasters shares a few SRSs: so the GeoKey tags (34735-34737) are cached
 * per (WKT, AREA_OR_POINT, has geotransform).  They do not depend on the
 * geotransform's values, and GDAL's model tags (33550, 33922, 34264) depend
 * on the SRS only when it is vertical (the Z scale of a single-band file):
 * on a hit for a non-vertical SRS, the model tags come from a GDAL call
 * without the SRS, the GeoKeys from the cache. */
#define GEO_CACHE 8

struct geo_cached {
	char *wkt;
	int point, has_gt;
	struct geo_tag keys[3];
	int n_keys;
	uint64_t used;
};

static struct geo_cached geo_cache[GEO_CACHE];
static uint64_t geo_clock;
static pthread_mutex_t geo_mu = PTHREAD_MUTEX_INITIALIZER;

static int is_geokey(unsigned tag)
{
	return tag >= 34735 && tag <= 34737;
}

static int tag_copy(struct geo_tag *dst, const struct geo_tag *src)
{
	*dst = *src;
	dst->data = malloc(src->len);
	if (!dst->data)
		return -ENOMEM;
	memcpy(dst->data, src->data, src->len);
	return 0;
}

static void geo_cache_put(const struct rfs_tiff_desc *d,
			  const struct geo_tag *tags, int n)
{
	struct geo_cached *c = &geo_cache[0];

	for (int i = 1; i < GEO_CACHE; i++)
		if (geo_cache[i].used < c->used)
			c = &geo_cache[i];
	free(c->wkt);
	for (int i = 0; i < c->n_keys; i++)
		free(c->keys[i].data);
	memset(c, 0, sizeof(*c));
	c->wkt = strdup(d->srs_wkt);
	if (!c->wkt)
		return;
	c->point = d->pixel_is_point;
	c->has_gt = d->has_geotransform;
	c->used = ++geo_clock;
	for (int i = 0; i < n; i++)
		if (is_geokey(tags[i].tag) && c->n_keys < 3 &&
		    tag_copy(&c->keys[c->n_keys], &tags[i]) == 0)
			c->n_keys++;
}

/* The cached GeoKeys for d appended to out[*n], or 0 when not cached. */
static int geo_cache_get(const struct rfs_tiff_desc *d, struct geo_tag *out,
			 int *n)
{
	int found = 0;

	for (int i = 0; i < GEO_CACHE && !found; i++) {
		struct geo_cached *c = &geo_cache[i];
		if (!c->wkt || c->point != d->pixel_is_point ||
		    c->has_gt != d->has_geotransform ||
		    strcmp(c->wkt, d->srs_wkt) != 0)
			continue;
		found = 1;
		c->used = ++geo_clock;
		for (int k = 0; k < c->n_keys; k++)
			if (tag_copy(&out[(*n)++], &c->keys[k]) != 0)
				found = -ENOMEM;
	}
	return found;
}

static int srs_vertical(const char *wkt)
{
	OGRSpatialReferenceH s = OSRNewSpatialReference(NULL);
	char *w = (char *)wkt;
	int v = 1;   /* unknown: not cached */

	if (s && OSRImportFromWkt(s, &w) == OGRERR_NONE)
		v = OSRIsVertical(s) || OSRIsCompound(s);
	OSRDestroySpatialReference(s);
	return v;
}

/* The GeoTIFF tags GDAL writes for desc's georeferencing, ascending. */
int tiff_geo_from_gdal(const struct rfs_tiff_desc *d, struct geo_tag *out,
			 int *n_out)
{
	const int srs = d->srs_wkt && *d->srs_wkt;
	int rc, n = 0, hit;

	*n_out = 0;
	if (!d->has_geotransform && !srs && !d->pixel_is_point)
		return 0;
	if (!srs)
		return geo_gdal(d, 0, out, n_out);

	/* model tags from a call without the SRS, keys from the cache */
	rc = geo_gdal(d, 0, out, &n);
	for (int i = 0; i < n; i++)
		if (is_geokey(out[i].tag)) {
			free(out[i].data);
			out[i--] = out[--n];
			out[n].data = NULL;
		}
	*n_out = n;
	if (rc)
		return rc;
	pthread_mutex_lock(&geo_mu);
	hit = geo_cache_get(d, out, n_out);
	pthread_mutex_unlock(&geo_mu);
	if (hit)
		return hit < 0 ? hit : 0;

	/* a miss: all of them from GDAL with the SRS */
	for (int i = 0; i < *n_out; i++) {
		free(out[i].data);
		out[i].data = NULL;
	}
	rc = geo_gdal(d, 1, out, n_out);
	if (rc == 0 && !srs_vertical(d->srs_wkt)) {
		pthread_mutex_lock(&geo_mu);
		geo_cache_put(d, out, *n_out);
		pthread_mutex_unlock(&geo_mu);
	}
	return rc;
}

/* An IFD's tags go in ascending order. */
void tiff_geo_sort(struct geo_tag *t, int n)
{
	for (int i = 1; i < n; i++)
		for (int j = i; j > 0 && t[j - 1].tag > t[j].tag; j--) {
			struct geo_tag x = t[j];
			t[j] = t[j - 1];
			t[j - 1] = x;
		}
}

