"""Table maintenance: vacuum every table, so the data files of crashed writes and of versions
older than the retention do not pile up (and do not keep data the tables no longer hold)."""

from __future__ import annotations

from dataclasses import dataclass, field

from pyspark.sql import SparkSession

from campaignlake import catalog
from campaignlake.config import Conf
from campaignlake.tables import Tables


@dataclass
class VacuumReport:
    """Files removed per table by one maintenance run."""

    retention_hours: int
    removed: dict[str, int] = field(default_factory=dict)

    def describe(self) -> str:
        """The retention and the files removed per table."""
        removed = ", ".join(f"{k}={v}" for k, v in sorted(self.removed.items()) if v) or "none"
        return (
            f"vacuum_tables: {len(self.removed)} tables vacuumed past "
            f"{self.retention_hours}h; files removed: {removed}"
        )


def vacuum_tables(
    spark: SparkSession,
    conf: Conf,
    tables: Tables,
    *,
    retention_hours: int | None = None,
) -> VacuumReport:
    """Vacuum every existing table past ``storage.vacuum_retention_hours`` (or the given
    retention): files that no version within the retention needs are deleted, and so are
    files no version ever referenced (left by writes that crashed before their commit)."""
    hours = conf.storage.vacuum_retention_hours if retention_hours is None else retention_hours
    report = VacuumReport(retention_hours=hours)
    for key in catalog.TABLE_KEYS:
        if tables.exists(key):
            report.removed[key] = tables.vacuum(key, hours, full=True)
    return report
