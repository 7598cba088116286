"""Counters and attributes that add up.

.rasterfs/stats (include/rasterfs/stats.h): at every moment

    jobs_done + jobs_failed + jobs_cancelled + jobs_running + jobs_queued
        == jobs_started + prefix_jobs

with cancelled jobs counted apart from failed ones; and `getfattr -d`
lists user.rasterfs.error only for an output whose job failed.  The
expected numbers are counted by the test from what it asked for.
"""

import os
import subprocess
import threading
import time

import pytest

from rfsmount import open_errno, read_bytes

SRC = "srtm1_N48W125_crop.tif"
SLOW1 = "slow.tif@focal=15,median"   # a few seconds each on 1024 x 1024
SLOW2 = "slow.tif@focal=15,max"
JOB_KEYS = ("jobs_done", "jobs_failed", "jobs_cancelled", "jobs_running",
            "jobs_queued")


def _adds_up(s):
    return sum(s[k] for k in JOB_KEYS) == s["jobs_started"] + \
        s["prefix_jobs"]


def _xattr(path, name):
    return os.getxattr(path, "user.rasterfs." + name).decode()


def _slow_source(src, size=1024):
    """An upsampled copy of a test raster (gdalwarp -ts, GDAL's own)."""
    subprocess.run(["gdalwarp", "-q", "-ts", str(size), str(size),
                    str(src / "sub" / "dem.tif"), str(src / "slow.tif")],
                   check=True)


def _wait(pred, timeout, step=0.05):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(step)
    return pred()


def test_counters_add_up_in_a_mixed_run(mount_factory):
    src = mount_factory.source()
    _slow_source(src)
    m = mount_factory(src, workers=1)
    samples, bad = [], []
    stop = threading.Event()

    def sample():
        while not stop.is_set():
            s = m.stats()
            samples.append(s)
            if not _adds_up(s):
                bad.append(s)

    th = threading.Thread(target=sample, daemon=True)
    th.start()
    try:
        # two outputs read: 2 started, 2 done
        assert read_bytes(m.path(SRC + "@focal=3"))
        assert read_bytes(m.path(SRC + "@focal=3,max"))
        # a source GDAL cannot open: 1 started, 1 failed
        assert open_errno(m.path("README.md@focal=3")) != 0
        # a chain that starts with a warp: 1 started + 1 prefix, 2 done
        assert read_bytes(m.path(SRC + "@proj=EPSG:3857@focal=3"))
        # a warm job: 1 started, 1 done
        assert _xattr(m.path(SRC + "@focal=5"), "warm") in ("queued",
                                                             "done")
        assert _wait(lambda: _xattr(m.path(SRC + "@focal=5"), "state")
                     == "done", 120)
        # two warm slow jobs on one worker, cancelled while one runs and
        # the other waits: 2 started, 2 cancelled
        assert _xattr(m.path(SLOW1), "warm") == "queued"
        assert _xattr(m.path(SLOW2), "warm") == "queued"
        assert _wait(lambda: m.stats()["jobs_running"] == 1 and
                     m.stats()["jobs_queued"] == 1, 60)
        time.sleep(0.3)
        assert _xattr(m.path(SLOW2), "cancel") == "cancelled"
        assert _xattr(m.path(SLOW1), "cancel") == "cancelled"
        assert _wait(lambda: m.stats()["jobs_running"] == 0 and
                     m.stats()["jobs_queued"] == 0, 30)
    finally:
        stop.set()
        th.join(30)
    s = m.stats()
    assert not bad, bad[:3]
    assert _adds_up(s), s
    busy = [x for x in samples if x["jobs_running"] or x["jobs_queued"]]
    assert len(busy) >= 10, "too few samples while jobs ran: %d of %d" % (
        len(busy), len(samples))
    want = {"jobs_started": 7, "prefix_jobs": 1, "jobs_done": 5,
            "jobs_failed": 1, "jobs_cancelled": 2, "jobs_running": 0,
            "jobs_queued": 0}
    assert {k: s[k] for k in want} == want, s
    assert _xattr(m.path(SLOW1), "state") == "cancelled"


def _getfattr(path):
    r = subprocess.run(["getfattr", "-d", path], stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, timeout=30)
    return r.returncode, (r.stdout + r.stderr).decode(errors="replace")


def test_getfattr_lists_error_only_after_a_failure(mount):
    ok = mount.path(SRC + "@focal=3,min")
    never = mount.path(SRC + "@focal=7")
    bad = mount.path("README.md@focal=5")
    assert read_bytes(ok)
    for path in (ok, never, bad):
        rc, text = _getfattr(path)
        assert rc == 0 and "user.rasterfs.error" not in text and \
            "No such attribute" not in text, text
        assert "user.rasterfs.chain=" in text, text
        assert "user.rasterfs.error" not in os.listxattr(path)
    assert open_errno(bad) != 0
    rc, text = _getfattr(bad)
    assert rc == 0 and 'user.rasterfs.error="RFS-E200 ' in text, text
    assert "user.rasterfs.error" in os.listxattr(bad)
    assert _xattr(bad, "error").startswith("RFS-E200 ")
    with pytest.raises(OSError):  # ENODATA, as before
        _xattr(ok, "error")
