"""QGIS 3.22 (Debian 12's python3-qgis, headless) on a mount: layers added
from virtual outputs, as a user adds them.

QGIS runs in a child process with a hard time limit (qgisutil.py).  Oracles
are GDAL's reading of the same files (CRS, geotransform, size, pixels) and
of the source (a hillshade keeps its source's grid, a PNG's world file must
give the source's extent); the bytes QGIS read, the files it tried to create
and what GDAL printed come from strace and the child's stderr.  No timing is
asserted (QGIS.md has the measurements)."""

import os
import stat
import warnings

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view
import pytest
from osgeo import gdal

import qgisutil
import rfsmount
from rfsmount import read_bytes

gdal.UseExceptions()
SRC = "srtm1_N48W125_crop.tif"
MULTI = "stars_L7_ETMs.tif"

_why = qgisutil.unavailable_reason()
if _why:
    print("test_qgis: skipped: %s (scripts/setup.sh installs python3-qgis)"
          % _why)
pytestmark = pytest.mark.skipif(bool(_why), reason=_why or "")


def _gdal(path):
    """GDAL's view of a file, PAM off (nothing read from or written beside
    it): authid, extent from the geotransform, size, pixels of band 1."""
    gdal.SetConfigOption("GDAL_PAM_ENABLED", "NO")
    try:
        ds = gdal.OpenEx(str(path), gdal.OF_RASTER | gdal.OF_READONLY)
        gt = ds.GetGeoTransform(can_return_null=True)
        srs = ds.GetSpatialRef()
        authid = None
        if srs is not None:
            srs.AutoIdentifyEPSG()
            authid = "%s:%s" % (srs.GetAuthorityName(None),
                                srs.GetAuthorityCode(None))
        w, h = ds.RasterXSize, ds.RasterYSize
        ext = None
        if gt is not None:
            xs = (gt[0], gt[0] + w * gt[1] + h * gt[2])
            ys = (gt[3], gt[3] + w * gt[4] + h * gt[5])
            ext = [min(xs), min(ys), max(xs), max(ys)]
        b = ds.GetRasterBand(1)
        tiles = None
        if ds.GetDriver().ShortName == "GTiff":
            bx, by = b.GetBlockSize()
            tiles = [(int(b.GetMetadataItem("BLOCK_OFFSET_%d_%d" % (i, j),
                                            "TIFF")),
                      int(b.GetMetadataItem("BLOCK_SIZE_%d_%d" % (i, j),
                                            "TIFF")))
                     for i in range((w + bx - 1) // bx)
                     for j in range((h + by - 1) // by)]
        return {"authid": authid, "extent": ext, "size": [w, h],
                "bands": ds.RasterCount, "array": b.ReadAsArray(),
                "nodata": b.GetNoDataValue(), "tiles": tiles}
    finally:
        gdal.SetConfigOption("GDAL_PAM_ENABLED", None)


def _close(a, b, rel=1e-9):
    return a is not None and b is not None and all(
        abs(x - y) <= rel * max(1.0, abs(x), abs(y)) for x, y in zip(a, b))


def _no_gdal_complaint(r):
    bad = [m for m in r["gdal_messages"]] + [
        m for m in r["messages"] if m["level"] in ("Warning", "Critical")]
    assert not bad, "QGIS/GDAL said: %r" % bad


def _children():
    return set(rfsmount.children(os.getpid()))


def test_never_computed_output_first_opened_by_qgis(mount, tmp_path):
    """The first reader of an output is QGIS: the layer is valid, one job
    serves all of QGIS's opens, it draws, it creates nothing beside the
    layer nor in the real $HOME (strace of the QGIS process) and no QGIS
    process is left behind."""
    name = SRC + "@proj=EPSG:3857@hillshade"
    path = mount.path(name)
    assert os.getxattr(path, "user.rasterfs.state") == b"absent"
    s0 = mount.stats()["jobs_started"]
    kids0 = _children()
    home = os.path.realpath(os.path.expanduser("~"))
    keep = tmp_path / "qgis"
    r = qgisutil.run(path, size=(300, 300), trace=True,
                     png=str(tmp_path / "first.png"), keep=str(keep),
                     watch=[str(mount.mnt), home])
    assert r["valid"], r["error"]
    assert mount.stats()["jobs_started"] == s0 + 1
    assert os.getxattr(path, "user.rasterfs.state") == b"done"
    ref = _gdal(path)
    assert r["crs"]["authid"] == ref["authid"] == "EPSG:3857"
    assert r["renders"][0]["nontransparent"] > 1000
    assert r["renders"][0]["distinct_colours"] > 20
    assert os.path.getsize(tmp_path / "first.png") > 0
    _no_gdal_complaint(r)
    assert r["trace"]["creates"] == [], \
        "created beside the layer or in $HOME: %r" % r["trace"]["creates"]
    assert r["trace"]["bytes"].get("render", 0) > 0
    # What QGIS writes went to the private HOME and profile instead.
    assert (keep / "profile" / "qgis.db").exists()
    assert (keep / "home" / ".cache").is_dir()
    assert not (_children() - kids0), "left running: %r" % (
        _children() - kids0)
    assert not os.path.exists("/proc/%d" % r["pid"])


@pytest.mark.parametrize("chain,crs", [
    ("@hillshade", "EPSG:4326"),
    ("@proj=EPSG:3857", "EPSG:3857"),
])
def test_computed_geotiff_output(mount, chain, crs):
    """A computed GeoTIFF output: QGIS's layer has GDAL's CRS, extent and
    size, takes its stretch from the statistics the file carries (reading
    no whole tile when added), tries to write nothing beside it, hears no
    complaint from GDAL, and draws exactly the file's values."""
    name = SRC + chain
    path = mount.path(name)
    read_bytes(path)  # computed before QGIS comes
    ref = _gdal(path)
    w, h = ref["size"]
    r = qgisutil.run(path, size=(w, h), trace=True)
    assert r["valid"], r["error"]
    assert r["crs"]["valid"] and r["crs"]["authid"] == ref["authid"] == crs
    assert _close(r["extent"], ref["extent"]), (r["extent"], ref["extent"])
    assert [r["width"], r["height"]] == ref["size"]
    assert r["band_count"] == ref["bands"]
    _no_gdal_complaint(r)
    tr = r["trace"]
    assert tr["creates"] == [], "QGIS tried to create %r" % tr["creates"]
    # Statistics from the file: no complete tile was read while adding.
    assert r["stats_source"] == "file", (r["renderer"], r["file_stats"])
    opened = [(off, n) for ph, p, off, n in tr["reads"]
              if ph == "open" and p == path]
    assert opened, "no read of %s while adding it" % path
    whole = [t for t in ref["tiles"] if any(
        off is not None and off <= t[0] and t[0] + t[1] <= off + n
        for off, n in opened)]
    assert not whole, "tiles read while adding: %r" % whole
    # The render at native size is the file's values, stretched min..max.
    out = r["renders"][0]
    assert out["errors"] == []
    assert out["nontransparent"] > 0.3 * w * h
    assert out["distinct_colours"] > 20


@pytest.mark.parametrize("chain", ["@hillshade", "@proj=EPSG:3857"])
def test_render_is_the_files_pixels(mount, tmp_path, chain):
    """QGIS's grey render of a computed output at its native size is GDAL's
    reading of the same file, stretched linearly between the statistics
    QGIS chose, nodata transparent.  QGIS's raster drawer is not an exact
    1:1 copy (measured: its blocks land up to one cell off, in the lower
    right quadrant of a 600 x 600 render), so each rendered pixel is held
    to the range of the expected values of its cell's 3 x 3 neighbourhood
    (+-1 grey level): enough to catch a zero, missing or misplaced tile."""
    path = mount.path(SRC + chain)
    ref = _gdal(path)
    w, h = ref["size"]
    png = str(tmp_path / "native.png")
    r = qgisutil.run(path, size=(w, h), png=png)
    assert r["renderer"]["type"] == "singlebandgray", r["renderer"]
    lo, hi = r["renderer"]["min"][0], r["renderer"]["max"][0]
    rgba = gdal.Open(png).ReadAsArray().astype(np.float64)
    a = ref["array"].astype(np.float64)
    valid = np.ones(a.shape, bool) if ref["nodata"] is None else \
        a != ref["nodata"]
    want = np.where(valid, np.clip((a - lo) * 255.0 / (hi - lo), 0, 255),
                    np.nan)
    win = sliding_window_view(np.pad(want, 1, constant_values=np.nan),
                              (3, 3))
    with warnings.catch_warnings():  # all-nodata windows give NaN
        warnings.simplefilter("ignore", RuntimeWarning)
        wmin = np.nanmin(win, axis=(2, 3))
        wmax = np.nanmax(win, axis=(2, 3))
    anyvalid = ~np.isnan(wmin)
    allvalid = ~np.isnan(win).any(axis=(2, 3))
    drawn = rgba[3] != 0
    assert not (drawn & ~anyvalid).any(), "drawn where all is nodata"
    assert not (~drawn & allvalid).any(), "transparent where all is data"
    assert np.array_equal(rgba[0], rgba[1]) and \
        np.array_equal(rgba[0], rgba[2])
    g = rgba[0][drawn]
    bad = (g < np.floor(wmin[drawn]) - 1) | (g > np.ceil(wmax[drawn]) + 1)
    assert not bad.any(), "%d of %d drawn pixels are not the file's" % (
        bad.sum(), bad.size)


def test_png_with_extension_placed_by_world_file(mount):
    """SRC@hillshade.png: QGIS (through GDAL) reads the world file the mount
    serves, so the layer has the source's extent and size, and draws."""
    path = mount.path(SRC + "@hillshade.png")
    src = _gdal(mount.src / SRC)
    r = qgisutil.run(path, size=(300, 300), trace=True)
    assert r["valid"], r["error"]
    assert _close(r["extent"], src["extent"]), (r["extent"], src["extent"])
    assert [r["width"], r["height"]] == src["size"]
    assert r["renders"][0]["nontransparent"] > 1000
    probes = [p["path"] for p in r["trace"]["probes"]]
    assert mount.path(SRC + "@hillshade.pgw") in probes


def test_png_with_extension_has_the_sources_crs(mount):
    """The CRS comes from the X.png.aux.xml the mount serves (and lists to
    the process that has X.png open: fs_sidecar.c)."""
    path = mount.path(SRC + "@hillshade.png")
    r = qgisutil.run(path, size=(200, 200))
    assert r["valid"], r["error"]
    assert r["crs"]["authid"] == _gdal(mount.src / SRC)["authid"]


@pytest.mark.parametrize("name", [SRC + "@hillshade@fmt=png",
                                  MULTI + "@fmt=png"])
def test_png_fmt_without_extension_is_georeferenced(mount, name):
    src = _gdal(mount.src / name.split("@")[0])
    r = qgisutil.run(mount.path(name), size=(200, 200))
    assert r["valid"], r["error"]
    assert r["renders"][0]["nontransparent"] > 1000
    assert r["crs"]["authid"] == src["authid"]
    assert _close(r["extent"], src["extent"])
    assert not [m for m in r["gdal_messages"] if m["level"] == "Critical"]


def test_band_description_names_step_and_source(mount):
    """The band says what it is, in the file (GDAL's description) and in
    QGIS's band name (layer properties, the identify tool, the renderer's
    band list).  QGIS names the layer from the file name, never from its
    content (QGIS.md), so the layer name is not asserted."""
    r = qgisutil.run(mount.path(SRC + "@hillshade"), size=(100, 100))
    assert r["valid"], r["error"]
    want = "hillshade=315,45,z=1 of " + SRC
    d = r["bands"][0].get("description") or ""
    assert d == want, d
    assert want in r["bands"][0]["display_name"], r["bands"][0]


def test_harness_kills_a_hung_qgis(tmp_path):
    """The harness itself: a layer whose open never returns (a FIFO with no
    writer) ends in QgisRunError at the time limit, with the QGIS process
    and everything it started gone."""
    fifo = tmp_path / "hang.tif"
    os.mkfifo(fifo)
    assert stat.S_ISFIFO(os.stat(fifo).st_mode)
    kids0 = _children()
    with pytest.raises(qgisutil.QgisRunError) as ei:
        qgisutil.run(fifo, timeout=20, trace=True)
    msg = str(ei.value)
    assert "timed out" in msg, msg
    assert not (_children() - kids0)
    # The child noted how far it got; QGIS was waiting in the open.
    assert "phase open" in msg, msg
