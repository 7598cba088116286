"""The store outlives the mount; a dead worker costs one job, not the mount."""

import os
import random
import shutil
import signal
import subprocess
import threading
import time

import numpy as np
import pytest

import rfsref
from rfsmount import cpu_ticks, errname, read_bytes

NAME = "opengeos_dtm.tif@proj=EPSG:3857@focal=5,max"


def test_remount_serves_from_store(mount_factory, tmp_path):
    src = mount_factory.source()
    cache = tmp_path / "store"
    shutil.copy(src / "opengeos_dtm.tif", src / "chg.tif")
    m1 = mount_factory(src=src, cache=cache)
    data = read_bytes(m1.path(NAME))
    old = read_bytes(m1.path("chg.tif@focal=3"))
    s = m1.stats()
    assert s["jobs_started"] == 2 and s["jobs_failed"] == 0
    assert s["store_objects"] >= 2
    assert s["store_bytes"] >= len(data) + len(old)
    m1.stop()
    assert not os.path.ismount(str(m1.mnt))

    # A changed source is a new identity (new inode, size, mtime).
    tmp = src / "chg.tmp"
    shutil.copy(src / "srtm1_N48W125_crop.tif", tmp)
    os.rename(tmp, src / "chg.tif")

    m2 = mount_factory(src=src, cache=cache)
    s0 = m2.stats()
    assert s0["jobs_started"] == 0
    assert s0["store_objects"] >= 2
    # A stored output has its exact size at once, before any open.
    assert os.stat(m2.path(NAME)).st_size == len(data)
    assert read_bytes(m2.path(NAME)) == data
    s1 = m2.stats()
    assert s1["jobs_started"] == 0, "a stored output was computed again"
    assert s1["cache_hits"] > s0["cache_hits"]

    new = read_bytes(m2.path("chg.tif@focal=3"))
    assert m2.stats()["jobs_started"] == 1, "a changed source was not redone"
    assert new != old
    rfsref.assert_focal(rfsref.Raster(new), rfsref.Raster(src / "chg.tif"),
                        3, "mean", "square")


def _busiest(pids, interval=0.5):
    t0 = {p: cpu_ticks(p) for p in pids}
    time.sleep(interval)
    d = {p: cpu_ticks(p) - t0[p] for p in pids}
    p = max(d, key=d.get) if d else None
    return p if p is not None and d[p] > 0 else None


@pytest.mark.slow
def test_worker_killed_mid_job(mount_factory):
    src = mount_factory.source()
    big = src / "big.tif"
    # 4x upsampled DTM (Float32, nodata): focal=63,median takes a while.
    subprocess.run(["gdalwarp", "-q", "-ts", "1132", "1036", "-r", "bilinear",
                    str(src / "opengeos_dtm.tif"), str(big)], check=True)
    m = mount_factory(src=src, workers=2)
    name = m.path("big.tif@focal=63,median")
    deadline = time.monotonic() + 20
    while len(m.workers_pids()) < 2 and time.monotonic() < deadline:
        time.sleep(0.1)
    workers = m.workers_pids()
    assert len(workers) >= 2, "expected 2 worker processes, got %r" % workers
    s0 = m.stats()

    errs = [None, None]

    def reader(i):
        try:
            with open(name, "rb") as f:
                f.read()
            errs[i] = 0
        except OSError as e:
            errs[i] = e.errno
    readers = [threading.Thread(target=reader, args=(i,), daemon=True)
               for i in range(2)]
    for t in readers:
        t.start()

    victim = None
    deadline = time.monotonic() + 30
    while victim is None and time.monotonic() < deadline:
        if m.stats()["jobs_running"] >= 1:
            victim = _busiest(m.workers_pids())
        else:
            time.sleep(0.1)
    assert victim is not None, "no busy worker found"
    assert all(e is None for e in errs), "job ended before the kill: %r" % errs
    os.kill(victim, signal.SIGKILL)

    for t in readers:
        t.join(60)
    assert not any(t.is_alive() for t in readers), "readers still blocked"
    assert [errname(e) for e in errs] == ["EIO", "EIO"]
    s1 = m.stats()
    assert s1["jobs_failed"] == s0["jobs_failed"] + 1
    assert s1["jobs_running"] == 0
    assert m.alive()

    # A new worker takes the dead one's place.
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        now = m.workers_pids()
        if len(now) >= 2 and victim not in now:
            break
        time.sleep(0.1)
    assert victim not in m.workers_pids()
    assert len(m.workers_pids()) >= 2

    # The next read computes it again and gets it right.
    data = read_bytes(name, timeout=600)
    assert m.stats()["jobs_started"] == s1["jobs_started"] + 1
    got = rfsref.Raster(data)
    inp = rfsref.Raster(big)
    rfsref.assert_same_grid(got, inp)
    b = got.band(1)
    assert b["type"] == inp.band(1)["type"]  # Float32 -> Float32
    h, w = b["array"].shape
    rnd = random.Random(63)
    pts = [(0, 0), (0, w - 1), (h - 1, 0), (h - 1, w - 1), (h // 2, w // 2),
           (31, 31), (5, w - 7)] + \
        [(rnd.randrange(h), rnd.randrange(w)) for _ in range(40)]
    ib = inp.band(1)
    want = rfsref.focal_at(ib["array"], ib["nodata"], 63, "median", "square",
                           pts)
    arr = b["array"]
    for (i, j), v in zip(pts, want):
        if np.isnan(v):
            assert not rfsref.valid_mask(arr[i:i + 1, j:j + 1],
                                         b["nodata"]).any()
        else:
            assert arr[i, j] == np.float32(v), (i, j, arr[i, j], v)
