"""The steps of issue 3 against GDAL's own tools and plain references.

Terrain steps equal `gdaldem` with the same options, on a projected DEM and
on a geographic one (where rasterfs adds -s 111120 by itself); res and size
equal `gdalwarp`; clip, band, type and nodata equal `gdal_translate`; ndi
equals a numpy reference.  Every oracle command is run here, by the test,
with default options otherwise.  Bad arguments of every new step fail at
lookup with EINVAL and start no job.
"""

import errno
import os
import subprocess
import time

import numpy as np
import pytest
from osgeo import gdal, osr

import rfsref
from rfsmount import open_errno, read_bytes, stat_errno

gdal.UseExceptions()

PROJECTED = "opengeos_dtm.tif"        # NAD83 / UTM 18N, Float32
GEOGRAPHIC = "srtm1_N48W125_crop.tif"  # EPSG:4326, Int16
MULTI = "stars_L7_ETMs.tif"            # six Byte bands, UTM 25S


def run_tool(cmd):
    env = dict(os.environ, GDAL_PAM_ENABLED="NO")
    subprocess.run(cmd, check=True, env=env, timeout=300,
                   stdout=subprocess.DEVNULL)


def assert_same_raster(got, ref, what):
    """Same grid, CRS, band types, nodata and per-band checksums."""
    assert (got.xsize, got.ysize, got.count) == \
        (ref.xsize, ref.ysize, ref.count), what
    np.testing.assert_allclose(got.gt, ref.gt, rtol=1e-12, atol=0,
                               err_msg=what)
    a, b = osr.SpatialReference(), osr.SpatialReference()
    a.ImportFromWkt(got.wkt)
    b.ImportFromWkt(ref.wkt)
    assert a.IsSame(b), "%s: CRS differs" % what
    for i, (g, r) in enumerate(zip(got.bands, ref.bands), 1):
        assert g["type"] == r["type"], "%s band %d: type" % (what, i)
        assert g["nodata"] == r["nodata"], "%s band %d: nodata" % (what, i)
        assert g["checksum"] == r["checksum"], \
            "%s band %d: checksum %d, %s gives %d" % (
                what, i, g["checksum"], what, r["checksum"])
        np.testing.assert_array_equal(g["array"], r["array"], err_msg=what)


def get(mount, name):
    return rfsref.Raster(read_bytes(mount.path(name), timeout=300))


# -- terrain ------------------------------------------------------------

# (step as written in the name, gdaldem arguments before the files)
TERRAIN = [
    ("slope", ["slope"]),
    ("slope=percent", ["slope", "-p"]),
    ("aspect", ["aspect"]),
    ("hillshade", ["hillshade"]),
    ("hillshade=300,30,z=2", ["hillshade", "-az", "300", "-alt", "30",
                              "-z", "2"]),
    ("hillshade=alt=60,multidirectional", ["hillshade", "-multidirectional",
                                           "-alt", "60"]),
    ("roughness", ["roughness"]),
    ("tri", ["TRI"]),
    ("tpi", ["TPI"]),
]
SCALED = ("slope", "hillshade")   # the modes that use -s


@pytest.mark.parametrize("src", [PROJECTED, GEOGRAPHIC])
@pytest.mark.parametrize("step,args", TERRAIN, ids=[t[0] for t in TERRAIN])
def test_terrain_equals_gdaldem(mount, tmp_path, src, step, args):
    cmd = ["gdaldem"] + args + ["-q"]
    if src == GEOGRAPHIC and args[0] in SCALED:
        cmd += ["-s", "111120"]
    ref = tmp_path / "ref.tif"
    run_tool(cmd + [str(mount.src / src), str(ref)])
    got = get(mount, "%s@%s" % (src, step))
    assert_same_raster(got, rfsref.Raster(ref), " ".join(cmd))


def test_geographic_scale_matters(mount, tmp_path):
    """Without -s a degree DEM gives a different (wrong) slope: the
    comparison above would not notice a missing scale otherwise."""
    ref = tmp_path / "unscaled.tif"
    run_tool(["gdaldem", "slope", "-q", str(mount.src / GEOGRAPHIC),
              str(ref)])
    got = get(mount, GEOGRAPHIC + "@slope")
    assert got.band()["checksum"] != rfsref.Raster(ref).band()["checksum"]


# -- res, size, clip -------------------------------------------------------

# (source, step, oracle command before the files)
GRID = [
    (PROJECTED, "res=5,average", ["gdalwarp", "-tr", "5", "5", "-r",
                                  "average"]),
    (PROJECTED, "res=3", ["gdalwarp", "-tr", "3", "3", "-r", "near"]),
    (GEOGRAPHIC, "res=0.001,bilinear", ["gdalwarp", "-tr", "0.001", "0.001",
                                        "-r", "bilinear"]),
    (PROJECTED, "size=50,40,bilinear", ["gdalwarp", "-ts", "50", "40", "-r",
                                        "bilinear"]),
    (MULTI, "size=100,120,mode", ["gdalwarp", "-ts", "100", "120", "-r",
                                  "mode"]),
    (GEOGRAPHIC, "size=1000,700", ["gdalwarp", "-ts", "1000", "700"]),
    (GEOGRAPHIC, "clip=-124.2,48.45,-124.1,48.5",
     ["gdal_translate", "-projwin", "-124.2", "48.5", "-124.1", "48.45"]),
    (PROJECTED, "clip=321600.5,4297600,321900,4297900",
     ["gdal_translate", "-projwin", "321600.5", "4297900", "321900",
      "4297600"]),
    (GEOGRAPHIC, "clip=412000,5367500,418000,5372000,EPSG:32610",
     ["gdal_translate", "-projwin", "412000", "5372000", "418000", "5367500",
      "-projwin_srs", "EPSG:32610"]),
    # bands and types
    (MULTI, "band=3,2,1", ["gdal_translate", "-b", "3", "-b", "2", "-b",
                           "1"]),
    (MULTI, "band=6", ["gdal_translate", "-b", "6"]),
    (MULTI, "band=1,1", ["gdal_translate", "-b", "1", "-b", "1"]),
    (GEOGRAPHIC, "type=Byte", ["gdal_translate", "-ot", "Byte"]),
    (GEOGRAPHIC, "type=uint16", ["gdal_translate", "-ot", "UInt16"]),
    (PROJECTED, "type=Int16", ["gdal_translate", "-ot", "Int16"]),
    (MULTI, "type=Float64", ["gdal_translate", "-ot", "Float64"]),
    (MULTI, "nodata=0", ["gdal_translate", "-a_nodata", "0"]),
    (GEOGRAPHIC, "nodata=none", ["gdal_translate", "-a_nodata", "none"]),
    (PROJECTED, "nodata=-1.5", ["gdal_translate", "-a_nodata", "-1.5"]),
]


@pytest.mark.parametrize("src,step,cmd", GRID,
                         ids=["%s@%s" % (g[0], g[1]) for g in GRID])
def test_step_equals_gdal_tool(mount, tmp_path, src, step, cmd):
    ref = tmp_path / "ref.tif"
    if cmd[0] == "gdalwarp":
        rfsref.gdalwarp_vrt(cmd[1:], mount.src / src, ref)
    else:
        run_tool(cmd + ["-q", str(mount.src / src), str(ref)])
    got = get(mount, "%s@%s" % (src, step))
    assert_same_raster(got, rfsref.Raster(ref), " ".join(cmd))


def test_type_clamps(mount):
    """type=Byte of an Int16 DEM clamps (-5 -> 0, 300 -> 255); it does not
    wrap around (300 -> 44)."""
    src = rfsref.Raster(mount.src / GEOGRAPHIC).band()
    got = get(mount, GEOGRAPHIC + "@type=Byte").band()
    a = src["array"].astype(np.int64)
    valid = a != src["nodata"]
    assert (a[valid] > 255).any(), "the test needs values over 255"
    np.testing.assert_array_equal(got["array"][valid],
                                  np.clip(a[valid], 0, 255))


def test_clip_outside_fails(mount):
    """A window that misses the raster fails the job (EIO), where
    gdal_translate would write a raster of nodata as large as the window."""
    name = GEOGRAPHIC + "@clip=-124.9,48.1,-124.8,48.2"
    assert open_errno(mount.path(name)) == errno.EIO
    assert "does not overlap" in mount.log_text()


# -- ndi -----------------------------------------------------------------


def ndi_reference(a, b, nda=None, ndb=None):
    """(A - B) / (A + B) in float64; NaN where nodata or A + B == 0."""
    a = a.astype(np.float64)
    b = b.astype(np.float64)
    s = a + b
    bad = s == 0
    if nda is not None:
        bad |= a == nda
    if ndb is not None:
        bad |= b == ndb
    with np.errstate(divide="ignore", invalid="ignore"):
        r = (a - b) / s
    r[bad] = np.nan
    return r


def test_ndi_equals_reference(mount):
    src = rfsref.Raster(mount.src / MULTI)
    got = get(mount, MULTI + "@ndi=4,3")
    assert (got.xsize, got.ysize) == (src.xsize, src.ysize)
    np.testing.assert_allclose(got.gt, src.gt, rtol=1e-12, atol=0)
    assert got.count == 1 and got.band()["type"] == gdal.GDT_Float32
    assert got.band()["nodata"] == np.float32(-3.4028234663852886e+38)
    ref = ndi_reference(src.band(4)["array"], src.band(3)["array"],
                        src.band(4)["nodata"], src.band(3)["nodata"])
    rfsref.assert_band_equals(got.band(), ref, True, what="ndi=4,3")


def test_ndi_zero_sum_is_nodata(mount, tmp_path):
    """Cells with A + B == 0 and cells with nodata in A or B are nodata."""
    src = mount.src / "ndi_small.tif"
    drv = gdal.GetDriverByName("GTiff")
    ds = drv.Create(str(src), 4, 1, 2, gdal.GDT_Int16)
    ds.SetGeoTransform([0, 1, 0, 0, 0, -1])
    ds.GetRasterBand(1).WriteArray(np.array([[3, 0, -7, 5]], np.int16))
    ds.GetRasterBand(2).WriteArray(np.array([[1, 0, 7, 5]], np.int16))
    ds.GetRasterBand(1).SetNoDataValue(5)
    ds = None
    got = get(mount, "ndi_small.tif@ndi=1,2").band()
    nd = np.float32(-3.4028234663852886e+38)
    np.testing.assert_array_equal(got["array"],
                                  np.array([[0.5, nd, nd, nd]], np.float32))


def test_ndi_chain_same_as_bands(mount):
    """band=4,3@ndi=1,2 computes the same as ndi=4,3."""
    a = get(mount, MULTI + "@ndi=4,3").band()
    b = get(mount, MULTI + "@band=4,3@ndi=1,2").band()
    np.testing.assert_array_equal(a["array"], b["array"])


@pytest.mark.parametrize("name,needle", [
    (MULTI + "@band=7", "Band 7 requested, but only bands 1 to 6"),
    (MULTI + "@ndi=4,9", "ndi: band 9 does not exist; the input has 6"),
])
def test_missing_band_fails_job(mount, name, needle):
    assert open_errno(mount.path(name)) == errno.EIO
    assert needle in mount.log_text()


# -- bad arguments ---------------------------------------------------------

BAD = [
    "slope=radians", "slope=", "aspect=1", "roughness=3", "tri=riley",
    "tpi=x", "hillshade=360", "hillshade=315,91", "hillshade=315,45,z=0",
    "hillshade=315,multidirectional", "hillshade=sun=3",
    "res", "res=0", "res=-30", "res=30,bilnear", "res=near",
    "size=512", "size=0,512", "size=512,1.5", "size=512,512,512",
    "clip=0,0,100", "clip=100,0,0,50", "clip=0,50,100,50",
    "clip=0,0,100,50,EPSG:999999", "clip=0,0,100,50,7",
    "band=0", "band=1,x", "band=", "type=uint8", "type=Int61", "type",
    "nodata=abc", "nodata=inf", "ndi=4", "ndi=4,4", "ndi=4,3,2", "ndi=0,1",
]


def test_bad_arguments_fail_fast_and_start_no_job(mount):
    before = mount.stats()
    for step in BAD:
        name = mount.path(GEOGRAPHIC + "@" + step)
        t0 = time.monotonic()
        assert stat_errno(name) == errno.EINVAL, step
        assert open_errno(name) == errno.EINVAL, step
        assert time.monotonic() - t0 < 2.0, step
    after = mount.stats()
    assert after["jobs_started"] == before["jobs_started"]
