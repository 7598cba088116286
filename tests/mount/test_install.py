"""Installed like a filesystem: `meson install` into a temporary tree, then
`mount -t fuse.rasterfs`, an fstab line (`mount -T FILE`), the systemd unit
(`systemd-analyze verify`); a mount point that is already a mount is
refused; every option error is one line with RFS-E400.

How mount(8) sees an installed rasterfs (util-linux 2.38, fuse3 3.14):
libmount runs /sbin/mount.fuse.rasterfs if it exists (its search path,
/sbin:/sbin/fs.d:/sbin/fs, is compiled in; for a type with a subtype it
tries mount.fuse.rasterfs then mount.fuse in each directory), else
/sbin/mount.fuse (mount.fuse3), which runs `rasterfs SRC MNT -o ...`
through /bin/sh.  mount(8) removes PATH (and HOME) from the environment
first, so sh looks in its default PATH (/usr/local/sbin:/usr/local/bin:
/usr/sbin:/usr/bin:/sbin:/bin), never a build directory.  The tests do not
write into /usr or /sbin: each runs in a private mount namespace (unshare)
where the installed tree is laid over the prefix and a symlink
/sbin/mount.fuse.rasterfs over /sbin (overlayfs, read-only), exactly what
mount(8) would find after `meson install` and `scripts/setup.sh
--install`; everything mounted there goes with the namespace.
"""

import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest

import rfsref
from rfsmount import BIN, pids_serving, read_bytes

SRC = "srtm1_N48W125_crop.tif"
NAME = SRC + "@focal=3,max"
BUILD = Path(os.environ.get("RASTERFS_BUILD_DIR", Path(BIN).parent))


def _need_root_tools():
    if os.geteuid() != 0:
        pytest.skip("mount(8), unshare and overlayfs need root")
    for tool in ("unshare", "mount", "meson"):
        if not shutil.which(tool):
            pytest.fail("%s is missing" % tool)
    if not (BUILD / "meson-private").is_dir():
        pytest.fail("%s is not a meson build directory (set "
                    "RASTERFS_BUILD_DIR)" % BUILD)


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """`meson install --destdir` of the build: (destdir, prefix)."""
    _need_root_tools()
    dest = tmp_path_factory.mktemp("destdir")
    r = subprocess.run(["meson", "install", "-C", str(BUILD), "--destdir",
                        str(dest), "--no-rebuild", "--skip-subprojects",
                        "--quiet"], stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, timeout=300)
    assert r.returncode == 0, r.stdout.decode(errors="replace")
    bins = list(dest.glob("**/bin/rasterfs"))
    assert len(bins) == 1, bins
    prefix = "/" + str(bins[0].parent.parent.relative_to(dest))
    return dest, prefix


def test_install_tree(installed):
    dest, prefix = installed
    root = dest / prefix.lstrip("/")
    helper = root / "sbin" / "mount.fuse.rasterfs"
    assert helper.is_symlink()
    # relative: the tree works wherever it is laid
    assert not os.readlink(helper).startswith("/"), os.readlink(helper)
    assert helper.resolve() == (root / "bin" / "rasterfs").resolve()
    unit = root / "lib" / "systemd" / "system" / "rasterfs@.service"
    text = unit.read_text()
    assert "ExecStart=%s/bin/rasterfs " % prefix in text, text


def _kill_daemons(mnt):
    """Daemons still serving mnt (a unique temporary path): ours."""
    for pid in pids_serving(mnt):
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def _in_namespace(installed, body, mnt, helper=True, timeout=180):
    """Run the bash body in a private mount namespace where the installed
    tree lies over its prefix and, with helper, /sbin/mount.fuse.rasterfs
    points into it.  Returns the CompletedProcess (stdout and stderr
    together)."""
    dest, prefix = installed
    sbin = os.path.realpath("/sbin")
    links = Path(str(dest) + ".sbin")
    links.mkdir(exist_ok=True)
    link = links / "mount.fuse.rasterfs"
    if not link.is_symlink():
        link.symlink_to(prefix + "/sbin/mount.fuse.rasterfs")
    script = ["set -eu",
              "trap 'set +e; umount %s 2>/dev/null || umount -l %s "
              "2>/dev/null' EXIT" % (mnt, mnt),
              "mount -t overlay rfs-test -o lowerdir=%s:%s %s"
              % (dest / prefix.lstrip("/"), prefix, prefix)]
    if helper and os.path.realpath(prefix + "/sbin") != sbin:
        script.append("mount -t overlay rfs-test -o lowerdir=%s:%s %s"
                      % (links, sbin, sbin))
    script.append(body)
    try:
        return subprocess.run(["unshare", "--mount", "--propagation",
                               "private", "bash", "-c", "\n".join(script)],
                              stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, timeout=timeout,
                              env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin"})
    finally:
        _kill_daemons(mnt)


def _check_output(path, tmp_src):
    """The focal oracle (rfsref, on GDAL's read of the source)."""
    b = rfsref.Raster(path).band(1)
    ref = rfsref.Raster(tmp_src / SRC).band(1)
    rfsref.assert_band_equals(
        b, rfsref.focal(ref["array"], ref["nodata"], 3, "max"), True)


@pytest.mark.parametrize("route", ["helper", "mount.fuse3"])
def test_mount_t_fuse_rasterfs(installed, mount_factory, tmp_path, route):
    """mount -t fuse.rasterfs: through /sbin/mount.fuse.rasterfs, and
    without it through mount.fuse3 (rasterfs on sh's default PATH)."""
    src = mount_factory.source()
    mnt, cache, out = tmp_path / "mnt", tmp_path / "cache", tmp_path / "o.tif"
    mnt.mkdir()
    body = """
mount -v -t fuse.rasterfs {src} {mnt} -o ro,nofail,_netdev,cache={cache},workers=2
grep " {mnt} " /proc/self/mounts
cp '{mnt}/{name}' {out}
umount {mnt}
echo unmounted
""".format(src=src, mnt=mnt, cache=cache, name=NAME, out=out)
    r = _in_namespace(installed, body, mnt, helper=(route == "helper"))
    text = r.stdout.decode(errors="replace")
    assert r.returncode == 0, text
    line = [ln for ln in text.splitlines()  # the /proc/self/mounts line
            if len(ln.split()) == 6 and ln.split()[1] == str(mnt)][0]
    assert line.split()[2] == "fuse.rasterfs", line
    assert "ro" in line.split()[3].split(","), line
    assert text.rstrip().endswith("unmounted"), text
    # which program mount(8) ran: ours says so with -v; mount.fuse3 not
    ran = "mount.fuse.rasterfs: rasterfs %s %s -o cache=%s,workers=2" % (
        src, mnt, cache)
    assert (ran in text) == (route == "helper"), (ran, text)
    _check_output(out, src)
    assert not os.path.ismount(mnt)


def test_fstab_line_and_second_mount_refused(installed, mount_factory,
                                             tmp_path):
    """An fstab line as docs/install.md gives it, with `mount -T FILE MNT`;
    mounting again on the mounted point fails with RFS-E400 and the first
    mount still serves."""
    src = mount_factory.source()
    mnt, cache = tmp_path / "mnt", tmp_path / "cache"
    out1, out2 = tmp_path / "1.tif", tmp_path / "2.tif"
    mnt.mkdir()
    fstab = tmp_path / "fstab"
    fstab.write_text("# a test fstab\n%s %s fuse.rasterfs ro,cache=%s,"
                     "workers=4,nofail,x-systemd.requires=local-fs.target "
                     "0 0\n" % (src, mnt, cache))
    body = """
mount -T {fstab} {mnt}
cp '{mnt}/{name}' {out1}
set +e
mount -t fuse.rasterfs {src} {mnt} -o cache={cache}2 2>{tmp}/err
echo "second: $?"
set -e
cp '{mnt}/{name}' {out2}
umount {mnt}
echo unmounted
""".format(fstab=fstab, mnt=mnt, name=NAME, out1=out1, out2=out2,
           src=src, cache=cache, tmp=tmp_path)
    r = _in_namespace(installed, body, mnt)
    text = r.stdout.decode(errors="replace")
    assert r.returncode == 0, text
    assert "second: 0" not in text and "second: " in text, text
    err = (tmp_path / "err").read_text().strip().splitlines()
    assert len(err) == 1 and "RFS-E400" in err[0] and \
        "already a mount point" in err[0], err
    assert text.rstrip().endswith("unmounted"), text
    _check_output(out1, src)
    assert out1.read_bytes() == out2.read_bytes()
    assert not (tmp_path / "cache2").exists(), \
        "the refused mount made a store"


def test_helper_flags(installed, mount_factory, tmp_path):
    """mount(8)'s helper convention, run directly: -f (fake) checks and
    mounts nothing; -n, -s are accepted; -N is refused on one line."""
    dest, prefix = installed
    helper = dest / prefix.lstrip("/") / "sbin" / "mount.fuse.rasterfs"
    src = mount_factory.source()
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    opts = "cache=%s,ro,nofail" % (tmp_path / "cache")
    r = subprocess.run([str(helper), str(src), str(mnt), "-f", "-n", "-s",
                        "-o", opts], stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, timeout=30)
    assert r.returncode == 0, r.stderr
    assert not os.path.ismount(mnt)
    r = subprocess.run([str(helper), str(src), str(mnt), "-N", "/proc/1/ns"
                        "/mnt", "-o", opts], stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, timeout=30)
    lines = r.stderr.decode().strip().splitlines()
    assert r.returncode != 0 and len(lines) == 1 and "RFS-E400" in lines[0]
    assert not os.path.ismount(mnt)


def test_systemd_unit_verifies(installed):
    """The unit template passes systemd-analyze verify (which works
    without systemd as PID 1, and checks that ExecStart exists: the
    installed tree lies over the prefix)."""
    if not shutil.which("systemd-analyze"):
        pytest.fail("systemd-analyze is missing (Debian package systemd)")
    dest, prefix = installed
    unit = prefix + "/lib/systemd/system/rasterfs@.service"
    r = _in_namespace(installed, "systemd-analyze verify %s" % unit,
                      "/nonexistent-rfs-mnt", helper=False)
    text = r.stdout.decode(errors="replace")
    assert r.returncode == 0 and not text.strip(), text


def test_second_mount_on_a_mount_point_refused(mount_factory, tmp_path):
    """Today's binary, by hand: the second rasterfs on one mount point
    fails with one RFS-E400 line and starts nothing; the first serves on."""
    m = mount_factory()
    first = read_bytes(m.path(NAME))
    for args in ([], ["-f"]):
        r = subprocess.run([BIN] + args + [str(m.src), str(m.mnt), "-o",
                            "cache=%s" % (tmp_path / "other")],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           stdin=subprocess.DEVNULL, timeout=30)
        lines = r.stderr.decode().strip().splitlines()
        assert r.returncode != 0
        assert len(lines) == 1 and lines[0].startswith(
            "rasterfs: RFS-E400 %s is already a mount point" % m.mnt), lines
    assert not (tmp_path / "other").exists()
    assert m.alive()
    assert read_bytes(m.path(NAME)) == first
    with open("/proc/self/mounts") as f:
        assert sum(1 for ln in f if ln.split()[1] == str(m.mnt)) == 1


@pytest.mark.parametrize("opts,words", [
    ("foo=1", ["unknown option", "foo=1"]),
    ("foo=1,bar", ["unknown option", "foo=1,bar"]),
    ("workers=abc", ["workers=abc"]),
    ("workers=1000", ["workers=1000"]),
    ("cache_size=lots", ["cache_size=lots"]),
])
def test_option_error_is_one_line(tmp_path, opts, words):
    src, mnt = tmp_path / "src", tmp_path / "mnt"
    src.mkdir()
    mnt.mkdir()
    for fg in ([], ["-f"]):
        t = time.monotonic()
        r = subprocess.run([BIN] + fg + [str(src), str(mnt), "-o",
                            "cache=%s,%s" % (tmp_path / "c", opts)],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           stdin=subprocess.DEVNULL, timeout=30)
        lines = r.stderr.decode().strip().splitlines()
        assert r.returncode != 0 and not os.path.ismount(mnt)
        assert len(lines) == 1, lines
        assert lines[0].startswith("rasterfs: RFS-E400 "), lines
        for w in words:
            assert w in lines[0], lines
        assert time.monotonic() - t < 10
