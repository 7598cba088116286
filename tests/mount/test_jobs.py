"""Seeing, steering and limiting the work: the jobs file, job xattrs,
cancel on interrupt, max_pixels, worker_mem, remembered failures and the
status / warm / cancel commands."""

import errno
import json
import os
import shutil
import signal
import subprocess
import threading
import time
from pathlib import Path

import numpy as np
import pytest

import rfsref
from rfsmount import BIN, open_errno, read_bytes

PY = "/usr/bin/python3"
SLOW = "slow.tif@focal=15,median"  # a few seconds on a 1024 x 1024 raster


def _jobs(m):
    with open(m.mnt / ".rasterfs" / "jobs") as f:
        return [json.loads(line) for line in f if line.strip()]


def _job(m, path):
    """The newest entry for path in the jobs file, or None."""
    js = [j for j in _jobs(m) if j["path"] == path]
    return max(js, key=lambda j: j["id"]) if js else None


def _xattr(path, name):
    return os.getxattr(path, "user.rasterfs." + name).decode()


def _slow_source(src, size=1024):
    """An upsampled copy of a test raster, so a median is slow enough to
    watch (gdalwarp -ts, GDAL's own tool)."""
    subprocess.run(["gdalwarp", "-q", "-ts", str(size), str(size),
                    str(src / "sub" / "dem.tif"), str(src / "slow.tif")],
                   check=True)


def _scratch_files(cache):
    return [p for p in Path(cache, "scratch").glob("*/w*/*")]


def _wait(pred, timeout, step=0.05):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        v = pred()
        if v:
            return v
        time.sleep(step)
    return pred()


def test_jobs_progress_rises_to_done(mount_factory):
    src = mount_factory.source()
    _slow_source(src)
    m = mount_factory(src)
    out = {}
    t = threading.Thread(target=lambda: out.update(
        data=read_bytes(m.path(SLOW), timeout=300)))
    t.start()
    seen = []
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        j = _job(m, SLOW)
        if j:
            seen.append((j["state"], j["progress"]))
            if j["state"] not in ("queued", "running"):
                break
        time.sleep(0.05)
    t.join(300)
    assert "data" in out
    assert seen[-1] == ("done", 100.0), seen
    progress = [p for _, p in seen]
    assert progress == sorted(progress), progress
    assert len({p for p in progress if 0 < p < 100}) >= 2, progress
    j = _job(m, SLOW)
    assert j["chain"] == "@focal=15,median,square"
    assert j["pid"] in m.workers_pids()
    assert j["error"] is None and j["elapsed"] > 0
    assert j["started"].endswith("Z") and "T" in j["started"]


def test_interrupt_cancels_and_cleans_up(mount_factory):
    src = mount_factory.source()
    _slow_source(src)
    m = mount_factory(src)
    path = m.path(SLOW)
    reader = subprocess.Popen(
        [PY, "-c", "import os, sys; os.open(sys.argv[1], os.O_RDONLY)",
         path], stderr=subprocess.DEVNULL,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        assert _wait(lambda: (_job(m, SLOW) or {}).get("state") == "running",
                     30)
        time.sleep(0.5)  # well into the job
        t0 = time.monotonic()
        reader.send_signal(signal.SIGINT)
        j = _wait(lambda: (_job(m, SLOW) or {}).get("state") == "cancelled"
                  and _job(m, SLOW), 10, 0.02)
        took = time.monotonic() - t0
    finally:
        reader.kill()
        reader.wait()
    assert j and j["error"] == "RFS-E204", _jobs(m)
    assert took < 2.0, took
    assert _wait(lambda: not _scratch_files(m.cache), 2), \
        _scratch_files(m.cache)
    st = m.stats()
    assert st["store_objects"] == 0 and st["jobs_running"] == 0
    # not remembered as a failure: the next read computes it, correctly
    with pytest.raises(OSError) as e:
        _xattr(path, "error")
    assert e.value.errno == errno.ENODATA
    got = rfsref.Raster(read_bytes(path, timeout=300))
    ref = rfsref.Raster(src / "slow.tif")
    rfsref.assert_same_grid(got, ref)
    # the median at sampled cells (a whole-raster reference is too slow),
    # corners and edges included
    rng = np.random.default_rng(5)
    pts = [(0, 0), (1023, 1023), (0, 1023), (512, 0)] + \
        [tuple(x) for x in rng.integers(0, 1024, size=(300, 2))]
    want = rfsref.focal_at(ref.band()["array"], ref.band()["nodata"], 15,
                           "median", "square", pts)
    arr = got.band()["array"]
    np.testing.assert_allclose([arr[i, j] for i, j in pts], want,
                               rtol=1e-6)
    assert _job(m, SLOW)["state"] == "done"


def test_max_pixels_refuses_before_computing(mount_factory):
    m = mount_factory(options=["max_pixels=100000"])
    before = m.stats()
    t0 = time.monotonic()
    e = open_errno(m.path("srtm1_N48W125_crop.tif@focal=3"))  # 600 x 600
    assert e == errno.EFBIG
    assert time.monotonic() - t0 < 1.0
    after = m.stats()
    assert after["jobs_done"] == before["jobs_done"]
    assert after["store_objects"] == before["store_objects"] == 0
    err = _xattr(m.path("srtm1_N48W125_crop.tif@focal=3"), "error")
    assert err.startswith("RFS-E106 ") and "max_pixels=100000" in err
    # a reprojection is judged by the grid GDAL's warper would choose
    e = open_errno(m.path("srtm1_N48W125_crop.tif@proj=EPSG:3857"))
    assert e == errno.EFBIG
    # under the limit: served (283 x 259)
    assert read_bytes(m.path("sub/dem.tif@focal=3"))


def test_worker_mem_fails_job_not_mount(mount_factory):
    src = mount_factory.source()
    _slow_source(src, 3000)
    m = mount_factory(src, workers=1, options=["worker_mem=16"])
    name = "slow.tif@proj=EPSG:3857"
    e = open_errno(m.path(name))
    assert e == errno.ENOMEM
    j = _job(m, name)
    assert j["state"] == "failed" and j["error"] == "RFS-E203", j
    assert _xattr(m.path(name), "error").startswith("RFS-E203 ")
    assert m.alive()
    # the mount keeps serving other outputs, and real files
    assert read_bytes(m.path("sub/dem.tif@reclass=0:500:1"))
    assert read_bytes(m.path("sub/dem.tif"))
    assert m.alive()


def test_failure_remembered_then_retried(mount_factory):
    src = mount_factory.source()
    (src / "bad.tif").write_text("not a raster\n")
    m = mount_factory(src, options=["retry_after=1"])
    p = m.path("bad.tif@focal=3")
    assert open_errno(p) == errno.EIO
    assert open_errno(p) == errno.EIO  # at once, from memory
    assert m.stats()["jobs_started"] == 1
    assert _xattr(p, "state") == "failed"
    assert _xattr(p, "error").startswith("RFS-E200 ")
    time.sleep(1.2)
    assert open_errno(p) == errno.EIO  # retried after retry_after
    assert m.stats()["jobs_started"] == 2
    # a changed source is a new key: retried at once, and served
    shutil.copy(src / "sub" / "dem.tif", src / "bad.tif")
    assert read_bytes(p)


def test_xattrs_never_start_a_job(mount):
    p = mount.path("opengeos_dtm.tif@focal=9,max")
    before = mount.stats()["jobs_started"]
    assert _xattr(p, "state") == "absent"
    assert _xattr(p, "progress") == "0"
    assert _xattr(p, "chain") == "@focal=9,max,square"
    assert _xattr(p, "source") == "opengeos_dtm.tif"
    assert len(_xattr(p, "key")) == 32
    with pytest.raises(OSError) as e:
        _xattr(p, "error")
    assert e.value.errno == errno.ENODATA
    names = os.listxattr(p)
    assert "user.rasterfs.progress" in names
    assert "user.rasterfs.warm" not in names  # a command, never listed
    assert mount.stats()["jobs_started"] == before
    read_bytes(p)
    assert _xattr(p, "state") == "done"
    assert _xattr(p, "progress") == "100"


def _cli(*args, timeout=300):
    return subprocess.run([BIN] + list(args), stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, stdin=subprocess.DEVNULL,
                          timeout=timeout)


def test_warm_wait_names_the_bad_source(mount_factory):
    src = mount_factory.source()
    d = src / "batch"
    d.mkdir()
    for i in range(9):
        shutil.copy(src / "sub" / "dem.tif", d / ("dem%d.tif" % i))
    (d / "broken.tif").write_text("this is not a raster\n")
    m = mount_factory(src)
    r = _cli("warm", "--wait", str(m.mnt / "batch" / "*.tif@focal=3"))
    err = r.stderr.decode()
    assert r.returncode != 0
    assert "broken.tif@focal=3" in err and "RFS-E200" in err, err
    assert not any("dem%d.tif" % i in err for i in range(9)), err
    for i in range(9):
        assert _xattr(m.path("batch/dem%d.tif@focal=3" % i), "state") == "done"
    assert m.stats()["store_objects"] == 9
    # the plain table of `status` shows them, with the code
    r = _cli("status", str(m.mnt))
    out = r.stdout.decode()
    assert r.returncode == 0
    assert "batch/broken.tif@focal=3" in out and "RFS-E200" in out, out
    r = _cli("status", str(m.mnt), "--json")
    lines = [json.loads(x) for x in r.stdout.decode().splitlines()]
    assert sum(j["state"] == "done" for j in lines) == 9


def test_warm_returns_at_once_and_cancel(mount_factory):
    src = mount_factory.source()
    _slow_source(src)
    m = mount_factory(src)
    t0 = time.monotonic()
    r = _cli("warm", str(m.mnt / "slow.tif@focal=15,median"))
    assert r.returncode == 0, r.stderr
    assert time.monotonic() - t0 < 2.0
    assert _wait(lambda: (_job(m, SLOW) or {}).get("state") == "running",
                 30)
    r = _cli("cancel", "--all", str(m.mnt))
    assert r.returncode == 0 and b"1 cancelled" in r.stdout, r
    j = _wait(lambda: (_job(m, SLOW) or {}).get("state") == "cancelled"
              and _job(m, SLOW), 5)
    assert j and j["error"] == "RFS-E204"
    assert _xattr(m.path(SLOW), "state") == "cancelled"
    assert _wait(lambda: not _scratch_files(m.cache), 2)
    assert m.stats()["store_objects"] == 0


def test_job_timeout_stops_the_job(mount_factory):
    src = mount_factory.source()
    _slow_source(src)
    m = mount_factory(src, options=["job_timeout=1"])
    t0 = time.monotonic()
    assert open_errno(m.path(SLOW)) == errno.ETIMEDOUT
    assert time.monotonic() - t0 < 3.0
    j = _job(m, SLOW)
    assert j["state"] == "failed" and j["error"] == "RFS-E205", j
    assert _wait(lambda: not _scratch_files(m.cache), 2)
    # the worker was replaced: the mount serves the next output
    assert read_bytes(m.path("sub/dem.tif@focal=3"))
    assert m.stats()["workers_restarted"] >= 1
