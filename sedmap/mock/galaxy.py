"""The model galaxy: an exponential disk and a cored Sersic bulge with radial gradients
of their SPS parameters, plus Gaussian star-forming clumps; the surviving mass of each
population in any sub-pixel and its photometry."""

import itertools

import numpy as np
from scipy.integrate import quad
from scipy.special import gammaincinv

from ..sps import PARAM_INFO
from .settings import _bad


def _sersic_norm(n, re, rc):
    """1 / (integral over the plane of exp(-b (sqrt(r^2+rc^2)/re)^(1/n))) for q = 1."""
    b = gammaincinv(2 * n, 0.5)

    def f(r):
        return r * np.exp(-b * (np.sqrt(r * r + rc * rc) / re) ** (1.0 / n))

    edges = [0.0, rc, re, 10 * re, 100 * re, np.inf]
    tot = sum(quad(f, lo, hi, limit=200)[0] for lo, hi in itertools.pairwise(edges))
    return b, 1.0 / (2 * np.pi * tot)


class MockGalaxy:
    """The continuous galaxy model and its SPS populations.

    Parameters
    ----------
    cfg : dict
        A merged mock config (:func:`merge_mock_config`).
    model : sedmap.sps.SPSModel
    models_config : dict, optional
        The ``models`` section: parameter ranges there (``[min, max]``) clip the
        mock's parameters, and fixed values (one number) replace them, so the
        truth is reachable by the model grid.
    """

    def __init__(self, cfg, model, models_config=None):
        self.cfg, self.model = cfg, model
        g = cfg["galaxy"]
        self.z = float(cfg["z"])
        self.mtot = 10 ** g["log_mstar"]
        self.h = g["disk_scale_arcsec"]
        self.q = g["axis_ratio"]
        self.qb = g["bulge_axis_ratio"]
        pa = np.radians(g["pa_deg"])
        self.sin_pa, self.cos_pa = np.sin(pa), np.cos(pa)
        self.clumps = cfg["clumps"]
        fclump = sum(c["mass_frac"] for c in self.clumps)
        self.m_bulge = g["bulge_frac"] * self.mtot
        self.m_disk = self.mtot * (1 - g["bulge_frac"] - fclump)
        self.bulge_b, self.bulge_norm = _sersic_norm(
            g["bulge_sersic_n"], g["bulge_re_arcsec"], g["bulge_core_arcsec"])
        self._ranges = self._param_ranges(models_config or {})

        # radial bins of the disk+bulge population
        self.dr = cfg["gradient_step_arcsec"]
        rmax = 1.5 * cfg["stamp_arcsec"] / min(self.q, self.qb) + 50.0
        self.nbin = int(np.ceil(rmax / self.dr)) + 1
        r = (np.arange(self.nbin) + 0.5) * self.dr
        main = self._params_at(np.minimum(r / self.h, cfg["gradient_rmax_scales"]))
        # a clump takes the disk's parameters at its radius unless it overrides them
        # (it shares the diffuse dust there; its birth clouds are its own: dust1)
        clump = [self._params_at(np.minimum(self._radius(*c["offset_arcsec"]) / self.h,
                                            cfg["gradient_rmax_scales"]),
                                 c.get("params", {})) for c in self.clumps]
        self.param_names = list(model.param_names)
        # all populations stacked: rows 0..nbin-1 = radial bins, then one per clump
        self.params = {k: np.concatenate([main[k]] + [c[k] for c in clump])
                       for k in self.param_names}
        model.check_params(self.params, z=self.z)
        der = model.derived(self.params)
        self.surv = der["surviving_mass"]          # per Msun formed
        self.sfr = der["sfr_100myr"] / self.surv    # Msun/yr per Msun surviving
        self.age_mw = der["mass_weighted_age"]      # Gyr
        self.mdust = der["dust_mass"] / self.surv   # Msun of dust per Msun surviving (NaN
        #                                             without models.dust_emission)
        self._phot = {}

    # ------------------------------------------------------------ parameters
    def _param_ranges(self, mc):
        tmax = np.log10(self.model.age_of_universe(self.z)) - 1e-6
        out = {}
        cfg_ranges = mc.get("params", {})
        for name in self.model.param_names:
            lo, hi = PARAM_INFO[name][0]
            v = cfg_ranges.get(name)
            if v is not None and np.isscalar(v):
                lo = hi = float(v)
            elif v is not None:
                lo, hi = max(lo, float(v[0])), min(hi, float(v[1]))
            if name == "log_age":
                hi = min(hi, tmax)
                lo = min(lo, hi)
            out[name] = (lo, hi)
        return out

    def _params_at(self, x, override=None):
        """Parameters (dict of arrays) at radii x (disk scale lengths), clipped."""
        cfg = self.cfg
        out = {}
        for name in self.model.param_names:
            if override and name in override:
                v = np.full(x.shape, float(override[name]))
            elif name in cfg["gradients"]:
                c, s = cfg["gradients"][name]
                v = c + s * x
            elif name in cfg["params"]:
                v = np.full(x.shape, float(cfg["params"][name]))
            else:
                raise _bad(f"params.{name}", f"no value for SPS parameter '{name}' "
                           f"(needed by sfh={self.model.sfh.name}, dust_law={self.model.dust_law})",
                           "add it to mock.params")
            lo, hi = self._ranges[name]
            out[name] = np.clip(v, lo, hi)
        return out

    # ------------------------------------------------------------ structure
    def _radius(self, xi, eta):
        """Deprojected disk radius (arcsec) at offsets (east, north) arcsec."""
        u = np.asarray(xi) * self.sin_pa + np.asarray(eta) * self.cos_pa
        v = np.asarray(xi) * self.cos_pa - np.asarray(eta) * self.sin_pa
        return np.atleast_1d(np.sqrt(u * u + (v / self.q) ** 2))

    def sample(self, xi, eta, area):
        """Surviving mass (Msun) of each population in sub-pixels at (xi, eta) arcsec.

        Returns
        -------
        rbin : int array
            Radial-bin index (population row) of the disk+bulge population.
        m_main : array
            Disk + bulge surviving mass in each sub-pixel.
        m_clumps : list of arrays
            Surviving mass of each clump.
        """
        g = self.cfg["galaxy"]
        u = xi * self.sin_pa + eta * self.cos_pa      # along the major axis
        v = xi * self.cos_pa - eta * self.sin_pa      # along the minor axis
        r = self._radius(xi, eta).reshape(np.shape(u))
        rb = np.sqrt(u * u + (v / self.qb) ** 2 + g["bulge_core_arcsec"] ** 2)
        m_main = (self.m_disk / (2 * np.pi * self.h**2 * self.q) * np.exp(-r / self.h)
                  + self.m_bulge * self.bulge_norm / self.qb
                  * np.exp(-self.bulge_b * (rb / g["bulge_re_arcsec"]) ** (1.0 / g[
                      "bulge_sersic_n"])))
        m_main *= area
        rbin = np.minimum((r / self.dr).astype(np.int64), self.nbin - 1)
        m_clumps = []
        for c in self.clumps:
            dx, dy = c["offset_arcsec"]
            s2 = c["sigma_arcsec"] ** 2
            d2 = (xi - dx) ** 2 + (eta - dy) ** 2
            m_clumps.append(c["mass_frac"] * self.mtot / (2 * np.pi * s2)
                            * np.exp(-0.5 * d2 / s2) * area)
        return rbin, m_main, m_clumps

    def photometry(self, filters):
        """f_lambda (erg/s/cm^2/AA) per Msun SURVIVING of every population, (n_pop, n_f)."""
        key = tuple(filters)
        if key not in self._phot:
            ph = self.model.photometry(self.params, list(filters), self.z)
            self._phot[key] = np.asarray(ph, dtype=float) / self.surv[:, None]
        return self._phot[key]

    def flux(self, sample, phot_col):
        """f_lambda of each sub-pixel for one band; ``phot_col`` (n_pop,) per Msun surviving."""
        rbin, m_main, m_clumps = sample
        out = m_main * phot_col[rbin]
        for i, m in enumerate(m_clumps):
            out += m * phot_col[self.nbin + i]
        return out
