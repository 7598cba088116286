"""Many readers at once: parallel jobs and single flight."""

import concurrent.futures as cf
import hashlib
import multiprocessing
import subprocess
import threading

import numpy as np

import rfsref
from rfsmount import read_bytes
from test_reclass import assert_chain, chain_reference

CHAIN = ("EPSG:3857", None, None, 3, "max", "square",
         "-inf:1:0,1:15:1,15:200:2,200:inf:3")


def chain_suffix():
    crs, res, rs, size, stat, shape, spec = CHAIN
    return "@proj=%s@focal=%d,%s,%s@reclass=%s" % (crs, size, stat, shape,
                                                   spec)


def make_sources(src):
    """Eight rasters cut from the test data, written into the source dir."""
    names = []
    for i in range(4):
        n = "par_srtm_%d.tif" % i
        subprocess.run(["gdal_translate", "-q", "-srcwin", str(i * 100),
                        str(200 + i * 50), "300", "300",
                        str(src / "srtm1_N48W125_crop.tif"), str(src / n)],
                       check=True)
        names.append(n)
    for i in range(4):
        n = "par_dtm_%d.tif" % i
        subprocess.run(["gdal_translate", "-q", "-srcwin", str(i * 40),
                        str(i * 30), "160", "150",
                        str(src / "opengeos_dtm.tif"), str(src / n)],
                       check=True)
        names.append(n)
    return names


def _read(path):
    with open(path, "rb") as f:
        return f.read()


def test_eight_rasters_four_processes_equal_serial(mount_factory, tmp_path):
    src = mount_factory.source()
    names = make_sources(src)
    m = mount_factory(src=src)
    s0 = m.stats()
    paths = [m.path(n + chain_suffix()) for n in names]
    ctx = multiprocessing.get_context("fork")
    with cf.ProcessPoolExecutor(4, mp_context=ctx) as ex:
        futs = [ex.submit(_read, p) for p in paths]
        parallel = [f.result(timeout=600) for f in futs]
    s1 = m.stats()
    assert s1["jobs_started"] - s0["jobs_started"] == 8
    assert s1["jobs_failed"] == s0["jobs_failed"]
    assert s1["jobs_running"] == 0
    m.stop()

    # The same names, one at a time, on a one-worker mount with a new store.
    s = mount_factory(src=src, workers=1)
    serial = [read_bytes(s.path(n + chain_suffix()), timeout=300)
              for n in names]
    for n, a, b in zip(names, parallel, serial):
        assert hashlib.sha256(a).hexdigest() == hashlib.sha256(b).hexdigest(), \
            "%s: parallel and serial outputs differ" % n
    # And both equal the references.
    for n, data in zip(names, parallel):
        w, ref, fv = chain_reference(src / n, tmp_path, *CHAIN)
        assert_chain(rfsref.Raster(data), w, ref, fv, CHAIN[-1], exact=True)


def test_twenty_first_readers_share_one_job(mount):
    src = "opengeos_dtm.tif"
    name = mount.path(src + "@focal=11,median,circle")
    s0 = mount.stats()
    n = 20
    barrier = threading.Barrier(n)
    results, errors = [None] * n, []

    def reader(i):
        try:
            barrier.wait(timeout=30)
            results[i] = _read(name)
        except Exception as e:
            errors.append(e)
    threads = [threading.Thread(target=reader, args=(i,), daemon=True)
               for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(300)
    assert not any(t.is_alive() for t in threads), "readers still waiting"
    assert not errors, errors
    assert all(r == results[0] for r in results), "readers got other bytes"
    s1 = mount.stats()
    assert s1["jobs_started"] == s0["jobs_started"] + 1
    assert s1["jobs_running"] == 0
    got = rfsref.Raster(results[0])
    rfsref.assert_focal(got, rfsref.Raster(mount.src / src), 11, "median",
                        "circle")
    assert len(results[0]) == len(read_bytes(name))
    assert np.all(np.array([len(r) for r in results]) > 0)
