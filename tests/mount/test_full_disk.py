"""A worker that meets a full disk fails at once, and never hands in a
short output: the store on a small tmpfs, filled to a few free-space
levels (ten), every output format.  libtiff used to retry its directory write
forever at 0 bytes free (the job never ended); now the first write error
ends the job (RFS-E300), and an output whose structure is cut is refused
before DONE.

Oracles: the same names read on a mount with room (bytes equal), GDAL
opening every output read, `rasterfs cache verify`, a clock."""

import errno
import os
import subprocess
import time

import pytest
from osgeo import gdal

from rfsmount import open_errno, read_bytes
from storeutil import cache_cmd, verify_clean

gdal.UseExceptions()

DEM = "opengeos_dtm.tif"
NAMES = [DEM + "@hillshade", DEM + "@slope@fmt=cog", DEM + "@focal=3.png",
         DEM + "@fmt=cog", DEM + "@proj=EPSG:4326@focal=3"]
# ten free-space levels, from nothing to more than every output needs;
# the last leaves the filesystem as it is (no filler)
LEVELS = [0, 1024, 4096, 16384, 65536, 200000, 400000, 700000, 1100000,
          1 << 40]


@pytest.fixture
def tmpfs(tmp_path):
    d = tmp_path / "small"
    d.mkdir()
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=3M", "tmpfs",
                        str(d)], stderr=subprocess.PIPE)
    if r.returncode != 0:
        pytest.skip("cannot mount a tmpfs: %s" % r.stderr.decode().strip())
    try:
        yield d
    finally:
        subprocess.run(["umount", "-l", str(d)])


def fill_to(d, level):
    """Leave level bytes free on the filesystem of d."""
    st = os.statvfs(d)
    n = st.f_bavail * st.f_frsize - level
    if n > 0:
        with open(d / "filler", "wb") as f:
            try:
                f.write(b"\0" * n)
            except OSError:
                pass
    st = os.statvfs(d)
    return st.f_bavail * st.f_frsize


def test_full_disk_fails_fast_and_whole(mount_factory, tmpfs):
    room = mount_factory()
    want = {n: read_bytes(room.path(n)) for n in NAMES}
    room.stop()
    seen = {"ok": 0, "ENOSPC": 0}
    for level in LEVELS:
        for f in tmpfs.glob("*"):
            subprocess.run(["rm", "-rf", str(f)])
        cache = tmpfs / "store"
        m = mount_factory(cache=cache, workers=1,
                          options=["cache_size=1G", "retry_after=0"])
        free = fill_to(tmpfs, level)
        for n in NAMES:
            t = time.monotonic()
            e = open_errno(m.path(n), timeout=60)
            took = time.monotonic() - t
            assert took < 20, "%s at %d bytes free took %.1f s" % (
                n, free, took)
            if e == 0:
                data = read_bytes(m.path(n))
                assert data == want[n], "%s at %d bytes free: %d of %d " \
                    "bytes" % (n, free, len(data), len(want[n]))
                seen["ok"] += 1
            else:
                assert e == errno.ENOSPC, (n, free, errno.errorcode[e])
                err = os.getxattr(m.path(n), "user.rasterfs.error")
                assert err.startswith(b"RFS-E300"), err
                seen["ENOSPC"] += 1
        m.stop()
        verify_clean(cache)
        left = [p for p in (cache / "scratch").rglob("*")
                if p.is_file() and p.name != "lock"]
        assert not left, left
    # the store a full disk left behind: verify still finds an object
    # truncated behind its back (the committer never stores one)
    objs = sorted((cache / "objects").rglob("*.tif"))
    assert objs, "nothing was stored with room"
    os.truncate(objs[0], objs[0].stat().st_size // 2)
    rc, doc = cache_cmd(cache, "verify", check=False)
    assert rc == 1 and [p["kind"] for p in doc["problems"]] == ["size"], doc
    print("full disk: %r" % seen)
    assert seen["ok"] and seen["ENOSPC"], seen
