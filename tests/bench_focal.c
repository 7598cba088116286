/* bench_focal.c - focal statistics on an array in memory, for
 * scripts/bench.sh: the compute-only counterpart of SciPy's
 * ndimage.uniform_filter on the same array.
 *
 *   bench_focal RASTER SIZE [STAT [SHAPE]]
 *
 * Reads band 1 of RASTER into a GDAL MEM dataset (as Float32), then times
 * rfs_focal_band() from that MEM band into another (best of 3) and prints
 * the seconds.  No file is read or written while timing.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cpl_conv.h>
#include <gdal.h>

#include "rasterfs/chain.h"
#include "rasterfs/focal.h"

static double now(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static int parse_stat(const char *s, enum rfs_focal_stat *out)
{
	for (int i = RFS_FOCAL_MEAN; i <= RFS_FOCAL_MEDIAN; i++)
		if (strcmp(s, rfs_focal_stat_name((enum rfs_focal_stat)i)) == 0) {
			*out = (enum rfs_focal_stat)i;
			return 0;
		}
	return -1;
}

int main(int argc, char **argv)
{
	enum rfs_focal_stat stat = RFS_FOCAL_MEAN;
	enum rfs_focal_shape shape = RFS_FOCAL_SQUARE;
	char msg[256];
	double best = -1;

	if (argc < 3 || (argc > 3 && parse_stat(argv[3], &stat) < 0)) {
		fprintf(stderr, "usage: %s RASTER SIZE [STAT [square|circle]]\n",
			argv[0]);
		return 2;
	}
	if (argc > 4 && strcmp(argv[4], "circle") == 0)
		shape = RFS_FOCAL_CIRCLE;
	int size = atoi(argv[2]);
	GDALAllRegister();
	GDALDatasetH src = GDALOpen(argv[1], GA_ReadOnly);
	if (!src) {
		fprintf(stderr, "bench_focal: cannot open %s\n", argv[1]);
		return 1;
	}
	const int W = GDALGetRasterXSize(src), H = GDALGetRasterYSize(src);
	GDALDriverH mem = GDALGetDriverByName("MEM");
	GDALDatasetH in = GDALCreate(mem, "", W, H, 1, GDT_Float32, NULL);
	GDALDatasetH out = GDALCreate(mem, "", W, H, 1,
				      rfs_focal_out_type(GDT_Float32, stat),
				      NULL);
	float *buf = malloc((size_t)W * H * sizeof(float));
	if (!in || !out || !buf)
		return 1;
	GDALRasterBandH sb = GDALGetRasterBand(src, 1);
	int has_nd = 0;
	double nd = GDALGetRasterNoDataValue(sb, &has_nd);
	if (GDALRasterIO(sb, GF_Read, 0, 0, W, H, buf, W, H, GDT_Float32, 0,
			 0) != CE_None ||
	    GDALRasterIO(GDALGetRasterBand(in, 1), GF_Write, 0, 0, W, H, buf,
			 W, H, GDT_Float32, 0, 0) != CE_None)
		return 1;
	if (has_nd)
		GDALSetRasterNoDataValue(GDALGetRasterBand(in, 1), nd);
	for (int i = 0; i < 3; i++) {
		double t = now();
		if (rfs_focal_band(GDALGetRasterBand(in, 1),
				   GDALGetRasterBand(out, 1), size, stat, shape,
				   NULL, NULL, NULL, msg, sizeof(msg)) != 0) {
			fprintf(stderr, "bench_focal: %s\n", msg);
			return 1;
		}
		t = now() - t;
		if (best < 0 || t < best)
			best = t;
	}
	printf("%.3f\n", best);
	free(buf);
	GDALClose(out);
	GDALClose(in);
	GDALClose(src);
	return 0;
}
