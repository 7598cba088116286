"""A read-only mount with a way forward (src/fs_hint.c): a program that
tries to write beside an output gets EROFS as before, and the log says
what to use instead (RFS-E107), once per name per minute; a program that
only looks (stat, gdalinfo) gets no hint.  The suggested name is checked
with GDAL's own tools."""

import json
import os
import re
import subprocess

import pytest

from rfsmount import read_bytes

SRC = "srtm1_N48W125_crop.tif"


def _run(cmd, env=None):
    e = dict(os.environ)
    e.update(env or {})
    return subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          env=e, timeout=300)


def _hints(m, name=""):
    return [ln for ln in m.log_text(limit=10 ** 7).splitlines()
            if "RFS-E107" in ln and name in ln]


def test_gdaladdo_gets_erofs_and_the_cog_name(mount_factory):
    m = mount_factory()
    name = SRC + "@focal=3"
    r = _run(["gdaladdo", m.path(name), "2", "4"])
    assert r.returncode != 0
    assert b".ovr" in r.stderr, r.stderr
    hints = _hints(m, name + ".ovr:")
    assert len(hints) == 1, m.log_text()
    cog = SRC + "@focal=3,mean,square@fmt=cog"
    assert "'%s'" % cog in hints[0], hints
    # once per name per minute: a retry adds no line
    r = _run(["gdaladdo", m.path(name), "2"])
    assert r.returncode != 0
    assert len(_hints(m, name + ".ovr:")) == 1
    assert not list(m.src.glob("*.ovr")), "written into the source"
    # the way forward works: a COG whose overviews GDAL lists, with the
    # output's pixels at full resolution
    info = json.loads(_run(["gdalinfo", "-json", m.path(cog)]).stdout)
    assert info["metadata"]["IMAGE_STRUCTURE"]["LAYOUT"] == "COG", info
    assert len(info["bands"][0]["overviews"]) >= 1, info["bands"][0]
    from osgeo import gdal
    a = gdal.Open(m.path(name)).ReadAsArray()
    b = gdal.Open(m.path(cog)).ReadAsArray()
    assert (a == b).all()


def test_gdaladdo_on_a_small_cog(mount_factory):
    """A COG under 512 pixels has no overviews (GDAL's COG driver makes
    none), so gdaladdo tries X.ovr: the hint says what it is.  (On a larger
    COG, GDAL itself refuses: "Cannot add external overviews when there
    are already internal overviews".)"""
    m = mount_factory()
    name = "opengeos_dtm.tif@focal=3@fmt=cog"
    assert read_bytes(m.path(name))
    assert _run(["gdaladdo", m.path(name), "2"]).returncode != 0
    hints = _hints(m, name + ".ovr:")
    assert len(hints) == 1 and "is a COG" in hints[0], m.log_text()


def test_gdalinfo_hist_gets_the_statistics_hint(mount_factory):
    m = mount_factory()
    name = SRC + "@focal=3,max"
    r = _run(["gdalinfo", "-hist", m.path(name)])
    assert r.returncode == 0 and b"aux.xml" in r.stderr, r.stderr
    hints = _hints(m, name + ".aux.xml:")
    assert len(hints) == 1, m.log_text()
    assert "statistics are in the file already" in hints[0]
    assert "cp '%s' DIR/" % name in hints[0]


@pytest.mark.parametrize("how", ["gdalinfo", "no-readdir", "stat", "rasterio"])
def test_readers_get_no_hint(mount_factory, how):
    m = mount_factory()
    name = SRC + "@focal=5,min"
    path = m.path(name)
    if how == "gdalinfo":
        assert _run(["gdalinfo", "-stats", path]).returncode == 0
    elif how == "no-readdir":  # GDAL stats every sibling one by one
        assert _run(["gdalinfo", path],
                    env={"GDAL_DISABLE_READDIR_ON_OPEN": "YES"}
                    ).returncode == 0
    elif how == "stat":
        for sfx in (".ovr", ".aux.xml", ".msk"):
            assert not os.path.exists(path + sfx)
            with pytest.raises(FileNotFoundError):
                open(path + sfx, "rb")
    else:
        code = ("import sys, rasterio\n"
                "with rasterio.open(sys.argv[1]) as r:\n"
                "    r.read(1); r.overviews(1)\n")
        assert _run(["/usr/bin/python3", "-c", code, path]).returncode == 0
    assert not _hints(m), m.log_text()


def test_png_statistics_come_from_its_aux_xml(mount_factory):
    """A PNG output's statistics are in the X.aux.xml the mount serves
    beside it (fs_sidecar.c): gdalinfo -stats reads them, computes nothing
    and tries to write nothing.  gdalinfo -hist computes a histogram and
    tries to save it in X.aux.xml: EROFS, and the hint says the .aux.xml
    holds the CRS, geotransform and statistics, naming the GeoTIFF of the
    same chain, which carries them too (checked with gdalinfo)."""
    m = mount_factory()
    name = SRC + "@hillshade.png"
    r = _run(["gdalinfo", "-stats", m.path(name)])
    assert r.returncode == 0 and b"aux.xml" not in r.stderr, r.stderr
    assert b"STATISTICS_MEAN=" in r.stdout, r.stdout
    assert not _hints(m), m.log_text()
    r = _run(["gdalinfo", "-hist", m.path(name)])
    assert r.returncode == 0 and b"aux.xml" in r.stderr, r.stderr
    hints = _hints(m, name + ".aux.xml:")
    assert len(hints) == 1 and "already holds the PNG's CRS, geotransform " \
        "and band statistics" in hints[0], m.log_text()
    m_ = re.search(r"'(%s@hillshade=[^']*)'" % re.escape(SRC), hints[0])
    assert m_, hints
    gtiff = m_.group(1)
    r = _run(["gdalinfo", "-json", "-stats", m.path(gtiff)])
    assert r.returncode == 0 and b"aux.xml" not in r.stderr, r.stderr
    md = json.loads(r.stdout)["bands"][0]["metadata"][""]
    assert "STATISTICS_MAXIMUM" in md, md


def test_qgis_closing_a_png_layer_writes_nothing(mount_factory):
    """QGIS 3.22 takes a PNG's stretch from the statistics of the served
    X.aux.xml (GDAL hands them over without computing), so, as with a
    GeoTIFF output, closing the layer tries to write nothing beside it and
    nothing is hinted (until issue 12 item 3 QGIS computed them and GDAL
    tried X.aux.xml at close: QGIS.md)."""
    import qgisutil
    why = qgisutil.unavailable_reason()
    if why:
        pytest.skip(why)
    m = mount_factory()
    name = SRC + "@slope.png"
    r = qgisutil.run(m.path(name), trace=True)
    assert r["valid"], r
    assert not r["trace"]["creates"], r["trace"]["creates"]
    assert not _hints(m), m.log_text()
    assert not [g for g in r["gdal_messages"] if "aux.xml" in g["text"]], \
        r["gdal_messages"]
