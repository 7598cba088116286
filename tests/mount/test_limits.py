"""max_pixels holds for every step: an output over the limit is refused
with EFBIG / RFS-E106 before any pixel, and the error names the step and
its grid.  The oracles are the grids GDAL's own tools make (gdalwarp -tr,
-ts; gdal_translate -projwin), checked here with the GDAL bindings; the
daemon's describe shares no code with them."""

import errno
import json
import os
import subprocess
import time

import pytest
from osgeo import gdal

from rfsmount import open_errno, read_bytes

LIMIT = 400000
# Every refusal must come well before a job could compute its pixels; the
# bound is generous (a loaded CI machine), the job's own elapsed time is
# checked too.
BOUND = 10.0

gdal.UseExceptions()


def _xattr(path, name):
    return os.getxattr(path, "user.rasterfs." + name).decode()


def _jobs(m):
    with open(m.mnt / ".rasterfs" / "jobs") as f:
        return [json.loads(line) for line in f if line.strip()]


def _job(m, name):
    js = [j for j in _jobs(m) if j["path"] == name]
    return max(js, key=lambda j: j["id"]) if js else None


@pytest.fixture(scope="module")
def limited(tmp_path_factory):
    """A mount with max_pixels=400000 over a source holding a.tif, a
    600 x 600 Float32 raster in UTM metres made by gdal_translate."""
    import rfsmount
    base = tmp_path_factory.mktemp("limits")
    src = base / "src"
    rfsmount.copy_data(src)
    subprocess.run(["gdal_translate", "-q", "-outsize", "600", "600",
                    str(src / "opengeos_dtm.tif"), str(src / "a.tif")],
                   check=True)
    m = rfsmount.Mount(src, base / "mnt", base / "cache", base / "log", 2,
                       ["max_pixels=%d" % LIMIT])
    m.start()
    try:
        yield m, src
    finally:
        m.stop()


def _refused(m, name, step_text, w, h):
    """name fails at open with EFBIG within BOUND s; the error xattr names
    RFS-E106, the step's canonical text and the grid W x H."""
    before = m.stats()
    t0 = time.monotonic()
    e = open_errno(m.path(name))
    took = time.monotonic() - t0
    assert e == errno.EFBIG, (name, errno.errorcode.get(e, e))
    assert took < BOUND, (name, took)
    err = _xattr(m.path(name), "error")
    assert err.startswith("RFS-E106 "), err
    assert "(%s)" % step_text in err, err
    assert "%d x %d = %d pixels" % (w, h, w * h) in err, err
    assert "over max_pixels=%d" % LIMIT in err, err
    j = _job(m, name)
    assert j and j["state"] == "failed" and j["error"] == "RFS-E106", j
    assert j["elapsed"] < BOUND, j
    after = m.stats()
    assert after["store_objects"] == before["store_objects"]
    return err


def _warp_grid(src, *args):
    """The grid gdalwarp makes (a VRT: no pixel is computed)."""
    ds = gdal.Warp("", str(src), options=["-of", "VRT"] + list(args))
    return ds.RasterXSize, ds.RasterYSize


def test_size_over_limit(limited):
    m, src = limited
    _refused(m, "a.tif@size=2000,2000", "size=2000,2000,near", 2000, 2000)


def test_size_beyond_gdal(limited):
    """1e6 x 1e6 used to reach GDAL's disk check (RFS-E300)."""
    m, src = limited
    _refused(m, "a.tif@size=1000000,1000000", "size=1000000,1000000,near",
             1000000, 1000000)


def test_res_over_limit(limited):
    m, src = limited
    w, h = _warp_grid(src / "a.tif", "-tr", "0.1", "0.1")
    assert w * h > LIMIT
    _refused(m, "a.tif@res=0.1", "res=0.1,near", w, h)


def test_proj_res_over_limit(limited):
    m, src = limited
    w, h = _warp_grid(src / "a.tif", "-t_srs", "EPSG:4326",
                      "-tr", "0.000005", "0.000005")
    assert w * h > LIMIT
    _refused(m, "a.tif@proj=EPSG:4326,res=0.000005",
             "proj=EPSG:4326,res=5e-06,near", w, h)


def test_clip_over_limit(limited):
    """A window far larger than the raster: gdal_translate -projwin makes
    one as large as the window."""
    m, src = limited
    ds = gdal.Translate("", str(src / "a.tif"), options=[
        "-of", "VRT", "-projwin", "300000", "4320000", "340000",
        "4280000"])
    w, h = ds.RasterXSize, ds.RasterYSize
    assert w * h > LIMIT
    _refused(m, "a.tif@clip=300000,4280000,340000,4320000",
             "clip=300000,4280000,340000,4320000", w, h)


def test_later_step_named(limited):
    """The step over the limit is named by its position in the chain."""
    m, src = limited
    err = _refused(m, "a.tif@focal=3@size=1000,1000,average@focal=3",
                   "size=1000,1000,average", 1000, 1000)
    assert "output of step 2 " in err, err


def test_under_limit_served(limited):
    m, src = limited
    for name, want in [
            ("a.tif@size=500,500", (500, 500)),
            ("a.tif@res=2", _warp_grid(src / "a.tif", "-tr", "2", "2")),
            ("a.tif@clip=321600,4297600,321800,4297800@focal=3", None),
            ("a.tif@proj=EPSG:4326", None)]:
        data = read_bytes(m.path(name))
        assert data, name
        ds = gdal.Open(str(m.path(name)))
        assert ds.RasterXSize * ds.RasterYSize <= LIMIT, name
        if want:
            assert (ds.RasterXSize, ds.RasterYSize) == want, name
        ds = None
