"""The run's summary page (``summary.html``, in Snakemake's HTML report): the
provenance, the constraint summary of the maps, the radial profiles and, for a
mock, the accuracy against the truth. Plain HTML tables, no scripts."""

import html
from pathlib import Path

import numpy as np

from . import __version__
from .fit.methods import METHODS
from .io import read_map_set
from .io.atomic import write_text
from .io.jsonfile import read_json
from .io.profiles import read_profiles
from .quantities import ALIASES, QUANTITIES, quantity


#: quantities in the constraint and accuracy tables: key, label
def _table(header, rows):
    head = "".join(f"<th>{html.escape(str(h))}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in row) + "</tr>"
                   for row in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def _fmt(value, digits=3):
    try:
        v = float(value)
    except (TypeError, ValueError):
        return str(value)
    return "n/a" if not np.isfinite(v) else f"{v:.{digits}g}"


def summary_html(galaxy, maps_path, profiles_path, accuracy_path=None, config_hash=None):
    """The summary page of one galaxy's products, as an HTML string."""
    ms = read_map_set(maps_path)
    label = {k: quantity(k).label for k in (*QUANTITIES, *ALIASES)}
    parts = [f"<h1>sedmap: {html.escape(galaxy)}</h1>",
             "<h2>Provenance</h2>",
             _table(["item", "value"], [
                 ("sedmap version (this page)", __version__),
                 ("sedmap version (maps.fits)", ms.sedmap_version),
                 ("configuration hash (maps.fits CONFHASH)", ms.config_hash),
                 ("configuration hash (this rule)", config_hash or "none"),
                 ("maps", str(maps_path)), ("profiles", str(profiles_path))])]
    if ms.summary:
        parts += ["<h2>What the data constrain</h2>",
                  f"<p>A bin's quantity is constrained where its posterior 68% width is "
                  f"at most {_fmt(1 - ms.constraint_min, 2)} of its prior's "
                  f"(maps.constraint_min = {_fmt(ms.constraint_min, 2)}); elsewhere the map "
                  f"shows the prior and is hatched.</p>",
                  _table(["quantity", "fitted bins constrained", "fitted pixels constrained",
                          "median constraint"],
                         [(label.get(k, k), f"{100 * v['bin_fraction']:.0f}%",
                           f"{100 * v['fraction']:.0f}%", _fmt(v["median"], 2))
                          for k, v in ms.summary.items()])]
    prof = read_profiles(profiles_path)
    if len(prof):
        cols = [c for c in ("log_sigma_mstar", "log_sigma_sfr", "log_ssfr", "age_mw",
                            "logzsol", "av") if f"{c}_p50" in prof.colnames]
        parts += ["<h2>Radial profiles</h2>",
                  f"<p>R_e = {_fmt(prof.meta['R_E_KPC'])} kpc ({_fmt(prof.meta['R_E_PIX'])} "
                  f"pixels), b/a = {_fmt(prof.meta['AXRATIO'], 2)}; medians and 16-84% "
                  f"ranges over the S/N-complete bins (profiles.fits).</p>",
                  _table(["R/R_e", "R / kpc", "pixels"] + cols,
                         [[_fmt(r["r_mid"], 3), _fmt(r["r_kpc"]), int(r["n_pix"])]
                          + [f"{_fmt(r[c + '_p50'])} [{_fmt(r[c + '_p16'])}, "
                             f"{_fmt(r[c + '_p84'])}]" for c in cols] for r in prof])]
    else:
        parts += ["<h2>Radial profiles</h2>",
                  f"<p>None: {html.escape(str(prof.meta.get('NOTE', 'no annulus')))}</p>"]
    if accuracy_path is not None and Path(accuracy_path).exists():
        acc = read_json(accuracy_path)
        parts.append("<h2>Accuracy against the mock's truth</h2>")
        for method in METHODS.values():
            if not acc.get(method.name):
                continue
            parts += [f"<h3>{method.label}</h3>",
                      _table(["quantity", "bins", "bias", "scatter", "68% coverage"],
                             [(label.get(k, k), v.get("n_bins"), _fmt(v.get("bias")),
                               _fmt(v.get("scatter")), _fmt(v.get("coverage68"), 2))
                              for k, v in acc[method.name].items()])]
            if acc.get(f"{method.name}_note"):
                parts.append(f"<p>{html.escape(acc[f'{method.name}_note'])}</p>")
    style = ("<style>table{border-collapse:collapse;margin:0.5em 0}"
             "td,th{border:1px solid #bbb;padding:2px 8px;font:13px sans-serif}</style>")
    return f"<!DOCTYPE html><html><head><meta charset='utf-8'>{style}</head><body>" \
           + "\n".join(parts) + "</body></html>\n"


def write_summary(path, galaxy, maps_path, profiles_path, accuracy_path=None,
                  config_hash=None):
    """Write :func:`summary_html` to ``path`` atomically; return the path."""
    return write_text(summary_html(galaxy, maps_path, profiles_path, accuracy_path,
                                   config_hash), path)
