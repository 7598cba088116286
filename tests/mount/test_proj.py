"""proj=CRS[,res=R][,RESAMPLING] against GDAL's own gdalwarp."""

import numpy as np
import pytest
from osgeo import gdal, osr

import rfsref
from rfsmount import read_bytes

# (source, step, gdalwarp -t_srs, -tr, -r)
CASES = [
    # geographic Int16 with nodata
    ("srtm1_N48W125_crop.tif", "proj=EPSG:3857", "EPSG:3857", None, None),
    ("srtm1_N48W125_crop.tif", "proj=EPSG:32610,res=30,bilinear",
     "EPSG:32610", 30, "bilinear"),
    # projected Float32 with nodata
    ("opengeos_dtm.tif", "proj=EPSG:4326", "EPSG:4326", None, None),
    ("opengeos_dtm.tif", "proj=EPSG:3857,res=5,bilinear", "EPSG:3857", 5,
     "bilinear"),
    # explicit default resampling, lower-case authority
    ("opengeos_dtm.tif", "proj=epsg:32618,near", "EPSG:32618", None, None),
    # a CRS with no EPSG code as the source; cubic
    ("stars_olinda_dem_utm25s.tif", "proj=EPSG:32725,res=100,cubic",
     "EPSG:32725", 100, "cubic"),
    # six Byte bands
    ("stars_L7_ETMs.tif", "proj=EPSG:4326", "EPSG:4326", None, None),
    # through a symbolic link inside the root
    ("sub/dem.tif", "proj=EPSG:3857", "EPSG:3857", None, None),
]


def assert_same_raster(got, want, exact=True):
    assert got.driver == "GTiff"
    assert (got.xsize, got.ysize, got.count) == \
        (want.xsize, want.ysize, want.count), "size differs"
    np.testing.assert_allclose(got.gt, want.gt, rtol=1e-12, atol=0,
                               err_msg="geotransform differs")
    a, b = osr.SpatialReference(), osr.SpatialReference()
    a.ImportFromWkt(got.wkt)
    b.ImportFromWkt(want.wkt)
    assert a.IsSame(b), "CRS differs:\n%s\n%s" % (got.wkt, want.wkt)
    for i, (g, w) in enumerate(zip(got.bands, want.bands), 1):
        assert gdal.GetDataTypeName(g["type"]) == \
            gdal.GetDataTypeName(w["type"]), "band %d type" % i
        assert g["nodata"] == w["nodata"] or \
            (np.isnan(g["nodata"]) and np.isnan(w["nodata"])), \
            "band %d nodata %r != %r" % (i, g["nodata"], w["nodata"])
        if exact:
            assert g["checksum"] == w["checksum"], "band %d checksum" % i
            np.testing.assert_array_equal(g["array"], w["array"])


@pytest.mark.parametrize("src,step,crs,res,rs", CASES,
                         ids=["%s@%s" % (c[0], c[1]) for c in CASES])
def test_proj_equals_gdalwarp(mount, tmp_path, src, step, crs, res, rs):
    name = "%s@%s" % (src, step)
    data = read_bytes(mount.path(name), timeout=300)
    got = rfsref.Raster(data)
    want = rfsref.Raster(rfsref.gdalwarp(mount.src / src, tmp_path / "w.tif",
                                         crs, res, rs))
    assert_same_raster(got, want)
    # Tiled GeoTIFF, 256 x 256 blocks (ops.h).
    for b in got.bands:
        assert b["block"] == (256, 256), b["block"]
