"""Benchmark the streams end to end: a producer on 127.0.0.1 publishes generated clickstream to
a real Kafka broker at a fixed rate; ``stream_clickstream`` (Kafka → bronze) and
``stream_triggers`` (bronze → gold/trigger_events) run as the spark-submit jobs they are, each
in its own process with 1-second micro-batches. Measured: the rate bronze keeps up with, the
backlog left when the producer stops, and the latency from a trigger's due time to its row
being committed (p50/p95/p99).

Events carry the wall-clock time at which they are produced as their event time, the watermark
is 0 and the rules' delay 1 minute, so a trigger's due time is a wall-clock instant and
``committed_at - fired_at`` is the time the streams took to act on it.

Run with ``make bench-stream`` (``--rate``, ``--seconds`` to change the load); results go to
BENCHMARKS.md by hand.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import yaml
from pyspark.sql import functions as F

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from campaignlake import catalog  # noqa: E402
from campaignlake import columns as c  # noqa: E402
from campaignlake.config import load_conf  # noqa: E402
from campaignlake.session import get_spark  # noqa: E402
from campaignlake.tables import Tables  # noqa: E402
from tests.kafka_broker import broker_jars, kafka_broker  # noqa: E402

OUT = REPO_ROOT / "bench" / "out" / "stream"
#: The Kafka connector release Maven Central's mirror here serves with its token provider.
CONNECTOR = "org.apache.spark:spark-sql-kafka-0-10_2.13:4.0.0"
CUSTOMERS, PRODUCTS, CATEGORIES = 100_000, 2_000, ("books", "toys", "fashion", "beauty")
RULES = {
    "cart": "kind: cart_abandonment\nchannel: email\n",
    "browse": "kind: browse_abandonment\nchannel: push\nmin_views: 3\n",
    "post": "kind: post_purchase\nchannel: email\n",
}


def conf_dir(root: Path, servers: str) -> Path:
    folder = root / "conf"
    shutil.copytree(REPO_ROOT / "conf", folder)
    raw = yaml.safe_load((folder / "local.yaml").read_text())
    raw["paths"] = {k: str(root / "data" / k) for k in raw["paths"]}
    raw["streaming"].update(
        trigger_seconds=1, watermark_minutes=0, triggers_start="earliest",
        kafka={"bootstrap_servers": servers, "topic": "clicks", "starting_offsets": "earliest"},
    )  # fmt: skip
    raw["spark"].setdefault("extra", {})["spark.jars.packages"] = CONNECTOR
    (folder / "local.yaml").write_text(yaml.safe_dump(raw))
    shutil.rmtree(folder / "triggers")
    (folder / "triggers").mkdir()
    for name, text in RULES.items():
        (folder / "triggers" / f"{name}.yaml").write_text(
            f"id: {name}\n{text}delay_minutes: 1\ncontrol_fraction: 0.1\n"
        )
    return folder


def seed_tables(folder: Path) -> None:
    """The CRM and product tables the triggers need: every customer consents to everything."""
    conf = load_conf("local", conf_dir=str(folder))
    spark = get_spark(conf)
    tables = Tables(spark, conf)

    def shaped(df, key: str):
        return df.select(
            *[
                F.col(f.name)
                if f.name in df.columns
                else F.lit(None).cast(f.dataType).alias(f.name)
                for f in tables.spec(key).schema.fields
            ]
        )

    customers = spark.range(CUSTOMERS).select(
        F.format_string("B%06d", "id").alias(c.CUSTOMER_ID),
        F.format_string("b%06d@example.com", "id").alias(c.EMAIL),
        F.lit(True).alias(c.EMAIL_VALID),
        F.lit("+491500000001").alias(c.PHONE),
        *[F.lit(True).alias(col) for col in (c.EMAIL_OPT_IN, c.SMS_OPT_IN, c.PUSH_OPT_IN)],
    )
    tables.append(catalog.CUSTOMERS, shaped(customers, catalog.CUSTOMERS))
    products = spark.range(PRODUCTS).select(
        F.format_string("P%05d", "id").alias(c.PRODUCT_ID),
        F.element_at(
            F.array(*[F.lit(x) for x in CATEGORIES]), (F.col("id") % 4 + 1).cast("int")
        ).alias(c.CATEGORY),
        F.lit(True).alias(c.ACTIVE),
    )
    tables.append(catalog.PRODUCTS, shaped(products, catalog.PRODUCTS))
    tables.ensure(catalog.DELETION_REQUESTS)
    tables.ensure(catalog.CLICKSTREAM_EVENTS)
    similar = spark.range(PRODUCTS).select(
        F.format_string("P%05d", "id").alias(c.PRODUCT_ID),
        F.lit(1).alias(c.RANK),
        F.format_string("P%05d", (F.col("id") + 1) % PRODUCTS).alias(c.SIMILAR_PRODUCT_ID),
        F.lit(0.9).alias(c.SIMILARITY),
        F.current_date().alias(c.AS_OF_DATE),
    )
    tables.append(catalog.SIMILAR_PRODUCTS, shaped(similar, catalog.SIMILAR_PRODUCTS))
    spark.stop()


def events(rng: random.Random, count: int, serial: list[int]) -> list[str]:
    """``count`` clickstream lines stamped now: product views, some add-to-carts, purchases."""
    now = datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    lines = []
    for _ in range(count):
        serial[0] += 1
        customer = rng.randrange(CUSTOMERS)
        kind = rng.choices(("product_view", "add_to_cart", "purchase"), (90, 8, 2))[0]
        lines.append(
            json.dumps(
                {
                    "event_id": f"b{serial[0]}", "event_type": kind, "event_ts": now,
                    "customer_id": f"B{customer:06d}", "session_id": f"s{customer}",
                    "product_id": f"P{rng.randrange(PRODUCTS):05d}", "price": 10.0,
                }
            )
        )  # fmt: skip
    return lines


def produce(servers: str, rate: int, seconds: int) -> int:
    """Publish ``rate`` events per second for ``seconds`` through Kafka's console producer;
    the number published."""
    producer = subprocess.Popen(
        ["java", "-cp", f"{broker_jars()}/*", "org.apache.kafka.tools.ConsoleProducer",
         "--bootstrap-server", servers, "--topic", "clicks",
         "--producer-property", "linger.ms=20", "--producer-property", "batch.size=262144"],
        stdin=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert producer.stdin is not None
    rng, serial, started = random.Random(7), [0], time.monotonic()
    tick = 0.1
    for step in range(int(seconds / tick)):
        producer.stdin.write("\n".join(events(rng, int(rate * tick), serial)) + "\n")
        producer.stdin.flush()
        late = started + (step + 1) * tick - time.monotonic()
        if late > 0:
            time.sleep(late)
    producer.stdin.close()
    producer.wait(timeout=120)
    return serial[0]


def create_topic(servers: str, topic: str, partitions: int) -> None:
    """Create ``topic`` before the streams subscribe to it (one partition per core)."""
    subprocess.run(
        ["java", "-cp", f"{broker_jars()}/*", "org.apache.kafka.tools.TopicCommand",
         "--bootstrap-server", servers, "--create", "--topic", topic,
         "--partitions", str(partitions), "--replication-factor", "1"],
        check=True, capture_output=True, timeout=120,
    )  # fmt: skip


def start(folder: Path, job: str, log: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, str(REPO_ROOT / "jobs" / "run.py"), job, "--env", "local",
         "--conf-dir", str(folder), *(["--continuous"] if job == "stream_clickstream" else [])],
        stdout=log.open("w"), stderr=subprocess.STDOUT, start_new_session=True,
        env={**os.environ, "SPARK_LOCAL_IP": "127.0.0.1"},
    )  # fmt: skip


def progress(log: Path) -> list[tuple[int, int]]:
    """(input rows, batch ms) of each micro-batch in a job's log."""
    pattern = re.compile(r"batch \d+: (\d+) rows in, .* rows/s processed, (\d+) ms;")
    return [(int(m[1]), int(m[2])) for m in pattern.finditer(log.read_text())]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rate", type=int, default=20000, help="events per second")
    parser.add_argument("--seconds", type=int, default=120, help="how long the producer runs")
    parser.add_argument("--drain", type=int, default=90, help="seconds left to catch up")
    args = parser.parse_args()
    root = OUT / f"rate-{args.rate}"
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir(parents=True)
    with kafka_broker(root) as servers:
        folder = conf_dir(root, servers)
        create_topic(servers, "clicks", partitions=2)
        seed_tables(folder)
        jobs = {
            name: start(folder, name, root / f"{name}.log")
            for name in ("stream_clickstream", "stream_triggers")
        }
        time.sleep(45)  # both sessions up and their first (empty) micro-batches done
        began = time.monotonic()
        published = produce(servers, args.rate, args.seconds)
        produced_in = time.monotonic() - began
        conf = load_conf("local", conf_dir=str(folder))
        spark = get_spark(conf)
        tables = Tables(spark, conf)
        at_stop = tables.read(catalog.CLICKSTREAM_EVENTS).count()
        time.sleep(args.drain)
        for process in jobs.values():
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        bronze = tables.read(catalog.CLICKSTREAM_EVENTS).count()
        fired = tables.read_or_empty(catalog.TRIGGER_EVENTS).where(F.col(c.OUTCOME) == "fired")
        latency = fired.select(
            (F.col(c.COMMITTED_AT).cast("double") - F.col(c.FIRED_AT).cast("double")).alias("s")
        )
        p50, p95, p99 = (
            latency.agg(F.percentile_approx("s", [0.5, 0.95, 0.99], 10000)).first()[0] or [None] * 3
        )
        results = {
            "rate_asked": args.rate,
            "published": published,
            "publish_seconds": round(produced_in, 1),
            "bronze_rows_when_producer_stopped": at_stop,
            "bronze_rows_after_drain": bronze,
            "sustained_rows_per_s": round(at_stop / produced_in, 1),
            "triggers_fired": fired.count(),
            "latency_s": {"p50": p50, "p95": p95, "p99": p99},
            "clickstream_batches": _summary(progress(root / "stream_clickstream.log")),
            "triggers_batches": _summary(progress(root / "stream_triggers.log")),
        }
        spark.stop()
    print(json.dumps(results, indent=2))
    (root / "results.json").write_text(json.dumps(results, indent=2))


def _summary(batches: list[tuple[int, int]]) -> dict[str, float]:
    busy = [(rows, ms) for rows, ms in batches if rows]
    if not busy:
        return {"batches": len(batches)}
    durations = sorted(ms for _, ms in busy)
    return {
        "batches": len(batches),
        "with_rows": len(busy),
        "rows_per_batch_mean": round(sum(r for r, _ in busy) / len(busy), 1),
        "batch_ms_p50": durations[len(durations) // 2],
        "batch_ms_max": durations[-1],
    }


if __name__ == "__main__":
    main()
