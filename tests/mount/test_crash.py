"""kill -9 of the daemon at random moments during a run of 200 commits;
after each kill a new mount repairs the store, and `rasterfs cache verify`
finds every entry complete (size and XXH3-64 checksum), no orphan or
scratch file, and LMDB's reader table holds no dead process."""

import hashlib
import os
import random
import re
import signal
import subprocess
import threading
import time

import pytest

from rfsmount import read_bytes
from storeutil import small_names, verify_clean

SEEDS = (11, 22, 33, 44)


def reader_pids(index_dir):
    """Pids in LMDB's reader table (mdb_stat -r), if mdb_stat exists."""
    try:
        out = subprocess.run(["mdb_stat", "-r", str(index_dir)],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             timeout=30).stdout.decode()
    except FileNotFoundError:
        return None
    pids = []
    for line in out.splitlines():
        f = line.split()
        if len(f) == 3 and f[0].isdigit() and f[2] != "-":
            pids.append(int(f[0]))
    return pids


def alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.mark.slow
def test_kill9_during_commits(mount_factory, tmp_path, capsys):
    names = small_names(200)
    src = mount_factory.source()
    cache = tmp_path / "store"
    done = {}           # name -> sha256 of the bytes first read
    lock = threading.Lock()
    kills = checked = rounds = 0
    t0 = time.monotonic()

    def check(m):
        nonlocal checked
        doc = verify_clean(cache)
        checked += doc["entries"]
        pids = reader_pids(cache / "index")
        if pids is not None:
            dead = [p for p in pids if not alive(p)]
            assert not dead, "stale LMDB reader slots of %s" % dead
        # Everything read before a kill survived it, with its bytes.
        with lock:
            sample = random.Random(len(done)).sample(
                sorted(done), min(10, len(done)))
        s0 = m.stats()["jobs_started"]
        for n in sample:
            assert hashlib.sha256(read_bytes(m.path(n))).hexdigest() \
                == done[n], n
        assert m.stats()["jobs_started"] == s0, "a committed output was lost"

    for i, seed in enumerate(SEEDS):
        rng = random.Random(seed)
        todo = [n for n in names if n not in done]
        rng.shuffle(todo)
        share = todo[:len(todo) // (len(SEEDS) - i)]
        while any(n not in done for n in share):
            rounds += 1
            m = mount_factory(src=src, cache=cache, workers=2)
            check(m)
            stop = threading.Event()

            def reader(part):
                for n in part:
                    if stop.is_set():
                        return
                    try:
                        data = open(m.path(n), "rb").read()
                    except OSError:
                        return  # the daemon is gone
                    with lock:
                        done.setdefault(n, hashlib.sha256(data).hexdigest())

            left = [n for n in share if n not in done]
            ts = [threading.Thread(target=reader, args=(left[j::4],),
                                   daemon=True) for j in range(4)]
            for t in ts:
                t.start()
            time.sleep(rng.uniform(0.02, 0.3))
            if m.proc.poll() is None:
                os.kill(m.pid, signal.SIGKILL)
                kills += 1
            stop.set()
            m.proc.wait(timeout=20)
            subprocess.run(["fusermount3", "-u", "-z", str(m.mnt)],
                           stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL)
            for t in ts:
                t.join(timeout=30)
            m.stop()
    m = mount_factory(src=src, cache=cache, workers=2)
    check(m)
    doc = verify_clean(cache)
    assert doc["entries"] == len(names) == len(done)
    m.stop()
    # What the repairs at the remounts found (from the daemons' logs).
    rep = [0, 0, 0, 0]
    for x in mount_factory.mounts:
        for line in x.log_text(limit=1 << 30).splitlines():
            g = re.search(r"repair removed (\d+) stale scratch dirs, (\d+) "
                          r"unindexed objects, (\d+) temp files, (\d+) "
                          r"dangling", line)
            if g:
                rep = [a + int(b) for a, b in zip(rep, g.groups())]
    with capsys.disabled():  # the report shows in meson's test log
        print("\n%d kills in %d rounds, %d commits kept, %d entries verified "
              "in all, %.0f s; repairs removed %d scratch dirs, %d "
              "unindexed objects, %d temp files, %d dangling entries"
              % (kills, rounds, len(done), checked, time.monotonic() - t0,
                 *rep))
    assert kills >= len(SEEDS)
