"""Reads of outputs and source files, with FUSE passthrough and without
(fs_open.c notes 3 and 4).

Every test runs twice: passthrough=0 (reads go through the daemon and the
kernel's page cache) and the default, which is passthrough wherever the
platform allows it (libfuse >= 3.16, a root daemon, Linux >= 6.9).  Where
it does not (the build against Debian's libfuse 3.14), the default mount
must say why in its log and serve the same bytes the other way.  The
oracle is always the file itself: the store's object file or the source
file read directly, not through the mount.
"""

import hashlib
import mmap
import os
import random
import re
import shutil
import subprocess
import threading
import time

import pytest

from rfsmount import BIN, read_bytes
from storeutil import OLINDA

OTHER = "opengeos_dtm.tif"
THIRD = "srtm1_N48W125_crop.tif"


def _libfuse_version():
    out = subprocess.run([BIN, "--version"], stdout=subprocess.PIPE,
                         check=True).stdout.decode()
    m = re.search(r"libfuse (\d+)\.(\d+)", out)
    assert m, out
    return int(m.group(1)), int(m.group(2))


def _kernel_version():
    return tuple(int(x) for x in
                 re.match(r"(\d+)\.(\d+)", os.uname().release).groups())


def passthrough_possible():
    """What the mount's log line must say for the default mount."""
    return (_libfuse_version() >= (3, 16) and os.geteuid() == 0
            and _kernel_version() >= (6, 9))


@pytest.fixture(params=["off", "default"])
def ptmount(request, mount_factory, tmp_path):
    """(mount, source dir, passthrough in use) for both ways of reading."""
    src = mount_factory.source()
    shutil.copy(src / OLINDA, src / "x.tif")
    opts = ["passthrough=0"] if request.param == "off" else []
    m = mount_factory(src=src, cache=tmp_path / "store", options=opts)
    line = _log_line(m)
    if request.param == "off":
        assert re.match(r"passthrough: off: (turned off|compiled out)",
                        line), line
        on = False
    else:
        on = line.startswith("passthrough: on")
        if passthrough_possible():
            assert on, "passthrough should be on here: " + line
        else:
            # Compiled out, not root, or an old kernel: it says which.
            assert re.match(r"passthrough: off: (compiled out|the daemon "
                            r"lacks CAP_SYS_ADMIN|the kernel does not)",
                            line), line
    return m, src, on


def _log_line(m):
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        g = re.search(r"(passthrough: (on|off)[^\n]*)", m.log_text())
        if g:
            return g.group(1)
        time.sleep(0.05)
    raise AssertionError("no passthrough line in the log:\n" + m.log_text())


def md5(b):
    return hashlib.md5(b).hexdigest()


def object_file(m, name):
    """The store's object file of a virtual name (its key, as an xattr)."""
    key = os.getxattr(name, "user.rasterfs.key").decode()
    d = m.cache / "objects" / key[:2]
    files = [p for p in d.iterdir() if p.name.startswith(key)]
    assert len(files) == 1, files
    return files[0]


def read_fd(fd, size=1 << 17):
    chunks = []
    while True:
        b = os.read(fd, size)
        if not b:
            return b"".join(chunks)
        chunks.append(b)


def rewrite_in_place(src, dst):
    """dst gets src's bytes through the same inode (O_TRUNC)."""
    with open(src, "rb") as a, open(dst, "r+b") as b:
        data = a.read()
        b.truncate(0)
        b.write(data)
    return data


def replace(src, dst):
    """dst becomes a new file (a new inode) with src's bytes."""
    tmp = str(dst) + ".tmp"
    shutil.copy(src, tmp)
    os.rename(tmp, dst)


def test_bytes_before_and_after_a_source_change(ptmount):
    m, src, on = ptmount
    name = m.path("x.tif@focal=3")
    before = m.stats()
    out = read_bytes(name)                       # computed: a parked open
    assert md5(out) == md5(object_file(m, name).read_bytes())
    again = read_bytes(name)                     # from the store
    assert again == out
    real = read_bytes(m.path("x.tif"))
    assert md5(real) == md5((src / "x.tif").read_bytes())

    rewrite_in_place(src / OTHER, src / "x.tif")
    new = read_bytes(name)
    assert new != out
    assert md5(new) == md5(object_file(m, name).read_bytes())
    assert read_bytes(m.path("x.tif")) == (src / OTHER).read_bytes()

    replace(src / THIRD, src / "x.tif")
    third = read_bytes(name)
    assert md5(third) == md5(object_file(m, name).read_bytes())
    assert read_bytes(m.path("x.tif")) == (src / THIRD).read_bytes()

    st = m.stats()
    opens = st["passthrough_opens"] - before["passthrough_opens"]
    if on:
        # 3 computed + 1 from the store + 3 source files, all passthrough:
        # the kernel read every byte itself, the daemon got no READ.
        assert opens == 7, st
        assert st["reads"] == before["reads"], st
    else:
        assert opens == 0, st
        assert st["reads"] > before["reads"], st
    assert st["passthrough_refused"] == 0, st


def test_old_and_new_handles_across_a_source_change(ptmount):
    """A handle of the old output stays open while the source changes; a new
    open gets the new output (a new node: fs_node.c note 2); each reads its
    own bytes to the end, whichever is read first."""
    m, src, on = ptmount
    name = m.path("x.tif@focal=3")
    old = read_bytes(name)
    old_obj = object_file(m, name).read_bytes()
    assert old == old_obj
    a = os.open(name, os.O_RDONLY)
    a_map = mmap.mmap(a, 0, prot=mmap.PROT_READ)
    head = os.read(a, 4096)

    rewrite_in_place(src / OTHER, src / "x.tif")
    b = os.open(name, os.O_RDONLY)  # ESTALE, then the new node
    try:
        new = read_fd(b)
        assert md5(new) == md5(object_file(m, name).read_bytes())
        assert new != old
        assert head + read_fd(a) == old
        assert a_map[:] == old
        os.lseek(b, 0, os.SEEK_SET)
        assert read_fd(b, 1 << 20) == new
    finally:
        a_map.close()
        os.close(a)
        os.close(b)
    assert m.stats()["stale_opens"] >= 1


def test_source_file_rewritten_in_place(ptmount):
    """Same inode, new bytes and size: a new open reads the new bytes, with
    an old handle open (passthrough: the same backing file) or not."""
    m, src, on = ptmount
    path = m.path("x.tif")
    first = read_bytes(path)
    assert first == (src / "x.tif").read_bytes()
    assert read_bytes(path) == first             # cached, or passthrough
    ino = os.stat(src / "x.tif").st_ino

    held = os.open(path, os.O_RDONLY)
    try:
        data = rewrite_in_place(src / OTHER, src / "x.tif")
        assert os.stat(src / "x.tif").st_ino == ino
        assert len(data) != len(first)
        got = read_bytes(path)
        assert md5(got) == md5(data)
    finally:
        os.close(held)
    assert read_bytes(path) == data
    # Shorter again, nothing open: no stale page or size survives.
    data = rewrite_in_place(src / OLINDA, src / "x.tif")
    assert read_bytes(path) == data
    with open(path, "rb") as f:
        assert os.fstat(f.fileno()).st_size == len(data)


def test_source_file_replaced(ptmount):
    """A new inode under the name: a new open reads the new file (ESTALE
    and a new node), a handle of the old one keeps reading the old file."""
    m, src, on = ptmount
    path = m.path("x.tif")
    first = read_bytes(path)
    held = os.open(path, os.O_RDONLY)
    try:
        os.read(held, 100)
        replace(src / OTHER, src / "x.tif")
        fd = os.open(path, os.O_RDONLY)          # one open, the VFS retries
        try:
            assert md5(read_fd(fd)) == md5((src / OTHER).read_bytes())
        finally:
            os.close(fd)
        os.lseek(held, 0, os.SEEK_SET)
        assert read_fd(held) == first
    finally:
        os.close(held)
    assert read_bytes(path) == (src / OTHER).read_bytes()


def test_unchanged_source_file_is_read_from_the_page_cache(ptmount):
    """Without passthrough the kernel keeps a real file's pages across opens
    while the file is unchanged (no READ reaches the daemon), and drops
    them when it changed; with passthrough no READ ever comes."""
    m, src, on = ptmount
    path = m.path("x.tif")
    want = (src / "x.tif").read_bytes()
    assert read_bytes(path) == want
    r0 = m.stats()["reads"]
    assert read_bytes(path) == want
    r1 = m.stats()["reads"]
    assert r1 == r0, "an unchanged file was read through the daemon again"
    # Same size, new bytes (a new mtime): the cache must not be kept.
    flipped = bytes(b ^ 0xFF for b in want[-4096:])
    with open(src / "x.tif", "r+b") as f:
        f.seek(len(want) - 4096)
        f.write(flipped)
    os.utime(src / "x.tif", ns=(time.time_ns(), time.time_ns() + 10 ** 9))
    want = want[:-4096] + flipped
    assert read_bytes(path) == want
    r2 = m.stats()["reads"]
    assert (r2 == r1) if on else (r2 > r1)


def test_many_concurrent_opens_never_fail(ptmount):
    """Readers and mmap readers of one output and of one source file open,
    read and close at random, the handles' lives overlapping and not: the
    kernel never refuses an open (EIO from a mixed io mode, fs_open.c note
    3), and every reader gets the file's bytes."""
    m, src, on = ptmount
    name = m.path("x.tif@focal=3")
    out = read_bytes(name)
    files = {name: out, m.path("x.tif"): (src / "x.tif").read_bytes()}
    assert md5(out) == md5(object_file(m, name).read_bytes())
    errors = []
    stop = time.monotonic() + 8

    def worker(seed):
        rnd = random.Random(seed)
        held = []
        try:
            while time.monotonic() < stop:
                path = rnd.choice(list(files))
                fd = os.open(path, os.O_RDONLY)
                how = rnd.randrange(3)
                if how == 0:
                    got = read_fd(fd, rnd.choice([4096, 1 << 16, 1 << 20]))
                    os.close(fd)
                elif how == 1:
                    mp = mmap.mmap(fd, 0, prot=mmap.PROT_READ)
                    os.close(fd)  # the mapping keeps the file open
                    got = mp[:]
                    if rnd.random() < 0.5:
                        held.append(mp)
                    else:
                        mp.close()
                else:
                    held.append(fd)  # closed later, after other opens
                    got = os.pread(fd, len(files[path]) + 1, 0)
                if got != files[path]:
                    errors.append("%s: %d bytes, md5 %s" %
                                  (path, len(got), md5(got)))
                while len(held) > rnd.randrange(4):
                    h = held.pop(rnd.randrange(len(held)))
                    h.close() if isinstance(h, mmap.mmap) else os.close(h)
        except OSError as e:
            errors.append(repr(e))
        finally:
            for h in held:
                h.close() if isinstance(h, mmap.mmap) else os.close(h)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not any(t.is_alive() for t in threads)
    assert not errors, errors[:5]
    st = m.stats()
    assert st["passthrough_refused"] == 0, st
    assert (st["passthrough_opens"] > 0) == on, st
    assert "cannot close its passthrough backing id" not in m.log_text()


@pytest.fixture
def overlay(tmp_path):
    """An overlayfs mount (a stacked filesystem), always unmounted."""
    if os.geteuid() != 0:
        pytest.skip("mounting an overlayfs needs root")
    d = {k: tmp_path / ("ovl-" + k) for k in ("lower", "upper", "work", "mnt")}
    for p in d.values():
        p.mkdir()
    subprocess.run(["mount", "-t", "overlay", "overlay", "-o",
                    "lowerdir=%s,upperdir=%s,workdir=%s"
                    % (d["lower"], d["upper"], d["work"]), str(d["mnt"])],
                   check=True)
    try:
        yield d["mnt"]
    finally:
        subprocess.run(["umount", str(d["mnt"])], check=False)
        if os.path.ismount(d["mnt"]):
            subprocess.run(["umount", "-l", str(d["mnt"])], check=False)


def test_backing_files_the_kernel_refuses(mount_factory, overlay):
    """Source and store on an overlayfs: the kernel refuses them as backing
    files (a stacked filesystem, ELOOP).  Each such node is then served the
    cached way for its life, logged once and counted, and mixed readers
    never see EIO."""
    src = overlay / "src"
    shutil.copytree(mount_factory.source(), src, symlinks=True)
    shutil.copy(src / OLINDA, src / "x.tif")
    m = mount_factory(src=src, cache=overlay / "store")
    on = _log_line(m).startswith("passthrough: on")
    assert on == passthrough_possible()
    name = m.path("x.tif@focal=3")
    files = {name: None, m.path("x.tif"): (src / "x.tif").read_bytes()}
    files[name] = read_bytes(name)
    assert md5(files[name]) == md5(object_file(m, name).read_bytes())
    errors = []

    def reader(seed):
        rnd = random.Random(seed)
        try:
            for _ in range(40):
                path = rnd.choice(list(files))
                fd = os.open(path, os.O_RDONLY)
                try:
                    if rnd.random() < 0.5:
                        with mmap.mmap(fd, 0, prot=mmap.PROT_READ) as mp:
                            got = mp[:]
                    else:
                        got = read_fd(fd)
                finally:
                    os.close(fd)
                if got != files[path]:
                    errors.append("%s: wrong bytes" % path)
        except OSError as e:
            errors.append(repr(e))

    threads = [threading.Thread(target=reader, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors, errors[:5]
    st = m.stats()
    assert st["passthrough_opens"] == 0, st
    if on:
        assert st["passthrough_refused"] == 2, st   # one per node
        log = m.log_text()
        assert log.count("refused its file as a passthrough backing") == 1
        assert "Too many levels of symbolic links" in log
    else:
        assert st["passthrough_refused"] == 0, st
