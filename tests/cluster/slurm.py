"""A private single-node Slurm cluster for tests, always torn down.

    with SlurmCluster() as c:            # SlurmUnavailable: skip, with reason
        jobid = c.sbatch("--array=0-19%4", "--wrap", "...")
        states = c.wait_job(jobid, timeout=120)   # {task id: state}

Design notes:
1. Everything lives in one temporary directory: a munge key and a munged
   with its own socket, a generated slurm.conf (AuthInfo names that socket,
   so daemons and client commands never talk to a system munged or a system
   Slurm), state, spool, pid and log files.  Ports are picked free in a range
   below the kernel's ephemeral ports, so a system slurmctld (6817) or
   another test's cluster never clashes.
2. The daemons run in the foreground (munged -F, slurmctld -D, slurmd -D) as
   our children, in their own session (a Ctrl-C on the terminal reaches only
   pytest, which then stops them in order) and with PR_SET_PDEATHSIG, so they
   die with pytest even if it is SIGKILLed.
3. Ready means `sinfo` reports the node idle; every wait has a bound and,
   past it, an error naming the log to read.
4. Stop order: cancel every job, wait (bounded) until the job processes and
   slurmstepds are gone (slurmstepd is re-parented to init: it outlives
   slurmd), stop slurmd, slurmctld, munged, then SIGKILL whatever still
   carries this cluster's SLURM_CONF in its environment (daemons, stepds and
   job processes all do), then remove the directory.
5. SlurmUnavailable means "this machine cannot run a cluster" (not root,
   packages missing, munged or slurmd dying at start-up: no /dev, cgroup or
   namespace quirks): a test skips with its message.  Anything else (slurmctld
   dying, a node that never turns idle) is a SlurmError: a failure.
"""

import ctypes
import os
import pwd
import random
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

SBIN_PATH = os.pathsep.join(
    [os.environ.get("PATH", ""), "/usr/sbin", "/sbin", "/usr/bin", "/bin"])

# Job states in which Slurm will not run the job again (squeue %T).
FINAL_STATES = {"BOOT_FAIL", "CANCELLED", "COMPLETED", "DEADLINE", "FAILED",
                "NODE_FAIL", "OUT_OF_MEMORY", "PREEMPTED", "TIMEOUT",
                "REVOKED", "SPECIAL_EXIT"}

# Environment variables that would make our client commands talk to another
# cluster or inherit another job (pytest itself may run inside a Slurm job).
_FOREIGN_ENV = ("SLURM_", "SBATCH_", "SALLOC_", "SRUN_", "SQUEUE_", "SINFO_",
                "SCANCEL_", "SCONTROL_")

DIR_PREFIX = "rfs-slurm."

# Clusters still running, for stop_all() on a signal or at exit.
ACTIVE = []


class SlurmError(RuntimeError):
    """The cluster misbehaved: a test failure, not a skip."""


class SlurmUnavailable(SlurmError):
    """This machine cannot run the cluster; str(e) says why (skip with it)."""


def _which(name):
    return shutil.which(name, path=SBIN_PATH)


def _tail(path, lines=15):
    try:
        text = Path(path).read_text(errors="replace")
    except OSError as e:
        return "(cannot read %s: %s)" % (path, e.strerror)
    return "\n".join(text.rstrip("\n").split("\n")[-lines:])


def _die_with_parent():
    # preexec_fn: runs in the child between fork and exec.  SIGTERM when
    # pytest dies, however it dies (PR_SET_PDEATHSIG = 1).
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(1, signal.SIGTERM, 0, 0, 0)


def _port_free(port):
    # Slurm binds INADDR_ANY; SO_REUSEADDR as Slurm sets it, so a port in
    # TIME_WAIT from a previous cluster counts as free, like it does for Slurm.
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("", port))
        return True
    except OSError:
        return False
    finally:
        s.close()


def _free_ports(n):
    """n free TCP ports in 20000-32000 (below Linux's ephemeral range, so no
    outgoing connection takes them between this check and the bind)."""
    ports = []
    for _ in range(200):
        p = random.randrange(20000, 32000)
        if p not in ports and _port_free(p):
            ports.append(p)
            if len(ports) == n:
                return ports
    raise SlurmUnavailable("no free TCP port in 20000-32000 for slurmctld "
                           "and slurmd")


def _hardware():
    """The node line's hardware fields as slurmd itself sees them (slurmd -C),
    so the node never registers as INVAL; /proc as a fallback."""
    slurmd = _which("slurmd")
    try:
        out = subprocess.run([slurmd, "-C"], capture_output=True, text=True,
                             timeout=30).stdout
        m = re.search(r"^NodeName=\S+ (.*CPUs=.*)$", out, re.M)
        if m:
            return m.group(1).strip()
    except (OSError, subprocess.SubprocessError):
        pass
    mem_kib = 0
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            mem_kib = int(line.split()[1])
    return "CPUs=%d RealMemory=%d" % (os.cpu_count() or 1, mem_kib // 1024)


def _marked(conf):
    """PIDs whose environment carries SLURM_CONF=conf: this cluster's daemons,
    slurmstepds and job processes (sbatch passes our environment on)."""
    needle = b"\0SLURM_CONF=" + str(conf).encode() + b"\0"
    pids = []
    for d in os.listdir("/proc"):
        if not d.isdigit() or int(d) == os.getpid():
            continue
        try:
            env = b"\0" + Path("/proc", d, "environ").read_bytes()
        except OSError:
            continue
        if needle in env:
            pids.append(int(d))
    return pids


def _sweep_stale(min_age=120):
    """Remove the directories of clusters whose test was SIGKILLed (its
    daemons died with it, PR_SET_PDEATHSIG, but nothing removed the
    directory): old, not kept on purpose (RFS_SLURM_KEEP), and no process
    carries their SLURM_CONF any more."""
    for d in Path(tempfile.gettempdir()).glob(DIR_PREFIX + "*"):
        if (d / "KEPT").exists():
            continue
        try:
            if time.time() - d.stat().st_mtime < min_age:
                continue
        except OSError:
            continue
        if not _marked(d / "slurm.conf"):
            shutil.rmtree(d, ignore_errors=True)


class SlurmCluster:
    """A single-node Slurm cluster on this machine (see the module notes).

    oversubscribe: jobs that may share one CPU (partition
    OverSubscribe=FORCE:N), so up to CPUs * N one-CPU jobs run at once and a
    job array's %K limit, not the 2 cores, is what a test sees.
    """

    def __init__(self, oversubscribe=4, start_timeout=90, keep=None):
        self.oversubscribe = oversubscribe
        self.start_timeout = start_timeout
        self.keep = (os.environ.get("RFS_SLURM_KEEP") == "1"
                     if keep is None else keep)
        self.dir = None
        self.conf = None
        self.env = None
        self.node = socket.gethostname().split(".")[0]
        self.procs = {}        # name -> Popen
        self.start_seconds = None

    # --- lifecycle -------------------------------------------------------

    def __enter__(self):
        if self.dir is None:        # `with SlurmCluster().start():` too
            self.start()
        return self

    def __exit__(self, *exc):
        self.stop()
        return False

    def start(self):
        """Start munged, slurmctld and slurmd; return when the node is idle.

        Raises SlurmUnavailable (skip) or SlurmError (fail); stops whatever
        it started before raising."""
        if self.dir is not None:
            raise SlurmError("cluster already started in %s" % self.dir)
        if os.geteuid() != 0:
            raise SlurmUnavailable(
                "the test cluster runs its daemons as root (SlurmUser=root, "
                "slurmd starts jobs); this is uid %d" % os.geteuid())
        missing = [b for b in ("munged", "slurmctld", "slurmd", "sbatch",
                               "squeue", "sinfo", "scancel", "scontrol")
                   if not _which(b)]
        if missing:
            raise SlurmUnavailable(
                "not installed: %s (Debian packages slurm-wlm munge; "
                "scripts/setup.sh installs them)" % " ".join(missing))
        t0 = time.monotonic()
        ACTIVE.append(self)
        try:
            self._make_dir()
            self._start_munged()
            # A port taken between our check and slurmctld's bind: new ports.
            for attempt in range(3):
                self._write_conf(*_free_ports(2))
                try:
                    self._start_slurm()
                    break
                except SlurmError as e:
                    if "Address already in use" not in str(e) or attempt == 2:
                        raise
                    self._stop_slurm()
        except BaseException:
            self.stop()
            raise
        self.start_seconds = time.monotonic() - t0
        return self

    def stop(self):
        """Cancel all jobs, stop every process of this cluster, remove its
        directory.  Safe to call twice and after a failed start."""
        if self in ACTIVE:
            ACTIVE.remove(self)
        if self.dir is None:
            return
        errors = []
        if self.conf and self._alive("slurmctld"):
            try:
                self.run("scancel", "--user=%s" % pwd.getpwuid(os.geteuid())[0],
                         timeout=15)
            except SlurmError as e:
                errors.append(str(e))
        # Jobs and their slurmstepds first: they outlive slurmd.
        deadline = time.monotonic() + 20
        while self.conf and time.monotonic() < deadline:
            if not self._jobs_running():
                break
            time.sleep(0.2)
        try:
            self._stop_slurm()
            self._stop("munged")
            if self.conf:
                self._kill_marked()
        finally:
            if self.keep:
                (self.dir / "KEPT").touch()
            else:
                shutil.rmtree(self.dir, ignore_errors=True)
            self.dir = None
        if errors:
            raise SlurmError("while stopping the cluster: " + "; ".join(errors))

    def leftovers(self, conf=None):
        """PIDs of this cluster still running (empty after stop())."""
        return _marked(conf or self.conf)

    # --- client commands ---------------------------------------------------

    def run(self, *args, timeout=30, check=True):
        """Run a Slurm client command against this cluster; CompletedProcess.
        A non-zero exit (with check) or a timeout is a SlurmError."""
        cmd = [_which(args[0]) or args[0]] + [str(a) for a in args[1:]]
        try:
            r = subprocess.run(cmd, env=self.env, capture_output=True,
                               text=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            raise SlurmError("%s did not return within %d s (slurmctld log: "
                             "%s)" % (" ".join(cmd), timeout,
                                      self.log("slurmctld")))
        if check and r.returncode != 0:
            raise SlurmError("%s: exit %d: %s" % (" ".join(cmd), r.returncode,
                                                  r.stderr.strip()))
        return r

    def sbatch(self, *args, timeout=30):
        """Submit a batch job (sbatch --parsable ARGS); its job id."""
        out = self.run("sbatch", "--parsable", *args, timeout=timeout).stdout
        return int(out.strip().split(";")[0])

    def states(self, jobid):
        """{array task id (or None for a plain job): state} as squeue sees it,
        pending tasks of an array included (squeue -r), finished ones while
        slurmctld keeps them (MinJobAge in the conf)."""
        out = self.run("squeue", "-h", "-r", "-t", "all", "-j", jobid,
                       "-o", "%K|%T").stdout
        res = {}
        for line in out.split("\n"):
            if "|" not in line:
                continue
            task, state = line.split("|", 1)
            res[int(task) if task.isdigit() else None] = state.strip()
        return res

    def wait_job(self, jobid, timeout):
        """Wait until every task of jobid is in a final state; their states.
        SlurmError (with the states seen) past timeout seconds."""
        deadline = time.monotonic() + timeout
        while True:
            st = self.states(jobid)
            if st and all(s in FINAL_STATES for s in st.values()):
                return st
            if time.monotonic() > deadline:
                raise SlurmError("job %s not finished after %d s: %s (logs: "
                                 "%s, %s)" % (jobid, timeout, st,
                                              self.log("slurmctld"),
                                              self.log("slurmd")))
            time.sleep(0.25)

    def log(self, name):
        """Path of a daemon's log file (munged's stderr for munged)."""
        if self.dir is None:
            return None
        return self.dir / ("munged.stderr" if name == "munged"
                           else "%s.log" % name)

    # --- internals -------------------------------------------------------

    def _make_dir(self):
        # munged wants every directory on its socket's path searchable by
        # all, and its key, log and seed directory writable only by us.
        _sweep_stale()
        self.dir = Path(tempfile.mkdtemp(prefix=DIR_PREFIX))
        os.chmod(self.dir, 0o755)
        for sub, mode in (("munge", 0o700), ("state", 0o700),
                          ("spool", 0o755)):
            (self.dir / sub).mkdir(mode=mode)
        self.conf = self.dir / "slurm.conf"
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(_FOREIGN_ENV)}
        env["SLURM_CONF"] = str(self.conf)
        env["PATH"] = SBIN_PATH
        self.env = env

    def _spawn(self, name, argv):
        err = open(self.dir / ("%s.stderr" % name), "wb")
        try:
            self.procs[name] = subprocess.Popen(
                argv, env=self.env, stdin=subprocess.DEVNULL, stdout=err,
                stderr=err, start_new_session=True,
                preexec_fn=_die_with_parent, cwd=self.dir)
        finally:
            err.close()

    def _alive(self, name):
        p = self.procs.get(name)
        return p is not None and p.poll() is None

    def _last_lines(self, name):
        """The end of a daemon's log and stderr, for an error message (the
        directory goes when start() gives up; RFS_SLURM_KEEP=1 keeps it)."""
        msg = ""
        for f in dict.fromkeys([self.log(name),
                                self.dir / ("%s.stderr" % name)]):
            if f.exists() and f.stat().st_size:
                msg += "\nlast lines of %s:\n%s" % (f, _tail(f))
        return msg or "\n(%s wrote no log)" % name

    def _died(self, name):
        return "%s exited with status %s at start-up%s" % (
            name, self.procs[name].returncode, self._last_lines(name))

    def _start_munged(self):
        m = self.dir / "munge"
        key = m / "munge.key"
        fd = os.open(key, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(os.urandom(1024))
        self.munge_socket = self.dir / "munge.socket"
        # With -F munged logs to stderr, not to --log-file.
        self._spawn("munged", [
            _which("munged"), "-F", "--socket=%s" % self.munge_socket,
            "--key-file=%s" % key, "--pid-file=%s" % (m / "munged.pid"),
            "--log-file=%s" % (m / "munged.log"),
            "--seed-file=%s" % (m / "munged.seed")])
        deadline = time.monotonic() + 15
        while not self.munge_socket.exists():
            if not self._alive("munged"):
                raise SlurmUnavailable(self._died("munged"))
            if time.monotonic() > deadline:
                raise SlurmUnavailable(
                    "munged did not create %s within 15 s%s" %
                    (self.munge_socket, self._last_lines("munged")))
            time.sleep(0.05)

    def _write_conf(self, ctld_port, slurmd_port):
        d = self.dir
        self.ports = (ctld_port, slurmd_port)
        conf = """\
# Generated by tests/cluster/slurm.py: a private single-node test cluster.
ClusterName=rfstest
SlurmctldHost={node}(127.0.0.1)
SlurmctldPort={ctld_port}
SlurmdPort={slurmd_port}
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
AuthInfo=socket={d}/munge.socket
CredType=cred/munge
StateSaveLocation={d}/state
SlurmdSpoolDir={d}/spool
SlurmctldPidFile={d}/slurmctld.pid
SlurmdPidFile={d}/slurmd.pid
SlurmctldLogFile={d}/slurmctld.log
SlurmdLogFile={d}/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
# No cgroups, no accounting: nothing outside this directory is needed.
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
SwitchType=switch/none
MpiDefault=none
MailProg=/bin/true
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
ReturnToService=2
# Quick kills on scancel; finished jobs stay visible to squeue for 10 min.
KillWait=2
MinJobAge=600
NodeName={node} NodeAddr=127.0.0.1 {hw} State=UNKNOWN
PartitionName=test Nodes={node} Default=YES MaxTime=INFINITE State=UP \
OverSubscribe=FORCE:{over}
""".format(node=self.node, ctld_port=ctld_port, slurmd_port=slurmd_port,
           d=d, hw=_hardware(), over=self.oversubscribe)
        self.conf.write_text(conf)

    def _start_slurm(self):
        self._spawn("slurmctld", [_which("slurmctld"), "-D"])
        self._spawn("slurmd", [_which("slurmd"), "-D", "-N", self.node])
        deadline = time.monotonic() + self.start_timeout
        state = ""
        while True:
            for name in ("slurmctld", "slurmd"):
                if not self._alive(name):
                    msg = self._died(name)
                    # A broken conf or state kills slurmctld: our bug.
                    # slurmd dying is the machine (no /dev, cgroups...).
                    if name == "slurmd":
                        raise SlurmUnavailable(msg)
                    raise SlurmError(msg)
            r = self.run("sinfo", "-h", "-N", "-n", self.node, "-o", "%T",
                         check=False, timeout=15)
            state = r.stdout.strip() if r.returncode == 0 else ""
            if state == "idle":
                return
            if time.monotonic() > deadline:
                reason = self.run("sinfo", "-h", "-N", "-o", "%E", check=False,
                                  timeout=15).stdout.strip()
                raise SlurmError(
                    "node %s not idle after %d s (state %r, reason %r)%s%s" % (
                        self.node, self.start_timeout,
                        state or r.stderr.strip(), reason,
                        self._last_lines("slurmd"),
                        self._last_lines("slurmctld")))
            time.sleep(0.2)

    def _stop(self, name, timeout=10):
        p = self.procs.pop(name, None)
        if p is None:
            return
        if p.poll() is None:
            p.terminate()
            try:
                p.wait(timeout)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(timeout)

    def _stop_slurm(self):
        self._stop("slurmd")
        self._stop("slurmctld")

    def _jobs_running(self):
        """This cluster's processes other than the daemons and their own
        children (slurmctld's slurmscriptd): slurmstepds and job processes."""
        daemons = {p.pid for p in self.procs.values()}
        rest = []
        for pid in _marked(self.conf):
            try:
                stat = Path("/proc", str(pid), "stat").read_text()
            except OSError:
                continue
            ppid = int(stat.rsplit(")", 1)[1].split()[1])
            if pid not in daemons and ppid not in daemons:
                rest.append(pid)
        return rest

    def _kill_marked(self):
        deadline = time.monotonic() + 10
        while True:
            pids = _marked(self.conf)
            if not pids:
                return
            if time.monotonic() > deadline:
                raise SlurmError("processes of the cluster survive SIGKILL: %s"
                                 % pids)
            for pid in pids:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            time.sleep(0.1)


def stop_all():
    """Stop every cluster still running (signal handlers, atexit)."""
    for c in list(ACTIVE):
        try:
            c.stop()
        except Exception:
            pass


def install_signal_cleanup():
    """meson's timeout sends SIGTERM: stop the clusters, then let the signal
    do what it did before (a handler installed earlier, rfsmount's one
    included, still runs)."""
    for s in (signal.SIGTERM, signal.SIGHUP):
        prev = signal.getsignal(s)

        def on_signal(signum, frame, prev=prev):
            stop_all()
            if callable(prev):
                prev(signum, frame)
            elif prev != signal.SIG_IGN:
                signal.signal(signum, signal.SIG_DFL)
                os.kill(os.getpid(), signum)
        signal.signal(s, on_signal)


def main(argv):
    """python3 tests/cluster/slurm.py CMD [ARG...]: start a private cluster,
    run CMD with its environment (SLURM_CONF, PATH), stop the cluster and
    exit with CMD's status (77 when the machine cannot run a cluster).  For
    scripts (scripts/bench_cluster.sh) and for trying sbatch recipes by
    hand."""
    import sys
    if not argv:
        print("usage: slurm.py CMD [ARG...]", file=sys.stderr)
        return 2
    install_signal_cleanup()
    try:
        with SlurmCluster() as c:
            print("slurm.py: cluster up in %.1f s (SLURM_CONF=%s)" %
                  (c.start_seconds, c.conf), file=sys.stderr, flush=True)
            return subprocess.run(argv, env=c.env).returncode
    except SlurmUnavailable as e:
        print("slurm.py: SKIP: %s" % e, file=sys.stderr)
        return 77


if __name__ == "__main__":
    import sys
    sys.exit(main(sys.argv[1:]))
