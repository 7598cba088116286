"""Output formats (fmt=gtiff|cog|png) and trailing extensions on a mount.

Oracles: GDAL's own COG validator (osgeo_utils.samples.
validate_cloud_optimized_geotiff, shipped by Debian's python3-gdal) plus an
independent check of the TIFF layout written here from the COG spec; the
GeoTIFF output of the same chain for the PNG's georeferencing (read by
GDAL's PNG driver through the served world file); a numpy stretch of the
GeoTIFF's values for the PNG's pixels; job counters for "one entry"."""

import errno
import os
import struct

import numpy as np
import pytest
from osgeo import gdal

from rfsmount import open_errno, read_bytes, stat_errno

gdal.UseExceptions()
SRC = "srtm1_N48W125_crop.tif"
MULTI = "stars_L7_ETMs.tif"


def _jobs(m):
    return m.stats()["jobs_started"]


def _open(path):
    # What a user's GDAL does: PAM on, directory listing on.
    return gdal.OpenEx(path, gdal.OF_RASTER)


def _tiff_ifds(data):
    """(offset of each IFD in order, {ifd index: {tag: (type, count,
    value-or-offset)}}) of a classic or BigTIFF file."""
    bo = "<" if data[:2] == b"II" else ">"
    magic = struct.unpack(bo + "H", data[2:4])[0]
    big = magic == 43
    off = struct.unpack(bo + ("Q" if big else "I"),
                        data[8:16] if big else data[4:8])[0]
    offs, tags = [], {}
    while off:
        offs.append(off)
        if big:
            n = struct.unpack(bo + "Q", data[off:off + 8])[0]
            p, esz = off + 8, 20
        else:
            n = struct.unpack(bo + "H", data[off:off + 2])[0]
            p, esz = off + 2, 12
        t = {}
        for i in range(n):
            e = data[p + i * esz:p + (i + 1) * esz]
            if big:
                tag, typ, cnt = struct.unpack(bo + "HHQ", e[:12])
                val = e[12:20]
            else:
                tag, typ, cnt = struct.unpack(bo + "HHI", e[:8])
                val = e[8:12]
            t[tag] = (typ, cnt, val)
        tags[len(offs) - 1] = t
        q = p + n * esz
        off = struct.unpack(bo + ("Q" if big else "I"),
                            data[q:q + (8 if big else 4)])[0]
    return bo, big, offs, tags


def _tag_values(data, bo, big, entry):
    typ, cnt, val = entry
    fmt = {3: "H", 4: "I", 16: "Q"}[typ]
    size = struct.calcsize(fmt) * cnt
    raw = val[:size] if size <= len(val) else \
        data[struct.unpack(bo + ("Q" if big else "I"), val)[0]:][:size]
    return struct.unpack(bo + fmt * cnt, raw)


def test_cog_is_valid_cloud_optimised(mount):
    name = mount.path(SRC + "@proj=EPSG:3857@fmt=cog")
    data = read_bytes(name)
    # GDAL's validator: ghost header, IFDs first, tiles in order, overviews.
    from osgeo_utils.samples import validate_cloud_optimized_geotiff as v
    warnings, errors, _ = v.validate(name, full_check=True)
    assert errors == [], errors
    # The same from the spec, independently: every IFD before any tile
    # data, the full-resolution image first, then overviews (subfile type
    # 1) each smaller, and each image's tiles stored in order after those
    # of the smaller images.
    bo, big, offs, tags = _tiff_ifds(data)
    assert len(offs) >= 2, "no overview"
    first_tile = min(min(_tag_values(data, bo, big, t[324]))
                     for t in tags.values())
    assert max(offs) < first_tile, "an IFD after tile data"
    widths = [_tag_values(data, bo, big, tags[i][256])[0]
              for i in range(len(offs))]
    assert widths == sorted(widths, reverse=True)
    assert 254 not in tags[0] or \
        _tag_values(data, bo, big, tags[0][254])[0] == 0
    for i in range(1, len(offs)):
        assert _tag_values(data, bo, big, tags[i][254])[0] == 1
    starts = []
    for i in range(len(offs)):
        o = [x for x in _tag_values(data, bo, big, tags[i][324]) if x]
        assert o == sorted(o), "tiles of image %d out of order" % i
        starts.append(o[0])
    assert starts == sorted(starts, reverse=True), \
        "smallest overview's data must come first"
    # Same pixels, grid and statistics as the GeoTIFF of the same chain.
    cog = _open(name)
    tif = _open(mount.path(SRC + "@proj=EPSG:3857"))
    assert cog.GetGeoTransform() == tif.GetGeoTransform()
    assert cog.GetSpatialRef().IsSame(tif.GetSpatialRef())
    np.testing.assert_array_equal(cog.ReadAsArray(), tif.ReadAsArray())
    b = cog.GetRasterBand(1)
    assert b.GetOverviewCount() >= 1
    assert b.GetMetadataItem("STATISTICS_MAXIMUM") == \
        tif.GetRasterBand(1).GetMetadataItem("STATISTICS_MAXIMUM")
    assert cog.GetMetadataItem("LAYOUT", "IMAGE_STRUCTURE") == "COG"


def _stretched(a, valid, lo, hi):
    t = np.clip((a.astype(np.float64) - lo) / (hi - lo), 0, 1)
    return np.where(valid, np.round(t * 255), 0).astype(np.uint8)


def test_png_georeferenced_by_world_file(mount):
    png = mount.path(SRC + "@focal=3.png")
    ds = _open(png)
    files = [os.path.basename(f) for f in ds.GetFileList()]
    assert SRC + "@focal=3.pgw" in files, files
    tif = _open(mount.path(SRC + "@focal=3"))
    np.testing.assert_allclose(ds.GetGeoTransform(), tif.GetGeoTransform(),
                               rtol=0, atol=1e-12)
    assert ds.GetDriver().ShortName == "PNG"
    assert (ds.RasterXSize, ds.RasterYSize) == (tif.RasterXSize,
                                                tif.RasterYSize)
    # grey + alpha: the source has nodata
    assert ds.RasterCount == 2
    assert ds.GetRasterBand(2).GetColorInterpretation() == gdal.GCI_AlphaBand
    b = tif.GetRasterBand(1)
    a, nd = b.ReadAsArray(), b.GetNoDataValue()
    valid = (a != nd) & np.isfinite(a)
    got = ds.ReadAsArray()
    np.testing.assert_array_equal(got[1], np.where(valid, 255, 0))
    want = _stretched(a, valid, a[valid].min(), a[valid].max())
    assert np.abs(got[0].astype(int) - want).max() <= 1
    # the world file as text, and its sibling spellings
    text = open(mount.path(SRC + "@focal=3.pgw")).read().split()
    gt = tif.GetGeoTransform()
    assert [float(x) for x in text] == pytest.approx(
        [gt[1], gt[4], gt[2], gt[5], gt[0] + gt[1] / 2, gt[3] + gt[5] / 2],
        abs=1e-12)
    for alt in ("@focal=3.png.pgw", "@focal=3.png.wld", "@focal=3.pngw",
                "@focal=3@fmt=png.wld", "@focal=3.PGW"):
        assert open(mount.path(SRC + alt)).read().split() == text, alt


def test_png_rgb_and_percentile_stretch(mount):
    ds = _open(mount.path(MULTI + "@fmt=png,p2"))
    src = _open(mount.path(MULTI))
    assert ds.RasterCount in (3, 4)
    for i in range(3):
        a = src.GetRasterBand(i + 1).ReadAsArray().astype(np.float64)
        nd = src.GetRasterBand(i + 1).GetNoDataValue()
        valid = np.isfinite(a) if nd is None else (a != nd)
        lo, hi = np.percentile(a[valid], [2, 98])
        got = ds.GetRasterBand(i + 1).ReadAsArray()
        want = _stretched(a, valid, lo, hi)
        # the percentiles come from a 65536-bin histogram
        assert np.abs(got.astype(int) - want).max() <= 2, i


def test_extension_and_fmt_are_one_entry(mount):
    n0 = _jobs(mount)
    a = read_bytes(mount.path(SRC + "@focal=5,max.png"))
    n1 = _jobs(mount)
    b = read_bytes(mount.path(SRC + "@focal=5,max@fmt=png"))
    c = read_bytes(mount.path(SRC + "@FOCAL=5,max@fmt=png,minmax.PNG"))
    assert a == b == c and a[:8] == b"\x89PNG\r\n\x1a\n"
    assert n1 == n0 + 1 and _jobs(mount) == n1
    d = read_bytes(mount.path(SRC + "@focal=5,max"))
    n2 = _jobs(mount)
    e = read_bytes(mount.path(SRC + "@focal=5,max.tif"))
    f = read_bytes(mount.path(SRC + "@focal=5,max@fmt=gtiff"))
    g = read_bytes(mount.path(SRC + "@focal=5,max.tiff"))
    assert d == e == f == g and n2 == n1 + 1 and _jobs(mount) == n2
    assert os.getxattr(mount.path(SRC + "@focal=5,max.tif"),
                       "user.rasterfs.chain") == b"@focal=5,max,square"
    # a dotted argument keeps its dot
    r = read_bytes(mount.path(SRC + "@proj=EPSG:4326,res=0.001.tif"))
    assert _open(mount.path(SRC + "@proj=EPSG:4326,res=0.001")) \
        .GetGeoTransform()[1] == 0.001 and r[:2] in (b"II", b"MM")


def test_probes_and_bad_formats_start_no_job(mount):
    n0 = _jobs(mount)
    for name in ("@focal=7.tif.aux.xml", "@focal=7.aux.xml", "@focal=7.ovr",
                 "@focal=7.png.aux.xml", "@focal=7@fmt=png.aux.xml",
                 "@focal=7.png.ovr", "@focal=7.png.msk", "@focal=7.tif.ovr",
                 "@focal=7.wld", "@focal=7.tfw", "@focal=7.tif.wld",
                 "@focal=7.PNG.AUX.XML", "@focal=7@fmt=cog.ovr",
                 "@focal=7@fmt=png.pgw.aux.xml"):
        assert stat_errno(mount.path(SRC + name)) == errno.ENOENT, name
        assert open_errno(mount.path(SRC + name)) == errno.ENOENT, name
    for name in ("@fmt=png@focal=3", "@focal=3@fmt=jpeg", "@focal=3@fmt=png.tif",
                 "@focal=3@fmt=cog,p2", "@focal=3.jpg"):
        assert stat_errno(mount.path(SRC + name)) == errno.EINVAL, name
    assert _jobs(mount) == n0


def test_format_only_chains_and_cog_after_steps(mount):
    src = _open(mount.path(SRC))
    t = _open(mount.path(SRC + "@fmt=gtiff"))
    assert t.GetRasterBand(1).GetBlockSize() == [256, 256]
    np.testing.assert_array_equal(t.ReadAsArray(), src.ReadAsArray())
    assert t.GetGeoTransform() == src.GetGeoTransform()
    assert t.GetRasterBand(1).GetMetadataItem("STATISTICS_MEAN")
    c = _open(mount.path(SRC + "@fmt=cog"))
    np.testing.assert_array_equal(c.ReadAsArray(), src.ReadAsArray())
    assert c.GetRasterBand(1).GetNoDataValue() == \
        src.GetRasterBand(1).GetNoDataValue()
    # a streamed proj, a focal into scratch, then the COG writer
    chain = "@proj=EPSG:32610@focal=3"
    a = _open(mount.path(SRC + chain + "@fmt=cog.tif"))
    b = _open(mount.path(SRC + chain))
    np.testing.assert_array_equal(a.ReadAsArray(), b.ReadAsArray())
    assert a.GetGeoTransform() == b.GetGeoTransform()
