/* gdal_util.c - GDAL helpers every step shares: errors, creation options,
 * create-like, close-checked, fsync-and-hash, argument lists.
 *
 * A leaf: it knows GDAL, the error codes and the file checker, and nothing
 * of steps, chains or outputs, so every room of the operations can use it
 * and none of them is needed by it.
 */
#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cpl_conv.h>
#include <cpl_error.h>
#include <cpl_string.h>
#include <gdal.h>
#include <xxhash.h>

#include "rasterfs/number.h"
#include "rasterfs/err.h"
#include "rasterfs/filecheck.h"
#include "rasterfs/gdal_util.h"
#include "rasterfs/log.h"

#define HASH_BUF (1 << 20)

const char *const rfs_gdal_gtiff_options[] = {
	"TILED=YES", "BLOCKXSIZE=256", "BLOCKYSIZE=256", "BIGTIFF=IF_SAFER",
	"COMPRESS=NONE", NULL,
};

int rfs_gdal_error(const char *what, char *msg, size_t msglen)
{
	const int saved = errno;
	const CPLErrorNum no = CPLGetLastErrorNo();
	const char *m = CPLGetLastErrorMsg();
	int rc = -RFS_E_PROCESS;

	if (!m || !*m)
		m = rfs_log_last_gdal();
	if (!m || !*m)
		m = "GDAL reported no message";
	if (no == CPLE_OutOfMemory || saved == ENOMEM)
		rc = -RFS_E_NOMEM;
	else if (saved == ENOSPC || saved == EDQUOT ||
		 strstr(m, "No space left") || strstr(m, "disk space"))
		rc = -RFS_E_NOSPACE;
	else if (no == CPLE_UserInterrupt)
		rc = -RFS_E_CANCELLED;
	snprintf(msg, msglen, "%s: %s", what, m);
	return rc;
}

int rfs_gdal_create_like(GDALDatasetH src, int nbands, GDALDataType t,
			 const char *path, GDALDatasetH *out, char *msg,
			 size_t msglen)
{
	GDALDriverH drv = GDALGetDriverByName("GTiff");
	char **co = CSLDuplicate((char **)rfs_gdal_gtiff_options);
	GDALDatasetH ds = NULL;
	double gt[6];
	int rc = 0;

	if (nbands > 1)
		co = CSLSetNameValue(co, "INTERLEAVE", "BAND");
	CPLErrorReset();
	errno = 0;
	if (!drv || !(ds = GDALCreate(drv, path,
				      GDALGetRasterXSize(src),
				      GDALGetRasterYSize(src), nbands, t,
				      co)))
		goto fail;
	if (GDALGetGeoTransform(src, gt) == CE_None &&
	    GDALSetGeoTransform(ds, gt) != CE_None)
		goto fail;
	OGRSpatialReferenceH srs = GDALGetSpatialRef(src);
	if (srs && GDALSetSpatialRef(ds, srs) != CE_None)
		goto fail;
	*out = ds;
	goto out;
fail:
	rc = rfs_gdal_error("cannot create the output", msg, msglen);
	if (ds)
		GDALClose(ds);
out:
	CSLDestroy(co);
	return rc;
}

int rfs_gdal_close_checked(GDALDatasetH ds, const char *what, char *msg,
			   size_t msglen)
{
	CPLErrorReset();
	errno = 0;
	GDALClose(ds);
	if (CPLGetLastErrorType() == CE_Failure ||
	    CPLGetLastErrorType() == CE_Fatal)
		return rfs_gdal_error(what, msg, msglen);
	return 0;
}

int rfs_gdal_fsync_hash(const char *path, uint64_t *size_out,
			uint64_t *checksum, char *msg, size_t msglen)
{
	XXH3_state_t *st = XXH3_createState();
	char *buf = malloc(HASH_BUF);
	uint64_t size = 0;
	int fd = -1, rc = 0;

	if (!st || !buf) {
		snprintf(msg, msglen, "no memory to hash the output");
		rc = -RFS_E_NOMEM;
		goto out;
	}
	struct stat sb;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0 || fsync(fd) < 0 || fstat(fd, &sb) < 0) {
		rc = errno == ENOSPC || errno == EDQUOT ? -RFS_E_NOSPACE :
							  -RFS_E_PROCESS;
		snprintf(msg, msglen, "cannot sync the output: %s",
			 strerror(errno));
		goto out;
	}
	/* Never a short object reported as done (filecheck.h). */
	if ((rc = rfs_filecheck(fd, (uint64_t)sb.st_size, msg, msglen)) < 0) {
		if (rc != -RFS_E_PROCESS) {
			snprintf(msg, msglen, "cannot read the output back: "
				 "%s", strerror(-rc));
			rc = -RFS_E_PROCESS;
		}
		goto out;
	}
	XXH3_64bits_reset(st);
	for (;;) {
		ssize_t n = read(fd, buf, HASH_BUF);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			snprintf(msg, msglen, "cannot read the output back: %s",
				 strerror(errno));
			rc = -RFS_E_PROCESS;
			goto out;
		}
		if (n == 0)
			break;
		XXH3_64bits_update(st, buf, (size_t)n);
		size += (uint64_t)n;
	}
	if (size != (uint64_t)sb.st_size) {
		snprintf(msg, msglen, "the output changed size while it was "
			 "hashed (%llu, then %llu bytes)",
			 (unsigned long long)sb.st_size,
			 (unsigned long long)size);
		rc = -RFS_E_PROCESS;
		goto out;
	}
	*size_out = size;
	*checksum = XXH3_64bits_digest(st);
out:
	if (fd >= 0)
		close(fd);
	free(buf);
	XXH3_freeState(st);
	return rc;
}

char **rfs_gdal_warp_options(char **argv)
{
	char threads[32];
	long n = sysconf(_SC_NPROCESSORS_ONLN);

	snprintf(threads, sizeof(threads), "NUM_THREADS=%ld", n > 0 ? n : 1);
	argv = CSLAddString(argv, "-wm");
	argv = CSLAddString(argv, "64");
	argv = CSLAddString(argv, "-et");
	argv = CSLAddString(argv, "0.125");
	argv = CSLAddString(argv, "-wo");
	return CSLAddString(argv, threads);
}

char **rfs_gdal_add_num(char **argv, double v)
{
	char buf[48];

	rfs_format_double(v, buf, sizeof(buf));
	return CSLAddString(argv, buf);
}

char **rfs_gdal_add_tr(char **argv, double tr)
{
	argv = CSLAddString(argv, "-tr");
	argv = rfs_gdal_add_num(argv, tr);
	return rfs_gdal_add_num(argv, tr);
}

int rfs_gdal_strip_rows(int W, size_t bytes_per_cell, size_t budget)
{
	int rows = 256;

	while (rows > 1 && (size_t)rows * W * bytes_per_cell > budget)
		rows /= 2;
	return rows;
}

int rfs_gdal_strips(const struct rfs_strips *s, char *msg, size_t msglen)
{
	const size_t cells = (size_t)s->rows * s->W;
	const size_t osize = (size_t)GDALGetDataTypeSizeBytes(s->out_type);
	double *in[RFS_STRIPS_MAX_BANDS] = { NULL };
	void *out[RFS_STRIPS_MAX_BANDS] = { NULL };
	int rc = 0, i;

	assert(s->nin >= 1 && s->nin <= RFS_STRIPS_MAX_BANDS &&
	       s->nout >= 0 && s->nout <= RFS_STRIPS_MAX_BANDS &&
	       (!s->in_place || (s->nout == s->nin &&
				 s->out_type == GDT_Float64)));
	for (i = 0; i < s->nin; i++)
		if (!(in[i] = malloc(cells * sizeof(double))))
			goto nomem;
	for (i = 0; i < s->nout; i++)
		if (!(out[i] = s->in_place ? in[i] : malloc(cells * osize)))
			goto nomem;
	for (int y = 0; y < s->H && !rc; y += s->rows) {
		const int nr = y + s->rows <= s->H ? s->rows : s->H - y;
		const size_t n = (size_t)nr * s->W;

		for (i = 0; i < s->nin; i++)
			if (GDALRasterIO(s->in[i], GF_Read, 0, y, s->W, nr,
					 in[i], s->W, nr, GDT_Float64, 0,
					 0) != CE_None)
				goto gdal_fail;
		if ((rc = s->map(s->arg, y, nr, n, in, out, msg, msglen)) < 0)
			break;
		for (i = 0; i < s->nout; i++)
			if (GDALRasterIO(s->out[i], GF_Write, 0, y, s->W, nr,
					 out[i], s->W, nr, s->out_type, 0,
					 0) != CE_None)
				goto gdal_fail;
		if (s->progress &&
		    !s->progress(s->base + s->scale * (y + nr) / s->H, "",
				 s->progress_arg)) {
			if (s->say_cancel)
				snprintf(msg, msglen, "%s: cancelled",
					 s->what);
			rc = -RFS_E_CANCELLED;
		}
	}
	goto out;
nomem:
	snprintf(msg, msglen, "%s: out of memory for %d rows of %d cells",
		 s->what, s->rows, s->W);
	rc = -RFS_E_NOMEM;
	goto out;
gdal_fail:
	rc = rfs_gdal_error(s->what, msg, msglen);
out:
	for (i = 0; i < RFS_STRIPS_MAX_BANDS; i++) {
		if (!s->in_place)
			free(out[i]);
		free(in[i]);
	}
	return rc;
}
