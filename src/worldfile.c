/* worldfile.c - the world file of a png output: its text and its chunk. */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "rasterfs/number.h"
#include "rasterfs/worldfile.h"

/* ESRI's world file: A D B E C F, one a line, with C and F the centre of
 * the upper-left pixel where GDAL's geotransform has its corner. */
int rfs_worldfile_format(const double gt[6], char *buf, size_t len)
{
	const double v[6] = {
		gt[1], gt[4], gt[2], gt[5],
		gt[0] + gt[1] / 2 + gt[2] / 2, gt[3] + gt[4] / 2 + gt[5] / 2,
	};
	size_t n = 0;

	for (int i = 0; i < 6; i++) {
		int w = rfs_format_double(v[i], buf + n, len - n - 1);
		if (w < 0)
			return -1;
		n += (size_t)w;
		buf[n++] = '\n';
		buf[n] = '\0';
	}
	return 0;
}

/* PNG 1.2 spec: an 8-byte signature, then chunks of a 4-byte big-endian
 * length, a 4-byte type, the data and a CRC.  Only the chunks before the
 * image data are looked at (GDAL's PNG driver writes its text there), a
 * few preads of a file the store keeps immutable: no PNG library is
 * needed to find one text chunk, and none is asked to decode the image. */
int rfs_worldfile_read_png(int fd, char *buf, size_t len)
{
	static const char sig[8] = "\x89PNG\r\n\x1a\n";
	const size_t kl = sizeof(RFS_WORLDFILE_KEY); /* with its NUL */
	unsigned char h[8];
	char data[RFS_WORLDFILE_MAX];
	off_t off = 8;

	if (pread(fd, h, 8, 0) != 8 || memcmp(h, sig, 8) != 0)
		return -EIO;
	while (pread(fd, h, 8, off) == 8) {
		const uint32_t cl = (uint32_t)h[0] << 24 | h[1] << 16 |
				    h[2] << 8 | h[3];
		if (memcmp(h + 4, "IDAT", 4) == 0 ||
		    memcmp(h + 4, "IEND", 4) == 0)
			break;
		if (memcmp(h + 4, "tEXt", 4) == 0 && cl > kl &&
		    cl - kl < len && cl <= sizeof(data) &&
		    pread(fd, data, cl, off + 8) == (ssize_t)cl &&
		    memcmp(data, RFS_WORLDFILE_KEY, kl) == 0) {
			memcpy(buf, data + kl, cl - kl);
			buf[cl - kl] = '\0';
			return (int)(cl - kl);
		}
		off += 12 + (off_t)cl;
	}
	return -ENODATA;
}
