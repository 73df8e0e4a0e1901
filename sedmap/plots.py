"""Plots for the report (PNG): stamps, region, flux maps, bin map, SED fits,
corner plots, SFHs and property maps. Matplotlib with the Agg backend."""

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

from .io.figure import save_figure
from .quantities import QUANTITIES
from .sps.sfh import common_sfh
from .stats import weighted_percentiles


def _save(fig, path):
    save_figure(fig, path)
    plt.close(fig)
    return path


def plot_placeholder(path, text):
    """A small figure that says why there is nothing to draw (a rule's declared
    figure always exists)."""
    fig, ax = plt.subplots(figsize=(5, 1.6))
    ax.axis("off")
    ax.text(0.5, 0.5, text, ha="center", va="center", fontsize=9, wrap=True)
    return _save(fig, path)


def _grid(n, size=2.4):
    ncol = min(n, 4)
    nrow = int(np.ceil(n / ncol))
    fig, axes = plt.subplots(nrow, ncol, figsize=(size * ncol, size * nrow), squeeze=False)
    for ax in axes.flat[n:]:
        ax.axis("off")
    return fig, axes.flat


def plot_images(images, titles, path, region=None, log=True, cmap="viridis", hatch=None):
    """A panel of images (e.g. the flux cube's bands), with the region outlined.

    ``hatch``: one boolean mask (or None) per image; its pixels are greyed and
    hatched (the maps: bins where the quantity is prior-dominated).
    """
    fig, axes = _grid(len(images))
    hatch = list(hatch) if hatch is not None else [None] * len(images)
    for ax, img, title, hmask in zip(axes, images, titles, hatch):
        data = np.asarray(img, float)
        if log:
            pos = data[np.isfinite(data) & (data > 0)]
            lo, hi = (np.percentile(pos, [5, 99.5]) if pos.size else (1e-3, 1))
            data = np.log10(np.clip(data, lo, None))
            vmin, vmax = np.log10(lo), np.log10(hi)
        else:
            fin = data[np.isfinite(data)]
            vmin, vmax = (np.percentile(fin, [1, 99]) if fin.size else (0, 1))
        im = ax.imshow(data, origin="lower", cmap=cmap, vmin=vmin, vmax=vmax)
        if region is not None:
            ax.contour(region.astype(float), levels=[0.5], colors="w", linewidths=0.6)
        if hmask is not None and np.any(hmask):
            m = np.asarray(hmask, bool)
            ax.imshow(np.where(m, 1.0, np.nan), origin="lower", cmap="Greys", vmin=0, vmax=2,
                      alpha=0.75, interpolation="nearest")
            ax.contourf(m.astype(float), levels=[0.5, 1.5], colors="none", hatches=["////"])
            title = f"{title}\n(hatched: prior-dominated)"
        ax.set_title(title, fontsize=8)
        ax.set_xticks([])
        ax.set_yticks([])
        fig.colorbar(im, ax=ax, fraction=0.046, pad=0.02)
    fig.tight_layout()
    return _save(fig, path)


def plot_binmap(binmap, path):
    """Bin map with a shuffled colour per bin."""
    rng = np.random.default_rng(0)
    n = int(binmap.max())
    perm = np.concatenate([[np.nan], rng.permutation(n) + 1.0])
    fig, ax = plt.subplots(figsize=(4, 4))
    ax.imshow(perm[binmap], origin="lower", cmap="tab20", interpolation="nearest")
    ax.set_title(f"{n} bins", fontsize=9)
    ax.set_xticks([])
    ax.set_yticks([])
    return _save(fig, path)


def _micron_axis(ax):
    """A log wavelength axis in AA labelled in um at 1-2-5 steps, no minor labels."""
    from matplotlib.ticker import FixedLocator, FuncFormatter, NullFormatter

    lo, hi = ax.get_xlim()
    ticks = [v * 10.0**e for e in range(-1, 4) for v in (1, 2, 5)]
    ax.xaxis.set_major_locator(FixedLocator([t * 1e4 for t in ticks if lo <= t * 1e4 <= hi]))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda x, _: f"{x / 1e4:g}"))
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.tick_params(labelsize=7)


def plot_sed(items, pivots, path, fscale=1.0):
    """Observed photometry, best-fit spectrum and photometry, and the residuals, of
    one or more bins side by side.

    Parameters
    ----------
    items : list of (FitResult, flux (n_band,), err (n_band,), title)
        Fluxes in the result's flux unit (``bm.flux`` rows).
    pivots : ndarray (n_band,)
        Pivot wavelengths, AA.
    fscale : float
        erg/s/cm^2/AA per flux unit of the results (the bin map's ``fscale``).
    """
    n = len(items)
    fig, axes = plt.subplots(2, n, figsize=(4.2 * n, 4.2), sharex=True, squeeze=False,
                             gridspec_kw={"height_ratios": [3, 1]})
    for j, (result, flux, err, title) in enumerate(items):
        ax, rx = axes[0, j], axes[1, j]
        pivots_f = pivots * fscale  # lambda f_lambda in erg/s/cm^2
        if result.bestfit_wave is not None:
            w = result.bestfit_wave
            keep = (w > 0.8 * pivots.min()) & (w < 1.3 * pivots.max())
            ax.plot(w[keep], fscale * w[keep] * result.bestfit_spectrum[keep], color="0.5",
                    lw=0.7, label="best fit")
        ax.errorbar(pivots, pivots_f * flux, pivots_f * err, fmt="o", ms=3, color="k",
                    label="data")
        if result.bestfit_photometry is not None:
            m = result.bestfit_photometry
            ax.plot(pivots, pivots_f * m, "s", mfc="none", color="C3", ms=6, label="model")
            rx.errorbar(pivots, (flux - m) / err, 1.0, fmt="o", ms=3, color="k")
        rx.axhline(0, color="0.5", lw=0.7)
        ax.set_xscale("log")
        ax.set_yscale("log")
        _micron_axis(rx)
        if j == 0:
            ax.set_ylabel(r"$\lambda f_\lambda$ / erg s$^{-1}$ cm$^{-2}$", fontsize=8)
            rx.set_ylabel(r"$\Delta/\sigma$", fontsize=8)
            ax.legend(fontsize=7)
        rx.set_xlabel("observed wavelength / µm", fontsize=8)
        ax.set_title(title, fontsize=8)
    fig.tight_layout()
    return _save(fig, path)


#: axis and colour-bar labels, with units, of the quantities the figures draw (the
#: corner plots, the profiles and the maps look them up here)
#: figure label of each quantity (sedmap.quantities)
LABELS = {k: q.figure_label for k, q in QUANTITIES.items()}


def plot_corner(result, path, names=None, title=""):
    """Corner plot of the posterior samples (corner), with labelled axes."""
    import corner

    names = names or [n for n in result.param_names if not n.startswith("log_mass_formed")]
    cols = [result.param_names.index(n) for n in names if n in result.param_names]
    # a quantity the samples hold at one value (a degenerate posterior) has no axis
    cols = [c for c in cols if np.ptp(result.samples[:, c]) > 0]
    if not cols or len(result.samples) < 2:
        return plot_placeholder(path, f"{title}: no posterior spread to draw")
    fig = corner.corner(result.samples[:, cols], weights=result.weights,
                        labels=[LABELS.get(result.param_names[c], result.param_names[c])
                                for c in cols],
                        quantiles=[0.16, 0.5, 0.84], label_kwargs={"fontsize": 8})
    if title:
        fig.suptitle(title, fontsize=9)
    return _save(fig, path)


def plot_sfh(curves, path, title=""):
    """SFHs: median and 68% band of SFR(lookback) over each set of posterior samples.

    ``curves``: list of (lookback_gyr (m,), sfr_samples (k, m), weights (k,) or None,
    label); SFR in Msun/yr, on a log axis.
    """
    fig, ax = plt.subplots(figsize=(5.5, 3.3))
    for c, (look, samples, weights, label) in enumerate(curves):
        q = np.nanpercentile(samples, [16, 50, 84], axis=0) if weights is None else \
            weighted_percentiles(samples, weights)
        ax.fill_between(look, q[0], q[2], color=f"C{c}", alpha=0.25, lw=0)
        ax.plot(look, q[1], color=f"C{c}", label=label)
    ax.set_yscale("log")
    ax.set_xlabel("lookback time / Gyr", fontsize=8)
    ax.set_ylabel(r"SFR / M$_\odot$ yr$^{-1}$", fontsize=8)
    if any(label for *_, label in curves):
        ax.legend(fontsize=7)
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    return _save(fig, path)


def bin_sfh_samples(result, lookback_gyr, max_samples=2000):
    """SFR(lookback) of a bin's posterior samples, Msun/yr, with the SFH the result
    records (``FitResult.sfh``).

    Parameters
    ----------
    result : FitResult
        With ``log_age``, the form's parameters and ``log_mass_formed`` among
        its sample columns.
    lookback_gyr : ndarray (m,)
    max_samples : int
        The samples with the largest weights (all, for equal weights: the first).

    Returns
    -------
    sfr : ndarray (k, m); weights : ndarray (k,)
    """
    sfh = common_sfh([result.sfh], f"bin {result.bin_id}'s fit result")
    w = np.ones(len(result.samples)) if result.weights is None else np.asarray(result.weights)
    keep = np.argsort(-w, kind="stable")[:max_samples]
    col = {n: result.samples[keep, i] for i, n in enumerate(result.param_names)}
    p = {n: col[n] for n in ("log_age",) + sfh.params}
    rate = sfh.sfr(p, lookback_gyr)
    return rate * 10 ** col["log_mass_formed"][:, None], w[keep]


def plot_bin_sfh(results, path, labels=None, title=""):
    """The SFHs of one or more bins: median and 68% band over each posterior
    (:func:`plot_sfh`); ``results`` a FitResult or a list, ``labels`` one each."""
    results = [results] if not isinstance(results, (list, tuple)) else list(results)
    labels = labels or [""] * len(results)
    curves = []
    for result, label in zip(results, labels):
        age = np.max(result.samples[:, result.param_names.index("log_age")])
        look = np.geomspace(1e-3, 10**age, 200)
        rate, w = bin_sfh_samples(result, look)
        curves.append((look, rate, w, label))
    return plot_sfh(curves, path, title=title)


def plot_truth_comparison(pairs, path, overlay=None, *, labels):
    """Recovered (p16/p50/p84) vs true values per quantity; ``pairs`` =
    {name: (truth (n,), percentiles (n, 3))}; ``overlay``, the same for a second
    method (e.g. MCMC on its subset of bins), drawn on top in colour."""
    fig, axes = _grid(len(pairs), size=2.8)
    for i, (ax, (name, (t, p))) in enumerate(zip(axes, pairs.items())):
        ax.errorbar(t, p[:, 1], yerr=[p[:, 1] - p[:, 0], p[:, 2] - p[:, 1]], fmt="o", ms=2,
                    lw=0.5, color="k", label=labels[0])
        lo, hi = np.nanmin([t.min(), p.min()]), np.nanmax([t.max(), p.max()])
        if overlay and name in overlay:
            t2, p2 = overlay[name]
            ax.errorbar(t2, p2[:, 1], yerr=[p2[:, 1] - p2[:, 0], p2[:, 2] - p2[:, 1]], fmt="s",
                        ms=3, lw=0.8, color="C0", label=labels[1])
            if i == 0:
                ax.legend(fontsize=7, loc="upper left")
        ax.plot([lo, hi], [lo, hi], color="C3", lw=0.8)
        ax.set_xlabel(f"true {name}", fontsize=8)
        ax.set_ylabel(f"recovered {name}", fontsize=8)
    fig.tight_layout()
    return _save(fig, path)


def _scale_bar(ax, shape, pixel_kpc):
    """A bar of a round number of kpc, about a fifth of the image wide, lower left."""
    if not (pixel_kpc and np.isfinite(pixel_kpc) and pixel_kpc > 0):
        return
    want = 0.2 * shape[1] * pixel_kpc
    length = next(v for v in (1000, 500, 200, 100, 50, 20, 10, 5, 2, 1, 0.5, 0.2, 0.1)
                  if v <= want) if want >= 0.1 else want
    x0, y0 = 0.06 * shape[1], 0.07 * shape[0]
    ax.plot([x0, x0 + length / pixel_kpc], [y0, y0], color="k", lw=2, solid_capstyle="butt")
    ax.text(x0 + 0.5 * length / pixel_kpc, y0 + 0.03 * shape[0], f"{length:g} kpc",
            ha="center", va="bottom", fontsize=7)


def plot_maps(panels, wcs, path, pixel_kpc=None, markers=None):
    """Property maps on sky axes (RA/Dec), each with its colour bar's label and unit.

    Parameters
    ----------
    panels : list of dict
        ``data`` (ny, nx), ``label`` (with unit), ``cmap``, ``prior`` (bool
        (ny, nx) or None: pixels where the quantity is prior-dominated, drawn
        hatched and outlined) and ``low`` (bool (ny, nx) or None: pixels of
        low-S/N bins, drawn light grey).
    wcs : astropy.wcs.WCS
        Celestial WCS of the maps.
    pixel_kpc : float, optional
        Pixel side in kpc: a scale bar.
    markers : list of (x, y, text), optional
        Points to mark on every panel (the showcase bins).
    """
    n = len(panels)
    ncol = min(n, 3)
    nrow = int(np.ceil(n / ncol))
    fig = plt.figure(figsize=(3.6 * ncol, 3.3 * nrow))
    for i, p in enumerate(panels):
        ax = fig.add_subplot(nrow, ncol, i + 1, projection=wcs)
        data = np.asarray(p["data"], float)
        fin = data[np.isfinite(data)]
        vmin, vmax = np.percentile(fin, [1, 99]) if fin.size else (0.0, 1.0)
        im = ax.imshow(data, origin="lower", cmap=p.get("cmap", "viridis"), vmin=vmin,
                       vmax=vmax, interpolation="nearest")
        low = p.get("low")
        if low is not None and np.any(low):
            ax.imshow(np.where(low, 1.0, np.nan), origin="lower", cmap="Greys", vmin=0,
                      vmax=4, interpolation="nearest")
        prior = p.get("prior")
        if prior is not None and np.any(prior):
            m = np.asarray(prior, float)
            ax.contourf(m, levels=[0.5, 1.5], colors="none", hatches=["////"])
            ax.contour(m, levels=[0.5], colors="0.3", linewidths=0.6)
        for x, y, text in markers or ():
            ax.plot(x, y, "+", color="w", ms=7, mew=1.2)
            ax.text(x, y, f" {text}", color="w", fontsize=7, va="bottom")
        ra, dec = ax.coords[0], ax.coords[1]
        ra.set_ticks(number=3)
        dec.set_ticks(number=3)
        ra.set_ticklabel(size=7, exclude_overlapping=True)
        dec.set_ticklabel(size=7, exclude_overlapping=True)
        ra.set_axislabel("RA" if i >= n - ncol else " ", size=8)
        dec.set_axislabel("Dec" if i % ncol == 0 else " ", size=8)
        if i % ncol:
            dec.set_ticklabel_visible(False)
        if i < n - ncol:
            ra.set_ticklabel_visible(False)
        _scale_bar(ax, data.shape, pixel_kpc)
        cb = fig.colorbar(im, ax=ax, fraction=0.046, pad=0.03)
        cb.set_label(p["label"], fontsize=8)
        cb.ax.tick_params(labelsize=7)
    notes = []
    if any(p.get("prior") is not None and np.any(p["prior"]) for p in panels):
        notes.append("hatched: prior-dominated (the data narrow the prior's 68% width by "
                     "less than maps.constraint_min, or too few posterior samples to tell)")
    if any(p.get("low") is not None and np.any(p["low"]) for p in panels):
        notes.append("grey: low-S/N bins (BIN_FLAG = 1)")
    if notes:
        fig.text(0.5, 0.005, "; ".join(notes), ha="center", fontsize=7)
    fig.tight_layout(rect=(0, 0.02, 1, 1))
    return _save(fig, path)


#: radial-profile panels: table column stems (labels from :data:`LABELS`)
PROFILE_PANELS = ("log_sigma_mstar", "log_sigma_sfr", "log_ssfr", "age_mw", "logzsol", "av")


def plot_profiles(table, path, title=""):
    """Radial profiles against R/R_e with their 16-84% bands (``table`` from
    :func:`sedmap.profiles.radial_profiles`); the top axis in kpc."""
    panels = [(c, LABELS[c]) for c in PROFILE_PANELS
              if f"{c}_p50" in table.colnames and np.isfinite(table[f"{c}_p50"]).any()]
    fig, axes = plt.subplots(2, 3, figsize=(9.5, 5.2), squeeze=False)
    r = np.asarray(table["r_mid"], float)
    kpc_per_re = float(table.meta["R_E_KPC"])
    for ax, (col, label) in zip(axes.flat, panels):
        lo, mid, hi = (np.asarray(table[f"{col}_{s}"], float) for s in ("p16", "p50", "p84"))
        ax.fill_between(r, lo, hi, color="C0", alpha=0.3, lw=0, step="mid")
        ax.plot(r, mid, "o-", color="C0", ms=3, lw=1)
        ax.set_ylabel(label, fontsize=8)
        ax.set_xlabel(r"R / R$_e$", fontsize=8)
        ax.tick_params(labelsize=7)
        top = ax.secondary_xaxis("top", functions=(lambda x: x * kpc_per_re,
                                                   lambda x: x / kpc_per_re))
        top.set_xlabel("R / kpc", fontsize=7)
        top.tick_params(labelsize=6)
    for ax in list(axes.flat)[len(panels):]:
        ax.axis("off")
    fig.suptitle(f"{title}  (R$_e$ = {kpc_per_re:.2g} kpc, b/a = "
                 f"{float(table.meta['AXRATIO']):.2f}; S/N-complete bins)", fontsize=9)
    fig.tight_layout()
    return _save(fig, path)


def plot_residuals(names, pivots, chi, path):
    """Observed minus model flux over the error, per band, across bins.

    Parameters
    ----------
    names : list of str
        Band names.
    pivots : ndarray (n_band,)
        Pivot wavelengths, AA (the bands' order on the x axis).
    chi : ndarray (n_bin, n_band)
        (observed - best-fit model) / error of each bin and band.
    """
    order = np.argsort(pivots)
    chi = np.asarray(chi, float)[:, order]
    fig, ax = plt.subplots(figsize=(max(5.0, 0.45 * len(order) + 1.5), 3.4))
    rng = np.random.default_rng(0)
    for j in range(chi.shape[1]):
        v = chi[:, j][np.isfinite(chi[:, j])]
        ax.plot(j + 0.15 * rng.uniform(-1, 1, v.size), v, ".", ms=2, color="0.5", alpha=0.6)
        if v.size:
            q = np.percentile(v, [16, 50, 84])
            ax.errorbar(j, q[1], [[q[1] - q[0]], [q[2] - q[1]]], fmt="s", color="C3", ms=4,
                        capsize=2)
    ax.axhline(0, color="k", lw=0.7)
    for level in (-1, 1):
        ax.axhline(level, color="k", lw=0.5, ls=":")
    ax.set_xticks(range(len(order)))
    ax.set_xticklabels([names[i] for i in order], rotation=60, ha="right", fontsize=7)
    ax.set_ylabel(r"(observed $-$ model) / $\sigma$", fontsize=8)
    ax.set_title(f"best-fit residuals of {chi.shape[0]} bins (red: median and 16-84%)",
                 fontsize=9)
    lim = np.nanpercentile(np.abs(chi), 99) if np.isfinite(chi).any() else 3.0
    ax.set_ylim(-max(lim, 3.0), max(lim, 3.0))
    fig.tight_layout()
    return _save(fig, path)
