/* test_worldfile.c - finding a png output's sidecar texts in a PNG
 * (worldfile.h), on PNGs GDAL's PNG driver writes.
 *
 * Oracle: the values handed to GDAL as metadata (WRITE_METADATA_AS_TEXT):
 * an ASCII text becomes a tEXt chunk, a UTF-8 one an iTXt chunk, and the
 * reader must give back exactly the bytes given, for the key asked and no
 * other (one key a prefix of another).  And the world file text of a known
 * geotransform, against ESRI's definition written out by hand.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cpl_string.h>
#include <gdal.h>

#include "rasterfs/worldfile.h"

#include "check.h"

static char tmpdir[] = "/tmp/rfs-test-worldfile-XXXXXX";

/* A 3 x 2 grey PNG at path with the metadata items md (NULL-ended
 * key, value pairs). */
static int write_png(const char *path, const char *const *md)
{
	GDALDriverH mem = GDALGetDriverByName("MEM");
	GDALDriverH png = GDALGetDriverByName("PNG");
	GDALDatasetH src, out;
	char **co = CSLAddString(NULL, "WRITE_METADATA_AS_TEXT=YES");

	if (!mem || !png)
		return -1;
	src = GDALCreate(mem, "", 3, 2, 1, GDT_Byte, NULL);
	if (!src)
		return -1;
	for (; md && md[0]; md += 2)
		GDALSetMetadataItem(src, md[0], md[1], NULL);
	out = GDALCreateCopy(png, path, src, FALSE, co, NULL, NULL);
	CSLDestroy(co);
	GDALClose(src);
	if (!out)
		return -1;
	GDALClose(out);
	return 0;
}

int main(void)
{
	char png[600], other[600], buf[256];
	/* "Réseau" in UTF-8 (not ASCII: GDAL writes an iTXt chunk) */
	const char *utf8 = "<PAMDataset><SRS>R\xc3\xa9seau</SRS></PAMDataset>\n";
	const char *ascii = "1\n0\n0\n-1\n10.5\n20.5\n";
	const char *const md[] = {
		"rasterfs_aux", "a prefix of the key, not the key",
		RFS_PNG_AUX_KEY, utf8,
		RFS_WORLDFILE_KEY, ascii,
		NULL,
	};
	const double gt[6] = { 10, 1, 0, 21, 0, -1 };
	ssize_t n;
	int fd;

	GDALAllRegister();
	if (!mkdtemp(tmpdir)) {
		perror("mkdtemp");
		return 1;
	}
	snprintf(png, sizeof(png), "%s/t.png", tmpdir);
	snprintf(other, sizeof(other), "%s/none.png", tmpdir);
	check(write_png(png, md) == 0, "GDAL writes the PNG");
	check(write_png(other, NULL) == 0, "GDAL writes a PNG without text");

	fd = open(png, O_RDONLY);
	check(fd >= 0, "open %s", png);
	n = rfs_worldfile_read_png(fd, RFS_WORLDFILE_KEY, buf, sizeof(buf));
	check(n == (ssize_t)strlen(ascii) && strcmp(buf, ascii) == 0,
	      "the tEXt text comes back exactly (%zd)", n);
	n = rfs_worldfile_read_png(fd, RFS_PNG_AUX_KEY, buf, sizeof(buf));
	check(n == (ssize_t)strlen(utf8) && strcmp(buf, utf8) == 0,
	      "the iTXt (UTF-8) text comes back exactly (%zd '%s')", n,
	      n >= 0 ? buf : "");
	check(rfs_worldfile_read_png(fd, RFS_PNG_AUX_KEY, NULL, 0) ==
	      (ssize_t)strlen(utf8), "a size query gives the length");
	memset(buf, 'x', sizeof(buf));
	check(rfs_worldfile_read_png(fd, RFS_PNG_AUX_KEY, buf, 5) ==
	      (ssize_t)strlen(utf8) && buf[0] == 'x',
	      "too small a buffer: the length, and the buffer untouched");
	check(rfs_worldfile_read_png(fd, "rasterfs", buf, sizeof(buf)) ==
	      -ENODATA, "a key that is only a prefix of one: none");
	close(fd);

	fd = open(other, O_RDONLY);
	check(rfs_worldfile_read_png(fd, RFS_WORLDFILE_KEY, buf,
				     sizeof(buf)) == -ENODATA,
	      "a PNG without the text: -ENODATA");
	close(fd);
	fd = open("/proc/self/exe", O_RDONLY);
	check(rfs_worldfile_read_png(fd, RFS_WORLDFILE_KEY, buf,
				     sizeof(buf)) == -EIO,
	      "not a PNG: -EIO");
	close(fd);

	/* ESRI: A D B E, then the centre of the upper-left pixel */
	check(rfs_worldfile_format(gt, buf, sizeof(buf)) == 0 &&
	      strcmp(buf, "1\n0\n0\n-1\n10.5\n20.5\n") == 0,
	      "the world file of a geotransform ('%s')", buf);

	unlink(png);
	unlink(other);
	rmdir(tmpdir);
	return check_report();
}
