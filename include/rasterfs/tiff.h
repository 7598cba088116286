/* tiff.h - rasterfs's own GeoTIFF: a byte layout that is a pure function of
 * the raster's metadata.
 *
 * Why: `stat` of a never-computed output must report its exact final size,
 * and later its tiles must be placeable one by one at offsets known in
 * advance.  GDAL's GTiff writer promises neither (it rewrites and appends
 * its directory at close), so rasterfs writes the final file itself.
 *
 * The format (version RFS_TIFF_FORMAT; the layout is documented in detail
 * at the top of src/tiff.c):
 *  - little-endian TIFF 6.0 / GeoTIFF 1.x, or BigTIFF when the classic
 *    file would be larger than RFS_TIFF_CLASSIC_MAX bytes;
 *  - 256 x 256 tiles, uncompressed, PlanarConfiguration=2 (one plane per
 *    band), edge tiles full size and zero padded;
 *  - the header first: the TIFF header, the main IFD and one IFD per
 *    internal overview (NewSubfileType=1), their small values (GeoTIFF
 *    tags copied from what GDAL's GTiff driver writes, GDAL_METADATA,
 *    GDAL_NODATA), then the TileOffsets/TileByteCounts arrays, zero padded
 *    to a multiple of 4096 bytes (65536 with overviews: every tile then
 *    starts at a multiple of 64 KiB);
 *  - then the tiles, coarsest overview level first and the full resolution
 *    last; inside a level row by row, column by column, band by band;
 *  - statistics are fixed-width text: only their characters change with
 *    their values, never a length or an offset.
 *
 * Levels: level 0 is the full-resolution image; level k >= 1 is an
 * internal overview of factor 2^k, ceil(W / 2^k) x ceil(H / 2^k) pixels.
 * There are overviews (when asked for) at k = 1, 2, ... up to the first
 * level that fits in one tile (both sides <= 256); an image that already
 * fits in one tile has none.  Which pixels an overview holds is the
 * writer's caller's to say: rfs_tiff_write_from_dataset writes the
 * averages below; lazy outputs (lazy.h) write the chain computed at the
 * level's resolution (rfs_tiff_write_base, then the tiles one by one).
 * Overview pixel (i, j) of level k is the mean
 * of the valid base pixels (not nodata, not NaN) in the block
 * [i 2^k, (i+1) 2^k) x [j 2^k, (j+1) 2^k), clipped to the image; the sums
 * are taken pairwise as a quadtree (level k's sum and count from level
 * k-1's, left before right, top row before bottom row), so a tile gives the
 * same bytes however it is computed.  The mean is converted to the band type
 * as GDALCopyWords converts a double (integers: nearest, halves away from
 * zero, clamped); a block without a valid pixel is nodata (NaN for a float
 * band without nodata).
 *
 * Byte order: files are always little-endian; pixels handed to the writer
 * are in the host's order and swapped on a big-endian host.
 *
 * Functions that need GDAL (rfs_tiff_layout, rfs_tiff_write_from_dataset)
 * run in worker processes.  The rest (offsets, tile_at, header bytes, tile
 * writes) is arithmetic and pwrite, usable anywhere.  A layout is not
 * shared between threads while one of them changes its statistics.
 */
#ifndef RASTERFS_TIFF_H
#define RASTERFS_TIFF_H

#include <stddef.h>
#include <stdint.h>

#include <gdal.h>

/* Bump when any byte of the layout could change for the same description.
 * 2: a header with overviews is padded to RFS_TIFF_ALIGN_OVR. */
#define RFS_TIFF_FORMAT 2

#define RFS_TIFF_TILE 256           /* tile width and height, in pixels */
#define RFS_TIFF_ALIGN 4096         /* the header is padded to a multiple */
#define RFS_TIFF_ALIGN_OVR 65536    /* ... of this with overviews (tiff.c) */
/* Classic TIFF when the whole classic file is at most this many bytes
 * (every offset then fits in 32 bits), else BigTIFF. */
#define RFS_TIFF_CLASSIC_MAX 0xFFFFFFFFull
#define RFS_TIFF_MAX_LEVELS 32      /* base + overviews; 2^31 / 256 needs 24 */
#define RFS_TIFF_MAX_BANDS 65535    /* SamplesPerPixel is a SHORT */

/* What a band's statistics are.  UNKNOWN leaves the slot blank: GDAL then
 * reads no statistics (GetStatistics without force fails, QGIS computes its
 * own and tries to write X.aux.xml).  APPROX adds STATISTICS_APPROXIMATE=
 * YES: GDAL returns them only to callers that accept approximate
 * statistics (QGIS 3.22 does for rasters over 500,000 pixels), and a caller
 * asking for exact ones with force recomputes them and writes X.aux.xml.
 * EXACT: what every caller takes as is. */
enum rfs_tiff_stats_state {
	RFS_TIFF_STATS_UNKNOWN = 0,
	RFS_TIFF_STATS_APPROX = 1,
	RFS_TIFF_STATS_EXACT = 2,
};

/* GDAL's STATISTICS_MINIMUM/MAXIMUM/MEAN/STDDEV/VALID_PERCENT of a band,
 * each written in the fewest digits that read back as the same double. */
struct rfs_tiff_stats {
	enum rfs_tiff_stats_state state;
	double min, max, mean, stddev, valid_percent;
};

/* A dataset metadata item.  key: [A-Za-z0-9_]+, at most 64 bytes; value:
 * any text (escaped as GDAL escapes it). */
struct rfs_tiff_item {
	const char *key;
	const char *value;
};

/* Everything the file's bytes depend on.  The caller owns every pointer;
 * rfs_tiff_layout copies what it keeps. */
struct rfs_tiff_desc {
	int width, height;          /* >= 1 */
	int bands;                  /* 1 .. RFS_TIFF_MAX_BANDS */
	GDALDataType type;          /* Byte, UInt16, Int16, UInt32, Int32,
				     * Float32 or Float64, for every band */
	int has_geotransform;
	double geotransform[6];     /* GDAL's; rotated ones are written as a
				     * ModelTransformation, as GDAL does */
	const char *srs_wkt;        /* NULL or "": no CRS */
	int pixel_is_point;         /* AREA_OR_POINT=Point */
	int has_nodata;
	double nodata;              /* one value for every band */
	const struct rfs_tiff_item *items;  /* dataset metadata, in order */
	int n_items;
	const char *const *band_desc; /* bands entries or NULL; NULL or "":
				       * no description */
	const struct rfs_tiff_stats *stats; /* bands entries or NULL: all
					     * unknown */
	int overviews;              /* nonzero: internal overviews */
};

struct rfs_tiff_level {
	int width, height;          /* pixels */
	int tiles_x, tiles_y;       /* ceil(side / RFS_TIFF_TILE) */
	uint64_t offset;            /* byte offset of its first tile */
	uint64_t bytes;             /* tiles_x * tiles_y * bands * tile_bytes */
};

/* The computed layout.  Public fields are read only; a layout is moved
 * nowhere (the worker sends the numbers and header bytes it needs). */
struct rfs_tiff_layout {
	int bigtiff;
	int bands;
	GDALDataType type;
	int sample_bytes;           /* 1, 2, 4 or 8 */
	uint64_t tile_bytes;        /* RFS_TIFF_TILE^2 * sample_bytes */
	int n_levels;               /* 1 + number of overviews */
	struct rfs_tiff_level level[RFS_TIFF_MAX_LEVELS]; /* [0]: base */
	uint64_t header_size;       /* bytes [0, header_size) are the header */
	uint64_t total_size;        /* the file's exact size */
	int has_nodata;
	double nodata;

	/* private to tiff.c */
	unsigned char *head;        /* header bytes [0, head_len) */
	size_t head_len;
	uint64_t arrays_offset;     /* out-of-line TileOffsets/ByteCounts */
	uint64_t arrays_end;
	uint64_t array_at[RFS_TIFF_MAX_LEVELS][2]; /* 0 when inline */
	size_t *slot;               /* bands offsets of the statistics slots */
};

/* Compute the layout of desc into *out (which the caller frees with
 * rfs_tiff_layout_free, also after a failure).  Needs GDAL: the GeoTIFF
 * tags are taken from a 1 x 1 GTiff that GDAL writes in /vsimem with the
 * same SRS, geotransform and AREA_OR_POINT (the GeoKeys of the last 8 SRSs
 * are cached in the process: identifying a CRS without an EPSG code takes
 * GDAL 14 ms).  About 0.2 ms for a small raster.  Keeps the header's IFDs
 * and values (1-4 KiB; never the tile arrays, which are generated when
 * read) and one offset per band.  Thread safe.
 * Returns 0; -EINVAL for a description out of range (sizes, type, band
 * count, a bad item key); -EFBIG when the file would be larger than 2^63
 * bytes; -ENOMEM; -RFS_E_PROCESS when GDAL cannot write the georeferencing
 * (an SRS it cannot parse). */
int rfs_tiff_layout(const struct rfs_tiff_desc *desc,
		    struct rfs_tiff_layout *out);

/* rfs_tiff_layout with another classic-TIFF limit: for tests only (0 always
 * gives BigTIFF).  Files made with any other limit than
 * RFS_TIFF_CLASSIC_MAX are not rasterfs's format. */
int rfs_tiff_layout_limit(const struct rfs_tiff_desc *desc,
			  uint64_t classic_max, struct rfs_tiff_layout *out);

/* Free what a layout holds; the struct may be reused.  NULL is fine. */
void rfs_tiff_layout_free(struct rfs_tiff_layout *l);

/* A layout as bytes, to keep or send it without GDAL (the describer
 * sends it, the store keeps it: issue 11 serves the header before any tile
 * exists).  The format (little-endian; tiff.c note 5) holds every public
 * field, each level, the statistics slots and the header's IFD bytes; the
 * tile arrays are generated again from the levels.
 *
 * rfs_tiff_layout_pack: returns a malloc'ed buffer of *len bytes, or NULL
 * when memory ran out.
 * rfs_tiff_layout_unpack: fills *out (free it with rfs_tiff_layout_free,
 * also after a failure) from len bytes at p.  Pure: no GDAL call.  Returns
 * 0, -EINVAL (not a packed layout of this version, or inconsistent), or
 * -ENOMEM. */
unsigned char *rfs_tiff_layout_pack(const struct rfs_tiff_layout *l,
				    size_t *len);
int rfs_tiff_layout_unpack(const void *p, size_t len,
			   struct rfs_tiff_layout *out);

/* Replace band's statistics (0-based band) in the layout's header text.
 * Changes only the characters of that band's statistics slot.
 * Returns 0, or -EINVAL (band out of range, bad state). */
int rfs_tiff_set_stats(struct rfs_tiff_layout *l, int band,
		       const struct rfs_tiff_stats *st);

/* Copy header bytes [off, off + len) into buf.  Returns 0, or -EINVAL when
 * the range leaves [0, header_size). */
int rfs_tiff_header_read(const struct rfs_tiff_layout *l, uint64_t off,
			 void *buf, size_t len);

/* The byte offset of a tile (0-based band; tile column tx, row ty of the
 * level).  Returns 0, or -EINVAL for indices out of range. */
int rfs_tiff_tile_offset(const struct rfs_tiff_layout *l, int level,
			 int band, int tx, int ty, uint64_t *off);

/* Where a byte of the file lies. */
struct rfs_tiff_loc {
	int in_header;              /* 1: in [0, header_size) */
	int level, band, tx, ty;    /* the tile, when !in_header */
	uint64_t start;             /* first byte of that tile (or 0) */
	uint64_t len;               /* tile_bytes (or header_size) */
};

/* Which tile (or the header) holds byte off.  Returns 0, or -ERANGE when
 * off >= total_size. */
int rfs_tiff_tile_at(const struct rfs_tiff_layout *l, uint64_t off,
		     struct rfs_tiff_loc *loc);

/* Write one whole tile at its offset with pwrite.  pixels: RFS_TIFF_TILE^2
 * samples of the layout's type, host byte order, row by row; the part of
 * an edge tile outside the image is written as zeros whatever pixels hold
 * there.  Returns 0; -EINVAL (indices); -ENOMEM; or a write error
 * (-RFS_E_NOSPACE for ENOSPC/EDQUOT, -RFS_E_STORE_IO for EIO, else
 * -errno). */
int rfs_tiff_write_tile(int fd, const struct rfs_tiff_layout *l, int level,
			int band, int tx, int ty, const void *pixels);

/* Write the header (bytes [0, header_size)).  stats: l->bands entries that
 * first replace the layout's statistics (as rfs_tiff_set_stats), or NULL to
 * keep them.  Same length whatever the statistics.  Returns 0, -EINVAL, or
 * a write error as rfs_tiff_write_tile. */
int rfs_tiff_write_header(int fd, struct rfs_tiff_layout *l,
			  const struct rfs_tiff_stats *stats);

/* Write the whole file at path (created or truncated, mode 0666 & ~umask)
 * from ds, which must have the layout's size and band count: every base
 * tile read with GDALRasterIO in the layout's type, every overview tile
 * computed from them as described above, then the header.  Nothing is
 * fsync'ed.  stats_out: NULL to keep the layout's statistics, or l->bands
 * entries that receive the exact statistics (over the finite, non-nodata
 * values as written; GDAL's population standard deviation), which are also
 * written.  progress: GDAL's callback, may be NULL; returning FALSE
 * cancels.  Memory: one strip of 256 rows of one band (in the type and as
 * doubles) plus two rows per overview level.
 * Returns 0; -EINVAL (ds does not match); -RFS_E_CANCELLED; -RFS_E_PROCESS
 * (GDAL failed to read; its message is in CPLGetLastErrorMsg()); -ENOMEM;
 * or a write error as rfs_tiff_write_tile.  On failure path may hold a
 * partial file. */
int rfs_tiff_write_from_dataset(GDALDatasetH ds, struct rfs_tiff_layout *l,
				const char *path,
				struct rfs_tiff_stats *stats_out,
				GDALProgressFunc progress, void *progress_arg);

/* rfs_tiff_write_from_dataset without the overviews: level 0's tiles and
 * the header; the overview tiles are left zero (the file has its whole
 * size) for the caller to write with rfs_tiff_write_tile.  Lazy outputs
 * (lazy.h), whose overviews are the chain computed at each level's
 * resolution, not the averages above.  Same returns. */
int rfs_tiff_write_base(GDALDatasetH ds, struct rfs_tiff_layout *l,
			const char *path, struct rfs_tiff_stats *stats_out,
			GDALProgressFunc progress, void *progress_arg);

#endif
