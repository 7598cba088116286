"""Portable names (issue 12): every chain has a spelling without ':'.

A ':' cannot be in a file name on Windows or an SMB share, makes rsync read
'x.tif@proj=EPSG:3857' as HOST:PATH, and makes `grass -c FILE` take the
name for an EPSG code.  The grammar reads a CRS as AUTH_CODE (a '_' inside
the authority or code doubled) and a reclass range as a_b_v, as the same
canonical chain: the same key, the same object, the same bytes.

Oracles: the portable names are spelt here by the test's own rule (below),
independently of rasterfs; equal keys and equal md5 of the two names; the
job counter (one job for both names); GDAL's reading of the output's CRS;
rsync's and GRASS's own behaviour on the names.
"""

import hashlib
import os
import re
import shutil
import subprocess

import pytest
from osgeo import gdal, osr

from rfsmount import read_bytes

gdal.UseExceptions()

DTM = "opengeos_dtm.tif"              # EPSG:26918, Float32, nodata -9999
SRTM = "srtm1_N48W125_crop.tif"       # EPSG:4326, Int16, nodata -32768
L7 = "stars_L7_ETMs.tif"              # EPSG:31985, 6 x Byte
OLINDA = "stars_olinda_dem_utm25s.tif"  # UTM 25S without an EPSG code
RGB = "rgbify_elev.tif"               # EPSG:3857

# 30 chains, each with a CRS or a range: proj, clip with a CRS, reclass
# (with inf, -inf, negative numbers), alone and combined, in every format.
# (name in the ':' spelling, EPSG code of the output or None)
CHAINS = [
    (DTM + "@proj=EPSG:3857", 3857),
    (DTM + "@proj=EPSG:4326,bilinear", 4326),
    (DTM + "@proj=EPSG:32618,res=30", 32618),
    (DTM + "@proj=ESRI:54009,res=100", None),
    (DTM + "@proj=OGC:CRS84", None),
    (SRTM + "@proj=EPSG:32610,res=60", 32610),
    (SRTM + "@proj=EPSG:3857,cubic", 3857),
    (SRTM + "@proj=epsg:26910,res=90,bilinear", 26910),
    (L7 + "@proj=EPSG:4326", 4326),
    (OLINDA + "@proj=EPSG:4326,res=0.001", 4326),
    (RGB + "@proj=EPSG:4326,average", 4326),
    (DTM + "@proj=EPSG:3857@focal=3", 3857),
    (SRTM + "@clip=-124.2,48.45,-124.1,48.5,EPSG:4326", 4326),
    (SRTM + "@clip=-124.2,48.45,-124.1,48.5,OGC:CRS84", 4326),
    (DTM + "@clip=-77.055,38.809,-77.05,38.812,EPSG:4326", 26918),
    (DTM + "@clip=-8577700,4694300,-8577200,4694800,EPSG:3857", 26918),
    (L7 + "@clip=-34.9,-8.03,-34.85,-7.96,EPSG:4326", 31985),
    (SRTM + "@proj=EPSG:32610,res=30@clip=410000,5365000,418000,5375000,"
     "EPSG:32610", 32610),
    (DTM + "@reclass=-inf:0:0,0:100:1,100:inf:2", 26918),
    (SRTM + "@reclass=-inf:1:0,1:200:1,200:inf:2,other=-1", 4326),
    (SRTM + "@reclass=0:1e3:1.5", 4326),
    (L7 + "@reclass=0:50:1,50:100:2,100:256:3", 31985),
    (DTM + "@reclass=-1e3:-5:-1,-5:5:0,5:1e4:1,other=9", 26918),
    (RGB + "@reclass=-inf:500:1,500:inf:2", 3857),
    (SRTM + "@proj=EPSG:32610,res=60@reclass=-inf:100:1,100:inf:2", 32610),
    (DTM + "@reclass=-inf:50:1,50:inf:2@proj=EPSG:4326", 4326),
    (SRTM + "@clip=-124.2,48.45,-124.1,48.5,EPSG:4326@reclass=0:inf:1.png",
     None),
    (DTM + "@proj=EPSG:3857@fmt=cog", 3857),
    (SRTM + "@proj=EPSG:3857,res=100.png", None),
    (L7 + "@band=3,2,1@proj=EPSG:3857,bilinear", 3857),
]

# Chains whose CRS has a '_' of its own: only their keys are compared (an
# Earth raster cannot be warped to Mars, and IGNF:STPM50_V is vertical).
KEY_ONLY = [
    (DTM + "@proj=IAU_2015:49900", DTM + "@proj=IAU__2015_49900"),
    (DTM + "@proj=IGNF:STPM50_V,res=1", DTM + "@proj=IGNF_STPM50__V,res=1"),
]

WINDOWS_FORBIDDEN = set('<>:"/\\|?*')


def portable(name):
    """The test's own spelling rule: after the source, '_' -> '__' (only a
    CRS holds one), then ':' -> '_' (CRS and range separators)."""
    src, chain = name.split("@", 1)
    return src + "@" + chain.replace("_", "__").replace(":", "_")


def md5(b):
    return hashlib.md5(b).hexdigest()


def epsg_of(path):
    ds = gdal.Open(path)
    try:
        srs = osr.SpatialReference(wkt=ds.GetProjection())
        srs.AutoIdentifyEPSG()
        return int(srs.GetAuthorityCode(None))
    finally:
        ds = None


def test_portable_names_same_key_same_bytes(mount):
    seen = set()
    for i, (name, epsg) in enumerate(CHAINS):
        port = portable(name)
        if i % 2:
            # a portable name may also end with the extension that
            # Windows programs go by; the default GeoTIFF is ".tif"
            if not port.endswith(".png") and "fmt=" not in port:
                port += ".tif"
        assert not (set(port) & WINDOWS_FORBIDDEN), port
        assert not port.endswith(".") and "epsg:" not in port.lower()
        a, p = mount.path(name), mount.path(port)
        ka = os.getxattr(a, "user.rasterfs.key")
        kp = os.getxattr(p, "user.rasterfs.key")
        assert ka == kp, (name, port, ka, kp)
        assert os.getxattr(a, "user.rasterfs.chain") == \
            os.getxattr(p, "user.rasterfs.chain")
        assert ka not in seen, "two chains of the list share a key: %s" % name
        seen.add(ka)

        s0 = mount.stats()
        # The portable name first for half of them: either may come first.
        first, second = (p, a) if i % 2 else (a, p)
        b1 = read_bytes(first, timeout=300)
        s1 = mount.stats()
        b2 = read_bytes(second, timeout=300)
        s2 = mount.stats()
        assert len(b1) > 0 and md5(b1) == md5(b2), name
        assert s1["jobs_started"] - s0["jobs_started"] == 1, (name, s0, s1)
        assert s2["jobs_started"] == s1["jobs_started"], \
            "the second spelling of %s started a job" % name
        assert s2["cache_hits"] > s1["cache_hits"], (name, s1, s2)
        assert s2["jobs_failed"] == s0["jobs_failed"], name
        if epsg is not None:
            assert epsg_of(p) == epsg, (port, epsg)
    assert len(seen) == 30


def test_portable_crs_with_underscore_same_key(mount):
    for colon, port in KEY_ONLY:
        ka = os.getxattr(mount.path(colon), "user.rasterfs.key")
        kp = os.getxattr(mount.path(port), "user.rasterfs.key")
        assert ka == kp, (colon, port)
        assert os.getxattr(mount.path(port), "user.rasterfs.chain") == \
            os.getxattr(mount.path(colon), "user.rasterfs.chain")
    # Two single '_' read two ways: refused, with no job.
    s0 = mount.stats()
    with pytest.raises(OSError):
        os.stat(mount.path(DTM + "@proj=IAU_2015_49900"))
    with pytest.raises(OSError):
        os.stat(mount.path(DTM + "@reclass=0_100:1"))
    assert mount.stats()["jobs_started"] == s0["jobs_started"]


def need(tool, package):
    # scripts/setup.sh installs both: a missing one is a broken set-up,
    # not a reason to pass
    if not shutil.which(tool):
        pytest.fail("%s is not installed; run scripts/setup.sh (Debian "
                    "package %s)" % (tool, package))


def test_rsync_portable_name_is_local(mount, tmp_path):
    """rsync NAME dst/ with no '/' in NAME: a ':' makes NAME a remote
    HOST:PATH; the portable name is copied.  -e false: a remote shell,
    if rsync wanted one, fails at once."""
    need("rsync", "rsync")
    name = SRTM + "@proj=EPSG:3857,near@reclass=-inf:100:1,100:inf:2"
    port = portable(name) + ".tif"
    want = read_bytes(mount.path(name), timeout=300)  # computed: exact size
    dst = tmp_path / "dst"
    dst.mkdir()
    r = subprocess.run(["rsync", "-e", "false", port, str(dst) + "/"],
                       cwd=str(mount.mnt), capture_output=True, timeout=120)
    assert r.returncode == 0, r.stderr.decode(errors="replace")
    got = (dst / port).read_bytes()
    assert md5(got) == md5(want)
    # The ':' spelling is taken for a host (the failure this fixes).
    r = subprocess.run(["rsync", "-e", "false", name, str(dst) + "/"],
                       cwd=str(mount.mnt), capture_output=True, timeout=120)
    assert r.returncode != 0
    assert not (dst / name).exists()


def test_grass_location_from_portable_name(mount, tmp_path):
    """grass -c FILE LOCATION makes a location in FILE's CRS with FILE's
    grid; a name holding 'EPSG:' is read as an EPSG code instead."""
    need("grass", "grass-core")
    name = SRTM + "@proj=EPSG:32610,res=60"
    port = portable(name) + ".tif"
    env = dict(os.environ, HOME=str(tmp_path))
    ds = gdal.Open(mount.path(port))
    want = (ds.RasterYSize, ds.RasterXSize)
    ds = None

    def grass(*args):
        r = subprocess.run(["grass"] + list(args), env=env,
                           capture_output=True, timeout=300)
        assert r.returncode == 0, r.stderr.decode(errors="replace")
        return r.stdout.decode()

    def region(loc):
        out = grass(str(loc / "PERMANENT"), "--exec", "g.region", "-g")
        kv = dict(l.split("=", 1) for l in out.split() if "=" in l)
        return int(kv["rows"]), int(kv["cols"])

    def srid(loc):
        out = grass(str(loc / "PERMANENT"), "--exec", "g.proj", "-p")
        return re.search(r"SRID\s*:\s*(\S+)", out).group(1)

    grass("-c", mount.path(port), str(tmp_path / "L"), "-e")
    assert srid(tmp_path / "L") == "EPSG:32610"
    assert region(tmp_path / "L") == want and want[0] > 1
    # The ':' spelling: GRASS finds "EPSG:" in it and makes a 1 x 1
    # location of that code, not one of the file (the failure this fixes).
    grass("-c", mount.path(name), str(tmp_path / "C"), "-e")
    assert region(tmp_path / "C") == (1, 1)
