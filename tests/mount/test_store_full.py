"""A store on a small tmpfs that fills up: a clean "no space" error
(RFS-E300, ENOSPC), a consistent store, a mount that goes on serving."""

import errno
import os
import subprocess

import pytest

from rfsmount import open_errno, read_bytes
from storeutil import OLINDA, verify_clean

STATS = ["mean", "max", "min", "sum", "std", "range", "median"]


def names():
    out = []
    for size in (3, 5, 7):
        for stat in STATS:
            out.append("%s@focal=%d,%s" % (OLINDA, size, stat))
    return out


@pytest.fixture
def tmpfs(tmp_path):
    d = tmp_path / "small"
    d.mkdir()
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2M", "tmpfs",
                        str(d)], stderr=subprocess.PIPE)
    if r.returncode != 0:
        pytest.skip("cannot mount a tmpfs: %s" % r.stderr.decode().strip())
    try:
        yield d
    finally:
        subprocess.run(["umount", "-l", str(d)])


def test_full_tmpfs(mount_factory, tmpfs):
    cache = tmpfs / "store"
    # A limit above the disk, so the disk fills before eviction starts.
    m = mount_factory(cache=cache, options=["cache_size=1G"])
    first = read_bytes(m.path(names()[0]))
    got, failed = {names()[0]: first}, []
    for n in names()[1:]:
        e = open_errno(m.path(n))
        if e == 0:
            got[n] = read_bytes(m.path(n))
        else:
            failed.append((n, e))
            if len(failed) >= 3:
                break
    assert failed, "2 MB held %d outputs?" % len(got)
    assert all(e == errno.ENOSPC for _, e in failed), failed
    assert "RFS-E300" in m.log_text()
    # The mount goes on: stats, cached outputs, the same bytes.
    assert m.stats()["jobs_failed"] >= len(failed)
    for n, data in got.items():
        assert read_bytes(m.path(n)) == data
    verify_clean(cache)
    # No scratch file of the failed jobs is left behind.
    left = [p for p in (cache / "scratch").rglob("*")
            if p.is_file() and p.name != "lock"]
    assert not left, left
    m.stop()
    verify_clean(cache)
    # After space is freed (by eviction to a smaller limit), it works.
    m2 = mount_factory(cache=cache, options=["cache_size=600K"])
    n, e = failed[0]
    assert open_errno(m2.path(n)) == 0
    assert os.statvfs(tmpfs).f_bfree > 0
    verify_clean(cache)


def test_full_at_commit(mount_factory, tmpfs, tmp_path):
    """The disk fills under the committer, not the worker: scratch lives
    on a larger filesystem (a symlink), so the committer copies each output
    into objects/ and meets ENOSPC there."""
    cache = tmpfs / "store"
    mount_factory(cache=cache).stop()  # makes the store
    big = tmp_path / "scratch"
    big.mkdir()
    (cache / "scratch").rmdir()
    (cache / "scratch").symlink_to(big)
    m = mount_factory(cache=cache, options=["cache_size=1G"])
    got, failed = {}, []
    for n in names():
        e = open_errno(m.path(n))
        if e == 0:
            got[n] = read_bytes(m.path(n))
        else:
            failed.append((n, e))
            if len(failed) >= 3:
                break
    assert got and failed, (len(got), failed)
    assert all(e == errno.ENOSPC for _, e in failed), failed
    assert "RFS-E300" in m.log_text()
    for n, data in got.items():
        assert read_bytes(m.path(n)) == data
    assert not list((cache / "objects").rglob("*.tmp"))
    verify_clean(cache)
