"""Measure what QGIS 3.22 does with rasterfs outputs and large GeoTIFFs.

Not a test (no assertions, no pass/fail): the numbers in tests/mount/
QGIS.md come from it.  Run with Debian's python3 after building:

    RASTERFS_BIN=build/rasterfs /usr/bin/python3 tests/mount/qgis_measure.py \
        [--dir DIR] [--size 1000] [--only small|big|tiff]

DIR (default: a new temporary directory, removed at the end; given, it is
kept and reused) receives the large rasters it makes from
../shared/data/srtm1_N48W125.tif (RASTERFS_BIG_SOURCE overrides):
big/big.tif, 10000 x 10000 Float32 (gdalwarp -ts), and four 10240 x 10240
Float32 uncompressed GeoTIFFs with 256 x 256 tiles: plain, with statistics
inside, with internal overviews (gdaladdo -r average 2..32), with both.
Each case is run twice: without strace for the times and with strace
(qgisutil trace=True) for the bytes.  A file QGIS manages to write beside a
plain GeoTIFF (X.aux.xml) is recorded and removed so that every run starts
from the same files.  Times are with the files in the page cache.
"""

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import qgisutil  # noqa: E402
import rfsmount  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(HERE))
BIG_SOURCE = os.environ.get("RASTERFS_BIG_SOURCE", os.path.join(
    ROOT, "..", "shared", "data", "srtm1_N48W125.tif"))
SMALL = "srtm1_N48W125_crop.tif"


def sh(*cmd):
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)


def make_big(d):
    os.makedirs(os.path.join(d, "big"), exist_ok=True)
    os.makedirs(os.path.join(d, "tiff"), exist_ok=True)
    big = os.path.join(d, "big", "big.tif")
    if not os.path.exists(big):
        sh("gdalwarp", "-q", "-ot", "Float32", "-ts", "10000", "10000",
           "-r", "bilinear", "-co", "TILED=YES", BIG_SOURCE, big)
    t = {k: os.path.join(d, "tiff", k + ".tif")
         for k in ("plain", "stats", "ovr", "ovr_stats")}
    if not os.path.exists(t["plain"]):
        sh("gdalwarp", "-q", "-ot", "Float32", "-ts", "10240", "10240",
           "-r", "bilinear", "-co", "TILED=YES", "-co", "BLOCKXSIZE=256",
           "-co", "BLOCKYSIZE=256", BIG_SOURCE, t["plain"])
        from osgeo import gdal
        gdal.UseExceptions()
        for k in ("stats", "ovr", "ovr_stats"):
            shutil.copyfile(t["plain"], t[k])
        for k in ("stats", "ovr_stats"):
            ds = gdal.Open(t[k], gdal.GA_Update)
            ds.GetRasterBand(1).ComputeStatistics(False)  # inside the TIFF
            ds = None
        for k in ("ovr", "ovr_stats"):
            sh("gdaladdo", "-q", "-r", "average", t[k], "2", "4", "8", "16",
               "32")
    return big, t


def once(path, size, trace, watch=None):
    r = qgisutil.run(path, size=(size, size), trace=trace, watch=watch,
                     timeout=900)
    aux = path + ".aux.xml"
    wrote = os.path.exists(aux)
    out = {
        "valid": r["valid"], "name": r.get("name"),
        "crs": (r.get("crs") or {}).get("authid"),
        "size": [r.get("width"), r.get("height")],
        "stretch": [(r.get("renderer") or {}).get("min"),
                    (r.get("renderer") or {}).get("max")],
        "stats_source": r.get("stats_source"),
        "t_block": round(r["t"]["block"], 3),
        "t_render": round(r["t"]["render"][0], 3) if r["t"].get("render")
        else None,
        "t_add_to_rendered": round(r["t"].get("add_to_rendered", 0), 3),
        "gui_max_stall": round(r.get("gui_max_stall") or 0, 3),
        "drawn": (r.get("renders") or [{}])[0].get("nontransparent"),
        "gdal": ["%s %s: %s" % (m["phase"], m["level"], m["text"][:120])
                 for m in r["gdal_messages"]],
        "qgis_log": [m["text"][:120] for m in r["messages"]],
    }
    if trace:
        tr = r["trace"]
        out.update(bytes=tr["bytes"], calls=tr["calls"],
                   creates=["%s %s %s" % (c["phase"],
                                          os.path.basename(c["path"]),
                                          c["result"])
                            for c in tr["creates"]],
                   probes=sorted({os.path.basename(p["path"])
                                  for p in tr["probes"]}))
    if wrote:
        os.unlink(aux)
        out["wrote_aux"] = True
    return out


def _merge(a, b):
    a.update({k: v for k, v in b.items() if k in (
        "bytes", "calls", "creates", "probes")})
    return a


def measure(res, label, get_path, size, remount=None):
    """Times from a run without strace, bytes from one with it.  With
    remount (a fresh mount on an empty cache), first as a never-computed
    output (remounted before each of the two runs), then computed."""
    if remount:
        print("... never computed", label, file=sys.stderr, flush=True)
        remount()
        a = once(get_path(), size, False)
        remount()
        res["never computed " + label] = _merge(a, once(get_path(), size,
                                                        True))
        print(json.dumps(res["never computed " + label]), flush=True)
    print("...", label, file=sys.stderr, flush=True)
    a = once(get_path(), size, False)
    key = ("computed " if remount else "") + label
    res[key] = _merge(a, once(get_path(), size, True))
    print(json.dumps({key: res[key]}), flush=True)


class Mounted:
    def __init__(self, src, base):
        self.src, self.base, self.n, self.m = src, base, 0, None

    def start(self):
        self.stop()
        self.n += 1
        b = os.path.join(self.base, "m%d" % self.n)
        self.m = rfsmount.Mount(self.src, b + "/mnt", b + "/cache",
                                b + "/rasterfs.log", 2).start()
        return self.m

    def stop(self):
        if self.m:
            self.m.stop()
            shutil.rmtree(os.path.dirname(str(self.m.mnt)),
                          ignore_errors=True)
            self.m = None


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--dir")
    ap.add_argument("--size", type=int, default=1000)
    ap.add_argument("--only", choices=("small", "big", "tiff"))
    a = ap.parse_args()
    d = a.dir or tempfile.mkdtemp(prefix="qgis_measure.")
    res = {}
    mounts = []
    try:
        if a.only in (None, "small"):
            src = os.path.join(d, "small-src")
            if not os.path.exists(src):
                rfsmount.copy_data(src)
            mt = Mounted(src, os.path.join(d, "small-mnt"))
            mounts.append(mt)
            for chain in ("@hillshade", "@proj=EPSG:3857", "@hillshade.tif",
                          "@hillshade.png", "@hillshade@fmt=png",
                          "@fmt=cog", ""):
                name = SMALL + chain
                measure(res, name, lambda: mt.m.path(name), 600, mt.start)
        if a.only in (None, "big"):
            big, _ = make_big(d)
            mt = Mounted(os.path.dirname(big), os.path.join(d, "big-mnt"))
            mounts.append(mt)
            measure(res, "big.tif@hillshade",
                    lambda: mt.m.path("big.tif@hillshade"), a.size, mt.start)
        if a.only in (None, "tiff"):
            _, t = make_big(d)
            for k, f in t.items():
                measure(res, "10240^2 Float32 " + k, lambda: f, a.size)
    finally:
        for mt in mounts:
            mt.stop()
        if not a.dir:
            shutil.rmtree(d, ignore_errors=True)
    print(json.dumps(res, indent=1))


if __name__ == "__main__":
    main()
