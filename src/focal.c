/* focal.c - focal (moving window) statistics, written by hand.
 *
 * Design notes:
 *  1. The band is streamed in strips of B output rows.  A strip needs the
 *     input rows [y0-r, y0+B+r) (r = size/2, clipped to the raster); the
 *     buffer keeps the rows shared with the next strip (memmove) and reads
 *     only the new ones, so every input row is read once.  Memory is
 *     O((B + 2r) x width) with B a constant, never O(raster height).
 *  2. Rows are converted once, when read: nodata and NaN cells become the
 *     neutral element of the statistic (0 for sums, -inf for max, NaN for
 *     median) and a byte plane records which cells are valid.  Cells outside
 *     the raster are neutral too (zero or -inf pads, skipped rows), which
 *     clips every window to the raster without edge cases in inner loops.
 *  3. Sums use the block decomposition of van Herk / Gil-Werman with "+"
 *     in place of "max": with blocks of k cells, a window is a suffix of
 *     one block plus a prefix of the next, both summed directly.  That is
 *     O(1) per pixel like running sums or summed-area tables, but nothing
 *     is ever subtracted: each window sum is as exact as a direct sum of
 *     its own cells (exact for integer data, exact 0 for a single cell,
 *     and an infinity spoils only the windows that hold it).
 *  4. Square mean/sum/std: separable block sums of value, (value - shift)^2
 *     and count, vertically down the strip then along each row.  std
 *     subtracts a per-strip shift (a valid value of the strip) before
 *     squaring, to limit cancellation in E[d^2] - E[d]^2.  A strip with no
 *     invalid cell skips the counts: they are the clipped window height
 *     times the clipped window width.
 *  5. min/max: van Herk / Gil-Werman (M. van Herk, Pattern Recognition
 *     Letters 13(7), 1992; J. Gil & M. Werman, IEEE PAMI 15(5), 1993):
 *     block prefix and suffix maxima give any window's max with three
 *     comparisons per pixel, vertically then horizontally.  min is the max
 *     of the negated values; range runs both.  A window whose max is the
 *     -inf of note 2 has no valid cell, unless the strip holds real
 *     infinities; then the validity plane decides.
 *  6. Circle (cells with dx^2 + dy^2 <= r^2): rows dy and -dy share a
 *     half-width w(dy); consecutive dy with one w form a group.  Per output
 *     row, each group's rows are combined (added or maxed: O(k) per pixel
 *     in all), then run through the 1-D block sum or max of half-width w.
 *  7. Median gathers the valid cells of the window and selects the middle
 *     one(s) with Hoare's FIND (quickselect): O(k^2) per pixel, which is
 *     why the grammar caps its window at RFS_FOCAL_MAX_MEDIAN.
 *  8. Values are handled as doubles: exact for every GDAL type except
 *     64-bit integers beyond 2^53.  A result that is NaN (inf - inf) is
 *     written as nodata.
 */
/* The inner loops are written for SIMD (straight-line bodies, double masks),
 * but GCC's -O2 (meson's debugoptimized) vectorizes no loop whose length is
 * unknown; meson.build compiles this file with -O3 (focal_lib), which makes
 * focal about 1.5x faster. */

#include <assert.h>
#include <float.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cpl_error.h>
#include <gdal.h>

#include "rasterfs/err.h"
#include "rasterfs/focal.h"

#define STRIP_ROWS 128         /* output rows per strip */
#define STRIP_BYTES (96 << 20) /* strips of very wide rasters get lower */
#define NQ 3                   /* sums: value, square, count */
#define NWORK 4                /* padded work rows per quantity */

#define INLINE static inline __attribute__((always_inline))

enum mode { M_SUMS, M_EXT, M_MEDIAN };

struct focal {
	int W, H, r, k, B;
	enum rfs_focal_stat stat;
	enum rfs_focal_shape shape;
	enum mode mode;
	double nd_in;        /* NaN when the input has no nodata */
	double nd_out;
	int neg;             /* M_EXT: plane 0 holds -x (min) */
	long nodata_cells;   /* output cells set to nodata so far */

	/* raster rows [top, bot) of the input, converted (note 2) */
	int top, bot;
	int nplanes;
	double *val[2];      /* plane 1: -x, for range */
	double *cnt;         /* sums: 1.0 = valid cell, else 0.0 */
	unsigned char *ok;   /* min/max: 1 = valid, for rows with rinf only */
	unsigned char *rbad; /* per buffered row: holds an invalid cell */
	unsigned char *rinf; /* per buffered row: holds a valid infinity */

	double *obuf;        /* B x W output rows */
	double *obuf2;       /* range: the min plane's rows */

	/* work rows of W + 2r + 1 cells with r pad cells in front (ptr + r);
	 * pads are 0 (sums) or -inf (max) and never written */
	double *work[NQ][NWORK];
	double *hbuf[NQ];    /* min(k, B) x W suffix sums / maxima */
	double *ncol;        /* clipped window width per column (square) */
	double *ninf;        /* W cells of -inf: a row outside the raster */
	double *zero;        /* W cells of 0 */
	double *mbuf;        /* k x k gather buffer (median) */

	/* circle: groups of dy (0..r) sharing one half-width */
	int ngroups;
	int g_lo[RFS_FOCAL_MAX_SIZE / 2 + 1];
	int g_hi[RFS_FOCAL_MAX_SIZE / 2 + 1];
	int g_w[RFS_FOCAL_MAX_SIZE / 2 + 1];
	int hw[RFS_FOCAL_MAX_SIZE / 2 + 1]; /* half-width of row dy */
};

static inline int imin(int a, int b) { return a < b ? a : b; }
static inline int imax(int a, int b) { return a > b ? a : b; }
static inline double dmax(double a, double b) { return a > b ? a : b; }

GDALDataType rfs_focal_out_type(GDALDataType in, enum rfs_focal_stat stat)
{
	switch (stat) {
	case RFS_FOCAL_MIN:
	case RFS_FOCAL_MAX:
		return in;
	case RFS_FOCAL_SUM:
		return GDT_Float64;
	default:
		break;
	}
	switch (in) {
	case GDT_Byte:
	case GDT_UInt16:
	case GDT_Int16:
	case GDT_Float32:
		return GDT_Float32;
	default:
		return GDT_Float64;
	}
}

static double type_lowest(GDALDataType t)
{
	switch (t) {
	case GDT_Byte: return 0;
	case GDT_UInt16: return 0;
	case GDT_Int16: return INT16_MIN;
	case GDT_UInt32: return 0;
	case GDT_Int32: return INT32_MIN;
	case GDT_Float32: return -FLT_MAX;
	default: return -DBL_MAX;
	}
}

static int representable(GDALDataType t, double v)
{
	if (isnan(v))
		return 0;
	switch (t) {
	case GDT_Byte: return v == floor(v) && v >= 0 && v <= 255;
	case GDT_UInt16: return v == floor(v) && v >= 0 && v <= 65535;
	case GDT_Int16: return v == floor(v) && v >= -32768 && v <= 32767;
	case GDT_UInt32: return v == floor(v) && v >= 0 && v <= UINT32_MAX;
	case GDT_Int32:
		return v == floor(v) && v >= INT32_MIN && v <= INT32_MAX;
	case GDT_Float32: return isinf(v) || (double)(float)v == v;
	default: return 1;
	}
}

/* The largest value of an integer type (for floats: +FLT_MAX/+DBL_MAX). */
static double type_highest(GDALDataType t)
{
	switch (t) {
	case GDT_Byte: return 255;
	case GDT_UInt16: return 65535;
	case GDT_Int16: return INT16_MAX;
	case GDT_UInt32: return UINT32_MAX;
	case GDT_Int32: return INT32_MAX;
	case GDT_Float32: return FLT_MAX;
	default: return DBL_MAX;
	}
}

double rfs_focal_out_nodata(GDALDataType in_type, GDALDataType out_type,
			    enum rfs_focal_stat stat, int in_has_nodata,
			    double in_nodata)
{
	int keep = 0;

	if (in_has_nodata && representable(out_type, in_nodata)) {
		switch (stat) {
		case RFS_FOCAL_MIN:
		case RFS_FOCAL_MAX:
			keep = 1;
			break;
		case RFS_FOCAL_MEAN:
		case RFS_FOCAL_MEDIAN:
			/* Results lie between valid input values, so a nodata
			 * at an end of the input type's range cannot occur. */
			keep = in_nodata <= type_lowest(in_type) ||
			       in_nodata >= type_highest(in_type);
			break;
		case RFS_FOCAL_STD:
		case RFS_FOCAL_RANGE:
			keep = in_nodata < 0;
			break;
		case RFS_FOCAL_SUM:
			keep = 0;
			break;
		}
	}
	return keep ? in_nodata : type_lowest(out_type);
}

/* ---- the row buffer (notes 1, 2) ------------------------------------- */

/* Validity is computed as a double mask (1.0 / 0.0): GCC vectorizes that,
 * not a double compare stored to bytes. */
static void convert_rows(struct focal *f, int first, int n)
{
	const int W = f->W;
	const double nd = f->nd_in;

	for (int i = first; i < first + n; i++) {
		double *restrict p = f->val[0] + (size_t)i * W;
		double nvalid = 0, ninf = 0;

		switch (f->mode) {
		case M_SUMS: {
			double *restrict c = f->cnt + (size_t)i * W;
			for (int x = 0; x < W; x++) {
				const double v = p[x];
				const double good =
					(v == v && v != nd) ? 1.0 : 0.0;
				c[x] = good;
				p[x] = good != 0 ? v : 0.0;
				nvalid += good;
				ninf += fabs(v) == INFINITY ? good : 0.0;
			}
			break;
		}
		case M_EXT: {
			for (int x = 0; x < W; x++) {
				const double v = p[x];
				const double good =
					(v == v && v != nd) ? 1.0 : 0.0;
				nvalid += good;
				ninf += fabs(v) == INFINITY ? good : 0.0;
			}
			if (ninf > 0) {
				/* rare: keep validity for window_has_valid */
				unsigned char *ok = f->ok + (size_t)i * W;
				for (int x = 0; x < W; x++)
					ok[x] = p[x] == p[x] && p[x] != nd;
			}
			/* plane 0: x (max, range) or -x (min); plane 1: -x */
			if (f->nplanes > 1) {
				double *restrict q = f->val[1] + (size_t)i * W;
				for (int x = 0; x < W; x++) {
					const double v = p[x];
					const int good = v == v && v != nd;
					q[x] = good ? -v : -INFINITY;
				}
			}
			if (f->neg)
				for (int x = 0; x < W; x++) {
					const double v = p[x];
					const int good = v == v && v != nd;
					p[x] = good ? -v : -INFINITY;
				}
			else
				for (int x = 0; x < W; x++) {
					const double v = p[x];
					const int good = v == v && v != nd;
					p[x] = good ? v : -INFINITY;
				}
			break;
		}
		case M_MEDIAN:
			for (int x = 0; x < W; x++) {
				const double v = p[x];
				const double good =
					(v == v && v != nd) ? 1.0 : 0.0;
				p[x] = good != 0 ? v : NAN;
				nvalid += good;
			}
			break;
		}
		f->rbad[i] = nvalid < W;
		f->rinf[i] = ninf > 0;
	}
}

/* Make the buffer hold raster rows [top, bot): keep the overlap with what
 * it holds, read the rest. */
static int fill(struct focal *f, GDALRasterBandH in, int top, int bot)
{
	const size_t W = f->W;
	int keep = 0;

	assert(top >= f->top && bot >= f->bot && top <= bot);
	if (top < f->bot) {
		size_t off = (size_t)(top - f->top);
		keep = f->bot - top;
		for (int p = 0; p < f->nplanes; p++)
			memmove(f->val[p], f->val[p] + off * W,
				keep * W * sizeof(double));
		if (f->cnt)
			memmove(f->cnt, f->cnt + off * W,
				keep * W * sizeof(double));
		if (f->ok)
			memmove(f->ok, f->ok + off * W, keep * W);
		memmove(f->rbad, f->rbad + off, keep);
		memmove(f->rinf, f->rinf + off, keep);
	}
	int first = top + keep, n = bot - first;
	f->top = top;
	f->bot = bot;
	if (n <= 0)
		return 0;
	if (GDALRasterIO(in, GF_Read, 0, first, f->W, n,
			 f->val[0] + (size_t)keep * W, f->W, n, GDT_Float64,
			 0, 0) != CE_None)
		return -1;
	convert_rows(f, keep, n);
	return 0;
}

static inline int in_raster(const struct focal *f, int y)
{
	return y >= 0 && y < f->H;
}

static inline const double *row(const struct focal *f, int plane, int y)
{
	assert(y >= f->top && y < f->bot);
	return f->val[plane] + (size_t)(y - f->top) * f->W;
}

static inline const double *cntrow(const struct focal *f, int y)
{
	assert(y >= f->top && y < f->bot);
	return f->cnt + (size_t)(y - f->top) * f->W;
}

static int any_flag(const unsigned char *flags, const struct focal *f,
		    int y_from, int y_to)
{
	for (int y = imax(y_from, f->top); y < imin(y_to, f->bot); y++)
		if (flags[y - f->top])
			return 1;
	return 0;
}

/* ---- sums (notes 3, 4, 6) -------------------------------------------- */

/* Quantity sets: which of value, square, count a strip needs. */
#define QS (1 << 0)
#define QQ (1 << 1)
#define QC (1 << 2)

/* dst = src + the quantities in use (value - shift, its square, count) of
 * raster row y, or + 0 when y is outside the raster; src == NULL: + 0.
 * Invalid cells hold 0 and count 0, so shifting by s * count keeps them 0. */
INLINE void qrow(const struct focal *f, int y, int nq, double s,
		 double *const *dst, double *const *src_in)
{
	const int W = f->W;
	double *const *src = src_in;
	double *zero[NQ] = { f->zero, f->zero, f->zero };

	if (!src)
		src = zero;
	if (!in_raster(f, y)) {
		for (int i = 0; i < NQ; i++)
			if ((nq & (1 << i)) && dst[i] != src[i])
				memcpy(dst[i], src[i], W * sizeof(double));
		return;
	}

	const double *restrict v = row(f, 0, y);
	const double *restrict cn = cntrow(f, y);
	double *d0 = dst[0], *d1 = dst[1], *d2 = dst[2];
	const double *s0 = src[0], *s1 = src[1], *s2 = src[2];

	for (int x = 0; x < W; x++) {
		const double c = cn[x];
		const double d = v[x] - s * c;
		d0[x] = s0[x] + d;
		if (nq & QQ)
			d1[x] = s1[x] + d * d;
		if (nq & QC)
			d2[x] = s2[x] + c;
	}
}

static void qrow_any(const struct focal *f, int y, int nq, double s,
		     double *const *dst, double *const *src)
{
	switch (nq) {
	case QS: qrow(f, y, QS, s, dst, src); break;
	case QS | QC: qrow(f, y, QS | QC, s, dst, src); break;
	case QS | QQ: qrow(f, y, QS | QQ, s, dst, src); break;
	default: qrow(f, y, QS | QQ | QC, s, dst, src); break;
	}
}

/* 1-D block sums (note 3) of half-width w over the padded rows p[i] (w pad
 * cells each side), for the quantities in nq:  out[i][x] (+)= sum of
 * p[i][x-w .. x+w].  G holds exclusive prefix sums within blocks of
 * k = 2w + 1, Hs suffix sums; forward and backward runs share one loop so
 * their dependency chains overlap. */
INLINE void hsum(double *const *p_in, int nq, int W, int w, int acc,
		 double *const *G, double *const *Hs, double *const *out)
{
	const int k = 2 * w + 1, L = W + 2 * w;
	const double *restrict p0 = p_in[0] - w;
	const double *restrict p1 = (nq & QQ) ? p_in[1] - w : NULL;
	const double *restrict p2 = (nq & QC) ? p_in[2] - w : NULL;
	double *restrict G0 = G[0], *restrict G1 = G[1], *restrict G2 = G[2];
	double *restrict H0 = Hs[0], *restrict H1 = Hs[1];
	double *restrict H2 = Hs[2];

	for (int b = 0; b <= L; b += k) {
		const int e = imin(b + k, L);
		double g0 = 0, g1 = 0, g2 = 0, h0 = 0, h1 = 0, h2 = 0;
		G0[b] = 0;
		if (nq & QQ)
			G1[b] = 0;
		if (nq & QC)
			G2[b] = 0;
		for (int t = 0; t < e - b; t++) {
			const int jf = b + t, jb = e - 1 - t;
			G0[jf + 1] = g0 += p0[jf];
			H0[jb] = h0 += p0[jb];
			if (nq & QQ) {
				G1[jf + 1] = g1 += p1[jf];
				H1[jb] = h1 += p1[jb];
			}
			if (nq & QC) {
				G2[jf + 1] = g2 += p2[jf];
				H2[jb] = h2 += p2[jb];
			}
		}
	}
	for (int i = 0; i < NQ; i++) {
		if (!(nq & (1 << i)))
			continue;
		const double *restrict hs = Hs[i], *restrict g = G[i] + k;
		double *restrict o = out[i];
		if (acc)
			for (int x = 0; x < W; x++)
				o[x] += hs[x] + g[x];
		else
			for (int x = 0; x < W; x++)
				o[x] = hs[x] + g[x];
	}
}

static void hsum_any(double *const *p, int nq, int W, int w, int acc,
		     double *const *G, double *const *Hs, double *const *out)
{
	switch (nq) {
	case QS: hsum(p, QS, W, w, acc, G, Hs, out); break;
	case QS | QC: hsum(p, QS | QC, W, w, acc, G, Hs, out); break;
	case QS | QQ: hsum(p, QS | QQ, W, w, acc, G, Hs, out); break;
	default: hsum(p, QS | QQ | QC, W, w, acc, G, Hs, out); break;
	}
}

/* One output row from window sums s (of value - shift), q (of squares) and
 * counts c; c == NULL: no invalid cell, the count is nr * ncol[x]. */
static void sums_out(struct focal *f, const double *restrict s,
		     const double *restrict q, const double *restrict c,
		     int nr, double *restrict o)
{
	const int W = f->W;
	const double nd = f->nd_out;
	const double *restrict ncol = f->ncol;
	long none = 0;

	switch (f->stat) {
	case RFS_FOCAL_MEAN:
		if (c) {
			for (int x = 0; x < W; x++) {
				o[x] = c[x] > 0 ? s[x] / c[x] : nd;
				none += c[x] == 0;
			}
		} else {
			for (int x = 0; x < W; x++)
				o[x] = s[x] / (nr * ncol[x]);
		}
		break;
	case RFS_FOCAL_SUM:
		if (c) {
			for (int x = 0; x < W; x++) {
				o[x] = c[x] > 0 ? s[x] : nd;
				none += c[x] == 0;
			}
		} else {
			memcpy(o, s, W * sizeof(double));
		}
		break;
	default: /* std, population */
		for (int x = 0; x < W; x++) {
			double n = c ? c[x] : nr * ncol[x];
			double m = s[x] / n;
			double var = q[x] / n - m * m;
			o[x] = sqrt(var > 0 ? var : 0);
		}
		if (c) {
			for (int x = 0; x < W; x++) {
				o[x] = c[x] > 0 ? o[x] : nd;
				none += c[x] == 0;
			}
		}
		break;
	}
	f->nodata_cells += none;
}

/* Results that are NaN (an inf - inf inside a window) become nodata. */
static void nan_to_nodata(struct focal *f, double *o, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (o[i] != o[i]) {
			o[i] = f->nd_out;
			f->nodata_cells++;
		}
	}
}

/* A shift for std (note 4): some valid value of the buffer, 0 if none. */
static double strip_shift(const struct focal *f)
{
	size_t n = (size_t)(f->bot - f->top) * f->W;
	for (size_t i = 0; i < n; i++)
		if (f->cnt[i] != 0)
			return f->val[0][i];
	return 0;
}

static void sums_square(struct focal *f, int y0, int y1)
{
	const int W = f->W, H = f->H, r = f->r, k = f->k, n_out = y1 - y0;
	const int clean = !any_flag(f->rbad, f, y0 - r, y1 + r);
	const int nq = QS | (f->stat == RFS_FOCAL_STD ? QQ : 0) |
		       (clean ? 0 : QC);
	const double s = f->stat == RFS_FOCAL_STD ? strip_shift(f) : 0;
	double *g[NQ], *v[NQ], *G[NQ], *Hs[NQ], *h[NQ], *hn[NQ];

	for (int i = 0; i < NQ; i++) {
		g[i] = f->work[i][0];
		v[i] = f->work[i][1];
		G[i] = f->work[i][2] - r;
		Hs[i] = f->work[i][3] - r;
	}
	/* local row j is raster row y0 - r + j; blocks of k local rows */
	for (int m0 = 0; m0 < n_out; m0 += k) {
		const int last = imin(m0 + k, n_out) - 1;

		/* suffix sums h[j - m0] = rows j .. m0+k-1, for j <= last */
		for (int i = 0; i < NQ; i++)
			h[i] = f->hbuf[i] + (size_t)(last - m0) * W;
		qrow_any(f, y0 - r + m0 + k - 1, nq, s, h, NULL);
		for (int j = m0 + k - 2; j >= last; j--)
			qrow_any(f, y0 - r + j, nq, s, h, h);
		for (int j = last - 1; j >= m0; j--) {
			for (int i = 0; i < NQ; i++) {
				hn[i] = f->hbuf[i] + (size_t)(j - m0 + 1) * W;
				h[i] = hn[i] - W;
			}
			qrow_any(f, y0 - r + j, nq, s, h, hn);
		}

		/* prefix sums g of the next block, rolled down the rows */
		for (int i = m0; i <= last; i++) {
			const int y = y0 + i;
			for (int q = 0; q < NQ; q++)
				h[q] = f->hbuf[q] + (size_t)(i - m0) * W;
			if (i == m0) {
				for (int q = 0; q < NQ; q++)
					if (nq & (1 << q))
						memcpy(v[q], h[q],
						       W * sizeof(double));
			} else {
				qrow_any(f, y + r, nq, s, g,
					 i == m0 + 1 ? NULL : g);
				for (int q = 0; q < NQ; q++) {
					if (!(nq & (1 << q)))
						continue;
					const double *restrict a = h[q];
					const double *restrict b = g[q];
					double *restrict c = v[q];
					for (int x = 0; x < W; x++)
						c[x] = a[x] + b[x];
				}
			}
			double *out[NQ] = { h[0], h[1], h[2] };
			/* h row i - m0 is not needed again: reuse it */
			hsum_any(v, nq, W, r, 0, G, Hs, out);
			int nr = imin(y + r, H - 1) - imax(y - r, 0) + 1;
			sums_out(f, out[0], out[1], (nq & QC) ? out[2] : NULL,
				 nr, f->obuf + (size_t)i * W);
		}
	}
}

static void sums_circle(struct focal *f, int y0, int y1)
{
	const int W = f->W, r = f->r;
	const int nq = QS | QC | (f->stat == RFS_FOCAL_STD ? QQ : 0);
	const double s = f->stat == RFS_FOCAL_STD ? strip_shift(f) : 0;
	double *t[NQ], *a[NQ], *G[NQ], *Hs[NQ];

	for (int i = 0; i < NQ; i++) {
		t[i] = f->work[i][0];
		a[i] = f->work[i][1];
		G[i] = f->work[i][2] - r;
		Hs[i] = f->work[i][3] - r;
	}
	for (int y = y0; y < y1; y++) {
		int first_group = 1;
		for (int g = 0; g < f->ngroups; g++) {
			int nrows = 0;
			for (int dy = f->g_lo[g]; dy <= f->g_hi[g]; dy++) {
				for (int sg = -1; sg <= !!dy; sg += 2) {
					int yy = y + sg * dy;
					if (!in_raster(f, yy))
						continue;
					qrow_any(f, yy, nq, s, t,
						 nrows ? t : NULL);
					nrows++;
				}
			}
			if (!nrows)
				continue;
			hsum_any(t, nq, W, f->g_w[g], !first_group, G, Hs, a);
			first_group = 0;
		}
		assert(!first_group); /* the centre row always exists */
		sums_out(f, a[0], a[1], a[2], 0,
			 f->obuf + (size_t)(y - y0) * W);
	}
}

/* ---- min / max (note 5) ---------------------------------------------- */

/* out[x] (max)= the max of p[x-w .. x+w] for x in [0, W); p has w pad
 * cells each side.  van Herk / Gil-Werman with blocks of k = 2w + 1. */
static void vhgw(const double *p_in, int W, int w, double *restrict g,
		 double *restrict h, double *restrict out, int acc)
{
	const int k = 2 * w + 1, L = W + 2 * w;
	const double *restrict p = p_in - w;

	if (w == 0) {
		for (int x = 0; x < W; x++)
			out[x] = acc ? dmax(out[x], p[x]) : p[x];
		return;
	}
	for (int b = 0; b < L; b += k) {
		const int e = imin(b + k, L);
		double gf = -INFINITY, hb = -INFINITY;
		for (int t = 0; t < e - b; t++) {
			const int jf = b + t, jb = e - 1 - t;
			gf = dmax(gf, p[jf]);
			g[jf] = gf;
			hb = dmax(hb, p[jb]);
			h[jb] = hb;
		}
	}
	if (acc)
		for (int x = 0; x < W; x++)
			out[x] = dmax(out[x], dmax(h[x], g[x + k - 1]));
	else
		for (int x = 0; x < W; x++)
			out[x] = dmax(h[x], g[x + k - 1]);
}

static void vmax(double *restrict a, const double *restrict b, int W)
{
	for (int x = 0; x < W; x++)
		a[x] = dmax(a[x], b[x]);
}

static inline const double *row_or_pad(const struct focal *f, int plane,
				       int y)
{
	return in_raster(f, y) ? row(f, plane, y) : f->ninf;
}

/* Window maxima of one plane for output rows [y0, y1) into res:
 * vertical van Herk/Gil-Werman per block of k rows, then horizontal. */
static void ext_square(struct focal *f, int plane, int y0, int y1,
		       double *res)
{
	const int W = f->W, r = f->r, k = f->k, n_out = y1 - y0;
	double *g = f->work[0][0], *v = f->work[0][1];
	double *gs = f->work[0][2] - r, *hs = f->work[0][3] - r;
	double *hbuf = f->hbuf[0];

	for (int m0 = 0; m0 < n_out; m0 += k) {
		const int last = imin(m0 + k, n_out) - 1;
		double *h = hbuf + (size_t)(last - m0) * W;

		memcpy(h, row_or_pad(f, plane, y0 - r + m0 + k - 1),
		       W * sizeof(double));
		for (int j = m0 + k - 2; j >= last; j--)
			vmax(h, row_or_pad(f, plane, y0 - r + j), W);
		for (int j = last - 1; j >= m0; j--) {
			double *restrict hj = hbuf + (size_t)(j - m0) * W;
			const double *restrict hn = hj + W;
			const double *restrict p =
				row_or_pad(f, plane, y0 - r + j);
			for (int x = 0; x < W; x++)
				hj[x] = dmax(hn[x], p[x]);
		}
		for (int i = m0; i <= last; i++) {
			const double *restrict hi =
				hbuf + (size_t)(i - m0) * W;
			const double *p = row_or_pad(f, plane, y0 + i + r);
			if (i == m0) {
				memcpy(v, hi, W * sizeof(double));
			} else {
				if (i == m0 + 1)
					memcpy(g, p, W * sizeof(double));
				else
					vmax(g, p, W);
				for (int x = 0; x < W; x++)
					v[x] = dmax(hi[x], g[x]);
			}
			vhgw(v, W, r, gs, hs, res + (size_t)i * W, 0);
		}
	}
}

static void ext_circle(struct focal *f, int plane, int y0, int y1,
		       double *res)
{
	const int W = f->W, r = f->r;
	double *t = f->work[0][1];
	double *gs = f->work[0][2] - r, *hs = f->work[0][3] - r;

	for (int y = y0; y < y1; y++) {
		double *o = res + (size_t)(y - y0) * W;
		int first_group = 1;
		for (int g = 0; g < f->ngroups; g++) {
			int nrows = 0;
			for (int dy = f->g_lo[g]; dy <= f->g_hi[g]; dy++) {
				for (int sg = -1; sg <= !!dy; sg += 2) {
					int yy = y + sg * dy;
					if (!in_raster(f, yy))
						continue;
					if (nrows++ == 0)
						memcpy(t, row(f, plane, yy),
						       W * sizeof(double));
					else
						vmax(t, row(f, plane, yy), W);
				}
			}
			if (!nrows)
				continue;
			vhgw(t, W, f->g_w[g], gs, hs, o, !first_group);
			first_group = 0;
		}
	}
}

/* Only asked in strips holding valid infinities (note 5).  Rows without
 * one keep no validity bytes: there -inf in plane 0 means invalid. */
static int window_has_valid(const struct focal *f, int y, int x)
{
	const int r = f->r;

	for (int dy = -r; dy <= r; dy++) {
		const int yy = y + dy;
		if (!in_raster(f, yy))
			continue;
		const int w = f->hw[abs(dy)];
		const size_t off = (size_t)(yy - f->top) * f->W;
		const unsigned char *ok = f->ok + off;
		const double *v = f->val[0] + off;
		const int inf = f->rinf[yy - f->top];
		for (int xx = imax(x - w, 0); xx <= imin(x + w, f->W - 1);
		     xx++)
			if (inf ? ok[xx] : v[xx] != -INFINITY)
				return 1;
	}
	return 0;
}

static void ext_strip(struct focal *f, int y0, int y1)
{
	const int W = f->W;
	const size_t n = (size_t)(y1 - y0) * W;
	const int amb = any_flag(f->rinf, f, y0 - f->r, y1 + f->r);
	const double sign = f->neg ? -1.0 : 1.0;
	const double nd = f->nd_out;
	double *a = f->obuf;

	for (int plane = 0; plane < f->nplanes; plane++) {
		/* range: the max of plane 1 (-x) is -min */
		double *o = plane ? f->obuf2 : a;
		if (f->shape == RFS_FOCAL_CIRCLE)
			ext_circle(f, plane, y0, y1, o);
		else
			ext_square(f, plane, y0, y1, o);
	}
	if (f->nplanes > 1)
		for (size_t i = 0; i < n; i++)
			a[i] = a[i] == -INFINITY ? a[i] : a[i] + f->obuf2[i];
	for (size_t i = 0; i < n; i++) {
		double v = a[i];
		int none = v == -INFINITY;
		if (none && amb &&
		    window_has_valid(f, y0 + (int)(i / W), (int)(i % W)))
			none = 0;
		v = sign * v;
		none |= v != v;
		a[i] = none ? nd : v;
		f->nodata_cells += none;
	}
}

/* ---- median (note 7) ------------------------------------------------- */

/* The k-th smallest of a[0..n) (0-based), leaving a[i] <= a[k] for every
 * i < k: Hoare's FIND with a median-of-three pivot. */
static double select_nth(double *a, int n, int k)
{
	int lo = 0, hi = n - 1;

	while (hi > lo) {
		int mid = lo + (hi - lo) / 2;
		double t;
		if (a[mid] < a[lo]) { t = a[mid]; a[mid] = a[lo]; a[lo] = t; }
		if (a[hi] < a[lo]) { t = a[hi]; a[hi] = a[lo]; a[lo] = t; }
		if (a[hi] < a[mid]) { t = a[hi]; a[hi] = a[mid]; a[mid] = t; }
		const double p = a[mid];
		int i = lo, j = hi;
		while (i <= j) {
			while (a[i] < p)
				i++;
			while (a[j] > p)
				j--;
			if (i <= j) {
				t = a[i]; a[i] = a[j]; a[j] = t;
				i++;
				j--;
			}
		}
		if (k <= j)
			hi = j;
		else if (k >= i)
			lo = i;
		else
			return a[k];
	}
	return a[k];
}

static void median_strip(struct focal *f, int y0, int y1)
{
	const int W = f->W, r = f->r;
	double *buf = f->mbuf;

	for (int y = y0; y < y1; y++) {
		double *o = f->obuf + (size_t)(y - y0) * W;
		for (int x = 0; x < W; x++) {
			int n = 0;
			for (int dy = -r; dy <= r; dy++) {
				if (!in_raster(f, y + dy))
					continue;
				const int w = f->hw[abs(dy)];
				const double *p = row(f, 0, y + dy);
				const int xe = imin(x + w, W - 1);
				for (int xx = imax(x - w, 0); xx <= xe; xx++) {
					buf[n] = p[xx];
					n += p[xx] == p[xx];
				}
			}
			if (n == 0) {
				o[x] = f->nd_out;
				f->nodata_cells++;
				continue;
			}
			const int m = n / 2;
			double v = select_nth(buf, n, m);
			if (n % 2 == 0) {
				double lo = buf[0];
				for (int i = 1; i < m; i++)
					lo = dmax(lo, buf[i]);
				v = (lo + v) / 2;
			}
			o[x] = v == v ? v : f->nd_out;
			f->nodata_cells += v != v;
		}
	}
}

/* ---- set-up and the strip loop --------------------------------------- */

static void focal_free(struct focal *f)
{
	for (int p = 0; p < 2; p++)
		free(f->val[p]);
	free(f->cnt);
	free(f->ok);
	free(f->rbad);
	free(f->rinf);
	free(f->obuf);
	free(f->obuf2);
	for (int i = 0; i < NQ; i++) {
		for (int j = 0; j < NWORK; j++)
			if (f->work[i][j])
				free(f->work[i][j] - f->r);
		free(f->hbuf[i]);
	}
	free(f->ncol);
	free(f->ninf);
	free(f->zero);
	free(f->mbuf);
}

static int focal_alloc(struct focal *f)
{
	const size_t W = f->W, R = f->B + 2 * f->r;
	const size_t n = W + 2 * f->r + 1;
	const size_t hrows = imin(f->k, f->B);
	const double padv = f->mode == M_EXT ? -INFINITY : 0.0;
	const int nh = f->mode == M_SUMS ? NQ : f->mode == M_EXT ? 1 : 0;

	for (int p = 0; p < f->nplanes; p++)
		if (!(f->val[p] = malloc(R * W * sizeof(double))))
			return -1;
	if (f->mode == M_SUMS &&
	    !(f->cnt = malloc(R * W * sizeof(double))))
		return -1;
	if (f->mode == M_EXT && !(f->ok = malloc(R * W)))
		return -1;
	f->rbad = malloc(R);
	f->rinf = malloc(R);
	f->obuf = malloc((size_t)f->B * W * sizeof(double));
	f->ncol = malloc(W * sizeof(double));
	f->ninf = malloc(W * sizeof(double));
	f->zero = calloc(W, sizeof(double));
	if (!f->zero || !f->rbad || !f->rinf || !f->obuf || !f->ncol ||
	    !f->ninf)
		return -1;
	for (int i = 0; i < NQ; i++) {
		for (int j = 0; j < NWORK; j++) {
			double *p = malloc(n * sizeof(double));
			if (!p)
				return -1;
			for (size_t x = 0; x < n; x++)
				p[x] = padv;
			f->work[i][j] = p + f->r;
		}
	}
	for (int i = 0; i < nh; i++)
		if (!(f->hbuf[i] = malloc(hrows * W * sizeof(double))))
			return -1;
	if (f->stat == RFS_FOCAL_RANGE &&
	    !(f->obuf2 = malloc((size_t)f->B * W * sizeof(double))))
		return -1;
	if (f->mode == M_MEDIAN &&
	    !(f->mbuf = malloc((size_t)f->k * f->k * sizeof(double))))
		return -1;
	for (int x = 0; x < f->W; x++) {
		f->ncol[x] = imin(x + f->r, f->W - 1) - imax(x - f->r, 0) + 1;
		f->ninf[x] = -INFINITY;
	}
	return 0;
}

static void focal_setup(struct focal *f, int W, int H, int size,
			enum rfs_focal_stat stat, enum rfs_focal_shape shape)
{
	memset(f, 0, sizeof(*f));
	f->W = W;
	f->H = H;
	f->k = size;
	f->r = size / 2;
	f->stat = stat;
	f->shape = shape;
	switch (stat) {
	case RFS_FOCAL_MEAN:
	case RFS_FOCAL_SUM:
	case RFS_FOCAL_STD:
		f->mode = M_SUMS;
		break;
	case RFS_FOCAL_MEDIAN:
		f->mode = M_MEDIAN;
		break;
	default:
		f->mode = M_EXT;
		break;
	}
	f->neg = stat == RFS_FOCAL_MIN;
	f->nplanes = stat == RFS_FOCAL_RANGE ? 2 : 1;

	/* half-width of row dy: the largest w with w^2 + dy^2 <= r^2 */
	const int r = f->r;
	for (int dy = 0; dy <= r; dy++) {
		int w = r;
		if (shape == RFS_FOCAL_CIRCLE)
			while (w * w + dy * dy > r * r)
				w--;
		f->hw[dy] = w;
	}
	for (int dy = 0; dy <= r; dy++) {
		if (dy == 0 || f->hw[dy] != f->hw[dy - 1]) {
			f->g_lo[f->ngroups] = dy;
			f->g_w[f->ngroups] = f->hw[dy];
			f->ngroups++;
		}
		f->g_hi[f->ngroups - 1] = dy;
	}

	/* bytes: buffered rows of every plane, plus the suffix rows */
	const size_t row_bytes = (size_t)W * sizeof(double);
	const int planes = f->nplanes + (f->mode == M_SUMS);
	const int nh = f->mode == M_SUMS ? NQ : f->mode == M_EXT;
	/* a whole number of k-row blocks: each block's suffix pass costs k
	 * rows however few of its output rows fall in the strip */
	int B = size <= STRIP_ROWS ? STRIP_ROWS / size * size : STRIP_ROWS;
	while (B > 16 && row_bytes * ((size_t)(B + 2 * r) * planes +
				      (size_t)imin(B, f->k) * nh) >
				 STRIP_BYTES)
		B /= 2;
	f->B = imin(B, H);
}

int rfs_focal_band(GDALRasterBandH in, GDALRasterBandH out, int size,
		   enum rfs_focal_stat stat, enum rfs_focal_shape shape,
		   GDALProgressFunc progress, void *progress_arg,
		   struct rfs_bstats *stats, char *msg, size_t msglen)
{
	struct focal f;
	const int W = GDALGetRasterBandXSize(in);
	const int H = GDALGetRasterBandYSize(in);
	int has_nd = 0, rc = 0;
	const double nd = GDALGetRasterNoDataValue(in, &has_nd);
	const GDALDataType ot = GDALGetRasterDataType(out);

	assert(size >= 3 && size % 2 == 1 && size <= RFS_FOCAL_MAX_SIZE);
	assert(W == GDALGetRasterBandXSize(out) &&
	       H == GDALGetRasterBandYSize(out));

	focal_setup(&f, W, H, size, stat, shape);
	f.nd_in = has_nd ? nd : NAN;
	/* The output declares a nodata value exactly when the input does
	 * (describe.h: a function of the metadata); without one, a window
	 * with no valid cell (only NaN cells) gives NaN. */
	f.nd_out = has_nd ? rfs_focal_out_nodata(GDALGetRasterDataType(in),
						 ot, stat, has_nd, nd) : NAN;
	if (focal_alloc(&f) < 0) {
		snprintf(msg, msglen, "focal: out of memory for strips of "
			 "%d x %d cells", W, f.B + 2 * f.r);
		rc = -RFS_E_NOMEM;
		goto out;
	}
	if (has_nd && GDALSetRasterNoDataValue(out, f.nd_out) != CE_None)
		goto gdal_fail;

	for (int y0 = 0; y0 < H; y0 += f.B) {
		const int y1 = imin(y0 + f.B, H);
		if (fill(&f, in, imax(y0 - f.r, 0), imin(y1 + f.r, H)) < 0)
			goto gdal_fail;
		switch (f.mode) {
		case M_SUMS:
			if (shape == RFS_FOCAL_SQUARE)
				sums_square(&f, y0, y1);
			else
				sums_circle(&f, y0, y1);
			if (any_flag(f.rinf, &f, y0 - f.r, y1 + f.r))
				nan_to_nodata(&f, f.obuf,
					      (size_t)(y1 - y0) * W);
			break;
		case M_EXT:
			ext_strip(&f, y0, y1);
			break;
		case M_MEDIAN:
			median_strip(&f, y0, y1);
			break;
		}
		if (GDALRasterIO(out, GF_Write, 0, y0, W, y1 - y0, f.obuf, W,
				 y1 - y0, GDT_Float64, 0, 0) != CE_None)
			goto gdal_fail;
		/* Statistics of the values as written: a Float32 output
		 * stores each double rounded to float. */
		if (stats)
			rfs_bstats_add(stats, f.obuf, (size_t)W * (y1 - y0),
				       f.nd_out, ot == GDT_Float32);
		if (progress && !progress((double)y1 / H, "", progress_arg)) {
			snprintf(msg, msglen, "focal: cancelled");
			rc = -RFS_E_CANCELLED;
			goto out;
		}
	}
	goto out;

gdal_fail:
	rc = CPLGetLastErrorNo() == CPLE_OutOfMemory ? -RFS_E_NOMEM :
						      -RFS_E_PROCESS;
	snprintf(msg, msglen, "focal: %s", CPLGetLastErrorMsg());
out:
	focal_free(&f);
	return rc;
}
