"""`rasterfs run SRC@CHAIN OUT`: one output without FUSE, as a mount
computes it.

Oracles: the bytes a real mount of the same tree serves for the same name
(md5), the code and errno the mount gives for a bad name or a failed job
(its log and its user.rasterfs.error attribute), the files on disk after a
run (OUT, its temporaries, the temporary store), a second mount's counters
over the store `run --cache` filled."""

import errno
import hashlib
import os
import re
import signal
import subprocess
import time
from pathlib import Path

import pytest
from osgeo import gdal

from rfsmount import BIN, errname, open_errno, read_bytes, stat_errno

gdal.UseExceptions()

DEM = "opengeos_dtm.tif"                 # 283 x 259 Float32, EPSG:26918
SRTM = "srtm1_N48W125_crop.tif"          # 600 x 600 Int16, EPSG:4326
MULTI = "stars_L7_ETMs.tif"              # 349 x 352 x 6 Byte
OLINDA = "stars_olinda_dem_utm25s.tif"   # 111 x 111 Float32

# A dozen chains and more: every family of steps, a kept prefix, both
# output formats other than GeoTIFF, and a portable spelling.
CHAINS = [
    DEM + "@focal=3",
    DEM + "@focal=5,max,circle",
    DEM + "@proj=EPSG:3857",
    SRTM + "@proj=EPSG:32610,bilinear",
    DEM + "@reclass=0:20:1,20:inf:2",
    SRTM + "@slope",
    SRTM + "@hillshade",
    DEM + "@aspect",
    DEM + "@res=10",
    OLINDA + "@size=50,60",
    MULTI + "@band=4,3",
    MULTI + "@ndi=4,3",
    DEM + "@type=Int16",
    DEM + "@proj=EPSG:3857@focal=3",          # a kept prefix in a mount
    SRTM + "@fmt=cog",
    OLINDA + "@fmt=png",
    DEM + "@proj=EPSG_3857,near@reclass=0_20_1,20_inf_2,other=nodata.tif",
]


def md5(data):
    return hashlib.md5(data).hexdigest()


def run(*args, env=None, timeout=180):
    return subprocess.run([BIN, "run"] + [str(a) for a in args],
                          capture_output=True, text=True, timeout=timeout,
                          env=env)


def code_of(stderr):
    m = re.search(r"RFS-E\d{3}", stderr)
    return m.group(0) if m else None


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    import rfsmount
    base = tmp_path_factory.mktemp("run")
    src = rfsmount.copy_data(base / "src")
    return base, src


@pytest.fixture(scope="module")
def mounted(tree):
    import rfsmount
    base, src = tree
    m = rfsmount.Mount(src, base / "mnt", base / "cache", base / "log", 2)
    m.start()
    try:
        yield m
    finally:
        m.stop()


@pytest.mark.parametrize("name", CHAINS)
def test_run_equals_mount(tree, mounted, name):
    base, src = tree
    out = base / ("out-" + md5(name.encode())[:8] + ".tif")
    r = run(src / name, out)
    assert r.returncode == 0, r.stderr
    assert r.stderr == "", r.stderr       # quiet on a pipe
    want = read_bytes(mounted.path(name))
    got = out.read_bytes()
    assert len(got) == len(want) and md5(got) == md5(want), name
    # a file like any other, and nothing left beside it
    assert (out.stat().st_mode & 0o777) == 0o666 & ~_umask()
    assert not list(base.glob(out.name + ".tmp-*"))


def _umask():
    u = os.umask(0)
    os.umask(u)
    return u


def _mount_code(m, name):
    """The code the mount gives name: its log's line for a name refused at
    lookup, else its error attribute after a failed open."""
    e = stat_errno(m.path(name))
    if e:
        log = m.log_text()
        lines = [l for l in log.splitlines() if name in l and "RFS-E" in l]
        assert lines, log[-2000:]
        return code_of(lines[-1]), e, lines[-1]
    e = open_errno(m.path(name))
    assert e, name
    err = os.getxattr(m.path(name), "user.rasterfs.error").decode()
    return code_of(err), e, err


@pytest.fixture(scope="module")
def limited(tree):
    """A mount with max_pixels=1000, and a VRT that reads outside the
    source tree."""
    import rfsmount
    base, src = tree
    far = base / "outside"
    far.mkdir()
    gdal.Translate(str(far / "x.tif"), str(src / OLINDA))
    gdal.Translate(str(src / "up.vrt"), str(src / OLINDA), format="VRT")
    text = (src / "up.vrt").read_text()
    text = re.sub(r'<SourceFilename relativeToVRT="\d">[^<]*',
                  '<SourceFilename relativeToVRT="1">../outside/x.tif', text)
    (src / "up.vrt").write_text(text)
    m = rfsmount.Mount(src, base / "mnt2", base / "cache2", base / "log2", 1,
                       ["max_pixels=1000"])
    m.start()
    try:
        yield m
    finally:
        m.stop()


@pytest.mark.parametrize("name,code,err", [
    (DEM + "@fokal=3", "RFS-E100", errno.ENOENT),
    (DEM + "@proj=EPSG:99999", "RFS-E102", errno.EINVAL),
    (DEM + "@focal=3", "RFS-E106", errno.EFBIG),
    ("up.vrt@fmt=gtiff", "RFS-E207", errno.EACCES),
    ("nope.tif@focal=3", "RFS-E105", errno.ENOENT),
])
def test_run_errors_match_mount(tree, limited, name, code, err):
    base, src = tree
    mcode, merr, mtext = _mount_code(limited, name)
    assert (mcode, merr) == (code, err), mtext
    out = base / "never.tif"
    r = run("-o", "max_pixels=1000", src / name, out)
    assert r.returncode == 1, r.stderr
    lines = r.stderr.strip().split("\n")
    assert len(lines) == 1, r.stderr       # one line, with the code
    assert lines[0].startswith("rasterfs run: %s: %s " % (src / name, code))
    assert code_of(lines[0]) == mcode
    if code in ("RFS-E106", "RFS-E207"):  # the job's own message
        assert mtext.split(" ", 1)[1] in lines[0], (mtext, lines[0])
    assert not out.exists()
    assert not list(base.glob("never.tif.tmp-*"))


def test_run_cache_then_mount_serves(tree, tmp_path):
    import rfsmount
    base, src = tree
    cache = tmp_path / "store"
    name = DEM + "@proj=EPSG:32618@slope"
    r = run("--cache", cache, src / name)
    assert r.returncode == 0, r.stderr
    m = rfsmount.Mount(src, tmp_path / "mnt", cache, tmp_path / "log", 1)
    m.start()
    try:
        data = read_bytes(m.path(name))
        s = m.stats()
        assert s["jobs_started"] == 0 and s["cache_hits"] == 1, s
        # the bytes of a mount that computes it itself
        m2 = rfsmount.Mount(src, tmp_path / "mnt2", tmp_path / "c2",
                            tmp_path / "log2", 1)
        m2.start()
        try:
            assert md5(read_bytes(m2.path(name))) == md5(data)
            assert m2.stats()["jobs_started"] == 1
        finally:
            m2.stop()
    finally:
        m.stop()
    # a second run finds it in the store and computes nothing
    out = tmp_path / "again.tif"
    r = run("-v", "--cache", cache, src / name, out)
    assert r.returncode == 0 and "cached" in r.stderr, r.stderr
    assert md5(out.read_bytes()) == md5(data)


@pytest.fixture(scope="module")
def big(tree):
    """A 2500 x 2500 Float32 source: focal=15,median on it takes seconds
    (about 4 s on 2 cores)."""
    base, src = tree
    p = src / "big.tif"
    gdal.Translate(str(p), str(src / DEM), width=2500, height=2500,
                   creationOptions=["TILED=YES"])
    return p


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_run_interrupted_leaves_nothing(tree, big, tmp_path, sig):
    base, src = tree
    out = tmp_path / "out.tif"
    env = dict(os.environ, TMPDIR=str(tmp_path))
    p = subprocess.Popen([BIN, "run", str(big) + "@focal=15,median", str(out)],
                         stderr=subprocess.PIPE, text=True, env=env)
    # wait until its worker runs the job (a child of ours is busy)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and not list(
            tmp_path.glob("rasterfs-run.*/scratch/*/w0/*.tif")):
        time.sleep(0.05)
    assert list(tmp_path.glob("rasterfs-run.*/scratch/*/w0/*.tif")), \
        "the job never started"
    p.send_signal(sig)
    _, err = p.communicate(timeout=30)
    assert p.returncode == 3, err
    assert "RFS-E204" in err and "interrupted by" in err, err
    assert not out.exists()
    assert not list(tmp_path.glob("out.tif.tmp-*"))
    assert not list(tmp_path.glob("rasterfs-run.*")), "temporary store left"


def test_run_usage(tree, tmp_path):
    base, src = tree
    for args in ([], [src / DEM, tmp_path / "x.tif"],
                 ["-o", "max_pixel=3", str(src / DEM) + "@focal=3"],
                 ["-o", "max_pixels=-3", str(src / DEM) + "@focal=3"],
                 ["--bogus", str(src / DEM) + "@focal=3"],
                 [str(src / DEM) + "@focal=3", "a", "b"]):
        r = run(*args)
        assert r.returncode == 2, (args, r.stderr)
        assert "RFS-E400" in r.stderr, (args, r.stderr)


def test_run_root_confines_the_name(tree, tmp_path):
    """--root: the name must lie below it, and the source may not leave it
    (a symlink outside the root is refused like in a mount)."""
    base, src = tree
    r = run("--root", src / "sub", str(src / DEM) + "@focal=3")
    assert r.returncode == 1 and "RFS-E103" in r.stderr, r.stderr
    # sub/dem.tif is a link to ../opengeos_dtm.tif: outside root=sub
    r = run("--root", src / "sub", str(src / "sub/dem.tif") + "@focal=3",
            tmp_path / "o.tif")
    assert r.returncode == 1 and "RFS-E103" in r.stderr, r.stderr
    # with the tree's root it is inside, and the same output as DEM's
    r = run("--root", src, str(src / "sub/dem.tif") + "@focal=3",
            tmp_path / "o.tif")
    assert r.returncode == 0, r.stderr
    r2 = run(str(src / DEM) + "@focal=3", tmp_path / "p.tif")
    assert r2.returncode == 0, r2.stderr
    # the same pixels; the provenance names the source as given (sub/dem.tif)
    a, b = (gdal.Open(str(tmp_path / f)) for f in ("o.tif", "p.tif"))
    assert a.ReadRaster() == b.ReadRaster()
    assert os.path.getsize(tmp_path / "o.tif") == \
        os.path.getsize(tmp_path / "p.tif")
    a = b = None


def test_run_progress_only_when_asked(tree, tmp_path):
    base, src = tree
    name = str(src / OLINDA) + "@focal=7"
    r = run(name, tmp_path / "a.tif")
    assert r.returncode == 0 and r.stderr == "", r.stderr
    r = run("--progress", name, tmp_path / "b.tif")
    assert r.returncode == 0, r.stderr
    assert "%" in r.stderr and "[" in r.stderr, r.stderr
