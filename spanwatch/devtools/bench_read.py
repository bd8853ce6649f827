"""``spanwatch bench read``: what reading the source topic alone costs, by client and shape.

The firehose question (issue "The firehose"): can faust-streaming's own transport read the
collector's topic in batches at librdkafka's cost, or does a batch path need confluent-kafka?
The same messages (one per trace, keyed by trace id, as the collector's
``partition_traces_by_id`` writes them) wait in an embedded broker and are read to the end by:

* a minimal faust agent, one event per message (``async for value in stream``): today's shape;
* the same agent taking batches (``stream.take(500, within=0.2)``);
* aiokafka ``getmany`` (faust's own transport, used directly: one call per batch);
* confluent-kafka ``consume(num_messages=500)`` (librdkafka).

Each reads every message and touches its value (its length). The clock and the process's CPU
(every thread) run from the first message read to the last, so start-up and group joins are
left out. Compare the ratios; the machine is shared.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from spanwatch.devtools.broker import EmbeddedBroker, free_port
from spanwatch.devtools.proc import spawn, stop

TOPIC = "otlp_spans"
BATCH = 500
PARTITIONS = 4


@dataclass
class ReadRun:
    messages: int
    wall_s: float
    cpu_s: float

    def us_per(self, n: int) -> float:
        return self.cpu_s / n * 1e6


def read_confluent(bootstrap: str, expect: int) -> ReadRun:
    from confluent_kafka import Consumer, TopicPartition

    c = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"bench-read-{os.getpid()}",
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
        }
    )
    c.assign([TopicPartition(TOPIC, p, 0) for p in range(PARTITIONS)])
    n, nbytes, t0, c0 = 0, 0, 0.0, 0.0
    deadline = time.monotonic() + 300
    try:
        while n < expect and time.monotonic() < deadline:
            batch = c.consume(num_messages=BATCH, timeout=1.0)
            if batch and not n:
                t0, c0 = time.monotonic(), time.process_time()
            for m in batch:
                if m.error() is None:
                    nbytes += len(m.value() or b"")
                    n += 1
    finally:
        c.close()
    return ReadRun(n, time.monotonic() - t0, time.process_time() - c0)


def read_aiokafka(bootstrap: str, expect: int) -> ReadRun:
    from aiokafka import AIOKafkaConsumer, TopicPartition

    async def run() -> ReadRun:
        c = AIOKafkaConsumer(
            bootstrap_servers=bootstrap, enable_auto_commit=False, auto_offset_reset="earliest"
        )
        await c.start()
        try:
            tps = [TopicPartition(TOPIC, p) for p in range(PARTITIONS)]
            c.assign(tps)
            await c.seek_to_beginning(*tps)
            n, nbytes, t0, c0 = 0, 0, 0.0, 0.0
            deadline = time.monotonic() + 300
            while n < expect and time.monotonic() < deadline:
                got = await c.getmany(timeout_ms=1000, max_records=BATCH)
                if got and not n:
                    t0, c0 = time.monotonic(), time.process_time()
                for records in got.values():
                    for r in records:
                        nbytes += len(r.value or b"")
                        n += 1
            return ReadRun(n, time.monotonic() - t0, time.process_time() - c0)
        finally:
            await c.stop()

    return asyncio.run(run())


def faust_reader_main(bootstrap: str, expect: int, mode: str, out: str) -> None:
    """A minimal faust app that reads ``expect`` messages (``mode`` ``events`` or ``take``),
    writes its :class:`ReadRun` to ``out`` and exits."""
    import faust

    app = faust.App(
        f"bench-read-{mode}-{os.getpid()}",
        broker=f"kafka://{bootstrap}",
        datadir=str(Path(out).parent / f"faust-{mode}-data"),  # not the caller's folder
        web_port=free_port(),
        web_enabled=False,
        broker_session_timeout=6,
        broker_heartbeat_interval=1,
        topic_partitions=PARTITIONS,
        consumer_auto_offset_reset="earliest",
    )
    topic = app.topic(TOPIC, key_type=bytes, value_type=bytes, value_serializer="raw")
    seen = {"n": 0, "bytes": 0, "t0": 0.0, "c0": 0.0}

    def count(values: list[bytes]) -> None:
        if not seen["n"]:
            seen["t0"], seen["c0"] = time.monotonic(), time.process_time()
        for v in values:
            seen["bytes"] += len(v or b"")
            seen["n"] += 1
        if seen["n"] >= expect:
            run = ReadRun(
                int(seen["n"]), time.monotonic() - seen["t0"], time.process_time() - seen["c0"]
            )
            Path(out).write_text(json.dumps(run.__dict__))
            os._exit(0)  # the number is written; nothing of this app is worth a clean stop

    @app.agent(topic)
    async def read(stream: faust.StreamT[bytes]) -> None:
        if mode == "take":
            async for values in stream.take(BATCH, within=0.2):
                count(values)
        else:
            async for value in stream:
                count([value])

    worker = faust.Worker(app, loglevel="WARNING", quiet=True)
    worker.execute_from_commandline()


def read_faust(bootstrap: str, expect: int, mode: str, workdir: Path) -> ReadRun:
    out = workdir / f"faust-{mode}.json"
    proc = spawn(
        [
            sys.executable,
            "-m",
            "spanwatch.devtools.bench_read",
            bootstrap,
            str(expect),
            mode,
            str(out),
        ],
        log_path=workdir / f"faust-{mode}.log",
    )
    try:
        proc.wait(timeout=600)
    except subprocess.TimeoutExpired:
        pass
    finally:
        stop(proc)
    if not out.exists():
        raise RuntimeError(f"the faust reader ({mode}) did not finish: see {workdir}")
    return ReadRun(**json.loads(out.read_text()))


def bench_read(messages: list[tuple[bytes, bytes]], spans: int) -> int:
    """Print the table: one row per client, µs per message and per span, messages/s per core."""
    from spanwatch.devtools.cluster import produce

    workdir = Path(tempfile.mkdtemp(prefix="spanwatch-bench-read-"))
    n = len(messages)
    print(
        f"\nreading the source topic alone: {n} messages (one per trace, {spans / n:.1f} spans "
        "on average), 4 partitions, every message read and its value touched; CPU of the "
        "reading process from its first message to its last"
    )
    with EmbeddedBroker(topics=[TOPIC], partitions=PARTITIONS, log_path=workdir / "tansu.log") as b:
        produce(b.bootstrap, TOPIC, messages)
        rows = [
            (
                "faust agent, one event per message (today)",
                read_faust(b.bootstrap, n, "events", workdir),
            ),
            (f"faust agent, `stream.take({BATCH})`", read_faust(b.bootstrap, n, "take", workdir)),
            (f"aiokafka `getmany(max_records={BATCH})`", read_aiokafka(b.bootstrap, n)),
            (f"confluent-kafka `consume(num_messages={BATCH})`", read_confluent(b.bootstrap, n)),
        ]
    base = rows[0][1].us_per(n)
    print(
        "| reader | messages read | CPU µs/message | CPU µs/span | messages/s per core | vs today |"
    )
    print("|---|---|---|---|---|---|")
    for label, run in rows:
        us = run.us_per(n)
        print(
            f"| {label} | {run.messages:,} | {us:,.1f} | {run.cpu_s / spans * 1e6:,.2f} | "
            f"{1e6 / us:,.0f} | {base / us:,.1f}x |",
            flush=True,
        )
    return 0 if all(run.messages >= n for _, run in rows) else 1


if __name__ == "__main__":
    faust_reader_main(sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4])
