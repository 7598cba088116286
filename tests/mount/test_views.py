"""Views: a directory named by a chain mirrors the source tree with the
chain applied (docs/views.md), named views (view=NAME:CHAIN), and
`rasterfs cache ls`.

Oracles: the test builds its own tree (nested directories, a .txt, a
.tif.aux.xml, a VRT, an upper-case extension, a symlink inside the tree,
one leaving it, one to a directory, an empty directory) and walks it with
its own rule: a raster is a file whose extension one of GDAL's raster
drivers declares (asked of the Python bindings here), minus the
exceptions docs/views.md lists, named as it says.  Bytes are
compared with the '@' name of the same source and chain (md5), the cache
entry by the user.rasterfs.key xattr and the jobs_started counter; errnos
and codes of bad chains with docs/errors.md's table and with the same chain
after a file name; `cache ls` with the names the test read.
"""

import errno
import fnmatch
import hashlib
import io
import json
import os
import shutil
import stat
import subprocess
import tarfile

import pytest
from osgeo import gdal

import qgisutil
import rfsmount
from rfsmount import BIN, DATA, MountError, read_bytes, stat_errno

gdal.UseExceptions()
SRTM = "srtm1_N48W125_crop.tif"
OLINDA = "stars_olinda_dem_utm25s.tif"

# docs/views.md's exceptions to "GDAL declares the extension".
NEVER = {"xml", "json", "hdr", "lbl", "aux", "ovr", "msk", "rrd", "prj",
         "wld", "tfw", "tifw", "tiffw", "pgw", "pngw", "jgw", "jpgw",
         "jpegw", "gfw", "gifw", "bpw", "bmpw", "j2w", "blw",
         "pdf", "dwg", "gpkg", "kml", "kmz", "sqlite"}


def _gdal_raster_extensions():
    exts = set()
    for i in range(gdal.GetDriverCount()):
        d = gdal.GetDriver(i)
        if d.GetMetadataItem("DCAP_RASTER") != "YES":
            continue
        e = d.GetMetadataItem("DMD_EXTENSIONS") or \
            d.GetMetadataItem("DMD_EXTENSION") or ""
        exts.update(x.lower().lstrip(".") for x in e.split())
    return exts


EXTS = _gdal_raster_extensions() - NEVER


def _is_raster(name):
    stem, dot, ext = name.rpartition(".")
    return bool(dot) and bool(stem) and ext.lower() in EXTS


def _view_name(name, png=False):
    keep = (".png",) if png else (".tif", ".tiff")
    return name if name.lower().endswith(keep) else \
        name + (".png" if png else ".tif")


def _expected(src, rel="", png=False):
    """{path in the view: ("d", dir below src) | ("f", source below src)}
    by docs/views.md's rule, walked here without rasterfs."""
    out = {}
    base = os.path.join(str(src), rel)
    real = os.path.realpath(str(src))
    names = sorted(os.listdir(base))
    for n in names:
        p = os.path.join(base, n)
        srel = os.path.join(rel, n) if rel else n
        if os.path.isdir(p) and not os.path.islink(p):
            out[n] = ("d", srel)
            for k, v in _expected(src, srel, png).items():
                out[n + "/" + k] = v
            continue
        if not _is_raster(n):
            continue
        t = os.path.realpath(p)
        if not os.path.isfile(t) or not t.startswith(real + "/"):
            continue
        v = _view_name(n, png)
        if v != n and v in names:
            continue  # an entry named like its view name wins
        out[v] = ("f", srel)
    return out


def _listing(top):
    """{path below top: "d" | "f" | other} from the mount, by readdir and
    lstat (what find, tar and rsync see)."""
    out = {}
    for e in sorted(os.scandir(top), key=lambda e: e.name):
        st = os.lstat(e.path)
        kind = "d" if stat.S_ISDIR(st.st_mode) else \
            "f" if stat.S_ISREG(st.st_mode) else oct(st.st_mode)
        out[e.name] = kind
        if kind == "d":
            for k, v in _listing(e.path).items():
                out[e.name + "/" + k] = v
    return out


def _md5(b):
    return hashlib.md5(b).hexdigest()


def _jobs(m):
    return m.stats()["jobs_started"]


def _key(path):
    return os.getxattr(path, "user.rasterfs.key")


def make_tree(base):
    src = base / "vsrc"
    (src / "sub" / "deep").mkdir(parents=True)
    (src / "empty").mkdir()
    shutil.copy(DATA / SRTM, src / "dem.tif")
    shutil.copy(DATA / OLINDA, src / "sub" / "dem.tif")
    shutil.copy(DATA / OLINDA, src / "sub" / "deep" / "olinda.TIF")
    (src / "notes.txt").write_text("not a raster\n")
    (src / "sub" / "dem.tif.aux.xml").write_text("<PAMDataset/>\n")
    vrt = src / "sub" / "mosaic.vrt"
    cwd = os.getcwd()
    os.chdir(src / "sub")
    try:
        gdal.Translate("mosaic.vrt", "dem.tif", format="VRT")
    finally:
        os.chdir(cwd)
    assert 'relativeToVRT="1"' in vrt.read_text()
    os.symlink("dem.tif", src / "sub" / "link.tif")
    shutil.copy(DATA / OLINDA, base / "outside.tif")
    os.symlink(str(base / "outside.tif"), src / "away.tif")
    os.symlink("sub", src / "sublink")
    return src


@pytest.fixture(scope="module")
def vmount(tmp_path_factory):
    """One mount of the tree make_tree builds, for the module."""
    base = tmp_path_factory.mktemp("views")
    m = rfsmount.Mount(make_tree(base), base / "mnt", base / "cache",
                       base / "rasterfs.log")
    try:
        yield m.start()
    finally:
        m.stop()


def _no_job_listing(m, top):
    """ls -lR, find and du of top: they see the whole view and start no
    job."""
    j0 = _jobs(m)
    for cmd in (["ls", "-lR", top], ["find", top], ["du", "-a", top]):
        r = subprocess.run(cmd, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, timeout=120)
        assert r.returncode == 0, (cmd, r.stderr.decode())
    found = subprocess.run(["find", top, "-mindepth", "1", "-printf",
                            "%P %y\n"], stdout=subprocess.PIPE,
                           check=True, timeout=120).stdout.decode()
    assert _jobs(m) == j0, "listing started a job"
    return dict(ln.rsplit(" ", 1) for ln in found.splitlines())


@pytest.mark.parametrize("chain,png", [("@slope", False),
                                       ("@hillshade.png", True),
                                       ("@proj=EPSG:3857@hillshade", False)])
def test_view_lists_the_source_trees_rasters(vmount, chain, png):
    """A view's tree is the source tree's rasters and directories, named
    by the rule, with types; listing starts no job."""
    want = _expected(vmount.src, png=png)
    assert "sub/deep/olinda.TIF" + (".png" if png else "") in want
    assert ("sub/mosaic.vrt.png" if png else "sub/mosaic.vrt.tif") in want
    assert "empty" in want and "notes.txt" not in want
    top = vmount.path(chain)
    j0 = _jobs(vmount)
    got = _listing(top)
    assert got == {k: v[0] for k, v in want.items()}
    found = _no_job_listing(vmount, top)
    assert found == {k: v[0] for k, v in want.items()}
    assert _jobs(vmount) == j0
    st = os.stat(top)
    assert stat.S_ISDIR(st.st_mode) and not st.st_mode & 0o222


def test_view_sizes_before_computing(vmount):
    """ls -l of a view never computed: every GeoTIFF has its exact size
    (the bytes a later read gives), the same as its '@' name's; listing
    describes each distinct output once and starts no job."""
    chain = "@focal=5,min"
    top = vmount.path(chain)
    want = {k: v for k, v in _expected(vmount.src).items() if v[0] == "f"}
    distinct = {(os.stat(vmount.src / s).st_dev,
                 os.stat(vmount.src / s).st_ino) for _, s in want.values()}
    s0 = vmount.stats()
    r = subprocess.run(["ls", "-lR", "--time-style=+%s", top],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       timeout=120)
    assert r.returncode == 0, r.stderr.decode()
    sizes = {k: os.stat(top + "/" + k).st_size for k in want}
    s1 = vmount.stats()
    assert s1["jobs_started"] == s0["jobs_started"], "listing started a job"
    assert s1["describes"] == s0["describes"] + len(distinct)
    for k, (_, src) in want.items():
        assert sizes[k] > 0, k
        assert os.stat(vmount.path(src + chain)).st_size == sizes[k], k
        # the source's mtime (an output changes exactly when it does)
        assert os.stat(top + "/" + k).st_mtime_ns == \
            os.stat(vmount.src / src).st_mtime_ns, k
    for k in want:
        assert len(read_bytes(top + "/" + k)) == sizes[k], k
        assert os.stat(top + "/" + k).st_size == sizes[k], k
    assert vmount.stats()["jobs_started"] == \
        s0["jobs_started"] + len(distinct)


def test_view_reads_are_the_at_names(vmount):
    """Every file of a view is the '@' name of its source with the chain:
    the same bytes, the same cache key, one job per distinct source for
    both together."""
    chain = "@focal=3,max"
    want = {k: v for k, v in _expected(vmount.src).items() if v[0] == "f"}
    distinct = {(os.stat(vmount.src / s).st_dev,
                 os.stat(vmount.src / s).st_ino) for _, s in want.values()}
    j0 = _jobs(vmount)
    got = {k: _md5(read_bytes(vmount.path(chain + "/" + k))) for k in want}
    assert _jobs(vmount) == j0 + len(distinct)
    for k, (_, s) in want.items():
        at = vmount.path(s + chain)
        assert _md5(read_bytes(at)) == got[k], k
        assert _key(vmount.path(chain + "/" + k)) == _key(at), k
        assert os.stat(vmount.path(chain + "/" + k)).st_size == \
            os.stat(at).st_size
    assert _jobs(vmount) == j0 + len(distinct), "the '@' names made jobs"
    # And it is a GeoTIFF that GDAL opens by its view name.
    ds = gdal.Open(vmount.path(chain + "/sub/mosaic.vrt.tif"))
    assert ds.GetDriver().ShortName == "GTiff"


def test_view_below_the_root(vmount):
    """sub/@CHAIN is a view of sub: the same as @CHAIN/sub."""
    a, b = vmount.path("sub/@aspect"), vmount.path("@aspect/sub")
    assert _listing(a) == _listing(b) == {
        k: v[0] for k, v in _expected(vmount.src, "sub").items()}
    assert _key(a + "/dem.tif") == _key(b + "/dem.tif") == \
        _key(vmount.path("sub/dem.tif@aspect"))


def test_png_view_and_its_world_files(vmount):
    """In a png view, NAME.png is NAME@CHAIN.png; once computed, the
    listing names its world file and GDAL places it like the GeoTIFF of
    the same chain."""
    view = vmount.path("@hillshade.png/sub")
    j0 = _jobs(vmount)
    assert "dem.tif.pgw" not in os.listdir(view)
    data = read_bytes(view + "/dem.tif.png")
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    assert data == read_bytes(vmount.path("sub/dem.tif@hillshade.png"))
    assert _jobs(vmount) == j0 + 1
    assert "dem.tif.pgw" in os.listdir(view)
    ds = gdal.Open(view + "/dem.tif.png")
    tif = gdal.Open(vmount.path("sub/dem.tif@hillshade"))
    assert ds.GetGeoTransform() == pytest.approx(tif.GetGeoTransform(),
                                                 rel=1e-12)


def test_rsync_of_a_view(vmount, tmp_path):
    """rsync -a of a never-listed view copies every output whole."""
    chain = "@tri"
    dst = tmp_path / "copy"
    subprocess.run(["rsync", "-a", vmount.path(chain) + "/", str(dst)],
                   check=True, timeout=300)
    want = _expected(vmount.src)
    assert _listing(dst) == {k: v[0] for k, v in want.items()}
    for k, (t, s) in want.items():
        if t == "f":
            assert _md5((dst / k).read_bytes()) == \
                _md5(read_bytes(vmount.path(s + chain))), k


def _tar_members(top):
    r = subprocess.run(["tar", "-cf", "-", "-C", top, "."],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       timeout=300)
    assert r.returncode == 0, r.stderr.decode()
    out = {}
    with tarfile.open(fileobj=io.BytesIO(r.stdout)) as t:
        for m in t.getmembers():
            name = os.path.normpath(m.name)
            if name == ".":
                continue
            out[name] = ("d", None) if m.isdir() else \
                ("f", _md5(t.extractfile(m).read()))
    return out


def _check_tar(m, chain, members):
    want = _expected(m.src)
    assert {k: v[0] for k, v in members.items()} == \
        {k: v[0] for k, v in want.items()}
    for k, (t, s) in want.items():
        if t == "f":
            assert members[k][1] == _md5(read_bytes(m.path(s + chain))), k


def test_tar_of_a_computed_view(vmount):
    """tar of a view whose outputs were computed: every member's bytes are
    a later read of the '@' name."""
    chain = "@roughness"
    for k, (t, s) in _expected(vmount.src).items():
        if t == "f":
            read_bytes(vmount.path(s + chain))
    _check_tar(vmount, chain, _tar_members(vmount.path(chain)))


def test_tar_of_a_never_computed_view(vmount):
    """tar takes a member's size from stat before it opens the member: a
    view's never-computed GeoTIFFs have their exact size (issue 10 item
    1)."""
    chain = "@tpi"
    members = _tar_members(vmount.path(chain))
    _check_tar(vmount, chain, members)


# errno and code of each bad chain: docs/errors.md's table
BAD = [("@fokal=3", errno.ENOENT, "RFS-E100"),
       ("@focal=4", errno.EINVAL, "RFS-E101"),
       ("@proj=EPSG:99999", errno.EINVAL, "RFS-E102"),
       ("@fmt=png@slope", errno.EINVAL, "RFS-E101"),
       ("@slope" * 17, errno.ENAMETOOLONG, "RFS-E104")]


@pytest.mark.parametrize("chain,err,code", BAD)
def test_bad_chain_directory_fails_like_the_bad_name(vmount, chain, err,
                                                     code):
    j0 = _jobs(vmount)
    for d in ("", "sub/"):
        assert stat_errno(vmount.path(d + "dem.tif" + chain)) == err
        assert stat_errno(vmount.path(d + chain)) == err, d + chain
        assert stat_errno(vmount.path(d + chain + "/dem.tif")) == err
        with pytest.raises(OSError) as e:
            os.listdir(vmount.path(d + chain))
        assert e.value.errno == err
        line = "%s%s: %s " % (d, chain, code)
        assert line in vmount.log_text(limit=10 ** 7), line
    assert _jobs(vmount) == j0


def test_named_views(mount_factory, tmp_path):
    """view=NAME:CHAIN lists NAME in the root, and NAME is the chain's
    view: the same tree, bytes and keys; an escaped comma reaches the
    chain."""
    src = make_tree(tmp_path)
    m = mount_factory(src=src, options=["view=hs:@hillshade",
                                        "view=f5:@focal=5\\,max"])
    root = os.listdir(m.mnt)
    assert "hs" in root and "f5" in root
    assert stat.S_ISDIR(os.stat(m.path("hs")).st_mode)
    assert _listing(m.path("hs")) == _listing(m.path("@hillshade")) == \
        {k: v[0] for k, v in _expected(src).items()}
    assert os.getxattr(m.path("f5/dem.tif"), "user.rasterfs.chain") == \
        b"@focal=5,max,square"
    # A view directory says what it is.
    assert os.getxattr(m.path("f5"), "user.rasterfs.chain") == \
        b"@focal=5,max,square"
    assert os.getxattr(m.path("hs/sub"), "user.rasterfs.source") == b"sub"
    assert os.getxattr(m.path("hs"), "user.rasterfs.source") == b"."
    j0 = _jobs(m)
    for k, (t, s) in _expected(src).items():
        if t == "f":
            a = read_bytes(m.path("hs/" + k))
            assert a == read_bytes(m.path("@hillshade/" + k)), k
            assert _key(m.path("hs/" + k)) == _key(m.path(s + "@hillshade"))
    assert _jobs(m) == j0 + 4  # dem, sub/dem (= link), mosaic, olinda
    assert stat_errno(m.path("sub/hs")) == errno.ENOENT


@pytest.mark.parametrize("opts,what", [
    (["view=sub:@slope"], "sub"),
    (["view=x:@fokal=3"], "fokal"),
    (["view=x:@focal=4"], "focal"),
    (["view=x"], "NAME:CHAIN"),
    (["view=.rasterfs:@slope"], ".rasterfs"),
    (["view=a/b:@slope"], "a/b"),
    (["view=a:@slope", "view=a:@aspect"], "a:@aspect"),
])
def test_bad_named_view_refused_at_mount(mount_factory, tmp_path, opts,
                                         what):
    src = make_tree(tmp_path)
    with pytest.raises(MountError):
        mount_factory(src=src, options=opts)
    m = mount_factory.mounts[-1]
    lines = [ln for ln in m.log_text().splitlines() if "RFS-E400" in ln]
    assert len(lines) == 1 and what in lines[0], m.log_text()
    assert not rfsmount.is_mounted(m.mnt)


def test_qgis_browser_lists_a_view(vmount):
    """QGIS's Browser (file dialogs' model) shows the view's directories
    and its rasters as layers, and starts no job."""
    why = qgisutil.unavailable_reason()
    if why:
        pytest.skip(why)
    chain = "@slope"
    j0 = _jobs(vmount)
    r = qgisutil.browse(vmount.path(chain))
    top = vmount.path(chain) + "/"
    got = {p[len(top):]: kind for p, kind, _ in r["items"]}
    want = {k: {"d": "dir", "f": "layer"}[v[0]]
            for k, v in _expected(vmount.src).items()}
    assert got == want
    assert _jobs(vmount) == j0


def test_qgis_renders_a_layer_from_a_view(vmount):
    why = qgisutil.unavailable_reason()
    if why:
        pytest.skip(why)
    path = vmount.path("@proj=EPSG:3857@hillshade/sub/deep/olinda.TIF")
    r = qgisutil.run(path, size=(300, 300))
    assert r["valid"], r["error"]
    assert r["crs"]["authid"] == "EPSG:3857"
    assert r["renders"][0]["nontransparent"] > 1000
    bad = r["gdal_messages"] + [m for m in r["messages"]
                                if m["level"] in ("Warning", "Critical")]
    assert not bad, bad


def _cache_ls(cache, *args):
    r = subprocess.run([BIN, "cache", "--cache", str(cache), "--json", "ls"]
                       + list(args), stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, timeout=120)
    assert r.returncode == 0, r.stderr.decode()
    return json.loads(r.stdout)


def test_cache_ls_lists_what_was_computed(mount_factory, tmp_path):
    """`rasterfs cache ls` names exactly the outputs the test read, by
    source and canonical chain, with their sizes; a PATTERN filters them
    as a glob does."""
    src = make_tree(tmp_path)
    m = mount_factory(src=src)
    read = {  # path read -> the name the store holds
        "dem.tif@slope=degrees": "dem.tif@slope=degrees",
        "dem.tif@slope": "dem.tif@slope=degrees",
        "@focal=3,mean,square/sub/dem.tif":
            "sub/dem.tif@focal=3,mean,square",
        "sub/@focal=3/mosaic.vrt.tif": "sub/mosaic.vrt@focal=3,mean,square",
        "@hillshade=315,45,z=1@fmt=png,minmax/sub/deep/olinda.TIF.png":
            "sub/deep/olinda.TIF@hillshade=315,45,z=1@fmt=png,minmax",
    }
    size = {}
    for p, name in read.items():
        read_bytes(m.path(p))
        size[name] = os.stat(m.path(p)).st_size
    entries = _cache_ls(m.cache)
    assert sorted(e["name"] for e in entries) == sorted(size)
    for e in entries:
        assert e["size"] == size[e["name"]]
        assert e["source_abs"] == os.path.join(
            os.path.realpath(str(src)), e["name"].split("@")[0])
        assert e["created"].endswith("Z") and len(e["key"]) == 32
    pat = "sub/*"
    assert sorted(e["name"] for e in _cache_ls(m.cache, pat)) == \
        sorted(n for n in size if fnmatch.fnmatchcase(n, pat))
    assert _cache_ls(m.cache, "nothing*") == []
    text = subprocess.run([BIN, "cache", "--cache", str(m.cache), "ls"],
                          stdout=subprocess.PIPE, check=True,
                          timeout=120).stdout.decode().splitlines()
    assert sorted(ln.split()[-1] for ln in text[1:]) == sorted(size)
