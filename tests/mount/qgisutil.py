"""QGIS (Debian 12's python3-qgis, 3.22) as a test client, headless.

QGIS runs in a child process -- Debian's /usr/bin/python3 running this file
with --child -- because its start-up is heavy (about a second), it installs
process-wide handlers (GDAL's error handler, Qt's message handler) and a
hang or a crash inside it (a FUSE read that never returns, a segfault in a
provider) must fail one test, not take pytest down.  The child:

  * runs with QT_QPA_PLATFORM=offscreen and HOME, XDG_* and the QGIS profile
    folder all inside one temporary directory (QGIS writes ~/.cache/data8,
    ~/.config/Unknown Organization.conf, qgis-auth.db, qgis.db... otherwise),
    which is removed afterwards;
  * adds a raster layer the way QGIS desktop does (QgsRasterLayer with the
    gdal provider and the name QgsProviderUtils.suggestLayerNameFromFilePath
    gives, the rule QGIS's "add layer" code uses), then renders it with a
    QgsMapRendererParallelJob, as the map canvas does, on a transparent
    background, and reports what QGIS made of it (see run()'s result);
  * is killed, with everything it started (strace, its own process group),
    when it overruns its time limit, when pytest is killed (SIGTERM/SIGHUP
    from meson's timeout) and, through PR_SET_PDEATHSIG, when its parent dies.

Bytes read from the mount: with trace=True the child runs under
`strace -f -ff -y -ttt --seccomp-bpf`, and every read/pread64/readv/preadv
on a descriptor whose path lies under one of the watched directories is
counted, per phase (phase boundaries are the child's own wall-clock stamps,
comparable with strace's -ttt).  This is exact and specific to the mount:
/proc/PID/io's rchar counts every byte the process reads (proj.db,
fonts, Python modules, /proc), so it is reported too (`rchar`, per phase)
but only as a rough upper bound.  strace also shows the files QGIS/GDAL
tried to create beside the layer (openat with O_CREAT, mkdir: X.aux.xml,
X.ovr)
and the sidecar names they probed.  strace slows each traced call, so take
times from a run without trace=True.

Usage:
    r = qgisutil.run(path, size=(400, 400), trace=True, timeout=120)
    assert r["valid"] and r["renders"][0]["nontransparent"] > 0
"""

import atexit
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

PY = "/usr/bin/python3"  # Debian's: the one python3-qgis is built for
HERE = os.path.dirname(os.path.abspath(__file__))

_LEVELS = {0: "Info", 1: "Warning", 2: "Critical", 3: "Success", 4: "NoLevel"}
_LIMITS = {0: "None", 1: "MinMax", 2: "StdDev", 3: "CumulativeCut"}
_ACCURACY = {0: "Exact", 1: "Estimated"}

# Process groups of children still running, killed on exit and on the
# signals meson's timeout sends (which skip atexit).
_ACTIVE = set()


class QgisRunError(RuntimeError):
    """The QGIS child timed out, crashed or wrote no result."""


_available = None


def unavailable_reason():
    """None if python3-qgis can be imported by Debian's python3, else why
    not (for pytest.skip)."""
    global _available
    if _available is None:
        if not os.path.exists(PY):
            _available = "no %s" % PY
        else:
            try:
                r = subprocess.run([PY, "-c", "import qgis.core"],
                                   stdout=subprocess.DEVNULL,
                                   stderr=subprocess.PIPE, timeout=120)
                _available = "" if r.returncode == 0 else (
                    "python3-qgis is not installed (import qgis.core: %s)"
                    % r.stderr.decode(errors="replace").strip()[-300:])
            except subprocess.TimeoutExpired:
                _available = "import qgis.core took over 120 s"
    return _available or None


def kill_all():
    for pgid in list(_ACTIVE):
        try:
            os.killpg(pgid, signal.SIGKILL)
        except OSError:
            pass
        _ACTIVE.discard(pgid)


def _chain_signal(signum):
    prev = signal.getsignal(signum)

    def handler(s, frame):
        kill_all()
        if callable(prev):
            prev(s, frame)
        else:
            signal.signal(s, signal.SIG_DFL)
            os.kill(os.getpid(), s)
    signal.signal(signum, handler)


if __name__ != "__main__":
    atexit.register(kill_all)
    for _s in (signal.SIGTERM, signal.SIGHUP):
        _chain_signal(_s)


# -- parent side ---------------------------------------------------------

def run(path, size=(400, 400), views=(), png=None, trace=False, watch=None,
        timeout=180.0, file_stats=True, env=None, keep=None):
    """Add the raster at path to a headless QGIS, render it, report.

    size: output size (w, h) of the full-extent render.
    views: further renders, each a dict with "size" and either "extent"
        [xmin, ymin, xmax, ymax] (layer CRS) or "scale" (map scale
        denominator at 96 dpi) with optional "center" [x, y]; optional "png".
    png: where to save the full-extent render (PNG); None: not saved.
    trace: run under strace and count reads (see the module docstring).
    watch: directories whose files count as "the mount" for trace
        (default: the directory holding path).
    timeout: hard limit in seconds for the whole child, start-up included.
    file_stats: after QGIS is done, read the STATISTICS_* items and band
        descriptions of the file with GDAL (PAM off) for comparison.
    env: extra environment for the child (e.g. GDAL config options).
    keep: a directory to keep the child's files in (profile, trace), else a
        temporary one that is removed.

    Returns a dict:
      valid, error, provider, name (QGIS desktop's layer name), width,
      height, band_count, bands [{band, name, display_name, description}],
      crs {valid, authid, wkt, description}, extent [xmin, ymin, xmax, ymax],
      renderer {type, bands, limits, accuracy, extent, min, max [per band]},
      stats_source ("file" if the stretch equals the file's STATISTICS_*,
      "qgis" if QGIS computed its own, None if no stretch),
      file_stats {band: {min, max, mean, stddev}} (from the file),
      t {open, add, block, render [per render], add_to_rendered, init,
         close} in seconds, gui_max_stall (longest gap between 10 ms timer
         ticks of the main thread while rendering),
      renders [{size, extent, errors, nontransparent, distinct_colours,
                png}],
      messages [{tag, level, text, phase}] (QgsApplication.messageLog(),
      every tag), gdal_messages (GDAL's: the "GDAL" tag and GDAL lines on
      stderr), stderr (tail), rchar {phase: bytes} (/proc/self/io),
      trace (if trace): {bytes {phase}, calls {phase}, files {path:
      {bytes, calls}}, reads [[phase, path, offset, length]], creates
      [{path, flags, result, phase}], probes [{path, call, result}],
      opens {path: open calls}},
      wall (seconds the child ran), pid.
    Raises QgisRunError if the child times out, dies or writes no result.
    """
    reason = unavailable_reason()
    if reason:
        raise QgisRunError(reason)
    path = os.path.abspath(str(path))
    base = keep or tempfile.mkdtemp(prefix="qgisutil.")
    os.makedirs(base, exist_ok=True)
    req = {"path": path, "size": list(size), "png": png,
           "views": [dict(v) for v in views], "file_stats": file_stats,
           "out": os.path.join(base, "result.json"),
           "progress": os.path.join(base, "progress.txt"),
           "profile": os.path.join(base, "profile"),
           "timeout": timeout}
    reqf = os.path.join(base, "request.json")
    with open(reqf, "w") as f:
        json.dump(req, f)
    e = _child_env(base)
    e.update(env or {})
    cmd = [PY, os.path.abspath(__file__), "--child", reqf]
    tprefix = os.path.join(base, "strace")
    if trace:
        if not shutil.which("strace"):
            raise QgisRunError("trace=True needs strace")
        cmd = ["strace", "-f", "-ff", "-qq", "-ttt", "-y", "-s", "0",
               "--seccomp-bpf", "-e", "signal=none", "-e",
               "trace=read,pread64,readv,preadv,preadv2,lseek,openat,open,"
               "creat,mkdir,mkdirat,stat,lstat,newfstatat,statx,access,"
               "faccessat,faccessat2", "-o", tprefix] + cmd
    errf = open(os.path.join(base, "stderr.txt"), "w+b")
    t0 = time.monotonic()
    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=errf,
                            stderr=errf, env=e, cwd=base,
                            start_new_session=True)
    _ACTIVE.add(proc.pid)
    timed_out = False
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        timed_out = True
    finally:
        # The whole group: strace, QGIS and anything QGIS started.
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except OSError:
            pass
        proc.wait()
        _ACTIVE.discard(proc.pid)
    wall = time.monotonic() - t0
    errf.seek(0)
    err_raw = errf.read()
    stderr = err_raw.decode(errors="replace")
    errf.close()
    try:
        progress = open(req["progress"]).read()
    except OSError:
        progress = ""
    try:
        with open(req["out"]) as f:
            res = json.load(f)
    except (OSError, ValueError):
        res = None
    try:
        if timed_out or res is None:
            raise QgisRunError(
                "QGIS child %s after %.1f s (rc %s) on %s\nprogress:\n%s\n"
                "stderr:\n%s" % ("timed out" if timed_out else
                                 "wrote no result", wall, proc.returncode,
                                 path, progress, stderr[-6000:]))
        res["wall"] = wall
        res["returncode"] = proc.returncode
        res["stderr"] = stderr[-20000:]
        res["gdal_messages"] = [m for m in res["messages"]
                                if m["tag"] == "GDAL"] + \
            _gdal_stderr(err_raw, res["stderr_marks"])
        if trace:
            watch = [os.path.abspath(str(w)) for w in
                     (watch or [os.path.dirname(path)])]
            res["trace"] = parse_strace(tprefix, watch, res["phases"])
        return res
    finally:
        if not keep:
            shutil.rmtree(base, ignore_errors=True)


def browse(path, timeout=120.0):
    """What QGIS's Browser panel shows under the directory at path, as its
    file dialogs and "Add Layer" browser do: a QgsDirectoryItem whose
    children (createChildren, recursively) come from QGIS's data item
    providers, which pick layers by file name.  Returns {"items": [[path,
    kind, name], ...] with kind "dir", "layer" (a QgsLayerItem) or the
    item's class name, "messages": QGIS's message log}.  Raises
    QgisRunError on a timeout or a crash."""
    reason = unavailable_reason()
    if reason:
        raise QgisRunError(reason)
    base = tempfile.mkdtemp(prefix="qgisutil.")
    out = os.path.join(base, "browse.json")
    try:
        proc = subprocess.Popen(
            [PY, os.path.abspath(__file__), "--browse",
             os.path.abspath(str(path)), out],
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT, env=_child_env(base), cwd=base,
            start_new_session=True)
        _ACTIVE.add(proc.pid)
        try:
            text, _ = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            text = b"(timed out)"
        finally:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except OSError:
                pass
            proc.wait()
            _ACTIVE.discard(proc.pid)
        try:
            with open(out) as f:
                return json.load(f)
        except (OSError, ValueError):
            raise QgisRunError("QGIS browse child wrote no result (rc %s):"
                               "\n%s" % (proc.returncode,
                                         text.decode(errors="replace")
                                         [-4000:]))
    finally:
        shutil.rmtree(base, ignore_errors=True)


def _browse_child(path, out):
    import ctypes
    try:
        ctypes.CDLL(None).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass
    from qgis.core import (QgsApplication, QgsDirectoryItem, QgsLayerItem,
                           Qgis)
    app = QgsApplication([], False)
    app.initQgis()
    messages = []
    QgsApplication.messageLog().messageReceived.connect(
        lambda msg, tag, level: messages.append(
            {"tag": tag, "level": _LEVELS.get(int(level), str(level)),
             "text": msg}))

    def walk(item):
        res = []
        for c in item.createChildren():
            kind = "dir" if isinstance(c, QgsDirectoryItem) else \
                "layer" if isinstance(c, QgsLayerItem) else \
                type(c).__name__
            res.append([c.path(), kind, c.name()])
            if kind == "dir":
                res += walk(c)
        return res
    items = walk(QgsDirectoryItem(None, os.path.basename(path), path))
    with open(out, "w") as f:
        json.dump({"items": items, "messages": messages}, f)
    app.exitQgis()


def _gdal_stderr(raw, marks):
    """GDAL's default error handler's lines ("ERROR 1: ...", "Warning 1:
    ...") in the child's stderr, each with the phase it was written in."""
    out, off = [], 0
    for ln in raw.splitlines(keepends=True):
        m = re.match(rb"(ERROR|Warning) (\d+): (.*)", ln)
        if m:
            ph = "init"
            for name, at in marks:
                if at <= off:
                    ph = name
            out.append({"tag": "GDAL(stderr)",
                        "level": "Critical" if m.group(1) == b"ERROR"
                        else "Warning", "code": int(m.group(2)),
                        "text": m.group(3).decode(errors="replace").strip(),
                        "phase": ph})
        off += len(ln)
    return out


def _child_env(base):
    """The child's environment: nothing of the caller's home or session."""
    e = {k: v for k, v in os.environ.items()
         if not k.startswith(("QGIS", "XDG_", "DISPLAY", "WAYLAND",
                              "DBUS_SESSION", "QT_"))}
    home = os.path.join(base, "home")
    run = os.path.join(base, "xdg-runtime")
    for d in (home, run):
        os.makedirs(d, mode=0o700, exist_ok=True)
    e.update({
        "HOME": home,
        "XDG_CONFIG_HOME": os.path.join(home, ".config"),
        "XDG_CACHE_HOME": os.path.join(home, ".cache"),
        "XDG_DATA_HOME": os.path.join(home, ".local", "share"),
        "XDG_STATE_HOME": os.path.join(home, ".local", "state"),
        "XDG_RUNTIME_DIR": run,
        "QT_QPA_PLATFORM": "offscreen",
        "PYTHONDONTWRITEBYTECODE": "1",
        "PYTHONPATH": HERE,
    })
    return e


# -- strace output ---------------------------------------------------------

_LINE = re.compile(r"^(\d+\.\d+) (\w+)\((.*)\) = (-?\d+|\?)(.*)$")
_FD = re.compile(r"^(\d+)<(.*?)>(?:, |$)")
_STR = re.compile(r'"((?:[^"\\]|\\.)*)"')
_READS = ("read", "pread64", "readv", "preadv", "preadv2")
_STATS = ("stat", "lstat", "newfstatat", "statx", "access", "faccessat",
          "faccessat2")


def _unescape(s):
    return s.encode("latin-1", "backslashreplace").decode(
        "unicode_escape").encode("latin-1").decode("utf-8", "replace")


def _phase(t, phases):
    """The phase a wall-clock time falls into (phases: [[name, t0, t1]])."""
    for name, a, b in phases:
        if a <= t <= b:
            return name
    return "other"


def parse_strace(prefix, watch, phases):
    """Read strace's per-thread files prefix.TID; count reads of files
    under the watched directories per phase; list create attempts and
    probes there.  Offsets of read/readv come from following lseek and
    read returns per descriptor (the glibc stdio GDAL uses does both)."""
    lines = []
    d, b = os.path.split(prefix)
    for fn in os.listdir(d):
        if fn.startswith(b + "."):
            with open(os.path.join(d, fn), errors="replace") as f:
                lines.extend(f)
    recs = []
    for ln in lines:
        m = _LINE.match(ln.rstrip("\n"))
        if m:
            recs.append((float(m.group(1)), m.group(2), m.group(3),
                         m.group(4), m.group(5)))
    recs.sort(key=lambda r: r[0])

    def under(p):
        return any(p == w or p.startswith(w.rstrip("/") + "/")
                   for w in watch)

    out = {"bytes": {}, "calls": {}, "files": {}, "reads": [],
           "creates": [], "probes": [], "opens": {}}
    pos = {}
    for t, sc, args, ret, rest in recs:
        ph = _phase(t, phases)
        if sc in ("openat", "open", "creat"):
            m = _STR.search(args)
            if not m:
                continue
            p = _unescape(m.group(1))
            if not p.startswith("/"):
                cwd = re.match(r"AT_FDCWD<(.*?)>", args)
                p = os.path.join(cwd.group(1) if cwd else "/", p)
            p = os.path.normpath(p)
            if not under(p):
                continue
            flags = args[m.end():].lstrip(", ").split(",")[0].strip()
            out["opens"][p] = out["opens"].get(p, 0) + 1
            fdm = re.match(r"<(.*?)>", rest)
            if ret != "?" and int(ret) >= 0:
                pos[(int(ret), fdm.group(1) if fdm else p)] = 0
            result = "ok" if ret != "?" and int(ret) >= 0 else \
                rest.strip().split(" ")[0]
            if sc == "creat" or "O_CREAT" in flags or "O_WRONLY" in flags \
                    or "O_RDWR" in flags:
                out["creates"].append({"path": p, "flags": flags,
                                       "result": result, "phase": ph})
            else:
                out["probes"].append({"path": p, "call": sc,
                                      "result": result})
            continue
        if sc in ("mkdir", "mkdirat"):
            m = _STR.search(args)
            if m:
                p = os.path.normpath(_unescape(m.group(1)))
                if under(p):
                    out["creates"].append({
                        "path": p, "flags": sc, "phase": ph,
                        "result": "ok" if ret == "0" else
                        rest.strip().split(" ")[0]})
            continue
        if sc in _STATS:
            m = _STR.search(args)
            if m:
                p = os.path.normpath(_unescape(m.group(1)))
                if under(p):
                    out["probes"].append({
                        "path": p, "call": sc,
                        "result": "ok" if ret == "0" else
                        rest.strip().split(" ")[0]})
            continue
        m = _FD.match(args)
        if not m:
            continue
        fd, p = int(m.group(1)), _unescape(m.group(2))
        if not under(p):
            continue
        key = (fd, p)
        if ret == "?" or int(ret) < 0:
            continue
        n = int(ret)
        if sc == "lseek":
            pos[key] = n
            continue
        if sc not in _READS:
            continue
        if sc in ("pread64", "preadv", "preadv2"):
            off = int(args.rsplit(",", 1)[1].strip()) if sc != "preadv2" \
                else int(args.rsplit(",", 2)[1].strip())
        else:
            off = pos.get(key)
            if off is not None:
                pos[key] = off + n
        out["bytes"][ph] = out["bytes"].get(ph, 0) + n
        out["calls"][ph] = out["calls"].get(ph, 0) + 1
        f = out["files"].setdefault(p, {"bytes": 0, "calls": 0})
        f["bytes"] += n
        f["calls"] += 1
        if len(out["reads"]) < 200000:
            out["reads"].append([ph, p, off, n])
    seen = set()
    probes = []
    for pr in out["probes"]:
        k = (pr["path"], pr["call"], pr["result"])
        if k not in seen:
            seen.add(k)
            probes.append(pr)
    out["probes"] = probes
    return out


# -- child side ------------------------------------------------------------

def _child(reqf):
    import ctypes
    import faulthandler
    faulthandler.enable()  # a crash in QGIS leaves its Python stack
    req = json.load(open(reqf))
    # Die with the parent (strace or pytest), and never outlive the limit.
    try:
        ctypes.CDLL(None).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass
    signal.alarm(int(req["timeout"]) + 5)
    prog = open(req["progress"], "a", buffering=1)

    def note(s):
        prog.write("%.3f %s\n" % (time.time(), s))

    def rchar():
        try:
            for ln in open("/proc/self/io"):
                if ln.startswith("rchar:"):
                    return int(ln.split()[1])
        except OSError:
            pass
        return 0

    res = {"messages": [], "phases": [], "rchar": {}, "t": {}, "pid":
           os.getpid(), "stderr_marks": [["init", 0]]}
    state = {"phase": "init", "t0": time.time(), "r0": rchar()}

    def phase(name):
        t, r = time.time(), rchar()
        res["phases"].append([state["phase"], state["t0"], t])
        res["rchar"][state["phase"]] = r - state["r0"]
        state.update(phase=name, t0=t, r0=r)
        # Where stderr (a file; GDAL writes to it unbuffered) stood when
        # the phase began, so the parent can tell which phase said what.
        sys.stderr.flush()
        res["stderr_marks"].append([name, os.fstat(2).st_size])
        note("phase " + name)

    note("start")
    from qgis.core import (QgsApplication, QgsRasterLayer, QgsProject,
                           QgsMapSettings, QgsMapRendererParallelJob,
                           QgsRectangle, QgsProviderUtils, QgsUnitTypes,
                           QgsPointXY)
    from qgis.PyQt.QtCore import QSize, QEventLoop, QTimer
    from qgis.PyQt.QtGui import QColor, QImage
    import numpy as np

    QgsApplication.setPrefixPath("/usr", True)
    app = QgsApplication([], False, req["profile"])

    def on_msg(text, tag, level):
        res["messages"].append({"tag": tag, "level": _LEVELS.get(
            int(level), str(int(level))), "text": text,
            "phase": state["phase"]})
    QgsApplication.messageLog().messageReceived.connect(on_msg)
    app.initQgis()
    app.processEvents()
    note("qgis up")

    path = req["path"]
    name = QgsProviderUtils.suggestLayerNameFromFilePath(path)
    phase("open")
    t0 = time.monotonic()
    layer = QgsRasterLayer(path, name, "gdal")
    t1 = time.monotonic()
    phase("add")
    QgsProject.instance().addMapLayer(layer)
    t2 = time.monotonic()
    app.processEvents()
    res["t"].update(open=t1 - t0, add=t2 - t1, block=t2 - t0)
    res["valid"] = layer.isValid()
    # QgsError.summary() segfaults in 3.22's bindings: format it here.
    err = layer.error()
    res["error"] = "; ".join("%s: %s" % (m.tag(), m.message().strip())
                             for m in err.messageList())
    res["name"] = layer.name()
    res["provider"] = layer.providerType()
    note("layer valid=%s" % res["valid"])
    if layer.isValid():
        dp = layer.dataProvider()
        crs = layer.crs()
        res["crs"] = {"valid": crs.isValid(), "authid": crs.authid(),
                      "wkt": crs.toWkt(), "description": crs.description()}
        e = layer.extent()
        res["extent"] = [e.xMinimum(), e.yMinimum(), e.xMaximum(),
                         e.yMaximum()]
        res["width"], res["height"] = layer.width(), layer.height()
        res["band_count"] = layer.bandCount()
        res["bands"] = [{"band": i, "name": layer.bandName(i),
                         "display_name": dp.displayBandName(i)}
                        for i in range(1, layer.bandCount() + 1)]
        res["renderer"] = _renderer_info(layer.renderer())
        res["renders"] = []
        full = [{"size": req["size"], "png": req["png"]}]
        for k, v in enumerate(full + req["views"]):
            phase("render%d" % k if k else "render")
            tr0 = time.monotonic()
            r, stall = _render(app, layer, v, QgsMapSettings,
                               QgsMapRendererParallelJob, QgsRectangle,
                               QgsUnitTypes, QgsPointXY, QSize, QEventLoop,
                               QTimer, QColor, QImage, np)
            res["t"].setdefault("render", []).append(time.monotonic() - tr0)
            if k == 0:
                res["t"]["add_to_rendered"] = time.monotonic() - t0
                res["gui_max_stall"] = stall
            res["renders"].append(r)
            note("rendered %d" % k)
    phase("close")
    tc = time.monotonic()
    QgsProject.instance().removeAllMapLayers()
    del layer
    app.processEvents()
    res["t"]["close"] = time.monotonic() - tc
    if req["file_stats"] and res.get("valid"):
        phase("post")
        _file_stats(res, path)
    phase("exit")
    app.processEvents()
    # Written before exitQgis(): a crash on exit keeps the result.
    with open(req["out"] + ".tmp", "w") as f:
        json.dump(res, f)
    os.rename(req["out"] + ".tmp", req["out"])
    note("result written")
    app.exitQgis()
    note("exit")


def _renderer_info(r):
    info = {"type": r.type() if r else None, "bands": [], "min": [],
            "max": []}
    if r is None:
        return info
    ces = []
    if r.type() == "singlebandgray":
        info["bands"] = [r.grayBand()]
        ces = [r.contrastEnhancement()]
    elif r.type() == "multibandcolor":
        info["bands"] = [r.redBand(), r.greenBand(), r.blueBand()]
        ces = [r.redContrastEnhancement(), r.greenContrastEnhancement(),
               r.blueContrastEnhancement()]
    elif r.type() == "singlebandpseudocolor":
        info["bands"] = [r.band()]
        info["min"], info["max"] = [r.classificationMin()], \
            [r.classificationMax()]
    for ce in ces:
        info["min"].append(ce.minimumValue() if ce else None)
        info["max"].append(ce.maximumValue() if ce else None)
    try:
        o = r.minMaxOrigin()
        info["limits"] = _LIMITS.get(int(o.limits()), str(int(o.limits())))
        info["accuracy"] = _ACCURACY.get(int(o.statAccuracy()))
        info["extent"] = int(o.extent())
    except AttributeError:
        pass
    return info


def _render(app, layer, v, QgsMapSettings, Job, QgsRectangle, QgsUnitTypes,
            QgsPointXY, QSize, QEventLoop, QTimer, QColor, QImage, np):
    w, h = v["size"]
    ms = QgsMapSettings()
    ms.setLayers([layer])
    if layer.crs().isValid():
        ms.setDestinationCrs(layer.crs())
    ms.setOutputSize(QSize(w, h))
    ms.setOutputDpi(96)
    ms.setBackgroundColor(QColor(0, 0, 0, 0))
    if v.get("extent"):
        ms.setExtent(QgsRectangle(*v["extent"]))
    elif v.get("scale"):
        c = v.get("center") or [layer.extent().center().x(),
                                layer.extent().center().y()]
        f = QgsUnitTypes.fromUnitToUnitFactor(
            layer.crs().mapUnits(), QgsUnitTypes.DistanceMeters) \
            if layer.crs().isValid() else 1.0
        mupp = v["scale"] * 0.0254 / 96.0 / f  # map units per pixel
        ms.setExtent(QgsRectangle(c[0] - mupp * w / 2, c[1] - mupp * h / 2,
                                  c[0] + mupp * w / 2, c[1] + mupp * h / 2))
    else:
        ms.setExtent(layer.extent())
    job = Job(ms)
    loop = QEventLoop()
    job.finished.connect(loop.quit)
    # The main thread's responsiveness while the job runs: the longest gap
    # between ticks of a 10 ms timer (the map canvas's thread in QGIS).
    ticks = [time.monotonic()]
    stall = [0.0]

    def tick():
        now = time.monotonic()
        stall[0] = max(stall[0], now - ticks[0])
        ticks[0] = now
    timer = QTimer()
    timer.timeout.connect(tick)
    timer.start(10)
    job.start()
    if job.isActive():
        loop.exec_()
    timer.stop()
    tick()
    img = job.renderedImage().convertToFormat(QImage.Format_ARGB32)
    bits = img.constBits()
    bits.setsize(img.sizeInBytes())
    px = np.frombuffer(bytes(bits), dtype=np.uint32)
    drawn = px[(px >> 24) != 0]
    e = ms.visibleExtent()
    r = {"size": [w, h], "extent": [e.xMinimum(), e.yMinimum(),
                                    e.xMaximum(), e.yMaximum()],
         "errors": [er.message for er in job.errors()],
         "nontransparent": int(drawn.size),
         "distinct_colours": int(np.unique(drawn).size), "png": None}
    if v.get("png"):
        img.save(v["png"], "PNG")
        r["png"] = v["png"]
    return r, stall[0]


def _file_stats(res, path):
    """The file's own STATISTICS_* and band descriptions, read with GDAL
    after QGIS is done (PAM off: nothing read from or written to .aux.xml)."""
    from osgeo import gdal
    gdal.SetConfigOption("GDAL_PAM_ENABLED", "NO")
    ds = gdal.OpenEx(path, gdal.OF_RASTER | gdal.OF_READONLY)
    res["file_stats"] = {}
    if ds is None:
        return
    for i in range(1, ds.RasterCount + 1):
        b = ds.GetRasterBand(i)
        md = b.GetMetadata() or {}
        st = {}
        for k, item in (("min", "STATISTICS_MINIMUM"),
                        ("max", "STATISTICS_MAXIMUM"),
                        ("mean", "STATISTICS_MEAN"),
                        ("stddev", "STATISTICS_STDDEV")):
            if item in md:
                st[k] = float(md[item])
        res["file_stats"][str(i)] = st
        if i <= len(res.get("bands", [])):
            res["bands"][i - 1]["description"] = b.GetDescription()
    ds = None
    r = res.get("renderer") or {}
    src = None
    if r.get("min") and r.get("limits") == "MinMax":
        src = "file"
        for band, mn, mx in zip(r["bands"], r["min"], r["max"]):
            st = res["file_stats"].get(str(band), {})
            if "min" not in st or abs(st["min"] - mn) > 1e-6 * max(
                    1, abs(mn)) or abs(st["max"] - mx) > 1e-6 * max(
                    1, abs(mx)):
                src = "qgis"
    res["stats_source"] = src


if __name__ == "__main__" and len(sys.argv) == 3 and \
        sys.argv[1] == "--child":
    _child(sys.argv[2])
if __name__ == "__main__" and len(sys.argv) == 4 and \
        sys.argv[1] == "--browse":
    _browse_child(sys.argv[2], sys.argv[3])
