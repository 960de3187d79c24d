"""Lookup values for text columns, until this moves beside ``lookup_int`` in ``conductor.db``.

Nova's tests ran on SQLite, where ``flavorid = 1`` finds the flavor whose flavorid is
``'1'`` and a dict or list simply matches nothing; PostgreSQL refuses to compare a text
column with an integer parameter.  These helpers give PostgreSQL SQLite's answers.
"""

from __future__ import annotations

import decimal
import uuid
from typing import Any

from sqlalchemy import ColumnElement, false


def lookup_text(value: Any) -> str | None:
    """``value`` as a text column compares it; None when no stored string can equal it."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return str(int(value))
    if isinstance(value, (int, float, decimal.Decimal, uuid.UUID)):
        return str(value)
    return None


def text_equals(column: Any, value: Any) -> ColumnElement[bool]:
    """``filter_by(column=value)`` for a text column, whatever the caller sent."""
    if value is None:
        return column.is_(None)
    text = lookup_text(value)
    return false() if text is None else column == text
