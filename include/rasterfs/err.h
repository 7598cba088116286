/* err.h - rasterfs error codes.
 *
 * Convention, everywhere in rasterfs: a function returns 0 on success or a
 * negative number on failure.  A negative number is either a negated errno
 * (-ENOENT) or a negated rasterfs code (-RFS_E_BAD_ARG).  rasterfs codes live
 * in a reserved range above every errno, so the two never collide, and each
 * has a stable public spelling "RFS-Ennn" that users quote in bug reports.
 * Codes are turned into an errno only at the FUSE boundary
 * (rfs_err_errno()).  Never renumber a code: add new ones at the end of
 * their group.
 */
#ifndef RASTERFS_ERR_H
#define RASTERFS_ERR_H

#include <stddef.h>

#define RFS_E_BASE 20000

enum rfs_err {
	/* 1xx: the name asked for is wrong.  Failed at lookup, no work done. */
	RFS_E_UNKNOWN_STEP = RFS_E_BASE + 100, /* ENOENT */
	RFS_E_BAD_ARG = RFS_E_BASE + 101,      /* EINVAL */
	RFS_E_BAD_CRS = RFS_E_BASE + 102,      /* EINVAL */
	RFS_E_ESCAPE = RFS_E_BASE + 103,       /* EACCES: leaves the source root */
	RFS_E_TOO_LONG = RFS_E_BASE + 104,     /* ENAMETOOLONG */
	RFS_E_NO_SOURCE = RFS_E_BASE + 105,    /* ENOENT: no source file */
	RFS_E_TOO_BIG = RFS_E_BASE + 106,      /* EFBIG: output over max_pixels
						  (found by the worker from
						  the grid, before any pixel;
						  fails the open) */
	RFS_E_READONLY = RFS_E_BASE + 107,     /* EROFS: a program tried to
						  write beside an output
						  (X.ovr, X.aux.xml); the
						  log says what to use
						  instead (fs_hint.c) */

	/* 2xx: the job ran and failed.  The open fails with EIO. */
	RFS_E_SOURCE = RFS_E_BASE + 200,       /* GDAL cannot open the source */
	RFS_E_PROCESS = RFS_E_BASE + 201,      /* a GDAL step failed */
	RFS_E_CRASH = RFS_E_BASE + 202,        /* the worker process died */
	RFS_E_NOMEM = RFS_E_BASE + 203,        /* the worker ran out of memory */
	RFS_E_CANCELLED = RFS_E_BASE + 204,    /* cancelled */
	RFS_E_TIMEOUT = RFS_E_BASE + 205,      /* over job_timeout */
	RFS_E_SHUTDOWN = RFS_E_BASE + 206,     /* the mount is going away */
	RFS_E_FORBIDDEN = RFS_E_BASE + 207,    /* EACCES: the source needed
						  a file outside the source
						  tree, a FIFO, or the network
						  (refused by the confined
						  worker; the message names
						  it) */
	RFS_E_SOURCE_CHANGED = RFS_E_BASE + 208, /* ESTALE: the source changed
						  while its job ran (never
						  stored; the kernel looks
						  the name up again and
						  retries the open once) */
	RFS_E_STALLED = RFS_E_BASE + 209,      /* ETIMEDOUT: the worker sent
						  nothing for stall_timeout */

	/* 3xx: the cache store. */
	RFS_E_NOSPACE = RFS_E_BASE + 300,      /* ENOSPC under the store */
	RFS_E_STORE_IO = RFS_E_BASE + 301,     /* I/O error in the store */
	RFS_E_STORE_CORRUPT = RFS_E_BASE + 302,/* index and objects disagree */
	RFS_E_STORE_VERSION = RFS_E_BASE + 303,/* store made by another format */
	RFS_E_SHARED_CORRUPT = RFS_E_BASE + 304,/* an object of the shared tier
						  does not match its sidecar
						  (never served: logged, the
						  output is computed) */
	RFS_E_SHARED = RFS_E_BASE + 305,       /* the shared tier (shared=DIR)
						  cannot be used: missing,
						  not writable, another
						  format */

	/* 4xx: start-up and configuration. */
	RFS_E_OPTION = RFS_E_BASE + 400,       /* bad mount option */
	RFS_E_DRIVERS = RFS_E_BASE + 401,      /* GDAL's raster extensions
						  could not be listed at
						  start (rasterext.h) */
	RFS_E_SUBMIT = RFS_E_BASE + 402,       /* sbatch refused the job array
						  of `rasterfs warm --slurm` */
	RFS_E_NO_SHARED = RFS_E_BASE + 403,    /* `warm --slurm` of a mount
						  that has no shared= tier */
	RFS_E_INTERNAL = RFS_E_BASE + 499,     /* a bug in rasterfs */
};

/* The one-line message for rc (negative or positive; errno or RFS code).
 * Never NULL; unknown codes get a generic text. */
const char *rfs_strerror(int rc);

/* The stable public spelling of rc: "RFS-E101" for rasterfs codes, the
 * errno's symbolic name ("ENOENT") otherwise.  Never NULL. */
const char *rfs_err_name(int rc);

/* What a user can do about rc, one line ("fix the step name ..."), or
 * NULL (an errno, or a code without one). */
const char *rfs_err_remedy(int rc);

/* The i-th rasterfs code of the table, in the table's order (by group,
 * then number), for listings such as the man page's ERRORS; 0 when i is
 * past the last. */
int rfs_err_code_at(size_t i);

/* The positive errno that the FUSE layer replies with for rc. */
int rfs_err_errno(int rc);

/* Nonzero when rc is a rasterfs code rather than an errno. */
int rfs_err_is_rfs(int rc);

/* Map an errno seen while writing the store (ENOSPC, EDQUOT, EIO, ...) to the
 * rasterfs code that describes it; other errnos are returned unchanged
 * (negated). */
int rfs_err_from_store_errno(int err);

#endif
