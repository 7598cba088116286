/* ops.c - running a canonical chain with GDAL, in a worker process.
 *
 * Each step reads the previous step's dataset and creates its own file:
 * intermediates in scratch_dir (uncompressed tiled GTiffs, removed as soon
 * as the next step has consumed them), the last step out_path.  Nothing is
 * streamed: a proj first step used to be an in-memory warped VRT read by
 * the next step, but a warped VRT fits its approximate transformer per
 * block where gdalwarp fits it per chunk (about 0.5 % of cells of a nearest
 * neighbour warp differ), so the chain's bytes would differ from the same
 * chain started from the kept prefix object (pool.c, keep_prefixes).  Every
 * step is now exactly "the previous step's file, then this step" (the
 * 20000 x 20000 Float32 proj -> focal=9 -> reclass: 30.3 s and 402 MiB
 * peak RSS materialised, against 27.9 s and 366 MiB streamed).  The
 * COG and PNG writers read the last step's dataset twice (statistics,
 * then the copy), so it is a file for them.
 *
 * The default GeoTIFF is rasterfs's own (tiff.h, output.h): the last
 * step writes its result to scratch too, which is closed, opened again,
 * held to the output's description (what `stat` told before any pixel:
 * a disagreement is RFS-E499), and copied into the description's layout
 * with its exact statistics counted on the way (write_layout); that
 * pass replaces the statistics pass, so the extra cost is one more write
 * of the output.  A type that writer does not take is written as before
 * by GDAL's GTiff driver (the last step writes out_path, the band
 * statistics go into its GDAL_METADATA tag; PAM is off, so no .aux.xml).
 * Then the file is fsynced and hashed.  Any failure removes out_path and
 * every intermediate.
 *
 * Progress: the steps share [0, 1) equally, with the statistics pass
 * counted as a quarter step at the end.  A FALSE from the caller's callback
 * is remembered here, so whatever GDAL makes of it the job reports
 * -RFS_E_CANCELLED.
 *
 * Failures GDAL reports are failures: an error handler, installed for the
 * whole job as the process's handler (so the warper's threads report to it
 * too), sees every message.  A job during which GDAL reported any
 * CE_Failure fails with the first one, even if the call that reported it
 * went on (a truncated source read through gdaldem "succeeded" with an
 * all-nodata output), except the per-point failures of a coordinate
 * transformation, which GDAL's warper expects and masks (a point outside
 * the target projection's domain: gdalwarp reports them and succeeds);
 * CPLE_OutOfMemory anywhere makes it RFS_E_NOMEM, a
 * full disk (errno ENOSPC or EDQUOT at the failure) RFS_E_NOSPACE.  A full
 * disk may also leave libtiff retrying its directory write forever, so the
 * first ENOSPC failure calls the process's nospace hook (the worker
 * reports and exits, see rfs_ops_set_nospace_hook).  Before it reports
 * success, the output's structure is walked (filecheck.h): a file cut
 * short is never a finished output.
 */
#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <float.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <cpl_conv.h>
#include <cpl_error.h>
#include <cpl_string.h>
#include <cpl_vsi.h>
#include <gdal_utils.h>
#include <ogr_srs_api.h>
#include <gdal.h>
#include <proj.h>

#include "ops_int.h"
#include "rasterfs/bandstats.h"
#include "rasterfs/lazy.h"
#include "rasterfs/lazy_work.h"
#include "rasterfs/err.h"
#include "rasterfs/log.h"
#include "rasterfs/ops.h"
#include "rasterfs/output.h"
#include "rasterfs/tiff.h"
#include "rasterfs/step.h"

#define STATS_WEIGHT 0.25 /* the statistics pass, in steps */
#define FORMAT_WEIGHT 0.5 /* writing a COG or PNG, in steps */
#define HASH_BUF (1 << 20)

struct chain_progress {
	GDALProgressFunc fn;  /* the caller's; may be NULL */
	void *arg;
	double base, scale;   /* this part's share of the chain */
	int cancelled;
};

/* What GDAL reported during a job (see the notes above).  GDAL's messages
 * about failed writes rarely say why ("Write error at scanline 0"), and
 * errno is gone by the time the call returns, so the handler looks at
 * errno while GDAL reports the error, then passes the message on to the
 * handler that was in force (the logger). */
struct err_watch {
	CPLErrorHandler next;
	pthread_mutex_t lock;     /* GDAL reports from its threads too */
	int failures;             /* CE_Failure and CE_Fatal reported */
	int nospace;              /* ... with errno ENOSPC or EDQUOT */
	int nomem;                /* CPLE_OutOfMemory, any class */
	char first[RFS_MSG_MAX];  /* the first failure's message */
};

/* One job at a time per process: the handler's state. */
static struct err_watch *cur_watch;

/* PROJ's messages for its coordinate transformation errors
 * (PROJ_ERR_COORD_TRANSFM*: "Point outside of projection domain", ...),
 * taken from PROJ at start-up: GDAL reports each failed point with it
 * (up to 20 per transformation, then "Reprojection failed, err = N,
 * further errors will be suppressed"). */
#define NBENIGN 16
static char benign_text[NBENIGN][96];

static void benign_init(void)
{
	for (int i = 0; i < NBENIGN; i++) {
		const char *t = proj_context_errno_string(
			NULL, PROJ_ERR_COORD_TRANSFM + i);
		snprintf(benign_text[i], sizeof(benign_text[i]), "%s",
			 t && !strstr(t, "nknown") ? t : "");
	}
}

/* Is m a per-point failure of a coordinate transformation (see the notes
 * above)?  "PROJ: " is PROJ's own log of one (a CRS that cannot be made
 * fails its step's call instead). */
static int benign(const char *m)
{
	if (!strncmp(m, "PROJ: ", 6) ||
	    !strncmp(m, "Reprojection failed, err = ", 27))
		return 1;
	for (int i = 0; i < NBENIGN; i++)
		if (benign_text[i][0] && !strcmp(m, benign_text[i]))
			return 1;
	return 0;
}

int rfs_ops_benign(const char *m)
{
	return m && benign(m);
}

static void (*nospace_hook)(const char *msg);

void rfs_ops_set_nospace_hook(void (*fn)(const char *msg))
{
	nospace_hook = fn;
}

static void CPL_STDCALL watch_handler(CPLErr cls, CPLErrorNum no,
				      const char *m)
{
	const int saved = errno;
	struct err_watch *w = cur_watch;
	int call_hook = 0;

	if (w) {
		pthread_mutex_lock(&w->lock);
		/* GDAL's "GetBlockRef failed" after a failed allocation
		 * says only CPLE_AppDefined; errno still says ENOMEM. */
		if ((no == CPLE_OutOfMemory && cls >= CE_Warning) ||
		    (cls >= CE_Failure && saved == ENOMEM))
			w->nomem = 1;
		if (cls >= CE_Failure && !(m && benign(m))) {
			if (!w->failures++)
				snprintf(w->first, sizeof(w->first), "%s",
					 m ? m : "GDAL reported a failure");
			if ((saved == ENOSPC || saved == EDQUOT) &&
			    !w->nospace++)
				call_hook = 1;
		}
		pthread_mutex_unlock(&w->lock);
	}
	if (w && w->next)
		w->next(cls, no, m);
	else
		CPLDefaultErrorHandler(cls, no, m);
	if (call_hook && nospace_hook) {
		char msg[RFS_MSG_MAX];
		snprintf(msg, sizeof(msg), "no space left for the output "
			 "(%s): %s", strerror(saved), m ? m : "");
		nospace_hook(msg);
	}
	errno = saved;
}

static int CPL_STDCALL chain_progress_cb(double frac, const char *m,
					 void *arg)
{
	struct chain_progress *p = arg;

	if (p->cancelled)
		return FALSE;
	if (frac < 0)
		frac = 0;
	if (frac > 1)
		frac = 1;
	if (p->fn && !p->fn(p->base + p->scale * frac, m, p->arg))
		p->cancelled = 1;
	return !p->cancelled;
}

/* Pay GDAL's and PROJ's one-time costs (opening proj.db, the warper's and
 * GeoTIFF writer's first use) when the worker starts, not in the first
 * job it runs: a tiny warp of a 64 x 64 in-memory raster into a GeoTIFF in
 * /vsimem.  Without it the first proj job of a fresh worker took ~0.1 s
 * longer than the next ones. */
static void warm_up(void)
{
	GDALDriverH mem = GDALGetDriverByName("MEM");
	GDALDatasetH src = mem ? GDALCreate(mem, "", 64, 64, 1, GDT_Int16,
					    NULL) : NULL;
	char *argv[] = { "-q", "-t_srs", "EPSG:3857", "-of", "GTiff", NULL };
	GDALWarpAppOptions *opts = NULL;
	double gt[6] = { 10, 0.01, 0, 50, 0, -0.01 };

	if (!src)
		return;
	GDALSetGeoTransform(src, gt);
	GDALSetProjection(src, SRS_WKT_WGS84_LAT_LONG);
	opts = GDALWarpAppOptionsNew(argv, NULL);
	if (opts) {
		GDALDatasetH out = GDALWarp("/vsimem/rasterfs-warm-up.tif",
					    NULL, 1, &src, opts, NULL);
		if (out)
			GDALClose(out);
		VSIUnlink("/vsimem/rasterfs-warm-up.tif");
		GDALWarpAppOptionsFree(opts);
	}
	GDALClose(src);
}

void rfs_ops_start_threads(void)
{
	static const char *const args[] = {
		"-q", "-t_srs", "EPSG:3857", "-of", "VRT", "-r", "bilinear",
		NULL,
	};
	GDALDriverH mem = GDALGetDriverByName("MEM");
	GDALDatasetH src = mem ? GDALCreate(mem, "", 64, 64, 1, GDT_Int16,
					    NULL) : NULL;
	char **argv = rfs_gdal_warp_options(CSLDuplicate((char **)args));
	GDALWarpAppOptions *opts = NULL;
	double gt[6] = { 10, 0.01, 0, 50, 0, -0.01 }, px[4];

	if (src) {
		GDALSetGeoTransform(src, gt);
		GDALSetProjection(src, SRS_WKT_WGS84_LAT_LONG);
		opts = GDALWarpAppOptionsNew(argv, NULL);
	}
	if (opts) {
		GDALDatasetH out = GDALWarp("", NULL, 1, &src, opts, NULL);
		/* one block warped: the pool's threads are running */
		if (out && GDALRasterIO(GDALGetRasterBand(out, 1), GF_Read, 0,
					0, 2, 2, px, 2, 2, GDT_Float64, 0,
					0) != CE_None)
			CPLErrorReset();
		if (out)
			GDALClose(out);
		GDALWarpAppOptionsFree(opts);
	}
	CSLDestroy(argv);
	if (src)
		GDALClose(src);
}

void rfs_ops_init(int cache_mb)
{
	char buf[32];

	GDALAllRegister();
	benign_init();
	CPLSetConfigOption("GDAL_PAM_ENABLED", "NO");
	CPLSetConfigOption("GDAL_NUM_THREADS", "1");
	CPLSetConfigOption("CHECK_DISK_FREE_SPACE", "YES");
	if (cache_mb > 0) {
		/* below 100000 GDAL reads GDAL_CACHEMAX as megabytes */
		snprintf(buf, sizeof(buf), "%d", cache_mb);
		CPLSetConfigOption("GDAL_CACHEMAX", buf);
		GDALSetCacheMax64((GIntBig)cache_mb << 20);
	}
	warm_up();
}

/* Is the filesystem of dir full (no block left for an unprivileged
 * writer)?  A short output with a full disk is RFS_E_NOSPACE. */
static int out_of_space(const char *dir)
{
	struct statvfs sv;

	return statvfs(dir, &sv) == 0 && sv.f_bavail == 0;
}

/* The step's run, from the step table (step.h). */
static rfs_op_run_fn find_op(enum rfs_op op)
{
	const struct rfs_step_desc *d = rfs_step_desc(op);

	return d ? d->engine->run : NULL;
}

/* fmt=cog or fmt=png: out_path from cur (see op_format.c). */
static int write_format(GDALDatasetH cur, const struct rfs_chain *chain,
			const char *scratch_dir, const char *out_path,
			struct chain_progress *prog, char *msg, size_t msglen)
{
	char byte_path[4096];
	struct rfs_op_ctx ctx = {
		.dst_path = out_path,
		.progress = chain_progress_cb,
		.progress_arg = prog,
		.msg = msg,
		.msglen = msglen,
	};
	int n;

	unlink(out_path);
	CPLErrorReset();
	errno = 0;
	if (chain->format == RFS_FMT_COG)
		return rfs_ops_write_cog(cur, &ctx);
	n = snprintf(byte_path, sizeof(byte_path), "%s/png-%ld.tif",
		     scratch_dir, (long)getpid());
	if (n < 0 || (size_t)n >= sizeof(byte_path)) {
		snprintf(msg, msglen, "scratch path too long");
		return -RFS_E_PROCESS;
	}
	return rfs_ops_write_png(cur, chain->stretch, byte_path, &ctx);
}

/* The header of out_path, a lazy output written whole, with the sample
 * statistics of cur (lazy_work.h) in place of the exact ones (stats:
 * room for them). */
static int lazy_stats(GDALDatasetH cur, struct rfs_output *o,
		      const char *out_path, struct rfs_tiff_stats *stats,
		      char *msg, size_t msglen)
{
	int fd, rc;

	if ((rc = rfs_lazy_work_stats_ds(cur, &o->layout, stats, msg,
					 msglen)) < 0)
		return rc;
	if ((fd = open(out_path, O_WRONLY | O_CLOEXEC)) < 0) {
		snprintf(msg, msglen, "cannot write the output's header: %s",
			 strerror(errno));
		return -RFS_E_PROCESS;
	}
	rc = rfs_tiff_write_header(fd, &o->layout, stats);
	if (close(fd) < 0 && rc == 0)
		rc = -errno;
	if (rc == -RFS_E_NOSPACE)
		snprintf(msg, msglen, "cannot write the output: %s",
			 rfs_strerror(rc));
	else if (rc < 0) {
		snprintf(msg, msglen, "cannot write the output's header: %s",
			 rfs_err_is_rfs(rc) ? rfs_strerror(rc) :
			 strerror(-rc));
		rc = -RFS_E_PROCESS;
	}
	return rc;
}

/* The overview tiles of out_path, a lazy output written whole (lazy.h),
 * from the output's own source and chain (o->source, o->chain: the
 * whole chain, even when this run started from a kept prefix). */
static int lazy_overviews(struct rfs_output *o, const char *out_path,
			  char *msg, size_t msglen)
{
	int fd, rc;

	if (!o->source || !o->chain) {
		snprintf(msg, msglen, "a lazy output without its source and "
			 "chain");
		return -RFS_E_INTERNAL;
	}
	if ((fd = open(out_path, O_WRONLY | O_CLOEXEC)) < 0) {
		snprintf(msg, msglen, "cannot write the output's overviews: "
			 "%s", strerror(errno));
		return -RFS_E_PROCESS;
	}
	rc = rfs_lazy_work_overviews(o->source, o->chain, &o->layout, fd, msg,
				     msglen);
	if (close(fd) < 0 && rc == 0) {
		snprintf(msg, msglen, "cannot write the output's overviews: "
			 "%s", strerror(errno));
		rc = errno == ENOSPC ? -RFS_E_NOSPACE : -RFS_E_PROCESS;
	}
	if (rc == -RFS_E_STORE_IO)
		rc = -RFS_E_PROCESS; /* as the base's write errors */
	return rc;
}

/* The own writer's pass (output.h): cur, checked against the
 * description, into out_path in its layout, with exact statistics. */
static int write_layout(GDALDatasetH cur, int is_source,
			struct rfs_output *o, const char *out_path,
			struct chain_progress *prog, char *msg, size_t msglen)
{
	struct rfs_tiff_stats *stats = NULL;
	const int lazy = rfs_lazy_is(o->layout.level[0].width,
				     o->layout.level[0].height,
				     o->layout.n_levels);
	int rc;

	/* note 2 of output.c: a source copied as it is keeps what a GeoTIFF
	 * keeps of it (describe.h), so only a step's result is held to it */
	if (!is_source && (rc = rfs_output_check(o, cur, msg, msglen)))
		return rc;
	if (!(stats = calloc((size_t)o->layout.bands, sizeof(*stats)))) {
		snprintf(msg, msglen, "out of memory for the statistics");
		return -RFS_E_NOMEM;
	}
	unlink(out_path);
	CPLErrorReset();
	errno = 0;
	/* A lazy output's overviews are the chain computed at each level
	 * (lazy.h), written after the base, not the writer's averages. */
	if (lazy)
		rc = rfs_tiff_write_base(cur, &o->layout, out_path, stats,
					 chain_progress_cb, prog);
	else
		rc = rfs_tiff_write_from_dataset(cur, &o->layout, out_path,
						 stats, chain_progress_cb,
						 prog);
	if (rc == -RFS_E_PROCESS)
		rfs_gdal_error("cannot read the last step's result", msg,
			       msglen);
	else if (rc == -RFS_E_CANCELLED)
		snprintf(msg, msglen, "cancelled while writing the output");
	else if (rc == -EINVAL)
		snprintf(msg, msglen, "the last step's result does not have "
			 "the described size or bands");
	else if (rc == -ENOMEM)
		rc = -RFS_E_NOMEM;
	else if (rc == -RFS_E_NOSPACE || rc == -RFS_E_STORE_IO)
		snprintf(msg, msglen, "cannot write the output: %s",
			 rfs_strerror(rc));
	else if (rc < 0 && !rfs_err_is_rfs(rc))
		snprintf(msg, msglen, "cannot write the output: %s",
			 strerror(-rc));
	if (rc == -RFS_E_STORE_IO || (rc < 0 && !rfs_err_is_rfs(rc)))
		rc = -RFS_E_PROCESS;
	/* A lazy output (lazy.h): its overviews as its blocks are computed,
	 * and the sample's approximate statistics, however it is computed:
	 * the same bytes as block by block. */
	if (rc == 0 && lazy)
		rc = lazy_overviews(o, out_path, msg, msglen);
	if (rc == 0 && lazy)
		rc = lazy_stats(cur, o, out_path, stats, msg, msglen);
	free(stats);
	return rc;
}

int rfs_ops_run(const char *source, const struct rfs_chain *chain,
		const char *scratch_dir, const char *out_path,
		GDALProgressFunc progress, void *progress_arg,
		struct rfs_ops_result *res, char *msg, size_t msglen)
{
	struct rfs_output o;
	const char *rel = strrchr(source, '/');
	int rc;

	/* A chain that cannot be described is left to its run to fail on,
	 * with the run's own message. */
	rel = rel ? rel + 1 : source;
	rc = rfs_output_describe(source, rel, chain, 0, &o, msg, msglen);
	rc = rfs_ops_run_output(source, chain, rc == 0 ? &o : NULL,
				scratch_dir, out_path, progress, progress_arg,
				res, msg, msglen);
	rfs_output_clear(&o);
	return rc;
}

int rfs_ops_run_output(const char *source, const struct rfs_chain *chain,
		       struct rfs_output *o, const char *scratch_dir,
		       const char *out_path, GDALProgressFunc progress,
		       void *progress_arg, struct rfs_ops_result *res,
		       char *msg, size_t msglen)
{
	struct chain_progress prog = { .fn = progress, .arg = progress_arg };
	struct err_watch watch = { 0 };
	const int gtiff = chain->format == RFS_FMT_GTIFF;
	/* the own writer: every step's result is an intermediate, the last
	 * one copied into the layout (write_layout) */
	const int own = gtiff && o && o->has_layout;
	const double total = (chain->nsteps ? chain->nsteps : 1) +
		STATS_WEIGHT + (gtiff ? 0 : FORMAT_WEIGHT);
	char tmp[2][4096];      /* intermediates: the one read, the one made */
	int tmp_live[2] = { 0, 0 };
	GDALDatasetH src = NULL, cur = NULL, next = NULL;
	int cur_tmp = -1;       /* index in tmp of cur's file, or -1 */
	int last_stats = 0;     /* the last step set its statistics */
	int rc = 0;

	assert(chain->nsteps >= 0 && chain->nsteps <= RFS_CHAIN_MAX_STEPS);
	msg[0] = '\0';
	rfs_log_clear_gdal();
	CPLErrorReset();
	/* The process's handler, not a pushed one (pushed handlers are per
	 * thread): the warper's threads report to it too. */
	pthread_mutex_init(&watch.lock, NULL);
	cur_watch = &watch;
	watch.next = CPLSetErrorHandler(watch_handler);

	src = GDALOpenEx(source, GDAL_OF_RASTER | GDAL_OF_READONLY |
			 GDAL_OF_VERBOSE_ERROR, NULL, NULL, NULL);
	if (!src) {
		rfs_gdal_error("cannot open the source", msg, msglen);
		rc = -RFS_E_SOURCE;
		goto out;
	}
	if (GDALGetRasterCount(src) < 1) {
		snprintf(msg, msglen, "cannot open the source: %s has no "
			 "raster band", source);
		rc = -RFS_E_SOURCE;
		goto out;
	}
	cur = src;
	if (chain->nsteps == 0 && !own) {
		/* Only a format: the source itself, as a tiled GeoTIFF, or
		 * as an in-memory VRT that can take the statistics for the
		 * COG or PNG writer. */
		prog.base = 0;
		prog.scale = 1 / total;
		CPLErrorReset();
		errno = 0;
		cur = GDALCreateCopy(GDALGetDriverByName(gtiff ? "GTiff" :
							 "VRT"),
				     gtiff ? out_path : "", src, FALSE,
				     gtiff ? (char **)rfs_gdal_gtiff_options :
				     NULL, chain_progress_cb, &prog);
		if (!cur) {
			rc = rfs_gdal_error("cannot copy the source", msg,
						msglen);
			goto out;
		}
	}

	for (int i = 0; i < chain->nsteps; i++) {
		const struct rfs_step *step = &chain->steps[i];
		/* the last step writes out_path only for the default
		 * format with GDAL's writer; otherwise the output is
		 * written from its result */
		const int last = i == chain->nsteps - 1 && gtiff && !own;
		const int slot = cur_tmp == 0 ? 1 : 0;
		rfs_op_run_fn run = find_op(step->op);
		const char *dst = out_path;

		if (!run) {
			snprintf(msg, msglen, "no operation for step %d", i);
			rc = -RFS_E_INTERNAL;
			goto out;
		}
		if (!last) {
			int n = snprintf(tmp[slot], sizeof(tmp[slot]),
					 "%s/step-%ld-%d.tif", scratch_dir,
					 (long)getpid(), i);
			if (n < 0 || (size_t)n >= sizeof(tmp[slot])) {
				snprintf(msg, msglen, "scratch path too long");
				rc = -RFS_E_PROCESS;
				goto out;
			}
			dst = tmp[slot];
			tmp_live[slot] = 1;
		}
		/* GDALWarp would warp into an existing file: start clean */
		unlink(dst);
		prog.base = i / total;
		prog.scale = 1 / total;
		last_stats = 0;
		struct rfs_op_ctx ctx = {
			.stats_set = &last_stats,
			.dst_path = dst,
			.progress = chain_progress_cb,
			.progress_arg = &prog,
			.msg = msg,
			.msglen = msglen,
		};
		CPLErrorReset();
		errno = 0;
		rc = run(cur, step, &ctx, &next);
		if (prog.cancelled) {
			if (rc == 0)
				GDALClose(next);
			snprintf(msg, msglen, "cancelled during %s",
				 rfs_op_name(step->op));
			rc = -RFS_E_CANCELLED;
		}
		if (rc)
			goto out;
		/* cur is consumed: close it and drop its file */
		if (cur != src)
			GDALClose(cur);
		if (cur_tmp >= 0) {
			unlink(tmp[cur_tmp]);
			tmp_live[cur_tmp] = 0;
		}
		cur = next;
		cur_tmp = last ? -1 : slot;
	}

	prog.base = (chain->nsteps ? chain->nsteps : 1) / total;
	prog.scale = STATS_WEIGHT / total;
	if (own) {
		/* The step's file as it is on disk, which holds one nodata
		 * value and one type (describe.h note 3), is what describe
		 * promised: closed (flushed) and opened again. */
		if (cur != src) {
			rc = rfs_gdal_close_checked(cur, "cannot write the "
						    "last step's result", msg,
						    msglen);
			cur = NULL;
			if (rc)
				goto out;
			cur = GDALOpenEx(tmp[cur_tmp], GDAL_OF_RASTER |
					 GDAL_OF_READONLY |
					 GDAL_OF_VERBOSE_ERROR, NULL, NULL,
					 NULL);
			if (!cur) {
				rc = rfs_gdal_error("cannot read the last "
						    "step's result", msg,
						    msglen);
				goto out;
			}
		}
		/* the statistics are counted while the file is written */
		rc = write_layout(cur, cur == src, o, out_path, &prog, msg,
				  msglen);
		if (rc)
			goto out;
		if (cur != src)
			GDALClose(cur);
		cur = NULL;
		goto written;
	}
	/* A last step that counted what it wrote has set them already. */
	if (!last_stats)
		rc = rfs_bstats_compute(cur, chain_progress_cb, &prog, msg,
					msglen);
	if (rc)
		goto out;
	if (!gtiff) {
		prog.base += prog.scale;
		prog.scale = FORMAT_WEIGHT / total;
		if (o && (rc = rfs_output_annotate(o, cur, msg, msglen)))
			goto out;
		rc = write_format(cur, chain, scratch_dir, out_path, &prog,
				  msg, msglen);
		if (rc)
			goto out;
		if (cur != src)
			GDALClose(cur);
		cur = NULL;
	} else {
		if (o && (rc = rfs_output_annotate(o, cur, msg, msglen)))
			goto out;
		rc = rfs_gdal_close_checked(cur, "cannot write the output", msg,
				   msglen);
		cur = NULL;
		if (rc)
			goto out;
	}
written:
	rc = rfs_gdal_fsync_hash(out_path, &res->size, &res->checksum,
				 msg, msglen);
	if (rc == 0 && progress)
		progress(1.0, "", progress_arg);

out:
	if (cur && cur != src)
		GDALClose(cur);
	if (src)
		GDALClose(src);
	CPLSetErrorHandler(watch.next);
	cur_watch = NULL;
	pthread_mutex_destroy(&watch.lock);
	/* A failure GDAL reported is one, whatever the call returned. */
	if (rc == 0 && watch.failures) {
		snprintf(msg, msglen, "GDAL reported a failure: %s",
			 watch.first);
		rc = -RFS_E_PROCESS;
	}
	if (rc && rc != -RFS_E_CANCELLED && watch.nomem) {
		rc = -RFS_E_NOMEM;
	} else if (rc && rc != -RFS_E_CANCELLED && rc != -RFS_E_INTERNAL &&
		   (watch.nospace || out_of_space(scratch_dir) ||
		    (rc == -RFS_E_PROCESS && (strstr(msg, "No space left") ||
					      strstr(msg, "disk space"))))) {
		size_t n = strlen(msg);
		if (!strstr(msg, "space") && n < msglen)
			snprintf(msg + n, msglen - n, " (%s)",
				 strerror(ENOSPC));
		rc = -RFS_E_NOSPACE;
	}
	for (int s = 0; s < 2; s++)
		if (tmp_live[s])
			unlink(tmp[s]);
	if (rc) {
		unlink(out_path);
		if (!msg[0])
			snprintf(msg, msglen, "%s", rfs_strerror(rc));
	}
	return rc;
}
