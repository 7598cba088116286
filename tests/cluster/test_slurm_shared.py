"""`rasterfs warm --slurm` on a real (single-node) Slurm cluster: a job
array of `rasterfs run --shared` tasks fills a mount's shared tier; a
mount with an empty store then serves everything without a job; a task
cancelled mid-way leaves nothing under a final name; a stale claim is
taken over after its lease.

Oracles: the bytes a mount without a shared tier computes (md5), the
mounts' counters, Slurm's own states (squeue), the files in the shared
directory and the tasks' logs."""

import hashlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from osgeo import gdal, osr

import slurm

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "mount"))
import rfsmount  # noqa: E402
from rfsmount import BIN, read_bytes  # noqa: E402

rfsmount.install_signal_cleanup()
slurm.install_signal_cleanup()   # after rfsmount's: the cluster stops first

pytestmark = [pytest.mark.cluster, pytest.mark.slow]

gdal.UseExceptions()


def md5(b):
    return hashlib.md5(b).hexdigest()


def wait_for(what, cond, timeout):
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError("%s: not within %d s" % (what, timeout))
        time.sleep(0.1)


def make_raster(path, seed, size=200):
    rng = np.random.default_rng(seed)
    a = (rng.random((size, size)) * 1000).astype(np.float32)
    ds = gdal.GetDriverByName("GTiff").Create(str(path), size, size, 1,
                                              gdal.GDT_Float32)
    ds.SetGeoTransform((500000 + seed * 10000, 30, 0, 4600000, 0, -30))
    srs = osr.SpatialReference()
    srs.ImportFromEPSG(32633)
    ds.SetProjection(srs.ExportToWkt())
    ds.GetRasterBand(1).WriteArray(a)
    ds = None


def objects(shared):
    out = {}
    for j in Path(shared, "objects").glob("*/*.json"):
        out[j.stem] = (j.with_suffix(".tif"), json.loads(j.read_text()))
    return out


def final_names_sound(shared):
    """Every file under objects/ is half of a published pair whose object
    has its sidecar's size: nothing partial under a final name."""
    for f in Path(shared, "objects").rglob("*"):
        if f.is_dir():
            continue
        assert f.suffix in (".tif", ".json"), f
        other = f.with_suffix(".json" if f.suffix == ".tif" else ".tif")
        assert other.exists(), "%s without its pair" % f
        if f.suffix == ".json":
            assert f.with_suffix(".tif").stat().st_size == \
                json.loads(f.read_text())["size"], f


@pytest.fixture
def mounts(tmp_path):
    started = []

    def start(src, name, options=()):
        m = rfsmount.Mount(src, tmp_path / ("mnt-" + name),
                           tmp_path / ("cache-" + name),
                           tmp_path / ("log-" + name), 2, list(options))
        started.append(m)
        return m.start()
    yield start
    for m in reversed(started):
        m.stop()


def warm(cluster, *args, timeout=600):
    return subprocess.run([BIN, "warm"] + [str(a) for a in args],
                          env=cluster.env, capture_output=True, text=True,
                          timeout=timeout)


def test_array_fills_the_shared_tier(cluster, mounts, tmp_path, timings):
    src = tmp_path / "src"
    src.mkdir()
    for i in range(20):
        make_raster(src / ("t%02d.tif" % i), i)
    shared = tmp_path / "shared"
    a = mounts(src, "a", ["shared=%s" % shared])
    t0 = time.monotonic()
    r = warm(cluster, "--slurm", "--max-running", "8", "--wait",
             a.path("*.tif@focal=3"))
    timings.append(("warm --slurm --wait, 20 tasks", time.monotonic() - t0))
    assert r.returncode == 0, r.stdout + r.stderr
    assert "20 done, 0 failed" in r.stdout, r.stdout
    assert a.stats()["jobs_started"] == 0     # the tasks computed them
    objs = objects(shared)
    assert len(objs) == 20
    final_names_sound(shared)
    [run_dir] = list((shared / "runs").iterdir())
    results = [json.loads((run_dir / "results" / ("%d.json" % i))
                          .read_text()) for i in range(20)]
    assert all(x["status"] == "done" for x in results), results
    assert sorted(x["name"] for x in results) == \
        ["t%02d.tif@focal=3,mean,square" % i for i in range(20)]

    # a mount with an empty store serves all 20 with no job
    b = mounts(src, "b", ["shared=%s" % shared])
    c = mounts(src, "c")   # no shared tier: computes them
    for i in range(20):
        name = "t%02d.tif@focal=3" % i
        assert md5(read_bytes(b.path(name))) == \
            md5(read_bytes(c.path(name))), name
    sb = b.stats()
    assert sb["jobs_started"] == 0 and sb["shared_hits"] == 20, sb
    assert c.stats()["jobs_started"] == 20


def test_cancelled_task_leaves_nothing(cluster, mounts, tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    make_raster(src / "big.tif", 7, size=3000)  # median: ~5 s
    shared = tmp_path / "shared"
    a = mounts(src, "a", ["shared=%s" % shared])
    p = subprocess.Popen([BIN, "warm", "--slurm", "--wait",
                          a.path("big.tif@focal=15,median")], env=cluster.env,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         text=True)
    try:
        wait_for("the task's run dir", lambda: (shared / "runs").exists()
                 and list((shared / "runs").iterdir()), 60)
        [run_dir] = list((shared / "runs").iterdir())
        log = run_dir / "logs" / "0.out"
        # its worker runs the job: mid-way
        wait_for("the job to start", lambda: log.exists() and
                 "started on worker" in log.read_text(), 120)
        jobid = cluster.run("squeue", "-h", "-o", "%F").stdout.split()[0]
        cluster.run("scancel", jobid)
        out, err = p.communicate(timeout=120)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    assert p.returncode == 1, out + err
    assert a.path("big.tif@focal=15,median") in err and "RFS-E204" in err, err
    # nothing under a final name; the claim was released or will expire
    final_names_sound(shared)
    assert objects(shared) == {}
    assert not list((shared / "objects").rglob("*.tif"))
    assert not list((shared / "tmp").iterdir()), \
        list((shared / "tmp").iterdir())
    st = cluster.states(jobid)
    assert st == {0: "CANCELLED"}, st


def test_stale_claim_taken_over(cluster, mounts, tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    make_raster(src / "s.tif", 3)
    # the portable key: from a first tier, computed here
    r = subprocess.run([BIN, "run", "--shared", str(tmp_path / "s1"),
                        str(src / "s.tif") + "@slope"], capture_output=True,
                       text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    [pkey] = objects(tmp_path / "s1").keys()
    shared = tmp_path / "shared"
    (shared / "claims").mkdir(parents=True)
    claim = shared / "claims" / pkey
    # a holder on another node that died: its lease is never renewed
    claim.write_text("host=deadnode\npid=4242\nstarted=1\nlease=3\n")
    a = mounts(src, "a", ["shared=%s" % shared])
    r = warm(cluster, "--slurm", "--wait", a.path("s.tif@slope"))
    assert r.returncode == 0, r.stdout + r.stderr
    [run_dir] = list((shared / "runs").iterdir())
    log = (run_dir / "logs" / "0.out").read_text()
    assert "is claimed by deadnode pid 4242" in log, log
    assert "took over the claim" in log, log
    assert list(objects(shared).keys()) == [pkey]
    assert not claim.exists()
    final_names_sound(shared)
