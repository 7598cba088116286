"""Bounded resources: a node keeps only what it needs, so 100,000 distinct
virtual names looked up (and held by the kernel) keep the daemon under
100 MB; the daemon takes its hard limit of open files, and a job that ran
out of descriptors is not remembered as a failure."""

import errno
import os
import resource
import subprocess
import time

import pytest

from rfsmount import read_bytes
from storeutil import OLINDA, small_names

N = 100_000
LIMIT_KB = 100 * 1024


def status_kb(pid, field):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise AssertionError("no %s in /proc/%d/status" % (field, pid))


@pytest.mark.slow
def test_hundred_thousand_names(mount_factory):
    # describers=0: the nodes and the lookups are measured here, not 10^5
    # describes (test_meta.py and bench.sh measure those)
    m = mount_factory(options=("describers=0",))
    base = status_kb(m.pid, "VmRSS")
    t0 = time.monotonic()
    for i in range(N):
        # distinct canonical chains, each a valid name (lookup parses and
        # checks it, and makes a node); nothing is computed
        st = os.stat(m.path("%s@reclass=-inf:%d:1,%d:inf:2" % (OLINDA, i, i)))
        assert st.st_size == 0
    took = time.monotonic() - t0
    s = m.stats()
    rss, hwm = status_kb(m.pid, "VmRSS"), status_kb(m.pid, "VmHWM")
    print("%d lookups in %.1f s; nodes held %d; RSS %d -> %d kB, peak %d kB"
          % (N, took, s["nodes"], base, rss, hwm))
    assert s["jobs_started"] == 0
    # The kernel holds (nearly) all of them, so the nodes are all live.
    assert s["nodes"] > 0.9 * N, s["nodes"]
    assert hwm < LIMIT_KB, "daemon peak RSS %d kB" % hwm


def nofile(pid):
    with open("/proc/%d/limits" % pid) as f:
        for line in f:
            if line.startswith("Max open files"):
                soft, hard = line.split()[3:5]
                return soft, hard
    raise AssertionError("no open files limit")


def test_fd_limit_raised(mount_factory):
    """Started with a soft limit below the hard one (this process's is
    lowered while the daemon starts), the daemon takes the hard one."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (256, hard))
    try:
        m = mount_factory()
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    assert nofile(m.pid) == (str(hard), str(hard))
    assert read_bytes(m.path(small_names(1)[0]))


def test_out_of_descriptors_is_not_remembered(mount_factory):
    """Each open handle holds a daemon descriptor.  With the daemon's limit
    lowered to a few above what it uses, held handles exhaust it: a job
    then fails (its commit cannot open the file) with EMFILE, and once the
    handles close the same output computes at once (retry_after=60 would
    otherwise fail it for a minute)."""
    m = mount_factory(options=["retry_after=60"])
    a, b = (m.path(n) for n in small_names(2))
    want_a = read_bytes(a)
    used = len(os.listdir("/proc/%d/fd" % m.pid))
    lim = used + 6
    subprocess.run(["prlimit", "--pid", str(m.pid),
                    "--nofile=%d:%d" % (lim, lim)], check=True)
    held = []
    try:
        for _ in range(20):
            try:
                held.append(open(a, "rb"))
            except OSError as e:
                assert e.errno == errno.EMFILE, e
                break
        else:
            raise AssertionError("20 handles and no EMFILE")
        assert len(held) >= 1
        try:
            read_bytes(b)
            raise AssertionError("a job ran with no descriptor left")
        except OSError as e:
            assert e.errno == errno.EMFILE, e
        assert "EMFILE" in m.log_text()
    finally:
        for f in held:
            assert f.read() == want_a
            f.close()
    started = m.stats()["jobs_started"]
    assert len(read_bytes(b)) > 0
    assert m.stats()["jobs_started"] == started + 1
