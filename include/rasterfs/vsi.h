/* vsi.h - what GDAL may open in a worker: GDAL virtual file systems and
 * GDAL's own guards.
 *
 * A job's source is a file of strangers, and GDAL opens whatever it names
 * (VRT sources, raw bands, sidecars, /vsicurl/ URLs).  rfs_vsi_install()
 * (once per worker, before confine.h's rfs_confine_apply) makes GDAL
 * reach files only this way:
 *
 *   /vsirfs/NAME     NAME below the source root.  A name pinned with
 *                    rfs_vsi_pin() (the job's source) reads the pinned
 *                    descriptor with pread and is never opened again by
 *                    path.  Any other name (a sidecar .tfw/.ovr/.msk, a
 *                    VRT's relative source) is opened with openat2
 *                    beneath the worker's root descriptor (RESOLVE_BENEATH:
 *                    no "..", absolute path or symlink leads out), without
 *                    blocking (O_NONBLOCK; only a regular file is kept, so
 *                    a FIFO fails at once), and only if everyone who may
 *                    read the pinned source may read it too (an output
 *                    is as readable as its source).  Read-only.
 *   /vsirfspin/NAME  only names pinned there (the kept prefix object,
 *                    which lives in the store, where a worker may not
 *                    open anything).
 *   refusing handlers over every network file system of GDAL 3.6
 *                    (/vsicurl/, /vsis3/, /vsigs/, /vsiaz/, /vsiadls/,
 *                    /vsioss/, /vsiswift/, /vsiwebhdfs/, /vsihdfs/, their
 *                    _streaming variants) and /vsistdin/, /vsistdout/.
 *
 * It also deregisters the drivers that talk to the network by themselves
 * (WMS, WMTS, WCS, HTTP, PostGISRaster, EEDAI, DAAS, PLMosaic, OGCAPI,
 * NGW, ...) and sets PROJ_NETWORK=OFF, GDAL_VRT_ENABLE_PYTHON=NO and
 * GDAL_HTTP_* to fail fast.  Absolute paths still go to GDAL's own file
 * handler: the worker's Landlock domain refuses those outside the
 * directories it may read (confine.h), and rfs_vsi_note_error() finds them
 * in GDAL's error messages.
 *
 * Every refusal a source caused (a name leaving the root, a file that is
 * not a regular file or is less readable than the source, a network or
 * stdio path, an absolute path the kernel refused) is recorded with its path and reason; a job that caused
 * one fails with RFS_E_FORBIDDEN and rfs_vsi_refusal()'s sentence.
 * Thread safe (GDAL may read from several threads).
 */
#ifndef RASTERFS_VSI_H
#define RASTERFS_VSI_H

#include <stddef.h>

#define RFS_VSI_TREE "/vsirfs/"
#define RFS_VSI_PIN "/vsirfspin/"

/* Install the handlers over the tree of rootfd (a directory descriptor
 * kept open for the worker's life, of the absolute path root) and GDAL's
 * guards.  Call once, after GDALAllRegister().  Returns 0 or -ENOMEM. */
int rfs_vsi_install(int rootfd, const char *root);

/* Serve the GDAL name (RFS_VSI_TREE or RFS_VSI_PIN followed by a name)
 * from fd, which stays the caller's and must stay open until
 * rfs_vsi_unpin_all().  Returns 0, -EINVAL (another prefix), -ENOSPC (too
 * many pins). */
int rfs_vsi_pin(const char *gdal_name, int fd);
void rfs_vsi_unpin_all(void);

/* Forget the refusals recorded so far (at the start of a job). */
void rfs_vsi_reset(void);

/* The first refusal since rfs_vsi_reset() as a sentence ("the source
 * refers to ../outside/x.tif, outside the source directory") in buf.
 * Returns 1 if there was one, else 0 (buf untouched). */
int rfs_vsi_refusal(char *buf, size_t len);

/* GDAL's own file handler opens absolute paths, and those inside the
 * source root are allowed (confine.h), so they escape the plugin's check
 * that a file referred to is as readable as the source.  This looks at
 * the process's open files (/proc/self/fd) and records as a refusal each
 * one inside the root that is less readable than the pinned source.  The
 * worker calls it while GDAL works (its progress callback), when what a
 * source refers to is open for reading. */
void rfs_vsi_check_open_files(void);

/* Look at a GDAL error message for absolute paths that an open() refuses
 * with EACCES (the worker's Landlock domain, or permissions), and record
 * each as a refusal.  For the worker's GDAL error handler. */
void rfs_vsi_note_error(const char *msg);

#endif
