/* test_filecheck.c - the TIFF/BigTIFF/PNG structure walkers on files GDAL
 * writes (striped and tiled GeoTIFF, BigTIFF, a COG with overviews, a
 * PNG) and on every one of them cut short.
 *
 * Oracle: GDAL itself.  A whole file passes.  A file cut at N bytes must
 * be refused, unless GDAL reads every band and every overview of the cut
 * file back with the same checksums as the whole one (then the cut lost
 * nothing that anything refers to) - and for every GDAL output the last
 * byte is referred to (a COG's last block is followed by a repeat of its
 * last 4 bytes, which the walker counts), so a cut of one byte is always
 * refused.  A PNG has
 * no unreferenced bytes: every cut is refused.  Hand-made TIFFs cover what
 * GDAL never writes: a loop of directories, an offset past the end.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cpl_conv.h>
#include <cpl_error.h>
#include <cpl_string.h>
#include <gdal.h>
#include <gdal_alg.h>

#include "rasterfs/err.h"
#include "rasterfs/filecheck.h"

#include "check.h"

static char tmpdir[] = "/tmp/rfs-test-filecheck-XXXXXX";

static char *path(const char *name)
{
	static char p[8][512];
	static int i;
	char *r = p[i++ % 8];

	snprintf(r, sizeof(p[0]), "%s/%s", tmpdir, name);
	return r;
}

static int walk(const char *file, char *msg, size_t len)
{
	struct stat st;
	int fd = open(file, O_RDONLY), rc;

	if (fd < 0 || fstat(fd, &st) < 0)
		return -errno;
	rc = rfs_filecheck(fd, (uint64_t)st.st_size, msg, len);
	close(fd);
	return rc;
}

/* A 300 x 200 Int16 raster with a gradient and some structure. */
static GDALDatasetH source(void)
{
	GDALDatasetH ds = GDALCreate(GDALGetDriverByName("MEM"), "", 300, 200,
				     2, GDT_Int16, NULL);
	short *row = malloc(300 * sizeof(short));
	double gt[6] = { 500000, 30, 0, 4500000, 0, -30 };

	for (int b = 1; b <= 2; b++)
		for (int y = 0; y < 200; y++) {
			for (int x = 0; x < 300; x++)
				row[x] = (short)(x * y % 997 + b * 10);
			if (GDALRasterIO(GDALGetRasterBand(ds, b), GF_Write, 0,
					 y, 300, 1, row, 300, 1, GDT_Int16, 0,
					 0) != CE_None)
				exit(2);
		}
	GDALSetGeoTransform(ds, gt);
	free(row);
	return ds;
}

static int make(GDALDatasetH src, const char *drv, const char *file,
		const char *const *co)
{
	GDALDatasetH out = GDALCreateCopy(GDALGetDriverByName(drv), file, src,
					  FALSE, (char **)co, NULL, NULL);
	if (!out)
		return -1;
	GDALClose(out);
	return 0;
}

/* Checksums of every band and overview of file, or n = -1 if GDAL cannot
 * read it all without an error. */
static int checksums(const char *file, int *sums, int cap)
{
	int n = 0;

	CPLPushErrorHandler(CPLQuietErrorHandler);
	CPLErrorReset();
	GDALDatasetH ds = GDALOpen(file, GA_ReadOnly);
	if (!ds) {
		CPLPopErrorHandler();
		return -1;
	}
	for (int b = 1; b <= GDALGetRasterCount(ds) && n >= 0; b++) {
		GDALRasterBandH band = GDALGetRasterBand(ds, b);
		int novr = GDALGetOverviewCount(band);
		for (int o = -1; o < novr && n >= 0 && n < cap; o++) {
			GDALRasterBandH x = o < 0 ? band :
					    GDALGetOverview(band, o);
			sums[n++] = GDALChecksumImage(x, 0, 0,
						      GDALGetRasterBandXSize(x),
						      GDALGetRasterBandYSize(x));
		}
		GDALRasterBandH m = GDALGetMaskBand(band);
		if (GDALGetMaskFlags(band) == GMF_PER_DATASET && n < cap)
			sums[n++] = GDALChecksumImage(m, 0, 0,
						      GDALGetRasterBandXSize(m),
						      GDALGetRasterBandYSize(m));
	}
	GDALClose(ds);
	if (CPLGetLastErrorType() >= CE_Failure)
		n = -1;
	CPLPopErrorHandler();
	return n;
}

static void copy_cut(const char *from, const char *to, off_t n)
{
	char *buf = malloc((size_t)n + 1);
	int in = open(from, O_RDONLY);
	int out = open(to, O_WRONLY | O_CREAT | O_TRUNC, 0600);

	if (!buf || in < 0 || out < 0 ||
	    (n && pread(in, buf, (size_t)n, 0) != n) ||
	    (n && write(out, buf, (size_t)n) != n))
		exit(2);
	close(in);
	close(out);
	free(buf);
}

/* The file is whole; every cut is refused or loses nothing GDAL reads;
 * the one-byte cut is refused. */
static void check_cuts(const char *what, const char *name, int png)
{
	char file[512];
	struct stat st;
	char msg[512];
	int whole[64], cut[64], nwhole, rc;

	snprintf(file, sizeof(file), "%s", name); /* path() is reused */
	if (stat(file, &st) < 0) {
		check(0, "%s: not written", what);
		return;
	}
	rc = walk(file, msg, sizeof(msg));
	check(rc == 0, "%s: whole file passes (%s)", what, rc ? msg : "");
	nwhole = checksums(file, whole, 64);
	check(nwhole > 0, "%s: GDAL reads the whole file", what);
	const off_t size = st.st_size;
	const off_t step = size / 97 > 0 ? size / 97 : 1;
	int refused = 0, tried = 0;
	for (off_t n = 0; n < size; n += n < 64 ? 1 : step) {
		off_t len = n;
		char *c = path("cut");
		tried++;
		copy_cut(file, c, len);
		rc = walk(c, msg, sizeof(msg));
		if (rc == -RFS_E_PROCESS) {
			refused++;
			continue;
		}
		check(rc == 0, "%s cut at %lld: walker error %d", what,
		      (long long)len, rc);
		int ncut = checksums(c, cut, 64);
		check(!png && ncut == nwhole &&
		      !memcmp(cut, whole, sizeof(int) * (size_t)nwhole),
		      "%s cut at %lld of %lld bytes passed the walker but GDAL "
		      "reads it differently", what, (long long)len,
		      (long long)size);
	}
	for (off_t k = 1; k <= 3; k++) {
		char *c = path("cut");
		copy_cut(file, c, size - k);
		check(walk(c, msg, sizeof(msg)) == -RFS_E_PROCESS,
		      "%s cut by %lld byte(s): refused", what, (long long)k);
	}
	printf("%s: %lld bytes, %d of %d cuts refused\n", what,
	       (long long)size, refused, tried);
}

static void write_le(unsigned char *p, uint64_t v, int n)
{
	for (int i = 0; i < n; i++)
		p[i] = (unsigned char)(v >> (8 * i));
}

/* A classic TIFF by hand: one IFD at 8 with StripOffsets and
 * StripByteCounts (LONG, one value each, inline), next IFD at next. */
static void hand_tiff(const char *file, uint32_t strip_off, uint32_t strip_n,
		      uint32_t next, size_t total)
{
	unsigned char b[256] = { 'I', 'I', 42, 0 };
	unsigned char *e;

	write_le(b + 4, 8, 4);
	write_le(b + 8, 2, 2);
	e = b + 10;
	write_le(e, 273, 2);
	write_le(e + 2, 4, 2);
	write_le(e + 4, 1, 4);
	write_le(e + 8, strip_off, 4);
	e += 12;
	write_le(e, 279, 2);
	write_le(e + 2, 4, 2);
	write_le(e + 4, 1, 4);
	write_le(e + 8, strip_n, 4);
	e += 12;
	write_le(e, next, 4);
	int fd = open(file, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	if (fd < 0 || write(fd, b, total) != (ssize_t)total)
		exit(2);
	close(fd);
}

static void test_hand_made(void)
{
	char msg[512];
	char *f = path("hand.tif");

	hand_tiff(f, 100, 50, 0, 160);
	check(walk(f, msg, sizeof(msg)) == 0, "hand-made TIFF passes (%s)",
	      msg);
	hand_tiff(f, 100, 61, 0, 160);
	check(walk(f, msg, sizeof(msg)) == -RFS_E_PROCESS,
	      "a strip one byte past the end is refused");
	hand_tiff(f, 0, 0, 0, 160);
	check(walk(f, msg, sizeof(msg)) == 0, "a sparse strip (0, 0) passes");
	hand_tiff(f, 100, 50, 8, 160);
	check(walk(f, msg, sizeof(msg)) == -RFS_E_PROCESS &&
	      strstr(msg, "loop"), "a directory pointing to itself: %s", msg);
	hand_tiff(f, 100, 50, 150, 160);
	check(walk(f, msg, sizeof(msg)) == -RFS_E_PROCESS,
	      "a next directory past the end is refused");
	hand_tiff(f, 100, 50, 0, 7);
	check(walk(f, msg, sizeof(msg)) == -RFS_E_PROCESS,
	      "7 bytes of TIFF are refused");
	int fd = open(f, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	if (fd < 0 || write(fd, "GIF89a-not-a-tiff", 17) != 17)
		exit(2);
	close(fd);
	check(walk(f, msg, sizeof(msg)) == -RFS_E_PROCESS,
	      "neither TIFF nor PNG is refused");
}

int main(void)
{
	static const char *const striped[] = { "COMPRESS=NONE", NULL };
	static const char *const tiled[] = {
		"TILED=YES", "BLOCKXSIZE=128", "BLOCKYSIZE=128", NULL,
	};
	static const char *const big[] = {
		"TILED=YES", "BLOCKXSIZE=64", "BLOCKYSIZE=64", "BIGTIFF=YES",
		"INTERLEAVE=BAND", NULL,
	};
	static const char *const cog[] = {
		"COMPRESS=DEFLATE", "BLOCKSIZE=128", "OVERVIEWS=AUTO", NULL,
	};

	if (!mkdtemp(tmpdir)) {
		perror("mkdtemp");
		return 2;
	}
	GDALAllRegister();
	CPLSetConfigOption("GDAL_PAM_ENABLED", "NO");
	GDALDatasetH src = source();

	if (make(src, "GTiff", path("striped.tif"), striped) == 0)
		check_cuts("striped GeoTIFF", path("striped.tif"), 0);
	if (make(src, "GTiff", path("tiled.tif"), tiled) == 0)
		check_cuts("tiled GeoTIFF", path("tiled.tif"), 0);
	if (make(src, "GTiff", path("big.tif"), big) == 0)
		check_cuts("BigTIFF", path("big.tif"), 0);
	if (make(src, "COG", path("cog.tif"), cog) == 0)
		check_cuts("COG with overviews", path("cog.tif"), 0);
	GDALDatasetH byte = GDALCreate(GDALGetDriverByName("MEM"), "", 300,
				       200, 1, GDT_Byte, NULL);
	unsigned char row[300];
	for (int y = 0; y < 200; y++) {
		for (int x = 0; x < 300; x++)
			row[x] = (unsigned char)(x ^ y);
		if (GDALRasterIO(GDALGetRasterBand(byte, 1), GF_Write, 0, y,
				 300, 1, row, 300, 1, GDT_Byte, 0, 0) != CE_None)
			return 2;
	}
	if (make(byte, "PNG", path("q.png"), NULL) == 0) {
		check_cuts("PNG", path("q.png"), 1);
		/* bytes after IEND */
		int fd = open(path("q.png"), O_WRONLY | O_APPEND);
		if (fd >= 0 && write(fd, "junk", 4) == 4) {
			char msg[256];
			check(walk(path("q.png"), msg, sizeof(msg)) ==
			      -RFS_E_PROCESS, "a PNG with bytes after IEND");
		}
		if (fd >= 0)
			close(fd);
	}
	check(passed > 0, "GDAL wrote the test files");
	GDALClose(byte);
	GDALClose(src);
	test_hand_made();

	char cmd[600];
	snprintf(cmd, sizeof(cmd), "rm -rf %s", tmpdir);
	if (system(cmd) != 0)
		printf("could not remove %s\n", tmpdir);
	return check_report();
}
