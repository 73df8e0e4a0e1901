"""Tests of sedmap.filters: curves, band averages, unit conversions, user filters."""

import sysconfig
from pathlib import Path

import numpy as np
import pytest

import sedmap
from sedmap import filters as F
from sedmap.errors import InputError

ROOT = Path(__file__).resolve().parents[1]
PIXEDFIT_DIRS = [d / "shared" / "realdata" / "filters" / "pixedfit" for d in (ROOT, ROOT.parent)]

# Names other modules and users rely on (piXedfit naming).
REQUIRED = (
    ["galex_fuv", "galex_nuv", "2mass_j", "2mass_h", "2mass_k", "spitzer_mips_24"]
    + [f"sdss_{b}" for b in "ugriz"]
    + [f"wise_w{i}" for i in range(1, 5)]
    + [f"spitzer_irac_{c}" for c in ("36", "45", "58", "80")]
    + [f"decam_{b}" for b in "ugrizy"]
    + [f"panstarrs_{b}" for b in "grizy"]
    + [f"hsc_{b}" for b in "grizy"]
    + ["hst_acs_f435w", "hst_acs_f606w", "hst_acs_f814w", "hst_wfc3_uvis_f275w",
       "hst_wfc3_uvis_f336w", "hst_wfc3_ir_f125w", "hst_wfc3_ir_f160w",
       "jwst_nircam_f090w", "jwst_nircam_f200w", "jwst_nircam_f444w",
       "jwst_miri_f770w", "jwst_miri_f2100w"]
)


@pytest.fixture(autouse=True)
def filter_dir(tmp_path, monkeypatch):
    """Every test gets its own, empty user filter directory."""
    d = tmp_path / "user_filters"
    monkeypatch.setenv("SEDMAP_FILTER_DIR", str(d))
    return d


def top_hat(a, b):
    return np.array([a, b], float), np.ones(2)


# --------------------------------------------------------------------------
# The built-in library
# --------------------------------------------------------------------------


def test_required_names_exist_and_listing_is_sorted():
    names = F.list_filters()
    assert names == sorted(names, key=lambda s: (s.lower(), s))
    missing = [n for n in REQUIRED if n not in names]
    assert not missing
    assert len(names) == len({n.lower() for n in names})


@pytest.mark.parametrize("alias, canonical", [
    ("SDSS_R", "sdss_r"), ("sdss_r0", "sdss_r"), ("twomass_Ks", "2mass_k"),
    ("galex_FUV", "galex_fuv"), ("spitzer_irac_ch1", "spitzer_irac_36"),
    ("acs_wfc_f814w", "hst_acs_f814w"), ("wfc3_ir_f160w", "hst_wfc3_ir_f160w"),
    ("jwst_f200w", "jwst_nircam_f200w"), ("jwst_f770w", "jwst_miri_f770w"),
    ("pan-starrs_g", "panstarrs_g"), ("ctio_decam_Y", "decam_y"), ("mips_24", "spitzer_mips_24"),
])
def test_aliases_resolve_to_the_same_curve(alias, canonical):
    f = F.get_filter(alias)
    assert f.name == canonical
    assert f is F.get_filter(canonical)


def test_flat_fnu_spectrum_gives_the_same_ab_mag_in_every_builtin():
    # AB = 20 at every wavelength is f_nu = const, f_lambda ~ lambda^-2.
    wave = np.exp(np.arange(np.log(100.0), np.log(1.0e7), 5e-3))
    flam = F.abmag_to_flam(20.0, wave)
    names = F.list_filters()
    mags = F.flam_to_abmag(F.synthetic_photometry(wave, flam, names), F.pivot_wavelengths(names))
    worst = np.argmax(np.abs(mags - 20.0))
    assert abs(mags[worst] - 20.0) < 1e-3, names[worst]


def test_flat_fnu_is_not_flat_in_mags_without_the_pivot():
    # The test above can fail: converting with the effective wavelength
    # instead of the pivot is off by more than 1e-3 mag in broad bands.
    wave = np.exp(np.arange(np.log(100.0), np.log(1.0e7), 5e-3))
    flam = F.abmag_to_flam(20.0, wave)
    f = F.get_filter("sdss_u")
    mag = F.flam_to_abmag(F.synthetic_photometry(wave, flam, [f])[0], f.effective_wavelength)
    assert abs(mag - 20.0) > 1e-3


# Approximate published pivot wavelengths (Angstrom): GALEX (Morrissey+2007),
# SDSS r at airmass 1.3, 2MASS Ks (Cohen+2003), WISE (Jarrett+2011), IRAC
# handbook, HST ACS and JWST NIRCam/MIRI instrument pages.
@pytest.mark.parametrize("name, pivot", [
    ("galex_fuv", 1535.0), ("galex_nuv", 2301.0), ("sdss_r", 6166.0),
    ("2mass_k", 21590.0), ("wise_w1", 33680.0), ("spitzer_irac_36", 35500.0),
    ("hst_acs_f814w", 8045.0), ("jwst_nircam_f200w", 19880.0), ("jwst_miri_f770w", 76390.0),
])
def test_pivot_wavelengths_match_published_values(name, pivot):
    assert F.get_filter(name).pivot_wavelength == pytest.approx(pivot, rel=0.01)
    assert F.pivot_wavelengths([name])[0] == F.get_filter(name).pivot_wavelength


@pytest.mark.parametrize("name", [
    "sdss_r", "galex_fuv", "galex_nuv", "2mass_k", "wise_w1", "spitzer_irac_36",
    "hst_acs_f814w", "jwst_nircam_f200w", "ctio_decam_g", "pan-starrs_r",
])
def test_pivot_wavelengths_match_pixedfit_curves(name):
    h5py = pytest.importorskip("h5py")
    where = [d for d in PIXEDFIT_DIRS if (d / "filters_w.hdf5").is_file()]
    if not where:
        pytest.skip("piXedfit reference curves not available")
    with h5py.File(where[0] / "filters_w.hdf5") as fw, h5py.File(where[0] / "filters_t.hdf5") as ft:
        ref = F.Filter(name, fw[name][:], ft[name][:])
    assert F.get_filter(name).pivot_wavelength == pytest.approx(ref.pivot_wavelength, rel=0.01)


def test_top_hat_pivot_and_effective_wavelength_are_analytic():
    a, b = 4000.0, 6000.0
    f = F.Filter("box", *top_hat(a, b))
    assert f.pivot_wavelength == pytest.approx(np.sqrt((b**2 - a**2) / 2 / np.log(b / a)),
                                               rel=1e-12)
    assert f.effective_wavelength == pytest.approx((b**3 - a**3) / 3 / ((b**2 - a**2) / 2),
                                                   rel=1e-12)
    assert (f.wave_min, f.wave_max) == (a, b)


def test_filter_is_immutable():
    f = F.get_filter("sdss_r")
    assert f.wavelength.dtype == np.float64 and np.all(np.diff(f.wavelength) > 0)
    with pytest.raises(ValueError):
        f.transmission[0] = 1.0
    with pytest.raises(AttributeError):
        f.name = "other"


# --------------------------------------------------------------------------
# Band averages
# --------------------------------------------------------------------------


def test_user_top_hat_on_linear_spectrum_equals_analytic_band_average():
    a, b = 4000.0, 6000.0
    F.add_filter("TopHat", *top_hat(a, b))
    rng = np.random.default_rng(1)
    # irregular grid with no point on the filter edges
    wave = np.sort(np.concatenate([[3000.0, 8000.0], rng.uniform(3001.0, 7999.0, 40)]))
    alpha, beta = 2.0e-17, 3.0e-21
    flam = alpha + beta * wave
    band = F.synthetic_photometry(wave, flam, ["tophat"])
    # int (alpha + beta l) l dl / int l dl
    expected = alpha + beta * (b**3 - a**3) / 3.0 / ((b**2 - a**2) / 2.0)
    assert band.shape == (1,)
    assert band[0] == pytest.approx(expected, rel=1e-12)


def test_band_average_matches_brute_force_integral():
    # A coarse, curved spectrum in real filters: compare with the definition
    # evaluated by brute force on a very fine grid.
    names = ["sdss_g", "hst_acs_f814w", "2mass_j"]
    wave = np.geomspace(3000.0, 15000.0, 120)
    rng = np.random.default_rng(2)
    flam = (wave / 5000.0) ** -1.5 * (1.0 + 0.3 * rng.standard_normal(wave.size) ** 2)
    got = F.synthetic_photometry(wave, flam, names)
    fine = np.linspace(3000.0, 15000.0, 400_001)
    f_fine = np.interp(fine, wave, flam)
    for i, name in enumerate(names):
        filt = F.get_filter(name)
        t = np.interp(fine, filt.wavelength, filt.transmission, left=0.0, right=0.0)
        want = np.trapezoid(f_fine * t * fine, fine) / np.trapezoid(t * fine, fine)
        assert got[i] == pytest.approx(want, rel=1e-5), name


def test_filter_matrix_vectorizes_over_leading_axes():
    names = ["galex_nuv", "sdss_r", "wise_w1", "jwst_nircam_f444w"]
    wave = np.geomspace(1000.0, 60000.0, 500)
    W = F.filter_matrix(names, wave)
    assert W.shape == (4, 500)
    np.testing.assert_allclose(W.sum(axis=1), 1.0, rtol=1e-12)
    rng = np.random.default_rng(3)
    stack = rng.uniform(0.0, 1.0e-16, (3, 4, wave.size))
    got = F.synthetic_photometry(wave, stack, names)
    assert got.shape == (3, 4, 4)
    for i in range(3):
        for j in range(4):
            np.testing.assert_allclose(got[i, j], W @ stack[i, j], rtol=1e-12)
            np.testing.assert_allclose(got[i, j], F.synthetic_photometry(wave, stack[i, j], names),
                                       rtol=1e-12)


def test_grid_not_covering_a_filter_raises_naming_it():
    wave = np.linspace(4000.0, 8000.0, 100)
    with pytest.raises(InputError, match="sdss_z") as err:
        F.filter_matrix(["sdss_r", "sdss_z"], wave)
    assert "4000-8000" in str(err.value) and "sdss_r" not in str(err.value)
    with pytest.raises(InputError):
        F.synthetic_photometry(wave, np.ones(99), ["sdss_r"])
    with pytest.raises(InputError):
        F.filter_matrix(["sdss_r"], wave[::-1])


# --------------------------------------------------------------------------
# Unit conversions
# --------------------------------------------------------------------------


def test_unit_conversions():
    pivot = np.array([1535.0, 6175.0, 21600.0])
    # AB 0 is 3631 Jy; m_AB = -2.5 log10 f_nu - 48.60 in cgs
    np.testing.assert_allclose(F.flam_to_fnu(F.abmag_to_flam(0.0, pivot), pivot), 3631e-23,
                               rtol=1e-12)
    assert F.flam_to_abmag(F.fnu_to_flam(1.0, 5000.0), 5000.0) == pytest.approx(-48.60, abs=1e-3)
    flam = np.array([[1e-17, 2e-18, 3e-19]])
    np.testing.assert_allclose(F.fnu_to_flam(F.flam_to_fnu(flam, pivot), pivot), flam, rtol=1e-14)
    np.testing.assert_allclose(F.abmag_to_flam(F.flam_to_abmag(flam, pivot), pivot), flam,
                               rtol=1e-12)
    np.testing.assert_allclose(F.flam_to_maggies(flam, pivot),
                               10 ** (-0.4 * F.flam_to_abmag(flam, pivot)), rtol=1e-12)
    np.testing.assert_allclose(F.maggies_to_flam(F.flam_to_maggies(flam, pivot), pivot), flam,
                               rtol=1e-14)
    # f_nu = f_lambda lambda^2 / c with c in Angstrom/s
    assert F.flam_to_fnu(1.0, 1.0e4) == pytest.approx(1.0e8 / 2.99792458e18, rel=1e-12)
    assert np.isnan(F.flam_to_abmag(-1e-18, 5000.0))


# --------------------------------------------------------------------------
# User filters
# --------------------------------------------------------------------------


def test_add_rename_remove_round_trip(filter_dir):
    wave = np.array([5000.0, 5100.0, 5200.0, 5300.0])
    trans = np.array([0.0, 0.5, 0.7, 0.0])
    made = F.add_filter("MyBand", wave, trans)
    assert made.name == "MyBand"
    assert "MyBand" in F.list_filters()
    # stored as a 2-column text file in the user directory, nothing left over
    assert [p.name for p in filter_dir.iterdir()] == ["myband.dat"]
    data = np.loadtxt(filter_dir / "myband.dat")
    np.testing.assert_array_equal(data, np.column_stack([wave, trans]))
    back = F.get_filter("myband")
    assert back.name == "MyBand"
    np.testing.assert_array_equal(back.wavelength, wave)
    np.testing.assert_array_equal(back.transmission, trans)

    with pytest.raises(InputError, match="already exists"):
        F.add_filter("myband", wave, 2 * trans)
    F.add_filter("myband", wave, 2 * trans, overwrite=True)
    np.testing.assert_array_equal(F.get_filter("MyBand").transmission, 2 * trans)

    renamed = F.rename_filter("MyBand", "other_band")
    assert renamed.name == "other_band"
    assert "MyBand" not in F.list_filters() and "other_band" in F.list_filters()
    with pytest.raises(InputError, match="MyBand"):
        F.get_filter("MyBand")
    np.testing.assert_array_equal(F.get_filter("other_band").transmission, 2 * trans)

    F.remove_filter("OTHER_BAND")
    assert not any(filter_dir.iterdir())
    with pytest.raises(InputError, match="other_band"):
        F.get_filter("other_band")
    with pytest.raises(InputError):
        F.remove_filter("other_band")


def test_builtins_cannot_be_removed_or_shadowed_but_can_be_copied(filter_dir):
    with pytest.raises(InputError, match="built-in"):
        F.remove_filter("sdss_r")
    with pytest.raises(InputError, match="built-in"):
        F.add_filter("SDSS_R0", *top_hat(5000.0, 6000.0))
    copy = F.rename_filter("sdss_r", "my_r")
    np.testing.assert_array_equal(copy.transmission, F.get_filter("sdss_r").transmission)
    assert {"sdss_r", "my_r"} <= set(F.list_filters())
    assert (filter_dir / "my_r.dat").is_file()
    with pytest.raises(InputError, match="invalid filter name"):
        F.add_filter("../escape", *top_hat(5000.0, 6000.0))


def test_user_directory_location(tmp_path, monkeypatch, filter_dir):
    F.add_filter("box", *top_hat(5000.0, 6000.0))
    path = filter_dir / "box.dat"
    assert path.is_file()
    for key in ("purelib", "platlib"):
        site = Path(sysconfig.get_paths()[key]).resolve()
        assert site not in path.resolve().parents
    assert Path(sedmap.__file__).resolve().parent not in path.resolve().parents

    monkeypatch.delenv("SEDMAP_FILTER_DIR")
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    assert F.user_filter_dir() == tmp_path / "xdg" / "sedmap" / "filters"
    monkeypatch.delenv("XDG_DATA_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert F.user_filter_dir() == tmp_path / "home" / ".local" / "share" / "sedmap" / "filters"

    # refuse a directory inside the installed package (checked without writing)
    monkeypatch.setenv("SEDMAP_FILTER_DIR", str(Path(F.__file__).parent / "data"))
    with pytest.raises(InputError, match="SEDMAP_FILTER_DIR"):
        F.user_filter_dir()


# --------------------------------------------------------------------------
# Errors
# --------------------------------------------------------------------------


@pytest.mark.parametrize("typo, suggestion", [
    ("sdss_rr", "sdss_r"), ("galex_fu", "galex_fuv"), ("jwst_nircam_f200", "jwst_nircam_f200w"),
])
def test_unknown_filter_is_named_with_a_suggestion(typo, suggestion):
    with pytest.raises(InputError) as err:
        F.get_filter(typo)
    msg = str(err.value)
    assert f"'{typo}'" in msg
    assert f"'{suggestion}'" in msg
    assert "list_filters" in msg and "add_filter" in msg
    with pytest.raises(InputError, match=typo):
        F.synthetic_photometry(np.linspace(1000, 30000, 50), np.ones(50), ["sdss_r", typo])


@pytest.mark.parametrize("wave, trans, why", [
    ([5000.0, 4900.0, 5100.0], [0.1, 0.5, 0.1], "not strictly increasing"),
    ([5000.0, 5000.0, 5100.0], [0.1, 0.5, 0.1], "not strictly increasing"),
    ([4900.0, 5000.0, 5100.0], [0.1, -0.5, 0.1], "negative"),
    ([4900.0, 5000.0, 5100.0], [0.0, 0.0, 0.0], "zero everywhere"),
    ([4900.0, 5000.0, 5100.0], [0.1, np.nan, 0.1], "NaN"),
    ([4900.0, 5000.0, 5100.0], [0.1, 0.5], "equal length"),
    ([-5.0, 5000.0, 5100.0], [0.1, 0.5, 0.1], "positive"),
])
def test_bad_curves_raise_and_write_nothing(filter_dir, wave, trans, why):
    with pytest.raises(InputError, match=why) as err:
        F.add_filter("bad", wave, trans)
    assert "'bad'" in str(err.value)
    assert not filter_dir.exists() or not any(filter_dir.iterdir())


def test_corrupt_user_file_raises_naming_the_file(filter_dir):
    filter_dir.mkdir(parents=True)
    (filter_dir / "broken.dat").write_text("# sedmap filter: broken\n5000 0.1\n4000 0.2\n")
    with pytest.raises(InputError, match="broken.dat"):
        F.get_filter("broken")
