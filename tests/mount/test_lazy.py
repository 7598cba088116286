"""Large outputs computed block by block (docs/large-outputs.md, lazy.h).

A 6000 x 6000 Float32 source (made here with GDAL) gives outputs over the
lazy threshold (2^25 pixels).  Oracles: the same output computed whole by a
mount with lazy=0 (byte for byte: the format says a key has one set of
bytes however it is computed), and GDAL's own gdalwarp -of VRT for warps
(the README's oracle command line), never the code under test.
"""

import os
import random
import signal
import subprocess
import sys
import threading
import time

import numpy as np
import pytest
from osgeo import gdal, osr

from rfsmount import read_bytes
from storeutil import verify_clean

gdal.UseExceptions()

SIDE = 6000
BLOCK = 512
NAME = "big.tif"


def create(path, bands, gdal_type):
    """A SIDE x SIDE tiled GeoTIFF of 10 m cells in UTM 33N."""
    ds = gdal.GetDriverByName("GTiff").Create(
        str(path), SIDE, SIDE, bands, gdal_type, ["TILED=YES"])
    ds.SetGeoTransform([500000, 10, 0, 5000000, 0, -10])
    s = osr.SpatialReference()
    s.ImportFromEPSG(32633)
    ds.SetProjection(s.ExportToWkt())
    return ds


def make_source(path, shift=0):
    ds = create(path, 1, gdal.GDT_Float32)
    y, x = np.mgrid[0:SIDE, 0:SIDE]
    a = (np.sin(x / 300.0) * 100 + np.cos(y / 170.0) * 50 +
         (x * y % 97) + shift).astype(np.float32)
    ds.GetRasterBand(1).WriteArray(a)
    ds = None


@pytest.fixture(scope="module")
def bigsrc(tmp_path_factory):
    d = tmp_path_factory.mktemp("lazysrc")
    make_source(d / NAME)
    return d


def stats(m):
    return m.stats()


def all_blocks(w, h):
    """Blocks of every level (lazy.h): level 0 and the overviews, k = 1,
    2, ... to the first level that fits in one 256 x 256 tile (tiff.h),
    each in blocks of BLOCK x BLOCK pixels of its own."""
    n, k = 0, 0
    while True:
        f = 1 << k
        lw, lh = -(-w // f), -(-h // f)
        n += -(-lw // BLOCK) * -(-lh // BLOCK)
        if k > 0 and lw <= 256 and lh <= 256:
            return n
        k += 1


def window(path, x, y, w, h):
    ds = gdal.Open(path)
    try:
        return ds.GetRasterBand(1).ReadAsArray(x, y, w, h)
    finally:
        ds = None


def whole_bytes(m, name):
    return read_bytes(m.path(name), 300)


def test_header_at_once_with_approximate_statistics(mount_factory, bigsrc):
    m = mount_factory(src=bigsrc)
    name = NAME + "@focal=5"
    t0 = time.monotonic()
    info = gdal.Info(m.path(name), format="json")
    took = time.monotonic() - t0
    md = info["bands"][0]["metadata"][""]
    assert md["STATISTICS_APPROXIMATE"] == "YES"
    for k in ("MINIMUM", "MAXIMUM", "MEAN", "STDDEV"):
        assert "STATISTICS_" + k in md
    s = stats(m)
    assert s["lazy_opens"] >= 1
    assert s["lazy_blocks"] == 0, s  # the header alone: no pixel
    assert s["lazy_ovr_blocks"] == 0, s
    nb = ((SIDE + BLOCK - 1) // BLOCK) ** 2
    total = all_blocks(SIDE, SIDE)  # blocks of every level count
    assert os.getxattr(m.path(name), "user.rasterfs.blocks") == \
        b"0/%d" % total
    assert "user.rasterfs.blocks" in os.listxattr(m.path(name))
    assert os.getxattr(m.path(name), "user.rasterfs.state") == b"absent"
    window(m.path(name), 0, BLOCK, 10, 10)
    assert os.getxattr(m.path(name), "user.rasterfs.blocks") == \
        b"1/%d" % total
    assert os.getxattr(m.path(name), "user.rasterfs.state") == b"partial"
    assert os.getxattr(m.path(name), "user.rasterfs.progress") == \
        b"%.0f" % (100.0 / total)
    assert took < 30  # (speed is bench.sh's: no timed tests)
    # the size stat told is the size read
    data = whole_bytes(m, name)
    assert len(data) == os.stat(m.path(name)).st_size
    assert stats(m)["lazy_blocks"] == nb
    assert stats(m)["lazy_ovr_blocks"] == total - nb


def test_fully_read_output_becomes_one_object(mount_factory, bigsrc):
    m = mount_factory(src=bigsrc)
    name = NAME + "@focal=3,min"
    nblocks = all_blocks(SIDE, SIDE)  # of every level
    data = whole_bytes(m, name)  # every block read, then released
    assert stats(m)["lazy_blocks"] + stats(m)["lazy_ovr_blocks"] == nblocks
    # assembled, then its blocks and #stats dropped: the store holds the
    # output once
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        s = stats(m)
        if s["store_objects"] == 1:
            break
        time.sleep(0.2)
    assert s["store_objects"] == 1, s
    assert os.getxattr(m.path(name), "user.rasterfs.state") == b"done"
    hits = s["cache_hits"]
    assert whole_bytes(m, name) == data
    s = stats(m)
    assert s["cache_hits"] == hits + 1 and s["lazy_opens"] == 1, s
    m.stop()
    doc = verify_clean(m.cache)
    assert doc["entries"] == 1
    objects = [f for _, _, fs in os.walk(os.path.join(m.cache, "objects"))
               for f in fs]
    assert len(objects) == 1, objects


def test_small_outputs_keep_exact_statistics(mount):
    name = mount.path("srtm1_N48W125_crop.tif@focal=3")
    info = gdal.Info(name, format="json")
    assert "user.rasterfs.blocks" not in os.listxattr(name)
    md = info["bands"][0]["metadata"][""]
    assert "STATISTICS_APPROXIMATE" not in md
    assert "STATISTICS_MEAN" in md


CHAINS = [
    "@focal=5",
    "@proj=EPSG:3857,bilinear",
    "@hillshade",
    "@reclass=-inf:0:1,0:100:2,100:inf:3",
    "@proj=EPSG:4326,bilinear@focal=3,max@reclass=0:50:1,50:inf:2",
]


@pytest.fixture(scope="module")
def pair(tmp_path_factory, bigsrc):
    """A lazy mount and a whole-computing one of the same source."""
    from conftest import MountFactory, _need_fuse
    _need_fuse()
    f = MountFactory(tmp_path_factory.mktemp("lazypair"))
    try:
        yield f(src=bigsrc), f(src=bigsrc, options=["lazy=0"])
    finally:
        f.stop_all()


@pytest.mark.parametrize("chain", CHAINS)
def test_lazy_equals_whole(pair, chain):
    lazy, whole = pair
    name = NAME + chain
    # windows first, at block and raster edges, then the rest by cp
    wins = [(0, 0, 1, 1), (BLOCK - 3, BLOCK - 3, 7, 7),
            (BLOCK * 3 - 1, BLOCK * 2 - 1, 514, 2)]
    ds = gdal.Open(lazy.path(name))
    W, H = ds.RasterXSize, ds.RasterYSize
    ds = None
    wins.append((W - 5, H - 5, 5, 5))
    wins.append((W - 600, 0, 600, 3))
    lazy_wins = [window(lazy.path(name), *w) for w in wins]
    a = whole_bytes(lazy, name)
    b = whole_bytes(whole, name)
    assert len(a) == len(b)
    assert a == b, "lazily computed bytes differ from the whole output"
    for w, got in zip(wins, lazy_wins):
        np.testing.assert_array_equal(got, window(whole.path(name), *w))


def proj_vrt(bigsrc, tmp_path):
    """The oracle of NAME@proj=EPSG:3857,bilinear (docs/design.md): GDAL's
    warped VRT; its path, size and nodata."""
    vrt = str(tmp_path / "w.vrt")
    subprocess.run(["gdalwarp", "-q", "-of", "VRT", "-t_srs", "EPSG:3857",
                    "-r", "bilinear", "-wm", "64", "-et", "0.125",
                    str(bigsrc / NAME), vrt], check=True)
    ds = gdal.Open(vrt)
    try:
        return (vrt, ds.RasterXSize, ds.RasterYSize,
                ds.GetRasterBand(1).GetNoDataValue())
    finally:
        ds = None


def test_proj_windows_equal_gdalwarp_vrt_oracle(pair, bigsrc, tmp_path):
    lazy, _ = pair
    name = NAME + "@proj=EPSG:3857,bilinear"
    vrt, W, H, _ = proj_vrt(bigsrc, tmp_path)
    for (x, y, w, h) in [(0, 0, 512, 512), (BLOCK - 1, 127, 3, 3),
                         (1000, 2000, 512, 512), (W - 512, H - 512, 512, 512),
                         (W - 1, H - 1, 1, 1)]:
        np.testing.assert_array_equal(window(lazy.path(name), x, y, w, h),
                                      window(vrt, x, y, w, h))


def _sample_windows(W, H):
    """docs/large-outputs.md: 2 x 2 windows of 512 x 128 near the centres
    of an even 2 x 2 partition, at multiples of 512 columns, 128 rows."""
    def one(side, i, want, align):
        n = min(side, want)
        start = ((2 * i + 1) * side // 4 - n // 2) // align * align
        return min(max(start, 0), side - n), n
    wins = []
    for j in range(2):
        for i in range(2):
            x, w = one(W, i, 512, 512)
            y, h = one(H, j, 128, 128)
            wins.append((x, y, w, h))
    return wins


def test_header_statistics_are_the_documented_sample(pair, bigsrc,
                                                     tmp_path):
    """The header's approximate statistics against numpy over the
    documented sample windows of GDAL's own warped VRT (the oracle)."""
    lazy, _ = pair
    name = NAME + "@proj=EPSG:3857,bilinear"
    vrt, W, H, nodata = proj_vrt(bigsrc, tmp_path)
    vals = np.concatenate([window(vrt, *w).ravel().astype(np.float64)
                           for w in _sample_windows(W, H)])
    ok = ~np.isnan(vals)
    if nodata is not None:
        ok &= vals != nodata
    v = vals[ok]
    md = gdal.Info(lazy.path(name), format="json")["bands"][0]["metadata"][""]
    assert md["STATISTICS_APPROXIMATE"] == "YES"
    assert float(md["STATISTICS_MINIMUM"]) == v.min()
    assert float(md["STATISTICS_MAXIMUM"]) == v.max()
    assert float(md["STATISTICS_MEAN"]) == pytest.approx(v.mean(), rel=1e-9)
    assert float(md["STATISTICS_STDDEV"]) == pytest.approx(v.std(), rel=1e-6)
    assert float(md["STATISTICS_VALID_PERCENT"]) == pytest.approx(
        100.0 * ok.sum() / ok.size, rel=1e-9)


def test_kept_worker_handle_never_reads_a_replaced_source(mount_factory,
                                                         tmp_path):
    """A worker keeps its window handle between the pieces of one output
    (worker.c, kept handles).  With one worker, the source is replaced
    (another inode, other pixels, the same grid) after a window was read:
    a window of the new output is the new source's (gdalwarp's VRT of it),
    not the kept handle's."""
    d = tmp_path / "src"
    d.mkdir()
    make_source(d / "x.tif")
    m = mount_factory(src=d, workers=1)
    name = m.path("x.tif@proj=EPSG:3857,bilinear")
    vrt = str(tmp_path / "w.vrt")
    warp = ["gdalwarp", "-q", "-overwrite", "-of", "VRT", "-t_srs",
            "EPSG:3857", "-r", "bilinear", "-wm", "64", "-et", "0.125",
            str(d / "x.tif"), vrt]
    subprocess.run(warp, check=True)
    old = window(vrt, BLOCK, BLOCK, BLOCK, BLOCK)
    np.testing.assert_array_equal(window(name, 0, 0, BLOCK, BLOCK),
                                  window(vrt, 0, 0, BLOCK, BLOCK))
    # a second block of the same output: through the kept handle
    np.testing.assert_array_equal(window(name, BLOCK, BLOCK, BLOCK, BLOCK),
                                  old)
    make_source(d / "x.tmp", shift=1000)
    os.rename(d / "x.tmp", d / "x.tif")
    subprocess.run(warp, check=True)
    for (x, y) in [(2 * BLOCK, 2 * BLOCK), (BLOCK, BLOCK)]:
        got = window(name, x, y, BLOCK, BLOCK)
        np.testing.assert_array_equal(got, window(vrt, x, y, BLOCK, BLOCK))
    assert not np.array_equal(got, old)


def test_window_computes_only_its_blocks(mount_factory, bigsrc):
    m = mount_factory(src=bigsrc)
    name = NAME + "@focal=3,max"
    before = stats(m)["lazy_blocks"]
    # one block exactly
    window(m.path(name), 2 * BLOCK, 3 * BLOCK, BLOCK, BLOCK)
    assert stats(m)["lazy_blocks"] - before == 1
    # a window across the corner of four blocks, one of them stored
    window(m.path(name), 3 * BLOCK - 10, 4 * BLOCK - 10, 20, 20)
    assert stats(m)["lazy_blocks"] - before == 4
    # read again: nothing computed
    window(m.path(name), 2 * BLOCK, 3 * BLOCK, BLOCK, BLOCK)
    assert stats(m)["lazy_blocks"] - before == 4


def test_concurrent_readers_compute_each_block_once(mount_factory, bigsrc,
                                                   pair):
    m = mount_factory(src=bigsrc)
    name = NAME + "@proj=EPSG:3857,bilinear"
    rnd = random.Random(7)
    wins = []
    for i in range(16):
        x = 1000 + rnd.randrange(0, 1400)
        y = 1000 + rnd.randrange(0, 1400)
        wins.append((x, y, 600, 600))
    results = [None] * 16
    errors = []

    def run(i):
        try:
            results[i] = window(m.path(name), *wins[i])
        except Exception as e:  # reported below
            errors.append(e)

    ts = [threading.Thread(target=run, args=(i,)) for i in range(16)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(300)
    assert not errors, errors
    blocks = set()
    for (x, y, w, h) in wins:
        for by in range(y // BLOCK, (y + h - 1) // BLOCK + 1):
            for bx in range(x // BLOCK, (x + w - 1) // BLOCK + 1):
                blocks.add((bx, by))
    # a reader is answered before its block's commit ends (pool.c note
    # 12): the counts are taken once the commits have caught up with the
    # jobs (bounded; a block computed twice never catches up)
    deadline = time.monotonic() + 30
    s = stats(m)
    while s["store_objects"] < s["jobs_started"] and \
            time.monotonic() < deadline:
        time.sleep(0.05)
        s = stats(m)
    # each block computed once: one job per stored piece (the blocks and
    # the statistics), and the blocks are those of the windows -- and the
    # first block, whose first tile follows the header: GDAL reads the
    # header in 8 KiB pieces, and the last one may reach into that tile
    assert s["jobs_started"] == s["store_objects"], s
    assert s["lazy_blocks"] == s["store_objects"] - 1, s
    assert s["lazy_blocks"] in (len(blocks), len(blocks) + 1), s
    _, whole = pair
    for i in range(16):
        np.testing.assert_array_equal(results[i],
                                      window(whole.path(name), *wins[i]))


def _kill_rounds(mount_factory, bigsrc, tmp_path, rounds, seed):
    """Each round: a cp of a never-computed output, the daemon SIGKILLed
    at a random moment while blocks are computed and committed; the store
    verifies clean, and after a remount the output read whole (stored
    blocks and recomputed ones) equals the whole computation."""
    ref = mount_factory(src=bigsrc, options=["lazy=0"])
    cache = tmp_path / "killcache"
    rnd = random.Random(seed)
    for r in range(rounds):
        t = 10 * r + 5
        name = NAME + "@focal=3@reclass=-inf:%d:1,%d:inf:2" % (t, t)
        m = mount_factory(src=bigsrc, cache=cache, mnt=tmp_path / "km")
        reader = subprocess.Popen(["cp", m.path(name),
                                   str(tmp_path / "copy.tif")],
                                  stderr=subprocess.DEVNULL)
        time.sleep(rnd.uniform(0.2, 1.2))
        os.kill(m.pid, signal.SIGKILL)
        reader.wait(60)
        m.stop()
        # the next mount repairs what the kill left (scratch), then serves
        m = mount_factory(src=bigsrc, cache=cache, mnt=tmp_path / "km")
        got = whole_bytes(m, name)
        m.stop()
        assert got == whole_bytes(ref, name), "round %d" % r
        verify_clean(cache)


def test_sigkill_while_blocks_commit(mount_factory, bigsrc, tmp_path):
    _kill_rounds(mount_factory, bigsrc, tmp_path, 3, 11)


@pytest.mark.slow
def test_sigkill_while_blocks_commit_50(mount_factory, bigsrc, tmp_path):
    _kill_rounds(mount_factory, bigsrc, tmp_path, 50, 12)


def _pread(path, off, n):
    fd = os.open(path, os.O_RDONLY)
    try:
        return os.pread(fd, n, off)
    finally:
        os.close(fd)


def jobs_idle(m, timeout=60):
    """The mount's counters once no job is running or queued (or after
    timeout seconds)."""
    deadline = time.monotonic() + timeout
    while True:
        s = stats(m)
        if (s["jobs_running"] == 0 and s["jobs_queued"] == 0) or \
                time.monotonic() > deadline:
            return s
        time.sleep(0.1)


def waiting_reader(m, path, off):
    """A process reading 1 MiB of path at off, once the mount counts a
    read waiting for blocks (it waits for them then)."""
    before = stats(m)["lazy_waits"]
    reader = subprocess.Popen(
        [sys.executable, "-c",
         "import os\nfd = os.open(%r, os.O_RDONLY)\n"
         "os.pread(fd, 1 << 20, %d)\n" % (path, off)],
        stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while stats(m)["lazy_waits"] == before and time.monotonic() < deadline:
        time.sleep(0.02)
    return reader


def test_interrupted_reader_cancels_its_blocks(mount_factory, bigsrc):
    m = mount_factory(src=bigsrc)
    name = NAME + "@focal=15,median"
    path = m.path(name)
    off = os.stat(path).st_size // 2
    # a reader of 1 MiB in the middle (a few tiles of one or two blocks
    # nobody computed), killed while it waits for them
    reader = waiting_reader(m, path, off)
    reader.send_signal(signal.SIGKILL)
    reader.wait(60)
    s = jobs_idle(m)
    assert s["lazy_cancelled"] > 0, s
    assert s["jobs_cancelled"] > 0, s
    # queued blocks are dropped; running ones are short and may finish
    # (a block computes without a progress callback to stop it)
    assert s["lazy_blocks"] < s["lazy_waits"], s
    # the next read computes the dropped ones, correctly: the same bytes
    # as a fresh mount that was never interrupted
    got = _pread(path, off, 1 << 20)
    assert stats(m)["lazy_blocks"] > s["lazy_blocks"]
    fresh = mount_factory(src=bigsrc)
    assert got == _pread(fresh.path(name), off, 1 << 20)


def test_complete_finishes_an_opened_output(mount_factory, bigsrc):
    """complete=1: opening a lazy output (gdalinfo reads its header only)
    has all its blocks computed in the background."""
    m = mount_factory(src=bigsrc, options=["complete=1"])
    name = NAME + "@focal=3,max"
    nb = ((SIDE + BLOCK - 1) // BLOCK) ** 2
    total = all_blocks(SIDE, SIDE)
    gdal.Info(m.path(name))
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        if os.getxattr(m.path(name), "user.rasterfs.blocks") == \
                b"%d/%d" % (total, total):
            break
        time.sleep(0.2)
    assert os.getxattr(m.path(name), "user.rasterfs.blocks") == \
        b"%d/%d" % (total, total)
    assert stats(m)["lazy_blocks"] == nb
    assert stats(m)["lazy_ovr_blocks"] == total - nb
    # and complete=0 (the default) computes nothing it was not asked for
    m0 = mount_factory(src=bigsrc)
    gdal.Info(m0.path(name))
    time.sleep(1)
    assert stats(m0)["lazy_blocks"] == 0
    assert stats(m0)["lazy_ovr_blocks"] == 0


def test_status_counts_blocks_and_cancel_stops_them(mount_factory, bigsrc):
    """`rasterfs status` shows a lazy output's block jobs as one row with
    its stored blocks; `rasterfs cancel FILE` (and --all) drops every
    queued block of it; a later read computes what it needs, correctly."""
    from rfsmount import BIN
    m = mount_factory(src=bigsrc, options=["complete=1"])
    name = NAME + "@focal=9,median"
    path = m.path(name)
    nb = all_blocks(SIDE, SIDE)          # every level's (lazy.h)
    gdal.Info(path)                      # complete=1: all blocks queued
    deadline = time.monotonic() + 60
    while stats(m)["lazy_blocks"] == 0 and time.monotonic() < deadline:
        time.sleep(0.05)
    r = subprocess.run([BIN, "status", str(m.mnt)], capture_output=True,
                       text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    rows = [l for l in r.stdout.splitlines() if name in l]
    # one row for the output, none per block
    assert len(rows) == 1 and "#" not in r.stdout, r.stdout
    detail = r.stdout.splitlines()[r.stdout.splitlines().index(rows[0]) + 1]
    stored, total = detail.split()[1].rstrip(",;").split("/")
    assert int(total) == nb and 0 < int(stored) < nb, r.stdout
    assert "queued" in detail, r.stdout
    r = subprocess.run([BIN, "cancel", path], capture_output=True,
                       text=True, timeout=60)
    assert r.returncode == 0 and r.stdout.strip() == "1 cancelled", r
    # running blocks are short and may still be stored; nothing queued
    s = jobs_idle(m)
    assert s["jobs_running"] == 0 and s["jobs_queued"] == 0, s
    assert s["jobs_cancelled"] > 0, s
    left = int(os.getxattr(path, "user.rasterfs.blocks").split(b"/")[0])
    assert left < nb
    assert os.getxattr(path, "user.rasterfs.state") == b"partial"
    time.sleep(1)
    assert stats(m)["lazy_blocks"] == s["lazy_blocks"]   # nothing more
    # cancel --all finds block jobs too (a window read left waiting)
    off = os.stat(path).st_size - (1 << 20)
    reader = waiting_reader(m, path, off)
    r = subprocess.run([BIN, "cancel", "--all", str(m.mnt)],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r
    reader.wait(60)
    # the reader gets an error or (its blocks already stored) its bytes:
    # never a short read reported as success
    assert reader.returncode != 0 or \
        stats(m)["lazy_blocks"] > s["lazy_blocks"]
    got = _pread(path, off, 1 << 20)
    fresh = mount_factory(src=bigsrc)
    assert got == _pread(fresh.path(name), off, 1 << 20)
