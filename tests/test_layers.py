"""The package's layers: no import cycles (function-level imports included), sedmap.io
imports nothing above it, no function-level imports to dodge a cycle, and every
configuration key is read by some code."""

import ast
import re
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
PKG = ROOT / "sedmap"
#: modules whose function-level imports are for start-up time, not cycles: the command
#: line imports a stage only when its subcommand runs (``sedmap --help`` stays fast)
LAZY_OK = {"sedmap.cli"}


def _modules():
    mods = {}
    for f in PKG.rglob("*.py"):
        name = ".".join(f.relative_to(ROOT).with_suffix("").parts)
        mods[name.removesuffix(".__init__")] = f
    return mods


def import_graph(mods=None):
    """{module: {(imported sedmap module, function-level?)}} of every import statement."""
    mods = mods or _modules()
    graph = {}
    for name, path in mods.items():
        pkg = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
        tree = ast.parse(path.read_text())
        funcs = [n for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef,
                                                              ast.AsyncFunctionDef))]
        inner = {id(x) for f in funcs for x in ast.walk(f)}
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom):
                if node.level:
                    base = pkg.split(".")[:len(pkg.split(".")) - node.level + 1]
                    mod = ".".join(base + ([node.module] if node.module else []))
                else:
                    mod = node.module or ""
                targets = [f"{mod}.{a.name}" if f"{mod}.{a.name}" in mods else mod
                           for a in node.names]
            elif isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            else:
                continue
            for t in targets:
                if t in mods and t != name:
                    graph.setdefault(name, set()).add((t, id(node) in inner))
    return graph


def cycles(edges):
    """Strongly connected components with more than one node (Tarjan)."""
    index, low, stack, on, out = {}, {}, [], set(), []
    counter = [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in edges.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in list(edges):
        if v not in index:
            visit(v)
    return out


def test_cycle_finder_finds_a_cycle():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_import_graph_has_no_cycles():
    """Modules and subpackages (sedmap.fit, sedmap.io, ...): no cycle, counting the
    imports inside functions too (they hide a cycle, they do not remove it)."""
    graph = import_graph()
    mods = {a: {b for b, _ in bs} for a, bs in graph.items()}
    assert cycles(mods) == []

    def top(m):
        return ".".join(m.split(".")[:2])

    pkgs = {}
    for a, bs in mods.items():
        for b in bs:
            if top(a) != top(b) and top(b) != "sedmap":
                pkgs.setdefault(top(a), set()).add(top(b))
    assert cycles(pkgs) == []


def test_io_imports_nothing_above_it():
    """The data model (sedmap.io) depends on the errors, the constants and the version
    only: every stage reads and writes through it, never the reverse."""
    allowed = {"sedmap", "sedmap.errors", "sedmap.constants"}
    bad = {(a, b) for a, bs in import_graph().items() if a.startswith("sedmap.io")
           for b, _ in bs if not (b.startswith("sedmap.io") or b in allowed)}
    assert bad == set()


def test_no_function_level_imports_of_sedmap():
    """Imports of sedmap modules sit at module level (a function-level import is how a
    cycle hides), but in the command line's lazy subcommands."""
    lazy = {(a, b) for a, bs in import_graph().items() if a not in LAZY_OK
            for b, inner in bs if inner}
    assert lazy == set()


# ------------------------------------------------------------------ config keys
def schema_keys(schema):
    """Every key path of the schema, as tuples (array items as '[]')."""
    keys = []

    def walk(node, path):
        if not isinstance(node, dict):
            return
        for key, sub in (node.get("properties") or {}).items():
            keys.append(path + (key,))
            walk(sub, path + (key,))
        if isinstance(node.get("items"), dict):
            walk(node["items"], path + ("[]",))
        for alt in node.get("anyOf", []) + node.get("oneOf", []):
            walk(alt, path)

    walk(schema, ())
    return keys


def unread_keys(schema, source):
    """The schema keys that ``source`` (the code's text) never names: as a quoted string
    (``cfg["key"]``), an attribute (``params.key``) or a keyword (``key=``)."""
    return [".".join(k) for k in schema_keys(schema)
            if not re.search(rf"""["']{re.escape(k[-1])}["']|\.{re.escape(k[-1])}\b|"""
                             rf"""\b{re.escape(k[-1])}=""", source)]


def _code():
    files = [p for d in ("sedmap", "workflow", "scripts") for p in (ROOT / d).rglob("*")
             if p.suffix in (".py", ".smk")] + [ROOT / "Snakefile"]
    return "\n".join(p.read_text() for p in files)


def test_every_config_key_is_read_by_some_code():
    """A key in config/schema.yaml that no code names is a setting that does nothing
    (as fit.bins_per_job once was, yet inside the fit's hash)."""
    schema = yaml.safe_load((ROOT / "config" / "schema.yaml").read_text())
    assert len(schema_keys(schema)) > 150
    assert unread_keys(schema, _code()) == []
    # the check itself: a key nobody reads is reported
    fake = {"properties": {"fit": {"properties": {"bins_per_nothing_xyz": {}}}}}
    assert unread_keys(fake, _code()) == ["fit.bins_per_nothing_xyz"]


# ------------------------------------------------------------------ registries
def test_schema_enums_name_the_registries():
    """The extension points' registries are what the schema offers: fit.method the
    fit methods, models.sfh the SFHs (a new entry is one class plus its schema name)."""
    from sedmap.fit.methods import METHODS
    from sedmap.sps.sfh import FORMS, SFHS

    props = yaml.safe_load((ROOT / "config" / "schema.yaml").read_text())["properties"]
    assert props["fit"]["properties"]["method"]["enum"] == list(METHODS)
    assert props["models"]["properties"]["sfh"]["enum"] == list(FORMS) == list(SFHS)
    from sedmap.images.psf import PSF_MODELS

    band = props["images"]["properties"]["bands"]["items"]["properties"]
    assert band["psf_model"]["enum"] == list(PSF_MODELS)
    from sedmap.io.bandimage import PSF_OPTIONS

    # the band PSF options' defaults: the schema shows the library's one table
    assert {k: band[k]["default"] for k in PSF_OPTIONS} == PSF_OPTIONS
    # so do the generic cube reader's and the continuity SFH's young edges
    from sedmap.ifs.readers import WCS_READER_DEFAULTS
    from sedmap.sps.sfh import CONTINUITY_YOUNG_GYR

    reader = props["ifs"]["properties"]["reader"]["properties"]
    assert {k: reader[k]["default"] for k in WCS_READER_DEFAULTS} == WCS_READER_DEFAULTS
    assert tuple(props["models"]["properties"]["continuity_young_gyr"]["default"]) \
        == CONTINUITY_YOUNG_GYR
    for name, cls in SFHS.items():  # every SFH parameter has a range and a default range
        assert set(cls.params) <= set(cls.param_info), name
        assert set(cls.params) <= set(props["models"]["properties"]["params"]["properties"])
