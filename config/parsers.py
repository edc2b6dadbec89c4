"""The API's one request parser: JSON as RFC 8259 and I-JSON (RFC 7493) define it, read in
linear time, every pathology a 400 `Malformed JSON` before a view sees it.

DRF's JSONParser lets through what the standard library accepts: `NaN` and `Infinity`,
`1e999999` (infinity), duplicated keys (the last one silently wins), and nesting deep
enough to raise RecursionError (a 500). Each of these is refused here. Lone surrogates
(`"\\ud800"`) and NUL are left to the fields, which refuse them with a message naming the
field (DRF's CharField validators); the error envelope escapes them (config.errors).
"""

from __future__ import annotations

import json
import math

from rest_framework.exceptions import ParseError
from rest_framework.parsers import BaseParser
from rest_framework.renderers import JSONRenderer

MAX_DEPTH = 32
# Longer than any integer the API stores (2**63 has 19 digits); keeps int() off the
# quadratic path of long digit strings.
MAX_INTEGER_DIGITS = 40


class MalformedJSON(ValueError):
    pass


def _reject_constant(name: str):
    raise MalformedJSON(f"{name} is not a JSON number")


def _parse_int(text: str) -> int:
    if len(text) > MAX_INTEGER_DIGITS + 1:  # a sign
        raise MalformedJSON("number too large")
    return int(text)


def _parse_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise MalformedJSON("number out of range")
    return value


def _unique_keys(pairs: list[tuple[str, object]]) -> dict:
    result = dict(pairs)
    if len(result) != len(pairs):
        raise MalformedJSON("duplicated key")
    return result


def _check_depth(document) -> None:
    """MalformedJSON for nesting deeper than MAX_DEPTH. Iterative: no recursion on client
    data."""
    stack = [(document, 1)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, dict | list):
            if depth > MAX_DEPTH:
                raise MalformedJSON(f"nested deeper than {MAX_DEPTH} levels")
            children = value.values() if isinstance(value, dict) else value
            stack.extend((child, depth + 1) for child in children)


def parse_json(raw: bytes):
    """The document `raw` holds; MalformedJSON (a ValueError) for anything else."""
    try:
        text = raw.decode("utf-8")
        document = json.loads(
            text,
            parse_constant=_reject_constant,
            parse_int=_parse_int,
            parse_float=_parse_float,
            object_pairs_hook=_unique_keys,
        )
    except RecursionError:
        raise MalformedJSON(f"nested deeper than {MAX_DEPTH} levels") from None
    except MalformedJSON:
        raise
    except ValueError as exc:  # JSONDecodeError, UnicodeDecodeError, int() digit limit
        raise MalformedJSON(str(exc)) from None
    _check_depth(document)
    return document


class StrictJSONParser(BaseParser):
    media_type = "application/json"
    renderer_class = JSONRenderer

    def parse(self, stream, media_type=None, parser_context=None):
        raw = stream.read() if stream is not None else b""
        if not raw:
            return {}
        try:
            return parse_json(raw)
        except MalformedJSON as exc:
            raise ParseError(f"JSON parse error - {exc}") from None
