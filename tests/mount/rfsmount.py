"""Starting, using and always stopping a real rasterfs mount.

Modelled on libfuse's test/test_examples.py: run the filesystem in the
foreground, wait until the kernel reports the mountpoint, exercise it with
ordinary system calls, and unmount whatever happened (fusermount3 -u, then
kill the daemon if it is still there).
"""

import errno
import json
import os
import shutil
import signal
import subprocess
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
DATA = Path(os.environ.get("RASTERFS_TEST_DATA", HERE.parent / "data"))
BIN = os.environ.get("RASTERFS_BIN",
                     str(HERE.parent.parent / "build" / "rasterfs"))

STATS_KEYS = ("jobs_started", "jobs_failed", "jobs_running", "cache_hits",
              "cache_misses", "store_objects", "store_bytes")

# Every mount still up, so a failing test can show the logs and a killed run
# can still unmount (see conftest.py).
ACTIVE = []


class MountError(RuntimeError):
    pass


def copy_data(dst):
    """Copy the test rasters into dst (a new directory), links kept."""
    shutil.copytree(DATA, dst, symlinks=True)
    return Path(dst)


class Mount:
    """One rasterfs process serving src at mnt with its store in cache."""

    def __init__(self, src, mnt, cache, log, workers=2, options=()):
        self.src, self.mnt, self.cache = Path(src), Path(mnt), Path(cache)
        self.log = Path(log)
        self.workers = workers
        self.options = list(options)
        self.proc = None
        self.mnt.mkdir(parents=True, exist_ok=True)
        self.cache.mkdir(parents=True, exist_ok=True)

    # -- life cycle -------------------------------------------------------
    def start(self, timeout=20.0):
        opts = ",".join(["cache=%s" % self.cache,
                         "workers=%d" % self.workers] + self.options)
        cmd = [BIN, "-f", str(self.src), str(self.mnt), "-o", opts]
        logf = open(self.log, "ab")
        logf.write(("\n=== %s\n" % " ".join(cmd)).encode())
        logf.flush()
        self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL,
                                     stdout=logf, stderr=logf)
        logf.close()
        ACTIVE.append(self)
        deadline = time.monotonic() + timeout
        while not os.path.ismount(self.mnt):
            if self.proc.poll() is not None:
                rc = self.proc.returncode
                self.stop()
                raise MountError("rasterfs exited with %s before mounting:\n%s"
                                 % (rc, self.log_text()))
            if time.monotonic() > deadline:
                self.stop()
                raise MountError("not mounted after %.0f s:\n%s"
                                 % (timeout, self.log_text()))
            time.sleep(0.05)
        return self

    def stop(self):
        """Unmount and end the daemon; safe to call more than once."""
        if self.proc is None:
            return
        try:
            if is_mounted(self.mnt):
                for _ in range(20):
                    r = subprocess.run(["fusermount3", "-u", str(self.mnt)],
                                       stdout=subprocess.DEVNULL,
                                       stderr=subprocess.PIPE)
                    if r.returncode == 0 or not is_mounted(self.mnt):
                        break
                    time.sleep(0.25)  # busy: a reader may still be closing
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=20)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait()
            if is_mounted(self.mnt):
                # The daemon is gone; drop the dead mount lazily.
                subprocess.run(["fusermount3", "-u", "-z", str(self.mnt)],
                               stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
            if self in ACTIVE:
                ACTIVE.remove(self)
            self.returncode = self.proc.returncode
            self.proc = None

    def emergency_stop(self):
        """From a signal handler: kill first, ask questions never."""
        p = self.proc
        if p is not None and p.poll() is None:
            p.kill()
        subprocess.run(["fusermount3", "-u", "-z", str(self.mnt)],
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    @property
    def pid(self):
        return self.proc.pid

    def alive(self):
        return self.proc is not None and self.proc.poll() is None \
            and os.path.ismount(self.mnt)  # ismount: a dead mount is False

    def log_text(self, limit=20000):
        try:
            t = self.log.read_text(errors="replace")
        except OSError:
            return "(no log)"
        return t if len(t) <= limit else "...\n" + t[-limit:]

    # -- use --------------------------------------------------------------
    def path(self, name):
        return str(self.mnt / name)

    def stats(self):
        """MNT/.rasterfs/stats as a dict (read whole, up to EOF)."""
        fd = os.open(self.mnt / ".rasterfs" / "stats", os.O_RDONLY)
        try:
            chunks = []
            while True:
                b = os.read(fd, 1 << 16)
                if not b:
                    break
                chunks.append(b)
        finally:
            os.close(fd)
        return json.loads(b"".join(chunks))

    def workers_pids(self):
        """Pids of the daemon's pool workers (not its describers)."""
        return [p for p in children(self.pid) if _scratch_slot(p) < 1000]

    def describer_pids(self):
        """Pids of the daemon's describer processes (describer.h): worker
        processes of the same binary whose scratch slot is 1000 or more
        (main.c gives the pool's workers 0..N-1)."""
        return [p for p in children(self.pid) if _scratch_slot(p) >= 1000]


def is_mounted(path):
    """True if the kernel lists path as a mount point.  Unlike
    os.path.ismount this also sees a FUSE mount whose daemon died (stat of
    it fails with ENOTCONN), which still has to be unmounted."""
    want = os.path.realpath(str(path))
    try:
        with open("/proc/self/mountinfo") as f:
            for line in f:
                mp = line.split()[4]
                mp = mp.replace("\\040", " ").replace("\\011", "\t") \
                    .replace("\\012", "\n").replace("\\134", "\\")
                if mp == want:
                    return True
    except OSError:
        return os.path.ismount(want)
    return False


def pids_serving(mnt):
    """Processes whose command line names mnt: the daemon of a mount that
    a test started outside a fixture (a daemonised rasterfs, mount -t)."""
    pids = []
    for p in Path("/proc").iterdir():
        if not p.name.isdigit():
            continue
        try:
            argv = (p / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if str(mnt).encode() in argv:
            pids.append(int(p.name))
    return pids


def unmount_and_reap(mnt):
    """Unmount mnt (retried while it is busy), wait up to 10 s for its
    daemon to exit, kill it if it is still there, and detach what is left
    of the mount."""
    for _ in range(20):
        if not is_mounted(mnt):
            break
        subprocess.run(["fusermount3", "-u", str(mnt)],
                       stderr=subprocess.DEVNULL)
        time.sleep(0.1)
    deadline = time.monotonic() + 10
    while pids_serving(mnt) and time.monotonic() < deadline:
        time.sleep(0.1)
    for pid in pids_serving(mnt):  # still there: not ours to keep
        os.kill(pid, 9)
    if is_mounted(mnt):
        subprocess.run(["fusermount3", "-u", "-z", str(mnt)],
                       stderr=subprocess.DEVNULL)


def children(pid):
    kids = set()
    for task in Path("/proc/%d/task" % pid).glob("*"):
        try:
            kids.update(int(x) for x in (task / "children").read_text().split())
        except OSError:
            pass
    if kids:
        return sorted(kids)
    for p in Path("/proc").iterdir():  # no CONFIG_PROC_CHILDREN: scan
        if not p.name.isdigit():
            continue
        try:
            stat = (p / "stat").read_text()
        except OSError:
            continue
        if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
            kids.add(int(p.name))
    return sorted(kids)


def _scratch_slot(pid):
    """The scratch slot of a worker process: its scratch directory
    (an argument, .../scratch/<daemon>/w<slot>) names it; -1 if none."""
    try:
        argv = Path("/proc/%d/cmdline" % pid).read_bytes().split(b"\0")
    except OSError:
        return -1
    for a in argv:
        last = a.rstrip(b"/").rsplit(b"/", 1)[-1]
        if b"/scratch/" in a and last[:1] == b"w" and last[1:].isdigit():
            return int(last[1:])
    return -1


def cpu_ticks(pid):
    """utime + stime of pid in clock ticks (0 if it is gone)."""
    try:
        f = Path("/proc/%d/stat" % pid).read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0
    return int(f[11]) + int(f[12])


def _in_thread(fn, timeout, what):
    """Run fn() in a daemon thread; raise TimeoutError if it takes longer.
    A read stuck in a dead FUSE request stays blocked in the kernel, so it
    cannot be interrupted: the thread is abandoned and the mount teardown
    (which kills the daemon) releases it."""
    box = {}

    def run():
        try:
            box["v"] = fn()
        except BaseException as e:  # handed to the caller
            box["e"] = e
    t = threading.Thread(target=run, daemon=True)
    t.start()
    t.join(timeout)
    if t.is_alive():
        raise TimeoutError("%s: no answer after %.0f s" % (what, timeout))
    if "e" in box:
        raise box["e"]
    return box["v"]


def read_bytes(path, timeout=120.0):
    """open() + read to EOF, with a time limit."""
    def run():
        with open(path, "rb") as f:
            return f.read()
    return _in_thread(run, timeout, "reading %s" % path)


def open_errno(path, timeout=60.0):
    """errno of open(path) for reading (0 when it opens), with a time limit."""
    def run():
        try:
            fd = os.open(path, os.O_RDONLY)
        except OSError as e:
            return e.errno
        os.close(fd)
        return 0
    return _in_thread(run, timeout, "opening %s" % path)


def stat_errno(path):
    try:
        os.stat(path)
    except OSError as e:
        return e.errno
    return 0


def errname(e):
    return errno.errorcode.get(e, str(e)) if e else "OK"


def stop_all():
    for m in list(ACTIVE):
        m.emergency_stop()


def install_signal_cleanup():
    """meson's test timeout sends SIGTERM; unmount before dying."""
    def on_term(signum, frame):
        stop_all()
        signal.signal(signum, signal.SIG_DFL)
        os.kill(os.getpid(), signum)
    for s in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(s, on_term)
