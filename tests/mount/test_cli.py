"""The command line: --help, --version, bad options, daemon mode."""

import os
import subprocess

import pytest

import rfsmount
from rfsmount import (BIN, pids_serving, read_bytes,
                      unmount_and_reap)


def _run(args, timeout=20):
    return subprocess.run([BIN] + args, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, stdin=subprocess.DEVNULL,
                          timeout=timeout)


def test_help_and_version():
    r = _run(["--version"])
    assert r.returncode == 0
    out = (r.stdout + r.stderr).decode()
    assert "rasterfs" in out and any(c.isdigit() for c in out), out
    r = _run(["--help"])
    assert r.returncode == 0
    out = (r.stdout + r.stderr).decode()
    for word in ("cache=", "workers="):
        assert word in out, out



@pytest.mark.parametrize("args,what", [
    (["-o", "workers=abc"], "bad workers"),
    (["-o", "cache=/dev/null"], "cache not a directory"),
    (["-o", "nosuchoption=1"], "unknown option"),
    ([], "no such source"),
])
def test_bad_start_fails_cleanly(tmp_path, args, what):
    src = tmp_path / ("nosuch" if what == "no such source" else "src")
    if what != "no such source":
        src.mkdir()
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    try:
        try:
            r = _run(["-f", str(src), str(mnt),
                      "-o", "cache=%s" % (tmp_path / "cache")] + args)
        except subprocess.TimeoutExpired:
            pytest.fail("%s: rasterfs -f did not exit (it mounted)" % what)
        assert r.returncode != 0, what
        assert r.stderr.strip(), "%s: no message" % what
        assert not os.path.ismount(mnt)
    finally:
        unmount_and_reap(mnt)


def test_daemon_mode_returns_when_mounted_and_detaches(tmp_path):
    """Without -f the command returns once the mount is usable, and the
    daemon (and its workers) keep none of the caller's stdout/stderr: a
    caller reading them to EOF (a shell's $(...), a pipe, CI) must not
    wait for the unmount."""
    if not os.path.exists("/dev/fuse"):
        pytest.skip("no /dev/fuse")
    src = rfsmount.copy_data(tmp_path / "src")
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    # its log file (where there is no syslog) goes to the test's directory
    env = dict(os.environ, XDG_STATE_HOME=str(tmp_path / "state"))
    p = subprocess.Popen([BIN, str(src), str(mnt), "-o",
                          "cache=%s,workers=2" % (tmp_path / "cache")],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         stdin=subprocess.DEVNULL, env=env)
    try:
        try:
            out, err = p.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            held = os.path.ismount(mnt)
            p.kill()
            p.wait()
            pytest.fail("stdout/stderr still open 10 s after start (mounted: "
                        "%s): the daemon or its workers hold the caller's "
                        "pipes" % held)
        assert p.returncode == 0, err.decode(errors="replace")
        assert os.path.ismount(mnt), "returned before the mount was up"
        data = read_bytes(str(mnt / "opengeos_dtm.tif@focal=3,max"))
        assert len(data) > 0
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
        unmount_and_reap(mnt)
    assert not pids_serving(mnt), "daemon still running after unmount"
