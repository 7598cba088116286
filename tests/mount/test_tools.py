"""Ordinary programs on names that were never opened before: each must see
the finished output (the open waits for the job, then the exact size)."""

import json
import os
import shutil
import subprocess

import numpy as np
import pytest

import rfsref
from rfsmount import read_bytes

SRC = "srtm1_N48W125_crop.tif"
PY = "/usr/bin/python3"  # Debian's, with rasterio


def run(cmd, env=None, timeout=300):
    e = dict(os.environ)
    e.update(env or {})
    r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       env=e, timeout=timeout)
    assert r.returncode == 0, "%s failed (%d):\n%s" % (
        " ".join(cmd), r.returncode, r.stderr.decode(errors="replace"))
    return r


def _expect(mount, size, stat, shape="square"):
    """Reference array of SRC@focal=size,stat,shape."""
    b = rfsref.Raster(mount.src / SRC).band(1)
    return rfsref.focal(b["array"], b["nodata"], size, stat, shape)


def _no_aux(mount, name):
    assert not os.path.exists(mount.path(name + ".aux.xml"))
    left = [f for f in os.listdir(str(mount.src)) if f.endswith(".aux.xml")]
    assert not left, "aux.xml written into the source: %r" % left


def test_gdalinfo_on_new_name(mount):
    name = SRC + "@focal=3,max"
    s0 = mount.stats()["jobs_started"]
    r = run(["gdalinfo", "-json", mount.path(name)])
    info = json.loads(r.stdout)
    assert info["size"] == [600, 600]
    assert info["driverShortName"] == "GTiff"
    band = info["bands"][0]
    assert band["type"] == "Int16" and band["noDataValue"] == -32768
    assert band["block"] == [256, 256]
    assert "EPSG\",4326" in info["coordinateSystem"]["wkt"]
    assert mount.stats()["jobs_started"] == s0 + 1
    _no_aux(mount, name)


def test_gdalinfo_without_readdir_probes_siblings(mount):
    """With GDAL_DISABLE_READDIR_ON_OPEN GDAL stats X.aux.xml, X.ovr, ...
    one by one: each must be a quick ENOENT and start no job."""
    name = SRC + "@focal=3,min"
    s0 = mount.stats()["jobs_started"]
    run(["gdalinfo", mount.path(name)],
        env={"GDAL_DISABLE_READDIR_ON_OPEN": "YES"})
    assert mount.stats()["jobs_started"] == s0 + 1
    _no_aux(mount, name)


def test_gdalinfo_stats_writes_no_aux_xml(mount):
    """Outputs carry STATISTICS_*: gdalinfo -stats (and QGIS) need not
    compute them, so nothing tries to write X.aux.xml on the read-only
    mount."""
    name = SRC + "@focal=5,mean,circle"
    r = run(["gdalinfo", "-json", "-stats", mount.path(name)])
    err = r.stderr.decode(errors="replace")
    assert "aux.xml" not in err and "Warning" not in err, err
    md = json.loads(r.stdout)["bands"][0]["metadata"][""]
    for k in ("STATISTICS_MINIMUM", "STATISTICS_MAXIMUM", "STATISTICS_MEAN",
              "STATISTICS_STDDEV"):
        assert k in md, md
    ref = _expect(mount, 5, "mean", "circle")
    v = ref[~np.isnan(ref)].astype(np.float32).astype(np.float64)
    assert float(md["STATISTICS_MINIMUM"]) == pytest.approx(v.min(), abs=1e-3)
    assert float(md["STATISTICS_MAXIMUM"]) == pytest.approx(v.max(), abs=1e-3)
    assert float(md["STATISTICS_MEAN"]) == pytest.approx(v.mean(), rel=1e-4)
    assert float(md["STATISTICS_STDDEV"]) == pytest.approx(v.std(), rel=1e-3)
    _no_aux(mount, name)


def test_gdal_translate_on_new_name(mount, tmp_path):
    name = SRC + "@focal=3,median"
    out = tmp_path / "t.tif"
    run(["gdal_translate", "-q", mount.path(name), str(out)])
    b = rfsref.Raster(out).band(1)
    assert b["type"] == rfsref.focal_out_type(rfsref.gdal.GDT_Int16, "median")
    rfsref.assert_band_equals(b, _expect(mount, 3, "median"), True)
    _no_aux(mount, name)


def test_cp_on_new_name(mount, tmp_path):
    name = SRC + "@focal=3,range"
    out = tmp_path / "c.tif"
    run(["cp", mount.path(name), str(out)])
    data = out.read_bytes()
    assert len(data) > 0
    assert data == read_bytes(mount.path(name))
    assert os.stat(mount.path(name)).st_size == len(data)
    rfsref.assert_band_equals(rfsref.Raster(data).band(1),
                              _expect(mount, 3, "range"), True)


def test_rasterio_on_new_name(mount, tmp_path):
    name = SRC + "@focal=3,std"
    npy = tmp_path / "r.npy"
    code = ("import sys, numpy, rasterio\n"
            "with rasterio.open(sys.argv[1]) as r:\n"
            "    a = r.read(1, masked=True)\n"
            "    assert r.crs.to_epsg() == 4326, r.crs\n"
            "    assert r.width == 600 and r.height == 600\n"
            "    numpy.save(sys.argv[2], a.filled(numpy.nan).astype('f8'))\n")
    run([PY, "-c", code, mount.path(name), str(npy)])
    got = np.load(npy)
    ref = _expect(mount, 3, "std")
    assert (np.isnan(got) == np.isnan(ref)).all()
    ok = ~np.isnan(ref)
    np.testing.assert_allclose(got[ok], ref[ok], rtol=1e-5, atol=1e-3)
    _no_aux(mount, name)


def test_demo_name(mount):
    """The name scripts/demo.sh shows."""
    name = SRC + "@proj=EPSG:3857@focal=5,max"
    r = run(["gdalinfo", "-stats", mount.path(name)])
    assert b"Size is" in r.stdout
    assert b"STATISTICS_MAXIMUM" in r.stdout
    _no_aux(mount, name)


@pytest.mark.skipif(shutil.which("strace") is None, reason="no strace")
def test_cp_under_strace_sees_the_exact_size_before_open(mount, tmp_path):
    """cp stats the name (never computed: its exact size all the same,
    issue 10), opens it (the job runs), fstats the open file (the same
    size) and copies every byte."""
    import re
    name = SRC + "@focal=7,sum"
    path = mount.path(name)
    out = tmp_path / "s.tif"
    log = tmp_path / "strace.txt"
    run(["strace", "-f", "-s", "4096", "-e",
         "trace=openat,stat,newfstatat,fstat,statx", "-o", str(log),
         "cp", path, str(out)])
    data = out.read_bytes()
    assert data == read_bytes(path)
    assert rfsref.Raster(data).band(1)["type"] == rfsref.gdal.GDT_Float64
    trace = log.read_text()
    opened = re.search(r'openat\(AT_FDCWD, "%s", [^)]*\) = (\d+)'
                       % re.escape(path), trace)
    assert opened, trace
    before = [int(x) for x in re.findall(
        r'(?:newfstatat|stat)\(AT_FDCWD, "%s", \{[^}]*st_size=(\d+)'
        % re.escape(path), trace[:opened.start()])]
    after = [int(x) for x in re.findall(
        r'(?:fstat\(%s, |newfstatat\(%s, "", )\{[^}]*st_size=(\d+)'
        % (opened.group(1), opened.group(1)), trace[opened.end():])]
    assert before and before[0] == len(data), "stat before open: %r" % before
    assert after and after[0] == len(data), "fstat after open: %r" % after
