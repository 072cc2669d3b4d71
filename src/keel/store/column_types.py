"""Column types that behave the same on SQLite and Postgres.

SQLite has no exact decimal and no time zones, so two types paper over that:

* :class:`ExactDecimal` is ``NUMERIC(18, 9)`` on Postgres and an integer count of
  billionths on SQLite; both read back as a :class:`~decimal.Decimal` with nine places.
* :class:`UTCDateTime` is ``timestamptz`` on Postgres and ISO text on SQLite; both read back
  as an aware UTC :class:`~datetime.datetime`.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import orjson
import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator, TypeEngine

SCALE = 9
PRECISION = 18
_QUANTUM = Decimal(1).scaleb(-SCALE)
_LIMIT = Decimal(10) ** (PRECISION - SCALE)

# JSON on SQLite, JSONB (indexable, compact) on Postgres.
JSONDocument = sa.JSON().with_variant(JSONB(), "postgresql")


def dump_json(value: Any) -> str:
    """JSON text as every JSON column is written: compact, UTF-8, unknown types as strings."""
    return orjson.dumps(value, default=str, option=orjson.OPT_NON_STR_KEYS).decode()


def quantize(value: Decimal) -> Decimal:
    """Round to the stored scale the way Postgres does (half away from zero)."""
    exact = value.quantize(_QUANTUM, rounding=ROUND_HALF_UP)
    if not exact.is_finite() or abs(exact) >= _LIMIT:
        msg = f"{value} does not fit NUMERIC({PRECISION}, {SCALE})"
        raise ValueError(msg)
    return exact


def to_billionths(value: Decimal) -> int:
    """How SQLite stores a cost: an exact integer count of 1e-9 units."""
    return int(quantize(value).scaleb(SCALE))


class ExactDecimal(TypeDecorator[Decimal]):
    """A decimal that round-trips exactly (up to nine places) on every backend."""

    impl = sa.Numeric(PRECISION, SCALE, asdecimal=True)
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name == "sqlite":
            return dialect.type_descriptor(sa.BigInteger())
        return dialect.type_descriptor(sa.Numeric(PRECISION, SCALE, asdecimal=True))

    def process_bind_param(self, value: Any, dialect: Dialect) -> Any:
        if value is None:
            return None
        exact = value if isinstance(value, Decimal) else Decimal(value)
        return to_billionths(exact) if dialect.name == "sqlite" else quantize(exact)

    def process_result_value(self, value: Any, dialect: Dialect) -> Decimal | None:
        if value is None:
            return None
        if dialect.name == "sqlite":
            return Decimal(int(value)).scaleb(-SCALE)
        return value if isinstance(value, Decimal) else Decimal(str(value))


class UTCDateTime(TypeDecorator[datetime]):
    """An aware UTC timestamp on every backend; naive values are taken as UTC."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if not isinstance(value, datetime):
            msg = f"expected a datetime, got {type(value).__name__}"
            raise TypeError(msg)
        utc = value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
        return utc.replace(tzinfo=None) if dialect.name == "sqlite" else utc

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if not isinstance(value, datetime):
            msg = f"expected a datetime from the database, got {type(value).__name__}"
            raise TypeError(msg)
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
