/* worldfile.c - the sidecars of a png output: the world file's text, and
 * finding a text chunk in a PNG (worldfile.h). */
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

/* Where the text of a tEXt or iTXt chunk starts, the chunk's data being
 * at off (cl bytes) and keyed key (kl bytes with its NUL, already
 * matched): 0 and *start, or -1 (a compressed iTXt, or a broken one).
 * iTXt (PNG 1.2, 4.2.3.3): keyword NUL, compression flag, compression
 * method, language tag NUL, translated keyword NUL, text. */
static int itxt_start(int fd, off_t off, uint32_t cl, size_t kl,
		      uint32_t *start)
{
	char head[512];
	size_t n = cl < sizeof(head) ? cl : sizeof(head), p = kl + 2;

	if (cl < kl + 2 || pread(fd, head, n, off) != (ssize_t)n ||
	    head[kl] != 0)
		return -1;
	for (int nul = 0; nul < 2; nul++) {
		const char *z = memchr(head + p, '\0', n - p);
		if (!z)
			return -1;
		p = (size_t)(z - head) + 1;
	}
	*start = (uint32_t)p;
	return 0;
}

/* PNG 1.2 spec: an 8-byte signature, then chunks of a 4-byte big-endian
 * length, a 4-byte type, the data and a CRC.  Only the chunks before the
 * image data are looked at (GDAL's PNG driver writes its text there), a
 * few preads of a file the store keeps immutable: no PNG library is
 * needed to find one text chunk, and none is asked to decode the image. */
ssize_t rfs_worldfile_read_png(int fd, const char *key, char *buf,
			       size_t len)
{
	static const char sig[8] = "\x89PNG\r\n\x1a\n";
	const size_t kl = strlen(key) + 1; /* with its NUL */
	unsigned char h[8];
	char kw[80];
	off_t off = 8;

	if (kl > sizeof(kw) || pread(fd, h, 8, 0) != 8 ||
	    memcmp(h, sig, 8) != 0)
		return kl > sizeof(kw) ? -ENODATA : -EIO;
	while (pread(fd, h, 8, off) == 8) {
		const uint32_t cl = (uint32_t)h[0] << 24 | h[1] << 16 |
				    h[2] << 8 | h[3];
		const int text = memcmp(h + 4, "tEXt", 4) == 0;
		uint32_t start = (uint32_t)kl;

		if (memcmp(h + 4, "IDAT", 4) == 0 ||
		    memcmp(h + 4, "IEND", 4) == 0)
			break;
		if ((text || memcmp(h + 4, "iTXt", 4) == 0) && cl >= kl &&
		    pread(fd, kw, kl, off + 8) == (ssize_t)kl &&
		    memcmp(kw, key, kl) == 0 &&
		    (text || itxt_start(fd, off + 8, cl, kl, &start) == 0)) {
			const size_t n = cl - start;
			if (n > RFS_PNG_TEXT_MAX)
				return -ENODATA;
			if (n < len) {
				if (pread(fd, buf, n, off + 8 + start) !=
				    (ssize_t)n)
					return -EIO;
				buf[n] = '\0';
			}
			return (ssize_t)n;
		}
		off += 12 + (off_t)cl;
	}
	return -ENODATA;
}
