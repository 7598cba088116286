"""PNG outputs are georeferenced however they are named (issue 12 item 3),
and their sidecars never leak into copies of the source tree
(src/fs_sidecar.c).

GDAL reads a PNG's georeferencing only from sidecars (X.aux.xml: CRS,
geotransform, statistics; X.pgw: geotransform) that the directory listing
names, and lists the directory right after opening the file.  rasterfs
lists a png output's sidecars in a real directory only to the process that
has that output open, and in png views to everyone.  Oracles: GDAL on the
GeoTIFF output of the same chain, GDAL's own gdal_translate of it to PNG
(the .aux.xml GDAL itself writes), and GDAL computing statistics on a copy
of the PNG; for copies, the source directory itself.
"""

import json
import os
import shutil
import subprocess
import sys
import threading

import pytest
from osgeo import gdal, osr

from rfsmount import read_bytes, stat_errno

gdal.UseExceptions()

SRC = "srtm1_N48W125_crop.tif"       # EPSG:4326, grey + nodata
MULTI = "stars_L7_ETMs.tif"          # EPSG:31985, 6 bands
SUB = "sub/dem.tif"                  # EPSG:26918

# (png name, GeoTIFF of the same chain): both spellings of a png output
PAIRS = [
    (SRC + "@hillshade.png", SRC + "@hillshade"),
    (MULTI + "@band=3,2,1@fmt=png", MULTI + "@band=3,2,1"),
    (SUB + "@slope@fmt=png,p2", SUB + "@slope"),
    (SRC + "@proj=EPSG:3857@fmt=png", SRC + "@proj=EPSG:3857"),
]


def _run(cmd, **kw):
    return subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          timeout=300, **kw)


def _info(path, *args):
    r = _run(["gdalinfo", "-json"] + list(args) + [path])
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def _jobs(m):
    return m.stats()["jobs_started"]


def _tree(root):
    """Every entry below root, relative: directories, symlinks (their
    target) and files (their bytes)."""
    out = {}
    for d, dirs, files in os.walk(root):
        for n in dirs + files:
            p = os.path.join(d, n)
            k = os.path.relpath(p, root)
            if os.path.islink(p):
                out[k] = ("link", os.readlink(p))
            elif os.path.isdir(p):
                out[k] = "dir"
            else:
                with open(p, "rb") as f:
                    out[k] = f.read()
    return out


@pytest.mark.parametrize("png,tif", PAIRS)
def test_gdalinfo_georeferences_both_spellings(mount, png, tif, tmp_path):
    """gdalinfo of the png (no listing trick: its own process) has the CRS
    and geotransform of the GeoTIFF of the same chain, as GDAL's own
    gdal_translate to PNG would write them."""
    a = _info(mount.path(png))
    t = _info(mount.path(tif))
    assert a["driverShortName"] == "PNG"
    assert a["geoTransform"] == t["geoTransform"], (a["geoTransform"],
                                                    t["geoTransform"])
    assert [a["size"], a["coordinateSystem"]["dataAxisToSRSAxisMapping"]] \
        == [t["size"], t["coordinateSystem"]["dataAxisToSRSAxisMapping"]]
    sa, st = osr.SpatialReference(), osr.SpatialReference()
    sa.ImportFromWkt(a["coordinateSystem"]["wkt"])
    st.ImportFromWkt(t["coordinateSystem"]["wkt"])
    assert sa.IsSame(st), (a["coordinateSystem"], t["coordinateSystem"])
    assert sa.GetAuthorityCode(None) == st.GetAuthorityCode(None) != None
    # what GDAL itself writes beside a PNG made of the same GeoTIFF
    own = str(tmp_path / "own.png")
    r = _run(["gdal_translate", "-q", "-of", "PNG", "-ot", "Byte",
              "-scale", mount.path(tif), own])
    assert r.returncode == 0 and os.path.exists(own + ".aux.xml"), r.stderr
    g = _info(own)
    assert a["coordinateSystem"] == g["coordinateSystem"]
    assert a["geoTransform"] == g["geoTransform"]
    files = [os.path.basename(f) for f in a["files"]]
    assert os.path.basename(png) + ".aux.xml" in files, files


@pytest.mark.parametrize("png", [p for p, _ in PAIRS[:3]])
def test_aux_statistics_are_gdals(mount, png, tmp_path):
    """The statistics the .aux.xml gives equal those GDAL computes itself
    on a copy of the PNG bytes alone (every cell: GDAL 3.6 takes no mask
    from the alpha band)."""
    served = _info(mount.path(png))
    copy = tmp_path / "copy.png"
    copy.write_bytes(read_bytes(mount.path(png)))
    own = _info(str(copy), "-stats")
    assert len(served["bands"]) == len(own["bands"])
    for b, o in zip(served["bands"], own["bands"]):
        md, mo = b["metadata"][""], o["metadata"][""]
        for k in ("STATISTICS_MINIMUM", "STATISTICS_MAXIMUM",
                  "STATISTICS_MEAN", "STATISTICS_STDDEV",
                  "STATISTICS_VALID_PERCENT"):
            assert float(md[k]) == pytest.approx(float(mo[k]), rel=1e-12,
                                                 abs=1e-12), (b["band"], k)


def test_aux_xml_only_once_the_png_is_computed(mount_factory):
    """Looked up by name, X.aux.xml answers ENOENT and starts no job until
    X is in the store, then is GDAL's PAM document (with GDAL told not to
    list the directory, it finds it by stat)."""
    m = mount_factory()
    png = SUB + "@aspect@fmt=png"
    j0 = _jobs(m)
    assert stat_errno(m.path(png + ".aux.xml")) == 2
    assert stat_errno(m.path(SUB + "@aspect.png.aux.xml")) == 2
    assert _jobs(m) == j0
    env = dict(os.environ, GDAL_DISABLE_READDIR_ON_OPEN="YES")
    r = _run(["gdalinfo", "-json", m.path(png)], env=env)
    assert r.returncode == 0, r.stderr
    info = json.loads(r.stdout)
    assert "coordinateSystem" in info and "geoTransform" in info, info
    assert _jobs(m) == j0 + 1
    text = open(m.path(png + ".aux.xml")).read()
    assert text.startswith("<PAMDataset>") and "<SRS " in text, text
    assert os.stat(m.path(png + ".aux.xml")).st_size == len(text.encode())
    # the .png spelling is the same key: its sidecar is there too
    assert open(m.path(SUB + "@aspect.png.aux.xml")).read() == text


def _child_listing(path):
    """os.listdir(path) in another process."""
    r = _run([sys.executable, "-c",
              "import os, sys; print('\\n'.join(os.listdir(sys.argv[1])))",
              path])
    assert r.returncode == 0, r.stderr
    return set(r.stdout.decode().split())


def test_sidecars_listed_only_to_the_process_holding_the_png(mount):
    """A directory lists X's sidecars to a process that has X open (any of
    its threads), to no other process, and to nobody once X is closed."""
    d = mount.path("sub")
    png = "dem.tif@hillshade=300,40.png"
    side = {"dem.tif@hillshade=300,40.pgw",
            "dem.tif@hillshade=300,40.png.aux.xml"}
    plain = set(os.listdir(d))
    assert not plain & side
    with open(os.path.join(d, png), "rb") as f:
        f.read(8)
        assert side <= set(os.listdir(d))
        seen = []
        t = threading.Thread(target=lambda: seen.append(set(os.listdir(d))))
        t.start()
        t.join()
        assert side <= seen[0], "another thread of the same process"
        assert _child_listing(d) == plain
    assert set(os.listdir(d)) == plain


def test_copies_of_a_source_directory_hold_only_its_files(mount_factory,
                                                          tmp_path):
    """ls -a, rsync -a, cp -r and tar of a source directory whose png
    outputs are computed (and one of them open, in this process) give
    exactly the source directory's files, byte for byte: its own sidecars
    (a real .aux.xml, a real .pgw) and nothing of rasterfs's."""
    src = mount_factory.source()
    maps = src / "maps"
    (maps / "deep").mkdir(parents=True)
    shutil.copy(str(src / SRC), str(maps / "a.tif"))
    shutil.copy(str(src / "opengeos_dtm.tif"), str(maps / "deep" / "b.tif"))
    (maps / "a.tif.aux.xml").write_text("<PAMDataset/>\n")
    (maps / "old.pgw").write_text("1\n0\n0\n-1\n0.5\n-0.5\n")
    (maps / "notes.txt").write_text("field notes\n")
    os.symlink("deep/b.tif", str(maps / "link.tif"))
    m = mount_factory(src=src)
    d = m.path("maps")
    names = ["a.tif@hillshade.png", "a.tif@slope@fmt=png",
             "link.tif@aspect@fmt=png,p2", "deep/b.tif@fmt=png",
             "deep/b.tif@hillshade.png"]
    for n in names:
        assert read_bytes(os.path.join(d, n))[:4] == b"\x89PNG"
    want = _tree(str(maps))
    held = [open(os.path.join(d, n), "rb") for n in names]
    try:
        assert {"a.tif@hillshade.pgw", "a.tif@hillshade.png.aux.xml"} <= \
            set(os.listdir(d)), "this process holds them open"
        r = _run(["ls", "-a", "-1", d])
        assert set(r.stdout.decode().split()) == \
            set(os.listdir(str(maps))) | {".", ".."}
        for cmd in (["rsync", "-a", d + "/", str(tmp_path / "rsync") + "/"],
                    ["cp", "-r", d, str(tmp_path / "cp")]):
            if not shutil.which(cmd[0]):
                pytest.skip("%s is not installed" % cmd[0])
            r = _run(cmd)
            assert r.returncode == 0, r.stderr
        r = _run(["tar", "-C", d, "-cf", str(tmp_path / "t.tar"), "."])
        assert r.returncode == 0, r.stderr
        (tmp_path / "tar").mkdir()
        r = _run(["tar", "-C", str(tmp_path / "tar"), "-xf",
                  str(tmp_path / "t.tar")])
        assert r.returncode == 0, r.stderr
    finally:
        for f in held:
            f.close()
    for k in ("rsync", "cp", "tar"):
        got = _tree(str(tmp_path / k))
        assert sorted(got) == sorted(want), k
        assert got == want, k


def test_png_view_lists_sidecars_and_its_copy_is_georeferenced(
        mount_factory, tmp_path):
    """A png view is where sidecars belong: once X.png is computed the view
    lists X.pgw and X.png.aux.xml to everyone, so a copy of the view
    (cp -r) is georeferenced by itself: GDAL reads the copy with the CRS
    and geotransform of the GeoTIFF of the same chain."""
    m = mount_factory()
    view = m.path("sub/@hillshade.png")
    before = _child_listing(view)
    assert "dem.tif.png" in before
    assert not [n for n in before if n.endswith((".pgw", ".aux.xml"))]
    assert read_bytes(view + "/dem.tif.png")[:4] == b"\x89PNG"
    after = _child_listing(view)
    assert after == before | {"dem.tif.pgw", "dem.tif.png.aux.xml"}
    r = _run(["cp", "-r", view, str(tmp_path / "copy")])
    assert r.returncode == 0, r.stderr
    assert set(os.listdir(str(tmp_path / "copy"))) == after
    c = _info(str(tmp_path / "copy" / "dem.tif.png"))
    t = _info(m.path(SUB + "@hillshade"))
    assert c["geoTransform"] == t["geoTransform"]
    sc, st = osr.SpatialReference(), osr.SpatialReference()
    sc.ImportFromWkt(c["coordinateSystem"]["wkt"])
    st.ImportFromWkt(t["coordinateSystem"]["wkt"])
    assert sc.IsSame(st)
