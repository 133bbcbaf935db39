"""Opaque keyset cursors shared by every list endpoint: ``{"items": [...], "next_cursor": …}``."""

from __future__ import annotations

import base64
import binascii
import json
from typing import TypeVar

from app.errors import InvalidInput

K = TypeVar("K", int, str)
MAX_KEY = 2**63 - 1  # BIGINT; a larger number could only come from a forged cursor


def encode_cursor(last_key: int | str) -> str:
    """The key of the last row on a page, wrapped so clients treat it as opaque."""
    return base64.urlsafe_b64encode(json.dumps({"after": last_key}).encode()).decode().rstrip("=")


def decode_cursor(cursor: str | None, kind: type[K] = int) -> K | None:  # type: ignore[assignment]
    if cursor is None:
        return None
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        value = json.loads(base64.urlsafe_b64decode(padded.encode()))["after"]
    except (binascii.Error, ValueError, KeyError, TypeError, UnicodeDecodeError) as exc:
        raise InvalidInput("The cursor is not one this API issued.") from exc
    if type(value) is not kind or (kind is int and not 0 <= value <= MAX_KEY):
        raise InvalidInput("The cursor is not one this API issued.")
    return value
