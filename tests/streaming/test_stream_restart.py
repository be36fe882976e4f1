"""kill -9 of a running stream in the middle of a micro-batch, then a restart from its
checkpoint: bronze and gold/trigger_events end with every event and every trigger exactly
once."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from campaignlake import catalog
from campaignlake import columns as c
from campaignlake.config import load_conf
from campaignlake.tables import Tables
from tests.kafka_broker import REPO_ROOT
from tests.literals import event_line, seed_trigger_inputs, with_only_rule, write

pytestmark = pytest.mark.system

CUSTOMERS = [f"C{n:02d}" for n in range(24)]


def job(conf_dir: Path, name: str, *flags: str) -> list[str]:
    return [
        sys.executable, str(REPO_ROOT / "jobs" / "run.py"), name,
        "--env", "local", "--conf-dir", str(conf_dir), *flags,
    ]  # fmt: skip


def run(conf_dir: Path, name: str, *flags: str) -> str:
    done = subprocess.run(
        job(conf_dir, name, *flags), capture_output=True, text=True, timeout=600,
        env={**os.environ, "SPARK_LOCAL_IP": "127.0.0.1"},
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-4000:]
    return done.stdout


def kill_mid_batch(conf_dir: Path, name: str, checkpoint: Path, *flags: str) -> int:
    """Start ``name`` as a continuous stream, and kill -9 its process group while micro-batch
    2 or later has started (its offsets are logged) and not finished (no commit yet). The
    number of the batch killed."""
    process = subprocess.Popen(
        job(conf_dir, name, *flags), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        env={**os.environ, "SPARK_LOCAL_IP": "127.0.0.1"}, start_new_session=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            assert process.poll() is None, f"{name} stopped by itself (exit {process.returncode})"
            started = {int(p.name) for p in (checkpoint / "offsets").glob("[0-9]*")}
            done = {int(p.name) for p in (checkpoint / "commits").glob("[0-9]*")}
            running = [n for n in started - done if n >= 2]
            if running:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=60)
                return running[0]
            time.sleep(0.02)
        raise AssertionError(f"{name}: no micro-batch 2 within 300 s")
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=60)


def test_a_stream_killed_mid_batch_restarts_without_duplicates_or_losses(
    spark: SparkSession, tmp_path: Path
) -> None:
    conf_dir = tmp_path / "conf"
    shutil.copytree(REPO_ROOT / "conf", conf_dir)
    raw = yaml.safe_load((conf_dir / "local.yaml").read_text())
    raw["paths"] = {k: f"data/{k}" for k in raw["paths"]}
    # A watermark wider than the events' spread: the stream reads bronze's files in an order
    # that is not event time, and an event older than the watermark would be dropped as late.
    raw["streaming"].update(
        trigger_seconds=1, max_files_per_trigger=3, watermark_minutes=600,
        triggers_start="earliest",
        max_trigger_age_minutes=None,  # events of a fixed past day, decided now
    )  # fmt: skip
    (conf_dir / "local.yaml").write_text(yaml.safe_dump(raw))
    with_only_rule(conf_dir)
    conf = load_conf("local", conf_dir=str(conf_dir))
    tables = Tables(spark, conf)
    seed_trigger_inputs(spark, tables, CUSTOMERS, [("P1", "books")])
    # One customer's cart per landing file, ten minutes apart.
    for n, cid in enumerate(CUSTOMERS):
        write(
            conf.paths.landing,
            f"clickstream/date=2026-10-30/{n:02d}.jsonl",
            event_line(
                f"e-{cid}", customer_id=cid, event_type="add_to_cart",
                event_ts=f"2026-10-30T{8 + n // 6:02d}:{(n % 6) * 10:02d}:00Z",
            ) + "\n",
        )  # fmt: skip
    checkpoints = Path(conf.paths.checkpoint_root)

    killed = kill_mid_batch(
        conf_dir, "stream_clickstream", checkpoints / "stream_clickstream" / "files",
        "--continuous",
    )  # fmt: skip
    assert killed >= 2
    run(conf_dir, "stream_clickstream")
    # Then, in a commit of its own (so that the trigger stream reads it last), a later event
    # that moves the watermark past every due time.
    write(
        conf.paths.landing,
        "clickstream/date=2026-10-31/zz.jsonl",
        event_line("e-clock", customer_id="C00", event_ts="2026-10-31T09:00:00Z") + "\n",
    )
    run(conf_dir, "stream_clickstream")
    bronze = tables.read(catalog.CLICKSTREAM_EVENTS)
    assert bronze.count() == len(CUSTOMERS) + 1
    assert bronze.select(c.EVENT_ID).distinct().count() == len(CUSTOMERS) + 1
    assert tables.read(catalog.CLICKSTREAM_QUARANTINE).count() == 0

    kill_mid_batch(conf_dir, "stream_triggers", checkpoints / "stream_triggers")
    out = run(conf_dir, "stream_triggers", "--available-now")
    assert ", 0 late rows dropped" in out, out
    fired = tables.read(catalog.TRIGGER_EVENTS)
    assert fired.count() == len(CUSTOMERS)
    assert sorted(r[0] for r in fired.select(c.TRIGGER_ID).distinct().collect()) == [
        f"cart:e-{cid}" for cid in CUSTOMERS
    ]
    assert fired.where(F.col(c.GROUP) == "treatment").count() == len(CUSTOMERS)
