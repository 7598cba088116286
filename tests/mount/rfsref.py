"""Oracles for the mount tests, independent of rasterfs.

Plain, slow, obviously-correct references: focal statistics by visiting every
window offset (O(k^2) per pixel), reclassification by masking, reprojection by
running GDAL's own gdalwarp.  They share no code with the daemon.
"""

import os
import subprocess

import numpy as np
from osgeo import gdal

gdal.UseExceptions()

STATS = ("mean", "min", "max", "sum", "std", "range", "median")
SHAPES = ("square", "circle")

# Output data type of focal, by statistic (see the issue / focal.h).
_WIDE = {gdal.GDT_Int32, gdal.GDT_UInt32, gdal.GDT_Float64}


def focal_out_type(in_type, stat):
    """GDAL data type focal must write for an input band of in_type."""
    if stat in ("min", "max"):
        return in_type
    if stat == "sum":
        return gdal.GDT_Float64
    return gdal.GDT_Float64 if in_type in _WIDE else gdal.GDT_Float32


def valid_mask(a, nodata):
    """True where a holds data: not the nodata value and not NaN."""
    m = np.ones(a.shape, dtype=bool)
    if np.issubdtype(a.dtype, np.floating):
        m &= ~np.isnan(a)
    if nodata is not None:
        if np.isnan(nodata):
            pass
        else:
            m &= a != nodata
    return m


def window_offsets(size, shape):
    """(dy, dx) of the cells of a SIZE x SIZE window; circle keeps the cells
    whose centre is within r = SIZE // 2 of the window centre."""
    assert size % 2 == 1 and size >= 3
    r = size // 2
    offs = []
    for dy in range(-r, r + 1):
        for dx in range(-r, r + 1):
            if shape == "circle" and dy * dy + dx * dx > r * r:
                continue
            offs.append((dy, dx))
    return offs


def _shifted(a, valid, dy, dx):
    """The array whose cell (i, j) is a[i+dy, j+dx] (NaN where that cell does
    not exist or is not valid), as float64."""
    h, w = a.shape
    out = np.full((h, w), np.nan)
    src = np.where(valid, a.astype(np.float64), np.nan)
    i0, i1 = max(0, -dy), min(h, h - dy)
    j0, j1 = max(0, -dx), min(w, w - dx)
    if i0 < i1 and j0 < j1:
        out[i0:i1, j0:j1] = src[i0 + dy:i1 + dy, j0 + dx:j1 + dx]
    return out


def focal(a, nodata, size, stat="mean", shape="square"):
    """Focal statistic of a 2-D array by brute force.

    Every cell of the window is visited (O(k^2) per pixel).  Invalid cells
    (nodata, NaN) and cells beyond the raster edge are left out; a window with
    no valid cell gives NaN.  std is the population std (ddof=0); the median
    of an even count is the mean of the two middle values.  Returns float64.
    """
    valid = valid_mask(a, nodata)
    offs = window_offsets(size, shape)
    h, w = a.shape
    if stat == "median":
        # All window values at once: k^2 * H * W doubles.
        stack = np.empty((len(offs), h, w))
        for n, (dy, dx) in enumerate(offs):
            stack[n] = _shifted(a, valid, dy, dx)
        with np.errstate(all="ignore"):
            import warnings
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)
                return np.nanmedian(stack, axis=0)
    cnt = np.zeros((h, w))
    s = np.zeros((h, w))
    s2 = np.zeros((h, w))
    mn = np.full((h, w), np.inf)
    mx = np.full((h, w), -np.inf)
    for dy, dx in offs:
        v = _shifted(a, valid, dy, dx)
        ok = ~np.isnan(v)
        z = np.where(ok, v, 0.0)
        cnt += ok
        s += z
        mn = np.where(ok, np.minimum(mn, z), mn)
        mx = np.where(ok, np.maximum(mx, z), mx)
    empty = cnt == 0
    with np.errstate(all="ignore"):
        if stat == "sum":
            out = s
        elif stat == "mean":
            out = s / cnt
        elif stat == "min":
            out = mn
        elif stat == "max":
            out = mx
        elif stat == "range":
            out = mx - mn
        elif stat == "std":
            # Second pass about the mean: exact enough to be an oracle.
            mean = s / cnt
            for dy, dx in offs:
                v = _shifted(a, valid, dy, dx)
                ok = ~np.isnan(v)
                d = np.where(ok, v - mean, 0.0)
                s2 += d * d
            out = np.sqrt(s2 / cnt)
        else:
            raise ValueError(stat)
    out = np.array(out, dtype=np.float64)
    out[empty] = np.nan
    return out


def focal_at(a, nodata, size, stat, shape, points):
    """The focal statistic at a few (row, col) points only (for big rasters
    and big windows): the window around each point, cut at the edges,
    masked by shape and validity, reduced with numpy."""
    valid = valid_mask(a, nodata)
    r = size // 2
    h, w = a.shape
    dy, dx = np.mgrid[-r:r + 1, -r:r + 1]
    inside = np.ones(dy.shape, dtype=bool) if shape == "square" \
        else dy * dy + dx * dx <= r * r
    res = []
    for i, j in points:
        i0, i1, j0, j1 = max(0, i - r), min(h, i + r + 1), \
            max(0, j - r), min(w, j + r + 1)
        win = a[i0:i1, j0:j1].astype(np.float64)
        m = valid[i0:i1, j0:j1] & \
            inside[i0 - i + r:i1 - i + r, j0 - j + r:j1 - j + r]
        v = win[m]
        if v.size == 0:
            res.append(np.nan)
            continue
        res.append({"mean": v.mean, "min": v.min, "max": v.max, "sum": v.sum,
                    "std": v.std, "median": lambda: np.median(v),
                    "range": lambda: v.max() - v.min()}[stat]())
    return np.array(res)


def parse_reclass(text):
    """'0:200:1,200:inf:2,other=0' -> ([(0, 200, 1), (200, inf, 2)], 0 or None)"""
    ranges, other = [], None
    for part in text.split(","):
        if part.startswith("other="):
            other = float(part[6:])
            continue
        lo, hi, v = part.split(":")
        ranges.append((float(lo), float(hi), float(v)))
    return ranges, other


def reclass(a, nodata, ranges, other=None):
    """Half-open ranges [lo, hi) -> v; unmatched valid cells -> other, or NaN
    (nodata) when other is None; invalid cells stay NaN.  Returns float64."""
    valid = valid_mask(a, nodata)
    x = a.astype(np.float64)
    out = np.full(a.shape, np.nan)
    matched = np.zeros(a.shape, dtype=bool)
    for lo, hi, v in ranges:
        sel = valid & ~matched & (x >= lo) & (x < hi)
        out[sel] = v
        matched |= sel
    if other is not None:
        out[valid & ~matched] = other
    return out


def gdalwarp_vrt(args, src, dst):
    """docs/design.md's warp oracle: `gdalwarp -of VRT ARGS SRC DST.vrt` then
    `gdal_translate DST.vrt DST` (GDAL's warped VRT warps each of its
    blocks alone, so a window of it is a window of the whole)."""
    env = dict(os.environ, GDAL_PAM_ENABLED="NO")
    vrt = str(dst) + ".vrt"
    subprocess.run(["gdalwarp", "-q", "-overwrite", "-of", "VRT"] +
                   list(args) + [str(src), vrt], check=True, env=env,
                   timeout=300)
    subprocess.run(["gdal_translate", "-q", vrt, str(dst)], check=True,
                   env=env, timeout=300)
    return dst


def gdalwarp(src, dst, crs, res=None, resampling=None):
    """Reproject with GDAL's own gdalwarp (the oracle above), default
    options otherwise."""
    args = ["-t_srs", crs]
    if res is not None:
        args += ["-tr", str(res), str(res)]
    if resampling is not None:
        args += ["-r", resampling]
    return gdalwarp_vrt(args, src, dst)


class Raster:
    """A raster read whole: arrays, nodata and georeferencing of each band."""

    def __init__(self, path_or_bytes):
        if isinstance(path_or_bytes, (bytes, bytearray)):
            name = "/vsimem/rfs_%d_%d.tif" % (os.getpid(), id(path_or_bytes))
            gdal.FileFromMemBuffer(name, bytes(path_or_bytes))
            try:
                self._load(name)
            finally:
                gdal.Unlink(name)
        else:
            self._load(str(path_or_bytes))

    def _load(self, name):
        ds = gdal.Open(name)
        self.driver = ds.GetDriver().ShortName
        self.xsize, self.ysize, self.count = (ds.RasterXSize, ds.RasterYSize,
                                              ds.RasterCount)
        self.gt = ds.GetGeoTransform()
        self.wkt = ds.GetProjection()
        self.bands = []
        for i in range(1, ds.RasterCount + 1):
            b = ds.GetRasterBand(i)
            self.bands.append({
                "array": b.ReadAsArray(),
                "nodata": b.GetNoDataValue(),
                "type": b.DataType,
                "checksum": b.Checksum(),
                "block": tuple(b.GetBlockSize()),
                "metadata": b.GetMetadata() or {},
            })
        self.structure = ds.GetMetadata("IMAGE_STRUCTURE") or {}
        ds = None

    def band(self, i=1):
        return self.bands[i - 1]


def to_type(x, gdal_type):
    """Cast float64 reference values to what a band of gdal_type stores."""
    from osgeo import gdal_array
    dt = gdal_array.GDALTypeCodeToNumericTypeCode(gdal_type)
    if np.issubdtype(dt, np.integer):
        return np.round(x).astype(dt)
    return x.astype(dt)


# -- comparing an output with a reference -------------------------------

EXACT_STATS = ("min", "max", "median", "range")


def assert_same_grid(got, src):
    """Same size, geotransform and CRS (focal and reclass keep the grid)."""
    from osgeo import osr
    assert (got.xsize, got.ysize, got.count) == (src.xsize, src.ysize,
                                                 src.count)
    np.testing.assert_allclose(got.gt, src.gt, rtol=1e-12, atol=0)
    a, b = osr.SpatialReference(), osr.SpatialReference()
    a.ImportFromWkt(got.wkt)
    b.ImportFromWkt(src.wkt)
    assert a.IsSame(b), "CRS differs"


def assert_band_equals(out, ref, exact, rtol=1e-6, atol=1e-4, what=""):
    """out: a band dict of an output; ref: float64 reference with NaN for
    nodata.  The nodata masks must be equal; values equal after casting the
    reference to the output type (exact), or within tolerance."""
    arr, nd = out["array"], out["nodata"]
    refmask = np.isnan(ref)
    if refmask.any():
        assert nd is not None, "%s: output has nodata cells but no nodata " \
            "value" % what
    gotmask = ~valid_mask(arr, nd)
    bad = gotmask != refmask
    if bad.any():
        first = tuple(np.argwhere(bad)[0])
        raise AssertionError(
            "%s: nodata mask differs at %d cells (%d should be nodata, %d "
            "should not); first %s: got %r, reference %r (NaN = nodata), "
            "output nodata value %r" % (what, bad.sum(), (bad & refmask).sum(),
                                        (bad & ~refmask).sum(), first,
                                        arr[first], ref[first], nd))
    ok = ~refmask
    if exact:
        want = to_type(ref[ok], out["type"])
        np.testing.assert_array_equal(arr[ok], want, err_msg=what)
    else:
        np.testing.assert_allclose(arr[ok].astype(np.float64), ref[ok],
                                   rtol=rtol, atol=atol, err_msg=what)


FOCAL_TOL = {"mean": (1e-6, 1e-4), "sum": (1e-9, 1e-4), "std": (1e-5, 1e-3)}


def assert_focal(got, src, size, stat, shape):
    """got: Raster of name@focal=size,stat,shape; src: Raster of the input."""
    from osgeo import gdal
    assert_same_grid(got, src)
    for i, (ib, ob) in enumerate(zip(src.bands, got.bands), 1):
        want_type = focal_out_type(ib["type"], stat)
        assert gdal.GetDataTypeName(ob["type"]) == \
            gdal.GetDataTypeName(want_type), "band %d type" % i
        ref = focal(ib["array"], ib["nodata"], size, stat, shape)
        rtol, atol = FOCAL_TOL.get(stat, (0, 0))
        assert_band_equals(ob, ref, stat in EXACT_STATS, rtol, atol,
                           "band %d %s,%s" % (i, stat, shape))
        if stat in ("min", "max") and ib["nodata"] is not None and \
                not np.isnan(ib["nodata"]):
            # Keeping the type keeps the nodata value, too.
            assert ob["nodata"] == ib["nodata"], \
                "nodata %r != input's %r" % (ob["nodata"], ib["nodata"])
