"""What a write carries in (an idempotency token) and reports back, and the schema check both
engines run before writing. What a table is lives in :mod:`campaignlake.catalog`."""

from __future__ import annotations

from dataclasses import dataclass

from pyspark.sql.types import DateType, NumericType, StringType, StructType, TimestampType

from campaignlake.catalog import TableSpec
from campaignlake.errors import SchemaMismatchError


@dataclass(frozen=True)
class Txn:
    """An idempotent-write token: a table commits each (app_id, version) at most once."""

    app_id: str
    version: int


@dataclass(frozen=True)
class WriteResult:
    """What one write operation did to a table."""

    committed: bool
    version: int | None
    files_added: int = 0
    files_removed: int = 0
    rows_written: int = 0
    skipped_reason: str | None = None


def describe_writes(writes: dict[str, WriteResult]) -> str:
    """``table@vN`` per write, ``(unchanged)`` where nothing was committed: for job reports."""
    return ", ".join(
        f"{key}@v{w.version}{'' if w.committed else ' (unchanged)'}" for key, w in writes.items()
    )


def check_schema(actual: StructType, expected: StructType, table: str) -> None:
    """Raise :class:`SchemaMismatchError` unless ``actual`` has ``expected``'s names and types."""
    expected_types = {f.name: f.dataType for f in expected.fields}
    actual_types = {f.name: f.dataType for f in actual.fields}
    problems = []
    for name, data_type in expected_types.items():
        if name not in actual_types:
            problems.append(f"missing column {name} ({data_type.simpleString()})")
        elif actual_types[name] != data_type:
            problems.append(
                f"column {name} is {actual_types[name].simpleString()}, "
                f"expected {data_type.simpleString()}"
            )
    problems += [f"unexpected column {n}" for n in actual_types if n not in expected_types]
    if problems:
        raise SchemaMismatchError(
            f"{table}: data does not match the table schema: " + "; ".join(problems)
        )


_STATS_TYPES = (NumericType, StringType, DateType, TimestampType)
#: The Delta table property naming the columns that get file statistics.
STATS_COLUMNS_PROPERTY = "delta.dataSkippingStatsColumns"


def creation_properties(spec: TableSpec, stats_columns: list[str]) -> dict[str, str]:
    """The Delta properties a table is created with: the spec's own, and the columns that get
    min/max statistics (PII never does), so that every engine writing the table later, delta-rs
    or delta-spark, keeps personal data out of the log."""
    properties = dict(spec.properties)
    # Delta collects statistics of these types only (booleans, binaries and nested types none).
    types = {f.name: f.dataType for f in spec.schema.fields}
    stats_columns = [c for c in stats_columns if isinstance(types[c], _STATS_TYPES)]
    if stats_columns:
        properties.setdefault(STATS_COLUMNS_PROPERTY, ",".join(stats_columns))
    else:
        properties.setdefault("delta.dataSkippingNumIndexedCols", "0")
    return properties
