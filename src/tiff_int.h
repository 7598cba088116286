/* tiff_int.h - what tiff.c and tiff_geo.c share (not part of tiff.h). */
#ifndef RASTERFS_TIFF_INT_H
#define RASTERFS_TIFF_INT_H

#include <stddef.h>
#include <stdint.h>

#include "rasterfs/tiff.h"

/* TIFF field types used here */
enum { T_ASCII = 2, T_SHORT = 3, T_LONG = 4, T_DOUBLE = 12, T_LONG8 = 16 };

/* The GeoTIFF tags copied out of GDAL's file, in this order. */
static const uint16_t geo_tag_ids[] = { 33550, 33922, 34264, 34735, 34736,
					34737 };
#define N_GEO (sizeof(geo_tag_ids) / sizeof(geo_tag_ids[0]))

/* One GeoTIFF tag's entry and value. */
struct geo_tag {
	uint16_t tag, type;
	uint64_t count;
	unsigned char *data;   /* little-endian value bytes */
	size_t len;
};

/* A little-endian unsigned number of n bytes at p. */
static inline uint64_t get_le(const unsigned char *p, int n)
{
	uint64_t v = 0;

	for (int i = n - 1; i >= 0; i--)
		v = (v << 8) | p[i];
	return v;
}

/* The GeoTIFF tags of d's grid and CRS, as GDAL writes them (out has room
 * for N_GEO; each data is malloc'd, the caller frees).  *n_out is how
 * many.  Returns 0, -ENOMEM, or -RFS_E_PROCESS when GDAL cannot write a
 * GeoTIFF of that CRS. */
int tiff_geo_from_gdal(const struct rfs_tiff_desc *d, struct geo_tag *out,
		       int *n_out);

/* Sort n tags by tag number (an IFD's tags go in ascending order). */
void tiff_geo_sort(struct geo_tag *t, int n);

#endif
