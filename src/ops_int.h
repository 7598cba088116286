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

/* The engine half of a row of the step table. */
struct rfs_step_engine {
	rfs_op_describe_fn describe;
	rfs_op_run_fn run;
};

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
