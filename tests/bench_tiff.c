/* bench_tiff.c - informal timings of src/tiff.c (not a test).
 *
 *   bench_tiff layout RASTER...      rfs_tiff_layout of each raster's
 *                                    description, 1000 times (ms each)
 *   bench_tiff write SRC OUT [ovr]   rfs_tiff_write_from_dataset of SRC
 *                                    into OUT with exact statistics
 *                                    (seconds; compare with gdal_translate)
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cpl_string.h>
#include <gdal.h>

#include "rasterfs/tiff.h"

static double now(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static void describe(GDALDatasetH ds, struct rfs_tiff_desc *d, int ovr)
{
	static const struct rfs_tiff_item items[] = {
		{ "RFS_SOURCE", "sub/dem.tif" },
		{ "RFS_CHAIN", "@proj=EPSG:3857@focal=3" },
		{ "RFS_VERSION", "0.1.0" }, { "GDAL_VERSION", "3.6.2" },
		{ "PROJ_VERSION", "9.1.1" },
	};
	GDALRasterBandH b = GDALGetRasterBand(ds, 1);
	const char *aop = GDALGetMetadataItem(ds, "AREA_OR_POINT", NULL);
	int has;

	memset(d, 0, sizeof(*d));
	d->pixel_is_point = aop && EQUAL(aop, "Point");
	d->width = GDALGetRasterXSize(ds);
	d->height = GDALGetRasterYSize(ds);
	d->bands = GDALGetRasterCount(ds);
	d->type = GDALGetRasterDataType(b);
	d->has_geotransform = GDALGetGeoTransform(ds, d->geotransform) ==
			      CE_None;
	d->srs_wkt = GDALGetProjectionRef(ds);
	d->nodata = GDALGetRasterNoDataValue(b, &has);
	d->has_nodata = has;
	d->items = items;
	d->n_items = 5;
	d->overviews = ovr;
}

int main(int argc, char **argv)
{
	GDALAllRegister();
	if (argc >= 3 && strcmp(argv[1], "layout") == 0) {
		for (int i = 2; i < argc; i++) {
			GDALDatasetH ds = GDALOpen(argv[i], GA_ReadOnly);
			struct rfs_tiff_desc d;
			struct rfs_tiff_layout l;
			if (!ds)
				return 1;
			describe(ds, &d, 1);
			double t0 = now();
			for (int k = 0; k < 1000; k++) {
				/* a new geotransform each time: no cache
				 * could help */
				d.geotransform[0] += 1;
				if (rfs_tiff_layout(&d, &l) != 0)
					return 1;
				if (k < 999)
					rfs_tiff_layout_free(&l);
			}
			printf("%s: %.3f ms per layout; keeps %zu + %zu bytes "
			       "(header %llu, total %llu)\n", argv[i],
			       now() - t0, l.head_len,
			       (size_t)d.bands * sizeof(size_t),
			       (unsigned long long)l.header_size,
			       (unsigned long long)l.total_size);
			rfs_tiff_layout_free(&l);
			GDALClose(ds);
		}
		return 0;
	}
	if (argc >= 4 && strcmp(argv[1], "write") == 0) {
		GDALDatasetH ds = GDALOpen(argv[2], GA_ReadOnly);
		struct rfs_tiff_desc d;
		struct rfs_tiff_layout l;
		if (!ds)
			return 1;
		describe(ds, &d, argc > 4);
		struct rfs_tiff_stats *st = calloc((size_t)d.bands, sizeof(*st));
		double t0 = now();
		if (rfs_tiff_layout(&d, &l) != 0)
			return 1;
		int rc = rfs_tiff_write_from_dataset(ds, &l, argv[3], st, NULL,
						     NULL);
		printf("write %s: rc=%d %.2f s, %llu bytes, %d levels\n",
		       argv[3], rc, now() - t0,
		       (unsigned long long)l.total_size, l.n_levels);
		rfs_tiff_layout_free(&l);
		free(st);
		GDALClose(ds);
		return rc != 0;
	}
	fprintf(stderr, "usage: bench_tiff layout RASTER... | "
		"bench_tiff write SRC OUT [ovr]\n");
	return 2;
}
