"""Failures GDAL reports are failures, with the right code: a worker out
of memory (worker_mem) fails with RFS-E203 whatever GDAL's message says
(it used to be RFS-E201 "GetBlockRef failed" when the failed allocation
was the block cache's), and the mount goes on.

Oracle: the errno and code of each open, GDAL's own message naming
GetBlockRef for some of them; another output still served after."""

import errno
import os
import subprocess

from rfsmount import open_errno, read_bytes

NAMES = ["big.tif@proj=EPSG:3857", "big.tif@focal=3",
         "big.tif@focal=15,median", "big.tif@hillshade", "big.tif@fmt=cog",
         "big.tif@fmt=png", "big.tif@reclass=0:100:1"]


def test_out_of_memory_is_e203(mount_factory):
    src = mount_factory.source()
    subprocess.run(["gdalwarp", "-q", "-ts", "3000", "3000",
                    str(src / "opengeos_dtm.tif"), str(src / "big.tif")],
                   check=True)
    codes = {}
    for mem in (16, 48):
        m = mount_factory(src, workers=1,
                          options=["worker_mem=%d" % mem, "retry_after=0"])
        for n in NAMES:
            e = open_errno(m.path(n), timeout=120)
            if e == 0:
                codes["ok"] = codes.get("ok", 0) + 1
                continue
            assert e == errno.ENOMEM, (mem, n, errno.errorcode.get(e, e))
            err = os.getxattr(m.path(n), "user.rasterfs.error").decode()
            assert err.startswith("RFS-E203 "), (mem, n, err)
            kind = "GetBlockRef" if "GetBlockRef" in err else "other"
            codes[kind] = codes.get(kind, 0) + 1
        assert m.alive()
        assert read_bytes(m.path("stars_olinda_dem_utm25s.tif@focal=3"))
        m.stop()
    print("out of memory: %r" % codes)
    assert codes.get("GetBlockRef", 0) + codes.get("other", 0) >= 5, codes
