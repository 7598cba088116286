"""focal=SIZE[,STAT][,SHAPE] against the brute-force reference in rfsref."""

import pytest

import rfsref
from rfsmount import read_bytes

NODATA_SOURCES = ("srtm1_N48W125_crop.tif", "opengeos_dtm.tif")

# Every STAT x SHAPE on both rasters with nodata (Int16 geographic, Float32
# projected), window 5 (the circle has 13 cells).
ALL = [(src, 5, stat, shape) for src in NODATA_SOURCES
       for stat in rfsref.STATS for shape in rfsref.SHAPES]

# Other windows and inputs: large windows (running sums, van Herk / Gil-
# Werman), rasters without nodata, six Byte bands.
MORE = [
    ("srtm1_N48W125_crop.tif", 3, "mean", "square"),
    ("srtm1_N48W125_crop.tif", 9, "min", "square"),
    ("srtm1_N48W125_crop.tif", 11, "max", "circle"),
    ("srtm1_N48W125_crop.tif", 15, "mean", "square"),
    ("srtm1_N48W125_crop.tif", 15, "std", "circle"),
    ("srtm1_N48W125_crop.tif", 7, "median", "square"),
    ("opengeos_dtm.tif", 21, "sum", "square"),
    ("opengeos_dtm.tif", 9, "range", "circle"),
    ("stars_olinda_dem_utm25s.tif", 3, "mean", "square"),
    ("stars_olinda_dem_utm25s.tif", 5, "median", "circle"),
    ("stars_L7_ETMs.tif", 3, "max", "square"),
    ("stars_L7_ETMs.tif", 3, "mean", "circle"),
    ("rgbify_elev.tif", 31, "mean", "square"),
    ("rgbify_elev.tif", 31, "max", "square"),
]


def _check(mount, src, size, stat, shape, spelling=None):
    name = "%s@focal=%s" % (src, spelling or "%d,%s,%s" % (size, stat, shape))
    got = rfsref.Raster(read_bytes(mount.path(name), timeout=300))
    rfsref.assert_focal(got, rfsref.Raster(mount.src / src), size, stat, shape)
    return got


@pytest.mark.parametrize("src,size,stat,shape", ALL,
                         ids=["%s-%d-%s-%s" % c for c in ALL])
def test_focal_every_stat_and_shape(mount, src, size, stat, shape):
    _check(mount, src, size, stat, shape)


@pytest.mark.parametrize("src,size,stat,shape", MORE,
                         ids=["%s-%d-%s-%s" % c for c in MORE])
def test_focal_more_windows(mount, src, size, stat, shape):
    _check(mount, src, size, stat, shape)


def test_focal_defaults(mount):
    """focal=3 is a 3x3 square mean; focal=5,circle a 5x5 circle mean."""
    _check(mount, "opengeos_dtm.tif", 3, "mean", "square", spelling="3")
    _check(mount, "opengeos_dtm.tif", 5, "max", "square", spelling="5,max")
    _check(mount, "srtm1_N48W125_crop.tif", 5, "mean", "circle",
           spelling="5,circle")


def test_focal_output_carries_statistics(mount):
    got = _check(mount, "srtm1_N48W125_crop.tif", 5, "std", "square")
    import numpy as np
    b = got.band(1)
    v = b["array"][rfsref.valid_mask(b["array"], b["nodata"])].astype(float)
    md = b["metadata"]
    for k in ("STATISTICS_MINIMUM", "STATISTICS_MAXIMUM", "STATISTICS_MEAN",
              "STATISTICS_STDDEV"):
        assert k in md, "no %s in %r" % (k, md)
    assert float(md["STATISTICS_MINIMUM"]) == pytest.approx(v.min(), abs=1e-3)
    assert float(md["STATISTICS_MAXIMUM"]) == pytest.approx(v.max(), abs=1e-3)
    assert float(md["STATISTICS_MEAN"]) == pytest.approx(v.mean(), rel=1e-4)
    assert float(md["STATISTICS_STDDEV"]) == pytest.approx(np.std(v),
                                                           rel=1e-3)


@pytest.fixture(scope="module")
def derived(mount):
    """Inputs made at run time in the source dir: other data types, and NaN
    cells (with a nodata value, and with NaN as the nodata value)."""
    import numpy as np
    import subprocess
    from osgeo import gdal
    src = mount.src
    for ot in ("Int32", "Float64", "UInt16"):
        subprocess.run(["gdal_translate", "-q", "-ot", ot,
                        "--config", "CPL_LOG", "/dev/null",
                        "-srcwin", "0", "250", "200", "150",
                        str(src / "srtm1_N48W125_crop.tif"),
                        str(src / ("d_%s.tif" % ot.lower()))], check=True)
    ds = gdal.Open(str(src / "opengeos_dtm.tif"))
    a = ds.GetRasterBand(1).ReadAsArray()
    rng = np.random.default_rng(5)
    a[rng.random(a.shape) < 0.05] = np.nan          # scattered NaN
    a[100:120, 30:60] = np.nan                      # a NaN hole
    drv = gdal.GetDriverByName("GTiff")
    for name, nd in (("d_nan.tif", -9999.0), ("d_nanodata.tif", float("nan"))):
        b = a.copy()
        if np.isnan(nd):
            b[b == -9999] = np.nan
        out = drv.CreateCopy(str(src / name), ds)
        out.GetRasterBand(1).WriteArray(b)
        out.GetRasterBand(1).SetNoDataValue(nd)
        out = None
    return src


DERIVED = [
    ("d_int32.tif", 5, "mean", "square"),    # Float64 out
    ("d_int32.tif", 5, "min", "circle"),     # Int32 out
    ("d_int32.tif", 3, "median", "square"),  # Float64 out
    ("d_float64.tif", 5, "std", "square"),   # Float64 out
    ("d_float64.tif", 5, "max", "square"),   # Float64 out
    ("d_uint16.tif", 5, "mean", "circle"),   # Float32 out
    # UInt16 with nodata 0 (gdal_translate clamps -32768 to 0): a range or
    # std of 0 is a valid output and must not read as nodata.
    ("d_uint16.tif", 3, "range", "square"),  # Float32 out
    ("d_uint16.tif", 3, "std", "circle"),    # Float32 out
] + [("d_nan.tif", 5, stat, shape) for stat in rfsref.STATS
     for shape in rfsref.SHAPES] + [
    ("d_nanodata.tif", 5, "mean", "square"),
    ("d_nanodata.tif", 5, "max", "circle"),
    ("d_nanodata.tif", 5, "median", "square"),
]


@pytest.mark.parametrize("src,size,stat,shape", DERIVED,
                         ids=["%s-%d-%s-%s" % c for c in DERIVED])
def test_focal_types_and_nan(derived, mount, src, size, stat, shape):
    _check(mount, src, size, stat, shape)


# Windows as tall as or taller than the daemon's row strips, up to the
# largest allowed (255; 63 for median), checked at sampled points.
BIG = [
    (255, "mean", "square"),
    (255, "max", "circle"),
    (201, "std", "square"),
    (129, "min", "square"),
    (127, "sum", "circle"),
    (129, "range", "circle"),
    (63, "median", "circle"),
    (63, "median", "square"),
]


@pytest.fixture(scope="module")
def big_source(mount):
    """The srtm crop upsampled to 900 x 900 (Int16, nodata in rows < ~450)."""
    import subprocess
    p = mount.src / "big_srtm.tif"
    subprocess.run(["gdalwarp", "-q", "-ts", "900", "900", "-r", "near",
                    str(mount.src / "srtm1_N48W125_crop.tif"), str(p)],
                   check=True)
    return p


@pytest.mark.slow
@pytest.mark.parametrize("size,stat,shape", BIG,
                         ids=["%d-%s-%s" % c for c in BIG])
def test_focal_big_windows(big_source, mount, size, stat, shape):
    import random
    import numpy as np
    name = "%s@focal=%d,%s,%s" % (big_source.name, size, stat, shape)
    got = rfsref.Raster(read_bytes(mount.path(name), timeout=600))
    src = rfsref.Raster(big_source)
    rfsref.assert_same_grid(got, src)
    ib, ob = src.band(1), got.band(1)
    assert ob["type"] == rfsref.focal_out_type(ib["type"], stat)
    h, w = ib["array"].shape
    rnd = random.Random(size)
    pts = [(0, 0), (0, w - 1), (h - 1, 0), (h - 1, w - 1), (h // 2, w // 2)]
    pts += [(y, rnd.randrange(w)) for y in range(300, 600, 7)]  # nodata edge
    pts += [(rnd.randrange(h), x) for x in (0, 1, size // 2, w - 2, w - 1)]
    pts += [(rnd.randrange(h), rnd.randrange(w)) for _ in range(150)]
    want = rfsref.focal_at(ib["array"], ib["nodata"], size, stat, shape, pts)
    have = np.array([ob["array"][p] for p in pts])
    hvalid = rfsref.valid_mask(have, ob["nodata"])
    assert (hvalid == ~np.isnan(want)).all(), "nodata differs at %r" % (
        [p for p, a, b in zip(pts, hvalid, want) if a == np.isnan(b)][:5],)
    ok = ~np.isnan(want)
    if stat in rfsref.EXACT_STATS:
        np.testing.assert_array_equal(
            have[ok], rfsref.to_type(want[ok], ob["type"]))
    else:
        rtol, atol = rfsref.FOCAL_TOL[stat]
        np.testing.assert_allclose(have[ok], want[ok], rtol=rtol,
                                   atol=max(atol, 1e-3))
