"""MOUNTPOINT/.rasterfs/log and the daemon's log file (issue 10, item 2).

Oracles: what the test did (which names it looked up, which job it made
fail, as which user), the mount's counters, the jobs file, and the file
name rule of docs/errors.md computed here from the mount point."""

import json
import os
import re
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

import rfsmount
from rfsmount import BIN, read_bytes, unmount_and_reap

NOBODY = 65534


def log_lines(m):
    return read_bytes(m.path(".rasterfs/log")).decode().splitlines()


def broken_source(src):
    """A GeoTIFF cut after its header: GDAL opens it, reading fails."""
    data = (src / "opengeos_dtm.tif").read_bytes()
    (src / "broken.tif").write_bytes(data[:3000])


def test_failed_job_and_bad_name_lines(mount_factory):
    src = mount_factory.source()
    broken_source(src)
    m = mount_factory(src=src)
    with pytest.raises(OSError):
        read_bytes(m.path("broken.tif@focal=3"))
    with pytest.raises(OSError):
        os.stat(m.path("opengeos_dtm.tif@fokal=3"))
    lines = log_lines(m)
    text = "\n".join(lines)

    # the failed job: code and reason, as the jobs file has them
    jobs = [json.loads(x) for x in
            read_bytes(m.path(".rasterfs/jobs")).decode().splitlines()]
    job = [j for j in jobs if j["path"] == "broken.tif@focal=3"][-1]
    assert job["state"] == "failed" and job["error"] == "RFS-E201"
    want = ("job %d failed after" % job["id"],
            "broken.tif@focal=3,mean,square: RFS-E201 %s" % job["message"])
    failed = [i for i, x in enumerate(lines) if all(w in x for w in want)]
    assert len(failed) == 1, text
    assert re.match(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3} error "
                    r"\[uid=0\]: job", lines[failed[0]]), lines[failed[0]]
    # its worker's own GDAL lines, through the daemon, before the end
    worker = [i for i, x in enumerate(lines)
              if re.search(r"\[uid=0\]: worker\[\d+\] job %d: GDAL error"
                           % job["id"], x)]
    assert worker and max(worker) < failed[0], text

    # the bad name: code, the grammar's message and its suggestion
    assert any("notice [uid=0]: opengeos_dtm.tif@fokal=3: RFS-E100 'fokal' "
               "is not a step; did you mean 'focal'?" in x for x in lines), \
        text
    assert any("serving %s at %s" % (os.path.realpath(src), m.mnt) in x
               for x in lines), text


def test_bad_name_logged_once_a_minute(mount_factory):
    """QGIS looks a bad name up four times for one add: one line."""
    m = mount_factory()
    before = m.stats()["bad_names"]
    name = m.path("opengeos_dtm.tif@focal=4")
    for _ in range(4):
        with pytest.raises(OSError):
            os.stat(name)
    assert m.stats()["bad_names"] == before + 4
    hits = [x for x in log_lines(m) if "opengeos_dtm.tif@focal=4:" in x]
    assert len(hits) == 1, hits
    assert "RFS-E101 focal: SIZE must be an odd integer" in hits[0]
    # another name is its own
    with pytest.raises(OSError):
        os.stat(m.path("opengeos_dtm.tif@focal=6"))
    assert any("opengeos_dtm.tif@focal=6:" in x for x in log_lines(m))


def as_nobody_read(path):
    r = subprocess.run(["setpriv", "--reuid=nobody", "--regid=nogroup",
                        "--clear-groups", "cat", path],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       timeout=60)
    assert r.returncode == 0, r.stderr.decode()
    return r.stdout.decode()


def as_nobody_stat(path):
    subprocess.run(["setpriv", "--reuid=nobody", "--regid=nogroup",
                    "--clear-groups", "stat", path],
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                   timeout=60)


@pytest.fixture
def public(mount_factory):
    """A directory others may enter (pytest's tmp_path is 0700)."""
    base = Path(tempfile.mkdtemp(prefix="rfs-log-", dir="/tmp"))
    os.chmod(base, 0o755)
    src = base / "src"
    rfsmount.copy_data(src)
    os.chmod(src, 0o755)
    broken_source(src)
    os.chmod(src / "broken.tif", 0o644)
    try:
        yield base
    finally:
        mount_factory.stop_all()
        shutil.rmtree(base)


def test_other_users_read_only_their_lines(mount_factory, public):
    (public / "src" / "undescribed.tif").write_bytes(b"not a raster\n" * 99)
    os.chmod(public / "src" / "undescribed.tif", 0o644)
    m = mount_factory(src=public / "src", cache=public / "cache",
                      mnt=public / "mnt", options=["allow_other"])
    # root's requests: a failed job and a bad name
    with pytest.raises(OSError):
        read_bytes(m.path("broken.tif@focal=5"))
    with pytest.raises(OSError):
        os.stat(m.path("opengeos_dtm.tif@rootsecret=1"))
    # and a describe that fails (a source GDAL cannot open): provisional
    assert os.stat(m.path("undescribed.tif@slope")).st_size == 0
    # nobody's: a bad name of its own
    as_nobody_stat(m.path("rgbify_elev.tif@nobodys=1"))

    mine = as_nobody_read(m.path(".rasterfs/log"))
    assert "rgbify_elev.tif@nobodys=1: RFS-E100" in mine, mine
    assert "[uid=%d]" % NOBODY in mine
    for secret in ("rootsecret", "broken.tif", "undescribed.tif",
                   "[uid=0]", "[private]"):
        assert secret not in mine, (secret, mine)
    assert "serving" in mine, "lines of nobody's are everyone's"

    everything = "\n".join(log_lines(m))
    for line in ("rgbify_elev.tif@nobodys=1: RFS-E100",
                 "opengeos_dtm.tif@rootsecret=1: RFS-E100",
                 "broken.tif@focal=5,mean,square: RFS-E201",
                 "[private]: describe of undescribed.tif@slope"):
        assert line in everything, (line, everything)
    assert "[uid=%d]: rgbify_elev.tif@nobodys=1" % NOBODY in everything
    # the describe says why, not only that it failed
    assert re.search(r"describe of undescribed\.tif@slope\S*: RFS-E200 "
                     r"cannot open the source: [^;]*not recognized",
                     everything), everything



def test_daemon_without_syslog_logs_to_the_state_dir(tmp_path):
    """Daemon mode (no -f) where there is no syslog socket: the log is a
    file in $XDG_STATE_HOME/rasterfs named after the mount point, and the
    command says so on stderr.  RASTERFS_TEST_NO_SYSLOG=1 makes a machine
    with /dev/log look like one without."""
    if not os.path.exists("/dev/fuse"):
        pytest.skip("no /dev/fuse")
    src = rfsmount.copy_data(tmp_path / "src")
    broken_source(src)
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    state = tmp_path / "state"
    env = dict(os.environ, XDG_STATE_HOME=str(state),
               RASTERFS_TEST_NO_SYSLOG="1")
    want = state / "rasterfs" / (
        os.path.realpath(mnt).lstrip("/").replace("/", "-") + ".log")
    try:
        r = subprocess.run([BIN, str(src), str(mnt), "-o",
                            "cache=%s,workers=1" % (tmp_path / "cache")],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           stdin=subprocess.DEVNULL, env=env, timeout=30)
        err = r.stderr.decode()
        assert r.returncode == 0, err
        assert "no syslog socket (/dev/log): logging to %s" % want in err
        with pytest.raises(OSError):
            read_bytes(str(mnt / "broken.tif@focal=3"))
        with pytest.raises(OSError):
            os.stat(mnt / "opengeos_dtm.tif@fokal=3")
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            text = want.read_text() if want.exists() else ""
            if "RFS-E201" in text and "fokal" in text:
                break
            time.sleep(0.1)
    finally:
        unmount_and_reap(mnt)
    text = want.read_text()
    assert oct(want.stat().st_mode & 0o777) == oct(0o600)
    assert "serving %s at %s" % (os.path.realpath(src), mnt) in text
    assert re.search(r"rasterfs\[\d+\] error: job 1 failed after [0-9.]+ s: "
                     r"broken\.tif@focal=3,mean,square: RFS-E201 ", text), \
        text
    assert re.search(r"rasterfs\[\d+\] error: worker\[\d+\] job 1: GDAL "
                     r"error", text), text
    assert "opengeos_dtm.tif@fokal=3: RFS-E100 'fokal' is not a step; did " \
        "you mean 'focal'?" in text
    assert "unmounting %s" % mnt in text
    for line in text.splitlines():
        assert re.match(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3} ", line), line
