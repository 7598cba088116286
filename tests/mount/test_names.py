"""Names, lookup and the read-only pass-through: what happens before any
pixel is computed."""

import errno
import os
import stat
import time

import pytest

from rfsmount import (STATS_KEYS, errname, open_errno, read_bytes,
                      stat_errno)

DEM = "opengeos_dtm.tif"


def test_stats_json_fields(mount):
    s = mount.stats()
    for k in STATS_KEYS:
        assert k in s, "stats has no %r: %r" % (k, s)
        assert isinstance(s[k], int) and s[k] >= 0, (k, s[k])
    st = os.stat(mount.path(".rasterfs/stats"))
    assert stat.S_ISREG(st.st_mode)
    with pytest.raises(OSError) as e:
        open(mount.path(".rasterfs/stats"), "w")
    assert e.value.errno == errno.EROFS


def test_real_tree_passes_through(mount):
    """ls of the mount shows the source tree as it is; bytes are equal."""
    src, mnt = str(mount.src), str(mount.mnt)
    seen = 0
    for dirpath, dirnames, filenames in os.walk(src):
        rel = os.path.relpath(dirpath, src)
        mdir = os.path.normpath(os.path.join(mnt, rel))
        listed = set(os.listdir(mdir))
        if rel == ".":
            listed.discard(".rasterfs")
        assert listed == set(dirnames) | set(filenames), rel
        for name in filenames:
            s, m = os.path.join(dirpath, name), os.path.join(mdir, name)
            if os.path.islink(s):
                assert os.path.islink(m), m
                assert os.readlink(m) == os.readlink(s)
                continue
            ss, ms = os.lstat(s), os.lstat(m)
            assert stat.S_ISREG(ms.st_mode), m
            assert ms.st_size == ss.st_size, m
            assert int(ms.st_mtime) == int(ss.st_mtime), m
            assert read_bytes(m) == read_bytes(s), m
            seen += 1
    assert seen >= 6
    # The in-root link is followed by the kernel and reads the same bytes.
    assert read_bytes(mount.path("sub/dem.tif")) == read_bytes(mount.path(DEM))


def test_lookup_and_stat_never_compute(mount):
    name = mount.path(DEM + "@focal=3,min")
    before = mount.stats()
    sizes = set()
    for _ in range(3):
        st = os.stat(name)
        assert stat.S_ISREG(st.st_mode)
        # issue 10: the exact size, described from the source's header
        # (test_meta.py), not 0; no pixel is computed
        sizes.add(st.st_size)
    assert len(sizes) == 1 and sizes.pop() > 0
    # xattrs describe the output without computing it (docs/outputs.md).
    assert os.getxattr(name, "user.rasterfs.state") == b"absent"
    assert os.getxattr(name, "user.rasterfs.chain") == b"@focal=3,min,square"
    assert os.getxattr(name, "user.rasterfs.source") == DEM.encode()
    os.listxattr(name)
    assert os.path.exists(name)
    assert DEM + "@focal=3,min" not in os.listdir(str(mount.mnt))
    time.sleep(0.3)
    mid = mount.stats()
    assert mid["jobs_started"] == before["jobs_started"]
    assert mid["jobs_running"] == 0

    def run():
        with open(name, "rb") as f:
            size = os.fstat(f.fileno()).st_size
            return size, f.read()
    from rfsmount import _in_thread
    fsize, data = _in_thread(run, 120, "open " + name)
    assert data[:4] in (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+")
    assert fsize == len(data), "fstat after open must give the exact size"
    assert os.stat(name).st_size == len(data) == st.st_size
    after = mount.stats()
    assert after["jobs_started"] == before["jobs_started"] + 1
    # A second open is a plain read of the stored object.
    assert read_bytes(name) == data
    assert mount.stats()["jobs_started"] == after["jobs_started"]
    assert os.getxattr(name, "user.rasterfs.state") == b"done"


def test_canonical_spellings_share_one_entry(mount):
    a = DEM + "@focal=5"
    b = DEM + "@focal=5,mean,square"
    c = DEM + "@focal=5,square,mean"
    s0 = mount.stats()["jobs_started"]
    da = read_bytes(mount.path(a))
    assert mount.stats()["jobs_started"] == s0 + 1
    db = read_bytes(mount.path(b))
    assert os.stat(mount.path(b)).st_size == len(da)
    assert db == da
    if stat_errno(mount.path(c)) == 0:  # order of options may be free
        assert read_bytes(mount.path(c)) == da
    assert mount.stats()["jobs_started"] == s0 + 1


BAD = [
    # unknown step: ENOENT
    (DEM + "@bogus=1", errno.ENOENT),
    (DEM + "@focal=3@blur=2", errno.ENOENT),
    # no such source / a directory is not a source: ENOENT
    ("nosuch.tif@focal=3", errno.ENOENT),
    ("sub@focal=3", errno.ENOENT),
    # known step, bad arguments: EINVAL
    (DEM + "@focal=4", errno.EINVAL),
    (DEM + "@focal=1", errno.EINVAL),
    (DEM + "@focal", errno.EINVAL),
    (DEM + "@focal=x", errno.EINVAL),
    (DEM + "@focal=257", errno.EINVAL),
    (DEM + "@focal=3,avg", errno.EINVAL),
    (DEM + "@focal=3,mean,hexagon", errno.EINVAL),
    (DEM + "@focal=3,mean,max", errno.EINVAL),
    (DEM + "@focal=65,median", errno.EINVAL),
    (DEM + "@proj=EPSG:999999", errno.EINVAL),
    (DEM + "@proj=NOTACRS", errno.EINVAL),
    (DEM + "@proj=EPSG:3857,res=-5", errno.EINVAL),
    (DEM + "@proj=EPSG:3857,sideways", errno.EINVAL),
    (DEM + "@proj", errno.EINVAL),
    (DEM + "@reclass=5:1:1", errno.EINVAL),
    (DEM + "@reclass=0:10:1,5:20:2", errno.EINVAL),
    (DEM + "@reclass=abc", errno.EINVAL),
    (DEM + "@reclass=0:10:x", errno.EINVAL),
    (DEM + "@", errno.EINVAL),
    (DEM + "@focal=3@@focal=3", errno.EINVAL),
    # '..' inside a name
    (DEM + "@proj=..", errno.EINVAL),
    (DEM + "@focal=3,..", errno.EINVAL),
    # over RFS_CHAIN_MAX_STEPS (16) steps
    (DEM + "@focal=3" * 17, errno.ENAMETOOLONG),
]


def _bad_id(name):
    if name.count("@") > 3:
        return "DEM+%d steps" % name.count("@")
    return name.replace(DEM, "DEM")


@pytest.mark.parametrize("name,want", BAD, ids=[_bad_id(b[0]) for b in BAD])
def test_bad_names_fail_fast(mount, name, want):
    s0 = mount.stats()["jobs_started"]
    path = mount.path(name)
    t = time.monotonic()
    got = stat_errno(path)
    dt = time.monotonic() - t
    assert errname(got) == errname(want), name
    assert dt < 0.5, "lookup of a bad name took %.2f s" % dt
    t = time.monotonic()
    got = open_errno(path)
    dt = time.monotonic() - t
    assert errname(got) == errname(want), name
    assert dt < 0.5
    assert mount.stats()["jobs_started"] == s0, "a bad name started a job"


PROBES = (".aux.xml", ".ovr", ".msk", ".aux")


@pytest.mark.parametrize("cached", [False, True], ids=["uncached", "cached"])
def test_sibling_probes_are_enoent_at_once(mount, cached):
    virt = DEM + ("@focal=7,max" if cached else "@focal=9,max")
    if cached:
        read_bytes(mount.path(virt))
    s0 = mount.stats()["jobs_started"]
    for suffix in PROBES:
        path = mount.path(virt + suffix)
        t = time.monotonic()
        assert errname(stat_errno(path)) == "ENOENT", suffix
        assert errname(open_errno(path)) == "ENOENT", suffix
        assert time.monotonic() - t < 0.5, suffix
    # Probes of a real file are simply absent files.
    for suffix in PROBES:
        assert errname(stat_errno(mount.path(DEM + suffix))) == "ENOENT"
    assert mount.stats()["jobs_started"] == s0


def test_symlinks_leaving_the_root_are_refused(mount, tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    target = outside / "x.tif"
    target.write_bytes((mount.src / DEM).read_bytes())
    os.symlink(str(target), str(mount.src / "escape_abs.tif"))
    rel = os.path.relpath(str(target), str(mount.src))
    os.symlink(rel, str(mount.src / "escape_rel.tif"))
    s0 = mount.stats()["jobs_started"]
    for link in ("escape_abs.tif", "escape_rel.tif"):
        path = mount.path(link + "@focal=3")
        t = time.monotonic()
        assert errname(stat_errno(path)) == "EACCES", link
        assert errname(open_errno(path)) == "EACCES", link
        assert time.monotonic() - t < 0.5
    assert mount.stats()["jobs_started"] == s0
    # A link that stays inside the root is a fine source.
    data = read_bytes(mount.path("sub/dem.tif@focal=3,max"))
    assert data == read_bytes(mount.path(DEM + "@focal=3,max"))


def test_writes_get_erofs(mount):
    real = mount.path(DEM)
    virt = mount.path(DEM + "@focal=3")
    attempts = {
        "create": lambda: open(mount.path("new.tif"), "wb"),
        "open real for write": lambda: open(real, "r+b"),
        "open virtual for write": lambda: open(virt, "r+b"),
        "mkdir": lambda: os.mkdir(mount.path("newdir")),
        "unlink": lambda: os.unlink(real),
        "rmdir": lambda: os.rmdir(mount.path("sub")),
        "rename": lambda: os.rename(real, mount.path("moved.tif")),
        "symlink": lambda: os.symlink(DEM, mount.path("lnk.tif")),
        "chmod": lambda: os.chmod(real, 0o600),
        "truncate": lambda: os.truncate(real, 0),
        "utime": lambda: os.utime(real, (0, 0)),
    }
    for what, fn in attempts.items():
        with pytest.raises(OSError) as e:
            fn()
        assert errname(e.value.errno) == "EROFS", what
    assert os.path.getsize(str(mount.src / DEM)) == 214042
    assert not (mount.src / "new.tif").exists()


def test_source_gdal_cannot_open_fails_with_eio(mount):
    name = mount.path("README.md@focal=3")
    st = os.stat(name)  # a regular file: a valid name until it is opened
    assert st.st_size == 0
    s0 = mount.stats()
    t = time.monotonic()
    assert errname(open_errno(name)) == "EIO"
    assert time.monotonic() - t < 30
    s1 = mount.stats()
    assert s1["jobs_failed"] == s0["jobs_failed"] + 1
    assert s1["jobs_running"] == 0
    # No worker was lost: the mount still computes.
    assert mount.alive()
    data = read_bytes(mount.path(DEM + "@focal=3,sum"))
    assert len(data) > 0
