"""Plots for the report (PNG): stamps, region, flux maps, bin map, SED fits,
corner plots, SFHs and property maps. Matplotlib with the Agg backend."""

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

from .io.atomic import atomic_path


def _save(fig, path):
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=90, format="png", metadata={"Software": None})
    plt.close(fig)
    return path


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


def plot_sed(result, flux, err, pivots, path, title=""):
    """Observed photometry, best-fit spectrum and photometry, and the residuals."""
    fig, (ax, rx) = plt.subplots(2, 1, figsize=(6, 4.2), sharex=True,
                                 gridspec_kw={"height_ratios": [3, 1]})
    if result.bestfit_wave is not None:
        w = result.bestfit_wave
        keep = (w > 0.8 * pivots.min()) & (w < 1.3 * pivots.max())
        ax.plot(w[keep], w[keep] * result.bestfit_spectrum[keep], color="0.5", lw=0.7,
                label="best fit")
    ax.errorbar(pivots, pivots * flux, pivots * err, fmt="o", ms=3, color="k", label="data")
    if result.bestfit_photometry is not None:
        m = result.bestfit_photometry
        ax.plot(pivots, pivots * m, "s", mfc="none", color="C3", ms=6, label="model")
        rx.errorbar(pivots, (flux - m) / err, 1.0, fmt="o", ms=3, color="k")
    rx.axhline(0, color="0.5", lw=0.7)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_ylabel(r"$\lambda f_\lambda$")
    rx.set_ylabel(r"$\Delta/\sigma$")
    rx.set_xlabel("observed wavelength [Å]")
    ax.legend(fontsize=7)
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    return _save(fig, path)


def plot_corner(result, path, names=None):
    """Corner plot of the posterior samples (corner)."""
    import corner

    names = names or [n for n in result.param_names if not n.startswith("log_mass_formed")]
    cols = [result.param_names.index(n) for n in names if n in result.param_names]
    fig = corner.corner(result.samples[:, cols], weights=result.weights,
                        labels=[result.param_names[c] for c in cols],
                        quantiles=[0.16, 0.5, 0.84], label_kwargs={"fontsize": 7})
    return _save(fig, path)


def plot_sfh(lookback_gyr, sfr_samples, path, weights=None, title=""):
    """SFH: median and 68% band of SFR(lookback) over posterior samples (k, n_time)."""
    q = np.nanpercentile(sfr_samples, [16, 50, 84], axis=0) if weights is None else \
        _weighted_band(sfr_samples, weights)
    fig, ax = plt.subplots(figsize=(5, 3))
    ax.fill_between(lookback_gyr, q[0], q[2], color="C0", alpha=0.3, lw=0)
    ax.plot(lookback_gyr, q[1], color="C0")
    ax.set_xlabel("lookback time [Gyr]")
    ax.set_ylabel(r"SFR [M$_\odot$/yr]")
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    return _save(fig, path)


def bin_sfh_samples(result, sfh_form, lookback_gyr, continuity_young=None, max_samples=2000):
    """SFR(lookback) of a bin's posterior samples, Msun/yr.

    Parameters
    ----------
    result : FitResult
        With ``log_age``, the form's parameters and ``log_mass_formed`` among
        its sample columns.
    sfh_form : str
        The ``models.sfh`` the bin was fitted with.
    lookback_gyr : ndarray (m,)
    continuity_young : sequence of float, optional
        ``models.continuity_young_gyr``.
    max_samples : int
        The samples with the largest weights (all, for equal weights: the first).

    Returns
    -------
    sfr : ndarray (k, m); weights : ndarray (k,)
    """
    from .sps import sfh

    w = np.ones(len(result.samples)) if result.weights is None else np.asarray(result.weights)
    keep = np.argsort(-w, kind="stable")[:max_samples]
    col = {n: result.samples[keep, i] for i, n in enumerate(result.param_names)}
    p = {n: col[n] for n in ("log_age",) + sfh.PARAMS[sfh_form]}
    rate = sfh.sfr(sfh_form, p, lookback_gyr, continuity_young)
    return rate * 10 ** col["log_mass_formed"][:, None], w[keep]


def plot_bin_sfh(result, sfh_form, path, continuity_young=None, title=""):
    """The SFH of one bin: median and 68% band over its posterior (:func:`plot_sfh`)."""
    look = np.geomspace(1e-3, 10 ** np.max(result.samples[:, result.param_names.index("log_age")]),
                        200)
    rate, w = bin_sfh_samples(result, sfh_form, look, continuity_young)
    return plot_sfh(look, rate, path, weights=w, title=title)


def _weighted_band(samples, weights):
    from .fit.rdsps import weighted_percentiles

    return weighted_percentiles(samples, weights)


def plot_truth_comparison(pairs, path, overlay=None, labels=("RDSPS", "MCMC")):
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
