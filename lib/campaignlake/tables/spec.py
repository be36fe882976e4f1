"""What a table is (schema, partitioning, PII) and what a write reports back."""

from __future__ import annotations

from dataclasses import dataclass, field

from pyspark.sql.types import StructType

from campaignlake.errors import SchemaMismatchError


@dataclass(frozen=True)
class TableSpec:
    """The contract of one Delta table.

    Parameters
    ----------
    schema
        Column names and types, in table order. Nullability is not enforced.
    partition_by
        Partition columns (a subset of the schema's columns).
    pii_columns
        Columns holding personal data; they never get min/max file statistics, so emails or
        names do not leak into the Delta log.
    properties
        Delta table properties set at creation (``delta.*`` keys).
    erase_by
        How the erasure job finds a customer's rows: the column holding the customer id, or
        ``raw_record`` for quarantine tables (whose raw records are searched for the id, the
        email and the phone). ``None``: the table holds no customer's data.
    """

    schema: StructType
    partition_by: tuple[str, ...] = ()
    pii_columns: frozenset[str] = frozenset()
    properties: dict[str, str] = field(default_factory=dict)
    erase_by: str | None = None

    def __post_init__(self) -> None:
        names = self.schema.fieldNames()
        missing = [c for c in self.partition_by if c not in names]
        if missing:
            raise SchemaMismatchError(f"partition columns {missing} are not in the schema {names}")

    @property
    def data_columns(self) -> list[str]:
        """Columns stored inside the data files (all but the partition columns)."""
        return [c for c in self.schema.fieldNames() if c not in self.partition_by]


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
