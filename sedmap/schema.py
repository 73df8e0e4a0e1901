"""The configuration schema's walking and wording: the JSON types a setting accepts,
text turned into numbers where the schema wants them, and a jsonschema error turned
into one plain line that names the key and what is allowed there
(:func:`to_input_error`). :mod:`sedmap.config` loads and validates with these."""

import yaml

from .errors import InputError

# ---------------------------------------------------------- schema walking


def _resolve(schema, root):
    """Follow a local ``$ref`` (``#/$defs/NAME``), keeping sibling keywords."""
    ref = schema.get("$ref")
    if not ref:
        return schema
    if not ref.startswith("#/"):
        return schema
    target = root
    for part in ref[2:].split("/"):
        target = target[part]
    merged = dict(_resolve(target, root))
    merged.update({k: v for k, v in schema.items() if k != "$ref"})
    return merged


def _types(schema, root):
    """Set of JSON types a (sub)schema accepts, looking through anyOf/oneOf."""
    schema = _resolve(schema, root)
    found = set()
    kind = schema.get("type")
    if isinstance(kind, str):
        found.add(kind)
    elif isinstance(kind, list):
        found.update(kind)
    if "enum" in schema:
        found.update(_json_type(v) for v in schema["enum"])
    for key in ("anyOf", "oneOf"):
        for sub in schema.get(key, []):
            found |= _types(sub, root)
    return found


#: Python type -> JSON type, bool before int (a bool is an int)
_JSON_TYPES = ((bool, "boolean"), (int, "integer"), (float, "number"), (str, "string"),
               (list, "array"), (dict, "object"))


def _json_type(value):
    """The JSON type name of a YAML-loaded value ("null" for None)."""
    return next((name for kind, name in _JSON_TYPES if isinstance(value, kind)), "null")


def _children(value, schema, root):
    """Yield (container, key, child value, child schema) one level down."""
    schema = _resolve(schema, root)
    if isinstance(value, dict):
        props = schema.get("properties", {})
        extra = schema.get("additionalProperties")
        for key, child in value.items():
            sub = props.get(key, extra if isinstance(extra, dict) else None)
            if sub is not None:
                yield value, key, child, sub
    elif isinstance(value, list):
        alternatives = [schema] + [_resolve(s, root) for s in schema.get("anyOf", [])]
        items = next((s["items"] for s in alternatives if isinstance(s.get("items"), dict)),
                     None)
        if items is not None:
            for i, child in enumerate(value):
                yield value, i, child, items


def _parse_scalar(text, wanted):
    """``text`` as a number or boolean when ``wanted`` allows it, else ``None``."""
    s = text.strip()
    if "integer" in wanted or "number" in wanted:
        try:
            return int(s)
        except ValueError:
            pass
    if "number" in wanted:
        try:
            return float(s)
        except ValueError:
            pass
    if "boolean" in wanted and s.lower() in ("true", "false", "yes", "no", "on", "off"):
        return s.lower() in ("true", "yes", "on")
    if "array" in wanted and s.startswith("["):
        try:
            parsed = yaml.safe_load(s)
        except yaml.YAMLError:
            return None
        return parsed if isinstance(parsed, list) else None
    return None


def coerce_strings(value, schema, root):
    """Turn text into numbers/booleans where the schema wants those (in place)."""
    for container, key, child, sub in list(_children(value, schema, root)):
        wanted = _types(sub, root)
        if isinstance(child, str) and "string" not in wanted:
            parsed = _parse_scalar(child, wanted)
            if parsed is not None:
                container[key] = child = parsed
        if isinstance(child, (dict, list)):
            coerce_strings(child, sub, root)


def normalise_numbers(value, schema, root):
    """Whole numbers given for real-valued settings become floats (in place)."""
    for container, key, child, sub in list(_children(value, schema, root)):
        wanted = _types(sub, root)
        if (isinstance(child, int) and not isinstance(child, bool)
                and "number" in wanted and "integer" not in wanted):
            container[key] = float(child)
        elif isinstance(child, (dict, list)):
            normalise_numbers(child, sub, root)


# ----------------------------------------------------------- explanations


_TYPE_WORDS = {
    "number": "a number",
    "integer": "a whole number",
    "boolean": "true or false",
    "string": "text",
    "object": "a block of 'key: value' settings",
    "array": "a list",
    "null": "nothing",
}


def kind_words(value):
    return _TYPE_WORDS.get(_json_type(value), type(value).__name__)


def show_value(value, limit=60):
    """Short one-line rendering of a config value."""
    if isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, str):
        text = repr(value)
    elif isinstance(value, (list, dict)):
        text = yaml.safe_dump(value, default_flow_style=True, width=10**6).strip()
    elif value is None:
        text = "null"
    else:
        text = repr(value)
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def format_number(x):
    return f"{x:g}" if isinstance(x, float) else str(x)


def _range_words(schema, name):
    """'-90 <= dec <= 90', 'n_models >= 1' from the schema's bounds."""
    lo = hi = None
    if "minimum" in schema:
        lo = ("<=", schema["minimum"])
    elif "exclusiveMinimum" in schema:
        lo = ("<", schema["exclusiveMinimum"])
    if "maximum" in schema:
        hi = ("<=", schema["maximum"])
    elif "exclusiveMaximum" in schema:
        hi = ("<", schema["exclusiveMaximum"])
    if lo and hi:
        return f"{format_number(lo[1])} {lo[0]} {name} {hi[0]} {format_number(hi[1])}"
    if lo:
        return f"{name} {lo[0].replace('<', '>')} {format_number(lo[1])}"
    if hi:
        return f"{name} {hi[0]} {format_number(hi[1])}"
    return name


def _dotted(parts):
    return ".".join(str(p) for p in parts)


def to_input_error(error, root):
    """One-line InputError from a jsonschema ValidationError."""
    path = list(error.absolute_path)
    where = _dotted(path) or "config"
    name = str(path[-1]) if path else "value"
    kind = error.validator
    schema = error.schema if isinstance(error.schema, dict) else {}
    inst = error.instance

    if kind == "additionalProperties" and isinstance(inst, dict):
        allowed = sorted(schema.get("properties", {}))
        extra = [k for k in inst if k not in allowed]
        bad = extra[0] if extra else "?"
        where = _dotted(path + [bad])
        others = f" (also unknown: {', '.join(map(str, extra[1:]))})" if extra[1:] else ""
        parent = f"under {_dotted(path)}" if path else "at the top level"
        problem = f"unknown key{others}; allowed keys {parent}: {', '.join(allowed)}."
    elif "propertyNames" in error.schema_path:
        allowed = schema.get("enum") or []
        where = _dotted(path + [inst])
        problem = f"unknown name; allowed names: {', '.join(map(str, allowed))}."
    elif kind == "enum":
        allowed = ", ".join(show_value(v) if not isinstance(v, str) else v
                            for v in error.validator_value)
        problem = f"{show_value(inst)} is not allowed; allowed values: {allowed}."
    elif kind == "const":
        problem = f"{show_value(inst)} is not allowed; the only allowed value is " \
                  f"{show_value(error.validator_value)}."
    elif kind in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"):
        problem = (f"{show_value(inst)} is out of range; allowed range: "
                   f"{_range_words(schema, name)}.")
    elif kind == "type":
        wanted = error.validator_value
        wanted = [wanted] if isinstance(wanted, str) else list(wanted)
        words = " or ".join(_TYPE_WORDS.get(w, w) for w in wanted)
        problem = f"expected {words}, got {show_value(inst)} ({kind_words(inst)})."
    elif kind in ("anyOf", "oneOf"):
        what = schema.get("description") or "one of the allowed forms"
        problem = f"{show_value(inst)} is not allowed; expected {what}."
    elif kind == "pattern":
        what = schema.get("description") or f"text matching {error.validator_value}"
        problem = f"{show_value(inst)} is not allowed; allowed: {what}"
    elif kind == "minLength" and error.validator_value == 1:
        problem = "must not be empty."
    else:
        extra = f" ({schema['description']})" if schema.get("description") else ""
        problem = " ".join(error.message.split()) + extra
        if not problem.endswith("."):
            problem += "."
    return InputError(problem, path=where)
