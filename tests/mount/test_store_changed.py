"""A source rewritten while mounted: the next read reflects it, the old
output is reclaimed, and a read under way finishes on the old bytes."""

import os
import shutil

import rfsref
from rfsmount import read_bytes
from storeutil import OLINDA, cache_cmd, verify_clean


def test_rewritten_source(mount_factory, tmp_path):
    src = mount_factory.source()
    cache = tmp_path / "store"
    shutil.copy(src / OLINDA, src / "x.tif")
    m = mount_factory(src=src, cache=cache)
    name = m.path("x.tif@focal=3")
    old = read_bytes(name)
    f = open(name, "rb")  # a reader of the old output, still open
    head = f.read(1000)

    # Rewrite in place (same inode, new size and mtime) ...
    with open(src / "opengeos_dtm.tif", "rb") as a, \
            open(src / "x.tif", "wb") as b:
        b.write(a.read())
    new = read_bytes(name)
    assert new != old
    rfsref.assert_focal(rfsref.Raster(new), rfsref.Raster(src / "x.tif"),
                        3, "mean", "square")
    # ... the old output is gone from the store (one entry for x.tif) ...
    _, st = cache_cmd(cache, "stats")
    per = {s["source"]: s["objects"] for s in st["sources"]}
    assert per == {str(src / "x.tif"): 1}, per
    assert st["bytes"] == len(new)
    # ... and the open reader still reads the old bytes to the end.
    assert head + f.read() == old
    f.close()

    # Replace by rename (a new inode), as editors and cp --remove do.
    tmp = src / "x.tmp"
    shutil.copy(src / "srtm1_N48W125_crop.tif", tmp)
    os.rename(tmp, src / "x.tif")
    third = read_bytes(name)
    rfsref.assert_focal(rfsref.Raster(third), rfsref.Raster(src / "x.tif"),
                        3, "mean", "square")
    _, st = cache_cmd(cache, "stats")
    assert st["objects"] == 1 and st["bytes"] == len(third)
    verify_clean(cache)
