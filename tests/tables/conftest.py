"""What the table-layer tests share: one small partitioned table with a PII column, and the
table at version 1 on whichever engine the module's ``engine`` fixture gives."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest
from pyspark.sql import SparkSession

from campaignlake.tables import Engine
from tests.tables.literals import D1, D2, SPEC, rows_df, ts


@pytest.fixture
def path(tmp_path: Path) -> str:
    """Where the test's table lives."""
    return str(tmp_path / "table")


@pytest.fixture
def seeded(engine: Engine, spark: SparkSession, path: str) -> str:
    """A table at version 1 holding ids 1-2 on day 1 and 3 on day 2."""
    engine.create(path, SPEC)
    engine.append(
        path,
        SPEC,
        rows_df(
            spark,
            [
                (1, "a@x.io", Decimal("10.00"), ts(1), D1),
                (2, "b@x.io", Decimal("20.00"), ts(2), D1),
                (3, "c@x.io", Decimal("30.00"), ts(3), D2),
            ],
        ).coalesce(1),  # one task: one file per day
    )
    return path
