"""The documentation: README size, links, the quick start's test command,
docs/configuration.md generated from config/schema.yaml, and the mkdocs site
(built with --strict outside the checkout, every page in its nav, every module
on an API page). Fast: no Snakemake runs."""

import copy
import importlib.util
import os
import re
import subprocess
import sys
import zlib
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
DOCS = ROOT / "docs"
SCHEMA = ROOT / "config" / "schema.yaml"
PAGES = [README] + sorted(DOCS.glob("*.md"))
README_MAX_LINES = 220
TEST_COMMAND = "python -m pytest -q"


def load_generator():
    path = DOCS / "gen_config_reference.py"
    spec = importlib.util.spec_from_file_location("gen_config_reference", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def load_schema():
    return yaml.safe_load(SCHEMA.read_text(encoding="utf-8"))


# ------------------------------------------------------------ markdown helpers
FENCE = re.compile(r"^\s*(```|~~~)")
LINK = re.compile(r"!?\[(?:[^\[\]]|\[[^\]]*\])*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")


def prose_lines(text):
    """The lines outside fenced code blocks."""
    inside = False
    for line in text.splitlines():
        if FENCE.match(line):
            inside = not inside
            continue
        if not inside:
            yield line


def slug(heading):
    """GitHub's anchor for a heading's text."""
    text = re.sub(r"[`*_]{1,2}(?=\S)|(?<=\S)[`*_]{1,2}", "", heading.strip()).lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def anchors(path):
    seen, out = {}, set()
    for line in prose_lines(path.read_text(encoding="utf-8")):
        match = re.match(r"#{1,6}\s+(.*?)\s*#*\s*$", line)
        if match:
            base = slug(match.group(1))
            n = seen.get(base, 0)
            seen[base] = n + 1
            out.add(base if n == 0 else f"{base}-{n}")
    return out


def broken_links(path):
    """Relative links of a Markdown file whose file (or heading) does not exist.
    Web links (http, https, mailto) and links to an anchor of the same page are
    not checked."""
    problems = []
    text = "\n".join(prose_lines(path.read_text(encoding="utf-8")))
    text = re.sub(r"`[^`\n]*`", "", text)  # inline code is not a link
    for target in LINK.findall(text):
        if re.match(r"[a-z][a-z0-9+.-]*:", target, re.IGNORECASE) or target.startswith("#"):
            continue
        file_part, _, anchor = target.partition("#")
        dest = (path.parent / file_part).resolve()
        if not dest.exists():
            problems.append(f"{target}: no such file")
        elif anchor and dest.suffix == ".md" and anchor not in anchors(dest):
            problems.append(f"{target}: no heading #{anchor} in {dest.name}")
    return problems


def section(text, heading):
    """The text of a '## heading' section, up to the next '## '."""
    match = re.search(rf"^## {re.escape(heading)}\s*$(.*?)(?=^## |\Z)", text,
                      re.MULTILINE | re.DOTALL)
    assert match, f"no '## {heading}' section"
    return match.group(1)


def code_lines(text):
    """The lines inside fenced code blocks."""
    inside = False
    for line in text.splitlines():
        if FENCE.match(line):
            inside = not inside
        elif inside:
            yield line


# -------------------------------------------------------- configuration page
def schema_keys(node, where=""):
    """Every dotted key of the schema: nested objects and arrays of objects
    (``images.bands[].filter``) included."""
    for name, sub in node.get("properties", {}).items():
        dotted = f"{where}.{name}" if where else name
        yield dotted
        if "properties" in sub:
            yield from schema_keys(sub, dotted)
        elif isinstance(sub.get("items"), dict) and "properties" in sub["items"]:
            yield from schema_keys(sub["items"], dotted + "[]")


def test_configuration_page_is_generated_from_the_schema():
    page = (DOCS / "configuration.md").read_text(encoding="utf-8")
    assert load_generator().render(load_schema()) == page, (
        "docs/configuration.md does not match config/schema.yaml: "
        "run .venv/bin/python docs/gen_config_reference.py")


def test_configuration_page_lists_every_key():
    page = (DOCS / "configuration.md").read_text(encoding="utf-8")
    schema = load_schema()
    for name, sub in schema["properties"].items():
        shown = f"## `{name}`\n" if "properties" in sub else f"| `{name}` |"
        assert shown in page, f"top-level key {name} missing from docs/configuration.md"
    for dotted in schema_keys(schema):
        if "." in dotted:
            assert f"| `{dotted}` |" in page, f"{dotted} has no row in docs/configuration.md"


def test_render_follows_a_changed_schema():
    gen = load_generator()
    schema = load_schema()
    changed = copy.deepcopy(schema)
    fit = changed["properties"]["fit"]["properties"]
    fit["sys_err"]["description"] = "a description that is not in the page"
    fit["sys_err"]["default"] = 0.125
    page = gen.render(changed)
    assert page != gen.render(schema)
    assert ("| `fit.sys_err` | number | `0.125` | x ≥ 0 | "
            "a description that is not in the page |") in page


def test_render_resolves_refs_unions_enums_and_arrays():
    schema = {
        "$defs": {"pair": {"description": "from the def",
                           "anyOf": [{"type": "number"},
                                     {"type": "array", "items": {"type": "number"},
                                      "minItems": 2, "maxItems": 2}]}},
        "properties": {
            "sec": {"type": "object", "description": "A section.", "properties": {
                "p": {"$ref": "#/$defs/pair", "default": [1, 2]},
                "q": {"$ref": "#/$defs/pair", "description": "own words"},
                "c": {"enum": ["a", "b"], "default": "a"},
                "n": {"type": ["number", "null"], "exclusiveMinimum": 0, "default": None},
                "list": {"type": "array", "default": [], "items": {
                    "type": "object", "required": ["x"],
                    "properties": {"x": {"type": "integer", "minimum": 1, "maximum": 5}}}},
                "sub": {"type": "object", "default": {}, "properties": {
                    "deep": {"type": "boolean", "default": True}}},
            }},
            "top": {"type": "string", "minLength": 1, "default": "here"},
        },
    }
    page = load_generator().render(schema)
    assert "## `sec`" in page and "A section." in page
    assert ("| `sec.p` | number or array of number | `[1, 2]` | "
            "number; or array of number: 2 items | from the def |") in page
    assert "| `sec.q` | number or array of number | — |" in page and "own words" in page
    assert "| `sec.c` | string | `a` | `a`, `b` |" in page
    assert "| `sec.n` | number or null | `null` | x > 0 |" in page
    assert "### `sec.list[]`" in page
    assert "| `sec.list[].x` | integer | — | required; 1 ≤ x ≤ 5 |" in page
    assert "### `sec.sub`" in page and "| `sec.sub.deep` | boolean | `true` |" in page
    assert "## Top-level keys" in page and "| `top` | string | `here` | not empty |" in page


def test_unknown_schema_keywords_are_found():
    # an unquoted comma in a YAML flow mapping splits a description in two
    schema = yaml.safe_load("properties:\n  a: {type: number, description: width, pixels}\n")
    assert load_generator().unknown_keywords(schema) == ["a: pixels"]


def test_main_writes_the_rendered_page(tmp_path, monkeypatch):
    gen = load_generator()
    monkeypatch.setattr(gen, "PAGE", tmp_path / "configuration.md")
    assert gen.main() == 0
    assert (tmp_path / "configuration.md").read_text(encoding="utf-8") == gen.render(
        load_schema())


# ------------------------------------------------------------------ README
def test_readme_is_short():
    lines = README.read_text(encoding="utf-8").splitlines()
    assert len(lines) <= README_MAX_LINES, (
        f"README.md has {len(lines)} lines (at most {README_MAX_LINES}): move detail to docs/")


def test_quick_start_gives_the_test_command():
    readme = README.read_text(encoding="utf-8")
    commands = [x for x in code_lines(section(readme, "Quick start"))
                if x.rstrip().endswith(TEST_COMMAND)]
    assert commands, f"the quick start has no code line ending in {TEST_COMMAND!r}"
    # tests/test_workflow.py takes the README's first line with 'pytest' and '&&'
    first = next(x for x in readme.splitlines() if "pytest" in x and "&&" in x)
    assert first in commands


def test_readme_links_every_docs_page():
    readme = README.read_text(encoding="utf-8")
    for page in sorted(DOCS.glob("*.md")):
        assert f"](docs/{page.name})" in readme, f"README.md does not link docs/{page.name}"


@pytest.mark.parametrize("path", PAGES, ids=[str(p.relative_to(ROOT)) for p in PAGES])
def test_relative_links_point_to_existing_files(path):
    assert broken_links(path) == []


def test_link_check_reports_broken_links(tmp_path):
    (tmp_path / "there.md").write_text("# A heading: `code`, here\n")
    page = tmp_path / "page.md"
    page.write_text(
        "[ok](there.md) [ok](there.md#a-heading-code-here) [web](https://x.invalid/a.md)\n"
        "[same page](#anywhere) ![img](missing.png) [gone](docs/missing.md)\n"
        "[bad anchor](there.md#nowhere)\n"
        "```\n[in code](not-checked.md)\n```\n")
    assert broken_links(page) == ["missing.png: no such file", "docs/missing.md: no such file",
                                  "there.md#nowhere: no heading #nowhere in there.md"]


# ------------------------------------------------------------ the website
MKDOCS_YML = ROOT / "mkdocs.yml"
#: modules with nothing public to show (their functions are all private)
API_INTERNAL = {"sedmap.binning_kernels"}


def nav_pages(node):
    """The page paths (relative to docs/) of an mkdocs ``nav``."""
    if isinstance(node, str):
        yield node
    elif isinstance(node, list):
        for item in node:
            yield from nav_pages(item)
    elif isinstance(node, dict):
        for value in node.values():
            yield from nav_pages(value)


def top_entries():
    """What the checkout holds at the top and in docs/, to catch a build that writes
    there (a site/ folder, a plugin's .cache)."""
    return ({p.name for p in ROOT.iterdir()}
            | {str(p.relative_to(ROOT)) for p in DOCS.rglob("*") if "__pycache__" not in p.parts})


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """The documentation site, built once with ``mkdocs build --strict`` outside the
    checkout; fails the tests that use it when the build does not pass."""
    out = tmp_path_factory.mktemp("site") / "site"
    before = top_entries()
    env = dict(os.environ, NO_MKDOCS_2_WARNING="1")  # Material's notice about its end of life
    run = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "-f", str(MKDOCS_YML),
         "-d", str(out)],
        cwd=ROOT, capture_output=True, text=True, timeout=600, check=False, env=env)
    assert run.returncode == 0, (
        "mkdocs build --strict failed (pip install -e '.[test]' installs mkdocs):\n"
        + run.stderr[-6000:])
    assert top_entries() <= before, (
        f"the docs build wrote into the checkout: {sorted(top_entries() - before)}")
    return out


def test_site_builds_strict(site):
    assert (site / "index.html").is_file()
    assert (site / "api" / "index.html").is_file()


def test_every_page_is_in_the_nav():
    nav = list(nav_pages(yaml.safe_load(MKDOCS_YML.read_text(encoding="utf-8"))["nav"]))
    pages = {str(p.relative_to(DOCS)) for p in DOCS.rglob("*.md")}
    assert sorted(pages - set(nav)) == [], "pages missing from nav in mkdocs.yml"
    assert sorted(set(nav) - pages) == [], "nav in mkdocs.yml names pages that do not exist"


def inventory(site):
    """The identifiers of the site's objects.inv (Sphinx inventory v2)."""
    header, _, body = (site / "objects.inv").read_bytes().partition(
        b"# The remainder of this file is compressed using zlib.\n")
    assert header.startswith(b"# Sphinx inventory version 2")
    return {line.split(" ", 1)[0] for line in zlib.decompress(body).decode().splitlines()}


def test_every_module_has_an_api_page(site):
    modules = set()
    for path in (ROOT / "sedmap").rglob("*.py"):
        parts = path.relative_to(ROOT).with_suffix("").parts
        parts = parts[:-1] if parts[-1] == "__init__" else parts
        if not any(part.startswith("_") for part in parts):
            modules.add(".".join(parts))
    documented = inventory(site)
    missing = sorted(modules - documented - API_INTERNAL - {"sedmap"})
    assert missing == [], ("modules with no API page: add a '::: MODULE' line to a page "
                           f"of docs/api/: {missing}")
