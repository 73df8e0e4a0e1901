"""Write docs/configuration.md and config/config.yaml from config/schema.yaml.

    .venv/bin/python docs/gen_config_reference.py

The schema is the one home of the settings, their defaults and limits; both
files are generated: edit the schema, then run this script again.
tests/test_docs.py fails when either file and the schema disagree.

``render(schema)`` turns the loaded schema (a dict) into the page's text,
``render_defaults(schema)`` into config/config.yaml (every default, commented);
``main()`` reads config/schema.yaml and writes both.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
SCHEMA = ROOT / "config" / "schema.yaml"
PAGE = ROOT / "docs" / "configuration.md"
DEFAULTS = ROOT / "config" / "config.yaml"

#: JSON Schema keywords this script knows how to show. Any other key in a
#: schema node is reported by :func:`unknown_keywords` (and by ``main``).
KNOWN = {
    "$schema", "$defs", "$ref", "title", "description", "type", "default", "enum",
    "properties", "additionalProperties", "propertyNames", "required", "anyOf", "oneOf",
    "items", "minItems", "maxItems", "minimum", "maximum", "exclusiveMinimum",
    "exclusiveMaximum", "pattern", "minLength",
}

NO_VALUE = "—"


# ------------------------------------------------------------------ helpers
def resolve(node: dict, root: dict) -> dict:
    """``node`` with a local ``$ref`` ("#/$defs/NAME") replaced by its target.

    Keys next to the ``$ref`` (description, default) win over the target's.
    """
    if "$ref" not in node:
        return node
    ref = node["$ref"]
    if not ref.startswith("#/"):
        raise ValueError(f"only local $refs are supported, not {ref!r}")
    target = root
    for part in ref[2:].split("/"):
        target = target[part.replace("~1", "/").replace("~0", "~")]
    merged = dict(resolve(target, root))
    merged.update({k: v for k, v in node.items() if k != "$ref"})
    return merged


def text(value) -> str:
    """One table cell: whitespace collapsed, pipes escaped."""
    return " ".join(str(value).split()).replace("|", "\\|")


def code(value) -> str:
    """A value as inline code, YAML-like: strings bare, null/true/false lower case."""
    if isinstance(value, str):
        shown = value
    else:
        shown = json.dumps(value, ensure_ascii=False).replace('"', "")
    return f"`{shown}`"


def number(value) -> str:
    return json.dumps(value)


def alternatives(node: dict) -> list[dict] | None:
    return node.get("anyOf") or node.get("oneOf")


def type_of(node: dict, root: dict) -> str:
    """The key's type in words: 'number', 'string or null', 'array of number', ..."""
    node = resolve(node, root)
    alts = alternatives(node)
    if alts and any("type" in a or "$ref" in a or "enum" in a for a in alts):
        names: list[str] = []
        for alt in alts:
            name = type_of(alt, root)
            if name not in names:
                names.append(name)
        return " or ".join(names)
    if "enum" in node and "type" not in node:
        kinds = []
        for value in node["enum"]:
            kind = {str: "string", bool: "boolean", int: "integer", float: "number",
                    type(None): "null"}[type(value)]
            if kind not in kinds:
                kinds.append(kind)
        return " or ".join(kinds)
    kinds = node.get("type")
    if kinds is None:
        return "any"
    if isinstance(kinds, str):
        kinds = [kinds]
    out = []
    for kind in kinds:
        if kind == "array" and isinstance(node.get("items"), dict):
            kind = f"array of {type_of(node['items'], root)}"
        out.append(kind)
    return " or ".join(out)


def range_of(node: dict) -> str:
    """Numeric limits as 'x ≥ 0', '0 ≤ x < 360', 'x > 0'."""
    low = high = ""
    if "minimum" in node:
        low = f"{number(node['minimum'])} ≤ "
    if "exclusiveMinimum" in node:
        low = f"{number(node['exclusiveMinimum'])} < "
    if "maximum" in node:
        high = f" ≤ {number(node['maximum'])}"
    if "exclusiveMaximum" in node:
        high = f" < {number(node['exclusiveMaximum'])}"
    if low and high:
        return f"{low}x{high}"
    if low:
        sign = "≥" if "minimum" in node and "exclusiveMinimum" not in node else ">"
        bound = node.get("exclusiveMinimum", node.get("minimum"))
        return f"x {sign} {number(bound)}"
    if high:
        return f"x{high}"
    return ""


def items_count(node: dict) -> str:
    lo, hi = node.get("minItems"), node.get("maxItems")
    if lo is not None and lo == hi:
        return f"{lo} items"
    if lo is not None and hi is not None:
        return f"{lo}–{hi} items"
    if lo is not None:
        return f"at least {lo} item{'s' if lo != 1 else ''}"
    if hi is not None:
        return f"at most {hi} items"
    return ""


def allowed(node: dict, root: dict) -> str:
    """Allowed values in words: the enum, the range, the pattern, item limits."""
    node = resolve(node, root)
    parts: list[str] = []
    alts = alternatives(node)
    if alts:
        shown = []
        for alt in alts:
            if set(alt) <= {"required"}:
                continue  # "one of these keys is required": shown with the object
            rule = allowed(alt, root)
            shown.append(f"{type_of(alt, root)}: {rule}" if rule else type_of(alt, root))
        if shown:
            parts.append("; or ".join(shown))
    if "enum" in node:
        parts.append(", ".join(code(v) for v in node["enum"]))
    limits = range_of(node)
    if limits:
        parts.append(limits)
    if "pattern" in node:
        parts.append(f"matches `{node['pattern']}`")
    if "minLength" in node:
        parts.append("not empty" if node["minLength"] == 1
                     else f"at least {node['minLength']} characters")
    count = items_count(node)
    if count:
        parts.append(count)
    items = node.get("items")
    if isinstance(items, dict):
        inner = allowed(items, root)
        if inner:
            parts.append(f"each {inner}")
    names = node.get("propertyNames")
    if isinstance(names, dict):
        rule = allowed(names, root)
        parts.append(f"keys: {rule}")
    extra = node.get("additionalProperties")
    if isinstance(extra, dict):
        extra = resolve(extra, root)
        value = f"values: {type_of(extra, root)}"
        if extra.get("required"):
            value += " with " + ", ".join(code(k) for k in extra["required"])
        parts.append(value)
    return "; ".join(parts)


def object_part(node: dict, root: dict) -> dict | None:
    """The object schema that holds nested keys: the node itself or its items."""
    node = resolve(node, root)
    if "properties" in node:
        return node
    items = node.get("items")
    if isinstance(items, dict) and "properties" in resolve(items, root):
        return resolve(items, root)
    return None


def child_path(path: str, name: str, node: dict, root: dict) -> str:
    base = f"{path}.{name}" if path else name
    resolved = resolve(node, root)
    if "properties" not in resolved and object_part(node, root) is not None:
        return base + "[]"
    return base


def required_note(node: dict) -> str:
    """'Required: `a`, `b`; and one of `c`, `d`.' for an object schema."""
    parts = []
    if node.get("required"):
        parts.append("required: " + ", ".join(code(k) for k in node["required"]))
    alts = alternatives(node)
    if alts and all(set(a) <= {"required"} for a in alts):
        choice = [" + ".join(code(k) for k in a["required"]) for a in alts]
        parts.append("and one of " + ", ".join(choice))
    if not parts:
        return ""
    note = "; ".join(parts)
    return note[0].upper() + note[1:] + "."


# ------------------------------------------------------------------- render
def table(path: str, node: dict, root: dict) -> list[str]:
    """The table of one object's own keys."""
    rows = ["| Key | Type | Default | Allowed | Description |",
            "|---|---|---|---|---|"]
    required = set(node.get("required", []))
    for name, child in node["properties"].items():
        full = resolve(child, root)
        dotted = f"{path}.{name}" if path else name
        default = code(full["default"]) if "default" in full else NO_VALUE
        rule = allowed(child, root)
        if name in required:
            rule = f"required; {rule}" if rule else "required"
        described = text(full.get("description", ""))
        nested = object_part(child, root)
        if nested is not None:
            below = child_path(path, name, child, root)
            if described and not described.endswith("."):
                described += "."
            described = f"{described} Keys: `{below}` below.".strip()
        rows.append(f"| `{dotted}` | {text(type_of(child, root))} | {default} | "
                    f"{text(rule) or NO_VALUE} | {described or NO_VALUE} |")
    return rows


def section(path: str, node: dict, root: dict, level: int) -> list[str]:
    """Heading, description, table, then the nested objects' sections."""
    node = resolve(node, root)
    lines = [f"{'#' * level} `{path}`", ""]
    if node.get("description"):
        lines += [" ".join(node["description"].split()), ""]
    note = required_note(node)
    if note:
        lines += [note, ""]
    lines += table(path, node, root) + [""]
    for name, child in node["properties"].items():
        nested = object_part(child, root)
        if nested is not None:
            lines += section(child_path(path, name, child, root), nested, root, 3)
    return lines


def render(schema: dict) -> str:
    """The Markdown page for a configuration schema (a loaded JSON Schema)."""
    lines = [
        "# Configuration reference",
        "",
        ("<!-- Generated from config/schema.yaml by docs/gen_config_reference.py."
         " Do not edit: change the schema and run the script again. -->"),
        "",
        ("This page is generated from `config/schema.yaml` (JSON Schema) by"
         " `docs/gen_config_reference.py`."),
        ("The defaults are the schema's (`config/config.yaml` lists them, generated"
         " by the same script); a galaxy file sets only what differs from them."),
        "",
    ]
    if schema.get("description"):
        lines += [" ".join(schema["description"].split()), ""]
    lines += ["Sections: " + ", ".join(
        f"`{name}`" for name, child in schema["properties"].items()
        if object_part(child, schema) is not None) + ", and the top-level keys.", ""]
    for name, child in schema["properties"].items():
        if object_part(child, schema) is not None:
            lines += section(child_path("", name, child, schema), child, schema, 2)
    top = {name: child for name, child in schema["properties"].items()
           if object_part(child, schema) is None}
    if top:
        lines += ["## Top-level keys", ""]
        lines += table("", {"properties": top}, schema) + [""]
    return "\n".join(lines).rstrip("\n") + "\n"


def unknown_keywords(node, root: dict | None = None, where: str = "") -> list[str]:
    """Keys of schema nodes that this script does not show (a typo, or YAML that
    split a description at an unquoted comma), as 'dotted.path: keyword'."""
    root = node if root is None else root
    found = []
    if not isinstance(node, dict):
        return found
    found += [f"{where or '(root)'}: {key}" for key in node if key not in KNOWN]
    for name, child in node.get("properties", {}).items():
        found += unknown_keywords(child, root, f"{where}.{name}" if where else name)
    for name, child in node.get("$defs", {}).items():
        found += unknown_keywords(child, root, f"$defs.{name}")
    for key in ("items", "additionalProperties", "propertyNames"):
        if isinstance(node.get(key), dict):
            found += unknown_keywords(node[key], root, f"{where}[{key}]")
    for key in ("anyOf", "oneOf"):
        for i, alt in enumerate(node.get(key, [])):
            found += unknown_keywords(alt, root, f"{where}[{key}{i}]")
    return found


def _yaml_value(value) -> str:
    """A default as one line of YAML (flow style)."""
    return yaml.safe_dump(value, default_flow_style=True, width=10**6,
                          sort_keys=False).strip().removesuffix("...").strip()


def _comment(node: dict) -> str:
    """The first sentence of a node's description, for a trailing comment."""
    words = " ".join(str(node.get("description", "")).split())
    first = words.split(". ")[0].rstrip(".")
    return first if len(first) <= 90 else first[:87].rsplit(" ", 1)[0] + " ..."


def _defaults_lines(node: dict, root: dict, indent: int) -> list[str]:
    lines = []
    for name, child in node.get("properties", {}).items():
        child = resolve(child, root)
        pad = "  " * indent
        note = _comment(child)
        obj = object_part(child, root)
        if obj is not None and obj.get("properties") and child.get("default") == {}:
            lines.append(f"{pad}{name}:" + (f"  # {note}" if note else ""))
            lines += _defaults_lines(obj, root, indent + 1)
        elif "default" not in child:  # optional, no default: shown, commented out
            lines.append(f"{pad}# {name}:" + (f"  {note}" if note else ""))
        else:
            value = _yaml_value(child["default"])
            lines.append(f"{pad}{name}: {value}" + (f"  # {note}" if note else ""))
    return lines


def render_defaults(schema: dict) -> str:
    """config/config.yaml: every setting with its schema default, commented."""
    head = ["# sedmap defaults. GENERATED from config/schema.yaml by",
            "# docs/gen_config_reference.py: do not edit; change the schema and run the script.",
            "# A galaxy file (config/galaxies/NAME.yaml, passed with --configfile) overrides",
            "# any key; nested sections merge key by key. docs/configuration.md describes",
            "# every key with its type and allowed values; unknown keys are an error.", ""]
    lines = []
    for name, child in schema["properties"].items():
        sub = _defaults_lines({"properties": {name: child}}, schema, 0)
        if len(sub) > 1 and lines:
            lines.append("")
        lines += sub
    return "\n".join(head + lines) + "\n"


def load_schema(path: Path = SCHEMA) -> dict:
    with open(path, encoding="utf-8") as f:
        return yaml.safe_load(f)


def main() -> int:
    schema = load_schema()
    for problem in unknown_keywords(schema):
        print(f"warning: {SCHEMA}: unknown keyword {problem}", file=sys.stderr)
    PAGE.write_text(render(schema), encoding="utf-8")
    print(f"wrote {PAGE}")
    DEFAULTS.write_text(render_defaults(schema), encoding="utf-8")
    print(f"wrote {DEFAULTS}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
