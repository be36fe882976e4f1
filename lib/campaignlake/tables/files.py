"""Data files for the delta-rs engine: written by Spark tasks, described by their own footers.

Spark's ``DataFrameWriter`` does not say which files it produced, and learning that from a
directory listing would also pick up a crashed or concurrent writer's files. So every Spark
task writes its own Parquet files here (inside ``mapInArrow``, in parallel, data never leaves
the executors) and returns one small metadata row per file: its path, size, partition values
and Delta statistics read from the Parquet footer it just wrote. The driver commits exactly
those files.
"""

from __future__ import annotations

import datetime as dt
import decimal
import json
import math
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.fs as pafs
import pyarrow.parquet as pq
from pyspark.sql.types import (
    ArrayType,
    BinaryType,
    BooleanType,
    ByteType,
    DataType,
    DateType,
    DecimalType,
    DoubleType,
    FloatType,
    IntegerType,
    LongType,
    MapType,
    ShortType,
    StringType,
    StructField,
    StructType,
    TimestampNTZType,
    TimestampType,
)

from campaignlake.errors import SchemaMismatchError

#: Column the writer counts rows of that break an ``overwrite_where`` predicate.
VIOLATION_COLUMN = "__campaignlake_violates_predicate"
#: About how much data (in Arrow memory) a Parquet row group holds; Spark's writer uses 128 MiB.
ROW_GROUP_BYTES = 128 * 1024 * 1024
#: Longest string prefix kept in min statistics (delta-spark's default prefix length).
STRING_STATS_PREFIX = 32
HIVE_NULL = "__HIVE_DEFAULT_PARTITION__"

FILE_META_SCHEMA = (
    "path string, size long, partition_values map<string,string>, "
    "num_records long, stats string, violations long"
)

_HIVE_ESCAPE = set("\"#%'*/:=?\\\x7f{[]^")


@dataclass(frozen=True)
class WrittenFile:
    """One data file this write produced, as reported by the task that wrote it."""

    path: str
    size: int
    partition_values: dict[str, str | None]
    num_records: int
    stats: str
    violations: int


def to_arrow_type(data_type: DataType) -> pa.DataType:
    """Arrow type that Parquet stores for a Spark type (timestamps as UTC microseconds)."""
    if isinstance(data_type, TimestampNTZType):
        raise SchemaMismatchError(
            "timestamp_ntz columns need the timestampNtz table feature; use timestamp (UTC)"
        )
    simple: dict[type, pa.DataType] = {
        StringType: pa.string(),
        LongType: pa.int64(),
        IntegerType: pa.int32(),
        ShortType: pa.int16(),
        ByteType: pa.int8(),
        DoubleType: pa.float64(),
        FloatType: pa.float32(),
        BooleanType: pa.bool_(),
        BinaryType: pa.binary(),
        DateType: pa.date32(),
        TimestampType: pa.timestamp("us", tz="UTC"),
    }
    for spark_type, arrow_type in simple.items():
        if isinstance(data_type, spark_type):
            return arrow_type
    if isinstance(data_type, DecimalType):
        return pa.decimal128(data_type.precision, data_type.scale)
    if isinstance(data_type, ArrayType):
        return pa.list_(to_arrow_type(data_type.elementType))
    if isinstance(data_type, MapType):
        return pa.map_(to_arrow_type(data_type.keyType), to_arrow_type(data_type.valueType))
    if isinstance(data_type, StructType):
        return pa.struct([to_arrow_field(f) for f in data_type.fields])
    raise SchemaMismatchError(f"unsupported column type {data_type.simpleString()}")


def to_arrow_field(spark_field: StructField) -> pa.Field:
    """The Arrow field of a Spark field (for the Delta schema deltalake writes)."""
    return pa.field(spark_field.name, to_arrow_type(spark_field.dataType), nullable=True)


def to_arrow_schema(schema: StructType) -> pa.Schema:
    """Arrow schema of a Spark schema, every column nullable."""
    return pa.schema([to_arrow_field(f) for f in schema.fields])


def partition_value_string(value: object) -> str | None:
    """Delta's serialized form of a partition value (``partitionValues`` in the log)."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dt.datetime):
        return value.astimezone(dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S.%f")
    if isinstance(value, dt.date):
        return value.isoformat()
    return str(value)


def hive_escape(value: str) -> str:
    """Escape a partition value for a directory name the way Spark and Hive do."""
    return "".join(f"%{ord(ch):02X}" if ch in _HIVE_ESCAPE or ord(ch) < 32 else ch for ch in value)


def partition_dir(partition_by: list[str], values: dict[str, str | None]) -> str:
    """The Hive-style directory of a partition, ``col=value/...``."""
    parts = []
    for column in partition_by:
        value = values[column]
        parts.append(f"{column}={HIVE_NULL if value is None else hive_escape(value)}")
    return "/".join(parts)


def _stat_value(value: object, arrow_type: pa.DataType, is_max: bool) -> object | None:
    """A footer min/max as Delta statistics JSON; None when it is not safe to record."""
    if value is None:
        return None
    if pa.types.is_timestamp(arrow_type):
        assert isinstance(value, dt.datetime)
        utc = value.astimezone(dt.timezone.utc)
        if is_max and utc.microsecond % 1000:
            # Delta keeps milliseconds; round the max up so it stays an upper bound.
            utc = utc + dt.timedelta(microseconds=1000 - utc.microsecond % 1000)
        else:
            utc = utc - dt.timedelta(microseconds=utc.microsecond % 1000)
        return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"
    if pa.types.is_date(arrow_type):
        return value.isoformat()  # type: ignore[attr-defined]
    if pa.types.is_string(arrow_type):
        text = str(value)
        if len(text) <= STRING_STATS_PREFIX:
            return text
        # A prefix is still a lower bound; a truncated max is not an upper bound.
        return None if is_max else text[:STRING_STATS_PREFIX]
    if pa.types.is_decimal(arrow_type):
        return float(value) if isinstance(value, decimal.Decimal) else None
    if pa.types.is_floating(arrow_type):
        return None if math.isnan(value) else float(value)  # type: ignore[arg-type]
    if pa.types.is_integer(arrow_type):
        return int(value)  # type: ignore[call-overload]
    return None


def footer_stats(metadata: pq.FileMetaData, schema: pa.Schema, stats_columns: list[str]) -> str:
    """Delta ``stats`` JSON (numRecords, minValues, maxValues, nullCount) from a Parquet footer."""
    mins: dict[str, object] = {}
    maxs: dict[str, object] = {}
    nulls: dict[str, int] = {}
    index = {metadata.schema.column(i).path: i for i in range(metadata.num_columns)}
    for name in stats_columns:
        if name not in index:
            continue
        arrow_type = schema.field(name).type
        col = index[name]
        null_count = 0
        low: object | None = None
        high: object | None = None
        complete = True
        for rg in range(metadata.num_row_groups):
            chunk = metadata.row_group(rg).column(col)
            stats = chunk.statistics
            if stats is None or not stats.has_null_count:
                complete = False
                break
            null_count += stats.null_count
            if chunk.num_values > stats.null_count:
                if not stats.has_min_max:
                    low = high = None
                    complete = False
                    continue
                low = stats.min if low is None else min(low, stats.min)
                high = stats.max if high is None else max(high, stats.max)
        if not complete and null_count == 0 and low is None:
            continue
        nulls[name] = null_count
        if complete and low is not None and not pa.types.is_boolean(arrow_type):
            low_json = _stat_value(low, arrow_type, is_max=False)
            high_json = _stat_value(high, arrow_type, is_max=True)
            if low_json is not None:
                mins[name] = low_json
            if high_json is not None:
                maxs[name] = high_json
    return json.dumps(
        {"numRecords": metadata.num_rows, "minValues": mins, "maxValues": maxs, "nullCount": nulls},
        separators=(",", ":"),
    )


def stats_columns_for(
    schema: StructType, partition_by: list[str], pii: frozenset[str], limit: int
) -> list[str]:
    """The first ``limit`` flat data columns, PII columns excluded."""
    flat = (ArrayType, MapType, StructType, BinaryType)
    data = [f for f in schema.fields if f.name not in partition_by]
    return [f.name for f in data[:limit] if f.name not in pii and not isinstance(f.dataType, flat)]


def make_task_writer(
    table_uri: str,
    schema: StructType,
    partition_by: list[str],
    stats_columns: list[str],
    with_violations: bool,
    max_records_per_file: int = 5_000_000,
    row_group_bytes: int = ROW_GROUP_BYTES,
) -> Callable[[Iterator[pa.RecordBatch]], Iterator[pa.RecordBatch]]:
    """Build the function each Spark task runs to write its rows as Parquet data files.

    The input is sorted by the partition columns within each task, so a task keeps one file
    open at a time. Rows arrive in Arrow batches of a few thousand; they are buffered and
    written as row groups of about ``row_group_bytes`` (as Spark's own writer does), because
    one row group per incoming batch would make files slow to read. The function yields one
    metadata row per file (``FILE_META_SCHEMA``).
    """
    full_schema = to_arrow_schema(schema)
    data_schema = pa.schema(
        [full_schema.field(c) for c in schema.fieldNames() if c not in partition_by]
    )

    def write_task(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        filesystem, root = pafs.FileSystem.from_uri(table_uri)
        task_tag = uuid.uuid4().hex
        current: _OpenFile | None = None
        written: list[dict[str, object]] = []
        counter = 0

        def close_current() -> None:
            nonlocal current
            if current is None:
                return
            current.flush()
            current.writer.close()
            size = filesystem.get_file_info(f"{root}/{current.relative}").size
            metadata = current.writer.writer.metadata  # the footer just written
            written.append(
                {
                    "path": current.relative,
                    "size": size,
                    "partition_values": list(current.values.items()),
                    "num_records": metadata.num_rows,
                    "stats": footer_stats(metadata, data_schema, stats_columns),
                    "violations": current.violations,
                }
            )
            current = None

        for batch in batches:
            table = pa.Table.from_batches([batch])
            for values, rows in _split_by_partition(table, partition_by):
                start = 0
                while start < rows.num_rows:
                    full = current is not None and current.rows >= max_records_per_file
                    if current is None or current.values != values or full:
                        close_current()
                        counter += 1
                        name = f"part-{task_tag}-c{counter:03d}.snappy.parquet"
                        directory = partition_dir(partition_by, values)
                        relative = f"{directory}/{name}" if directory else name
                        if directory:
                            filesystem.create_dir(f"{root}/{directory}", recursive=True)
                        current = _OpenFile(
                            relative=relative,
                            values=values,
                            writer=pq.ParquetWriter(
                                filesystem.open_output_stream(f"{root}/{relative}"),
                                data_schema,
                                compression="snappy",
                                coerce_timestamps="us",
                                allow_truncated_timestamps=False,
                            ),
                            row_group_bytes=row_group_bytes,
                        )
                    # A file never holds more than max_records_per_file rows.
                    chunk = rows.slice(start, max_records_per_file - current.rows)
                    start += chunk.num_rows
                    if with_violations:
                        flags = pc.cast(chunk.column(VIOLATION_COLUMN), pa.int64())
                        current.violations += pc.sum(flags).as_py() or 0
                    current.add(chunk.select(data_schema.names).cast(data_schema))
        close_current()
        if written:
            yield pa.RecordBatch.from_pylist(
                written,
                schema=pa.schema(
                    [
                        ("path", pa.string()),
                        ("size", pa.int64()),
                        ("partition_values", pa.map_(pa.string(), pa.string())),
                        ("num_records", pa.int64()),
                        ("stats", pa.string()),
                        ("violations", pa.int64()),
                    ]
                ),
            )

    return write_task


@dataclass
class _OpenFile:
    """The data file a task is writing, with the rows buffered for its next row group."""

    relative: str
    values: dict[str, str | None]
    writer: pq.ParquetWriter
    row_group_bytes: int
    rows: int = 0
    violations: int = 0
    pending: list[pa.Table] = field(default_factory=list)
    pending_bytes: int = 0

    def add(self, data: pa.Table) -> None:
        self.pending.append(data)
        self.pending_bytes += data.nbytes
        self.rows += data.num_rows
        if self.pending_bytes >= self.row_group_bytes:
            self.flush()

    def flush(self) -> None:
        """Write the buffered rows as one row group."""
        if not self.pending:
            return
        group = pa.concat_tables(self.pending)
        self.writer.write_table(group, row_group_size=max(group.num_rows, 1))
        self.pending, self.pending_bytes = [], 0


def _split_by_partition(
    table: pa.Table, partition_by: list[str]
) -> Iterator[tuple[dict[str, str | None], pa.Table]]:
    """Split a batch into runs of equal partition values (the input is sorted by them)."""
    if not partition_by:
        yield {}, table
        return
    combos = table.select(partition_by).group_by(partition_by, use_threads=False).aggregate([])
    for combo in combos.to_pylist():
        mask = None
        for column in partition_by:
            value = combo[column]
            cond = pc.is_null(table[column]) if value is None else pc.equal(table[column], value)
            mask = cond if mask is None else pc.and_(mask, cond)
        values = {c: partition_value_string(combo[c]) for c in partition_by}
        yield values, table.filter(mask)


def now_millis() -> int:
    """The current time in milliseconds since the epoch (Delta's timestamps)."""
    return int(time.time() * 1000)
