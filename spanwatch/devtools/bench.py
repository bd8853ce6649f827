"""``spanwatch bench``: benchmarks that print numbers (never timed assertions in tests).

``ingest`` measures, on the same generated data (batches of ~500 realistic GenAI spans):

* raw: ``TracesData.ParseFromString`` plus reading every attribute of every span (and of its
  resource) once into a dict: the floor of what decoding in Python can cost;
* decode+normalize: :func:`pipeline.ingest.message.ingest_message` per message;
* the core in one process (:func:`core_pass`): what every worker must do per span in Python
  with no broker, no faust and no other stage (decode, normalize, golden-signal and token
  pre-aggregation in batches, bundles through JSON, merge at the owner): the ceiling of a
  worker built on this core;
* worker: a ``spanwatch worker`` process from the embedded broker, with stages switched on
  one at a time; the input is produced once it is ready, and the clock and the worker's CPU
  run from then until every stage has drained (``/status``), so each step's extra CPU per
  span is that stage's cost;
* the same spans as the collector sends them with ``partition_traces_by_id`` (one message
  per trace), every stage, with partials sent one source message at a time and in batches
  (:mod:`pipeline.windows.coalesce`);
* reading the source topic alone (:mod:`spanwatch.devtools.bench_read`): a faust agent
  against aiokafka and confluent-kafka batch reads, on the per-trace messages.

``--quick`` keeps the first and last stage steps and 20,000 spans. Rates are best of 3 for
the in-process paths; compare the ratios, not absolute numbers, on a shared machine.
"""

from __future__ import annotations

import gc
import os
import tempfile
import time
import tracemalloc
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import orjson
from opentelemetry.proto.trace.v1.trace_pb2 import TracesData

from spanwatch.devtools.broker import EmbeddedBroker
from spanwatch.devtools.cluster import WorkerProc, produce
from spanwatch.devtools.traffic import TrafficGenerator
from spanwatch.pipeline.clusters.prompts import ClusterSettings
from spanwatch.pipeline.config import MetricsSettings, Settings, merge_stage, preaggregator
from spanwatch.pipeline.ingest.message import ingest_message
from spanwatch.pipeline.ingest.otlp import proto_attrs
from spanwatch.pipeline.windows.golden import SeriesKeyer
from spanwatch.pipeline.windows.merge import MergeStage
from spanwatch.pipeline.windows.partial import Partial, bundles
from spanwatch.pipeline.windows.preaggregate import PreAggregator
from spanwatch.pipeline.windows.sketch import QuantileSketch
from spanwatch.pipeline.windows.state import SeriesState

# generated traffic arrives at this rate (spans/s of span time), in the order spans end
TRAFFIC_RATE = 2_000.0


def _messages(
    spans: int, batch: int, seed: int = 1, rate: float = TRAFFIC_RATE, **traffic: Any
) -> tuple[list[bytes], int]:
    """About ``spans`` spans of generated traffic at ``rate`` spans per second of span time,
    in messages of ``batch`` spans in the order the spans end, the last ending now
    (``traffic``: :class:`TrafficGenerator` options)."""
    gen = TrafficGenerator(seed, **traffic)
    start = time.time_ns() - int(spans / rate * 1e9)
    batches = gen.exported(spans, batch, start, rate)
    return [b.traces_data().SerializeToString() for b in batches], sum(b.count() for b in batches)


def per_trace(msgs: list[bytes]) -> list[tuple[bytes, bytes]]:
    """The same spans as the collector's Kafka exporter sends them with
    ``partition_traces_by_id`` (deploy/otelcol.yaml): one message per trace, keyed by the hex
    trace id."""
    out: list[tuple[bytes, bytes]] = []
    for m in msgs:
        data = TracesData()
        data.ParseFromString(m)
        traces: dict[bytes, TracesData] = {}
        for rs in data.resource_spans:
            for ss in rs.scope_spans:
                scopes: dict[bytes, Any] = {}  # trace id -> its scope_spans for this scope
                for sp in ss.spans:
                    into = scopes.get(sp.trace_id)
                    if into is None:
                        t = traces.setdefault(sp.trace_id, TracesData())
                        t_rs = t.resource_spans.add()
                        t_rs.resource.CopyFrom(rs.resource)
                        into = scopes[sp.trace_id] = t_rs.scope_spans.add()
                        into.scope.CopyFrom(ss.scope)
                    into.spans.add().CopyFrom(sp)
        out += [(tid.hex().encode(), t.SerializeToString()) for tid, t in traces.items()]
    return out


def raw_pass(msgs: list[bytes]) -> None:
    for m in msgs:
        data = TracesData()
        data.ParseFromString(m)
        for rs in data.resource_spans:
            proto_attrs(rs.resource.attributes)
            for ss in rs.scope_spans:
                for sp in ss.spans:
                    proto_attrs(sp.attributes)


def normalize_pass(msgs: list[bytes]) -> None:
    for m in msgs:
        ingest_message(m)


def core_pass(msgs: list[bytes]) -> MergeStage:
    """The worker's core with default settings, in one process: decode and normalize;
    golden-signal and token partials, sent in batches of at most ``coalesce_max_spans``
    spans as the ingest side does with a backlog; bundles through JSON per owner partition;
    merged (and black-hole budgets checked) at the owner."""
    settings = Settings()
    pre = preaggregator(settings, time.time_ns)
    stage = merge_stage({}, settings)
    most, parts = settings.metrics.coalesce_max_spans, settings.topics.partitions
    held: dict[str, Partial] = {}  # by series: the batch's spans added in place
    weight = 0

    def send() -> None:
        for part, value in bundles(list(held.values()), parts).items():
            stage.apply_bundle(part, map(Partial.from_dict, orjson.loads(value)["partials"]))
        held.clear()

    for off, m in enumerate(msgs):
        spans = ingest_message(m).spans
        if held and weight + len(spans) + 1 > most:
            send()
            weight = 0
        pre.add_message(0, off, spans, into=held)
        weight += len(spans) + 1
    send()
    return stage


def worker_gc(fn: Callable[[list[bytes]], Any]) -> Callable[[list[bytes]], Any]:
    """``fn`` run with the worker's garbage-collector thresholds (``worker.gc_threshold``)."""

    def run(msgs: list[bytes]) -> Any:
        before = gc.get_threshold()
        if (threshold := Settings().worker.gc_threshold) is not None:
            gc.set_threshold(*threshold)
        try:
            return fn(msgs)
        finally:
            gc.set_threshold(*before)

    return run


def best_rate(
    fn: Callable[[list[bytes]], Any], msgs: list[bytes], spans: int, repeat: int = 3
) -> float:
    best = float("inf")
    for _ in range(repeat):
        t = time.perf_counter()
        fn(msgs)
        best = min(best, time.perf_counter() - t)
    return spans / best


# Stages switched on one at a time: each step's extra CPU per span is that stage's cost.
STAGE_STEPS: tuple[tuple[str, str], ...] = (
    (
        "ingest (decode, normalize, publish spans)",
        "metrics: {enabled: false}\ntokens: {enabled: false}\nstitch: {enabled: false}\n"
        "safety: {enabled: false}\nanomaly: {enabled: false}\nalerting: {enabled: false}\n",
    ),
    (
        "+ golden-signal windows",
        "tokens: {enabled: false}\nstitch: {enabled: false}\nsafety: {enabled: false}\n"
        "anomaly: {enabled: false}\nalerting: {enabled: false}\n",
    ),
    (
        "+ token accounting and black holes",
        "stitch: {enabled: false}\nsafety: {enabled: false}\nanomaly: {enabled: false}\n"
        "alerting: {enabled: false}\n",
    ),
    (
        "+ content safety",
        "stitch: {enabled: false}\nanomaly: {enabled: false}\nalerting: {enabled: false}\n",
    ),
    ("+ stitch, anomaly, alerting (every stage)", ""),
)


def _cpu_s(pid: int) -> float:
    """User + system CPU seconds of a process (all its threads) from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def drained(status: dict[str, Any], messages: int) -> bool:
    """Whether a worker's ``/status`` shows ``messages`` source messages committed and every
    stage drained: every partition of every topic it reads processed and committed, the
    merge of partials included."""
    rows = status["partitions"]
    src = [r for r in rows if r["topic"] == "otlp_spans"]
    return (
        sum(r["committed"] or 0 for r in src) >= messages
        and all(r["end"] for r in src)
        and all((r["lag"] or 0) == 0 for r in rows)
    )


@dataclass
class WorkerRun:
    spans: int
    wall_s: float  # from ready to every stage drained
    cpu_s: float  # the worker's CPU over the same interval
    build: str = ""  # the core the worker ran, as its /status says (runtime.build)

    @property
    def rate(self) -> float:
        return self.spans / self.wall_s

    @property
    def cpu_us_per_span(self) -> float:
        return self.cpu_s / self.spans * 1e6


def worker_run(
    msgs: list[bytes] | list[tuple[bytes, bytes]],
    spans: int,
    config: str = "",
    site: Path | None = None,
) -> WorkerRun:
    """The clock and the worker's CPU run from the worker being ready (its topics empty),
    through producing the input, until its /status shows every source message committed and
    every stage drained (every partition of every topic it reads processed and committed: the
    merge of partials included). Input produced before the start would be read while the
    worker starts, before the clock. ``site``: a folder first on the worker's import path
    (a compiled wheel's)."""
    from spanwatch.pipeline.config import TopicSettings

    workdir = Path(tempfile.mkdtemp(prefix="spanwatch-bench-"))
    with EmbeddedBroker(
        topics=TopicSettings().all_topics(), partitions=4, log_path=workdir / "tansu.log"
    ) as b:
        cfg = workdir / "spanwatch.yaml"
        cfg.write_text(config + "worker: {stall_after: 10m}\n")
        worker = WorkerProc(b.bootstrap, workdir, config=cfg, site=site).launch()
        try:
            st = worker.until(lambda st: st["state"] in ("running", "stalled"), 120, "started")
            assert worker.proc is not None
            t0, c0 = time.monotonic(), _cpu_s(worker.proc.pid)
            produce(b.bootstrap, "otlp_spans", msgs)

            worker.until(lambda st: drained(st, len(msgs)), 1800, "drained")
            t1, c1 = time.monotonic(), _cpu_s(worker.proc.pid)
        finally:
            worker.stop()
    return WorkerRun(spans, t1 - t0, c1 - c0, str(st.get("core", "")))


def run_bench(
    what: str,
    *,
    spans: int = 100_000,
    batch: int = 500,
    broker: bool = True,
    payloads: int = 10_000,
    cap_mb: int = 512,
    fetch_wait_ms: int = 100,
    data: str | None = None,
    quick: bool = False,
    compiled: str | None = None,
) -> int:
    """``quick``: 20,000 spans, only the first and last stage steps, only batched partials
    in the per-trace shape (under 3 minutes on 2 cores)."""
    if quick:
        spans = min(spans, 20_000)
    if what == "core":
        from spanwatch.devtools.bench_core import bench_core

        return bench_core(spans, batch, compiled, worker=broker)
    if what == "read":
        from spanwatch.devtools.bench_read import bench_read

        msgs, total = _messages(spans, batch)
        return bench_read(per_trace(msgs), total)
    if what == "metrics":
        return bench_metrics(spans, batch)
    if what == "stitch":
        return bench_stitch(payloads, cap_mb)
    if what == "alerts":
        from spanwatch.devtools.bench_alerts import bench_alerts

        return bench_alerts(fetch_wait_ms=fetch_wait_ms)
    if what == "anomaly":
        from spanwatch.devtools.anomaly_eval import bench_anomaly

        return bench_anomaly(data=data)
    if what == "clusters":
        from spanwatch.devtools.clusters_public import bench_clusters

        return bench_clusters(data=data)
    if what == "ui":
        from spanwatch.devtools.bench_ui import bench_ui

        return bench_ui()
    if what == "safety":
        from spanwatch.devtools.bench_safety import bench_safety

        return bench_safety(data=data)
    msgs, total = _messages(spans, batch)
    size = sum(len(m) for m in msgs)
    print(
        f"data: {total} spans in {len(msgs)} messages of ~{total // len(msgs)} spans "
        f"({size / len(msgs) / 1024:.0f} KiB each)"
    )
    raw = best_rate(raw_pass, msgs, total)
    norm = best_rate(normalize_pass, msgs, total)
    keyed = per_trace(msgs)
    by_trace = [v for _, v in keyed]
    print(f"raw (ParseFromString + every attribute into a dict): {raw:>10,.0f} spans/s")
    print(
        f"decode + normalize (ingest_message):                 {norm:>10,.0f} spans/s"
        f"  = {norm / raw:.0%} of raw"
    )
    for label, shape in (("", msgs), (", one message per trace", by_trace)):
        core = best_rate(worker_gc(core_pass), shape, total, repeat=2)
        print(
            f"the core in one process, no broker{label}: {core:>10,.0f} spans/s"
            f" = {1e6 / core:.1f} µs/span = {core / raw:.1%} of raw"
        )
    if broker:
        raw_us = 1e6 / raw
        print(
            "\nthrough a worker from Tansu, clock and CPU from ready, through producing the "
            "input, to every stage drained:"
        )
        print(
            f"| stages | spans/s | CPU µs/span | spans/s per core | this step µs/span | "
            f"% of raw floor ({raw_us:.1f} µs/span) |"
        )
        print("|---|---|---|---|---|---|")
        prev = 0.0
        steps = (STAGE_STEPS[0], STAGE_STEPS[-1]) if quick else STAGE_STEPS
        firehose = ("every stage, source read by the firehose", "ingest: {reader: batch}\n")
        for label, cfg in (*steps, firehose):
            run = worker_run(msgs, total, cfg)
            us = run.cpu_us_per_span
            print(
                f"| {label} | {run.rate:,.0f} | {us:,.1f} | {1e6 / us:,.0f} | "
                f"{us - prev:+,.1f} | {raw_us / us:.1%} |",
                flush=True,
            )
            prev = us
        print(
            f"\nevery stage, one message per trace keyed by trace id (the collector's "
            f"partition_traces_by_id): {len(keyed)} messages of {total / len(keyed):.1f} "
            "spans on average"
        )
        print("| partials sent | spans/s | CPU µs/span | spans/s per core | % of raw floor |")
        print("|---|---|---|---|---|")
        shapes = (
            (
                "one message at a time (`coalesce_interval_s: 0`)",
                "metrics: {coalesce_interval_s: 0}\n",
            ),
            ("in batches (default)", ""),
            (
                "in batches, source read by the firehose (`ingest.reader: batch`)",
                "ingest: {reader: batch}\n",
            ),
        )
        for label, cfg in shapes[1:] if quick else shapes:
            run = worker_run(keyed, total, cfg)
            us = run.cpu_us_per_span
            print(
                f"| {label} | {run.rate:,.0f} | {us:,.1f} | {1e6 / us:,.0f} | {raw_us / us:.1%} |",
                flush=True,
            )
        from spanwatch.devtools.bench_read import bench_read

        return bench_read(keyed, total)
    return 0


def _windows_pass(msgs: list[bytes]) -> None:
    """decode + normalize + pre-aggregate + serialize partials + merge at the owner."""
    ms = MetricsSettings()
    pre = PreAggregator(ms.window_settings(), SeriesKeyer(ms.dimensions), time.time_ns)
    states: dict[str, SeriesState] = {}
    for off, m in enumerate(msgs):
        for p in pre.add_message(0, off, ingest_message(m).spans):
            wire = Partial.from_dict(orjson.loads(p.to_bytes()))
            states.setdefault(wire.series, SeriesState()).apply(wire)


def quantile_error(n: int = 200_000, seed: int = 3) -> float:
    """Largest relative error of p50..p99.9 against exact quantiles, heavy-tailed latencies."""
    rng = np.random.default_rng(seed)
    x = np.concatenate([rng.lognormal(-1.0, 1.0, n // 2), (rng.pareto(1.5, n // 2) + 1) * 0.2])
    sk = QuantileSketch()
    sk.add_many(x)
    worst = 0.0
    for q in (0.5, 0.9, 0.95, 0.99, 0.999):
        exact = float(np.quantile(x, q, method="lower"))
        worst = max(worst, abs((sk.quantile(q) or 0.0) - exact) / exact)
    return worst


def memory_per_series(series: int = 10_000) -> float:
    """Bytes held by the series owner per active series (3 open windows, 20 spans each)."""
    import random

    from spanwatch.pipeline.ingest.spans import Layer, LlmSpan

    rng = random.Random(1)
    ms = MetricsSettings()
    pre = PreAggregator(ms.window_settings(), SeriesKeyer(ms.dimensions, series + 1), time.time_ns)
    t0 = time.time_ns()
    spans = [
        LlmSpan(
            "a" * 32,
            f"{i:016x}",
            "",
            "chat",
            f"svc-{i % series}",
            Layer.APP,
            "chat",
            "client",
            t0,
            t0 + 10**9,
            rng.random() * 3,
            "ok",
            request_model=f"m{i % 7}",
            ttft_s=rng.random(),
            tpot_s=rng.random() / 50,
            input_tokens=100,
            output_tokens=50,
        )
        for i in range(series * 20)
    ]
    partials = pre.add_message(0, 0, spans)
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    states = {}
    for p in partials:
        st = states[p.series] = SeriesState()
        st.apply(p)
    after = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    return (after - before) / len(states)


def bench_metrics(spans: int, batch: int) -> int:
    msgs, total = _messages(spans, batch)
    print(f"data: {total} spans in {len(msgs)} messages; windows {MetricsSettings().windows}")
    norm = best_rate(normalize_pass, msgs, total)
    win = best_rate(_windows_pass, msgs, total)
    print(f"decode + normalize:                            {norm:>10,.0f} spans/s")
    print(
        f"decode + normalize + windows (pre-agg, wire, merge): {win:>10,.0f} spans/s"
        f"  = {win / norm:.0%} of normalize alone"
    )
    for what, option, field in (
        ("Redis and vector-database calls (layer dependency)", "dependencies", "dependency"),
        ("the Dify app's steps as workflow nodes (critical paths)", "workflow_nodes", "node"),
    ):
        more, more_total = _messages(spans, batch, **{option: True})
        rate = best_rate(_windows_pass, more, more_total)
        recs = [r for m in more for r in ingest_message(m).spans]
        share = sum(getattr(r, field) is not None for r in recs) / max(len(recs), 1)
        print(
            f"the same with {what}, ~{share:.0%} of records: {rate:>10,.0f} spans/s with "
            f"windows = {rate / win:.0%} of the rate without them"
        )
    prompted, prompted_total = _messages(spans, batch, prompts=True)
    base = best_rate(_windows_pass, prompted, prompted_total)
    with_clusters = best_rate(_clusters_pass, prompted, prompted_total)
    cs = ClusterSettings()
    print(
        f"the same with prompts on the GenAI app's calls, clustered (sample_rate "
        f"{cs.sample_rate}; ingest with content, fingerprints, partials, merge): "
        f"{with_clusters:>10,.0f} spans/s = {with_clusters / base:.0%} of windows alone"
    )
    scrapes, samples = _engine_scrapes(2000)
    rate = best_rate(_engine_pass, scrapes, samples)
    print(
        f"engine gauges (vLLM / SGLang scrapes from the metrics topic: decode, windows, wire, "
        f"merge): {rate:>10,.0f} samples/s ({len(scrapes)} scrapes of {samples // len(scrapes)})"
    )
    print(
        f"quantile relative error (worst of p50..p99.9, 200k heavy-tailed values): "
        f"{quantile_error():.3%} (bound 1%)"
    )
    per = memory_per_series()
    print(
        f"memory per active series at the owner (3 open windows): {per / 1024:.1f} KiB "
        f"= {per * 10_000 / 2**20:.0f} MiB per 10k series"
    )
    held, per_span = trace_join_memory(msgs)
    cap = MetricsSettings().max_trace_spans
    print(
        f"traces joined across messages: {per_span:.0f} B per span held "
        f"({held:,} held here; the default cap of {cap:,} is {per_span * cap / 2**20:.0f} MiB)"
    )
    return 0


def _clusters_pass(msgs: list[bytes]) -> None:
    """``_windows_pass`` plus prompt clusters: content read at ingest, fingerprints of the
    sampled prompts, their partials through the wire, merged at the owner."""
    from spanwatch.pipeline.ingest.message import IngestOptions
    from spanwatch.pipeline.windows.preaggregate import prompt_partials

    ms, cs = MetricsSettings(), ClusterSettings()
    pre = PreAggregator(ms.window_settings(), SeriesKeyer(ms.dimensions), time.time_ns)
    states: dict[str, SeriesState] = {}
    opts = IngestOptions(collect_content=True)
    for off, m in enumerate(msgs):
        result = ingest_message(m, options=opts)
        made = pre.add_message(0, off, result.spans)
        made += prompt_partials(0, off, result.spans, result.contents, cs)
        for p in made:
            wire = Partial.from_dict(orjson.loads(p.to_bytes()))
            states.setdefault(wire.series, SeriesState(kind=wire.kind)).apply(wire)


def _engine_scrapes(n: int) -> tuple[list[bytes], int]:
    """``n`` scrapes of the generator's engines, 2 s apart, serialized as the collector writes
    them; and how many gauge samples they hold."""
    from spanwatch.pipeline.engine.gauges import decode_metrics

    gen, t0 = TrafficGenerator(3), time.time_ns()
    scrapes = [
        gen.engine_scrape(
            t0 + i * 2 * 10**9, "qwen2.5-72b-instruct" if i % 50 < 5 else None
        ).SerializeToString()
        for i in range(n)
    ]
    return scrapes, sum(len(decode_metrics(s)) for s in scrapes)


def _engine_pass(scrapes: list[bytes]) -> None:
    """decode + engine partials + serialize + merge at the owner (as ``_windows_pass``)."""
    from spanwatch.pipeline.engine.gauges import decode_metrics
    from spanwatch.pipeline.windows.preaggregate import engine_partials

    specs = MetricsSettings().window_settings().specs
    states: dict[str, SeriesState] = {}
    for off, m in enumerate(scrapes):
        for p in engine_partials(0, off, decode_metrics(m), specs):
            wire = Partial.from_dict(orjson.loads(p.to_bytes()))
            states.setdefault(wire.series, SeriesState(kind="engine")).apply(wire)


def trace_join_memory(msgs: list[bytes]) -> tuple[int, float]:
    """Spans held by the ingest side's trace join (pipeline.ingest.tracetree) and bytes per span."""
    from spanwatch.pipeline.ingest.tracetree import TraceTrees

    batches = [ingest_message(m).spans for m in msgs]
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    trees = TraceTrees(time.time_ns, max_spans=10**9)
    for spans in batches:
        trees.join(0, spans)
    after = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    return trees.spans_held, (after - before) / max(trees.spans_held, 1)


def bench_stitch(payloads: int = 10_000, cap_mb: int = 512, seed: int = 9) -> int:
    """Reassembly throughput and memory: ``payloads`` concurrent payloads of 256 KB-2 MB in
    32-64 KB pieces through the pure reassembly core with a byte cap (oldest incomplete
    payloads evicted and remembered, as the stitch agent does). Two arrival orders: fully
    shuffled, and payloads interleaved with each one's pieces in order (what exporters do)."""
    import random

    rng = random.Random(seed)
    block = bytes(rng.getrandbits(8) for _ in range(1 << 16)) * 40  # 2.6 MB to slice from
    sizes = [rng.randint(256 * 1024, 2 * 1024 * 1024) for _ in range(payloads)]
    plan = []
    for pid, size in enumerate(sizes):
        piece = rng.randint(32 * 1024, 64 * 1024)
        n = (size + piece - 1) // piece
        plan.append([(pid, i, n, piece) for i in range(n)])
    shuffled = [p for ps in plan for p in ps]
    rng.shuffle(shuffled)
    interleaved = []
    queues = [list(reversed(ps)) for ps in plan]
    live = list(range(payloads))
    while live:
        k = rng.randrange(len(live))
        interleaved.append(queues[live[k]].pop())
        if not queues[live[k]]:
            live[k] = live[-1]
            live.pop()
    total = sum(sizes)
    print(
        f"payloads: {payloads} ({total / 2**20:,.0f} MiB) in {len(shuffled):,} pieces of "
        f"32-64 KiB; cap {cap_mb} MiB on held piece data"
    )
    for name, order in (("interleaved", interleaved), ("shuffled", shuffled)):
        _stitch_run(name, order, sizes, block, cap_mb)
    return 0


def _stitch_run(
    name: str, order: list[tuple[int, int, int, int]], sizes: list[int], block: bytes, cap_mb: int
) -> None:
    import resource
    from collections import OrderedDict

    from spanwatch.pipeline.stitch.chunks import PayloadState, Piece, assemble

    cap = cap_mb * 1024 * 1024
    held: OrderedDict[int, tuple[PayloadState, dict[int, bytes]]] = OrderedDict()
    done: set[int] = set()
    held_bytes = complete = evicted = peak = handled = completed_bytes = 0
    t = time.perf_counter()
    for pid, i, n, piece in order:
        if pid in done:
            continue  # a piece of an evicted payload: recognized and dropped
        data = block[i * piece : min((i + 1) * piece, sizes[pid])]
        handled += len(data)
        p = Piece(str(pid), "t", "s", "output", i, n, "base64", data)
        entry = held.get(pid)
        if entry is None:
            entry = held[pid] = (PayloadState.start(p, 0), {})
        state, chunks = entry
        if state.add(p) == "new":
            chunks[i] = data
            held_bytes += len(data)
        if state.complete:
            assemble(state, chunks, "timeout")  # join + decode; no digest in this benchmark
            completed_bytes += state.bytes_held
            held_bytes -= state.bytes_held
            del held[pid]
            done.add(pid)
            complete += 1
        while held_bytes > cap and held:
            old_pid, (old, _) = held.popitem(last=False)
            held_bytes -= old.bytes_held
            done.add(old_pid)
            evicted += 1
        peak = max(peak, held_bytes)
    dt = time.perf_counter() - t
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        f"{name:>11}: pieces stored {handled / 2**20 / dt:,.0f} MiB/s, payloads reassembled "
        f"{completed_bytes / 2**20 / dt:,.0f} MiB/s ({dt:.1f} s); complete {complete}, "
        f"evicted as partial {evicted}; peak held {peak / 2**20:,.0f} MiB (cap {cap_mb}), "
        f"peak RSS so far {rss:,.0f} MiB"
    )
