"""Helpers of the store tests: the `rasterfs cache` command and names."""

import json
import subprocess

from rfsmount import BIN

OLINDA = "stars_olinda_dem_utm25s.tif"


def cache_cmd(cache, *args, check=True):
    """Run `rasterfs cache --cache CACHE ARGS... --json`; (rc, dict)."""
    r = subprocess.run([BIN, "cache", "--cache", str(cache)] + list(args)
                       + ["--json"], stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, timeout=120)
    out = r.stdout.decode()
    try:
        doc = json.loads(out) if out.strip() else {}
    except ValueError:
        raise AssertionError("not JSON: %r (stderr %r)" % (out, r.stderr))
    if check:
        assert r.returncode == 0, (r.returncode, out, r.stderr.decode())
    return r.returncode, doc


def verify_clean(cache):
    """`rasterfs cache verify`: assert no problem; return the report."""
    rc, doc = cache_cmd(cache, "verify", check=False)
    assert rc == 0 and doc["ok"], doc
    return doc


def small_names(n, src=OLINDA):
    """n distinct virtual names that compute fast (one 256x256 tile)."""
    names = []
    for i in range(n):
        t = 2 * i + 1
        step = "@reclass=-inf:%d:1,%d:inf:2" % (t, t)
        names.append(src + ("@focal=3" if i % 2 else "") + step)
    return names
