"""Compare two runs' products byte for byte, except provenance: FITS headers and HDF5
attributes that record the version, the configuration hash and other provenance are
left out, and keys that only one side has are listed (new metadata) rather than
failed. Data arrays, tables and JSON must be identical.

    python tests/tools/compare_products.py RESULTS_A/demo RESULTS_B/demo

Used to check that a refactor leaves the demo's products unchanged (docs/validation.md).
Exit status 1 when anything but provenance differs.
"""

import json
import re
import sys
from pathlib import Path

import h5py
import numpy as np
from astropy.io import fits

#: header keys / attributes that are provenance (sedmap.io.provenance) or run-specific
PROVENANCE = {"SEDMAPV", "SEDMAP_V", "CONFHASH", "CONFIG_HASH", "VERSION", "DATE",
              "config_hash", "sedmap_version", "CHECKSUM", "DATASUM"}


def _same(a, b):
    a, b = np.asarray(a), np.asarray(b)
    if a.shape != b.shape or a.dtype != b.dtype:
        return False
    if a.dtype.kind in "fc":
        return np.array_equal(a, b, equal_nan=True)
    return np.array_equal(a, b)


def _norm(value, roots):
    """A header value with each run's folder replaced by one placeholder."""
    if isinstance(value, str):
        for r in roots:
            value = value.replace(r, "<RUN>")
    return value


def compare_fits(a, b, roots=()):
    out = []
    with fits.open(a) as fa, fits.open(b) as fb:
        if [h.name for h in fa] != [h.name for h in fb]:
            return [f"HDUs {[h.name for h in fa]} vs {[h.name for h in fb]}"]
        for ha, hb in zip(fa, fb):
            ka = {k for k in ha.header if k not in PROVENANCE}
            kb = {k for k in hb.header if k not in PROVENANCE}
            for k in sorted(ka ^ kb):
                out.append(f"{ha.name}: key {k} only in {'A' if k in ka else 'B'} (new metadata)")
            for k in sorted(ka & kb):
                if k in ("COMMENT", "HISTORY"):
                    continue
                if _norm(ha.header[k], roots) != _norm(hb.header[k], roots):
                    out.append(f"DIFF {ha.name}: {k} = {ha.header[k]!r} vs {hb.header[k]!r}")
            if ha.data is None or hb.data is None:
                if (ha.data is None) != (hb.data is None):
                    out.append(f"DIFF {ha.name}: data in one only")
                continue
            if isinstance(ha.data, fits.FITS_rec):
                if ha.data.tobytes() != hb.data.tobytes():
                    out.append(f"DIFF {ha.name}: table")
            elif not _same(ha.data, hb.data):
                out.append(f"DIFF {ha.name}: data")
    return out


def compare_h5(a, b):
    out = []
    with h5py.File(a, "r") as fa, h5py.File(b, "r") as fb:
        def walk(ga, gb, where):
            ka = {k for k in ga.attrs if k not in PROVENANCE}
            kb = {k for k in gb.attrs if k not in PROVENANCE}
            for k in sorted(ka ^ kb):
                out.append(f"{where}: attr {k} only in {'A' if k in ka else 'B'} (new metadata)")
            for k in sorted(ka & kb):
                if not _same(ga.attrs[k], gb.attrs[k]):
                    out.append(f"DIFF {where}: attr {k}")
            if isinstance(ga, h5py.Dataset):
                if not _same(ga[()], gb[()]):
                    out.append(f"DIFF {where}: data")
                return
            if set(ga) != set(gb):
                out.append(f"DIFF {where}: members {sorted(set(ga) ^ set(gb))}")
            for k in sorted(set(ga) & set(gb)):
                walk(ga[k], gb[k], f"{where}/{k}")
        walk(fa, fb, "")
    return out


def compare_dirs(da, db):
    """Differences (list of str) between the products under two folders."""
    da, db = Path(da), Path(db)
    roots = (str(da.resolve().parent), str(db.resolve().parent))
    fa = {p.relative_to(da) for p in da.rglob("*") if p.is_file()}
    fb = {p.relative_to(db) for p in db.rglob("*") if p.is_file()}
    out = [f"DIFF file only in {'A' if p in fa else 'B'}: {p}" for p in sorted(fa ^ fb)]
    for rel in sorted(fa & fb):
        a, b = da / rel, db / rel
        if a.read_bytes() == b.read_bytes():
            continue
        if rel.suffix == ".fits":
            out += [f"{rel}: {d}" for d in compare_fits(a, b, roots)]
        elif rel.suffix == ".h5":
            out += [f"{rel}: {d}" for d in compare_h5(a, b)]
        elif rel.suffix == ".json":
            if json.loads(a.read_text()) != json.loads(b.read_text()):
                out.append(f"DIFF {rel}: JSON")
        elif rel.suffix in (".yaml", ".html", ".txt"):
            # text: the same once the run folders are one placeholder; the HTML summary's
            # configuration hashes are provenance
            ta, tb = (_norm(x.read_text(), roots) for x in (a, b))
            if rel.suffix == ".html":
                ta, tb = (re.sub(r"(configuration hash[^<]*</td><td>)[0-9a-f]+", r"\1", t)
                          for t in (ta, tb))
            if ta != tb:
                out.append(f"DIFF {rel}: text")
        else:
            out.append(f"DIFF {rel}: bytes ({rel.suffix or 'no suffix'})")
    return out


if __name__ == "__main__":
    diffs = compare_dirs(sys.argv[1], sys.argv[2])
    for d in diffs:
        print(d)
    n = sum(d.split(": ", 1)[-1].startswith("DIFF") or d.startswith("DIFF") for d in diffs)
    print(f"{n} difference(s) beyond provenance and new metadata")
    sys.exit(1 if n else 0)
