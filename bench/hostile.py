"""Hostile inputs for every writable field of every operation in the served OpenAPI
schema (the `hostile_inputs` scenario, bench/scenarios/hostile_inputs.py).

Each probe is one request: one field of one operation's JSON body (or one query or path
parameter) set to a pathological value, every other field left out, so that the field's
own validation runs (DRF validates each field before any object-level rule). Values, for
every field whatever the schema says about it:

- its maximum length + 1 (`maxLength`), its maximum + 1 and minimum - 1, `maxItems` + 1;
- `"1" * 32000 + "x"` (what made a nested-quantifier pattern take seconds), the same in
  Arabic-Indic digits (`\\d` matches them), and a string that fills the body up to the
  request size limit, and one byte over it;
- a lone surrogate, a NUL, bytes that are not UTF-8;
- deeply nested JSON (arrays 50,000 deep), a 5,000-digit number, `1e999999`;
- for arrays: 100,000 items.

Every operation also gets a whole body nested 100,000 deep. Query parameters get what fits
in a request line; path parameters a 3,000-character segment.
"""

from __future__ import annotations

import functools
import json
import urllib.parse
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace

MAX_BODY = 1_048_576  # MAX_REQUEST_SIZE_BYTES' default
PATTERN_PROBE = "1" * 32000 + "x"
NESTING = 50_000
BODY_NESTING = 100_000
MANY_ITEMS = 100_000
QUERY_LONG = 3_000  # gunicorn refuses request lines over 4,094 bytes
BODY_METHODS = ("post", "put", "patch")


@dataclass(frozen=True)
class Probe:
    method: str
    template: str  # the schema's path, `/api/users/{id}`
    path: str  # path parameters filled in, query string included
    target: str  # "body:<field>", "query:<name>", "path:<name>" or "body"
    kind: str  # which pathological value
    body: bytes | None = None
    auth: bool = False  # the operation needs a bearer token

    def describe(self) -> str:
        path = self.path if len(self.path) <= 80 else self.path[:77] + "..."
        return f"{self.method} {path.split('?', 1)[0]} {self.target} {self.kind}"


def resolve(schema: dict, spec: dict) -> dict:
    """`schema` with `$ref`s followed and `oneOf` / `anyOf` / `allOf` merged into one set
    of facts: the loosest length, range and item limits, the first type, every enum."""
    if "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        return resolve(spec["components"]["schemas"][name], spec)
    options = [resolve(o, spec) for key in ("oneOf", "anyOf", "allOf") for o in schema.get(key, [])]
    if not options:
        return schema
    merged = {k: v for k, v in schema.items() if k not in ("oneOf", "anyOf", "allOf")}
    for option in options:
        for key, value in option.items():
            if key in ("maxLength", "maximum", "maxItems"):
                merged[key] = max(merged.get(key, value), value)
            elif key == "minimum":
                merged[key] = min(merged.get(key, value), value)
            else:
                merged.setdefault(key, value)
    return merged


def _text(value: str) -> bytes:
    return json.dumps(value).encode()


def values_for(schema: dict, spec: dict) -> Iterator[tuple[str, bytes]]:
    """(kind, JSON text) of every pathological value for a field of `schema` (its `$ref`s
    looked up in `spec`)."""
    if schema.get("maxLength") is not None:
        yield "max_length+1", _text("x" * (schema["maxLength"] + 1))
    if schema.get("maximum") is not None:
        yield "maximum+1", str(schema["maximum"] + 1).encode()
    if schema.get("minimum") is not None:
        yield "minimum-1", str(schema["minimum"] - 1).encode()
    if schema.get("maxItems") is not None:
        yield "max_items+1", _text(["a"] * (schema["maxItems"] + 1))
    yield "pattern_32k", _text(PATTERN_PROBE)
    yield "unicode_digits_32k", _text("\u0663" * 32000 + "x")
    yield "body_limit", _text("1" * (MAX_BODY - 4096) + "x")
    yield "over_body_limit", _text("1" * (MAX_BODY + 1))
    yield "lone_surrogate", b'"a\\ud800b"'
    yield "nul", b'"a\\u0000b"'
    yield "not_utf8", b'"\xff\xfe\xc3("'
    yield "nested_50k", b"[" * NESTING + b"]" * NESTING
    yield "digits_5000", b"9" * 5000
    yield "exponent_overflow", b"1e999999"
    if schema.get("type") == "array":
        yield "items_100k", b"[" + b",".join([b'"a"'] * MANY_ITEMS) + b"]"
        items = resolve(schema.get("items", {}), spec)
        for kind, value in values_for_item(items):
            yield f"item_{kind}", b"[" + value + b"]"


def values_for_item(schema: dict) -> Iterator[tuple[str, bytes]]:
    if schema.get("maxLength") is not None:
        yield "max_length+1", _text("x" * (schema["maxLength"] + 1))
    yield "pattern_32k", _text(PATTERN_PROBE)
    yield "lone_surrogate", b'"a\\ud800b"'


def _fields(schema: dict, spec: dict, prefix: tuple[str, ...] = ()):
    """(path of keys, field schema) of every writable field, nested objects included."""
    schema = resolve(schema, spec)
    for name, field in schema.get("properties", {}).items():
        field = resolve(field, spec)
        if field.get("readOnly"):
            continue
        yield (*prefix, name), field
        if field.get("type") == "object" and field.get("properties"):
            yield from _fields(field, spec, (*prefix, name))


def _wrap(keys: tuple[str, ...], value: bytes) -> bytes:
    for key in reversed(keys):
        value = b"{" + _text(key) + b":" + value + b"}"
    return value


def _query_values(schema: dict) -> Iterator[tuple[str, str]]:
    if schema.get("maxLength") is not None:
        yield "max_length+1", "x" * (schema["maxLength"] + 1)
    if schema.get("maximum") is not None:
        yield "maximum+1", str(schema["maximum"] + 1)
    if schema.get("minimum") is not None:
        yield "minimum-1", str(schema["minimum"] - 1)
    yield "pattern_3k", urllib.parse.quote("1" * QUERY_LONG + "x")
    yield "digits_3k", "9" * QUERY_LONG
    yield "nul", "a%00b"
    yield "lone_surrogate", "a%ED%A0%80b"
    yield "not_utf8", "%FF%FE"


def probes(spec: dict, path_value: Callable[[str, str], str]) -> Iterator[Probe]:
    """Every probe for the operations of `spec` (an OpenAPI 3 document).
    `path_value(template, name)` fills a path parameter of a body operation: an object the
    probes may touch, since a value the server wrongly accepts is written."""
    for template, operations in spec["paths"].items():
        for method, op in operations.items():
            if method not in ("get", "post", "put", "patch", "delete"):
                continue
            authenticated = any(op.get("security") or [])
            params = [p for p in op.get("parameters", []) if "$ref" not in p]
            path = template
            for p in params:
                if p["in"] == "path":
                    path = path.replace("{" + p["name"] + "}", path_value(template, p["name"]))

            probe = functools.partial(Probe, method.upper(), template, path, auth=authenticated)
            for p in params:
                if p["in"] == "query":
                    for kind, value in _query_values(resolve(p.get("schema", {}), spec)):
                        yield replace(
                            probe(f"query:{p['name']}", kind),
                            path=f"{path}?{p['name']}={value}",
                        )
                elif p["in"] == "path":
                    segment = "9" * QUERY_LONG
                    yield replace(
                        probe(f"path:{p['name']}", "segment_3k"),
                        path=template.replace("{" + p["name"] + "}", segment),
                    )
            content = op.get("requestBody", {}).get("content", {})
            if method not in BODY_METHODS or "application/json" not in content:
                continue
            body_schema = content["application/json"].get("schema", {})
            for keys, field in _fields(body_schema, spec):
                for kind, value in values_for(field, spec):
                    yield probe("body:" + ".".join(keys), kind, body=_wrap(keys, value))
            yield probe("body", "nested_100k", body=b"[" * BODY_NESTING + b"]" * BODY_NESTING)
