"""Internal overviews of large outputs, computed lazily per level
(docs/large-outputs.md "Overviews", lazy.h).

Level k of a lazy output is the chain computed at resolution 2^k: its grid
has the base's origin, cells 2^k times larger, ceil(W / 2^k) x
ceil(H / 2^k) of them.  Oracles, never the code under test:
  * a warp: GDAL's own warped VRT of the level grid (gdalwarp -of VRT ...
    -te ... -ts ..., the README's oracle line with the level's grid);
  * hillshade: the source averaged onto the level grid by gdalwarp -r
    average (a VRT), then gdaldem hillshade with the options rasterfs
    uses, at a level whose cells divide the source (rasterfs averages by
    a gdal_translate VRT there) and at one whose last cells cover the
    source's edge (a warped VRT);
  * focal: the brute-force reference of tests/mount/rfsref.py on the
    source averaged onto the level grid (gdalwarp -r average);
  * the whole file read lazily (every level) against the same output
    computed whole by a lazy=0 mount (tests/mount/test_lazy.py compares
    more chains that way: their bytes include the overviews too).
A 6000 x 6000 Float32 source (test_lazy.py's) is over the lazy threshold.
"""

import math
import os
import subprocess

import numpy as np
import pytest
from osgeo import gdal

from rfsmount import read_bytes
from test_lazy import NAME, SIDE, make_source

gdal.UseExceptions()

BLOCK = 512


@pytest.fixture(scope="module")
def bigsrc(tmp_path_factory):
    d = tmp_path_factory.mktemp("ovrsrc")
    make_source(d / NAME)
    return d


def levels(w, h):
    """The overview sizes tiff.h promises: k = 1, 2, ... to the first level
    that fits in one 256 x 256 tile."""
    out = []
    k = 1
    while True:
        f = 1 << k
        lw, lh = -(-w // f), -(-h // f)
        out.append((lw, lh))
        if lw <= 256 and lh <= 256:
            return out
        k += 1


def nblocks(w, h):
    return -(-w // BLOCK) * -(-h // BLOCK)


def level_grid(path, k):
    """-te and -ts of level k of the output at path (its header)."""
    ds = gdal.Open(path)
    gt = ds.GetGeoTransform()
    W, H = ds.RasterXSize, ds.RasterYSize
    ds = None
    f = 1 << k
    lw, lh = -(-W // f), -(-H // f)
    x0, y1 = gt[0], gt[3]
    x1 = x0 + lw * gt[1] * f
    y0 = y1 + lh * gt[5] * f
    return ["-te", repr(x0), repr(y0), repr(x1), repr(y1),
            "-ts", str(lw), str(lh)]


def ovr_array(path, k, win=None):
    ds = gdal.Open(path)
    try:
        b = ds.GetRasterBand(1).GetOverview(k - 1)
        if win is None:
            return b.ReadAsArray()
        return b.ReadAsArray(*win)
    finally:
        ds = None


def array(path, win=None):
    ds = gdal.Open(path)
    try:
        b = ds.GetRasterBand(1)
        return b.ReadAsArray() if win is None else b.ReadAsArray(*win)
    finally:
        ds = None


def run(*cmd):
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)


def test_overviews_listed_header_only(mount_factory, bigsrc):
    m = mount_factory(src=bigsrc)
    name = NAME + "@focal=5"
    info = gdal.Info(m.path(name), format="json")
    ovr = [(o["size"][0], o["size"][1]) for o in info["bands"][0]["overviews"]]
    assert ovr == levels(SIDE, SIDE)
    s = m.stats()
    # the header alone: its padding (tiles at multiples of 64 KiB, tiff.h)
    # keeps GDAL's 8 KiB reads out of the first tile after it
    assert s["lazy_blocks"] == 0 and s["lazy_ovr_blocks"] == 0, s
    # every level's blocks count (docs/large-outputs.md)
    total = nblocks(SIDE, SIDE) + sum(nblocks(w, h) for w, h in ovr)
    assert os.getxattr(m.path(name), "user.rasterfs.blocks") == \
        b"0/%d" % total
    # the coarsest level: one block of its own, and no other
    ovr_array(m.path(name), len(ovr), (0, 0, 1, 1))
    s = m.stats()
    assert s["lazy_blocks"] == 0 and s["lazy_ovr_blocks"] == 1, s
    assert os.getxattr(m.path(name), "user.rasterfs.blocks") == \
        b"1/%d" % total


def test_zoomed_out_hillshade_computes_no_base_block(mount_factory, bigsrc,
                                                     tmp_path):
    m = mount_factory(src=bigsrc)
    name = NAME + "@hillshade"
    path = m.path(name)
    k = 3
    # a full-extent read at 1/8 resolution: GDAL takes level 3
    ds = gdal.Open(path)
    W, H = ds.RasterXSize, ds.RasterYSize
    lw, lh = -(-W // 8), -(-H // 8)
    got = np.frombuffer(ds.GetRasterBand(1).ReadRaster(
        0, 0, W, H, buf_xsize=lw, buf_ysize=lh), dtype=np.uint8)
    got = got.reshape(lh, lw)
    ds = None
    s = m.stats()
    assert s["lazy_blocks"] == 0, s  # no base block
    assert s["lazy_ovr_blocks"] == nblocks(lw, lh), s  # level 3's only
    np.testing.assert_array_equal(got, ovr_array(path, k))
    # the oracle: the source averaged onto the level grid, then gdaldem
    avg = str(tmp_path / "avg.vrt")
    run("gdalwarp", "-q", "-of", "VRT", "-r", "average", "-wm", "64",
        "-et", "0.125", *level_grid(path, k), str(bigsrc / NAME), avg)
    hs = str(tmp_path / "hs.tif")
    run("gdaldem", "hillshade", "-q", "-alg", "Horn", "-az", "315", "-alt",
        "45", "-z", "1", avg, hs)
    np.testing.assert_array_equal(got, array(hs))
    # level 5 (187.5 source cells a side: its last cells reach past the
    # source's edge), whole
    k = 5
    run("gdalwarp", "-q", "-overwrite", "-of", "VRT", "-r", "average",
        "-wm", "64", "-et", "0.125", *level_grid(path, k),
        str(bigsrc / NAME), avg)
    run("gdaldem", "hillshade", "-q", "-alg", "Horn", "-az", "315", "-alt",
        "45", "-z", "1", avg, hs)
    np.testing.assert_array_equal(ovr_array(path, k), array(hs))
    assert m.stats()["lazy_blocks"] == 0


@pytest.mark.parametrize("chain,rs", [("@proj=EPSG:3857", "near"),
                                      ("@proj=EPSG:3857,bilinear",
                                       "bilinear")])
def test_proj_overviews_equal_gdalwarp_oracle(mount_factory, bigsrc,
                                              tmp_path, chain, rs):
    m = mount_factory(src=bigsrc)
    path = m.path(NAME + chain)
    for k in (2, 5):
        vrt = str(tmp_path / ("w%d.vrt" % k))
        run("gdalwarp", "-q", "-of", "VRT", "-t_srs", "EPSG:3857", "-r", rs,
            "-wm", "64", "-et", "0.125", *level_grid(path, k),
            str(bigsrc / NAME), vrt)
        ref = array(vrt)
        lh, lw = ref.shape
        if k == 2:
            # windows at block and level edges
            wins = [(BLOCK - 3, BLOCK - 3, 7, 7), (0, 0, 5, 5),
                    (lw - 5, lh - 5, 5, 5)]
        else:
            wins = [(0, 0, lw, lh)]
        for (x, y, w, h) in wins:
            np.testing.assert_array_equal(ovr_array(path, k, (x, y, w, h)),
                                          ref[y:y + h, x:x + w])
    assert m.stats()["lazy_blocks"] == 0


@pytest.fixture(scope="module")
def pair(tmp_path_factory, bigsrc):
    """A lazy mount and a whole-computing one of the same source."""
    from conftest import MountFactory, _need_fuse
    _need_fuse()
    f = MountFactory(tmp_path_factory.mktemp("ovrpair"))
    try:
        yield f(src=bigsrc), f(src=bigsrc, options=["lazy=0"])
    finally:
        f.stop_all()


def test_overview_blocks_then_whole_equal_lazy0(pair):
    """Overview tiles read alone first, then the whole file (every level)
    read lazily: byte for byte the lazy=0 whole computation's, which writes
    the window engine's overviews, not the writer's averages."""
    lazy, whole = pair
    name = NAME + "@focal=3,max"
    ds = gdal.Open(lazy.path(name))
    n = ds.GetRasterBand(1).GetOverviewCount()
    ds = None
    first = [ovr_array(lazy.path(name), k, (0, 0, 3, 3))
             for k in range(1, n + 1)]
    assert lazy.stats()["lazy_blocks"] == 0
    a = read_bytes(lazy.path(name), 300)
    b = read_bytes(whole.path(name), 300)
    assert len(a) == len(b) == os.stat(lazy.path(name)).st_size
    assert a == b, "lazily computed bytes differ from the whole output"
    for k in range(1, n + 1):
        np.testing.assert_array_equal(
            first[k - 1], ovr_array(whole.path(name), k, (0, 0, 3, 3)))
    # and the overviews are no averages of the base (lazy.h): level 1 of
    # focal max is the max over the averaged source, not the mean of maxes
    base = array(whole.path(name))
    l1 = ovr_array(whole.path(name), 1)
    mean2 = base.reshape(SIDE // 2, 2, SIDE // 2, 2).mean(axis=(1, 3))
    assert not np.allclose(l1, mean2)
    info = gdal.Info(lazy.path(name), format="json")
    assert len(info["bands"][0]["overviews"]) == n


def test_qgis_full_view_computes_no_base_block(mount_factory, bigsrc):
    """QGIS (headless, tests/mount/qgisutil.py) draws the full extent of a
    never-computed lazy output from an overview level: no level-0 block is
    computed, its approximate statistics are taken (no X.aux.xml)."""
    import qgisutil
    why = qgisutil.unavailable_reason()
    if why:
        pytest.skip(why)
    m = mount_factory(src=bigsrc)
    path = m.path(NAME + "@hillshade")
    r = qgisutil.run(path, size=(400, 400), timeout=300, file_stats=False)
    assert r["valid"], r["error"]
    assert r["renders"][0]["errors"] == []
    assert r["renders"][0]["nontransparent"] > 0
    assert r["renderer"]["accuracy"] == "Estimated"
    assert not os.path.exists(path + ".aux.xml")
    s = m.stats()
    assert s["lazy_blocks"] == 0, s
    assert s["lazy_ovr_blocks"] > 0, s


@pytest.mark.parametrize("chain,k,size,stat", [("@focal=5", 4, 5, "mean"),
                                               ("@focal=3,max", 5, 3,
                                                "max")])
def test_focal_overview_equals_numpy_reference(mount_factory, bigsrc,
                                               tmp_path, chain, k, size,
                                               stat):
    """A focal level: the brute-force reference (tests/mount/rfsref.py) on
    the source averaged onto the level grid by gdalwarp -r average (level
    4: 2^4 divides the source's 6000 cells; level 5 does not)."""
    import rfsref
    m = mount_factory(src=bigsrc)
    path = m.path(NAME + chain)
    avg = str(tmp_path / "avg.vrt")
    run("gdalwarp", "-q", "-of", "VRT", "-r", "average", "-wm", "64",
        "-et", "0.125", *level_grid(path, k), str(bigsrc / NAME), avg)
    ref = rfsref.focal(array(avg).astype(np.float64), None, size, stat)
    got = ovr_array(path, k).astype(np.float64)
    if stat == "max":
        np.testing.assert_array_equal(got, ref.astype(np.float32))
    else:
        np.testing.assert_allclose(got, ref, rtol=1e-6, atol=1e-4)
    assert m.stats()["lazy_blocks"] == 0


def test_large_output_without_georeferencing_is_computed_whole(
        mount_factory, tmp_path):
    """Levels need a north-up grid (window.h): a large output of a source
    without a geotransform has no overviews and is not lazy (computed
    whole, as any output up to the threshold), and it is served."""
    d = tmp_path / "plainsrc"
    d.mkdir()
    ds = gdal.GetDriverByName("GTiff").Create(str(d / "plain.tif"), 5800,
                                              5800, 1, gdal.GDT_Byte,
                                              ["TILED=YES"])
    a = (np.arange(5800 * 5800, dtype=np.uint32).reshape(5800, 5800)
         % 251).astype(np.uint8)
    ds.GetRasterBand(1).WriteArray(a)
    ds = None
    m = mount_factory(src=d)
    path = m.path("plain.tif@reclass=0:100:1,100:inf:2")
    info = gdal.Info(path, format="json")
    assert not info["bands"][0].get("overviews")
    assert "user.rasterfs.blocks" not in os.listxattr(path)
    want = np.where(a < 100, 1, 2)
    np.testing.assert_array_equal(array(path, (5790, 5790, 10, 10)),
                                  want[5790:, 5790:])
    s = m.stats()
    assert s["lazy_opens"] == 0 and s["lazy_blocks"] == 0, s
