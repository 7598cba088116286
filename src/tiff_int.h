/* tiff_int.h - private to src/tiff*.c: what the layout (tiff.c), the
 * GeoTIFF tags (tiff_geo.c) and the writer (tiff_write.c) share. */
#ifndef RASTERFS_TIFF_INT_H
#define RASTERFS_TIFF_INT_H

#include <stddef.h>
#include <stdint.h>

#include "rasterfs/tiff.h"

#define TILE RFS_TIFF_TILE
#define TILE_PIXELS ((uint64_t)TILE * TILE)

/* TIFF field types used here */
enum { T_ASCII = 2, T_SHORT = 3, T_LONG = 4, T_DOUBLE = 12, T_LONG8 = 16 };

/* The GeoTIFF tags, in ascending order. */
static const uint16_t geo_tag_ids[] = { 33550, 33922, 34264, 34735, 34736,
					34737 };
#define N_GEO (sizeof(geo_tag_ids) / sizeof(geo_tag_ids[0]))

struct geo_tag {
	uint16_t tag, type;
	uint64_t count;
	unsigned char *data;   /* little-endian value bytes */
	size_t len;
};

static inline uint64_t get_le(const unsigned char *p, int n)
{
	uint64_t v = 0;

	for (int i = n - 1; i >= 0; i--)
		v = (v << 8) | p[i];
	return v;
}

/* tiff_geo.c: the GeoTIFF tags of d (design note 1): up to N_GEO in out,
 * their number in *n_out (their data malloc'd).  Returns 0, or a negative
 * code with GDAL's message logged. */
int tiff_geo_from_gdal(const struct rfs_tiff_desc *d, struct geo_tag *out,
		       int *n_out);

/* Sort n tags by tag number (an IFD's tags go in ascending order). */
void tiff_geo_sort(struct geo_tag *t, int n);

#endif
