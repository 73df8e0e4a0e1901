"""Compiled (numba) loops of :mod:`sedmap.binning`: the per-pixel region growing.

Pixels are flat indices ``p = y * nx + x`` into (ny, nx) images; per-pixel
quantities are pixel-major arrays (n_pix, n_band). Every loop visits pixels in
a fixed order and breaks ties by the smaller flat index, so the outputs are
deterministic. Noise arguments (:class:`sedmap.binning.NoiseModel`): ``s`` the
pixels' own noise (sky term removed), ``rho`` (n_band, 2L+1, 2L+1) the noise
correlation by offset (``ones((n_band, 1, 1))`` for independent pixels),
``sky`` (n_band,) the shared sky error; the variance of a sum over a set S is
``sum_{p,q in S} s_p s_q rho(p - q) + (|S| sky)^2``.
"""

import numpy as np
from numba import njit


@njit(cache=True)
def _chi2(fc, fc_sum, v, p, fs, fs_sum, vs):
    """Reduced chi-square of pixel p's clipped SED against the seed's (``fs``,
    ``vs``), best scaling: the formula of ``sedmap.binning._chi2_red_clipped``."""
    nb = fs.size
    s0 = fc_sum[p] / max(fs_sum, 1e-300)
    num = 0.0
    den = 0.0
    for b in range(nb):
        w = 1.0 / (v[p, b] + s0 * s0 * vs[b])
        num += fc[p, b] * fs[b] * w
        den += fs[b] * fs[b] * w
    sc = num / max(den, 1e-300)
    chi2 = 0.0
    for b in range(nb):
        w = 1.0 / (v[p, b] + sc * sc * vs[b])
        d = fc[p, b] - sc * fs[b]
        chi2 += d * d * w
    return chi2 / max(nb - 1, 1)


@njit(cache=True)
def _interp(x, xs, ys):
    """``np.interp(x, xs, ys)`` for one x (clamped at the ends)."""
    n = xs.size
    if x <= xs[0]:
        return ys[0]
    if x >= xs[n - 1]:
        return ys[n - 1]
    j = np.searchsorted(xs, x) - 1
    t = (x - xs[j]) / (xs[j + 1] - xs[j])
    return ys[j] + t * (ys[j + 1] - ys[j])


@njit(cache=True)
def _window_sum(p, labels, label, nx, ny, s, rho, factor, out):
    """Add ``factor * s_p s_q rho(q - p)`` to ``out`` (n_band,) for every pixel q
    within rho's reach of pixel p whose ``labels[q] == label``."""
    nb = out.size
    lag = rho.shape[1] // 2
    py, px = p // nx, p % nx
    for dy in range(-lag, lag + 1):
        qy = py + dy
        if qy < 0 or qy >= ny:
            continue
        for dx in range(-lag, lag + 1):
            qx = px + dx
            if qx < 0 or qx >= nx:
                continue
            q = qy * nx + qx
            if labels[q] == label:
                for b in range(nb):
                    out[b] += factor * s[p, b] * s[q, b] * rho[b, lag + dy, lag + dx]


@njit(cache=True)
def set_variance(pix, n, mark, tag, nx, ny, s, rho, out):
    """Own-noise variance of the sum over ``pix[:n]`` (those with ``mark == tag``)
    into ``out`` (n_band,), without the sky term: every pair within rho's reach."""
    nb = out.size
    lag = rho.shape[1] // 2
    for b in range(nb):
        out[b] = 0.0
    if lag == 0:
        for i in range(n):
            p = pix[i]
            for b in range(nb):
                out[b] += s[p, b] * s[p, b] * rho[b, 0, 0]
        return
    if n * n < 2 * n * (2 * lag + 1) ** 2:   # fewer pairs than offsets: loop over pairs
        for i in range(n):
            p = pix[i]
            py, px = p // nx, p % nx
            for b in range(nb):
                out[b] += s[p, b] * s[p, b] * rho[b, lag, lag]
            for j in range(i + 1, n):
                q = pix[j]
                dy, dx = q // nx - py, q % nx - px
                if -lag <= dy <= lag and -lag <= dx <= lag:
                    for b in range(nb):
                        out[b] += 2.0 * s[p, b] * s[q, b] * rho[b, lag + dy, lag + dx]
        return
    for i in range(n):
        _window_sum(pix[i], mark, tag, nx, ny, s, rho, 1.0, out)


@njit(cache=True)
def _add_variance(q, members, n, mark, tag, nx, ny, s, rho, vown):
    """Add pixel q to the own-noise variance ``vown`` of a set (``members[:n]``,
    marked ``tag``; q not yet in it): its variance and twice its covariances."""
    nb = vown.size
    lag = rho.shape[1] // 2
    for b in range(nb):
        vown[b] += s[q, b] * s[q, b] * rho[b, lag, lag]
    if lag == 0:
        return
    qy, qx = q // nx, q % nx
    if n < (2 * lag + 1) ** 2:
        for i in range(n):
            p = members[i]
            dy, dx = p // nx - qy, p % nx - qx
            if -lag <= dy <= lag and -lag <= dx <= lag:
                for b in range(nb):
                    vown[b] += 2.0 * s[p, b] * s[q, b] * rho[b, lag + dy, lag + dx]
        return
    _window_sum(q, mark, tag, nx, ny, s, rho, 2.0, vown)


@njit(cache=True)
def _meets(fsum, var, n, sky, thr, req):
    """True when the sum reaches ``thr`` in every required band (variance ``var``
    without the sky term; NaN fails)."""
    for b in range(fsum.size):
        if req[b]:
            v = var[b] + (n * sky[b]) ** 2
            if not (fsum[b] / np.sqrt(v) >= thr[b]):
                return False
    return True


@njit(cache=True)
def _progress(fsum, var, n, sky, thr, req):
    """Mean over required bands of min(S/N / thr, 1): 1 when every band meets its
    threshold, less by how far the bands fall short (NaN: -inf)."""
    tot = 0.0
    m = 0
    for b in range(fsum.size):
        if req[b]:
            r = fsum[b] / np.sqrt(var[b] + (n * sky[b]) ** 2) / thr[b]
            if r != r:
                return -np.inf
            tot += min(r, 1.0)
            m += 1
    return tot / m


@njit(cache=True)
def _neighbour4(p, j, nx, ny):
    """Pixel p's j-th 4-connected neighbour (j = 0..3: +y, -y, +x, -x), -1 off the map."""
    py = p // nx + (1 if j == 0 else (-1 if j == 1 else 0))
    px = p % nx + (1 if j == 2 else (-1 if j == 3 else 0))
    if py < 0 or py >= ny or px < 0 or px >= nx:
        return -1
    return py * nx + px


@njit(cache=True)
def _take(p, n, inbin, tag, members, f, s, v, correlated, fsum, vsum):
    """Put pixel p in the growing bin (``members[n]``, its flux and variance sums);
    returns the new member count."""
    inbin[p] = tag
    members[n] = p
    for b in range(fsum.size):
        fsum[b] += f[p, b]
        vsum[b] += s[p, b] ** 2 if correlated else v[p, b]
    return n + 1


@njit(cache=True)
def grow_sed_bins(f, v, s, fc, fc_sum, free, ny, nx, order, thr, req, limit, radii, rm,
                  min_npix, max_npix, max_failures, rho, sky, tab_n, tab_fac, correlated):
    """The SED-similarity bins of ``sedmap.binning.bin_sed_similarity``.

    Seeds are taken in ``order`` (unbinned ones only). A bin from seed p0 at
    step k is the 4-connected piece, holding p0, of the pixels within
    ``radii[k]`` of p0 (and within ``rm`` of it in x and y) that are free and
    pass the SED test against p0 (reduced chi2 <= ``limit``; the seed always
    does). It succeeds at the first step where it has ``min_npix`` pixels and
    meets ``thr`` in the required bands; it fails when it has more than
    ``max_npix`` pixels, at the last radius, or when no pixel bordering it can
    join at a larger radius. With correlated noise a quick estimate (own
    variances times the compact-disc factor ``tab_fac`` at ``tab_n`` pixels)
    must pass before the exact variance is computed. Seeding stops after
    ``max_failures`` consecutive failures. ``free`` (n_pix,) bool is updated.

    Returns the flat bin map (int32, bins 1..N, 0 = not binned).
    """
    npx = ny * nx
    nb = f.shape[1]
    nr = radii.size
    binmap = np.zeros(npx, np.int32)
    seen = np.zeros(npx, np.int64)     # == seed tag: the pixel's SED test is done
    inbin = np.zeros(npx, np.int64)    # == seed tag: a member of the growing bin
    wsize = (2 * rm + 3) ** 2
    members = np.empty(wsize, np.int64)
    blocked = np.empty(wsize, np.int64)   # taken neighbours outside the current disc
    fsum = np.empty(nb)
    vsum = np.empty(nb)
    vq = np.empty(nb)
    n_bin = 0
    fails = 0
    tag = 0
    for seed in order:
        if not free[seed]:
            continue
        tag += 1
        y0, x0 = seed // nx, seed % nx
        fs, fs_sum, vs = fc[seed], fc_sum[seed], v[seed]
        members[0] = seed
        n = 1
        head = 0
        nblk = 0
        inbin[seed] = tag
        seen[seed] = tag
        for b in range(nb):
            fsum[b] = f[seed, b]
            vsum[b] = s[seed, b] ** 2 if correlated else v[seed, b]
        ok = False
        for k in range(nr):
            r2 = radii[k] * radii[k]
            keep = 0
            for i in range(nblk):   # blocked pixels now inside the disc join the bin
                p = blocked[i]
                dy, dx = p // nx - y0, p % nx - x0
                if dy * dy + dx * dx <= r2:
                    n = _take(p, n, inbin, tag, members, f, s, v, correlated, fsum, vsum)
                else:
                    blocked[keep] = p
                    keep += 1
            nblk = keep
            while head < n:   # breadth-first over the taken pixels within the disc
                p = members[head]
                head += 1
                for j in range(4):
                    q = _neighbour4(p, j, nx, ny)
                    if q < 0:
                        continue
                    qy, qx = q // nx, q % nx
                    if seen[q] == tag:
                        continue
                    seen[q] = tag
                    dy, dx = qy - y0, qx - x0
                    if abs(dy) > rm or abs(dx) > rm or not free[q]:
                        continue
                    if _chi2(fc, fc_sum, v, q, fs, fs_sum, vs) > limit:
                        continue
                    if dy * dy + dx * dx <= r2:
                        n = _take(q, n, inbin, tag, members, f, s, v, correlated, fsum,
                                  vsum)
                    else:
                        blocked[nblk] = q
                        nblk += 1
            if n > max_npix:
                break
            if n >= min_npix:
                if correlated:
                    for b in range(nb):
                        vq[b] = vsum[b] * _interp(float(n), tab_n, tab_fac[:, b])
                    if _meets(fsum, vq, n, sky, thr, req):
                        set_variance(members, n, inbin, tag, nx, ny, s, rho, vq)
                        ok = _meets(fsum, vq, n, sky, thr, req)
                else:
                    ok = _meets(fsum, vsum, 0, sky, thr, req)
            if ok or nblk == 0:
                break
        if ok:
            n_bin += 1
            for i in range(n):
                binmap[members[i]] = n_bin
                free[members[i]] = False
            fails = 0
        else:
            fails += 1
            if fails >= max_failures:
                break
    return binmap


@njit(cache=True)
def accrete_bins(f, s, left, binmap, ny, nx, order, thr, req, min_npix, max_npix, first_id,
                 rho, sky):
    """Bin the pixels ``left`` (n_pix,) bool that ``binmap`` (flat, updated) leaves at 0.

    Seeds in ``order`` (each still unbinned one starts a bin). A bin accretes,
    one at a time, the unbinned ``left`` pixel bordering it (4-connected) that
    is nearest to its centroid (ties: the smaller index), until it has at least
    ``min_npix`` pixels and meets ``thr`` in the required bands (every
    covariance counted), or has ``max_npix`` pixels, or nothing borders it.
    A bin that does not meet the thresholds keeps the prefix of its accretion,
    with at least ``min_npix`` pixels, of the highest :func:`_progress` (ties:
    the smaller), and gives the rest back. A bin that never
    reached ``min_npix`` pixels keeps them all.

    Returns (number of new bins, status per new bin: 0 meets the thresholds,
    1 short of them, 2 fewer than ``min_npix`` pixels); new bins are numbered
    from ``first_id``.
    """
    npx = ny * nx
    nb = f.shape[1]
    tag_of = np.zeros(npx, np.int64)   # == tag: in the growing bin or its border list
    inbin = np.zeros(npx, np.int64)    # == tag: in the growing bin
    seq = np.empty(max(min(max_npix, npx), 1), np.int64)
    front = np.empty(npx, np.int64)
    status = np.empty(npx, np.int8)
    fsum = np.empty(nb)
    vown = np.empty(nb)
    n_new = 0
    tag = 0
    for seed in order:
        if binmap[seed] != 0 or not left[seed]:
            continue
        tag += 1
        n = 0
        nfr = 1
        front[0] = seed
        tag_of[seed] = tag
        sy = 0.0
        sx = 0.0
        for b in range(nb):
            fsum[b] = 0.0
            vown[b] = 0.0
        best_n = -1
        best = -np.inf
        reached = False
        while nfr > 0 and n < max_npix:
            # the border pixel nearest to the centroid (the seed first)
            j = 0
            if n > 0:
                cy, cx = sy / n, sx / n
                dbest = np.inf
                for i in range(nfr):
                    q = front[i]
                    d = (q // nx - cy) ** 2 + (q % nx - cx) ** 2
                    if d < dbest or (d == dbest and q < front[j]):
                        dbest = d
                        j = i
            q = front[j]
            nfr -= 1
            front[j] = front[nfr]
            _add_variance(q, seq, n, inbin, tag, nx, ny, s, rho, vown)
            inbin[q] = tag
            seq[n] = q
            n += 1
            sy += q // nx
            sx += q % nx
            for b in range(nb):
                fsum[b] += f[q, b]
            for jj in range(4):
                r = _neighbour4(q, jj, nx, ny)
                if r < 0:
                    continue
                if tag_of[r] == tag or not left[r] or binmap[r] != 0:
                    continue
                tag_of[r] = tag
                front[nfr] = r
                nfr += 1
            if n >= min_npix:
                if _meets(fsum, vown, n, sky, thr, req):
                    best_n = n
                    reached = True
                    break
                score = _progress(fsum, vown, n, sky, thr, req)
                if score > best:
                    best = score
                    best_n = n
        if best_n < 0:
            best_n = n
            status[n_new] = 2
        else:
            status[n_new] = 0 if reached else 1
        for i in range(best_n):
            binmap[seq[i]] = first_id + n_new
        n_new += 1
    return n_new, status[:n_new].copy()


@njit(cache=True)
def _bin_variance(k, head, nxt, size, flat, nx, ny, s, rho, pix, mark, out):
    """Own-noise variance of bin k's sum (no sky term) into ``out``."""
    n = 0
    p = head[k]
    while p >= 0:
        pix[n] = p
        n += 1
        p = nxt[p]
    set_variance(pix, n, flat, k, nx, ny, s, rho, out)


@njit(cache=True)
def _cross(a, b, head, nxt, size, flat, nx, ny, s, rho, out):
    """Own-noise covariance sum over pixel pairs (p in a, q in b) into ``out``."""
    nb = out.size
    lag = rho.shape[1] // 2
    for j in range(nb):
        out[j] = 0.0
    if lag == 0:
        return
    if size[a] > size[b]:
        a, b = b, a
    p = head[a]
    while p >= 0:
        _window_sum(p, flat, b, nx, ny, s, rho, 1.0, out)
        p = nxt[p]


@njit(cache=True)
def _neighbours(k, head, nxt, flat, nx, ny, stamp, count, ids):
    """Bins bordering bin k (4-connected): their number m; ``ids[:m]`` in the order
    met, ``count[id]`` the shared border length. ``stamp`` (n_ids,) scratch, all
    -1 on entry and on exit."""
    m = 0
    p = head[k]
    while p >= 0:
        for j in range(4):
            q = _neighbour4(p, j, nx, ny)
            if q < 0:
                continue
            lab = flat[q]
            if lab <= 0 or lab == k:
                continue
            if stamp[lab] < 0:
                stamp[lab] = 0
                count[lab] = 0
                ids[m] = lab
                m += 1
            count[lab] += 1
        p = nxt[p]
    for i in range(m):
        stamp[ids[i]] = -1
    return m


@njit(cache=True)
def _join(a, b, head, tail, nxt, size, flat, fsum):
    """Bin b's pixels join bin a."""
    p = head[b]
    while p >= 0:
        flat[p] = a
        p = nxt[p]
    nxt[tail[a]] = head[b]
    tail[a] = tail[b]
    size[a] += size[b]
    size[b] = 0
    head[b] = -1
    fsum[a] += fsum[b]


@njit(cache=True)
def merge_bins(flat, ny, nx, first, f, s, rho, sky, thr, req, lo, hi, complete, lo_left=0):
    """The merges of ``sedmap.binning.bin_leftovers`` on the flat bin map ``flat``
    (updated; ids need not be consecutive).

    1. Bins under ``lo`` pixels (leftover bins, ids >= ``first``: under
       max(``lo``, ``lo_left``)), smallest first (ties: the smaller id), join the
       neighbour they share the longest border with (ties: the smaller id),
       among those that stay within ``hi`` pixels if any; one with no
       neighbour is dropped (its pixels become 0).
    2. Passes over the bins short of the thresholds (leftover bins, ids >=
       ``first``, and any other: a Voronoi cell under the target, a bin a piece
       joined), in id order, until one changes nothing: such a bin merges with the
       neighbour with which, fitting in ``hi`` pixels, it meets the thresholds
       (the highest progress first) or, the neighbour also short, reaches a
       higher progress than either alone (the highest); ties: the smaller id.
       The pair keeps the smaller id.

    ``complete`` (n_ids,) bool: bins below ``first`` known to meet the
    thresholds (complete SED bins); the others, and those a piece joins, are
    tested. Returns ``complete`` after the merges (False for ids without pixels).
    """
    npx = ny * nx
    nb = f.shape[1]
    nid = complete.size
    head = -np.ones(nid, np.int64)
    tail = -np.ones(nid, np.int64)
    nxt = -np.ones(npx, np.int64)
    size = np.zeros(nid, np.int64)
    fsum = np.zeros((nid, nb))
    for p in range(npx):
        k = flat[p]
        if k <= 0:
            continue
        if head[k] < 0:
            head[k] = p
        else:
            nxt[tail[k]] = p
        tail[k] = p
        size[k] += 1
        for j in range(nb):
            fsum[k, j] += f[p, j]
    vown = np.zeros((nid, nb))
    known = np.zeros(nid, np.bool_)    # vown[k] is up to date
    stamp = -np.ones(nid, np.int64)
    count = np.zeros(nid, np.int64)
    ids = np.empty(nid, np.int64)
    pix = np.empty(npx, np.int64)
    cross = np.empty(nb)
    vu = np.empty(nb)
    # 1. pieces under lo pixels
    retest = np.zeros(nid, np.bool_)
    while True:
        k = -1
        for i in range(1, nid):
            floor = lo if i < first else max(lo, lo_left)
            if 0 < size[i] < floor and (k < 0 or size[i] < size[k]):
                k = i
        if k < 0:
            break
        m = _neighbours(k, head, nxt, flat, nx, ny, stamp, count, ids)
        if m == 0:
            p = head[k]
            while p >= 0:
                flat[p] = 0
                p = nxt[p]
            size[k] = 0
            head[k] = -1
            continue
        j = ids[0]   # the longest border, among the neighbours it fits in first
        for i in range(1, m):
            c = ids[i]
            fit_c, fit_j = size[c] + size[k] <= hi, size[j] + size[k] <= hi
            if (fit_c and not fit_j) or (fit_c == fit_j and (
                    count[c] > count[j] or (count[c] == count[j] and c < j))):
                j = c
        _join(j, k, head, tail, nxt, size, flat, fsum)
        known[j] = False
        retest[j] = True
    for k in range(1, nid):
        if size[k] == 0:
            complete[k] = False
        elif retest[k] or k >= first or not complete[k]:
            _bin_variance(k, head, nxt, size, flat, nx, ny, s, rho, pix, flat, vown[k])
            known[k] = True
            complete[k] = _meets(fsum[k], vown[k], size[k], sky, thr, req)
    # 2. leftover bins short of the thresholds
    changed = True
    while changed:
        changed = False
        for k in range(1, nid):
            if size[k] == 0 or complete[k]:
                continue
            m = _neighbours(k, head, nxt, flat, nx, ny, stamp, count, ids)
            pk = _progress(fsum[k], vown[k], size[k], sky, thr, req)
            best_j, best_ok, best_pr = -1, False, -np.inf
            for i in range(m):
                j = ids[i]
                if size[k] + size[j] > hi:
                    continue
                if not known[j]:
                    _bin_variance(j, head, nxt, size, flat, nx, ny, s, rho, pix, flat, vown[j])
                    known[j] = True
                _cross(k, j, head, nxt, size, flat, nx, ny, s, rho, cross)
                for b in range(nb):
                    vu[b] = vown[k, b] + vown[j, b] + 2.0 * cross[b]
                fu = fsum[k] + fsum[j]
                n = size[k] + size[j]
                ok = _meets(fu, vu, n, sky, thr, req)
                pr = _progress(fu, vu, n, sky, thr, req)
                if not ok:
                    if complete[j]:
                        continue
                    if not pr > max(pk, _progress(fsum[j], vown[j], size[j], sky, thr, req)):
                        continue
                if ((ok and not best_ok) or (ok == best_ok and pr > best_pr)
                        or (ok == best_ok and pr == best_pr and j < best_j)):
                    best_j, best_ok, best_pr = j, ok, pr
            if best_j < 0:
                continue
            a, b = min(k, best_j), max(k, best_j)
            _cross(a, b, head, nxt, size, flat, nx, ny, s, rho, cross)
            for j in range(nb):
                vown[a, j] += vown[b, j] + 2.0 * cross[j]
            _join(a, b, head, tail, nxt, size, flat, fsum)
            complete[a] = best_ok
            complete[b] = False
            changed = True
    return complete
