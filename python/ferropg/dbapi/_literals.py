"""Python values written as SQL literals, for :class:`ClientCursor` only: statements
that take no parameters (``SET``, some DDL) get their values inside the text.

Every string goes through the core's quoting (``ferropg_core::quote``), which reads back
the same under either ``standard_conforming_strings``; numbers are written so that no
neighbouring character can change their meaning (a negative one in parentheses, so
``x-%s`` cannot become a comment).
"""

from __future__ import annotations

import datetime
import decimal
import math
import uuid
from typing import Any

from .. import _native
from ._errors import DataError

__all__ = ("literal",)


def _number(text: str) -> str:
    return f"({text})" if text.startswith("-") else text


def _quoted(text: str, cast: str) -> str:
    return f"{_native.quote_literal(text)}::{cast}"


def literal(value: Any) -> str:
    """``value`` as SQL text that the server reads back as that value."""
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return _number(str(value))
    if isinstance(value, float):
        if math.isnan(value) or math.isinf(value):
            return _quoted(repr(value).replace("inf", "Infinity").replace("nan", "NaN"), "float8")
        return _number(repr(value)) + "::float8"
    if isinstance(value, decimal.Decimal):
        if not value.is_finite():
            return _quoted(str(value), "numeric")
        return _number(str(value)) + "::numeric"
    if isinstance(value, str):
        return _native.quote_literal(value)
    if isinstance(value, (bytes, bytearray, memoryview)):
        return _quoted("\\x" + bytes(value).hex(), "bytea")
    if isinstance(value, datetime.datetime):
        return _quoted(value.isoformat(), "timestamptz" if value.tzinfo else "timestamp")
    if isinstance(value, datetime.date):
        return _quoted(value.isoformat(), "date")
    if isinstance(value, datetime.time):
        return _quoted(value.isoformat(), "timetz" if value.tzinfo else "time")
    if isinstance(value, datetime.timedelta):
        return _quoted(
            f"{value.days} days {value.seconds} seconds {value.microseconds} microseconds",
            "interval",
        )
    if isinstance(value, uuid.UUID):
        return _quoted(str(value), "uuid")
    if isinstance(value, (list, tuple)):
        if not value:
            return "'{}'"
        return "ARRAY[" + ", ".join(literal(v) for v in value) + "]"
    raise DataError(
        f"a {type(value).__name__} cannot be written into SQL text: pass it as a bound "
        "parameter with a plain cursor instead"
    )
