/* steps_int.h - private: what each step family (src/op_<family>.c) gives
 * the step table (src/steps.c).
 *
 * Included by steps.c and by each family's file, so the compiler checks
 * every definition against the declaration the table uses.  Pure: no GDAL
 * header; an engine is opaque here (ops_int.h defines it).
 */
#ifndef RASTERFS_STEPS_INT_H
#define RASTERFS_STEPS_INT_H

#include "rasterfs/step.h"

#define RFS_FAMILY(f)                                                       \
	int rfs_##f##_parse(struct rfs_pctx *c, const struct rfs_tok *args, \
			    struct rfs_step *st);                           \
	void rfs_##f##_write(const struct rfs_step *st, struct rfs_cbuf *cb)

/* op_proj.c: proj */
RFS_FAMILY(proj);
extern const struct rfs_step_engine rfs_proj_engine;

/* op_focal.c: focal */
RFS_FAMILY(focal);
extern const struct rfs_step_engine rfs_focal_engine;

/* op_reclass.c: reclass */
RFS_FAMILY(reclass);
extern const struct rfs_step_engine rfs_reclass_engine;

/* op_terrain.c: slope, hillshade, and the argument-less aspect,
 * roughness, tri, tpi (one parser, "bare"); one engine for all six */
RFS_FAMILY(slope);
RFS_FAMILY(hillshade);
RFS_FAMILY(bare);
int rfs_terrain_bands(const struct rfs_step *st, int out, int from[2]);
extern const struct rfs_step_engine rfs_terrain_engine;

/* op_grid.c: res, size (the warper), clip (gdal_translate -projwin) */
RFS_FAMILY(res);
RFS_FAMILY(size);
RFS_FAMILY(clip);
extern const struct rfs_step_engine rfs_warp_grid_engine;
extern const struct rfs_step_engine rfs_clip_engine;

/* op_bands.c: band, type, nodata (gdal_translate), ndi (a loop) */
RFS_FAMILY(band);
RFS_FAMILY(type);
RFS_FAMILY(nodata);
RFS_FAMILY(ndi);
int rfs_band_bands(const struct rfs_step *st, int out, int from[2]);
int rfs_ndi_bands(const struct rfs_step *st, int out, int from[2]);
extern const struct rfs_step_engine rfs_translate_bands_engine;
extern const struct rfs_step_engine rfs_ndi_engine;

/* op_format.c: fmt= is not a step but the chain's output format; its
 * grammar lives with its writers */
int rfs_fmt_parse(struct rfs_pctx *c, const struct rfs_tok *args,
		  struct rfs_chain *out);
extern const char rfs_fmt_usage[];

#endif
