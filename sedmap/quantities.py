"""The physical quantities the products report: one table of their units and labels.

Each entry gives the FITS unit (``BUNIT`` of a map, astropy-parsable, ``dex(...)``
for logarithms), a plain-text label (HTML summary, logs) and a TeX label (figures).
The maps, the figures and the summary page all read it.
"""

from dataclasses import dataclass


@dataclass(frozen=True)
class Quantity:
    """A reported quantity: ``unit`` (FITS), ``label`` (plain text), ``tex``
    (matplotlib mathtext; empty: the plain label)."""

    unit: str
    label: str
    tex: str = ""

    @property
    def figure_label(self):
        return self.tex or self.label


#: name (as the fit results' percentiles and the profile tables name it) -> Quantity
QUANTITIES = {
    "log_mstar": Quantity("dex(solMass)", "log M* / Msun", r"log M$_*$ / M$_\odot$"),
    "log_mass_formed": Quantity("dex(solMass)", "log M formed / Msun"),
    "log_sfr": Quantity("dex(solMass / yr)", "log SFR / (Msun/yr)",
                        r"log SFR / M$_\odot$ yr$^{-1}$"),
    "log_ssfr": Quantity("dex(1 / yr)", "log sSFR / yr^-1", r"log sSFR / yr$^{-1}$"),
    "log_mdust": Quantity("dex(solMass)", "log M_dust / Msun"),
    "age_mw": Quantity("Gyr", "mass-weighted age / Gyr"),
    "av": Quantity("mag", "A_V / mag", r"A$_V$ / mag"),
    "logzsol": Quantity("dex", "log Z/Zsun", r"log Z/Z$_\odot$"),
    "log_age": Quantity("dex(Gyr)", "log age / Gyr"),
    "log_tau": Quantity("dex(Gyr)", "log tau / Gyr"),
    "log_t0": Quantity("dex(Gyr)", "log t0 / Gyr"),
    "log_alpha": Quantity("dex", "log alpha"),
    "log_beta": Quantity("dex", "log beta"),
    "dust1": Quantity("", "tau_1 (birth clouds)"),
    "dust2": Quantity("", "tau_2 (diffuse dust)", r"$\hat\tau_2$"),
    "dust_index": Quantity("", "dust index"),
    "gas_logu": Quantity("dex", "log U"),
    "gas_logz": Quantity("dex", "log Z_gas/Zsun"),
    "log_umin": Quantity("dex", "log U_min"),
    "log_gamma": Quantity("dex", "log gamma"),
    "log_qpah": Quantity("dex", "log q_PAH"),
    "redshift": Quantity("", "redshift", "$z$"),
    "log_sigma_mstar": Quantity("dex(solMass / kpc2)", "log Sigma* / (Msun/kpc^2)",
                                r"log $\Sigma_*$ / M$_\odot$ kpc$^{-2}$"),
    "log_sigma_sfr": Quantity("dex(solMass / (yr kpc2))", "log Sigma_SFR / (Msun/yr/kpc^2)",
                              r"log $\Sigma_{\rm SFR}$ / M$_\odot$ yr$^{-1}$ kpc$^{-2}$"),
}
#: other names of the same quantities (the accuracy report's truth names)
ALIASES = {"log_mass": "log_mstar", "logz": "logzsol"}


def quantity(name):
    """The :class:`Quantity` of ``name`` (or its alias), None when none is known."""
    return QUANTITIES.get(ALIASES.get(name, name))
