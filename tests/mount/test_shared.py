"""The shared tier (shared=DIR): mounts with separate stores share what
they computed through DIR, by portable key; `rasterfs run --shared`;
claims; `rasterfs cache gc --shared`; `rasterfs warm --slurm` before it
reaches Slurm.  (Job arrays on a real Slurm cluster: tests/cluster.)

Oracles: the bytes a mount without a shared tier computes for the same
name (md5), the mounts' counters (jobs_started, shared_hits, ...), the
files in DIR (their sizes, XXH3 read back through the sidecar's numbers
by a second reader), and damage the test planted."""

import hashlib
import json
import os
import subprocess
import time
from pathlib import Path

import pytest
from osgeo import gdal

from rfsmount import BIN, Mount, open_errno, read_bytes

gdal.UseExceptions()

DEM = "opengeos_dtm.tif"
SRTM = "srtm1_N48W125_crop.tif"
OLINDA = "stars_olinda_dem_utm25s.tif"


def md5(b):
    return hashlib.md5(b).hexdigest()


def objects(shared):
    """{pkey: (tif path, sidecar dict)} of DIR's published objects."""
    out = {}
    for j in Path(shared, "objects").glob("*/*.json"):
        out[j.stem] = (j.with_suffix(".tif"), json.loads(j.read_text()))
    return out


def wait_for(cond, timeout=30, what="condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return
        time.sleep(0.05)
    raise AssertionError("timed out waiting for %s" % what)


def run(*args, timeout=180):
    return subprocess.run([BIN, "run"] + [str(a) for a in args],
                          capture_output=True, text=True, timeout=timeout)


def test_two_mounts_share(mount_factory, tmp_path):
    src = mount_factory.source()
    shared = tmp_path / "shared"
    a = mount_factory(src=src, workers=1, options=["shared=%s" % shared])
    b = mount_factory(src=src, workers=1, options=["shared=%s" % shared])
    names = [DEM + "@focal=3", SRTM + "@proj=EPSG:32610,bilinear@slope",
             OLINDA + "@fmt=png"]
    got_a = {n: read_bytes(a.path(n)) for n in names}
    # published after the local commit, in the background
    wait_for(lambda: a.stats()["shared_published"] == 3, what="publish")
    sa = a.stats()
    assert sa["jobs_started"] == 3 and sa["shared_misses"] == 3, sa
    assert sa["content_hashes"] == 3, sa
    objs = objects(shared)
    # the kept prefix (SRTM@proj=...) is local to A, not published
    assert len(objs) == 3, objs
    for tif, meta in objs.values():
        assert tif.stat().st_size == meta["size"]
    # B: the same bytes with no job
    before = b.stats()
    got_b = {n: read_bytes(b.path(n)) for n in names}
    sb = b.stats()
    assert sb["jobs_started"] == before["jobs_started"] == 0, sb
    assert sb["shared_hits"] == 3 and sb["prefix_jobs"] == 0, sb
    for n in names:
        assert md5(got_b[n]) == md5(got_a[n]), n
    # and a mount without a tier computes the same bytes
    c = mount_factory(src=src, workers=1)
    for n in names:
        assert md5(read_bytes(c.path(n))) == md5(got_a[n]), n
    assert c.stats()["content_hashes"] == 0   # no tier, no hashing
    # B serves them from its own store from now on
    read_bytes(b.path(names[0]))
    assert b.stats()["cache_hits"] == 1


def test_corrupt_object_is_not_served(mount_factory, tmp_path):
    src = mount_factory.source()
    shared = tmp_path / "shared"
    name = DEM + "@hillshade"
    a = mount_factory(src=src, workers=1, options=["shared=%s" % shared])
    good = read_bytes(a.path(name))
    wait_for(lambda: a.stats()["shared_published"] == 1, what="publish")
    [(tif, meta)] = objects(shared).values()
    # one byte flipped in the middle: same size, another checksum
    with open(tif, "r+b") as f:
        f.seek(len(good) // 2)
        c = f.read(1)
        f.seek(len(good) // 2)
        f.write(bytes([c[0] ^ 0x5a]))
    b = mount_factory(src=src, workers=1, options=["shared=%s" % shared])
    got = read_bytes(b.path(name))
    assert md5(got) == md5(good)           # computed, not the damaged copy
    s = b.stats()
    assert s["shared_corrupt"] == 1 and s["shared_hits"] == 0, s
    assert s["jobs_started"] == 1, s
    assert "RFS-E304" in b.log_text()
    assert len(list((shared / "corrupt").iterdir())) == 1
    # B published it again: a third mount gets the sound copy
    wait_for(lambda: b.stats()["shared_published"] == 1, what="republish")
    c = mount_factory(src=src, workers=1, options=["shared=%s" % shared])
    assert md5(read_bytes(c.path(name))) == md5(good)
    assert c.stats()["shared_hits"] == 1 and c.stats()["jobs_started"] == 0


def test_truncated_object_is_not_served(mount_factory, tmp_path):
    src = mount_factory.source()
    shared = tmp_path / "shared"
    name = OLINDA + "@focal=5"
    a = mount_factory(src=src, workers=1, options=["shared=%s" % shared])
    good = read_bytes(a.path(name))
    wait_for(lambda: a.stats()["shared_published"] == 1, what="publish")
    [(tif, meta)] = objects(shared).values()
    os.truncate(tif, 4096)
    b = mount_factory(src=src, workers=1, options=["shared=%s" % shared])
    assert md5(read_bytes(b.path(name))) == md5(good)
    s = b.stats()
    assert s["shared_corrupt"] == 1 and s["jobs_started"] == 1, s


def test_content_hash_once_per_source_version(mount_factory, tmp_path):
    src = mount_factory.source()
    shared = tmp_path / "shared"
    cache = tmp_path / "cache"
    opts = ["shared=%s" % shared]
    a = mount_factory(src=src, cache=cache, workers=1, options=opts)
    read_bytes(a.path(DEM + "@focal=3"))
    read_bytes(a.path(DEM + "@slope"))
    assert a.stats()["content_hashes"] == 1
    a.stop()
    # remembered in the store: a remount does not read the source again
    a2 = mount_factory(src=src, cache=cache, workers=1, options=opts)
    read_bytes(a2.path(DEM + "@aspect"))
    assert a2.stats()["content_hashes"] == 0, a2.stats()
    # a new version of the source is hashed again (another identity)
    data = (src / DEM).read_bytes()
    tmp = src / (DEM + ".new")
    tmp.write_bytes(data)
    os.utime(tmp, ns=(time.time_ns(), time.time_ns() + 10**9))
    os.rename(tmp, src / DEM)
    # the same bytes: another identity but the same portable key, so
    # the output A published is served without a job
    started = a2.stats()["jobs_started"]
    read_bytes(a2.path(DEM + "@focal=3"))
    s = a2.stats()
    assert s["content_hashes"] == 1 and s["jobs_started"] == started, s
    assert s["shared_hits"] == 1, s


def test_run_shared_roundtrip(mount_factory, tmp_path):
    src = mount_factory.source()
    shared = tmp_path / "shared"
    name = str(src / SRTM) + "@proj=EPSG:3857@hillshade"
    r = run("-v", "--shared", shared, name)
    assert r.returncode == 0, r.stderr
    assert "computed and published" in r.stderr, r.stderr
    assert len(objects(shared)) == 1
    r = run("-v", "--shared", shared, name)
    assert r.returncode == 0 and "published already" in r.stderr, r.stderr
    out = tmp_path / "o.tif"
    r = run("-v", "--shared", shared, name, out)
    assert r.returncode == 0 and "shared in" in r.stderr, r.stderr
    m = mount_factory(src=src, workers=1, options=["shared=%s" % shared])
    data = read_bytes(m.path(SRTM + "@proj=EPSG:3857@hillshade"))
    assert m.stats()["jobs_started"] == 0
    assert md5(data) == md5(out.read_bytes())


def test_foreign_shared_dir_refused(mount_factory, tmp_path):
    d = tmp_path / "home"
    d.mkdir()
    (d / "thesis.tex").write_text("mine")
    with pytest.raises(Exception) as e:
        mount_factory(workers=1, options=["shared=%s" % d])
    assert "RFS-E305" in str(e.value), str(e.value)
    assert (d / "thesis.tex").read_text() == "mine"
    assert sorted(p.name for p in d.iterdir()) == ["thesis.tex"]


@pytest.fixture
def big_src(mount_factory):
    src = mount_factory.source()
    gdal.Translate(str(src / "big.tif"), str(src / DEM), width=2500,
                   height=2500, creationOptions=["TILED=YES"])
    return src


def test_claimed_key_is_waited_for(big_src, tmp_path):
    """A second runner finds the first one's claim, waits, and copies its
    object instead of computing it."""
    shared = tmp_path / "shared"
    name = str(big_src / "big.tif") + "@focal=15,median"  # seconds
    first = subprocess.Popen([BIN, "run", "-v", "--shared", str(shared),
                              name], stderr=subprocess.PIPE, text=True)
    wait_for(lambda: list((shared / "claims").glob("*"))
             if (shared / "claims").exists() else False, what="a claim")
    second = run("-v", "--shared", shared, name, tmp_path / "o.tif",
                 timeout=300)
    _, err1 = first.communicate(timeout=300)
    assert first.returncode == 0, err1
    assert second.returncode == 0, second.stderr
    assert "is claimed by" in second.stderr, second.stderr
    assert "served from" in second.stderr, second.stderr
    assert "started on worker" not in second.stderr, second.stderr
    [(tif, meta)] = objects(shared).values()
    assert md5(tif.read_bytes()) == md5((tmp_path / "o.tif").read_bytes())
    assert not list((shared / "claims").iterdir())


def test_stale_claim_is_taken_over(mount_factory, tmp_path):
    src = mount_factory.source()
    name = str(src / OLINDA) + "@slope"
    # the portable key, from a first tier's sidecar
    r = run("--shared", tmp_path / "s1", name)
    assert r.returncode == 0, r.stderr
    [pkey] = objects(tmp_path / "s1").keys()
    shared = tmp_path / "s2"
    (shared / "claims").mkdir(parents=True)
    claim = shared / "claims" / pkey
    claim.write_text("host=ghost\npid=999999\nstarted=1\nlease=2\n")
    t0 = time.monotonic()
    r = run("-v", "--shared", shared, name)
    took = time.monotonic() - t0
    assert r.returncode == 0, r.stderr
    assert "took over the claim" in r.stderr and "ghost" in r.stderr, \
        r.stderr
    assert took >= 2.0, took                 # not before its lease
    assert list(objects(shared).keys()) == [pkey]
    assert not claim.exists()


def test_gc_shared(mount_factory, tmp_path):
    src = mount_factory.source()
    shared = tmp_path / "shared"
    m = mount_factory(src=src, workers=1, options=["shared=%s" % shared])
    names = [OLINDA + "@focal=3", OLINDA + "@focal=5", OLINDA + "@slope"]
    for n in names:
        read_bytes(m.path(n))
    wait_for(lambda: m.stats()["shared_published"] == 3, what="publish")
    objs = objects(shared)
    by_name = {meta["canonical"]: (k, tif) for k, (tif, meta) in objs.items()}
    # used: focal=3 two days ago, slope a day ago, focal=5 now
    now = time.time()
    for canon, days in (("@focal=3,mean,square", 2), ("@slope=degrees", 1)):
        k, tif = by_name[canon]
        t = now - days * 86400
        os.utime(tif.with_suffix(".json"), (t, t))
    size = max(tif.stat().st_size for tif, _ in objs.values())
    r = subprocess.run([BIN, "cache", "gc", "--shared", str(shared),
                        "--limit", str(size + 10), "--min-age", "3600",
                        "--json"], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    rep = json.loads(r.stdout)
    assert rep["objects"] == 3 and rep["removed"] == 2, rep
    left = [meta["canonical"] for _, meta in objects(shared).values()]
    assert left == ["@focal=5,mean,square"], left
    # what was evicted is computed again, what is left is served
    m2 = mount_factory(src=src, workers=1, options=["shared=%s" % shared])
    read_bytes(m2.path(OLINDA + "@focal=5"))
    read_bytes(m2.path(OLINDA + "@focal=3"))
    s = m2.stats()
    assert s["shared_hits"] == 1 and s["jobs_started"] == 1, s
    r = subprocess.run([BIN, "cache", "ls", "--shared", str(shared)],
                       capture_output=True, text=True)
    assert r.returncode == 2, r.stdout


def test_warm_slurm_needs_a_shared_tier(mount_factory, tmp_path):
    m = mount_factory(workers=1)
    r = subprocess.run([BIN, "warm", "--slurm", m.path("*.tif@focal=3")],
                       capture_output=True, text=True)
    assert r.returncode == 1, r.stderr
    assert "RFS-E403" in r.stderr and "shared=DIR" in r.stderr, r.stderr


def test_warm_slurm_dry_run(mount_factory, tmp_path):
    """The task list and the script, as sbatch would get them."""
    src = mount_factory.source()
    shared = tmp_path / "shared"
    m = mount_factory(src=src, workers=1,
                      options=["shared=%s" % shared, "max_pixels=5000000"])
    r = subprocess.run([BIN, "warm", "--slurm=--partition=x --time=5",
                        "--max-running", "3", "--dry-run",
                        m.path("*.tif@focal=3"), m.path(OLINDA + "@slope")],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    [run_dir] = list((shared / "runs").iterdir())
    tasks = (run_dir / "tasks").read_text().splitlines()
    real = sorted(p.name for p in src.glob("*.tif"))
    assert tasks == [n + "@focal=3,mean,square" for n in real] + \
        [OLINDA + "@slope=degrees"], tasks
    script = (run_dir / "job.sh").read_text()
    assert "#SBATCH --array=0-%d%%3" % (len(tasks) - 1) in script, script
    assert "--tasks '%s/tasks'" % run_dir in script
    assert "--root '%s'" % src.resolve() in script
    assert "--shared '%s'" % shared.resolve() in script
    assert "max_pixels=5000000" in script
    assert "would run: sbatch --parsable --partition=x --time=5" in r.stdout
    # the script's task runs by hand, as a task would
    env = dict(os.environ, SLURM_ARRAY_TASK_ID="1")
    line = script.strip().splitlines()[-1]
    assert line.startswith("exec ")
    p = subprocess.run(["sh", "-c", line[5:]], env=env, capture_output=True,
                       text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    res = json.loads((run_dir / "results" / "1.json").read_text())
    assert res["status"] == "done" and res["name"] == tasks[1], res
    assert len(objects(shared)) == 1


def test_every_refusal_carries_its_code(mount_factory, tmp_path):
    """What a user sees when the shared tier or its commands are misused:
    every line of stderr has its RFS code (and the reason, not only the
    code's sentence)."""
    src = mount_factory.source()
    home = tmp_path / "home"
    home.mkdir()
    (home / "thesis.tex").write_text("mine")

    def lines(r):
        return [l for l in r.stderr.splitlines() if l.strip()]

    # gc of a directory that is no tier: RFS-E305 on each line, exit 1
    for d in (home, tmp_path / "missing"):
        r = subprocess.run([BIN, "cache", "gc", "--shared", str(d),
                            "--limit", "1M"], capture_output=True, text=True)
        assert r.returncode == 1, r.stderr
        assert lines(r) and all("RFS-E305" in l for l in lines(r)), r.stderr
        assert "no FORMAT" in r.stderr, r.stderr
    assert not (tmp_path / "missing").exists()
    # `run --shared` of someone else's directory: the reason too, exit 3
    r = run("--shared", home, str(src / DEM) + "@focal=3")
    assert r.returncode == 3, r.stderr
    assert lines(r) and all("RFS-E305" in l for l in lines(r)), r.stderr
    assert "holds files but no FORMAT" in r.stderr, r.stderr
    assert sorted(p.name for p in home.iterdir()) == ["thesis.tex"]
    # a mount whose shared=DIR cannot be made
    with pytest.raises(Exception) as e:
        mount_factory(workers=1, options=["shared=/proc/rasterfs-no"])
    assert "RFS-E305" in str(e.value), str(e.value)
    # bad usage of the commands: RFS-E400, exit 2
    for args in (["cache", "ls", "--shared", str(home)],
                 ["cache", "gc", "--shared", str(home), "--limit", "2Q"]):
        r = subprocess.run([BIN] + args, capture_output=True, text=True)
        assert r.returncode == 2, (args, r.stderr)
        assert lines(r) and "RFS-E400" in lines(r)[0], (args, r.stderr)
    # warm --slurm of a path that is not in a mount
    r = subprocess.run([BIN, "warm", "--slurm", "--dry-run",
                        str(src / DEM) + "@focal=3"],
                       capture_output=True, text=True)
    assert r.returncode == 1, r.stderr
    assert lines(r) and all("RFS-E400" in l for l in lines(r)), r.stderr


def test_warm_slurm_without_sbatch(mount_factory, tmp_path):
    """No sbatch in PATH (Slurm's client missing on this node): RFS-E402
    naming sbatch, exit 1, and no run directory left in the tier (nothing
    was submitted)."""
    shared = tmp_path / "shared"
    m = mount_factory(workers=1, options=["shared=%s" % shared])
    empty = tmp_path / "bin"
    empty.mkdir()
    r = subprocess.run([BIN, "warm", "--slurm", m.path(DEM + "@focal=3")],
                       capture_output=True, text=True,
                       env=dict(os.environ, PATH=str(empty)))
    assert r.returncode == 1, r.stderr
    assert r.stderr.startswith("rasterfs warm: RFS-E402 ") and \
        "cannot run sbatch" in r.stderr, r.stderr
    assert list((shared / "runs").iterdir()) == []
