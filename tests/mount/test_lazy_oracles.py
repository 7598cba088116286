"""Windows of large outputs computed block by block equal independent
oracles, step family by step family (issue 11's list: res, size, clip,
focal with every statistic and both shapes, terrain, band, type, nodata,
ndi), at tile, block and raster edges.

Only the windows read are computed (the outputs are over the lazy
threshold, lazy.h), so each case costs a few blocks.  Oracles never ask
rasterfs: warps are GDAL's warped VRT (docs/design.md's oracle lines),
clip/band/type/nodata are gdal_translate's VRT, terrain is gdaldem on the
source window with a one-cell margin, focal and ndi are numpy references
(rfsref.py, test_steps.ndi_reference) on the source window with the half
window as margin.  test_lazy.py compares whole outputs byte for byte with
the whole computation.
"""

import subprocess

import numpy as np
import pytest
from osgeo import gdal

import rfsref
from test_lazy import BLOCK, NAME, SIDE, create, make_source
from test_steps import ndi_reference

gdal.UseExceptions()

MULTI = "multi.tif"
TILE = 256


def make_multi(path):
    """3 bands of UInt16, nodata 0 (a few cells of it in every block)."""
    ds = create(path, 3, gdal.GDT_UInt16)
    y, x = np.mgrid[0:SIDE, 0:SIDE]
    for i in range(3):
        a = ((x * (i + 3) + y * (7 - i) + (x * y) % (31 + i)) % 4000
             ).astype(np.uint16)
        b = ds.GetRasterBand(i + 1)
        b.SetNoDataValue(0)
        b.WriteArray(a)
    ds = None


@pytest.fixture(scope="module")
def lazy(tmp_path_factory):
    from conftest import MountFactory, _need_fuse
    _need_fuse()
    d = tmp_path_factory.mktemp("lazyoracle")
    make_source(d / NAME)
    make_multi(d / MULTI)
    f = MountFactory(tmp_path_factory.mktemp("lazyoraclemnt"))
    try:
        yield f(src=d)
    finally:
        f.stop_all()


def windows(W, H):
    """Tile, block and raster edges, and a row across three blocks."""
    return [(0, 0, 3, 3), (TILE - 2, TILE - 2, 4, 4),
            (BLOCK - 2, 2 * BLOCK - 3, 5, 6), (W - 4, H - 4, 4, 4),
            (W - 1, 0, 1, 2), (BLOCK - 300, 3 * BLOCK - 1, 900, 2)]


def read(path, win, band=1):
    ds = gdal.Open(path)
    try:
        return ds.GetRasterBand(band).ReadAsArray(*win)
    finally:
        ds = None


def size_of(path):
    ds = gdal.Open(path)
    try:
        return ds.RasterXSize, ds.RasterYSize, ds.RasterCount
    finally:
        ds = None


def run(cmd):
    subprocess.run(cmd, check=True, timeout=300, stdout=subprocess.DEVNULL)


def is_lazy(path):
    W, H, _ = size_of(path)
    return W * H > 1 << 25


# -- GDAL's VRTs: warps, clip, band, type, nodata ---------------------------

VRT_CASES = [
    (NAME, "res=8,bilinear", ["gdalwarp", "-of", "VRT", "-tr", "8", "8",
                              "-r", "bilinear", "-wm", "64", "-et",
                              "0.125"]),
    (NAME, "size=7000,6500,cubic", ["gdalwarp", "-of", "VRT", "-ts", "7000",
                                    "6500", "-r", "cubic", "-wm", "64",
                                    "-et", "0.125"]),
    (NAME, "proj=EPSG:32634", ["gdalwarp", "-of", "VRT", "-t_srs",
                               "EPSG:32634", "-wm", "64", "-et", "0.125"]),
    (NAME, "clip=500100.5,4940200,559900,4999900",
     ["gdal_translate", "-of", "VRT", "-projwin", "500100.5", "4999900",
      "559900", "4940200"]),
    (MULTI, "band=3,1", ["gdal_translate", "-of", "VRT", "-b", "3", "-b",
                         "1"]),
    (NAME, "type=Int16", ["gdal_translate", "-of", "VRT", "-ot", "Int16"]),
    (MULTI, "type=Byte", ["gdal_translate", "-of", "VRT", "-ot", "Byte"]),
    (MULTI, "nodata=7", ["gdal_translate", "-of", "VRT", "-a_nodata", "7"]),
]


@pytest.mark.parametrize("src,step,cmd", VRT_CASES,
                         ids=[c[1] for c in VRT_CASES])
def test_windows_equal_gdal_vrt(lazy, tmp_path, src, step, cmd):
    name = "%s@%s" % (src, step)
    vrt = str(tmp_path / "oracle.vrt")
    run(cmd + ["-q", str(lazy.src / src), vrt])
    got_size = size_of(lazy.path(name))
    assert got_size == size_of(vrt)
    assert is_lazy(lazy.path(name)), "the case must be over the threshold"
    before = lazy.stats()["lazy_blocks"]
    W, H, bands = got_size
    for win in windows(W, H):
        for b in range(1, bands + 1):
            np.testing.assert_array_equal(
                read(lazy.path(name), win, b), read(vrt, win, b),
                err_msg="%s window %s band %d" % (name, win, b))
    if step.startswith("nodata"):
        ds = gdal.Open(lazy.path(name))
        assert ds.GetRasterBand(1).GetNoDataValue() == 7
        ds = None
    # the windows' blocks were computed, not the output (the exact count
    # of a window's blocks is test_lazy.py's)
    nb = ((W + BLOCK - 1) // BLOCK) * ((H + BLOCK - 1) // BLOCK)
    assert 0 < lazy.stats()["lazy_blocks"] - before <= 16 < nb // 4


# -- terrain: gdaldem on the source window and its one-cell margin ----------

TERRAIN = [
    ("slope", ["slope"]),
    ("aspect", ["aspect"]),
    ("hillshade=alt=60,multidirectional", ["hillshade", "-multidirectional",
                                           "-alt", "60"]),
    ("roughness", ["roughness"]),
    ("tri", ["TRI"]),
    ("tpi", ["TPI"]),
]


def margin_win(win, m, W, H):
    """win grown by m cells, cut at the raster; and where win is in it."""
    x, y, w, h = win
    x0, y0 = max(0, x - m), max(0, y - m)
    x1, y1 = min(W, x + w + m), min(H, y + h + m)
    return (x0, y0, x1 - x0, y1 - y0), (x - x0, y - y0)


@pytest.mark.parametrize("step,args", TERRAIN, ids=[t[0] for t in TERRAIN])
def test_terrain_windows_equal_gdaldem(lazy, tmp_path, step, args):
    name = "%s@%s" % (NAME, step)
    src = str(lazy.src / NAME)
    W, H = SIDE, SIDE
    for i, win in enumerate(windows(W, H)):
        grown, (ox, oy) = margin_win(win, 1, W, H)
        cut = str(tmp_path / ("cut%d.vrt" % i))
        ref = str(tmp_path / ("ref%d.tif" % i))
        run(["gdal_translate", "-q", "-of", "VRT", "-srcwin"] +
            [str(v) for v in grown] + [src, cut])
        run(["gdaldem"] + args + ["-q", cut, ref])
        want = read(ref, (ox, oy, win[2], win[3]))
        # gdaldem leaves the cut's outer ring nodata: only the raster's
        # own outer ring may be nodata in the output
        np.testing.assert_array_equal(read(lazy.path(name), win), want,
                                      err_msg="%s window %s" % (name, win))


# -- focal: every statistic, both shapes, numpy on the source window ---------

FOCAL = [(size, stat, shape)
         for stat in ("mean", "min", "max", "sum", "std", "range", "median")
         for (size, shape) in ((5, "square"), (7, "circle"))]


@pytest.fixture(scope="module")
def source_array(lazy):
    return read(str(lazy.src / NAME), (0, 0, SIDE, SIDE))


@pytest.mark.parametrize("size,stat,shape", FOCAL,
                         ids=["%d,%s,%s" % f for f in FOCAL])
def test_focal_windows_equal_numpy(lazy, source_array, size, stat, shape):
    name = "%s@focal=%d,%s,%s" % (NAME, size, stat, shape)
    out = {"array": None, "nodata": None, "type": None}
    ds = gdal.Open(lazy.path(name))
    out["nodata"] = ds.GetRasterBand(1).GetNoDataValue()
    out["type"] = ds.GetRasterBand(1).DataType
    ds = None
    r = size // 2
    rtol, atol = rfsref.FOCAL_TOL.get(stat, (0, 0))
    # the row across three blocks is left to the other cases (a numpy
    # median of 900 x 2 windows is slow); the others cover the edges
    for win in windows(SIDE, SIDE)[:5]:
        grown, (ox, oy) = margin_win(win, r, SIDE, SIDE)
        x0, y0, w0, h0 = grown
        ref = rfsref.focal(source_array[y0:y0 + h0, x0:x0 + w0], None,
                           size, stat, shape)
        ref = ref[oy:oy + win[3], ox:ox + win[2]]
        out["array"] = read(lazy.path(name), win)
        rfsref.assert_band_equals(out, ref, stat in rfsref.EXACT_STATS,
                                  rtol, atol, "%s window %s" % (name, win))


# -- ndi ---------------------------------------------------------------------

def test_ndi_windows_equal_numpy(lazy):
    name = MULTI + "@ndi=3,1"
    out = {}
    ds = gdal.Open(lazy.path(name))
    out["nodata"] = ds.GetRasterBand(1).GetNoDataValue()
    out["type"] = ds.GetRasterBand(1).DataType
    ds = None
    assert out["type"] == gdal.GDT_Float32
    for win in windows(SIDE, SIDE):
        a = read(str(lazy.src / MULTI), win, 3)
        b = read(str(lazy.src / MULTI), win, 1)
        out["array"] = read(lazy.path(name), win)
        rfsref.assert_band_equals(out, ndi_reference(a, b, 0, 0), True,
                                  what="%s window %s" % (name, win))
