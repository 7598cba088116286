"""The test cluster itself: job arrays with a %K limit, cancelling one task,
and nothing left running after a failing or killed test.

The oracles are outside Slurm's own bookkeeping where they can be: the files
the tasks write (their id, their job's id, a value they compute, start and
end times read from the clock) and /proc (which processes still live).
"""

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

import slurm

pytestmark = [pytest.mark.cluster, pytest.mark.slow]

HERE = Path(__file__).resolve().parent


def wait_for(what, cond, timeout):
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError("%s: not within %d s" % (what, timeout))
        time.sleep(0.1)


def running(pid):
    """pid exists and is not a zombie."""
    try:
        stat = Path("/proc", str(pid), "stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def max_overlap(intervals):
    """The most intervals open at one instant (an end before a start at the
    same instant)."""
    events = sorted([(s, 1) for s, _ in intervals] +
                    [(e, -1) for _, e in intervals])
    best = cur = 0
    for _, d in events:
        cur += d
        best = max(best, cur)
    return best


def test_array_of_20_at_most_4_at_once(cluster, tmp_path, timings):
    out = tmp_path / "out"
    out.mkdir()
    # Each task writes its id, its array's job id, i*i, and its start and end
    # times; write-then-rename so a half-written file is never read.
    script = textwrap.dedent("""\
        i=$SLURM_ARRAY_TASK_ID
        s=$(date +%s.%N)
        sleep 2
        e=$(date +%s.%N)
        echo "$i $SLURM_ARRAY_JOB_ID $((i * i)) $s $e" > {o}/.t$i
        mv {o}/.t$i {o}/task.$i
        """).format(o=out)
    t0 = time.monotonic()
    jobid = cluster.sbatch("--array=0-19%4", "-o", tmp_path / "slurm-%A_%a.out",
                           "--wrap", script)
    states = cluster.wait_job(jobid, timeout=240)
    elapsed = time.monotonic() - t0
    timings.append(("20-task array (2 s each, %4)", elapsed))

    assert states == {i: "COMPLETED" for i in range(20)}
    assert sorted(os.listdir(out)) == sorted("task.%d" % i for i in range(20))
    intervals = []
    for i in range(20):
        f = (out / ("task.%d" % i)).read_text().split()
        assert [int(x) for x in f[:3]] == [i, jobid, i * i], f
        start, end = float(f[3]), float(f[4])
        assert end - start >= 2.0
        intervals.append((start, end))
    overlap = max_overlap(intervals)
    timings.append(("  most tasks running at once: %d" % overlap, None))
    # %4 bounds it; more than one at once shows the tasks ran in parallel
    # (the partition has CPUs * 4 slots, so the limit is the array's).
    assert 2 <= overlap <= 4, intervals
    # Never less than 5 waves of 2 s.
    assert elapsed >= 10


def test_cancel_one_array_task(cluster, tmp_path):
    d = tmp_path
    script = textwrap.dedent("""\
        i=$SLURM_ARRAY_TASK_ID
        sleep 120 &
        echo "$$ $!" > {d}/.pid.$i && mv {d}/.pid.$i {d}/pid.$i
        wait
        touch {d}/done.$i
        """).format(d=d)
    jobid = cluster.sbatch("--array=0-3", "-o", "/dev/null", "--wrap", script)
    try:
        wait_for("all 4 tasks started", lambda: all(
            (d / ("pid.%d" % i)).exists() for i in range(4)), 60)
        pids = [int(x) for x in (d / "pid.2").read_text().split()]
        assert all(running(p) for p in pids)

        cluster.run("scancel", "%d_2" % jobid)
        wait_for("task 2 CANCELLED",
                 lambda: cluster.states(jobid).get(2) == "CANCELLED", 30)
        # Its shell and its sleep are gone, and it never reached its end.
        wait_for("task 2's processes gone",
                 lambda: not any(running(p) for p in pids), 30)
        assert not (d / "done.2").exists()
        # Its siblings are untouched.
        st = cluster.states(jobid)
        assert {i: st[i] for i in (0, 1, 3)} == {i: "RUNNING" for i in (0, 1, 3)}
        sib = [int(x) for i in (0, 1, 3)
               for x in (d / ("pid.%d" % i)).read_text().split()]
        assert all(running(p) for p in sib)
    finally:
        cluster.run("scancel", jobid)
    states = cluster.wait_job(jobid, timeout=60)
    assert states == {i: "CANCELLED" for i in range(4)}
    assert not any((d / ("done.%d" % i)).exists() for i in range(4))


def _long_job(c, tmp_path):
    """Submit a job that would run 10 minutes; its pids once it runs."""
    pidf = tmp_path / "pid"
    c.sbatch("-o", "/dev/null", "--wrap",
             "sleep 600 & echo $$ $! > %s.t && mv %s.t %s; wait" %
             (pidf, pidf, pidf))
    wait_for("the long job started", pidf.exists, 60)
    return [int(x) for x in pidf.read_text().split()]


def test_failing_test_leaves_nothing_running(tmp_path, start_cluster):
    c = slurm.SlurmCluster()
    with pytest.raises(RuntimeError, match="a failing test"):
        with start_cluster(c):
            pids = _long_job(c, tmp_path)
            daemons = [p.pid for p in c.procs.values()]
            conf, d, ports = c.conf, c.dir, c.ports
            assert conf.exists()
            raise RuntimeError("a failing test")
    assert c.leftovers(conf) == []
    assert not any(running(p) for p in pids + daemons)
    assert not d.exists()
    assert all(slurm._port_free(p) for p in ports)


def test_sigterm_leaves_nothing_running(tmp_path):
    """meson's timeout: SIGTERM to pytest while a job runs."""
    child = textwrap.dedent("""\
        import sys, time
        sys.path.insert(0, %r)
        import slurm
        slurm.install_signal_cleanup()
        c = slurm.SlurmCluster().start()
        c.sbatch("-o", "/dev/null", "--wrap",
                 "echo $$ > %s/pid.t && mv %s/pid.t %s/pid; sleep 600")
        print(c.conf, c.dir, flush=True)
        time.sleep(600)
        """ % (str(HERE), tmp_path, tmp_path, tmp_path))
    p = subprocess.Popen([sys.executable, "-c", child], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
    try:
        line = p.stdout.readline().split()
        if not line:
            err = p.communicate(timeout=30)[1]
            if "SlurmUnavailable" in err:
                pytest.skip("no Slurm cluster on this machine: " +
                            err.strip().splitlines()[-1])
            raise AssertionError("child failed: " + err)
        conf, d = line
        wait_for("the job started", (tmp_path / "pid").exists, 60)
        job = int((tmp_path / "pid").read_text())
        assert slurm._marked(conf)
        p.send_signal(signal.SIGTERM)
        assert p.wait(60) == -signal.SIGTERM
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    assert slurm._marked(conf) == []
    assert not running(job)
    assert not Path(d).exists()
