"""The common pixel grid: a TAN stamp centred on the galaxy, and reprojection onto it.

``target_grid`` builds the grid; ``reproject_band`` puts a band on it
conserving flux (``noise_correlation_factor`` corrects the variance of the
matched band for the correlations reprojection leaves); ``check_coverage``
and ``check_psf_fits`` refuse stamps the data cannot fill;
``align_to_reference`` detects (and with ``images.realign`` corrects) a band
whose WCS is off from a reference band's.
"""

from dataclasses import replace

import numpy as np
from astropy.wcs import WCS
from astropy.wcs.utils import proj_plane_pixel_area

from ..constants import FWHM_TO_SIGMA
from ..errors import InputError

#: Smallest default WCS-offset tolerance of ``align_to_reference``, arcsec.
MIN_SHIFT_TOLERANCE = 0.5


def target_grid(ra, dec, pixscale, size_arcsec):
    """WCS and shape of the common grid: TAN, north up, east left, centred on (ra, dec).

    Parameters
    ----------
    ra, dec : float
        Centre, degrees.
    pixscale : float
        Arcsec per pixel.
    size_arcsec : float
        Side of the square stamp, arcsec; the number of pixels is made odd so
        that (ra, dec) falls on the centre of the central pixel.

    Returns
    -------
    wcs : astropy.wcs.WCS
    shape : tuple (ny, nx)
    """
    if pixscale <= 0 or size_arcsec <= 0:
        raise InputError(f"bad grid: pixscale={pixscale}, size={size_arcsec} arcsec",
                         path="images", fix="give positive values")
    n = int(np.ceil(size_arcsec / pixscale))
    n += 1 - n % 2
    w = WCS(naxis=2)
    w.wcs.ctype = ["RA---TAN", "DEC--TAN"]
    w.wcs.crval = [float(ra), float(dec)]
    w.wcs.crpix = [(n + 1) / 2.0, (n + 1) / 2.0]
    w.wcs.cdelt = [-pixscale / 3600.0, pixscale / 3600.0]
    w.wcs.cunit = ["deg", "deg"]
    return w, (n, n)


# ------------------------------------------------------------- reprojection


def pixel_area_arcsec2(wcs):
    """Area of one pixel of a celestial WCS, arcsec^2 (at the reference pixel)."""
    return float(proj_plane_pixel_area(wcs.celestial)) * 3600.0**2


def reproject_band(band, wcs, shape, min_coverage=0.5):
    """Reproject a band onto the common grid, conserving flux.

    Parameters
    ----------
    band : BandImage
        Flux and variance per native pixel (erg/s/cm^2/AA and its square).
        ``data`` may carry leading axes (..., ny, nx), e.g. noise
        realisations, sharing ``var`` and ``mask``.
    wcs : astropy.wcs.WCS
        Common grid (``target_grid``).
    shape : tuple (ny, nx)
    min_coverage : float
        An output pixel is masked unless at least this fraction of its area
        is covered by valid (unmasked, finite) input pixels.

    Returns
    -------
    data : ndarray (..., ny, nx)
        Flux per output pixel, erg/s/cm^2/AA; NaN where masked.
    var : ndarray (ny, nx)
        Its variance (see Notes); NaN where masked.
    mask : ndarray of bool
        True where the output pixel is unusable (outside the image or mostly
        masked input).

    Notes
    -----
    ``reproject_exact`` computes, for each output pixel, the mean of the
    input over the overlapping area, weighting input pixel i by its overlap
    area a_i. Flux per pixel is therefore turned into surface brightness
    (divided by the input pixel area A_in), reprojected, and multiplied by
    the output pixel area A_out: the total flux is conserved. Masked input
    pixels get zero weight (a valid-fraction map is reprojected alongside
    and divides the result), so the surface brightness of an output pixel is
    the overlap-weighted mean of its valid inputs.

    The variance of that mean is ``sum a_i^2 v_i / (sum a_i)^2`` (v_i:
    surface-brightness variance). ``reproject_exact`` cannot weight by
    a_i^2, so sedmap uses ``a_i^2 ~ A_in a_i``::

        var_sb_out = A_in * reproject_exact(v_sb) / (covered area)

    which is exact when input pixels nest inside output pixels (a_i = A_in),
    and in general conserves the *noise power*: the variance of a sum over an
    area much larger than a pixel is that of the input pixels it holds. For
    comparable input and output pixels (e.g. 1.375" onto 1.5") the per-pixel
    variance is overestimated (up to ~2x) while neighbouring output pixels
    become correlated by the same amount; after convolution with a matching
    kernel much broader than a pixel (``psf.match_band``, variance * K^2) the
    two effects cancel. For narrower kernels ``noise_correlation_factor``
    gives the exact correction (0.88 for 1.375" pixels and a 5.3" -> 6.5"
    kernel), passed to ``match_band(var_factor=...)``.
    """
    from reproject import reproject_exact

    ny, nx = shape
    data = np.asarray(band.data, dtype=float)
    var = np.asarray(band.var, dtype=float)
    lead = data.shape[:-2]  # stacked realisations share var and mask
    data = data.reshape((-1,) + data.shape[-2:])
    bmask = np.asarray(band.mask, dtype=bool)
    bmask = bmask.reshape((-1,) + bmask.shape[-2:]).any(axis=0)
    valid = ~bmask & np.isfinite(data).all(axis=0) & np.isfinite(var) & (var > 0)
    a_in = pixel_area_arcsec2(band.wcs)
    a_out = pixel_area_arcsec2(wcs)
    stack = np.concatenate([np.where(valid, data, 0.0) / a_in,
                            np.where(valid, var, 0.0)[None] / a_in**2,
                            valid[None].astype(float)])
    out, foot = reproject_exact((stack, band.wcs.celestial), wcs, shape_out=(ny, nx))
    foot = np.asarray(foot)
    if foot.ndim == 3:
        foot = foot[-1]
    out = np.nan_to_num(out, nan=0.0)
    m_sb, m_v, w_valid = out[:-2], out[-2], out[-1]
    foot = np.nan_to_num(foot, nan=0.0)
    covered = foot * w_valid  # fraction of each output pixel covered by valid input
    mask = ~(covered >= min_coverage)
    with np.errstate(divide="ignore", invalid="ignore"):
        data_out = a_out * m_sb / w_valid
        var_out = a_in * a_out * m_v / (w_valid**2 * foot)
    data_out[:, mask] = np.nan
    var_out[mask] = np.nan
    data_out = data_out.reshape(lead + (ny, nx))
    return data_out, var_out, mask


def noise_correlation_factor(band, wcs, kernel, phases=((0.0, 0.0), (0.5, 0.5), (0.25, 0.75),
                                                          (0.75, 0.25))):
    """Correction to the variance of a reprojected, then kernel-convolved band.

    ``reproject_band`` returns the noise-power variance and ``match_band``
    convolves it with K^2, as if the reprojected pixels were independent. The
    exact variance of ``sum_j K_j out_j`` is ``sum_i (sum_j K_j a_ji / A_in)^2
    V_i`` over native pixels i (V_i: native flux variance, a_ji: overlap
    areas). For a variance that is uniform over the kernel's footprint their
    ratio is::

        F = A_in * sum_i m_i^2 / (A_out * sum_j K_j^2)

    with m_i the mean of the kernel image (constant K_j over each output pixel)
    over native pixel i, i.e. ``reproject_exact`` of K onto the native grid.
    F -> 1 when native pixels are much smaller than output pixels or when K is
    much broader than a native pixel; F < 1 for comparable pixels and a narrow
    kernel. It is averaged over ``phases`` (sub-pixel offsets of the kernel
    grid on the native grid).

    Parameters
    ----------
    band : BandImage
        Gives the native pixel grid (its WCS: scale and orientation).
    wcs : astropy.wcs.WCS
        The common grid.
    kernel : ndarray (odd sides)
        The matching kernel on the common grid (a delta for no matching).

    Returns
    -------
    float : multiply the matched variance by it (``match_band(var_factor=F)``).
    """
    kernel = np.asarray(kernel, dtype=float)
    a_in = pixel_area_arcsec2(band.wcs)
    a_out = pixel_area_arcsec2(wcs)
    factors = [a_in * np.sum(m**2) / (a_out * np.sum(kernel**2))
               for m in _on_native_grid(kernel, band, wcs, phases)]
    return float(np.mean(factors))


def _on_native_grid(images, band, wcs, phases):
    """``reproject_exact`` of small common-grid ``images`` (..., k, k), centred on the
    band's centre, onto a native-like grid (the band's CD matrix, no distortion),
    once per sub-pixel phase of the two grids; yields arrays (..., n_native)."""
    from reproject import reproject_exact

    k = images.shape[-1]
    a_in = pixel_area_arcsec2(band.wcs)
    a_out = pixel_area_arcsec2(wcs)
    bw = band.wcs.celestial
    bny, bnx = np.shape(band.data)[-2:]
    ra0, dec0 = (float(v) for v in bw.pixel_to_world_values((bnx - 1) / 2.0, (bny - 1) / 2.0))
    half = int(np.ceil(0.75 * k * np.sqrt(a_out / a_in))) + 2
    wn = bw.deepcopy()
    wn.wcs.crval = [ra0, dec0]
    wn.wcs.crpix = [half + 1.0, half + 1.0]
    if wn.sip is not None:
        wn.sip = None
    for py, px in phases:
        wk = wcs.celestial.deepcopy()
        wk.wcs.crval = [ra0, dec0]
        wk.wcs.crpix = [(k + 1) / 2.0 + px, (k + 1) / 2.0 + py]
        m, _ = reproject_exact((images, wk), wn, shape_out=(2 * half + 1, 2 * half + 1))
        yield np.nan_to_num(m).reshape(images.shape[:-2] + (-1,))


# ------------------------------------------------------------------ checks


def noise_correlation(band, wcs, kernel, tol=1e-3, max_lag=25,
                      phases=((0.0, 0.0), (0.5, 0.5), (0.25, 0.75), (0.75, 0.25))):
    """Correlation coefficient of the noise of two matched pixels, by their offset.

    The matched band is ``K * R(F)``: the native image F (independent pixels)
    reprojected (``R``, flux conserving) and convolved with the kernel K, so its
    noise is correlated between nearby pixels. Summing N pixels (a bin) with
    the per-pixel variances alone underestimates the variance of the sum;
    ``binning.sum_bins`` uses this correlation to get it right. For a noise
    variance that varies slowly on the kernel's scale the covariance of
    matched pixels p and p + d is ``sigma_p sigma_{p+d} rho(d)`` with::

        rho = C / C(0),   C = C_R * (K * K~)

    where ``K~(x) = K(-x)`` and ``C_R(d) = sum_i a_{0i} a_{di}`` is the
    covariance that reprojection leaves between output pixels 0 and d (a: the
    areas native pixel i shares with them, computed with ``reproject_exact``
    on a native-like grid and averaged over ``phases``, sub-pixel offsets of
    the two grids).

    Parameters
    ----------
    band : BandImage
        Gives the native pixel grid (its WCS: scale and orientation).
    wcs : astropy.wcs.WCS
        The common grid.
    kernel : ndarray (odd sides)
        The matching kernel on the common grid (a delta for no matching).
    tol : float
        Offsets are kept out to the largest at which ``|rho|`` exceeds ``tol``.
    max_lag : int
        Largest offset kept, common-grid pixels.

    Returns
    -------
    rho : ndarray (2L+1, 2L+1)
        ``rho[L + dy, L + dx]``, 1 at the centre, symmetric under d -> -d.
    """
    from scipy.signal import fftconvolve

    a_in = pixel_area_arcsec2(band.wcs)
    a_out = pixel_area_arcsec2(wcs)
    r = int(np.ceil(np.sqrt(a_in / a_out))) + 1      # output pixels one native pixel reaches
    n = 2 * r + 1
    deltas = np.zeros((n * n, n, n))
    deltas[np.arange(n * n), np.arange(n * n) // n, np.arange(n * n) % n] = 1.0
    c_r = np.zeros((n, n))
    for m in _on_native_grid(deltas, band, wcs, phases):
        c_r += (m @ m[(n * n) // 2]).reshape(n, n)   # covariance with the centre pixel
    c_r = 0.5 * (c_r + c_r[::-1, ::-1])
    kernel = np.asarray(kernel, dtype=float)
    c = fftconvolve(c_r, fftconvolve(kernel, kernel[::-1, ::-1]), mode="full")
    cy, cx = np.unravel_index(np.argmax(c), c.shape)
    rho = c / c[cy, cx]
    big = np.abs(rho) > tol
    yy, xx = np.nonzero(big)
    lag = int(min(max(np.max(np.abs(yy - cy)), np.max(np.abs(xx - cx))), max_lag))
    rho = rho[cy - lag:cy + lag + 1, cx - lag:cx + lag + 1]
    return 0.5 * (rho + rho[::-1, ::-1])


def _band_name(band):
    return band.path or band.filter


#: Largest fraction of the stamp that may fall outside a band's image.
MAX_UNCOVERED = 0.10


def check_coverage(band, ra, dec, wcs, shape, max_uncovered=MAX_UNCOVERED):
    """Check that a band's image covers the galaxy and the common grid.

    Parameters
    ----------
    band : BandImage
    ra, dec : float
        Galaxy position, degrees.
    wcs, shape
        The common grid.
    max_uncovered : float
        Largest fraction of the stamp allowed outside the image or on masked
        pixels.

    Returns
    -------
    covered : float
        Fraction of the stamp's pixels that land on valid pixels of the image.

    Raises
    ------
    InputError
        Naming the file: the grid and the image do not overlap at all; the
        galaxy position is outside the image (or on masked pixels); more than
        ``max_uncovered`` of the stamp has no data.
    """
    where = _band_name(band)
    bw = band.wcs.celestial
    bny, bnx = np.shape(band.data)[-2:]
    ny, nx = shape
    yy, xx = np.mgrid[0:ny, 0:nx]
    sky = wcs.pixel_to_world_values(xx.ravel(), yy.ravel())
    with np.errstate(invalid="ignore"):
        bx, by = bw.world_to_pixel_values(*sky)
    ix = np.round(np.nan_to_num(bx, nan=-1)).astype(int)
    iy = np.round(np.nan_to_num(by, nan=-1)).astype(int)
    inside = (ix >= 0) & (ix < bnx) & (iy >= 0) & (iy < bny)
    usable = inside.copy()
    bmask = np.asarray(band.mask, bool).reshape((-1, bny, bnx)).any(axis=0)
    usable[inside] = ~bmask[iy[inside], ix[inside]]
    size = f'{ny}x{nx}-pixel stamp ({ny * _pixscale(wcs):.0f}" wide)'
    corners = bw.pixel_to_world_values([-0.5, bnx - 0.5, bnx - 0.5, -0.5],
                                       [-0.5, -0.5, bny - 0.5, bny - 0.5])
    footprint = (f"RA {np.min(corners[0]):.4f}..{np.max(corners[0]):.4f}, "
                 f"Dec {np.min(corners[1]):+.4f}..{np.max(corners[1]):+.4f}")
    if not inside.any():
        raise InputError(
            f"band {band.filter}: the image does not overlap the {size} centred on "
            f"RA {ra:.5f}, Dec {dec:+.5f} at all (the image covers {footprint}).",
            path=where, fix="check the galaxy coordinates and that this is the right file "
                            "(and its WCS)")
    with np.errstate(invalid="ignore"):
        gx, gy = bw.world_to_pixel_values(ra, dec)
    gx, gy = float(gx), float(gy)
    gin = np.isfinite(gx) and np.isfinite(gy) and -0.5 <= gx < bnx - 0.5 and -0.5 <= gy < bny - 0.5
    if not gin:
        raise InputError(
            f"band {band.filter}: the galaxy position RA {ra:.5f}, Dec {dec:+.5f} lies outside "
            f"this {bnx}x{bny} image (at pixel x={gx:.0f}, y={gy:.0f}; the image covers "
            f"{footprint}).",
            path=where, fix="check the galaxy coordinates and this file's WCS (a cutout whose "
                            "WCS was not updated is a common cause: set images.reference_band "
                            "to a band whose WCS is right and images.realign: true to shift "
                            "this band's WCS onto it)")
    if bmask[round(gy), round(gx)]:
        raise InputError(
            f"band {band.filter}: the image has no valid data at the galaxy position "
            f"RA {ra:.5f}, Dec {dec:+.5f} (pixel x={gx:.0f}, y={gy:.0f} is masked).",
            path=where, fix="use another image of this band, or drop the band")
    covered = float(usable.mean())
    if 1.0 - covered > max_uncovered:
        raise InputError(
            f"band {band.filter}: {100 * (1 - covered):.0f}% of the {size} has no data in this "
            f"image (more than {100 * max_uncovered:.0f}% allowed; the image covers {footprint}).",
            path=where, fix="use a smaller stamp (images.stamp_arcsec) or a larger cutout "
                            "centred on the galaxy")
    return covered


def _pixscale(wcs):
    return float(np.sqrt(pixel_area_arcsec2(wcs)))


def check_psf_fits(psf_image, shape, name=None):
    """Raise InputError when a PSF (or kernel) image is larger than the stamp.

    Parameters
    ----------
    psf_image : ndarray
        PSF or matching kernel on the common grid.
    shape : tuple (ny, nx)
        The stamp.
    name : str, optional
        Band (or file) named in the error.
    """
    py, px = np.shape(psf_image)
    ny, nx = shape
    if py > ny or px > nx:
        raise InputError(
            f"{'band ' + name + ': ' if name else ''}the PSF/kernel ({py}x{px} pixels) is larger "
            f"than the {ny}x{nx}-pixel stamp; the convolution would be cut at the stamp edges.",
            path=name or "images", fix="enlarge the stamp (images.stamp_arcsec) to at least "
                                       f"{max(py, px)} pixels, or crop the PSF image")


# -------------------------------------------------------------- alignment


def _detect(band, fwhm_arcsec):
    """SEP detection on a band: (background-subtracted image, valid, objects, segmap)."""
    import sep
    from astropy.stats import sigma_clipped_stats

    data = np.asarray(band.data, dtype=float)
    valid = ~np.asarray(band.mask, bool) & np.isfinite(data)
    if valid.sum() < 25:
        raise InputError(f"band {band.filter}: the image has no valid pixels.",
                         path=_band_name(band))
    _, med, std = sigma_clipped_stats(data[valid], sigma=3.0, maxiters=10)
    img = np.ascontiguousarray(np.where(valid, data - med, 0.0), dtype=np.float64)
    if not std > 0:
        std = float(np.std(img[valid])) or 1.0
    sig = max(fwhm_arcsec / band.pixscale * FWHM_TO_SIGMA, 0.8)
    h = int(np.ceil(3 * sig))
    k = np.exp(-0.5 * (np.arange(-h, h + 1) / sig) ** 2)
    kernel = np.ascontiguousarray(np.outer(k, k))
    sep.set_extract_pixstack(max(300000, 2 * img.size))
    sep.set_sub_object_limit(4096)
    objs, seg = sep.extract(img, 3.0, err=float(std), mask=np.ascontiguousarray(~valid),
                            minarea=5, filter_kernel=kernel, deblend_cont=1.0,
                            segmentation_map=True)
    return img, valid, objs, seg


def find_galaxy(band, centres, radius_pix, window_arcsec):
    """Pixel position (x, y), 0-based, of the galaxy in a band's image.

    The galaxy is the detected source (SEP, 3 sigma, smoothed by the band's
    PSF, no deblending) with the largest flux among those whose centroid lies
    within ``radius_pix`` of any of the ``centres`` (x, y); its position is
    the Gaussian-windowed centroid (``sep.winpos``, sigma ``window_arcsec``)
    started from its isophotal barycentre, i.e. the light peak of its core.
    """
    img, _, objs, _ = _detect(band, band.psf_fwhm if band.psf_fwhm else 1.5)
    if len(objs) == 0:
        raise InputError(f"band {band.filter}: no source detected in the image.",
                         path=_band_name(band), fix="check the image (is it empty or all noise?)")
    x, y = objs["x"], objs["y"]
    near = np.zeros(len(objs), bool)
    for cx, cy in centres:
        near |= np.hypot(x - cx, y - cy) <= radius_pix
    if not near.any():
        raise InputError(f"band {band.filter}: no source within {radius_pix:.0f} pixels of the "
                         "expected galaxy position or the image centre.", path=_band_name(band),
                         fix="check the image and its WCS")
    i = np.flatnonzero(near)[np.argmax(objs["flux"][near])]
    sig = max(window_arcsec / band.pixscale, 1.0)
    xw, yw, _ = _winpos(img, x[i], y[i], sig)
    return xw, yw


def _winpos(img, x, y, sig):
    import sep

    xw, yw, flag = sep.winpos(img, np.array([x]), np.array([y]), np.array([sig]))
    xw, yw = float(xw[0]), float(yw[0])
    if not (np.isfinite(xw) and np.isfinite(yw)) or np.hypot(xw - x, yw - y) > 5 * sig:
        xw, yw = float(x), float(y)
    return xw, yw, int(flag[0])


def measure_offset(band, ref_band, ra=None, dec=None):
    """Offset between where a band's WCS and a reference band's WCS put the galaxy.

    Rule (documented for ``images.realign``): the reference galaxy is found
    near ``(ra, dec)`` (or the reference image's centre); in the band it is
    the brightest source near where the band's WCS puts the reference
    position or near the image centre (cutouts are centred on their target,
    so this survives a WCS that is off by more than the image). See
    ``find_galaxy``.

    Returns
    -------
    dict
        ``offset`` (arcsec), ``east``, ``north`` (arcsec, band minus
        reference, on the sky), ``xy`` (band pixel of the galaxy), ``radec_ref``
        (reference galaxy position, degrees), ``inside`` (whether the reference
        position falls inside the band's image according to the band's WCS).
    """
    window = max(band.psf_fwhm or 0.0, ref_band.psf_fwhm or 0.0, 1.0)  # arcsec
    rny, rnx = ref_band.data.shape
    if ra is not None and dec is not None:
        rc = [tuple(float(v) for v in ref_band.wcs.celestial.world_to_pixel_values(ra, dec))]
    else:
        rc = [((rnx - 1) / 2.0, (rny - 1) / 2.0)]
    xr, yr = find_galaxy(ref_band, rc, 0.25 * min(rny, rnx), window)
    ra_r, dec_r = (float(v) for v in ref_band.wcs.celestial.pixel_to_world_values(xr, yr))

    bny, bnx = band.data.shape
    with np.errstate(invalid="ignore"):
        px, py = (float(v) for v in band.wcs.celestial.world_to_pixel_values(ra_r, dec_r))
    inside = bool(np.isfinite(px) and np.isfinite(py) and -0.5 <= px < bnx - 0.5
                  and -0.5 <= py < bny - 0.5)
    centres = [((bnx - 1) / 2.0, (bny - 1) / 2.0)] + ([(px, py)] if inside else [])
    xb, yb = find_galaxy(band, centres, 0.25 * min(bny, bnx), window)
    ra_b, dec_b = (float(v) for v in band.wcs.celestial.pixel_to_world_values(xb, yb))
    east = ((ra_b - ra_r + 180.0) % 360.0 - 180.0) * np.cos(np.radians(dec_r)) * 3600.0
    north = (dec_b - dec_r) * 3600.0
    return {"offset": float(np.hypot(east, north)), "east": float(east), "north": float(north),
            "xy": (xb, yb), "radec_ref": (ra_r, dec_r), "inside": inside}


def shift_wcs(wcs, x, y, ra, dec):
    """Copy of a WCS whose CRVAL is moved so that pixel (x, y) (0-based) maps to
    (ra, dec); CRPIX, the CD/PC matrix and any distortion are kept."""
    w = wcs.deepcopy()
    for _ in range(10):
        r0, d0 = (float(v) for v in w.pixel_to_world_values(x, y))
        dra = (ra - r0 + 180.0) % 360.0 - 180.0
        ddec = dec - d0
        w.wcs.crval = [w.wcs.crval[0] + dra, w.wcs.crval[1] + ddec]
        w.wcs.set()
        if np.hypot(dra * np.cos(np.radians(dec)), ddec) * 3600.0 < 1e-5:
            break
    return w


def align_to_reference(band, ref_band, max_shift_arcsec=None, realign=False, ra=None, dec=None):
    """Detect (and optionally correct) a WCS misalignment against a reference band.

    Parameters
    ----------
    band, ref_band : BandImage
        The band to check and the reference (a band whose WCS is trusted).
    max_shift_arcsec : float, optional
        Tolerance; default one pixel of the coarser of the two images, and at
        least ``MIN_SHIFT_TOLERANCE`` (0.5"): galaxy centroids measured in
        different surveys agree to ~0.3" only (DES vs Pan-STARRS, SN 2006bh).
    realign : bool
        Config ``images.realign``. False: a misalignment raises InputError.
        True: the band's WCS is shifted (CRVAL, keeping CRPIX and the CD
        matrix) so that its galaxy lands on the reference galaxy position.
    ra, dec : float, optional
        Expected galaxy position (degrees), used to find it in the reference.

    Returns
    -------
    band : BandImage
        ``band`` itself when aligned within tolerance; a copy with the
        corrected WCS when realigned (``meta['wcs_shift_arcsec']`` = (east,
        north) correction applied).
    offset : float
        Measured offset, arcsec (before any correction).

    Raises
    ------
    InputError
        Naming the file and the offset, when it exceeds the tolerance and
        ``realign`` is False (or when no galaxy is found).

    Notes
    -----
    The galaxy in each image is the brightest source (SEP) near the
    expected position, where "expected" is ``(ra, dec)`` for the reference,
    and for the band either where its own WCS puts the reference galaxy or
    the image centre (cutout services centre on the target), so a WCS off by
    more than the image size (SDSS cutouts of SN 2006bh: 5.7') is still
    measured on the galaxy itself. Its position is the windowed centroid of
    its core (the bulge/nucleus for most galaxies). The correction is a pure
    translation: a wrong rotation or scale is not fixed.
    """
    m = measure_offset(band, ref_band, ra=ra, dec=dec)
    tol = (max(band.pixscale, ref_band.pixscale, MIN_SHIFT_TOLERANCE) if max_shift_arcsec is None
           else float(max_shift_arcsec))
    if m["offset"] <= tol:
        return band, m["offset"]
    if not realign:
        extra = ("" if m["inside"] else
                 " The reference position of the galaxy is not even inside this image.")
        raise InputError(
            f"band {band.filter}: the WCS of this image is off by {m['offset']:.1f} arcsec "
            f"({m['east']:+.1f}\" east, {m['north']:+.1f}\" north) from reference band "
            f"{ref_band.filter} ({_band_name(ref_band)}), more than the {tol:.2f}\" tolerance."
            + extra,
            path=_band_name(band),
            fix=f"correct this file's WCS, or keep images.reference_band: {ref_band.filter} and "
                "set images.realign: true to shift it onto the reference band")
    (xb, yb), (ra_r, dec_r) = m["xy"], m["radec_ref"]
    new = replace(band, wcs=shift_wcs(band.wcs.celestial, xb, yb, ra_r, dec_r),
                  meta={**band.meta, "wcs_shift_arcsec": (-m["east"], -m["north"]),
                        "wcs_reference": ref_band.filter})
    return new, m["offset"]
