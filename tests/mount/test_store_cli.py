"""`rasterfs cache stats|verify|gc|clear` on a real store."""

import os
import shutil
import subprocess

from rfsmount import BIN, read_bytes
from storeutil import OLINDA, cache_cmd, small_names, verify_clean


def test_stats_verify_gc_clear(mount_factory, tmp_path):
    src = mount_factory.source()
    cache = tmp_path / "store"
    shutil.copy(src / OLINDA, src / "copy.tif")
    m = mount_factory(src=src, cache=cache, options=["cache_size=64M"])
    names = small_names(4) + ["copy.tif@focal=3"]
    sizes = [len(read_bytes(m.path(n))) for n in names]

    _, st = cache_cmd(cache, "stats")
    assert st["objects"] == 5 and st["bytes"] == sum(sizes)
    assert st["limit"] == 64 << 20
    per = {s["source"]: s["objects"] for s in st["sources"]}
    assert per == {str(src / OLINDA): 4, str(src / "copy.tif"): 1}
    human = subprocess.run([BIN, "cache", "--cache", str(cache), "stats"],
                           stdout=subprocess.PIPE, check=True).stdout
    assert b"objects    5" in human

    doc = verify_clean(cache)
    assert doc["entries"] == 5 and doc["bytes_checked"] == sum(sizes)

    # clear is refused while the mount uses the store.
    rc, doc = cache_cmd(cache, "clear", check=False)
    assert rc == 1 and doc["busy_pid"] == m.pid

    # gc drops the outputs of a source changed behind the mount's back.
    with open(src / "copy.tif", "ab") as f:
        f.write(b"\0")
    _, gc = cache_cmd(cache, "gc")
    assert gc["changed"] == 1 and gc["objects"] == 4
    # ... and evicts to a limit given on the command line.
    _, gc = cache_cmd(cache, "gc", "--limit", str(sizes[0] * 2))
    assert gc["evicted"] >= 2 and gc["bytes"] <= sizes[0] * 2
    verify_clean(cache)
    # The mount recomputes what gc removed.
    for n, size in zip(names[:4], sizes):
        assert len(read_bytes(m.path(n))) == size

    m.stop()
    _, doc = cache_cmd(cache, "clear")
    assert doc["ok"] and doc["removed"] >= 1
    _, st = cache_cmd(cache, "stats")
    assert st["objects"] == 0 and st["bytes"] == 0
    assert verify_clean(cache)["entries"] == 0


def test_verify_finds_damage(mount_factory, tmp_path):
    cache = tmp_path / "store"
    m = mount_factory(cache=cache)
    name = small_names(1)[0]
    data = read_bytes(m.path(name))
    m.stop()
    objs = [p for p in (cache / "objects").rglob("*.tif")]
    assert len(objs) == 1
    with open(objs[0], "r+b") as f:  # same size, another checksum
        f.seek(len(data) // 2)
        f.write(bytes([data[len(data) // 2] ^ 0xff]))
    (objs[0].parent / ("0" * 32 + ".tif")).write_bytes(b"x")
    rc, doc = cache_cmd(cache, "verify", check=False)
    assert rc == 1 and not doc["ok"]
    kinds = sorted(p["kind"] for p in doc["problems"])
    assert kinds == ["checksum", "orphan"], doc


def test_cache_size_option_refused(mount_factory, tmp_path):
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    r = subprocess.run([BIN, "-f", str(mount_factory.source()), str(mnt),
                        "-o", "cache=%s,cache_size=12Q" % (tmp_path / "c")],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       timeout=30)
    assert r.returncode != 0 and b"RFS-E400" in r.stderr
    assert not os.path.ismount(mnt)


def test_no_store_is_not_made(tmp_path):
    none = tmp_path / "none"
    for cmd in ("stats", "verify", "gc", "clear"):
        rc, _ = cache_cmd(none, cmd, check=False)
        assert rc == 1, cmd
    assert not none.exists()


def test_verify_finds_truncated_object(mount_factory, tmp_path):
    """An object truncated behind the store's back (the committer never
    stores a short file, so only something else can make one): verify
    reports it and exits 1."""
    cache = tmp_path / "store"
    m = mount_factory(cache=cache)
    name = small_names(1)[0]
    data = read_bytes(m.path(name))
    m.stop()
    objs = list((cache / "objects").rglob("*.tif"))
    assert len(objs) == 1 and objs[0].stat().st_size == len(data)
    os.truncate(objs[0], len(data) // 2)
    rc, doc = cache_cmd(cache, "verify", check=False)
    assert rc == 1 and not doc["ok"], doc
    assert [p["kind"] for p in doc["problems"]] == ["size"], doc
