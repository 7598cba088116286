/* worldfile.h - the world file of a fmt=png output, in one place.
 *
 * A png output carries its world file (ESRI's six-line text, X.pgw) inside
 * itself: op_format.c hands the text to GDAL's PNG driver as metadata keyed
 * RFS_WORLDFILE_KEY, which the driver writes as a tEXt chunk before the
 * image data (WRITE_METADATA_AS_TEXT=YES), and the FUSE layer reads it back
 * from the stored object to serve the X.pgw sibling.  No second object in
 * the store, and the text can never disagree with the PNG it describes.
 * Pure: no GDAL, no FUSE.
 */
#ifndef RASTERFS_WORLDFILE_H
#define RASTERFS_WORLDFILE_H

#include <stddef.h>

/* The PNG text keyword holding the world file of a fmt=png output. */
#define RFS_WORLDFILE_KEY "rasterfs_worldfile"

/* Room for a world file's text with its NUL (and the largest tEXt chunk
 * looked at). */
#define RFS_WORLDFILE_MAX 512

/* Write the world file of geotransform gt into buf ("A\nD\nB\nE\nC\nF\n",
 * each number as rfs_format_double writes it).  Returns 0, or -1 when buf
 * is too small. */
int rfs_worldfile_format(const double gt[6], char *buf, size_t len);

/* Read the world file text out of the PNG open at fd (its tEXt chunk keyed
 * RFS_WORLDFILE_KEY, before the image data) into buf (len bytes, with a
 * NUL).  Returns its length, -ENODATA if the PNG has none (a source
 * without a geotransform, or a text longer than len), or -EIO (not a
 * PNG). */
int rfs_worldfile_read_png(int fd, char *buf, size_t len);

#endif
