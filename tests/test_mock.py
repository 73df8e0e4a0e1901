"""The mock galaxy: determinism, truth consistency, survey noise recipes, geometry.

A reduced mock (small stamp, coarse fine grid, one band per survey) keeps
the module fast; the science checks hold for the default mock too.
"""

import copy
from pathlib import Path

import numpy as np
import pytest
import yaml
from astropy.io import fits
from astropy.wcs import WCS
from scipy import ndimage

from sedmap import mock
from sedmap.config import load_config
from sedmap.constants import C_AA_PER_S
from sedmap.errors import InputError
from sedmap.filters import get_filter
from sedmap.images.psf import load_psf, measure_fwhm
from sedmap.images.surveys import SURVEYS as READERS
from sedmap.images.surveys import load_band

BANDS = [
    {"filter": "galex_nuv", "survey": "galex", "pixscale": 1.5, "psf_fwhm": 5.3,
     "rotation_deg": 11.0, "offset_arcsec": [4.0, -3.0], "exptime": 1500.0, "sky": 5.0e-3},
    {"filter": "sdss_r", "survey": "sdss", "pixscale": 0.396, "psf_fwhm": 1.2,
     "rotation_deg": 4.5, "offset_arcsec": [-3.0, 2.0], "nmgy": 0.005, "sky": 125.0,
     "gain": 4.71, "darkvar": 1.8225},
    {"filter": "2mass_k", "survey": "2mass", "pixscale": 1.0, "psf_fwhm": 2.9,
     "rotation_deg": -2.5, "offset_arcsec": [2.0, 4.0], "magzp": 19.93, "sky": 200.0,
     "skysig": 0.91},
    {"filter": "wise_w1", "survey": "wise", "pixscale": 1.375, "psf_fwhm": 6.1,
     "rotation_deg": 9.0, "offset_arcsec": [-4.0, -2.0], "magzp": 20.5, "sky": 30.0,
     "skysig": 0.35, "gain": 40.0},
    {"filter": "hst_acs_f814w", "survey": "hst", "pixscale": 0.2, "psf_fwhm": 0.5,
     "rotation_deg": -20.0, "offset_arcsec": [1.0, 1.0], "photflam": 7.0e-20,
     "exptime": 2000.0, "skysig": 0.004},
    {"filter": "decam_g", "survey": "des", "pixscale": 0.263, "psf_fwhm": 1.1,
     "rotation_deg": 0.0, "offset_arcsec": [0.0, 0.0], "magzero": 30.0, "gain": 5.0,
     "skysig": 40.0},
    {"filter": "sdss_i", "survey": "generic", "pixscale": 0.5, "psf_fwhm": 1.0,
     "rotation_deg": 30.0, "offset_arcsec": [-1.0, 3.0], "bunit": "nJy", "skysig": 30.0,
     "poisson": 2.0},
]
CLUMPS = [
    {"offset_arcsec": [5.0, 3.0], "sigma_arcsec": 0.8, "mass_frac": 0.01,
     "params": {"log_age": -0.85, "log_tau": -0.7, "dust1": 1.5, "dust2": 0.8}},
    {"offset_arcsec": [-4.0, -5.0], "sigma_arcsec": 1.0, "mass_frac": 0.01,
     "params": {"log_age": -0.7, "log_tau": -0.5, "dust1": 1.2, "dust2": 0.7}},
]
MODELS = load_config()["models"]
CFG = {
    "stamp_arcsec": 80.0,
    "fine_pixscale": 0.5,
    "galaxy": {"log_mstar": 10.0, "disk_scale_arcsec": 4.5, "bulge_re_arcsec": 1.5},
    "clumps": CLUMPS,
    "stars": [{"offset_arcsec": [-28.0, 25.0], "mag": 17.0, "teff": 5000.0}],
    "bands": BANDS,
}
IFS = {"ifs": True, "ifs_cube": {"diameter_arcsec": 12.0, "wave_min": 4000.0,
                                 "wave_max": 6000.0, "R": 500.0}}


def _with(**over):
    cfg = copy.deepcopy(CFG)
    cfg.update(copy.deepcopy(over))
    return cfg


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("mock")
    out = {}
    for key, cfg in (("a", _with(**IFS)), ("b", _with(**IFS)),
                     ("c", _with(seed=2, cosmic_rays={"enabled": True, "count": 12}))):
        out[key] = mock.make_mock(cfg, root / key, models_config=MODELS, progress=False)
    out["root"] = root
    return out


@pytest.fixture(scope="module")
def noiseless():
    """Noiseless images as written (stars, extinction), native units."""
    return mock.noiseless_images(CFG, MODELS, stars=True, extinction=True)


@pytest.fixture(scope="module")
def galaxy_only():
    """The galaxy alone: without extinction, and with it."""
    return (mock.noiseless_images(CFG, MODELS, stars=False, extinction=False),
            mock.noiseless_images(CFG, MODELS, stars=False, extinction=True))


def _data(path, hdu=0):
    with fits.open(path) as h:
        return np.asarray(h[hdu].data, dtype=float), h[hdu].header.copy()


# --------------------------------------------------------------------------- files


def test_manifest_and_bands_yaml(runs):
    m = runs["a"]
    assert set(m["raw"]) == {get_filter(b["filter"]).name for b in BANDS}
    spec = yaml.safe_load(Path(m["bands"]).read_text())
    assert spec["galaxy"]["ra"] == mock.DEFAULT_MOCK["ra"]
    by = {b["filter"]: b for b in spec["bands"]}
    for b in BANDS:
        s = by[b["filter"]]
        assert s["survey"] == b["survey"] and s["psf_fwhm"] == b["psf_fwhm"]
        assert Path(s["file"]).is_file()
        assert "cosmic_rays" not in s
    assert Path(by["wise_w1"]["unc_file"]).is_file()
    assert Path(by["sdss_i"]["unc_file"]).is_file()
    assert by["hst_acs_f814w"]["hdu"] == "SCI" and by["decam_g"]["hdu"] == "SCI"
    with fits.open(m["raw"]["sdss_r"]) as h:
        assert h[1].data.shape == (h[0].data.shape[1],)
        assert {"ALLSKY", "XINTERP", "YINTERP"} <= set(h[2].columns.names)
        assert "DATE" not in h[0].header
    assert m["ifs"] is not None and runs["c"]["ifs"] is None
    c = {b["filter"]: b for b in yaml.safe_load(Path(runs["c"]["bands"]).read_text())["bands"]}
    assert c["sdss_r"]["cosmic_rays"] is True and c["hst_acs_f814w"]["cosmic_rays"] is True
    assert "cosmic_rays" not in c["galex_nuv"]


def test_deterministic(runs):
    a, b = Path(runs["root"]) / "a", Path(runs["root"]) / "b"
    files = sorted(p.relative_to(a) for p in a.rglob("*.fits"))
    assert len(files) == len(BANDS) + 2 + 2  # + wise/generic unc files, truth, ifs
    for rel in files:
        assert (a / rel).read_bytes() == (b / rel).read_bytes(), rel
    ya = (a / "bands.yaml").read_text().replace(str(a), "X")
    yb = (b / "bands.yaml").read_text().replace(str(b), "X")
    assert ya == yb


def test_seed_changes_noise_not_truth(runs):
    for name in runs["a"]["raw"]:
        da, _ = _data(runs["a"]["raw"][name], "SCI" if name in ("hst_acs_f814w",
                                                                 "decam_g") else 0)
        dc, _ = _data(runs["c"]["raw"][name], "SCI" if name in ("hst_acs_f814w",
                                                                 "decam_g") else 0)
        assert da.shape == dc.shape and not np.array_equal(da, dc)
    fa, _ = _data(runs["a"]["truth"], "FLUX_TRUE")
    fc, _ = _data(runs["c"]["truth"], "FLUX_TRUE")
    np.testing.assert_array_equal(fa, fc)


def test_bad_config_names_the_key():
    with pytest.raises(InputError, match=r"mock\.bands\[0\]\.survey"):
        mock.merge_mock_config({"bands": [dict(BANDS[0], survey="nosuch")]})
    with pytest.raises(InputError, match=r"mock\.bands\[1\]\.nmgy"):
        mock.merge_mock_config({"bands": [BANDS[0], {k: v for k, v in BANDS[1].items()
                                                     if k != "nmgy"}]})
    with pytest.raises(InputError, match=r"mock\.params\.nosuch"):
        mock.merge_mock_config({"gradients": {"nosuch": [0, 1]}})
    with pytest.raises(InputError, match=r"mock\.galaxy\.log_mass"):
        mock.merge_mock_config({"galaxy": {"log_mass": 10.0}})
    with pytest.raises(InputError, match=r"mock\.bands\[0\]\.expttime"):
        mock.merge_mock_config({"bands": [dict(BANDS[0], expttime=10.0)]})


# --------------------------------------------------------------------------- truth


def test_flux_conservation(runs, galaxy_only):
    """Noiseless native image (no extinction, no stars) sums to FLUX_TRUE, to 1%."""
    flux_true, head = _data(runs["a"]["truth"], "FLUX_TRUE")
    assert head["BUNIT"] == "1e-17 erg s-1 cm-2 AA-1"
    with fits.open(runs["a"]["truth"]) as h:
        names = [n.strip() for n in h["FILTERS"].data["name"]]
        units = dict(zip(names, h["BANDS"].data["flam_per_unit"]))
    gal = galaxy_only[0]
    for i, name in enumerate(names):
        img, _ = gal[name]
        native = img.sum() * units[name]
        assert native == pytest.approx(flux_true[i].sum() * 1e-17, rel=0.01), name


def test_extinction_and_units(runs, galaxy_only):
    """The written noiseless image is the galaxy dimmed by F99 at the pivot, in native units."""
    with fits.open(runs["a"]["truth"]) as h:
        a_lam = dict(zip([n.strip() for n in h["BANDS"].data["filter"]],
                         h["BANDS"].data["a_lambda"]))
        ebv = h[0].header["EBV"]
    gal, ext = galaxy_only
    for name in gal:
        ratio = ext[name][0].sum() / gal[name][0].sum()
        assert ratio == pytest.approx(10 ** (-0.4 * a_lam[name]), rel=1e-10)
        assert 0 < a_lam[name] < 10 * ebv
    assert a_lam["galex_nuv"] > a_lam["sdss_r"] > a_lam["2mass_k"] > a_lam["wise_w1"]


def test_total_mass_and_maps(runs):
    with fits.open(runs["a"]["truth"]) as h:
        logm = h["LOG_MASS_NOPSF"].data.astype(float)
        logsfr = h["LOG_SFR_NOPSF"].data.astype(float)
        age = h["AGE_MW_NOPSF"].data.astype(float)
        logm_psf = h["LOG_MASS"].data.astype(float)
        logmf_psf = h["LOG_MASS_FORMED"].data.astype(float)
        logz = h["LOGZ"].data.astype(float)
        av = h["AV"].data.astype(float)
        params = h["PARAMS"].data.astype(float)
        pnames = [h["PARAMS"].header[f"PARAM{i + 1}"] for i in range(params.shape[0])]
        wcs = WCS(h["LOG_MASS"].header)
        pix = h[0].header["PIXSIZE"]
        assert h["LOG_MASS"].header["BUNIT"] == "dex(solMass)"
    assert np.all(np.isfinite(logm)) and np.all(np.isfinite(logsfr))
    assert np.sum(10**logm) == pytest.approx(10 ** CFG["galaxy"]["log_mstar"], rel=0.01)
    # the PSF-matched truth keeps the mass (but for what the PSF spreads off the stamp)
    assert np.sum(10**logm_psf) == pytest.approx(np.sum(10**logm), rel=0.03)
    assert np.max(logm_psf) < np.max(logm)  # and is smoother
    # stars return mass to the gas: with a Chabrier IMF 0.4-0.6 of the mass formed
    # survives in populations of several Gyr
    ratio = 10 ** (logmf_psf - logm_psf)[np.isfinite(logmf_psf)]
    assert 1.6 < ratio.min() and ratio.max() < 2.5

    ny, nx = logm.shape
    cy, cx = (ny - 1) // 2, (nx - 1) // 2
    x, y = wcs.wcs_world2pix(mock.DEFAULT_MOCK["ra"], mock.DEFAULT_MOCK["dec"], 0)
    assert (float(x), float(y)) == pytest.approx((cx, cy), abs=1e-6)
    # clumps: SFR far above the mirror position on the other side of the centre
    ssfr = logsfr - logm
    for c in CLUMPS:
        dx, dy = c["offset_arcsec"]
        px, py = round(cx - dx / pix), round(cy + dy / pix)
        mx, my = round(cx + dx / pix), round(cy - dy / pix)
        assert logsfr[py, px] > logsfr[my, mx] + 0.2
        assert ssfr[py, px] > ssfr[my, mx] + 0.2
    # gradients as configured: centre older, more metal-rich and dustier than 4 scale lengths
    yy, xx = np.mgrid[:ny, :nx]
    r = np.hypot(xx - cx, yy - cy) * pix
    ring = (r > 15) & (r < 20)
    centre = r < 1.0
    assert age[centre].mean() > age[ring].mean() + 2.0
    assert logz[centre].mean() > logz[ring].mean() + 0.2
    assert av[centre].mean() > av[ring].mean() + 0.2
    # A_V = 2.5 log10(e) dust2 (1.0857...), mass-weighted as dust2 is
    assert np.allclose(params[pnames.index("dust2")] * 2.5 / np.log(10), av, atol=1e-5)
    g = mock.DEFAULT_MOCK["gradients"]["log_age"]
    # PARAMS are at the target PSF: the centre mixes in younger disc light
    assert g[0] - 0.15 < np.median(params[pnames.index("log_age")][centre]) < g[0] + 0.01


# --------------------------------------------------------------------------- noise


def _recipe_variance(band, path):
    """docs/surveys.md variance of each pixel, from the file and its header keys only."""
    survey = band["survey"]
    hdu = "SCI" if survey in ("hst", "des") else 0
    data, h = _data(path, hdu)
    if survey == "galex":
        sky = np.median(data)  # the background the pipeline subtracts
        return data - sky, np.maximum(data, 0.0) / h["EXPTIME"]
    if survey == "sdss":
        with fits.open(path) as f:
            calib = np.asarray(f[1].data, dtype=float)[None, :]
            tab = f[2].data
            allsky = np.asarray(tab["ALLSKY"][0], dtype=float)
            xi, yi = tab["XINTERP"][0], tab["YINTERP"][0]
        rows, cols = np.meshgrid(yi, xi, indexing="ij")
        sky = ndimage.map_coordinates(allsky, [rows, cols], order=1, mode="nearest")
        dn = data / calib + sky
        return data, (dn / h["GAIN"] + h["DARKVAR"]) * calib**2
    if survey == "2mass":
        s = data - h["SKYVAL"]
        return s, np.maximum(s, 0) / (h.get("GAIN", 10.0) * h.get("NFRAMES", 6)) \
            + h["SKYSIG"] ** 2
    if survey in ("wise", "generic"):
        unc, _ = _data(Path(path).with_name(Path(path).stem + "_unc.fits"))
        return data - h.get("SKYVAL", 0.0), unc**2
    wname, per = ("WHT", h["EXPTIME"]) if survey == "hst" else ("WGT", h["GAIN"])
    w, _ = _data(path, wname)
    return data, 1.0 / w + np.maximum(data, 0.0) / per


@pytest.mark.parametrize("band", BANDS, ids=[b["filter"] for b in BANDS])
def test_noise_matches_recipe(runs, noiseless, band):
    name = band["filter"]
    path = runs["a"]["raw"][name]
    resid, var = _recipe_variance(band, path)
    signal = noiseless[name][0]
    # sky-only: the galaxy's light is below 0.1 sigma (and is removed exactly)
    sky_only = signal < 0.1 * np.sqrt(np.median(var))
    sky_only &= ndimage.binary_erosion(np.ones_like(sky_only), iterations=3)
    assert sky_only.sum() > 1500
    noise = resid[sky_only] - signal[sky_only]
    std = np.std(noise - np.mean(noise))
    assert std == pytest.approx(np.sqrt(np.mean(var[sky_only])), rel=0.05)
    # and the whole image is noiseless signal + Gaussian noise of the recipe's variance
    # evaluated on the noiseless image (source Poisson terms included)
    z = (resid - signal) / np.sqrt(mock.native_variance(band, signal))
    assert np.std(z) == pytest.approx(1.0, abs=0.03)


def test_cosmic_rays(runs, noiseless):
    """Only the configured surveys get hits, each >= 30 sigma of the noiseless variance."""
    for band in BANDS:
        name = band["filter"]
        sigma = np.sqrt(mock.native_variance(band, noiseless[name][0]))
        hits = []
        for run in ("a", "c"):
            resid, _ = _recipe_variance(band, runs[run]["raw"][name])
            if band["survey"] == "galex":
                resid = resid - np.median(resid - noiseless[name][0])
            hits.append(int(np.sum((resid - noiseless[name][0]) / sigma > 25)))
        assert hits[0] == 0, name
        if band["survey"] in ("sdss", "hst"):
            assert 12 <= hits[1] <= 24, name
        else:
            assert hits[1] == 0, name


# --------------------------------------------------------------------------- geometry


def _pa(w, x, y):
    """Position angle (deg, east of north) of the +y pixel axis at (x, y)."""
    ra, dec = w.wcs_pix2world([x, x], [y, y + 10.0], 0)
    xi, eta = mock._gnomonic(ra[1], dec[1], ra[0], dec[0])
    return np.degrees(np.arctan2(xi, eta))


def test_wcs_centres_and_rotations(runs):
    ra0, dec0 = mock.DEFAULT_MOCK["ra"], mock.DEFAULT_MOCK["dec"]
    cfg = copy.deepcopy(CFG)
    cfg["clumps"], cfg["stars"] = [], []
    images = mock.noiseless_images(cfg, MODELS, stars=False, extinction=False)
    pas = []
    for band in BANDS:
        name = band["filter"]
        hdu = "SCI" if band["survey"] in ("hst", "des") else 0
        data, head = _data(runs["a"]["raw"][name], hdu)
        w = WCS(head)
        ny, nx = data.shape
        ra, dec = w.wcs_pix2world((nx - 1) / 2, (ny - 1) / 2, 0)
        off = mock._gnomonic(ra, dec, ra0, dec0)
        assert off == pytest.approx(tuple(band["offset_arcsec"]), abs=0.01)
        pas.append(_pa(w, (nx - 1) / 2, (ny - 1) / 2))
        assert pas[-1] == pytest.approx(band["rotation_deg"], abs=0.01)
        scale = np.sqrt(abs(np.linalg.det(w.pixel_scale_matrix))) * 3600
        assert scale == pytest.approx(band["pixscale"], rel=1e-6)
        # the galaxy (no clumps, no stars) is centred on (ra, dec)
        img, wi = images[name]
        assert img.shape == data.shape
        gx, gy = w.wcs_world2pix(ra0, dec0, 0)
        yy, xx = np.mgrid[:ny, :nx]
        window = np.hypot(xx - gx, yy - gy) * band["pixscale"] < 15.0
        cy, cx = ndimage.center_of_mass(img * window)
        assert np.hypot(cx - gx, cy - gy) < 0.3, name
        assert np.allclose(wi.wcs.crval, w.wcs.crval)
    assert len(set(np.round(pas, 3))) == len(BANDS)


def test_stars_where_catalogued(runs, noiseless, galaxy_only):
    with fits.open(runs["a"]["truth"]) as h:
        stars = h["STARS"].data
        names = [n.strip() for n in h["FILTERS"].data["name"]]
    assert len(stars) == 1
    gal = galaxy_only[1]
    for i, name in enumerate(names):
        img, w = noiseless[name]
        star = img - gal[name][0]
        cy, cx = ndimage.center_of_mass(star)
        x, y = w.wcs_world2pix(stars["ra"][0], stars["dec"][0], 0)
        assert np.hypot(cx - x, cy - y) < 0.05
        unit = mock.flam_per_native_unit(BANDS[i])
        piv = get_filter(name).pivot_wavelength
        mag = -2.5 * np.log10(star.sum() * unit * piv**2 / C_AA_PER_S) - 48.60
        assert mag == pytest.approx(stars["mag"][0][i], abs=0.002)
        if name == "sdss_r":
            assert mag == pytest.approx(17.0, abs=0.002)


# --------------------------------------------------------------------------- IFS


def test_ifs_cube(runs):
    with fits.open(runs["a"]["ifs"]) as h:
        flux = h["FLUX"].data.astype(float)
        ivar = h["IVAR"].data.astype(float)
        mask = h["MASK"].data
        wave = h["WAVE"].data
        head = h["FLUX"].header
        assert h[0].header["EBVGAL"] == mock.DEFAULT_MOCK["ebv"]
    assert head["BUNIT"] == "1E-17 erg/s/cm^2/Ang/spaxel"
    assert flux.shape == ivar.shape == mask.shape and flux.shape[0] == wave.size
    assert wave[0] == pytest.approx(4000.0) and wave[-1] <= 6000.0
    assert np.allclose(np.diff(np.log(wave)), 1 / 500.0)
    w = WCS(head).celestial
    n = flux.shape[1]
    x, y = w.wcs_world2pix(mock.DEFAULT_MOCK["ra"], mock.DEFAULT_MOCK["dec"], 0)
    assert (float(x), float(y)) == pytest.approx(((n - 1) / 2 + 2.0, (n - 1) / 2 + 1.0),
                                                 abs=1e-6)  # cube centred 1" E, 0.5" S of it
    good = mask[0] == 0
    assert np.all(ivar[:, good] > 0) and np.all(ivar[:, ~good] == 0)
    assert np.all(mask[:, ~good] == 1025) and np.all(flux[:, ~good] == 0)
    # hexagon of 12" corner to corner at 0.5"/spaxel: area 3 sqrt(3)/2 * 6^2 arcsec^2
    assert good.sum() * 0.25 == pytest.approx(1.5 * np.sqrt(3) * 36, rel=0.08)
    snr = np.median(flux[:, round(float(y)), round(float(x))]
                    * np.sqrt(ivar[:, round(float(y)), round(float(x))]))
    assert snr > 5


def test_mock_sfh_is_independent_of_the_fit_models():
    """mock.sfh makes the truth with its own SFH family and the library's full
    ranges, whatever SFH and ranges the fit's models section has."""
    cfg = mock.merge_mock_config({"sfh": "delayed_tau_burst"})
    fit_models = {"sfh": "continuity", "params": {"log_age": 1.1}, "draw": {"x": {}},
                  "wavelength": {"R": 100}}
    made = mock._mock_models(cfg, fit_models)
    assert made["sfh"] == "delayed_tau_burst" and made["params"] == {} and "draw" not in made
    assert made["wavelength"] == {"R": 100} and fit_models["sfh"] == "continuity"
    assert mock._mock_models(mock.merge_mock_config(), fit_models)["sfh"] == "continuity"
    with pytest.raises(InputError, match="mock.sfh"):
        mock.merge_mock_config({"sfh": "boxy"})


def test_mock_rule_depends_on_the_models_keys_the_mock_uses():
    """The mock rule's models param (what re-makes the mock when it changes) leaves
    out the grid's draws and chunking, and the fit's SFH and ranges when the mock
    has its own SFH."""
    from sedmap.mock.settings import mock_models_section

    models = {"sfh": "continuity", "params": {"log_age": 1.1}, "draw": {"x": {}}, "seed": 3,
              "n_models": 1000, "chunk_size": 100, "wavelength": {"R": 100}, "imf": "chabrier"}
    own = mock_models_section(models, {})
    assert own == {"sfh": "continuity", "params": {"log_age": 1.1},
                   "wavelength": {"R": 100}, "imf": "chabrier"}
    assert mock_models_section(models, {"sfh": "delayed_tau"}) == {"wavelength": {"R": 100},
                                                                   "imf": "chabrier"}


def test_continuity_mock_grows_inside_out():
    """A mock made in the continuity family (the demo's): with every SFR ratio 0 the
    history is constant from the start, so the mass-weighted age is half of it;
    with the demo's gradients (the centre's SFR fell) the centre is older and has
    a lower SFR per unit mass than the outskirts, and a clump whose last-100-Myr
    SFR is 100x the next bin's has a far higher one."""
    from sedmap.config import load_config
    from sedmap.models import model_from_config

    mc = load_config()["models"]
    mc.update(sfh="continuity", continuity_young_gyr=[0.1], params={"log_age": 1.1})
    flat = mock.MockGalaxy(mock.merge_mock_config(), model_from_config(mc), mc)
    assert np.allclose(flat.age_mw[:flat.nbin], 10 ** 1.1 / 2, rtol=1e-3)

    demo_yaml = Path(__file__).parents[1] / "config" / "galaxies" / "demo.yaml"
    demo = yaml.safe_load(demo_yaml.read_text())["mock"]["settings"]
    cfg = mock.merge_mock_config({"gradients": demo["gradients"], "clumps": demo["clumps"][:1]})
    gal = mock.MockGalaxy(cfg, model_from_config(mc), mc)
    r_in, r_out = 0, int(3.0 * gal.h / gal.dr)  # centre, 3 scale lengths
    assert gal.age_mw[r_in] > gal.age_mw[r_out] + 1.0
    assert gal.age_mw[r_out] == pytest.approx(10 ** 1.1 / 2, abs=0.5)  # nearly flat there
    assert gal.sfr[r_in] < gal.sfr[r_out] / 2
    assert gal.sfr[gal.nbin] > 20 * gal.sfr[r_out]  # the clump


# --------------------------------------------------------------------------- infrared, wide-field

IRAC_PSF = Path(__file__).resolve().parents[2] / "shared" / "realdata" / "psf" / \
    "irac_ch1_flight.fits"
#: one band of each survey the mock writes besides the seven above: Spitzer IRAC (through
#: its in-flight PSF where ../shared/realdata is present) and MIPS, Herschel PACS and
#: SPIRE, JWST MIRI, HSC (a Moffat PSF) and the Legacy Surveys
NEW_BANDS = [
    {"filter": "spitzer_irac_36", "survey": "spitzer", "pixscale": 0.6, "psf_fwhm": 1.66,
     "rotation_deg": 14.0, "offset_arcsec": [2.0, 1.0], "sky": 0.1, "skysig": 0.004,
     "poisson": 1e-3,
     **({"psf_file": str(IRAC_PSF), "psf_pixscale": 0.30525} if IRAC_PSF.is_file() else {})},
    {"filter": "spitzer_mips_24", "survey": "spitzer", "pixscale": 1.5, "psf_fwhm": 6.0,
     "rotation_deg": -20.0, "offset_arcsec": [-2.0, 2.0], "sky": 20.0, "skysig": 0.01},
    {"filter": "herschel_pacs_100", "survey": "herschel", "pixscale": 1.6, "psf_fwhm": 6.9,
     "rotation_deg": 30.0, "offset_arcsec": [1.0, -2.0], "sky": 1e-3, "skysig": 5e-5},
    {"filter": "herschel_spire_250", "survey": "herschel", "pixscale": 6.0, "psf_fwhm": 18.0,
     "rotation_deg": 12.0, "offset_arcsec": [3.0, 3.0], "sky": 0.05, "skysig": 1e-3},
    {"filter": "jwst_miri_f770w", "survey": "jwst", "pixscale": 0.11, "psf_fwhm": 0.27,
     "rotation_deg": -5.0, "offset_arcsec": [0.5, 0.5], "sky": 20.0, "skysig": 0.02,
     "poisson": 1e-3},
    {"filter": "hsc_i", "survey": "hsc", "pixscale": 0.168, "psf_fwhm": 0.6,
     "psf_model": "moffat", "moffat_beta": 3.5, "rotation_deg": 3.0,
     "offset_arcsec": [-1.0, 0.0], "skysig": 0.05, "gain": 300.0},
    {"filter": "decam_r", "survey": "legacy", "pixscale": 0.262, "psf_fwhm": 1.3,
     "rotation_deg": 0.0, "offset_arcsec": [0.0, -1.0], "skysig": 0.002, "gain": 3500.0},
]
NEW_CFG = _with(bands=NEW_BANDS, stars=[{"offset_arcsec": [-25.0, 22.0], "mag": 15.0,
                                         "teff": 5000.0}])


@pytest.fixture(scope="module")
def new_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("mock_new")
    return mock.make_mock(NEW_CFG, out, models_config=MODELS, progress=False)


def test_new_surveys_files_and_specs(new_run):
    """Each survey's files and band-spec roles: Spitzer's uncertainty map, the Legacy
    Surveys' inverse-variance map and gain, the PSF keys passed on, HDU layouts."""
    by = {b["filter"]: b for b in yaml.safe_load(Path(new_run["bands"]).read_text())["bands"]}
    assert set(by) == {b["filter"] for b in NEW_BANDS}
    assert Path(by["spitzer_irac_36"]["unc_file"]).is_file()
    assert Path(by["decam_r"]["weight_file"]).is_file() and by["decam_r"]["gain"] == 3500.0
    assert by["hsc_i"]["psf_model"] == "moffat" and by["hsc_i"]["moffat_beta"] == 3.5
    if IRAC_PSF.is_file():
        assert by["spitzer_irac_36"]["psf_file"] == str(IRAC_PSF)
        assert by["spitzer_irac_36"]["psf_pixscale"] == 0.30525
    with fits.open(new_run["raw"]["herschel_spire_250"]) as h:
        assert [x.name for x in h] == ["PRIMARY", "IMAGE", "ERROR"]
        assert h["IMAGE"].header["BUNIT"] == "Jy/beam" and h[0].header["DETECTOR"] == "PSW"
    with fits.open(new_run["raw"]["herschel_pacs_100"]) as h:
        assert h["IMAGE"].header["BUNIT"] == "Jy/pixel" and h[0].header["WAVELNTH"] == 100.0
    with fits.open(new_run["raw"]["jwst_miri_f770w"]) as h:
        assert {"SCI", "ERR", "WHT", "VAR_POISSON", "VAR_RNOISE"} <= {x.name for x in h}
        assert h["SCI"].header["PIXAR_SR"] == pytest.approx((0.11 / 206264.806) ** 2)
        assert h[0].header["FILTER"] == "F770W"
    with fits.open(new_run["raw"]["hsc_i"]) as h:
        assert [x.name for x in h] == ["PRIMARY", "IMAGE", "MASK", "VARIANCE"]
        assert h[0].header["FLUXMAG0"] == pytest.approx(10 ** (0.4 * 27.0))
        assert h["MASK"].header["MP_NO_DATA"] == 8 and not h["MASK"].data.any()


def test_new_surveys_read_back_in_physical_units(new_run):
    """Every band as the imaging stage reads it (load_band on its bands.yaml entry):
    the galaxy's light (noiseless, as written) comes back in erg/s/cm^2/AA within
    1% inside 12" of the centre, and the noise has the stated variance."""
    specs = yaml.safe_load(Path(new_run["bands"]).read_text())["bands"]
    noiseless = mock.noiseless_images(NEW_CFG, MODELS, stars=True, extinction=True)
    for band, spec in zip(NEW_BANDS, specs):
        read = load_band(spec)
        img, w = noiseless[band["filter"]]
        truth = img * mock.flam_per_native_unit(band)
        assert read.meta["flam_per_native"] == pytest.approx(
            mock.flam_per_native_unit(band), rel=1e-6)
        x0, y0 = w.wcs_world2pix(mock.DEFAULT_MOCK["ra"], mock.DEFAULT_MOCK["dec"], 0)
        yy, xx = np.indices(img.shape)
        core = np.hypot(xx - x0, yy - y0) * band["pixscale"] < 12.0
        assert np.sum(read.data[core]) == pytest.approx(np.sum(truth[core]), rel=0.01), \
            band["filter"]
        sky = ~core & (np.hypot(xx - x0, yy - y0) * band["pixscale"] > 30.0) & ~read.mask
        z = (read.data - truth)[sky] / np.sqrt(read.var[sky])
        assert 0.9 < np.std(z) < 1.1, band["filter"]


def test_infrared_bands_see_the_models_dust_emission():
    """The infrared light is the fit's own DL07 dust emission (energy balance): without
    models.dust_emission the mock's galaxy is > 20x fainter at 24, 100 and 250 um
    (what is left: the stars' Rayleigh-Jeans tail and the nebular continuum)."""
    cfg = _with(bands=NEW_BANDS[1:4], stars=[])
    dusty = mock.noiseless_images(cfg, MODELS, stars=False, extinction=False)
    bare = mock.noiseless_images(cfg, {**MODELS, "dust_emission": False}, stars=False,
                                 extinction=False)
    for name in ("spitzer_mips_24", "herschel_pacs_100", "herschel_spire_250"):
        assert dusty[name][0].sum() > 20 * bare[name][0].sum(), name


def test_truth_has_the_dust_maps_where_bands_see_the_dust(runs, new_run):
    """LOG_MDUST (its total the populations' dust masses, energy balance) and the
    dust-mass-weighted DL07 parameters are in the truth of a mock with far-infrared
    bands; the seven-survey mock (bands to WISE W1, 3.4 um) has none."""
    with fits.open(runs["a"]["truth"]) as h:
        assert "LOG_MDUST" not in h and "LOG_UMIN" not in h
    with fits.open(new_run["truth"]) as h:
        mdust = 10 ** h["LOG_MDUST_NOPSF"].data.astype(float)
        mdust_psf = 10 ** h["LOG_MDUST"].data.astype(float)
        mass = 10 ** h["LOG_MASS_NOPSF"].data.astype(float)
        umin = h["LOG_UMIN"].data.astype(float)
        assert h["LOG_MDUST"].header["BUNIT"] == "dex(solMass)"
        assert {"LOG_GAMMA", "LOG_QPAH"} <= {x.name for x in h}
    ratio = np.sum(mdust) / np.sum(mass)
    assert 1e-4 < ratio < 1e-1        # dust-to-stellar mass of a star-forming disc
    assert np.sum(mdust_psf) == pytest.approx(np.sum(mdust), rel=0.03)
    assert np.nanmin(umin) >= -1.0 - 1e-6 and np.nanmax(umin) <= np.log10(25.0) + 1e-6


def test_psf_file_and_moffat_are_what_the_bands_are_rendered_with(new_run):
    """A star in the IRAC band has the in-flight PSF's FWHM and in the HSC band the
    Moffat's, each with the catalogued magnitude (flux conserved)."""
    noiseless = mock.noiseless_images(NEW_CFG, MODELS, stars=True, extinction=True)
    galaxy = mock.noiseless_images(NEW_CFG, MODELS, stars=False, extinction=True)
    with fits.open(new_run["truth"]) as h:
        mags = dict(zip([n.strip() for n in h["FILTERS"].data["name"]], h["STARS"].data["mag"][0]))
    for band in (NEW_BANDS[0], NEW_BANDS[5]):
        name = band["filter"]
        star = noiseless[name][0] - galaxy[name][0]
        unit = mock.flam_per_native_unit(band)
        piv = get_filter(name).pivot_wavelength
        mag = -2.5 * np.log10(star.sum() * unit * piv**2 / C_AA_PER_S) - 48.60
        assert mag == pytest.approx(mags[name], abs=0.01), name
        cy, cx = np.unravel_index(np.argmax(star), star.shape)
        cut = star[cy - 15:cy + 16, cx - 15:cx + 16]
        want = band["psf_fwhm"]
        if "psf_file" in band:
            want = measure_fwhm(load_psf(band["psf_file"], band["psf_pixscale"],
                                         to_pixscale=band["pixscale"]), band["pixscale"])
        assert measure_fwhm(cut, band["pixscale"]) == pytest.approx(want, rel=0.1), name


def test_airy_band_is_rendered_with_its_fwhm():
    """A NIRCam F444W-like band with psf_model: airy (eps 0.11; 0.03" pixels, so the
    0.145" FWHM spans ~5 pixels): a star drawn on it has the requested FWHM (within 3%;
    the pixel box adds 0.5%) and the star's flux, and the band spec passes the model
    and its obscuration on to the imaging stage."""
    from sedmap.mock.psf import point_sources, psf_kernel

    band = {"filter": "jwst_nircam_f444w", "survey": "jwst", "pixscale": 0.03,
            "psf_fwhm": 0.145, "psf_model": "airy", "psf_obscuration": 0.11,
            "sky": 0.1, "skysig": 0.01}
    band = mock.merge_mock_config({"bands": [band]})["bands"][0]
    star = point_sources((241, 241), 1, [(120.0, 120.0)], [1.0], band)  # 7.2" across
    assert star.sum() == pytest.approx(1.0, abs=1e-3)
    assert measure_fwhm(star, band["pixscale"]) == pytest.approx(0.145, rel=0.03)
    # the same pattern convolves the galaxy's sub-pixels: the requested FWHM there too
    sub = 0.01
    assert measure_fwhm(psf_kernel(band, sub), sub) == pytest.approx(0.145, rel=0.02)
    spec = mock.mock_band_specs(_with(bands=[band]), "raw")[0]
    assert spec["psf_model"] == "airy" and spec["psf_obscuration"] == 0.11


def test_new_band_settings_are_checked():
    with pytest.raises(InputError, match=r"mock\.bands\[0\]\.filter"):
        mock.merge_mock_config({"bands": [dict(NEW_BANDS[1], filter="wise_w1")]})
    with pytest.raises(InputError, match=r"mock\.bands\[0\]\.nmgy"):
        mock.merge_mock_config({"bands": [dict(NEW_BANDS[1], nmgy=0.005)]})
    with pytest.raises(InputError, match=r"mock\.bands\[0\]\.psf_file"):
        mock.merge_mock_config({"bands": [dict(NEW_BANDS[1], psf_file="nosuch.fits",
                                               psf_pixscale=0.3)]})
    with pytest.raises(InputError, match=r"mock\.bands\[0\]\.psf_model"):
        mock.merge_mock_config({"bands": [dict(NEW_BANDS[1], psf_model="kolmogorov")]})
    for eps in (1.0, -0.05, "0.1", True):
        with pytest.raises(InputError, match=r"mock\.bands\[0\]\.psf_obscuration.*\[0, 1\)"):
            mock.merge_mock_config({"bands": [dict(NEW_BANDS[1], psf_model="airy",
                                                   psf_obscuration=eps)]})
    with pytest.raises(InputError, match=r"mock\.bands\[0\]\.skysig"):
        mock.merge_mock_config({"bands": [{k: v for k, v in NEW_BANDS[6].items()
                                           if k != "skysig"}]})


def test_every_survey_is_one_object():
    """The mock's per-survey knowledge is in one registry of MockSurvey objects: each
    writes what the reader of the same name reads, and names its depth keys."""
    for name, survey in mock.MOCK_SURVEYS.items():
        assert isinstance(survey, mock.MockSurvey) and survey.name == name
        assert survey.sky_in_image == READERS[name].sky_in_image, name
        assert survey.depth_keys, name
    assert tuple(mock.MOCK_SURVEYS) == mock.SURVEYS


def test_truth_grid_is_the_imaging_stages():
    """The truth maps' pixel and PSF: the coarsest native pixel and the widest band
    PSF after reprojection (FWHM widened in quadrature by one native pixel box,
    sigma^2 += p^2 / 12), or the images section's settings where given."""
    from sedmap.mock.truth import truth_grid

    bands = [{"pixscale": 0.4, "psf_fwhm": 1.3}, {"pixscale": 1.5, "psf_fwhm": 5.3},
             {"pixscale": 2.75, "psf_fwhm": 5.25}]
    box = [np.sqrt(p**2 / 12.0) * 2.0 * np.sqrt(2.0 * np.log(2.0)) for p in (1.5, 2.75)]
    pix, fwhm = truth_grid(bands)
    assert pix == 2.75
    # the 2.75" pixels' box makes the 5.25" band the widest on the grid
    assert fwhm == pytest.approx(np.hypot(5.25, box[1]), rel=1e-12)
    assert fwhm > np.hypot(5.3, box[0])
    assert truth_grid(bands, pixel_scale=2.0, target_psf_fwhm=7.0) == (2.0, 7.0)
