"""Fixtures for the mount tests: real rasterfs mounts, always unmounted."""

import atexit
import os
import shutil

import pytest

import rfsmount
from rfsmount import BIN, Mount

rfsmount.install_signal_cleanup()
atexit.register(rfsmount.stop_all)


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "slow: long tests, run by the 'slow' suite "
        "(meson test --suite slow), not by 'mount'")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    if rep.failed and rfsmount.ACTIVE:
        for m in rfsmount.ACTIVE:
            rep.sections.append(("rasterfs log (%s)" % m.mnt, m.log_text()))
    elif rep.failed:
        logs = getattr(item, "_rfs_logs", [])
        for path in logs:
            try:
                text = open(path, errors="replace").read()[-20000:]
            except OSError:
                continue
            rep.sections.append(("rasterfs log (%s)" % path, text))


def _need_fuse():
    if not os.path.exists(BIN):
        pytest.fail("no rasterfs binary at %s (set RASTERFS_BIN)" % BIN)
    if not os.path.exists("/dev/fuse") or not shutil.which("fusermount3"):
        pytest.skip("FUSE is not available (/dev/fuse, fusermount3)")


class MountFactory:
    """Starts mounts in one temp directory; stops them all at teardown."""

    def __init__(self, base, item=None):
        self.base = base
        self.mounts = []
        self.n = 0
        self.item = item

    def source(self, name="src"):
        """A fresh copy of tests/data that a test may add files to."""
        p = self.base / name
        if not p.exists():
            rfsmount.copy_data(p)
        return p

    def __call__(self, src=None, cache=None, workers=2, options=(),
                 mnt=None):
        self.n += 1
        src = src or self.source()
        cache = cache or self.base / ("cache%d" % self.n)
        mnt = mnt or self.base / ("mnt%d" % self.n)
        m = Mount(src, mnt, cache,
                  self.base / ("rasterfs%d.log" % self.n), workers, options)
        self.mounts.append(m)
        if self.item is not None:
            self.item._rfs_logs = [str(x.log) for x in self.mounts]
        return m.start()

    def stop_all(self):
        errors = []
        for m in reversed(self.mounts):
            try:
                m.stop()
            except Exception as e:  # keep unmounting the rest
                errors.append(e)
        if errors:
            raise errors[0]


@pytest.fixture
def mount_factory(tmp_path, request):
    """Function scope: start your own mounts (remount, kill, options)."""
    _need_fuse()
    f = MountFactory(tmp_path, request.node)
    try:
        yield f
    finally:
        f.stop_all()


@pytest.fixture(scope="module")
def mount(tmp_path_factory, request):
    """Module scope: one mount of a copy of tests/data, workers=2."""
    _need_fuse()
    f = MountFactory(tmp_path_factory.mktemp(request.module.__name__))
    try:
        yield f()
    finally:
        f.stop_all()
