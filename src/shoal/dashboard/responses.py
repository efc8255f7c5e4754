"""What every dashboard answer shares: the static files' place and types, the security
headers, and JSON encoding of the head's values (bytes as hex). Pure, for the server and the
routes alike."""

from __future__ import annotations

import json
import os
from urllib.parse import parse_qs

STATIC = os.path.join(os.path.dirname(__file__), "static")
_TYPES = {".html": "text/html", ".js": "application/javascript", ".css": "text/css",
          ".svg": "image/svg+xml"}
# Security headers on every answer: no framing, no foreign scripts, no sniffing.
_HEADERS = {"X-Frame-Options": "DENY", "X-Content-Type-Options": "nosniff",
            "Referrer-Policy": "same-origin", "Cache-Control": "no-store",
            "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; "
                                       "frame-ancestors 'none'; form-action 'self'"}


def parse_query(qs: str) -> dict[str, str]:
    return {k: v[-1] for k, v in parse_qs(qs, keep_blank_values=True).items()}


def dumps(obj) -> str:
    return json.dumps(obj, default=_default)


def _default(o):
    if isinstance(o, (bytes, bytearray)):
        return o.hex()
    if isinstance(o, (set, frozenset, tuple)):
        return list(o)
    raise TypeError(f"{type(o).__name__} is not JSON")
