/* err.c - rasterfs error codes: one table, three views (message, public
 * name, errno).  errno values are described by glibc itself
 * (strerrordesc_np/strerrorname_np), which return static strings and so are
 * thread safe, unlike strerror().
 */
#include <errno.h>
#include <limits.h>
#include <string.h>

#include "rasterfs/err.h"

struct rfs_err_info {
	int code;
	const char *name;	/* stable; users quote it in bug reports */
	int err;		/* what the FUSE layer replies with */
	const char *msg;
	const char *remedy;	/* what to do, one line; the error table of
				   docs/errors.md says the same */
};

static const struct rfs_err_info rfs_err_table[] = {
	{ RFS_E_UNKNOWN_STEP, "RFS-E100", ENOENT,
	  "unknown processing step in the name",
	  "fix the step name (the message names the closest); `rasterfs "
	  "steps` lists every step" },
	{ RFS_E_BAD_ARG, "RFS-E101", EINVAL,
	  "bad arguments to a processing step",
	  "fix the arguments as the message says; `rasterfs steps` shows "
	  "every step's" },
	{ RFS_E_BAD_CRS, "RFS-E102", EINVAL,
	  "CRS code not found in PROJ's database",
	  "use a CRS code, e.g. EPSG:4326; codes are case-sensitive "
	  "(IGNF:LAMB93); `projinfo EPSG:NNNN` shows what a code is" },
	{ RFS_E_ESCAPE, "RFS-E103", EACCES,
	  "path leaves the source tree",
	  "use a path inside the source directory" },
	{ RFS_E_TOO_LONG, "RFS-E104", ENAMETOOLONG,
	  "processing chain too long",
	  "split the work into shorter chains" },
	{ RFS_E_NO_SOURCE, "RFS-E105", ENOENT,
	  "no source file for the name",
	  "check the source file name: the source is the longest prefix, "
	  "ending before an '@', that is a file" },
	{ RFS_E_TOO_BIG, "RFS-E106", EFBIG,
	  "output larger than the configured limit",
	  "choose a coarser res=, or mount with a larger max_pixels=" },
	{ RFS_E_READONLY, "RFS-E107", EROFS,
	  "the mount is read-only: nothing is written beside an output",
	  "use what the log names instead (@fmt=cog for overviews; the "
	  "statistics are in the file), or copy the output out of the "
	  "mount to change it" },

	{ RFS_E_SOURCE, "RFS-E200", EIO,
	  "GDAL cannot open the source raster",
	  "check the file with gdalinfo; the log has GDAL's message" },
	{ RFS_E_PROCESS, "RFS-E201", EIO,
	  "a processing step failed",
	  "read GDAL's message in the log; try the same with GDAL's "
	  "command-line tools" },
	{ RFS_E_CRASH, "RFS-E202", EIO,
	  "the worker process died",
	  "read it again: a new worker replaces the old one; if it "
	  "repeats, report it with the log" },
	{ RFS_E_NOMEM, "RFS-E203", ENOMEM,
	  "the worker ran out of memory",
	  "mount with a larger worker_mem= (or fewer workers=), or ask "
	  "for less work" },
	{ RFS_E_CANCELLED, "RFS-E204", ECANCELED,
	  "the job was cancelled",
	  "read it again; a cancelled job is not remembered as a failure" },
	{ RFS_E_TIMEOUT, "RFS-E205", ETIMEDOUT,
	  "the job took longer than job_timeout",
	  "ask for less work (coarser res=, smaller window), or a larger "
	  "job_timeout=" },
	/* EIO rather than ESHUTDOWN: a reader's tool prints "Input/output
	 * error", which is closer to the truth than "Cannot send after
	 * transport endpoint shutdown". */
	{ RFS_E_SHUTDOWN, "RFS-E206", EIO,
	  "the filesystem is being unmounted",
	  "remount and read again" },
	{ RFS_E_FORBIDDEN, "RFS-E207", EACCES,
	  "the source refers to something a worker may not read",
	  "keep everything a source refers to inside the source "
	  "directory, as regular files" },
	/* ESTALE: the VFS retries an open that fails with it once, with a
	 * fresh lookup (LOOKUP_REVAL), which makes a new key. */
	{ RFS_E_SOURCE_CHANGED, "RFS-E208", ESTALE,
	  "the source changed while it was being read",
	  "read it again once the source stops changing" },
	{ RFS_E_STALLED, "RFS-E209", ETIMEDOUT,
	  "the worker made no progress for stall_timeout seconds",
	  "read it again; if it repeats, look at the source or raise "
	  "stall_timeout=" },

	{ RFS_E_NOSPACE, "RFS-E300", ENOSPC,
	  "no space left in the cache store",
	  "free space, or mount with cache=DIR on a larger disk" },
	{ RFS_E_STORE_IO, "RFS-E301", EIO,
	  "I/O error in the cache store",
	  "check the disk (dmesg)" },
	{ RFS_E_STORE_CORRUPT, "RFS-E302", EIO,
	  "cache store index and objects disagree",
	  "unmount, remove the cache directory (it holds only results "
	  "that can be recomputed), and mount again" },
	{ RFS_E_STORE_VERSION, "RFS-E303", EIO,
	  "cache store made by another format version",
	  "use another cache=DIR, or remove the old cache directory" },
	{ RFS_E_SHARED_CORRUPT, "RFS-E304", EIO,
	  "an object of the shared tier does not match its sidecar",
	  "nothing to do: it is never served, the output is computed and "
	  "published again; `rasterfs cache gc --shared DIR` removes what "
	  "is left" },
	{ RFS_E_SHARED, "RFS-E305", EIO,
	  "the shared tier cannot be used",
	  "check that shared=DIR exists, is mounted and writable, and was "
	  "made by this rasterfs (DIR/FORMAT)" },

	{ RFS_E_OPTION, "RFS-E400", EINVAL,
	  "bad mount option",
	  "see rasterfs --help" },
	{ RFS_E_DRIVERS, "RFS-E401", EIO,
	  "GDAL's raster drivers could not be listed at start",
	  "run rasterfs --internal-raster-extensions and gdalinfo "
	  "--formats to see GDAL's complaint" },
	{ RFS_E_SUBMIT, "RFS-E402", EIO,
	  "the batch scheduler refused the job array",
	  "read sbatch's message; check the --slurm=OPTIONS and that sbatch "
	  "reaches the cluster (SLURM_CONF)" },
	{ RFS_E_NO_SHARED, "RFS-E403", EINVAL,
	  "the mount has no shared tier",
	  "mount with -o shared=DIR (a directory on the cluster's "
	  "filesystem): the tasks of a job array publish there" },
	{ RFS_E_INTERNAL, "RFS-E499", EIO,
	  "internal error in rasterfs (a bug)",
	  "please report it with the log" },
};

#define RFS_E_LAST (RFS_E_BASE + 999)

static const struct rfs_err_info *rfs_err_find(int code)
{
	size_t i;

	for (i = 0; i < sizeof(rfs_err_table) / sizeof(rfs_err_table[0]); i++)
		if (rfs_err_table[i].code == code)
			return &rfs_err_table[i];
	return NULL;
}

int rfs_err_code_at(size_t i)
{
	return i < sizeof(rfs_err_table) / sizeof(rfs_err_table[0]) ?
		rfs_err_table[i].code : 0;
}

/* abs() of INT_MIN is undefined; any such value is simply unknown. */
static int rfs_err_abs(int rc)
{
	if (rc == INT_MIN)
		return INT_MAX;
	return rc < 0 ? -rc : rc;
}

int rfs_err_is_rfs(int rc)
{
	int c = rfs_err_abs(rc);

	return c >= RFS_E_BASE && c <= RFS_E_LAST;
}

const char *rfs_strerror(int rc)
{
	const struct rfs_err_info *e;
	const char *s;
	int c = rfs_err_abs(rc);

	if (c == 0)
		return "Success";
	if (rfs_err_is_rfs(c)) {
		e = rfs_err_find(c);
		return e ? e->msg : "unknown rasterfs error";
	}
	s = strerrordesc_np(c);
	return s ? s : "unknown error";
}

const char *rfs_err_name(int rc)
{
	const struct rfs_err_info *e;
	const char *s;
	int c = rfs_err_abs(rc);

	if (c == 0)
		return "OK";
	if (rfs_err_is_rfs(c)) {
		e = rfs_err_find(c);
		return e ? e->name : "RFS-E???";
	}
	s = strerrorname_np(c);
	return s ? s : "E???";
}

const char *rfs_err_remedy(int rc)
{
	const struct rfs_err_info *e;

	if (!rfs_err_is_rfs(rc))
		return NULL;
	e = rfs_err_find(rfs_err_abs(rc));
	return e ? e->remedy : NULL;
}

int rfs_err_errno(int rc)
{
	const struct rfs_err_info *e;
	int c = rfs_err_abs(rc);

	if (!rfs_err_is_rfs(c))
		return c;
	e = rfs_err_find(c);
	return e ? e->err : EIO;
}

int rfs_err_from_store_errno(int err)
{
	int c = rfs_err_abs(err);

	switch (c) {
	case ENOSPC:
	case EDQUOT:
		return -RFS_E_NOSPACE;
	case EIO:
		return -RFS_E_STORE_IO;
	default:
		return -c;
	}
}
