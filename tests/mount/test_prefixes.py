"""keep_prefixes: a chain whose first step warps starts from that step's
kept output.  Oracles: gdalwarp's own file followed by the brute-force focal
of rfsref, and the same chain on a mount with keep_prefixes=0."""

import rfsref
from rfsmount import read_bytes

SRC = "srtm1_N48W125_crop.tif"
PREFIX = "@proj=EPSG:32610,res=10,bilinear"


def _stats_delta(m, before):
    now = m.stats()
    return {k: now[k] - before[k] for k in
            ("jobs_started", "prefix_jobs", "prefix_hits", "store_objects")}


def test_chain_starts_from_kept_prefix(mount_factory, tmp_path):
    m = mount_factory(workers=1)
    s0 = m.stats()
    a = read_bytes(m.path(SRC + PREFIX + "@focal=5"), timeout=300)
    d = _stats_delta(m, s0)
    # one job for the chain, one for its prefix, both stored
    assert d == {"jobs_started": 1, "prefix_jobs": 1, "prefix_hits": 1,
                 "store_objects": 2}, d

    # the prefix is an ordinary output now: served without a job
    s1 = m.stats()
    p = read_bytes(m.path(SRC + PREFIX))
    assert _stats_delta(m, s1) == {"jobs_started": 0, "prefix_jobs": 0,
                                   "prefix_hits": 0, "store_objects": 0}
    ref = rfsref.Raster(rfsref.gdalwarp(m.src / SRC, tmp_path / "w.tif",
                                        "EPSG:32610", 10, "bilinear"))
    pr = rfsref.Raster(p)
    rfsref.assert_same_grid(pr, ref)
    want = ref.band()["array"].astype("float64")
    want[~rfsref.valid_mask(ref.band()["array"], ref.band()["nodata"])] = \
        float("nan")
    rfsref.assert_band_equals(pr.band(), want, True)
    assert pr.band()["metadata"].get("STATISTICS_MEAN")

    # a second chain on the same prefix starts from it: no prefix job
    s2 = m.stats()
    b = read_bytes(m.path(SRC + PREFIX + "@focal=9"), timeout=300)
    assert _stats_delta(m, s2) == {"jobs_started": 1, "prefix_jobs": 0,
                                   "prefix_hits": 1, "store_objects": 1}
    assert "from its kept prefix" in m.log_text(200000)
    c = read_bytes(m.path(SRC + PREFIX + "@focal=5,max@fmt=cog"), timeout=300)

    # oracle 1: gdalwarp's file, then focal
    for got, size in ((a, 5), (b, 9)):
        rfsref.assert_focal(rfsref.Raster(got), ref, size, "mean", "square")

    # oracle 2: the same names without kept prefixes: the same bytes, and
    # nothing but the outputs stored
    n = mount_factory(workers=1, options=("keep_prefixes=0",))
    t0 = n.stats()
    assert read_bytes(n.path(SRC + PREFIX + "@focal=5"), timeout=300) == a
    assert read_bytes(n.path(SRC + PREFIX + "@focal=9"), timeout=300) == b
    assert read_bytes(n.path(SRC + PREFIX + "@focal=5,max@fmt=cog"),
                      timeout=300) == c
    assert _stats_delta(n, t0) == {"jobs_started": 3, "prefix_jobs": 0,
                                   "prefix_hits": 0, "store_objects": 3}
    assert read_bytes(n.path(SRC + PREFIX)) == p


def test_cheap_or_single_steps_keep_nothing(mount_factory):
    m = mount_factory(workers=1)
    s0 = m.stats()
    read_bytes(m.path(SRC + "@focal=3@reclass=0:500:1,500:inf:2"))
    read_bytes(m.path(SRC + "@proj=EPSG:3857@fmt=cog"))
    d = _stats_delta(m, s0)
    assert d == {"jobs_started": 2, "prefix_jobs": 0, "prefix_hits": 0,
                 "store_objects": 2}, d



def test_missing_prefix_object_falls_back_to_the_source(mount_factory):
    """A prefix whose object file is gone (as after an eviction racing the
    dispatch; here removed by hand) is not used: the chain runs from the
    source and gives the same bytes.  (Observed: a prefix job runs again
    but the chain still finds no object to open, prefix_hits stays 0.)"""
    import os
    m = mount_factory(workers=1)
    read_bytes(m.path(SRC + PREFIX))
    key = os.getxattr(m.path(SRC + PREFIX), "user.rasterfs.key").decode()
    os.unlink(m.cache / "objects" / key[:2] / (key + ".tif"))
    s0 = m.stats()
    a = read_bytes(m.path(SRC + PREFIX + "@focal=7"), timeout=300)
    d = _stats_delta(m, s0)
    assert d["jobs_started"] == 1 and d["prefix_hits"] == 0, d
    n = mount_factory(workers=1, options=("keep_prefixes=0",))
    assert read_bytes(n.path(SRC + PREFIX + "@focal=7"), timeout=300) == a
