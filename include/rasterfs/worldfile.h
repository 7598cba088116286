/* worldfile.h - the sidecars of a fmt=png output, in one place.
 *
 * PNG has no place for a CRS or a geotransform, and GDAL's PNG driver reads
 * them only from files beside the PNG: a world file (ESRI's six-line text,
 * X.pgw: the geotransform) and GDAL's PAM file X.aux.xml (the CRS, the
 * geotransform and the band statistics).  A png output carries the text of
 * both inside itself: op_format.c hands each text to GDAL's PNG driver as a
 * metadata item (keys RFS_WORLDFILE_KEY and RFS_PNG_AUX_KEY), which the
 * driver writes as a tEXt chunk (iTXt if the text is UTF-8 but not ASCII)
 * before the image data (WRITE_METADATA_AS_TEXT=YES), and the FUSE layer
 * reads them back from the stored object to serve the sidecars
 * (fs_sidecar.c).  No second object in the store, and a sidecar can never
 * disagree with the PNG it describes.  GDAL shows both items among the
 * PNG's metadata (gdalinfo).  Pure: no GDAL, no FUSE.
 */
#ifndef RASTERFS_WORLDFILE_H
#define RASTERFS_WORLDFILE_H

#include <stddef.h>
#include <sys/types.h>

/* The PNG text keyword holding the world file of a fmt=png output. */
#define RFS_WORLDFILE_KEY "rasterfs_worldfile"

/* The PNG text keyword holding the GDAL PAM document (the X.aux.xml) of a
 * fmt=png output. */
#define RFS_PNG_AUX_KEY "rasterfs_aux_xml"

/* Room for a world file's text with its NUL. */
#define RFS_WORLDFILE_MAX 512

/* The largest text chunk looked at (a PAM document with a long WKT is a
 * few KiB). */
#define RFS_PNG_TEXT_MAX (1 << 20)

/* Write the world file of geotransform gt into buf ("A\nD\nB\nE\nC\nF\n",
 * each number as rfs_format_double writes it).  Returns 0, or -1 when buf
 * is too small. */
int rfs_worldfile_format(const double gt[6], char *buf, size_t len);

/* Find the text keyed key in the PNG open at fd (a tEXt chunk, or an
 * uncompressed iTXt chunk, before the image data).  Returns the text's
 * length n and, if n < len, the text with a NUL in buf (buf may be NULL
 * when len is 0: a size query); or -ENODATA (no such text: a png made
 * without it, or longer than RFS_PNG_TEXT_MAX), -EIO (not a PNG, or a read
 * error). */
ssize_t rfs_worldfile_read_png(int fd, const char *key, char *buf,
			       size_t len);

#endif
