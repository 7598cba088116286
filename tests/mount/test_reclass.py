"""reclass=a:b:v[,...][,other=V] against a reference, and three-step chains
against the three references applied one after another."""

import numpy as np
import pytest

import rfsref
from rfsmount import read_bytes

CASES = [
    # Int16 with nodata; integer classes; -inf/inf
    ("srtm1_N48W125_crop.tif", "-inf:1:0,1:200:1,200:400:2,400:inf:3"),
    # gaps: unmatched -> nodata
    ("srtm1_N48W125_crop.tif", "1:100:1,300:500:2"),
    # gaps with other=
    ("srtm1_N48W125_crop.tif", "1:100:1,300:500:2,other=9"),
    # Float32 with nodata; fractional, negative and wide values
    ("opengeos_dtm.tif", "-inf:10:-1.5,10:15:2.25,15:inf:70000"),
    ("opengeos_dtm.tif", "8:10:1,12:14:2"),
    ("opengeos_dtm.tif", "8:10:1,12:14:2,other=0"),
    # no nodata in the input, but unmatched cells need one in the output
    ("stars_olinda_dem_utm25s.tif", "0:10:1,20:40:2"),
    ("stars_olinda_dem_utm25s.tif", "-inf:20:1,20:inf:2"),
    # six Byte bands
    ("stars_L7_ETMs.tif", "0:60:1,60:100:2,100:256:3"),
    # a class value equal to the input's nodata: the output needs another
    ("opengeos_dtm.tif", "-inf:10:-9999,10:inf:1"),
    ("srtm1_N48W125_crop.tif", "-inf:1:-32768,1:inf:1,other=5"),
    ("srtm1_N48W125_crop.tif", "0:1:0,1:300:255"),
]


def assert_reclass(got, src, spec):
    rfsref.assert_same_grid(got, src)
    ranges, other = rfsref.parse_reclass(spec)
    values = [v for _, _, v in ranges] + ([other] if other is not None else [])
    for i, (ib, ob) in enumerate(zip(src.bands, got.bands), 1):
        ref = rfsref.reclass(ib["array"], ib["nodata"], ranges, other)
        # The output type holds every v exactly.
        held = rfsref.to_type(np.array(values), ob["type"])
        np.testing.assert_array_equal(held.astype(np.float64), values,
                                      err_msg="output type cannot hold v")
        rfsref.assert_band_equals(ob, ref, True, what="band %d" % i)


@pytest.mark.parametrize("src,spec", CASES,
                         ids=["%s@reclass=%s" % c for c in CASES])
def test_reclass_equals_reference(mount, src, spec):
    name = "%s@reclass=%s" % (src, spec)
    got = rfsref.Raster(read_bytes(mount.path(name), timeout=300))
    assert_reclass(got, rfsref.Raster(mount.src / src), spec)


# (source, crs, res, resampling, focal size, stat, shape, reclass spec)
CHAINS = [
    ("srtm1_N48W125_crop.tif", "EPSG:32610", 30, None, 5, "max", "square",
     "-inf:1:0,1:200:1,200:400:2,400:inf:3"),
    ("opengeos_dtm.tif", "EPSG:3857", None, "bilinear", 3, "mean", "circle",
     "-inf:10:1,10:14:2,14:inf:3"),
]


def chain_name(src, crs, res, rs, size, stat, shape, spec):
    p = "proj=" + crs + (",res=%g" % res if res else "") + \
        ("," + rs if rs else "")
    return "%s@%s@focal=%d,%s,%s@reclass=%s" % (src, p, size, stat, shape,
                                                spec)


def chain_reference(srcpath, tmpdir, crs, res, rs, size, stat, shape, spec):
    """The three steps applied one after another by the three oracles.
    Returns (warped Raster, float64 reference, reference focal values)."""
    w = rfsref.Raster(rfsref.gdalwarp(srcpath, tmpdir / "chain_w.tif", crs,
                                      res, rs))
    b = w.band(1)
    f = rfsref.focal(b["array"], b["nodata"], size, stat, shape)
    # focal writes its output type; reclass then sees those values.
    ftype = rfsref.focal_out_type(b["type"], stat)
    fv = np.where(np.isnan(f), np.nan,
                  rfsref.to_type(np.nan_to_num(f), ftype).astype(np.float64))
    ranges, other = rfsref.parse_reclass(spec)
    r = rfsref.reclass(fv, None, ranges, other)
    return w, r, fv


def assert_chain(got, warped, ref, fv, spec, exact):
    assert (got.xsize, got.ysize) == (warped.xsize, warped.ysize)
    np.testing.assert_allclose(got.gt, warped.gt, rtol=1e-12)
    ob = got.band(1)
    if exact:
        rfsref.assert_band_equals(ob, ref, True, what="chain")
        return
    # A float focal may land on the other side of a class bound by rounding:
    # accept a difference only within 1e-3 of a bound.
    ranges, _ = rfsref.parse_reclass(spec)
    bounds = np.array([x for lo, hi, _ in ranges for x in (lo, hi)
                       if np.isfinite(x)])
    near = np.zeros(fv.shape, dtype=bool)
    for x in bounds:
        near |= np.abs(fv - x) < 1e-3
    gotmask = ~rfsref.valid_mask(ob["array"], ob["nodata"])
    assert (gotmask == np.isnan(ref)).all(), "chain nodata mask differs"
    ok = ~np.isnan(ref) & ~near
    np.testing.assert_array_equal(ob["array"][ok].astype(np.float64), ref[ok])


@pytest.mark.parametrize("chain", CHAINS, ids=[chain_name(*c) for c in CHAINS])
def test_three_step_chain_equals_references(mount, tmp_path, chain):
    src, crs, res, rs, size, stat, shape, spec = chain
    got = rfsref.Raster(read_bytes(mount.path(chain_name(*chain)),
                                   timeout=300))
    warped, ref, fv = chain_reference(mount.src / src, tmp_path, crs, res, rs,
                                      size, stat, shape, spec)
    assert_chain(got, warped, ref, fv, spec, exact=stat in ("min", "max"))
