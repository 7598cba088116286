/* rasterext_gdal.c - the probe process of rasterext.h: the extensions of
 * this GDAL's raster drivers, printed once for the daemon, which never
 * loads GDAL's drivers itself. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/prctl.h>
#include <unistd.h>

#include <gdal.h>

#include "rasterfs/rasterext.h"

int rfs_rasterext_main(int argc, char **argv)
{
	int any = 0;

	(void)argc;
	(void)argv;
	/* It dies with the daemon, keeps none of its descriptors, and asks
	 * nothing of the network (PROJ's grids). */
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	close_range(3, ~0U, 0);
	setenv("PROJ_NETWORK", "OFF", 1);
	GDALAllRegister();
	for (int i = 0; i < GDALGetDriverCount(); i++) {
		GDALDriverH d = GDALGetDriver(i);
		const char *raster = GDALGetMetadataItem(d, GDAL_DCAP_RASTER,
							 NULL);
		const char *ext = GDALGetMetadataItem(d, GDAL_DMD_EXTENSIONS,
						      NULL);

		if (!ext)
			ext = GDALGetMetadataItem(d, GDAL_DMD_EXTENSION, NULL);
		if (!raster || strcasecmp(raster, "YES") != 0 || !ext || !*ext)
			continue;
		printf("%s%s", any ? " " : "", ext);
		any = 1;
	}
	printf("\n");
	GDALDestroyDriverManager();
	return fflush(stdout) == 0 && any ? 0 : 1;
}
