/* bench_describe.c - not a test: what describing an output costs in a
 * describer (output.h), to compare chains and to find where the time
 * goes.  Usage: bench_describe FILE CHAIN [N]
 * Prints the mean time of rfs_output_describe + rfs_tiff_layout_pack
 * over N runs (default 200), and the size described. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <gdal.h>

#include "rasterfs/chain.h"
#include "rasterfs/output.h"
#include "rasterfs/tiff.h"

static double now(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
	struct rfs_chain chain;
	char msg[RFS_MSG_MAX];
	int n = argc > 3 ? atoi(argv[3]) : 200;
	uint64_t size = 0;

	if (argc < 3) {
		fprintf(stderr, "usage: %s FILE CHAIN [N]\n", argv[0]);
		return 2;
	}
	GDALAllRegister();
	if (rfs_chain_parse(argv[2], &chain, msg, sizeof(msg))) {
		fprintf(stderr, "%s\n", msg);
		return 1;
	}
	for (int warm = 0; warm < 2; warm++) {
		double t0 = now();
		for (int i = 0; i < (warm ? n : 3); i++) {
			struct rfs_output o;
			size_t len;
			int rc = rfs_output_describe(argv[1], "x.tif", &chain,
						     0, &o, msg, sizeof(msg));
			if (rc || !o.has_layout) {
				fprintf(stderr, "describe: %d %s\n", rc, msg);
				return 1;
			}
			size = o.layout.total_size;
			free(rfs_tiff_layout_pack(&o.layout, &len));
			rfs_output_clear(&o);
		}
		if (warm)
			printf("%s@%s: %.3f ms per describe, %llu bytes\n",
			       argv[1], argv[2], (now() - t0) * 1e3 / n,
			       (unsigned long long)size);
	}
	return 0;
}
