/* test_lazy.c - the arithmetic of lazy outputs (lazy.h): the pieces' key
 * suffixes (one spelling per piece), the numbering of every level's
 * blocks, and where each byte of every level's tiles lies in the block
 * objects, against tiff.h's own tile offsets (rfs_tiff_tile_offset), an
 * independent walk of the layout.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <gdal.h>

#include "check.h"
#include "rasterfs/lazy.h"
#include "rasterfs/tiff.h"

static void test_suffixes(void)
{
	char buf[128];
	size_t cl;
	enum rfs_lazy_part part;
	int lv, bx, by;

	check(rfs_lazy_suffix("@hillshade", RFS_LAZY_PART_BLOCK, 0, 3, 4, buf,
			      sizeof(buf)) == 0 &&
	      !strcmp(buf, "@hillshade#block=3,4"), "level 0: %s", buf);
	check(rfs_lazy_suffix("@hillshade", RFS_LAZY_PART_BLOCK, 2, 3, 4, buf,
			      sizeof(buf)) == 0 &&
	      !strcmp(buf, "@hillshade#ovr=2,3,4"), "level 2: %s", buf);
	check(rfs_lazy_suffix("@x", RFS_LAZY_PART_BLOCK, 31, 0, 0, buf,
			      sizeof(buf)) == -EINVAL, "level 31 refused");
	check(rfs_lazy_suffix("@x", RFS_LAZY_PART_BLOCK, 1, 0, 0, buf, 8) ==
	      -ENAMETOOLONG, "too long");
	check(rfs_lazy_suffix("", RFS_LAZY_PART_BLOCK, 30, 2147483647,
			      2147483647, buf, sizeof(buf)) == 0 &&
	      strlen(buf) <= RFS_LAZY_SUFFIX_MAX, "the longest suffix fits "
	      "RFS_LAZY_SUFFIX_MAX: %zu", strlen(buf));

	check(rfs_lazy_parse("a.tif@focal=3#ovr=2,3,4", &cl, &part, &lv, &bx,
			     &by) == 0 && cl == 13 &&
	      part == RFS_LAZY_PART_BLOCK && lv == 2 && bx == 3 && by == 4,
	      "parse #ovr");
	check(rfs_lazy_parse("a#block=5,6", &cl, &part, &lv, &bx, &by) == 0 &&
	      part == RFS_LAZY_PART_BLOCK && lv == 0 && bx == 5 && by == 6,
	      "parse #block");
	check(rfs_lazy_parse("a#stats", &cl, &part, &lv, &bx, &by) == 0 &&
	      part == RFS_LAZY_PART_STATS, "parse #stats");
	check(rfs_lazy_parse("a@b", &cl, &part, &lv, &bx, &by) == 0 &&
	      part == RFS_LAZY_WHOLE && cl == 3, "no suffix");
	/* one spelling per piece */
	static const char *const bad[] = {
		"a#ovr=0,1,1", "a#ovr=31,1,1", "a#ovr=1,1", "a#ovr=01,1,1",
		"a#ovr=1,+1,1", "a#ovr=1,1,1,", "a#ovr=1,1,1 ", "a#ovr=-1,1,1",
		"a#ovr=1,-1,1", "a#block=01,2", "a#block=1,2,3", "a#block=1",
		"a#ovr= 1,1,1", "a#blocks=1,1", "a#", "a#stats2",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		check(rfs_lazy_parse(bad[i], &cl, &part, &lv, &bx, &by) ==
		      -EINVAL, "refused: %s", bad[i]);
}

/* Every level's blocks, numbered and back; every tile's bytes located. */
static void test_layout(int W, int H, int bands, GDALDataType type)
{
	struct rfs_tiff_desc d = {
		.width = W, .height = H, .bands = bands, .type = type,
		.overviews = rfs_lazy_large(W, H),
	};
	struct rfs_tiff_layout l;
	long n = 0;

	memset(&l, 0, sizeof(l));
	if (rfs_tiff_layout(&d, &l) != 0) {
		check(0, "layout %d x %d", W, H);
		rfs_tiff_layout_free(&l);
		return;
	}
	check(rfs_lazy_is(W, H, l.n_levels) == rfs_lazy_large(W, H),
	      "%d x %d: lazy iff large, with %d levels", W, H, l.n_levels);
	if (!rfs_lazy_is(W, H, l.n_levels)) {
		rfs_tiff_layout_free(&l);
		return;
	}
	check(l.header_size % RFS_TIFF_ALIGN_OVR == 0,
	      "tiles start at multiples of 64 KiB");
	for (int k = 0; k < l.n_levels; k++) {
		int bxn = rfs_lazy_blocks_x(l.level[k].width);
		int byn = rfs_lazy_blocks_y(l.level[k].height);
		uint64_t bytes = 0;

		for (int by = 0; by < byn; by++)
			for (int bx = 0; bx < bxn; bx++) {
				int lv, x, y;
				long i = rfs_lazy_block_index(&l, k, bx, by);

				check(i == n, "index of %d,%d,%d", k, bx, by);
				check(rfs_lazy_block_at(&l, i, &lv, &x, &y) ==
				      0 && lv == k && x == bx && y == by,
				      "block %ld back", i);
				bytes += rfs_lazy_block_bytes(&l, k, bx, by);
				n++;
			}
		check(bytes == l.level[k].bytes, "level %d: blocks hold its "
		      "bytes", k);
		/* each tile's first and last byte */
		for (int ty = 0; ty < l.level[k].tiles_y; ty++)
			for (int tx = 0; tx < l.level[k].tiles_x; tx++)
				for (int b = 0; b < bands; b++) {
					uint64_t off, boff, run;
					int lv, bx, by, tx0, ty0, ntx, nty;

					rfs_tiff_tile_offset(&l, k, b, tx, ty,
							     &off);
					int rc = rfs_lazy_locate(&l, off + 1,
								 &lv, &bx, &by,
								 &boff, &run);
					rfs_lazy_block_tiles(&l, k, tx / 2,
							     ty / 2, &tx0,
							     &ty0, &ntx, &nty);
					uint64_t want =
						(((uint64_t)(ty - ty0) * ntx +
						  (uint64_t)(tx - tx0)) *
						 (uint64_t)bands + (uint64_t)b) *
						l.tile_bytes + 1;
					if (rc != 0 || lv != k ||
					    bx != tx / 2 || by != ty / 2 ||
					    boff != want ||
					    run != l.tile_bytes - 1) {
						check(0, "locate level %d tile "
						      "%d,%d band %d", k, tx,
						      ty, b);
						goto out;
					}
				}
	}
	check(n == rfs_lazy_nblocks(&l), "%ld blocks", n);
	{
		int lv, x, y;
		check(rfs_lazy_block_at(&l, n, &lv, &x, &y) == -ERANGE,
		      "past the last block");
	}
	uint64_t boff, run;
	int lv, bx, by;
	check(rfs_lazy_locate(&l, 5, &lv, &bx, &by, &boff, &run) == 1 &&
	      run == l.header_size - 5, "header");
	check(rfs_lazy_locate(&l, l.total_size, &lv, &bx, &by, &boff, &run) ==
	      -ERANGE, "past the end");
out:
	rfs_tiff_layout_free(&l);
}

int main(void)
{
	GDALAllRegister();
	test_suffixes();
	test_layout(6000, 6000, 1, GDT_Float32);
	test_layout(5794, 5793, 2, GDT_Byte);
	test_layout(20000, 1700, 1, GDT_Int16);
	test_layout(4000, 4000, 1, GDT_Float32); /* not lazy */
	return check_report();
}
