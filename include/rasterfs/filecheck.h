/* filecheck.h - is a finished output whole?  Structure walkers for the
 * formats rasterfs writes (TIFF and BigTIFF, COGs included, and PNG).
 *
 * A worker checks its output before it reports DONE, so that a file cut
 * short (a full disk that a library did not report, a write lost on the
 * way) is a failed job, never an object in the store.  The walkers read
 * only the structure, never pixels:
 *
 *   TIFF / BigTIFF  the header; every IFD of the chain (main image,
 *                   overviews, masks), which must lie inside the file,
 *                   with no loop and at most RFS_FILECHECK_MAX_IFDS of
 *                   them; every entry's out-of-line value inside the file;
 *                   every strip or tile (offset + byte count) inside the
 *                   file (offset 0 with count 0, a sparse block, is
 *                   allowed); offsets and byte counts of the same length.
 *   PNG             the signature, IHDR first, every chunk's length
 *                   inside the file, and IEND last, ending exactly at the
 *                   end of the file.  CRCs are not checked: a short write
 *                   cuts a file, it does not change the bytes before the
 *                   cut, and the store's checksum covers the bytes.
 *
 * Hand-written rather than libtiff/libpng: they check exactly this
 * property in a few hundred lines (libtiff reads directories lazily and
 * notices a short strip only when the strip is read), and rasterfs has no
 * separate libtiff or libpng dependency (GDAL's own copies are internal).
 * The walkers trust nothing in the file: every count and offset is
 * bounded by the file's size before it is used.
 */
#ifndef RASTERFS_FILECHECK_H
#define RASTERFS_FILECHECK_H

#include <stddef.h>
#include <stdint.h>

#define RFS_FILECHECK_MAX_IFDS 4096

/* Check the TIFF, BigTIFF or PNG file open at fd (any other file is
 * refused), size bytes long.  Returns 0 if whole, or -RFS_E_PROCESS with
 * a sentence saying what is wrong in msg, or -errno if it cannot be
 * read. */
int rfs_filecheck(int fd, uint64_t size, char *msg, size_t len);

#endif
