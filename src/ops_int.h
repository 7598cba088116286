/* ops_int.h - private to the operations: src/ops.c, src/describe.c and
 * src/op_*.c.
 *
 * The engine half of a step's row (step.h): describe and run.  A run
 * reads the dataset src and creates ctx->dst_path as a tiled GeoTIFF with
 * rfs_gdal_gtiff_options (the same for intermediates and the final output),
 * and hands back the new dataset, still open, in *out.  A describe says
 * what that run would make (describe.h) without touching a pixel.
 */
#ifndef RASTERFS_OPS_INT_H
#define RASTERFS_OPS_INT_H

#include <stddef.h>

#include <gdal.h>

#include "rasterfs/chain.h"
#include "rasterfs/describe.h"
#include "rasterfs/gdal_util.h"
#include "rasterfs/step.h"
#include "rasterfs/window.h"

struct rfs_op_ctx {
	const char *dst_path;       /* the file to create */
	GDALProgressFunc progress;  /* fraction of this step; never NULL */
	void *progress_arg;
	char *msg;                  /* room for one error message */
	size_t msglen;
	int *stats_set;             /* a step that set the STATISTICS_*
	                               metadata of *out itself sets this */
};

/* Returns 0 and sets *out, or a negative rasterfs code with ctx->msg set
 * (-RFS_E_PROCESS, -RFS_E_NOMEM, -RFS_E_NOSPACE, -RFS_E_CANCELLED).  On
 * failure nothing is left open; ops.c removes dst_path. */
typedef int (*rfs_op_run_fn)(GDALDatasetH src, const struct rfs_step *step,
			     const struct rfs_op_ctx *ctx, GDALDatasetH *out);

/* Returns 0 and fills *out (describe.h: rfs_describe_step), or a negative
 * rasterfs code with msg set. */
typedef int (*rfs_op_describe_fn)(const struct rfs_step *step,
				  const struct rfs_grid *in,
				  struct rfs_grid *out, char *msg,
				  size_t msglen);

/* One step's part of a window computation (window.h, src/window.c). */
/* What a warp step keeps between the windows of one struct rfs_window
 * (window.c note 8): the datasets and transformer its need builds from
 * the grids alone, and the warped VRT of the window's base (a first
 * step's input, which lives as long as the handle). */
struct rfs_win_warp_keep {
	GDALDatasetH need_in, need_vrt;  /* a pixel-free input, its VRT */
	void *need_tr;                   /* need_in -> need_vrt */
	GDALDatasetH run_vrt;            /* the warped VRT of the base */
};

struct rfs_win_job {
	struct rfs_win_warp_keep *keep;  /* NULL: build everything afresh */
	int keep_run;                /* src is the handle's base: keep->run_vrt
	                                may be used and kept */
	GDALDatasetH src;            /* the input: the input grid's size,
	                                geotransform, CRS and bands, with its
	                                true pixels at least in in_win */
	const struct rfs_grid *in;   /* the input's grid */
	const struct rfs_grid *out;  /* the output's grid: the step's own, or
	                                at an overview level a coarser one
	                                (forced) */
	int forced;                  /* out is a level grid: a grid step
	                                resamples onto it (window.h) */
	struct rfs_win in_win;       /* of in: set by need */
	struct rfs_win out_win;      /* of out: what is asked */
	char *msg;                   /* room for one error message */
	size_t msglen;
};

/* Set job->in_win: the window of the input that run_window reads to make
 * job->out_win, clipped to the input (never empty: at least one cell).
 * Reads no pixel.  Returns 0, or a negative code with job->msg set. */
typedef int (*rfs_op_need_fn)(const struct rfs_step *step,
			      struct rfs_win_job *job);

/* Make job->out_win of the output into *out: an in-memory dataset of
 * out_win's size with the output's bands, types and nodata, whose pixels
 * are those of the same window of the whole output the step's run makes.
 * Reads job->src within job->in_win only.  Returns 0, or a negative
 * rasterfs code with job->msg set (nothing left open). */
typedef int (*rfs_op_run_window_fn)(const struct rfs_step *step,
				    const struct rfs_win_job *job,
				    GDALDatasetH *out);

/* The engine half of a row of the step table. */
struct rfs_step_engine {
	rfs_op_describe_fn describe;
	rfs_op_run_fn run;
	rfs_op_need_fn need;
	rfs_op_run_window_fn run_window;
};

/* window.c: helpers of the steps' need and run_window. */

/* w grown by gx columns and gy rows on each side, clipped to W x H. */
struct rfs_win rfs_win_grow(const struct rfs_win *w, int gx, int gy,
			    long long W, long long H);

/* An in-memory copy of window w of ds (every band, its type and nodata;
 * the CRS, and the geotransform of the window).  Returns 0, or a code of
 * rfs_gdal_error() with the message in msg. */
int rfs_win_copy(GDALDatasetH ds, const struct rfs_win *w, GDALDatasetH *out,
		 char *msg, size_t msglen);

/* need and run_window of a step that keeps its input's grid and whose
 * whole-raster run, given a window of its input, computes every cell at
 * least grow cells from the window's edges (and those at the raster's
 * edges) as the whole run does: reclass, band, type, nodata, ndi (grow 0),
 * terrain (grow 1).  rfs_win_need_same sets in_win = out_win grown;
 * rfs_win_by_run runs the step's own run on a copy of in_win (into a
 * GeoTIFF in /vsimem) and keeps out_win of it. */
int rfs_win_need_same(struct rfs_win_job *job, int grow);
int rfs_win_by_run(const struct rfs_step *step, const struct rfs_win_job *job,
		   GDALDatasetH *out);

/* need and run_window of a warp with the gdalwarp arguments argv
 * (consumed) plus -tr tr if tr > 0 (ignored when job->forced: then -te and
 * -ts of job->out).  rs: its resampling (the kernel's reach).  The output
 * is GDAL's warped VRT (rfs_ops_warp), whose blocks need_warp bounds by
 * transforming their outlines exactly. */
int rfs_win_need_warp(char **argv, double tr, enum rfs_resampling rs,
		      const char *what, struct rfs_win_job *job);
int rfs_win_warp(char **argv, double tr, const char *what,
		 const struct rfs_win_job *job, GDALDatasetH *out);

/* ops.c: is m one of the per-point failures of a coordinate
 * transformation that GDAL's warper expects and masks (ops.c's notes)? */
int rfs_ops_benign(const char *m);

/* describe.c: what GDALWarp makes of in with the gdalwarp arguments argv
 * (consumed) plus, if tr > 0, "-tr tr tr" (rfs_gdal_add_tr); what
 * GDALTranslate makes of in with the gdal_translate arguments argv
 * (consumed).  Both return as rfs_describe_step, with what: <GDAL's
 * message> in msg. */
int rfs_describe_warp(const struct rfs_grid *in, char **argv, double tr,
		      const char *what, struct rfs_grid *out, char *msg,
		      size_t msglen);
int rfs_describe_translate(const struct rfs_grid *in, char **argv,
			   const char *what, struct rfs_grid *out, char *msg,
			   size_t msglen);

/* GDALWarp of src into ctx->dst_path with the gdalwarp arguments argv
 * (consumed) plus -tr (if tr > 0), -of GTiff and rfs_gdal_gtiff_options.
 * Returns as rfs_ops_translate. */
int rfs_ops_warp(GDALDatasetH src, char **argv, double tr, const char *what,
		 const struct rfs_op_ctx *ctx, GDALDatasetH *out);

/* GDALTranslate of src into ctx->dst_path with the gdal_translate
 * arguments argv (consumed: freed here) plus -of GTiff and
 * rfs_gdal_gtiff_options.  Returns 0 and sets *out, or a code of
 * rfs_gdal_error() with "what: <GDAL's message>" in ctx->msg. */
int rfs_ops_translate(GDALDatasetH src, char **argv, const char *what,
		      const struct rfs_op_ctx *ctx, GDALDatasetH *out);

/* op_format.c: write cur, which carries its band statistics, to
 * ctx->dst_path as a COG, or as a PNG (through a Byte GTiff at byte_path,
 * removed before returning).  Same returns as rfs_op_run_fn. */
int rfs_ops_write_cog(GDALDatasetH cur, const struct rfs_op_ctx *ctx);
int rfs_ops_write_png(GDALDatasetH cur, enum rfs_stretch how,
		      const char *byte_path, const struct rfs_op_ctx *ctx);

#endif
