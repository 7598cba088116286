/* number.h - numbers written so that they read back exactly.
 *
 * The canonical chain text (chain.h), GDAL's arguments, band statistics,
 * world files and TIFF metadata all spell numbers this way, so a number
 * means the same bytes wherever it is written.  A leaf: pure, no other
 * module of rasterfs.
 */
#ifndef RASTERFS_NUMBER_H
#define RASTERFS_NUMBER_H

#include <stddef.h>

/* Write the shortest decimal text that reads back as exactly v ("0.5",
 * "500", "inf", "-inf", "1e+20") into buf.  Returns the length, or -1 if
 * it does not fit. */
int rfs_format_double(double v, char *buf, size_t len);

#endif
