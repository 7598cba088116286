/* window.c - one window of a chain's output, computed alone (window.h).
 *
 * Design notes:
 * 1. Backwards, then forwards.  The window asked of the last step is
 *    handed back through the chain: each step's need (its row's engine)
 *    says which window of its input it reads to make its window.  Then the
 *    steps run in order, each making its window (run_window) as an
 *    in-memory dataset, from the previous step's.  Windows grow backwards
 *    by each step's halo; nothing outside them is computed.
 * 2. Every step reads a dataset with its input's WHOLE grid: the source
 *    itself, or a VRT the size of the whole intermediate whose one simple
 *    source is the in-memory window, at its place (wrap()).  A step run on
 *    a dataset of its window alone would see another origin and size; the
 *    warper's source windows, kernel scales and pixel coordinates are
 *    computed from those, and their rounding would differ in the last bit.
 *    Cells of the VRT outside the window read as 0 and are never read:
 *    need answers a superset of what run_window reads.
 * 3. Byte-level rules per step family: window.h.  Each family's need and
 *    run_window live with its run in src/op_<family>.c; the helpers they
 *    share are here (ops_int.h).
 * 4. Failures: as rfs_ops_run, the process's GDAL error handler counts
 *    every CE_Failure while a window is computed (GDAL's warper threads
 *    report there too), except the per-point failures of coordinate
 *    transformations (rfs_ops_benign); any other fails the window.  One
 *    window (or job) at a time per process.
 * 5. Levels (window.h): the grids of the chain at level k are the base
 *    grids' level grids; a warp or clip at a level resamples onto its level
 *    grid (job.forced), focal and terrain run on level grids as they are.
 * 6. A chain that does not warp first starts at level k from the source
 *    averaged onto its level grid: each level cell the mean of the valid
 *    source cells under it.  When 2^k divides both of the source's sides
 *    (every level cell covers 2^k x 2^k source cells), by GDAL's own
 *    resampled read, a gdal_translate VRT (-r average -outsize of the
 *    level grid), which reads for a window only the source cells under
 *    it; else by a warped VRT (-r average onto the level grid), whose
 *    last cells cover the source's edge (a translate VRT's resampled read
 *    of a fractional edge depends on the window read: measured).  Why not
 *    the warped VRT always: it computes whole 512 x 128 blocks, so a
 *    512 x 512 block grown by a terrain step's one cell averaged three
 *    times the source it needs (measured on a 20000^2 Float32 source at
 *    level 4: a 514^2 window in 1.47 s, 0.30 s by the translate VRT, the
 *    same values; tests/mount/test_lazy_ovr.py checks both against
 *    `gdalwarp -of VRT -r average -te ... -ts ...`).  Both use the
 *    source's own overviews when it has them.
 * 7. Several windows at once (rfs_window_read_many): each thread reads
 *    with a struct rfs_window of its own (its own GDAL datasets: GDAL's
 *    datasets are not shared between threads), under ONE watch (note 4),
 *    set before the threads start and ended after they are joined, since
 *    GDAL's error handler is the process's: a failure reported in any
 *    thread fails the call.  The windows' pixels do not depend on which
 *    handle computed them (window.h).
 * 8. What a warp keeps (struct rfs_win_warp_keep): the need's pixel-free
 *    input, its warped VRT and their transformer depend only on the
 *    handle's grids, and a first step's warped VRT only on the handle's
 *    base, so they are built at the handle's first window and kept until
 *    it is closed (about 1.4 ms a window on a 20000² proj: a lazy
 *    output's sample reads 9).  A kept warped VRT warps each block whole,
 *    as a new one would (the whole output is one VRT's blocks too), so
 *    the pixels do not depend on what the handle read before.  A later
 *    step's input is the previous step's window (a dataset per read):
 *    its VRT is never kept.
 */
#include <assert.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cpl_conv.h>
#include <cpl_error.h>
#include <cpl_string.h>
#include <cpl_vsi.h>
#include <gdal.h>
#include <gdal_alg.h>
#include <gdal_utils.h>
#include <gdal_vrt.h>

#include "ops_int.h"
#include "rasterfs/err.h"
#include "rasterfs/log.h"
#include "rasterfs/step.h"
#include "rasterfs/window.h"

/* The warp need's sampling of a block's outline and inside, in output
 * cells (note in rfs_win_need_warp). */
#define EDGE_STEP 2
#define INSIDE_STEP 16

struct rfs_window {
	GDALDatasetH src;       /* the source, opened once */
	GDALDatasetH base;      /* what step 1 reads (grid[0]): src, or at a
	                           level the source resampled onto it */
	struct rfs_chain chain;
	int level;
	int forced[RFS_CHAIN_MAX_STEPS];        /* step i's output is a
	                                           level grid it resamples
	                                           onto */
	struct rfs_grid grid[RFS_CHAIN_MAX_STEPS + 1]; /* [0] base's, [i]
	                                                  step i's output */
	struct rfs_win_warp_keep keep[RFS_CHAIN_MAX_STEPS]; /* note 8 */
};

/* ------------------------------------------------------------------ */
/* GDAL's failures while a window is computed (note 4) */

struct watch {
	CPLErrorHandler next;
	pthread_mutex_t lock;
	int failures, nomem;
	char first[RFS_MSG_MAX];
};

static struct watch *cur_watch;

static void CPL_STDCALL watch_handler(CPLErr cls, CPLErrorNum no,
				      const char *m)
{
	const int saved = errno;
	struct watch *w = cur_watch;

	if (w) {
		pthread_mutex_lock(&w->lock);
		if ((no == CPLE_OutOfMemory && cls >= CE_Warning) ||
		    (cls >= CE_Failure && saved == ENOMEM))
			w->nomem = 1;
		if (cls >= CE_Failure && !rfs_ops_benign(m) &&
		    !w->failures++)
			snprintf(w->first, sizeof(w->first), "%s",
				 m ? m : "GDAL reported a failure");
		pthread_mutex_unlock(&w->lock);
	}
	if (w && w->next)
		w->next(cls, no, m);
	else
		CPLDefaultErrorHandler(cls, no, m);
	errno = saved;
}

static void watch_begin(struct watch *w)
{
	memset(w, 0, sizeof(*w));
	pthread_mutex_init(&w->lock, NULL);
	CPLErrorReset();
	cur_watch = w;
	w->next = CPLSetErrorHandler(watch_handler);
}

/* rc, or the failure GDAL reported if rc is 0. */
static int watch_end(struct watch *w, int rc, char *msg, size_t msglen)
{
	CPLSetErrorHandler(w->next);
	cur_watch = NULL;
	pthread_mutex_destroy(&w->lock);
	if (rc == 0 && w->failures) {
		snprintf(msg, msglen, "GDAL reported a failure: %s",
			 w->first);
		rc = -RFS_E_PROCESS;
	}
	if (rc && rc != -RFS_E_CANCELLED && w->nomem)
		rc = -RFS_E_NOMEM;
	return rc;
}

/* ------------------------------------------------------------------ */
/* Helpers of the steps (ops_int.h) */

static int imin(int a, int b) { return a < b ? a : b; }

struct rfs_win rfs_win_grow(const struct rfs_win *w, int gx, int gy,
			    long long W, long long H)
{
	const long long x0 = (long long)w->x - gx, y0 = (long long)w->y - gy;
	const long long x1 = (long long)w->x + w->w + gx;
	const long long y1 = (long long)w->y + w->h + gy;
	struct rfs_win g;

	g.x = (int)(x0 < 0 ? 0 : x0);
	g.y = (int)(y0 < 0 ? 0 : y0);
	g.w = (int)((x1 > W ? W : x1) - g.x);
	g.h = (int)((y1 > H ? H : y1) - g.y);
	return g;
}

int rfs_win_copy(GDALDatasetH ds, const struct rfs_win *w, GDALDatasetH *out,
		 char *msg, size_t msglen)
{
	GDALDriverH drv = GDALGetDriverByName("MEM");
	const int nb = GDALGetRasterCount(ds);
	OGRSpatialReferenceH srs = GDALGetSpatialRef(ds);
	GDALDatasetH d = NULL;
	void *buf = NULL;
	double gt[6];
	int rc = 0;

	CPLErrorReset();
	if (!drv || !(d = GDALCreate(drv, "", w->w, w->h, 0, GDT_Byte, NULL)))
		goto fail;
	if (GDALGetGeoTransform(ds, gt) == CE_None) {
		gt[0] += w->x * gt[1] + w->y * gt[2];
		gt[3] += w->x * gt[4] + w->y * gt[5];
		if (GDALSetGeoTransform(d, gt) != CE_None)
			goto fail;
	}
	if (srs && GDALSetSpatialRef(d, srs) != CE_None)
		goto fail;
	for (int b = 1; b <= nb; b++) {
		GDALRasterBandH in = GDALGetRasterBand(ds, b);
		const GDALDataType t = GDALGetRasterDataType(in);
		int has = 0;
		const double nd = GDALGetRasterNoDataValue(in, &has);

		if (GDALAddBand(d, t, NULL) != CE_None)
			goto fail;
		GDALRasterBandH o = GDALGetRasterBand(d, b);
		if (has && GDALSetRasterNoDataValue(o, nd) != CE_None)
			goto fail;
		free(buf);
		buf = VSIMalloc3((size_t)w->w, (size_t)w->h,
				 (size_t)GDALGetDataTypeSizeBytes(t));
		if (!buf) {
			snprintf(msg, msglen, "window: no memory for %d x %d "
				 "cells", w->w, w->h);
			rc = -RFS_E_NOMEM;
			goto out;
		}
		if (GDALRasterIO(in, GF_Read, w->x, w->y, w->w, w->h, buf,
				 w->w, w->h, t, 0, 0) != CE_None ||
		    GDALRasterIO(o, GF_Write, 0, 0, w->w, w->h, buf, w->w,
				 w->h, t, 0, 0) != CE_None)
			goto fail;
	}
	*out = d;
	d = NULL;
	goto out;
fail:
	rc = rfs_gdal_error("window", msg, msglen);
out:
	free(buf);
	if (d)
		GDALClose(d);
	return rc;
}

int rfs_win_need_same(struct rfs_win_job *job, int grow)
{
	job->in_win = rfs_win_grow(&job->out_win, grow, grow,
				   job->in->width, job->in->height);
	return 0;
}

static int CPL_STDCALL go_on(double f, const char *m, void *arg)
{
	(void)f, (void)m, (void)arg;
	return TRUE;
}

/* A /vsimem/ name no other window of this process uses. */
static void scratch_name(char *buf, size_t len, const char *what)
{
	static atomic_uint counter;

	snprintf(buf, len, "/vsimem/rfs-window-%ld-%u-%s.tif", (long)getpid(),
		 atomic_fetch_add(&counter, 1), what);
}

int rfs_win_by_run(const struct rfs_step *step, const struct rfs_win_job *job,
		   GDALDatasetH *out)
{
	const struct rfs_step_desc *d = rfs_step_desc(step->op);
	GDALDatasetH in = NULL, made = NULL;
	char path[128];
	int rc;

	scratch_name(path, sizeof(path), rfs_op_name(step->op));
	struct rfs_op_ctx ctx = {
		.dst_path = path,
		.progress = go_on,
		.msg = job->msg,
		.msglen = job->msglen,
	};
	/* the output window lies in the input window, same grid */
	const struct rfs_win rel = {
		job->out_win.x - job->in_win.x, job->out_win.y - job->in_win.y,
		job->out_win.w, job->out_win.h,
	};

	assert(rel.x >= 0 && rel.y >= 0 &&
	       rel.x + rel.w <= job->in_win.w &&
	       rel.y + rel.h <= job->in_win.h);
	if ((rc = rfs_win_copy(job->src, &job->in_win, &in, job->msg,
			       job->msglen)))
		return rc;
	CPLErrorReset();
	if ((rc = d->engine->run(in, step, &ctx, &made)) == 0) {
		rc = rfs_win_copy(made, &rel, out, job->msg, job->msglen);
		GDALClose(made);
	}
	VSIUnlink(path);
	GDALClose(in);
	return rc;
}

/* The gdalwarp arguments of a warp in a window job: argv (consumed) plus
 * -te and -ts of a forced grid, else -tr tr (tr > 0), then -of VRT. */
static char **warp_args(char **argv, double tr, const struct rfs_win_job *job)
{
	if (job->forced) {
		const double *gt = job->out->gt;

		argv = CSLAddString(argv, "-te");
		argv = rfs_gdal_add_num(argv, gt[0]);
		argv = rfs_gdal_add_num(argv, gt[3] + job->out->height * gt[5]);
		argv = rfs_gdal_add_num(argv, gt[0] + job->out->width * gt[1]);
		argv = rfs_gdal_add_num(argv, gt[3]);
		argv = CSLAddString(argv, "-ts");
		argv = CSLAddString(argv, CPLSPrintf("%lld", job->out->width));
		argv = CSLAddString(argv, CPLSPrintf("%lld", job->out->height));
	} else if (tr > 0) {
		argv = rfs_gdal_add_tr(argv, tr);
	}
	argv = CSLAddString(argv, "-of");
	return CSLAddString(argv, "VRT");
}

/* GDALWarp of src to a warped VRT with argv (consumed, warp_args), whose
 * size must be the job's output's. */
static int warp_to_vrt(GDALDatasetH src, char **argv, const char *what,
		       const struct rfs_win_job *job, GDALDatasetH *out)
{
	GDALWarpAppOptions *opts;
	GDALDatasetH v = NULL;
	int rc = 0;

	CPLErrorReset();
	opts = GDALWarpAppOptionsNew(argv, NULL);
	if (opts)
		v = GDALWarp("", NULL, 1, &src, opts, NULL);
	GDALWarpAppOptionsFree(opts);
	CSLDestroy(argv);
	if (!v)
		return rfs_gdal_error(what, job->msg, job->msglen);
	if (GDALGetRasterXSize(v) != job->out->width ||
	    GDALGetRasterYSize(v) != job->out->height) {
		snprintf(job->msg, job->msglen, "%s: the warp makes %d x %d "
			 "cells where %lld x %lld were described", what,
			 GDALGetRasterXSize(v), GDALGetRasterYSize(v),
			 job->out->width, job->out->height);
		GDALClose(v);
		return -RFS_E_INTERNAL;
	}
	*out = v;
	return rc;
}

static double radius_of(enum rfs_resampling rs)
{
	switch (rs) {
	case RFS_RS_CUBIC:
	case RFS_RS_CUBICSPLINE:
		return 2;
	case RFS_RS_LANCZOS:
		return 3;
	default:
		/* near, bilinear and the area methods: one cell (near and
		 * the area methods need none; one costs nothing) */
		return 1;
	}
}

/* Grow the box [b[0], b[1]) x [b[2], b[3]) (input cells) by the sampled
 * block's source bounds. */
static void box_add(double *b, int *have, double x0, double x1, double y0,
		    double y1)
{
	if (!*have) {
		b[0] = x0, b[1] = x1, b[2] = y0, b[3] = y1;
		*have = 1;
		return;
	}
	b[0] = fmin(b[0], x0);
	b[1] = fmax(b[1], x1);
	b[2] = fmin(b[2], y0);
	b[3] = fmax(b[3], y1);
}

/* The input cells GDAL's warper reads for the output block blk, bounded
 * (see rfs_win_need_warp): 0 and the box added to b, or 1 when a point
 * does not transform (then anything of the input may be read). */
static int block_source(void *tr, const struct rfs_win *blk,
			enum rfs_resampling rs, double *b, int *have,
			double *x, double *y, double *z, int *ok)
{
	int n = 0;

	/* the outline, on cell edges, and a grid inside */
	for (int i = 0; i <= blk->w; i += EDGE_STEP) {
		x[n] = blk->x + i, y[n++] = blk->y;
		x[n] = blk->x + i, y[n++] = blk->y + blk->h;
	}
	for (int j = 0; j <= blk->h; j += EDGE_STEP) {
		x[n] = blk->x, y[n++] = blk->y + j;
		x[n] = blk->x + blk->w, y[n++] = blk->y + j;
	}
	x[n] = blk->x + blk->w, y[n++] = blk->y + blk->h;
	for (int j = INSIDE_STEP; j < blk->h; j += INSIDE_STEP)
		for (int i = INSIDE_STEP; i < blk->w; i += INSIDE_STEP)
			x[n] = blk->x + i, y[n++] = blk->y + j;
	for (int i = 0; i < n; i++)
		z[i] = 0;
	if (!GDALGenImgProjTransform(tr, TRUE, n, x, y, z, ok))
		return 1;
	double x0 = INFINITY, x1 = -INFINITY, y0 = INFINITY, y1 = -INFINITY;
	for (int i = 0; i < n; i++) {
		if (!ok[i] || !isfinite(x[i]) || !isfinite(y[i]))
			return 1;
		x0 = fmin(x0, x[i]);
		x1 = fmax(x1, x[i]);
		y0 = fmin(y0, y[i]);
		y1 = fmax(y1, y[i]);
	}
	/* GDAL widens its kernel by 1 / scale when it shrinks the source;
	 * the pad is that kernel plus slack for the approximate transformer
	 * GDAL uses (0.125 cell) and for its own sample points */
	const double sx = blk->w / fmax(x1 - x0, 1e-9);
	const double sy = blk->h / fmax(y1 - y0, 1e-9);
	const double px = ceil((radius_of(rs) + 1) / fmin(sx, 1)) + 2;
	const double py = ceil((radius_of(rs) + 1) / fmin(sy, 1)) + 2;
	box_add(b, have, x0 - px, x1 + px, y0 - py, y1 + py);
	return 0;
}

int rfs_win_need_warp(char **argv, double tr, enum rfs_resampling rs,
		      const char *what, struct rfs_win_job *job)
{
	const long long IW = job->in->width, IH = job->in->height;
	GDALDatasetH p = NULL, v = NULL;
	void *tr_arg = NULL;
	double *x = NULL, *y = NULL, *z = NULL, box[4] = { 0 };
	int *ok = NULL, have = 0, all = 0, bx = 0, by = 0, rc;

	/* the warped VRT of a pixel-free input: its blocks and grid; kept
	 * for the next window of the same handle (note 8) */
	if (job->keep && job->keep->need_tr) {
		CSLDestroy(argv);
		p = job->keep->need_in;
		v = job->keep->need_vrt;
		tr_arg = job->keep->need_tr;
		job->keep->need_in = job->keep->need_vrt = NULL;
		job->keep->need_tr = NULL;
	} else {
		CPLErrorReset();
		if (!(p = rfs_grid_dataset(job->in))) {
			CSLDestroy(argv);
			return rfs_gdal_error(what, job->msg, job->msglen);
		}
		if ((rc = warp_to_vrt(p, warp_args(argv, tr, job), what, job,
				      &v)))
			goto out;
		CPLErrorReset();
		if (!(tr_arg = GDALCreateGenImgProjTransformer2(p, v, NULL))) {
			rc = rfs_gdal_error(what, job->msg, job->msglen);
			goto out;
		}
	}
	GDALGetBlockSize(GDALGetRasterBand(v, 1), &bx, &by);
	const size_t cap = 4 * (size_t)(bx + by) / EDGE_STEP + 16 +
		((size_t)bx / INSIDE_STEP + 1) * ((size_t)by / INSIDE_STEP + 1);
	x = malloc(cap * sizeof(*x));
	y = malloc(cap * sizeof(*y));
	z = malloc(cap * sizeof(*z));
	ok = malloc(cap * sizeof(*ok));
	if (!x || !y || !z || !ok) {
		snprintf(job->msg, job->msglen, "%s: no memory", what);
		rc = -RFS_E_NOMEM;
		goto out;
	}
	/* Every warped-VRT block the window touches is warped whole: bound
	 * the source window GDAL computes for each (GDAL samples 21 points
	 * an edge with the approximate transformer; here every other cell
	 * edge of the outline and a grid inside, exactly, then the kernel
	 * and slack).  A point that does not transform: the whole input. */
	const struct rfs_win *ow = &job->out_win;
	const int OW = (int)job->out->width, OH = (int)job->out->height;
	for (int y0 = ow->y / by * by; y0 < ow->y + ow->h && !all; y0 += by)
		for (int x0 = ow->x / bx * bx; x0 < ow->x + ow->w && !all;
		     x0 += bx) {
			const struct rfs_win blk = {
				x0, y0, imin(bx, OW - x0), imin(by, OH - y0)
			};
			all = block_source(tr_arg, &blk, rs, box, &have, x, y,
					   z, ok);
		}
	if (all) {
		job->in_win = (struct rfs_win){ 0, 0, (int)IW, (int)IH };
	} else {
		const double x0 = fmax(floor(box[0]), 0);
		const double y0 = fmax(floor(box[2]), 0);
		const double x1 = fmin(ceil(box[1]), (double)IW);
		const double y1 = fmin(ceil(box[3]), (double)IH);

		if (x1 <= x0 || y1 <= y0) /* the block misses the input */
			job->in_win = (struct rfs_win){ 0, 0, 1, 1 };
		else
			job->in_win = (struct rfs_win){
				(int)x0, (int)y0, (int)(x1 - x0),
				(int)(y1 - y0)
			};
	}
out:
	free(x);
	free(y);
	free(z);
	free(ok);
	if (rc == 0 && job->keep) {
		job->keep->need_in = p;
		job->keep->need_vrt = v;
		job->keep->need_tr = tr_arg;
		return 0;
	}
	if (tr_arg)
		GDALDestroyGenImgProjTransformer(tr_arg);
	if (v)
		GDALClose(v);
	GDALClose(p);
	return rc;
}

int rfs_win_warp(char **argv, double tr, const char *what,
		 const struct rfs_win_job *job, GDALDatasetH *out)
{
	GDALDatasetH v = NULL;
	int rc;

	if (job->keep && job->keep_run && job->keep->run_vrt) {
		CSLDestroy(argv);
		v = job->keep->run_vrt;
	} else if ((rc = warp_to_vrt(job->src, warp_args(argv, tr, job), what,
				     job, &v))) {
		return rc;
	}
	/* the warped VRT computes the blocks out_win touches, whole */
	rc = rfs_win_copy(v, &job->out_win, out, job->msg, job->msglen);
	if (job->keep && job->keep_run)
		job->keep->run_vrt = v; /* note 8 */
	else
		GDALClose(v);
	return rc;
}

/* ------------------------------------------------------------------ */
/* The chain */

/* A window and the whole-grid VRT that shows it at its place (note 2). */
struct placed {
	GDALDatasetH mem;   /* the window's cells */
	GDALDatasetH vrt;   /* the whole grid; NULL: not wrapped */
};

static void placed_close(struct placed *p)
{
	/* the VRT's sources point into mem: the VRT first */
	if (p->vrt)
		GDALClose(p->vrt);
	if (p->mem)
		GDALClose(p->mem);
	p->vrt = p->mem = NULL;
}

/* p->vrt: grid g, whose cells in win are p->mem's (note 2). */
static int wrap(struct placed *p, const struct rfs_grid *g,
		const struct rfs_win *win, char *msg, size_t msglen)
{
	GDALDriverH drv = GDALGetDriverByName("VRT");
	const int nb = GDALGetRasterCount(p->mem);
	GDALDatasetH v = NULL;

	if (nb != g->nbands) {
		snprintf(msg, msglen, "window: a step made %d bands where %d "
			 "were described", nb, g->nbands);
		return -RFS_E_INTERNAL;
	}
	CPLErrorReset();
	if (!drv || !(v = GDALCreate(drv, "", (int)g->width, (int)g->height,
				     0, GDT_Byte, NULL)))
		goto fail;
	if (g->has_gt && GDALSetGeoTransform(v, (double *)g->gt) != CE_None)
		goto fail;
	if (g->srs && GDALSetSpatialRef(v, g->srs) != CE_None)
		goto fail;
	for (int b = 1; b <= nb; b++) {
		GDALRasterBandH mb = GDALGetRasterBand(p->mem, b);

		if (GDALAddBand(v, GDALGetRasterDataType(mb), NULL) != CE_None)
			goto fail;
		GDALRasterBandH vb = GDALGetRasterBand(v, b);
		/* the nodata the whole intermediate declares (describe.h):
		 * the next step reads it */
		if (g->bands[b - 1].has_nodata &&
		    GDALSetRasterNoDataValue(vb, g->bands[b - 1].nodata) !=
		    CE_None)
			goto fail;
		if (VRTAddSimpleSource((VRTSourcedRasterBandH)vb, mb, 0, 0,
				       win->w, win->h, win->x, win->y, win->w,
				       win->h, NULL, VRT_NODATA_UNSET) !=
		    CE_None)
			goto fail;
	}
	p->vrt = v;
	return 0;
fail:
	if (v)
		GDALClose(v);
	return rfs_gdal_error("window", msg, msglen);
}

/* g at level 2^k: same origin, cells 2^k times as large, ceil(W / 2^k) x
 * ceil(H / 2^k) of them. */
static int level_grid(const struct rfs_grid *g, int k, struct rfs_grid *out)
{
	const long long f = 1LL << k;
	int rc;

	if ((rc = rfs_grid_like(g, g->nbands, GDT_Unknown, out)))
		return rc;
	memcpy(out->bands, g->bands, (size_t)g->nbands * sizeof(*g->bands));
	out->width = (g->width + f - 1) / f;
	out->height = (g->height + f - 1) / f;
	out->gt[1] *= (double)f;
	out->gt[2] *= (double)f;
	out->gt[4] *= (double)f;
	out->gt[5] *= (double)f;
	return 0;
}

static void keep_clear(struct rfs_win_warp_keep *k)
{
	/* the VRTs read their inputs: they go first */
	if (k->run_vrt)
		GDALClose(k->run_vrt);
	if (k->need_tr)
		GDALDestroyGenImgProjTransformer(k->need_tr);
	if (k->need_vrt)
		GDALClose(k->need_vrt);
	if (k->need_in)
		GDALClose(k->need_in);
	memset(k, 0, sizeof(*k));
}

void rfs_window_close(struct rfs_window *w)
{
	if (!w)
		return;
	for (int i = 0; i < RFS_CHAIN_MAX_STEPS; i++)
		keep_clear(&w->keep[i]);
	for (int i = 0; i <= RFS_CHAIN_MAX_STEPS; i++)
		rfs_grid_clear(&w->grid[i]);
	if (w->base && w->base != w->src)
		GDALClose(w->base);
	if (w->src)
		GDALClose(w->src);
	free(w);
}

/* Level k of w (note 5): the grids, and the source resampled onto its
 * level grid unless step 1 warps (then it warps straight onto its own). */
static int open_level(struct rfs_window *w, struct rfs_grid *base, char *msg,
		      size_t msglen)
{
	const int n = w->chain.nsteps;
	const struct rfs_step_desc *d1 =
		n ? rfs_step_desc(w->chain.steps[0].op) : NULL;
	const int warp_first = d1 && (d1->flags & RFS_STEP_WARP);
	int rc;

	for (int i = 0; i <= n; i++) {
		const struct rfs_grid *g = &base[i];

		/* a first warp takes any source (output.c: wants_overviews) */
		if (!(i == 0 && warp_first) &&
		    (!g->has_gt || g->gt[2] != 0 || g->gt[4] != 0)) {
			snprintf(msg, msglen, "window: levels need a north-up "
				 "geotransform at every step");
			return -RFS_E_BAD_ARG;
		}
		if (i == 0 && warp_first) {
			rc = rfs_grid_like(g, g->nbands, GDT_Unknown,
					   &w->grid[0]);
			if (rc == 0)
				memcpy(w->grid[0].bands, g->bands,
				       (size_t)g->nbands * sizeof(*g->bands));
		} else {
			rc = level_grid(g, w->level, &w->grid[i]);
		}
		if (rc)
			return rc;
		if (i > 0) {
			const struct rfs_step_desc *d =
				rfs_step_desc(w->chain.steps[i - 1].op);
			w->forced[i - 1] = (d->flags & RFS_STEP_GRID) != 0;
		}
	}
	if (warp_first) {
		w->base = w->src;
		return 0;
	}
	/* the source averaged onto its level grid (note 6) */
	const long long f = 1LL << w->level;
	const struct rfs_grid *lg = &w->grid[0];
	char **argv = NULL;
	GDALTranslateOptions *opts;
	GDALDatasetH v = NULL;

	if (base[0].width % f || base[0].height % f) {
		struct rfs_win_job job = {
			.in = &base[0], .out = &w->grid[0], .forced = 1,
			.msg = msg, .msglen = msglen,
		};
		argv = CSLAddString(CSLAddString(NULL, "-r"), "average");
		return warp_to_vrt(w->src,
				   warp_args(rfs_gdal_warp_options(argv), 0,
					     &job), "level", &job, &w->base);
	}

	argv = CSLAddString(argv, "-of");
	argv = CSLAddString(argv, "VRT");
	argv = CSLAddString(argv, "-r");
	argv = CSLAddString(argv, "average");
	argv = CSLAddString(argv, "-outsize");
	argv = CSLAddString(argv, CPLSPrintf("%lld", lg->width));
	argv = CSLAddString(argv, CPLSPrintf("%lld", lg->height));
	CPLErrorReset();
	opts = GDALTranslateOptionsNew(argv, NULL);
	if (opts)
		v = GDALTranslate("", w->src, opts, NULL);
	GDALTranslateOptionsFree(opts);
	CSLDestroy(argv);
	if (!v)
		return rfs_gdal_error("level", msg, msglen);
	if (GDALGetRasterXSize(v) != lg->width ||
	    GDALGetRasterYSize(v) != lg->height) {
		snprintf(msg, msglen, "level: the averaged source has %d x %d "
			 "cells where %lld x %lld were described",
			 GDALGetRasterXSize(v), GDALGetRasterYSize(v),
			 lg->width, lg->height);
		GDALClose(v);
		return -RFS_E_INTERNAL;
	}
	w->base = v;
	return 0;
}

int rfs_window_open(const char *source, const struct rfs_chain *chain,
		    int level, struct rfs_window **out, char *msg,
		    size_t msglen)
{
	struct rfs_grid base[RFS_CHAIN_MAX_STEPS + 1];
	struct rfs_window *w = NULL;
	const int n = chain->nsteps;
	int rc = 0;

	*out = NULL;
	msg[0] = '\0';
	for (int i = 0; i <= RFS_CHAIN_MAX_STEPS; i++)
		rfs_grid_init(&base[i]);
	if (chain->format != RFS_FMT_GTIFF || level < 0 || level > 30 ||
	    n < 0 || n > RFS_CHAIN_MAX_STEPS) {
		snprintf(msg, msglen, "window: %s", level < 0 || level > 30 ?
			 "the level must be 0 to 30" : "only GeoTIFF outputs "
			 "are computed by windows");
		return -RFS_E_BAD_ARG;
	}
	if (!(w = calloc(1, sizeof(*w)))) {
		snprintf(msg, msglen, "window: no memory");
		return -RFS_E_NOMEM;
	}
	w->chain = *chain;
	w->level = level;
	CPLErrorReset();
	w->src = GDALOpenEx(source, GDAL_OF_RASTER | GDAL_OF_READONLY |
			    GDAL_OF_VERBOSE_ERROR, NULL, NULL, NULL);
	if (!w->src || GDALGetRasterCount(w->src) < 1) {
		if (w->src)
			snprintf(msg, msglen, "cannot open the source: %s has "
				 "no raster band", source);
		else
			rfs_gdal_error("cannot open the source", msg, msglen);
		rc = -RFS_E_SOURCE;
		goto out;
	}
	if ((rc = rfs_grid_from_dataset(w->src, &base[0])))
		goto out;
	for (int i = 0; i < n; i++)
		if ((rc = rfs_describe_step(&chain->steps[i], &base[i],
					    &base[i + 1], msg, msglen)))
			goto out;
	if (level == 0) {
		for (int i = 0; i <= n; i++) {
			w->grid[i] = base[i];
			rfs_grid_init(&base[i]);
		}
		w->base = w->src;
	} else {
		const struct rfs_grid *last = &base[n];
		if ((1LL << level) >= 2 * (last->width > last->height ?
					  last->width : last->height)) {
			snprintf(msg, msglen, "window: level %d is beyond the "
				 "output's %lld x %lld cells", level,
				 last->width, last->height);
			rc = -RFS_E_BAD_ARG;
			goto out;
		}
		if ((rc = open_level(w, base, msg, msglen)))
			goto out;
	}
	*out = w;
	w = NULL;
out:
	for (int i = 0; i <= RFS_CHAIN_MAX_STEPS; i++)
		rfs_grid_clear(&base[i]);
	rfs_window_close(w);
	return rc;
}

const struct rfs_grid *rfs_window_grid(const struct rfs_window *w)
{
	return &w->grid[w->chain.nsteps];
}

size_t rfs_window_bytes(const struct rfs_window *w, const struct rfs_win *win)
{
	const struct rfs_grid *g = rfs_window_grid(w);

	if (win->w < 1 || win->h < 1 || g->nbands < 1)
		return 0;
	return (size_t)g->nbands * (size_t)win->w * (size_t)win->h *
		(size_t)GDALGetDataTypeSizeBytes(g->bands[0].type);
}

/* rfs_window_read within a watch of the caller's (note 4): the failures
 * GDAL reports are the watch's to count, not this function's. */
static int read_watched(struct rfs_window *w, const struct rfs_win *win,
			void *buf, size_t buflen, char *msg, size_t msglen)
{
	const int n = w->chain.nsteps;
	const struct rfs_grid *g = rfs_window_grid(w);
	struct rfs_win_job job[RFS_CHAIN_MAX_STEPS];
	struct placed cur = { 0 }, next = { 0 };
	int rc = 0;

	msg[0] = '\0';
	if (win->w < 1 || win->h < 1 || win->x < 0 || win->y < 0 ||
	    win->x > g->width - win->w || win->y > g->height - win->h) {
		snprintf(msg, msglen, "window: %d,%d %d x %d leaves the "
			 "output's %lld x %lld cells", win->x, win->y, win->w,
			 win->h, g->width, g->height);
		return -RFS_E_BAD_ARG;
	}
	if (buflen < rfs_window_bytes(w, win)) {
		snprintf(msg, msglen, "window: the buffer holds %zu bytes of "
			 "%zu", buflen, rfs_window_bytes(w, win));
		return -RFS_E_BAD_ARG;
	}

	/* backwards: what each step reads (note 1) */
	for (int i = n - 1; i >= 0; i--) {
		const struct rfs_step *st = &w->chain.steps[i];

		job[i] = (struct rfs_win_job){
			.keep = &w->keep[i], .keep_run = i == 0,
			.in = &w->grid[i], .out = &w->grid[i + 1],
			.forced = w->forced[i],
			.out_win = i == n - 1 ? *win : job[i + 1].in_win,
			.msg = msg, .msglen = msglen,
		};
		if ((rc = rfs_step_desc(st->op)->engine->need(st, &job[i])))
			goto out;
	}
	/* forwards */
	for (int i = 0; i < n; i++) {
		const struct rfs_step *st = &w->chain.steps[i];

		job[i].src = i ? cur.vrt : w->base;
		CPLErrorReset();
		rc = rfs_step_desc(st->op)->engine->run_window(st, &job[i],
							       &next.mem);
		if (rc)
			goto out;
		if (GDALGetRasterXSize(next.mem) != job[i].out_win.w ||
		    GDALGetRasterYSize(next.mem) != job[i].out_win.h) {
			snprintf(msg, msglen, "window: %s made %d x %d cells "
				 "for a window of %d x %d", rfs_op_name(st->op),
				 GDALGetRasterXSize(next.mem),
				 GDALGetRasterYSize(next.mem),
				 job[i].out_win.w, job[i].out_win.h);
			rc = -RFS_E_INTERNAL;
			goto out;
		}
		placed_close(&cur);
		cur = next;
		next = (struct placed){ 0 };
		if (i < n - 1 &&
		    (rc = wrap(&cur, &w->grid[i + 1], &job[i].out_win, msg,
			       msglen)))
			goto out;
	}
	if (n == 0 && (rc = rfs_win_copy(w->base, win, &cur.mem, msg, msglen)))
		goto out;
	if (GDALGetRasterCount(cur.mem) != g->nbands) {
		snprintf(msg, msglen, "window: %d bands made where %d were "
			 "described", GDALGetRasterCount(cur.mem), g->nbands);
		rc = -RFS_E_INTERNAL;
		goto out;
	}
	CPLErrorReset();
	if (GDALDatasetRasterIO(cur.mem, GF_Read, 0, 0, win->w, win->h, buf,
				win->w, win->h, g->bands[0].type, g->nbands,
				NULL, 0, 0, 0) != CE_None)
		rc = rfs_gdal_error("window", msg, msglen);
out:
	placed_close(&next);
	placed_close(&cur);
	return rc;
}

int rfs_window_read(struct rfs_window *w, const struct rfs_win *win,
		    void *buf, size_t buflen, char *msg, size_t msglen)
{
	struct watch watch;
	int rc;

	watch_begin(&watch);
	rc = read_watched(w, win, buf, buflen, msg, msglen);
	rc = watch_end(&watch, rc, msg, msglen);
	if (rc && !msg[0])
		snprintf(msg, msglen, "%s", rfs_strerror(rc));
	return rc;
}

/* rfs_window_read_many (note 7): the windows, shared by the threads. */
struct many {
	const char *source;
	const struct rfs_window *w0;
	const struct rfs_win *wins;
	void *const *bufs;
	int n;
	atomic_int next;          /* the next window not taken */
	atomic_int failed;        /* a thread failed: the others stop */
};

struct many_thread {
	struct many *m;
	struct rfs_window *w;     /* NULL: open one of its own */
	pthread_t t;
	int started, rc;
	char msg[RFS_MSG_MAX];
};

static void *many_main(void *arg)
{
	struct many_thread *mt = arg;
	struct many *m = mt->m;
	struct rfs_window *own = NULL, *w = mt->w;

	if (!w) {
		mt->rc = rfs_window_open(m->source, &m->w0->chain,
					 m->w0->level, &own, mt->msg,
					 sizeof(mt->msg));
		w = own;
	}
	while (mt->rc == 0 && !atomic_load(&m->failed)) {
		int i = atomic_fetch_add(&m->next, 1);
		if (i >= m->n)
			break;
		mt->rc = read_watched(w, &m->wins[i], m->bufs[i],
				      rfs_window_bytes(w, &m->wins[i]),
				      mt->msg, sizeof(mt->msg));
	}
	if (mt->rc)
		atomic_store(&m->failed, 1);
	rfs_window_close(own);
	return NULL;
}

int rfs_window_read_many(struct rfs_window *w, const char *source,
			 int threads, const struct rfs_win *wins,
			 void *const *bufs, int n, char *msg, size_t msglen)
{
	struct many m = {
		.source = source, .w0 = w, .wins = wins, .bufs = bufs, .n = n,
	};
	struct many_thread mt[RFS_WINDOW_THREADS_MAX];
	pthread_attr_t attr;
	struct watch watch;
	int rc = 0;

	msg[0] = '\0';
	if (threads < 1)
		threads = 1;
	if (threads > RFS_WINDOW_THREADS_MAX)
		threads = RFS_WINDOW_THREADS_MAX;
	if (threads > n)
		threads = n;
	memset(mt, 0, sizeof(mt));
	pthread_attr_init(&attr);
	/* GDAL's warper runs in its own pool's threads: this one only
	 * builds datasets and copies */
	pthread_attr_setstacksize(&attr, 2u << 20);
	watch_begin(&watch);
	for (int t = 0; t < threads; t++) {
		mt[t].m = &m;
		mt[t].w = t == 0 ? w : NULL;
		/* a thread that cannot start leaves its share to the others */
		if (t > 0)
			mt[t].started = pthread_create(&mt[t].t, &attr,
						       many_main, &mt[t]) == 0;
	}
	many_main(&mt[0]);
	for (int t = 0; t < threads; t++) {
		if (t > 0 && mt[t].started)
			pthread_join(mt[t].t, NULL);
		if (mt[t].rc && !rc) {
			rc = mt[t].rc;
			snprintf(msg, msglen, "%s", mt[t].msg);
		}
	}
	pthread_attr_destroy(&attr);
	rc = watch_end(&watch, rc, msg, msglen);
	if (rc && !msg[0])
		snprintf(msg, msglen, "%s", rfs_strerror(rc));
	return rc;
}

int rfs_window_run(const char *source, const struct rfs_chain *chain,
		   const struct rfs_win *win, void *buf, size_t buflen,
		   char *msg, size_t msglen)
{
	struct rfs_window *w;
	int rc = rfs_window_open(source, chain, 0, &w, msg, msglen);

	if (rc)
		return rc;
	rc = rfs_window_read(w, win, buf, buflen, msg, msglen);
	rfs_window_close(w);
	return rc;
}
