"""A real single-node Kafka broker for the streaming tests: KRaft mode (broker and controller in
one JVM), Kafka's own jars fetched from Maven Central once (``tests/kafka/pom.xml``, into
``.cache/kafka/``), listening on free loopback ports, stopped by its pid."""

from __future__ import annotations

import base64
import hashlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
POM = REPO_ROOT / "tests" / "kafka" / "pom.xml"
JARS = REPO_ROOT / ".cache" / "kafka"


def broker_jars() -> Path:
    """The folder of the broker's jars, copied from Maven Central the first time."""
    stamp = JARS / f".pom-{hashlib.sha256(POM.read_bytes()).hexdigest()[:16]}"
    if stamp.exists():
        return JARS
    maven = shutil.which("mvn")
    if maven is None:
        raise RuntimeError(
            "the Kafka broker's jars come from Maven: install maven (apt-get install maven)"
        )
    staging = Path(tempfile.mkdtemp(prefix="kafka-jars-"))
    subprocess.run(
        # A Maven repository of its own: poms Maven keeps without their jars in ~/.m2 would
        # make Spark's Ivy resolution of --packages fail later ("download failed").
        [maven, "-q", "-B", "-f", str(POM), "dependency:copy-dependencies",
         f"-DoutputDirectory={staging}", f"-Dmaven.repo.local={JARS.parent / 'm2'}"],
        check=True,
    )  # fmt: skip
    shutil.rmtree(JARS, ignore_errors=True)
    JARS.parent.mkdir(parents=True, exist_ok=True)
    shutil.move(str(staging), JARS)
    stamp.touch()
    return JARS


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_for(port: int, process: subprocess.Popen, log: Path, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the Kafka broker exited ({process.returncode}); see {log}")
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.3)
    raise RuntimeError(
        f"the Kafka broker did not listen on 127.0.0.1:{port} in {timeout}s; see {log}"
    )


def publish(servers: str, topic: str, lines: list[str]) -> None:
    """Send ``lines`` to ``topic``, one record each, with Kafka's console producer (acks from
    every replica: the records are in the log when this returns)."""
    done = subprocess.run(
        ["java", "-cp", f"{broker_jars()}/*", "org.apache.kafka.tools.ConsoleProducer",
         "--bootstrap-server", servers, "--topic", topic, "--producer-property", "acks=all"],
        input="\n".join(lines) + "\n", capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    if done.returncode != 0:
        raise RuntimeError(f"kafka-console-producer failed: {done.stderr[-2000:]}")


def consume(servers: str, topic: str, count: int, timeout_ms: int = 60000) -> list[tuple[str, str]]:
    """The first ``count`` records of ``topic`` as (key, value), read from the beginning with
    Kafka's console consumer (fewer when none arrives for ``timeout_ms``)."""
    done = subprocess.run(
        ["java", "-cp", f"{broker_jars()}/*", "org.apache.kafka.tools.consumer.ConsoleConsumer",
         "--bootstrap-server", servers, "--topic", topic, "--from-beginning",
         "--max-messages", str(count), "--timeout-ms", str(timeout_ms),
         "--property", "print.key=true", "--property", "key.separator=\t"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    if done.returncode != 0 and not done.stdout:
        raise RuntimeError(f"kafka-console-consumer failed: {done.stderr[-2000:]}")
    return [tuple(line.split("\t", 1)) for line in done.stdout.splitlines() if "\t" in line]


@contextmanager
def kafka_broker(workdir: Path) -> Iterator[str]:
    """Start a broker with its data and log under ``workdir``; yield its bootstrap servers."""
    jars = broker_jars()
    port, controller = _free_port(), _free_port()
    properties = workdir / "server.properties"
    log4j = workdir / "log4j2.properties"
    log = workdir / "broker.log"
    properties.write_text(
        "\n".join(
            [
                "process.roles=broker,controller",
                "node.id=1",
                f"controller.quorum.voters=1@127.0.0.1:{controller}",
                f"listeners=PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{controller}",
                f"advertised.listeners=PLAINTEXT://127.0.0.1:{port}",
                "controller.listener.names=CONTROLLER",
                "inter.broker.listener.name=PLAINTEXT",
                "listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
                f"log.dirs={workdir / 'data'}",
                "num.partitions=2",
                "auto.create.topics.enable=true",
                "offsets.topic.replication.factor=1",
                "transaction.state.log.replication.factor=1",
                "transaction.state.log.min.isr=1",
                "share.coordinator.state.topic.replication.factor=1",
                "share.coordinator.state.topic.min.isr=1",
                "group.initial.rebalance.delay.ms=0",
            ]
        )
        + "\n"
    )
    log4j.write_text(
        "rootLogger.level=WARN\nrootLogger.appenderRef.file.ref=file\n"
        f"appender.file.type=File\nappender.file.name=file\nappender.file.fileName={log}\n"
        "appender.file.layout.type=PatternLayout\nappender.file.layout.pattern=%d %p %c: %m%n\n"
    )
    java = [
        "java", "-Xmx512m", f"-Dlog4j2.configurationFile={log4j}", "-cp", f"{jars}/*",
    ]  # fmt: skip
    cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).rstrip(b"=").decode()
    subprocess.run(
        [*java, "kafka.tools.StorageTool", "format", "-t", cluster_id, "-c", str(properties)],
        check=True,
        capture_output=True,
    )
    with log.open("ab") as out:
        process = subprocess.Popen(
            [*java, "kafka.Kafka", str(properties)],
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        _wait_for(port, process, log)
        yield f"127.0.0.1:{port}"
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
