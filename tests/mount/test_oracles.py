"""The references in rfsref.py checked against SciPy, so the mount tests rest
on oracles that are themselves tested.  No mount is needed here."""

import numpy as np
import pytest
import scipy.ndimage as ndi

import rfsref
from rfsmount import DATA


def _sample(name, y0, x0, h, w):
    r = rfsref.Raster(DATA / name)
    b = r.band(1)
    return b["array"][y0:y0 + h, x0:x0 + w], b["nodata"]


def _nanfilled(a, nodata):
    return np.where(rfsref.valid_mask(a, nodata), a.astype(np.float64), np.nan)


def _footprint(size, shape):
    fp = np.zeros((size, size), dtype=bool)
    r = size // 2
    for dy, dx in rfsref.window_offsets(size, shape):
        fp[dy + r, dx + r] = True
    return fp


NANFUNC = {
    "mean": np.nanmean, "min": np.nanmin, "max": np.nanmax, "sum": np.nansum,
    "std": np.nanstd, "median": np.nanmedian,
    "range": lambda v: np.nanmax(v) - np.nanmin(v),
}


@pytest.mark.parametrize("shape", rfsref.SHAPES)
@pytest.mark.parametrize("stat", rfsref.STATS)
def test_focal_reference_matches_scipy_generic_filter(stat, shape):
    # A patch across the srtm crop's nodata edge (row 300) and the coast.
    a, nd = _sample("srtm1_N48W125_crop.tif", 280, 300, 40, 50)
    assert (~rfsref.valid_mask(a, nd)).any() and rfsref.valid_mask(a, nd).any()
    size = 5
    ref = rfsref.focal(a, nd, size, stat, shape)
    x = _nanfilled(a, nd)
    fn = NANFUNC[stat]

    def f(v):
        if np.isnan(v).all():
            return np.nan
        return fn(v)
    # cval=NaN: cells past the edge count as missing, like nodata.
    want = ndi.generic_filter(x, f, footprint=_footprint(size, shape),
                              mode="constant", cval=np.nan)
    np.testing.assert_allclose(ref, want, rtol=1e-12, atol=1e-9)
    # Rows 0-19 of the patch are nodata: windows wholly inside give NaN.
    assert np.isnan(ref[:18]).all()


def test_focal_reference_interior_matches_scipy_fast_filters():
    a, nd = _sample("opengeos_dtm.tif", 100, 100, 60, 70)
    assert rfsref.valid_mask(a, nd).all()
    x = a.astype(np.float64)
    for size in (3, 7):
        r = size // 2
        inner = (slice(r, -r), slice(r, -r))
        np.testing.assert_allclose(rfsref.focal(a, nd, size, "mean")[inner],
                                   ndi.uniform_filter(x, size)[inner],
                                   rtol=1e-12)
        for shape in rfsref.SHAPES:
            fp = _footprint(size, shape)
            for stat, fn in (("min", ndi.minimum_filter),
                             ("max", ndi.maximum_filter),
                             ("median", ndi.median_filter)):
                got = rfsref.focal(a, nd, size, stat, shape)[inner]
                want = fn(x, footprint=fp)[inner]
                np.testing.assert_array_equal(got, want, err_msg=stat)


def test_circle_footprint():
    # r = 1: the plus sign; r = 2: 13 cells (dx^2 + dy^2 <= 4).
    assert len(rfsref.window_offsets(3, "circle")) == 5
    assert len(rfsref.window_offsets(5, "circle")) == 13
    assert len(rfsref.window_offsets(5, "square")) == 25
    assert (2, 0) in rfsref.window_offsets(5, "circle")
    assert (2, 1) not in rfsref.window_offsets(5, "circle")


def test_median_even_count_is_mean_of_middle_pair():
    # A corner of a 3x3 square holds 4 cells: 1, 2, 4, 8 -> (2 + 4) / 2.
    a = np.array([[1, 2, 0], [4, 8, 0], [0, 0, 0]], dtype=np.int16)
    assert rfsref.focal(a, None, 3, "median")[0, 0] == 3.0
    # std is the population std (ddof=0).
    assert rfsref.focal(a, None, 3, "std")[0, 0] == pytest.approx(
        np.std([1, 2, 4, 8]))


def test_focal_at_matches_focal():
    a, nd = _sample("srtm1_N48W125_crop.tif", 250, 0, 100, 100)
    pts = [(0, 0), (99, 99), (49, 0), (51, 60), (10, 10), (70, 30)]
    for stat in rfsref.STATS:
        for shape in rfsref.SHAPES:
            full = rfsref.focal(a, nd, 7, stat, shape)
            at = rfsref.focal_at(a, nd, 7, stat, shape, pts)
            want = np.array([full[i, j] for i, j in pts])
            np.testing.assert_allclose(at, want, rtol=1e-12, equal_nan=True)


def test_reclass_reference_matches_elementwise_loop():
    a, nd = _sample("srtm1_N48W125_crop.tif", 290, 0, 30, 600)
    spec = "-inf:1:0,1:200:1,250:400:2,400:inf:3"
    ranges, other = rfsref.parse_reclass(spec)
    assert other is None and ranges[0][0] == -np.inf
    for oth in (None, 7.0):
        got = rfsref.reclass(a, nd, ranges, oth)
        for (i, j), v in np.ndenumerate(a):
            if v == nd:
                want = np.nan
            else:
                want = next((val for lo, hi, val in ranges if lo <= v < hi),
                            np.nan if oth is None else oth)
            assert (np.isnan(want) and np.isnan(got[i, j])) or got[i, j] == want
