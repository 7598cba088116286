"""Issue 10 items 1 and 5: a GeoTIFF output is a real file before it is
computed (exact size, the source's mtime), and it says where it came from.

Oracles: the bytes read (their count, their md5), the source's own stat,
GDAL's own tools for the georeferencing (`gdalinfo -json` of the output
against `gdalinfo -json` of what gdaldem, gdalwarp or gdal_translate make
for that step), tar's and rsync's copies, and the provenance strings this
test writes itself.  The counters of .rasterfs/stats say whether a stat
started a job or a describe.
"""

import hashlib
import json
import os
import signal
import subprocess
import tarfile
import time

import pytest
from osgeo import gdal, osr

import rfsmount
from rfsmount import BIN, read_bytes
from test_steps import (GEOGRAPHIC, GRID, MULTI, PROJECTED, SCALED, TERRAIN,
                        run_tool)

gdal.UseExceptions()

OLINDA = "stars_olinda_dem_utm25s.tif"


def md5(b):
    return hashlib.md5(b).hexdigest()


def gdalinfo(path):
    env = dict(os.environ, GDAL_PAM_ENABLED="NO")
    out = subprocess.run(["gdalinfo", "-json", str(path)], check=True,
                         env=env, stdout=subprocess.PIPE, timeout=120).stdout
    return json.loads(out)


def georef(info):
    """What `gdalinfo -json` says about the georeferencing: grid, CRS,
    corners, AREA_OR_POINT, and each band's type and nodata."""
    return {
        "size": info["size"],
        "geoTransform": info.get("geoTransform"),
        "wkt": (info.get("coordinateSystem") or {}).get("wkt"),
        "axes": (info.get("coordinateSystem") or {}).get(
            "dataAxisToSRSAxisMapping"),
        "corners": info.get("cornerCoordinates"),
        "area_or_point": info.get("metadata", {}).get("", {}).get(
            "AREA_OR_POINT"),
        "bands": [(b["type"], b.get("noDataValue")) for b in info["bands"]],
    }


def exact_before_and_after(mount, name, src):
    """stat of a never-computed output: its exact size and the source's
    mtime, without a job; the bytes read are that many; a fresh lookup
    after computing (another spelling of the same key) says the same.
    Returns the bytes."""
    path = mount.path(name)
    msrc = os.stat(mount.src / src).st_mtime_ns
    s0 = mount.stats()
    st = os.stat(path)
    s1 = mount.stats()
    assert s1["jobs_started"] == s0["jobs_started"], "stat started a job"
    assert st.st_size > 0, "%s: no size before it is computed" % name
    assert st.st_mtime_ns == msrc, "%s: mtime is not the source's" % name
    data = read_bytes(path, timeout=300)
    assert len(data) == st.st_size, "%s: %d bytes read, stat said %d" % (
        name, len(data), st.st_size)
    assert mount.stats()["jobs_started"] == s1["jobs_started"] + 1
    # name.tif is the same key (the default format), looked up afresh
    again = os.stat(path + ".tif")
    assert (again.st_size, again.st_mtime_ns) == (st.st_size, msrc), \
        "%s: size or mtime changed by computing it" % name
    st2 = os.stat(path)
    assert (st2.st_size, st2.st_mtime_ns) == (st.st_size, msrc)
    return data


# -- every step, against GDAL's tools --------------------------------------

ORACLES = (
    [(src, step, ["gdaldem"] + args + (
        ["-s", "111120"] if src == GEOGRAPHIC and args[0] in SCALED else []))
     for src in (PROJECTED, GEOGRAPHIC) for step, args in TERRAIN] +
    [(src, step, cmd) for src, step, cmd in GRID] +
    [(GEOGRAPHIC, "proj=EPSG:3857", ["gdalwarp", "-t_srs", "EPSG:3857"]),
     (PROJECTED, "proj=EPSG:4326,res=0.0001,bilinear",
      ["gdalwarp", "-t_srs", "EPSG:4326", "-tr", "0.0001", "0.0001", "-r",
       "bilinear"]),
     (MULTI, "proj=EPSG:32725,average",
      ["gdalwarp", "-t_srs", "EPSG:32725", "-r", "average"]),
     # longitude first: a GeoTIFF stores it as EPSG:4326 (the describe's
     # CRS and the steps' differ only in their axis order)
     (PROJECTED, "proj=OGC:CRS84", ["gdalwarp", "-t_srs", "OGC:CRS84"])])


@pytest.mark.parametrize("src,step,cmd", ORACLES,
                         ids=["%s@%s" % (o[0], o[1]) for o in ORACLES])
def test_step_exact_size_and_gdal_georeferencing(mount, tmp_path, src, step,
                                                 cmd):
    name = "%s@%s" % (src, step)
    exact_before_and_after(mount, name, src)
    ref = tmp_path / "ref.tif"
    run_tool(cmd + ["-q", str(mount.src / src), str(ref)])
    assert georef(gdalinfo(mount.path(name))) == georef(gdalinfo(ref)), \
        " ".join(cmd)


# Every other step (focal, reclass, ndi, the format alone) and chains of
# two to four steps: those of tests/unit/test_steps.c and test_steps.py.
OTHERS = [
    (PROJECTED, "focal=3"), (GEOGRAPHIC, "focal=5,max,circle"),
    (MULTI, "focal=3,median"), (PROJECTED, "focal=3,std"),
    (GEOGRAPHIC, "reclass=0:100:1,100:inf:2"),
    (PROJECTED, "reclass=-inf:50:0.5,50:inf:2,other=7"),
    (MULTI, "ndi=4,3"), (OLINDA, "fmt=gtiff"), (MULTI, "fmt=gtiff"),
    (PROJECTED, "proj=EPSG:3857@focal=3"),
    (PROJECTED, "focal=5,max@proj=EPSG:4326@reclass=-inf:100:1,100:inf:2"),
    (MULTI, "band=1@type=Byte@nodata=7@slope"),
    (GEOGRAPHIC, "size=50,60,average@proj=EPSG:3857,res=100@type=Int16"
     "@nodata=none"),
    (MULTI, "ndi=2,1@reclass=-1:0:1,0:1:2@size=30,30,mode"),
    (GEOGRAPHIC, "hillshade@focal=3,median@type=Float64"),
    (PROJECTED, "tri@proj=EPSG:32633@band=1,1,1@ndi=1,2"),
    (OLINDA, "reclass=0:50:1,50:inf:300@focal=3,max,circle@aspect"),
    (GEOGRAPHIC, "nodata=none@focal=3,mean"),
    (MULTI, "type=UInt16@focal=3,sum@size=12,14"),
    (MULTI, "band=4,3@ndi=1,2"),
]


@pytest.mark.parametrize("src,chain", OTHERS,
                         ids=["%s@%s" % o for o in OTHERS])
def test_chain_exact_size(mount, src, chain):
    data = exact_before_and_after(mount, "%s@%s" % (src, chain), src)
    # what was read is a whole GeoTIFF GDAL reads
    ds = gdal.OpenEx(mount.path("%s@%s" % (src, chain)), gdal.OF_RASTER)
    assert ds.RasterCount >= 1 and data[:4] in (b"II*\x00", b"II+\x00")


def test_stat_describes_once(mount):
    """The first stat describes (one describe, no job); later stats of the
    same name, in this mount, ask nobody."""
    name = mount.path(PROJECTED + "@focal=7,range")
    s0 = mount.stats()
    size = os.stat(name).st_size
    s1 = mount.stats()
    assert s1["describes"] == s0["describes"] + 1
    for _ in range(3):
        time.sleep(1.1)  # past the attribute timeout
        assert os.stat(name).st_size == size
    s2 = mount.stats()
    assert s2["describes"] == s1["describes"]
    assert s2["jobs_started"] == s0["jobs_started"]


def test_cog_and_png_stay_provisional(mount):
    """fmt=cog and fmt=png are written by GDAL's drivers: size 0 until
    computed (docs/outputs.md), no describe, no job."""
    s0 = mount.stats()
    for name in (PROJECTED + "@slope@fmt=cog", PROJECTED + "@slope.png"):
        assert os.stat(mount.path(name)).st_size == 0, name
    s1 = mount.stats()
    assert s1["describes"] == s0["describes"]
    assert s1["jobs_started"] == s0["jobs_started"]
    data = read_bytes(mount.path(PROJECTED + "@slope@fmt=cog"))
    assert os.stat(mount.path(PROJECTED + "@slope@fmt=cog")).st_size == \
        len(data) > 0


# -- copies of an output nobody opened ---------------------------------------

def test_tar_of_never_opened_output(mount, tmp_path):
    name = GEOGRAPHIC + "@tpi"
    size = os.stat(mount.path(name)).st_size
    tar = tmp_path / "t.tar"
    subprocess.run(["tar", "-cf", str(tar), "-C", str(mount.mnt), name],
                   check=True, timeout=300)
    with tarfile.open(tar) as t:
        m = t.getmember(name)
        member = t.extractfile(m).read()
    assert m.size == size == len(member)
    assert md5(member) == md5(read_bytes(mount.path(name)))


def test_rsync_copies_once_with_the_right_size(mount, tmp_path):
    name = PROJECTED + "@roughness"
    size = os.stat(mount.path(name)).st_size
    dst = tmp_path / "copy"
    dst.mkdir()
    r = subprocess.run(["rsync", "-a", "--itemize-changes",
                        mount.path(name), str(dst) + "/"], check=True,
                       stdout=subprocess.PIPE, timeout=300)
    assert name.encode() in r.stdout
    copy = dst / name
    assert copy.stat().st_size == size
    assert copy.stat().st_mtime_ns // 10**9 == \
        os.stat(mount.src / PROJECTED).st_mtime_ns // 10**9
    assert md5(copy.read_bytes()) == md5(read_bytes(mount.path(name)))
    # computing it changed neither size nor mtime: nothing to copy again
    r = subprocess.run(["rsync", "-a", "--itemize-changes",
                        mount.path(name), str(dst) + "/"], check=True,
                       stdout=subprocess.PIPE, timeout=300)
    assert r.stdout == b"", r.stdout


# -- provenance --------------------------------------------------------------

def versions():
    out = subprocess.run([BIN, "--version"], check=True,
                         stdout=subprocess.PIPE).stdout.decode()
    rfs = out.split()[1]
    proj = "%d.%d.%d" % (osr.GetPROJVersionMajor(), osr.GetPROJVersionMinor(),
                         osr.GetPROJVersionMicro())
    return rfs, gdal.__version__, proj


@pytest.mark.parametrize("name,chain,descs", [
    ("sub/dem.tif@proj=EPSG:3857@hillshade",
     "@proj=EPSG:3857,near@hillshade=315,45,z=1",
     ["hillshade=315,45,z=1 of proj=EPSG:3857,near of sub/dem.tif"]),
    (MULTI + "@band=3,2,1", "@band=3,2,1",
     [MULTI + " band 3", MULTI + " band 2", MULTI + " band 1"]),
    (MULTI + "@focal=5,max@band=2", "@focal=5,max,square@band=2",
     ["focal=5,max,square of %s band 2" % MULTI]),
    (MULTI + "@ndi=4,3", "@ndi=4,3",
     ["ndi=4,3 of %s band 4 and %s band 3" % (MULTI, MULTI)]),
    (GEOGRAPHIC + "@fmt=gtiff", "@fmt=gtiff", [GEOGRAPHIC]),
    (PROJECTED + "@focal=3@fmt=cog", "@focal=3,mean,square@fmt=cog",
     ["focal=3,mean,square of " + PROJECTED]),
])
def test_provenance(mount, tmp_path, name, chain, descs):
    """A copied output says where it came from: the source below the root,
    the canonical chain, rasterfs's, GDAL's and PROJ's versions, and what
    each band is."""
    copy = tmp_path / "copy.tif"
    copy.write_bytes(read_bytes(mount.path(name)))
    info = gdalinfo(copy)
    md = info["metadata"][""]
    rfs, gv, pv = versions()
    src = name.split("@")[0]
    assert md["RASTERFS_SOURCE"] == src
    assert md["RASTERFS_CHAIN"] == chain
    assert md["RASTERFS_VERSION"] == rfs
    assert md["RASTERFS_GDAL_VERSION"] == gv
    assert md["RASTERFS_PROJ_VERSION"] == pv
    assert [b.get("description") for b in info["bands"]] == descs


def test_cache_verify_clean(mount):
    """Objects and description records agree (read-only, the mount up)."""
    read_bytes(mount.path(OLINDA + "@slope"))
    os.stat(mount.path(OLINDA + "@aspect"))  # described, not computed
    r = subprocess.run([BIN, "cache", "--cache", str(mount.cache), "--json",
                        "verify"], stdout=subprocess.PIPE, timeout=120)
    doc = json.loads(r.stdout)
    assert r.returncode == 0 and doc["ok"], doc
    assert doc["descriptions"] >= 2


# -- across a remount ----------------------------------------------------------

def test_remount_answers_from_the_store(mount_factory):
    names = [PROJECTED + "@slope", GEOGRAPHIC + "@proj=EPSG:3857",
             MULTI + "@band=2@focal=3"]
    m1 = mount_factory()
    sizes = [os.stat(m1.path(n)).st_size for n in names]
    assert m1.stats()["describes"] == len(names)
    src, cache = m1.src, m1.cache
    m1.stop()
    m2 = mount_factory(src=src, cache=cache)
    assert [os.stat(m2.path(n)).st_size for n in names] == sizes
    s = m2.stats()
    assert s["describes"] == 0, "a remount described again"
    assert s["describe_hits"] == len(names)
    assert s["jobs_started"] == 0
    assert len(read_bytes(m2.path(names[1]))) == sizes[1]
    m2.stop()
    r = subprocess.run([BIN, "cache", "--cache", str(cache), "verify"],
                       stdout=subprocess.PIPE, timeout=120)
    assert r.returncode == 0, r.stdout


def test_changed_source_is_described_again_and_gc_drops_the_old(
        mount_factory):
    m = mount_factory()
    name = OLINDA + "@tri"
    size = os.stat(m.path(name)).st_size
    assert m.stats()["describes"] == 1
    # the same pixels under a new mtime: a new key, a new description
    os.utime(m.src / OLINDA, ns=(10**18, 10**18))
    time.sleep(1.1)
    st = os.stat(m.path(name))
    assert st.st_size == size and st.st_mtime_ns == 10**18
    assert m.stats()["describes"] == 2
    src, cache = m.src, m.cache
    m.stop()
    r = subprocess.run([BIN, "cache", "--cache", str(cache), "--json", "gc"],
                       stdout=subprocess.PIPE, timeout=120, check=True)
    assert json.loads(r.stdout)["descriptions_dropped"] == 1


# -- a describe that stalls or fails -------------------------------------------

def test_stalled_describer_leaves_the_output_provisional(mount_factory):
    """A describer that stops answering: the stat waits at most
    describe_timeout, then the output is provisional (size 0; the failure
    is remembered for retry_after, so the getattr that follows the lookup
    asks nobody), the describer is replaced, and a stat after retry_after
    has the exact size."""
    m = mount_factory(workers=1, options=("describers=1",
                                          "describe_timeout=2",
                                          "retry_after=3"))
    d = m.describer_pids()
    assert len(d) == 1, d
    name = m.path(PROJECTED + "@hillshade=200,30")
    os.kill(d[0], signal.SIGSTOP)
    try:
        t0 = time.monotonic()
        st = os.stat(name)
        took = time.monotonic() - t0
    finally:
        try:
            os.kill(d[0], signal.SIGCONT)
        except ProcessLookupError:
            pass
    assert st.st_size == 0
    assert 1.5 <= took < 10, took
    deadline = time.monotonic() + 10
    while m.describer_pids() in ([], d) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert m.describer_pids() and m.describer_pids() != d, "not replaced"
    assert os.stat(name).st_size == 0  # remembered
    time.sleep(3.5)
    size = os.stat(name).st_size
    assert size > 0
    assert len(read_bytes(name)) == size


def test_describers_off(mount_factory):
    """describers=0: every output is provisional until computed."""
    m = mount_factory(options=("describers=0",))
    name = m.path(PROJECTED + "@slope")
    assert os.stat(name).st_size == 0
    assert m.describer_pids() == []
    data = read_bytes(name)
    assert os.stat(name).st_size == len(data)
