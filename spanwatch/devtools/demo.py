"""``spanwatch demo``: embedded broker + a real worker + realistic traffic, live in the terminal.

Starts Tansu on loopback, a ``spanwatch worker`` child process (tansu profile), and a traffic
generator that writes multi-layer LLM traces as OTLP protobuf into ``otlp_spans`` (with an
occasional corrupt message, to show the dead-letter path; a model server that slows down for
ten seconds, then a vector database, then model calls that hang; runaway agents, completions
leaking personal data; Redis and vector-database calls as dependency spans; the Dify app's
steps as workflow nodes). The worker runs the demo alert rules (``spanwatch/data/demo-rules``,
console receiver). The demo reads the worker's output topics and prints a compact summary
every few seconds, alerts included. Everything it started is stopped on exit.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import sys
import tempfile
import threading
import time
import urllib.request
import uuid
import webbrowser
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from confluent_kafka import Consumer, Producer

from spanwatch.devtools.broker import EmbeddedBroker, free_port
from spanwatch.devtools.demo_judge import DemoJudge
from spanwatch.devtools.proc import spanwatch_cmd, spawn, stop
from spanwatch.devtools.traffic import LiveExport, TrafficGenerator
from spanwatch.pipeline.alerting.rules import compare
from spanwatch.pipeline.config import BROKER_PROFILES, TopicSettings
from spanwatch.pipeline.ingest.spans import LlmSpan

TANSU = BROKER_PROFILES["tansu"]
DEMO_RULES = Path(__file__).resolve().parent.parent / "data" / "demo-rules"


@dataclass
class Row:
    spans: int = 0
    errors: int = 0
    input_tokens: int = 0
    output_tokens: int = 0


@dataclass
class Summary:
    """What the demo shows: records per layer from ``spanwatch.spans`` and the latest closed
    10 s golden-signal window per (layer, service, model) from ``spanwatch.metrics``."""

    rows: dict[str, Row] = field(default_factory=lambda: defaultdict(Row))
    signals: dict[tuple[str, str, str], dict[str, Any]] = field(default_factory=dict)
    token_windows: dict[str, dict[str, Any]] = field(default_factory=dict)
    black_holes: list[dict[str, Any]] = field(default_factory=list)
    payloads: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    records: int = 0
    partial: int = 0
    windows: int = 0
    deadletters: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    alerts: list[dict[str, Any]] = field(default_factory=list)  # state changes, in order
    # latest 10s window per (calling service, dependency)
    dependencies: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    # latest 10s window per (service, workflow node)
    nodes: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    # latest 10s engine-gauge window per (engine service, model)
    engines: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    # latest prompt-cluster window per application, and new clusters found so far
    clusters: dict[str, dict[str, Any]] = field(default_factory=dict)
    new_clusters: int = 0
    # latest 10s judge-label window per (service, evaluation)
    labels: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)

    def add_records(self, value: bytes) -> None:
        for d in json.loads(value)["spans"]:
            rec = LlmSpan.from_dict(d)
            self.records += 1
            self.partial += bool(rec.issues)
            row = self.rows[rec.layer.value]
            row.spans += 1
            row.errors += rec.status == "error"
            row.input_tokens += rec.input_tokens or 0
            row.output_tokens += rec.output_tokens or 0

    def add_window(self, value: bytes) -> None:
        rec = json.loads(value)
        self.windows += 1
        s = rec["series"]
        if rec["window"]["name"] != "10s":
            return
        if s.get("node"):
            _keep_latest(self.nodes, (s.get("service", ""), s["node"]), rec)
        elif s.get("layer") == "dependency":
            _keep_latest(self.dependencies, (s.get("service", ""), s.get("dependency", "")), rec)
        elif s.get("model"):
            _keep_latest(self.signals, (s.get("layer", ""), s.get("service", ""), s["model"]), rec)

    def add_side_window(self, value: bytes) -> None:
        """A closed engine, prompt-cluster or judge-label window (told apart by its layer)."""
        rec = json.loads(value)
        self.windows += 1
        s = rec["series"]
        layer = s.get("layer")
        if layer == "clusters":
            _keep_latest(self.clusters, s.get("service", ""), rec)
            self.new_clusters += rec.get("new_clusters") or 0
        elif layer in SIDE_KEYS and rec["window"]["name"] == "10s":
            store = self.engines if layer == "engine" else self.labels
            _keep_latest(store, tuple(s.get(k, "") for k in SIDE_KEYS[layer]), rec)

    def add_tokens(self, value: bytes) -> None:
        rec = json.loads(value)
        if rec["type"] == "black_hole":
            self.black_holes.append(rec)
        elif (
            rec["type"] == "window"
            and rec["entity"]["kind"] == "model"
            and rec["window"]["name"] == "10s"
        ):
            old = self.token_windows.get(rec["entity"]["id"])
            if old is None or old["window"]["start_ns"] <= rec["window"]["start_ns"]:
                self.token_windows[rec["entity"]["id"]] = rec

    def render(self, elapsed: float, produced: int) -> str:
        head = (
            f"spanwatch demo  {elapsed:5.0f}s  produced {produced} messages  "
            f"records {self.records} (with issues {self.partial})  closed windows "
            f"{self.windows}  dead letters "
            + (", ".join(f"{n} {why}" for why, n in sorted(self.deadletters.items())) or "0")
        )
        lines = [
            head,
            "records by layer: "
            + "  ".join(
                f"{layer} {r.spans} ({r.errors} err)" for layer, r in sorted(self.rows.items())
            ),
        ]
        lines.append(
            f"{'layer':<13}{'service':<16}{'model':<22}{'req/s':>6}{'err%':>6}"
            f"{'ttft p50':>9}{'p95':>7}{'tpot p50':>9}{'lat p95':>8}{'queue p95':>10}"
            f"{'out tok/s':>10}  where time goes"
        )
        for (layer, service, model), r in sorted(self.signals.items()):
            lines.append(
                f"{layer:<13}{service[:15]:<16}{model[:21]:<22}{r['rate_per_s']:>6.1f}"
                f"{r['error_rate'] * 100:>6.1f}{_q(r, 'ttft_s', 'p50'):>9}"
                f"{_q(r, 'ttft_s', 'p95'):>7}{_q(r, 'tpot_s', 'p50'):>9}"
                f"{_q(r, 'latency_s', 'p95'):>8}{_q(r, 'queue_s', 'p95'):>10}"
                f"{r['output_tokens_per_s']:>10.0f}  {_shares(r)}"
            )
        if self.dependencies:
            lines.append(
                "dependencies (latest closed 10s window): "
                + "  ".join(
                    f"{svc} -> {dep}: {r['rate_per_s']:.1f}/s err {r['error_rate'] * 100:.1f}% "
                    f"p95 {_q(r, 'latency_s', 'p95')}"
                    for (svc, dep), r in sorted(self.dependencies.items())
                )
            )
        if self.engines:
            lines.append(
                "inference engines (latest closed 10s window): "
                + "  ".join(
                    f"{svc} {model}: waiting max {r.get('requests_waiting_max', 0):.0f} "
                    f"running max {r.get('requests_running_max', 0):.0f} "
                    f"KV cache max {r.get('kv_cache_usage_max', 0):.0%}"
                    for (svc, model), r in sorted(self.engines.items())
                )
            )
        if self.clusters:
            lines.append(
                f"prompt clusters (latest closed window; {self.new_clusters} new so far): "
                + "  ".join(
                    f"{svc}: {r['clusters']} clusters, largest "
                    f"{r.get('largest_cluster_share') or 0:.0%}, drift "
                    + ("-" if r.get("cluster_drift") is None else f"{r['cluster_drift']:.2f}")
                    for svc, r in sorted(self.clusters.items())
                )
            )
        if self.labels:
            lines.append(
                "judge labels (latest closed 10s window): "
                + "  ".join(
                    f"{svc} {ev}: {r['judged']} judged, "
                    + ", ".join(f"{k} {v:.0%}" for k, v in sorted(r["label_share"].items()))
                    for (svc, ev), r in sorted(self.labels.items())
                )
            )
        if self.nodes:
            lines.append(
                "workflow nodes (latest closed 10s window): "
                + "  ".join(
                    f"{node}: {r['count']} runs p95 {_q(r, 'latency_s', 'p95')} "
                    f"critical {r.get('critical_path_count', 0)}x"
                    for (_, node), r in sorted(self.nodes.items())
                )
            )
        if self.token_windows:
            lines.append(
                "tokens and cost by model (latest closed 10s window): "
                + "  ".join(
                    f"{m}: in {r['input_tokens']} out {r['output_tokens']} "
                    + (" ".join(f"{v:.4f} {c}" for c, v in r["cost"].items()) or "unpriced")
                    for m, r in sorted(self.token_windows.items())
                )
            )
        if self.payloads:
            lines.append(
                "chunked payloads stitched: "
                + ", ".join(f"{n} {k}" for k, n in sorted(self.payloads.items()))
            )
        if self.black_holes:
            last = self.black_holes[-1]
            ev = last["evidence"]
            rep = ev.get("repeated_tool") or {}
            lines.append(
                f"token black holes: {len(self.black_holes)}; latest: "
                f"{last['entity']['kind']} {last['entity']['id'][:16]} crossed "
                f"{last['budget']} ({last['value']} > {last['limit']}): "
                f"{ev['llm_calls']} LLM calls, {ev['tokens']} tokens, tool "
                f"{rep.get('tool', '-')} x{rep.get('in_a_row', 0)} in a row"
            )
        lines += self._alert_lines()
        return "\n".join(lines)

    def add_alert(self, value: bytes) -> None:
        self.alerts.append(json.loads(value))

    def _alert_lines(self) -> list[str]:
        if not self.alerts:
            return ["alerts: none yet"]
        latest: dict[str, dict[str, Any]] = {}
        for a in self.alerts:
            latest[a["fingerprint"]] = a
        firing = sorted({a["alertname"] for a in latest.values() if a["status"] == "firing"})
        fired = sorted({a["alertname"] for a in self.alerts if a["status"] == "firing"})
        resolved = sorted({a["alertname"] for a in self.alerts if a["status"] == "resolved"})
        out = [
            f"alerts firing now: {', '.join(firing) or 'none'}; fired: {', '.join(fired)}; "
            f"resolved: {', '.join(resolved) or 'none'}"
        ]
        # every alert name once, in its latest state: the newest firing alert of each name
        # (and how many more of it fire), then the newest resolved one of each name
        firing_by: dict[str, list[dict[str, Any]]] = {}
        done: dict[str, dict[str, Any]] = {}
        for a in sorted(latest.values(), key=lambda a: a["at"]):
            if a["status"] == "firing":
                firing_by.setdefault(a["alertname"], []).append(a)
            elif a["status"] == "resolved":
                done[a["alertname"]] = a
        for group in sorted(firing_by.values(), key=lambda g: g[-1]["at"]):
            more = f" (+{len(group) - 1} more firing)" if len(group) > 1 else ""
            out.append(alert_line(group[-1])[: 200 - len(more)] + more)
        out += [alert_line(a)[:200] for a in sorted(done.values(), key=lambda a: a["at"])]
        return out


K = TypeVar("K")
# engine and judge-label windows: the labels that name each row of the summary
SIDE_KEYS = {"engine": ("service", "model"), "labels": ("service", "evaluation")}


def _keep_latest(store: dict[K, dict[str, Any]], key: K, rec: dict[str, Any]) -> None:
    """Keep the window record of ``key`` that ends last."""
    have = store.get(key)
    if have is None or have["window"]["end_ns"] <= rec["window"]["end_ns"]:
        store[key] = rec


def _num(v: float, unit: str) -> str:
    if unit == "s":
        return f"{v * 1000:.0f} ms" if abs(v) < 1 else f"{v:.2g} s" if abs(v) < 10 else f"{v:.0f} s"
    if float(v).is_integer():
        return f"{v:.0f}"
    return f"{v:.3g}" if abs(v) < 100 else f"{v:.0f}"


NEGATED = {">": "<=", ">=": "<", "<": ">=", "<=": ">", "==": "!=", "!=": "=="}


def alert_line(a: dict[str, Any]) -> str:
    """One alert as the demo prints it: what crossed what (``ttft_p95 1.7 s > 1.5 s``, or once
    resolved ``resolved: ttft_p95 680 ms <= 1.5 s``), then the rule's summary while it fires."""
    who = " ".join(
        f"{k}={v}" for k, v in sorted(a["labels"].items()) if k not in ("alertname", "severity")
    )
    crossed = ""
    if (
        a.get("signal") is not None
        and a.get("threshold") is not None
        and a.get("value") is not None
    ):
        unit = a.get("unit") or ""
        op = a.get("op") or ">"
        value, threshold = _num(a["value"], unit), _num(a["threshold"], unit)
        if a["status"] != "resolved":
            crossed = f"{a['signal']} {value} {op} {threshold}"
        elif compare(a["value"], op, a["threshold"]):
            # resolved without a sample back under the threshold: the events stopped or the
            # series went quiet; the last value still breaches, so do not print it as cleared
            crossed = f"quiet (last {a['signal']} {value} {op} {threshold})"
        else:
            crossed = f"{a['signal']} {value} {NEGATED.get(op, op)} {threshold}"
    if a["status"] == "resolved":
        return f"  resolved {a['alertname']} {who}: {crossed or 'cleared'}"
    summary = a["annotations"].get("summary", "")  # names the entity while it fires
    return f"  FIRING   {a['alertname']}: " + "; ".join(x for x in (crossed, summary) if x)


def _q(rec: dict[str, Any], dist: str, q: str) -> str:
    d = rec.get(dist)
    return "-" if not d else f"{d[q] * 1000:.0f}ms" if d[q] < 1 else f"{d[q]:.2f}s"


def _shares(rec: dict[str, Any]) -> str:
    share = rec.get("ttft_share") or rec.get("time_share") or {}
    top = sorted(share.items(), key=lambda kv: -kv[1])[:2]
    label = "ttft: " if rec.get("ttft_share") else ""
    return label + ", ".join(f"{k} {v:.0%}" for k, v in top)


SLOW_MODEL = "qwen2.5-72b-instruct"
SLOW_FROM_S, SLOW_TO_S = 2.0, 8.0  # the model server queues for a while: an alert fires
SLOW_SEARCH_FROM_S, SLOW_SEARCH_TO_S = 5.0, 10.0  # then the vector database slows down
HANG_FROM_S, HANG_TO_S = 6.0, 10.0  # then some model calls hang: the gateway times out
HANG_TIMEOUT_S = 8.0
NEW_PROMPTS_FROM_S = 15.0  # then the support agent's users start complaining (a new kind)


def _produce_loop(
    bootstrap: str,
    topic: str,
    rate: float,
    seed: int,
    stop_flag: threading.Event,
    counter: list[int],
    metrics_topic: str = "",
) -> None:
    producer = Producer({"bootstrap.servers": bootstrap, **TANSU.producer})
    gen = TrafficGenerator(
        seed,
        chunk_every=40,
        pii_every=25,
        dependencies=True,
        workflow_nodes=True,
        prompts=True,
        short_steps=True,  # a demo lasts a minute: traces of seconds, not minutes
        hang_timeout_s=HANG_TIMEOUT_S,
    )
    live = LiveExport()
    tick = 0.5
    n = 0
    start = time.monotonic()
    while not stop_flag.wait(tick):
        elapsed = time.monotonic() - start
        slow = SLOW_FROM_S <= elapsed < SLOW_TO_S
        gen.slow_model, gen.slow_factor = (SLOW_MODEL, 150.0) if slow else (None, 1.0)
        gen.slow_for_ns = int((SLOW_TO_S - elapsed) * 1e9)  # calls made once it recovered
        slow_search = SLOW_SEARCH_FROM_S <= time.monotonic() - start < SLOW_SEARCH_TO_S
        gen.slow_dependency = 30.0 if slow_search else 1.0
        gen.hang_every = 40 if HANG_FROM_S <= time.monotonic() - start < HANG_TO_S else 0
        gen.new_prompts = time.monotonic() - start >= NEW_PROMPTS_FROM_S
        now = time.time_ns()
        for _ in range(max(1, round(rate * tick))):
            live.start(next(gen.batches(1, now)), now)  # traces begin now
        spans = live.due(now)  # and each span goes out once it has ended
        if spans.count():
            producer.produce(topic, spans.traces_data().SerializeToString())
        n += 1
        if metrics_topic and n % 4 == 0:  # the collector scrapes the engines every 2 s
            scrape = gen.engine_scrape(time.time_ns(), SLOW_MODEL if slow else None)
            producer.produce(metrics_topic, scrape.SerializeToString())
        if n % 40 == 0:  # now and then, something a broken exporter might send
            producer.produce(topic, b"\x0a\xff\xff\xff\x0f not protobuf")
        producer.poll(0)
        counter[0] = n
    producer.flush(10)


def run_demo(
    *, duration: float = 0, port: int = 0, rate: float = 20.0, seed: int = 7, ui_port: int = 0
) -> int:
    """Run the demo; its working folder (logs, data) is removed when it ends well, and kept
    (and named) when it does not."""
    workdir = Path(tempfile.mkdtemp(prefix="spanwatch-demo-"))
    rc = 1
    try:
        rc = _run_demo(workdir, duration, port, rate, seed, ui_port)
        return rc
    finally:
        if rc == 0 and not os.environ.get("SPANWATCH_KEEP_DEMO"):
            shutil.rmtree(workdir, ignore_errors=True)
        else:
            print(f"logs kept in {workdir}", file=sys.stderr, flush=True)


def _until_ready(worker: Any, metrics_port: int, stop_flag: threading.Event) -> bool:
    """Wait for the worker's readiness probe (it has joined its group and restored its
    tables): the traffic's story starts then, so a slow start does not eat into it."""
    deadline = time.monotonic() + 180
    url = f"http://127.0.0.1:{metrics_port}/readyz"
    while time.monotonic() < deadline and not stop_flag.is_set() and worker.poll() is None:
        try:
            with urllib.request.urlopen(url, timeout=2) as resp:
                if resp.status == 200:
                    return True
        except OSError:
            pass
        stop_flag.wait(0.25)
    return False


def _run_demo(
    workdir: Path, duration: float, port: int, rate: float, seed: int, ui_port: int
) -> int:
    topics = TopicSettings()
    print(
        f"starting Tansu, a spanwatch worker and the traffic generator (logs in {workdir})",
        flush=True,
    )
    stop_flag = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop_flag.set())
    with (
        DemoJudge() as judge,
        EmbeddedBroker(
            port or None,
            topics=topics.all_topics(),
            partitions=topics.partitions,
            log_path=workdir / "tansu.log",
        ) as broker,
    ):
        config = workdir / "spanwatch.yaml"
        ui_port = ui_port or free_port()
        config.write_text(
            f"alerting: {{rules: [{json.dumps(str(DEMO_RULES))}]}}\n"
            f"ui: {{enabled: true, port: {ui_port}, bind: 127.0.0.1}}\n"
            # the demo's scrapes reach Kafka at once: their windows need not wait a minute
            "engine: {allowed_lateness: 5s}\n"
            # a demo lasts a minute: prompt clusters per 10 s window, every prompt sampled
            "clusters: {window: 10s, sample_rate: 1.0, warmup_windows: 1}\n"
            # the sentiment of the users' messages, from the demo's stand-in judge
            # (spanwatch/devtools/demo_judge.py); a judge answers late, labels wait 5 s
            f"safety: {{judges: [{{preset: sentiment, url: '{judge.url}', model: demo-judge, "
            "sample_rate: 1.0}]}\n"
            "labels: {allowed_lateness: 5s}\n"
        )
        ui_url = f"http://127.0.0.1:{ui_port}/"
        print(f"web view: {ui_url} (served by the worker once it is up)", flush=True)
        metrics_port = free_port()
        worker = spawn(
            spanwatch_cmd(
                "--config",
                str(config),
                "worker",
                "--broker",
                broker.bootstrap,
                "--profile",
                "tansu",
                "--data-dir",
                str(workdir / "data"),
                "--app-id",
                "spanwatch-demo",
                "--metrics-port",
                str(metrics_port),
            ),
            log_path=workdir / "worker.log",
        )
        t_ready = time.monotonic()
        if not _until_ready(worker, metrics_port, stop_flag):
            stop(worker, grace=10)
            if stop_flag.is_set():  # stopped while starting: not a failure
                return 0
            print(f"the worker did not get ready; see {workdir}/worker.log", file=sys.stderr)
            return 1
        print(
            f"worker ready after {time.monotonic() - t_ready:.0f} s; "
            f"traffic for {f'{duration:.0f} s' if duration else 'as long as you like (Ctrl-C)'}",
            flush=True,
        )
        counter = [0]
        producer = threading.Thread(
            target=_produce_loop,
            daemon=True,
            args=(
                broker.bootstrap,
                topics.source,
                rate,
                seed,
                stop_flag,
                counter,
                topics.metrics_source,
            ),
        )
        summary = Summary()
        consumer = Consumer(
            {
                "bootstrap.servers": broker.bootstrap,
                **TANSU.consumer,
                "group.id": f"demo-view-{uuid.uuid4().hex[:6]}",
                "auto.offset.reset": "earliest",
            }
        )
        consumer.subscribe(
            [
                topics.spans,
                topics.deadletter,
                topics.metrics,
                topics.engine,
                topics.clusters,
                topics.labels,
                topics.tokens,
                topics.payloads,
                topics.alerts,
            ]
        )
        start = time.monotonic()
        producer.start()
        if sys.stdout.isatty() and not os.environ.get("SPANWATCH_NO_BROWSER"):
            webbrowser.open(ui_url)  # a person at a terminal: open the page
        last_render = 0.0
        try:
            while not stop_flag.is_set():
                elapsed = time.monotonic() - start
                if duration and elapsed >= duration:
                    break
                if worker.poll() is not None:
                    print(
                        f"worker exited with {worker.returncode}; see {workdir}/worker.log",
                        file=sys.stderr,
                    )
                    return 1
                msg = consumer.poll(0.2)
                if msg is not None and msg.error() is None:
                    if msg.topic() == topics.spans:
                        summary.add_records(msg.value() or b"{}")
                    elif msg.topic() == topics.metrics:
                        summary.add_window(msg.value() or b"{}")
                    elif msg.topic() in (topics.engine, topics.clusters, topics.labels):
                        summary.add_side_window(msg.value() or b"{}")
                    elif msg.topic() == topics.tokens:
                        summary.add_tokens(msg.value() or b"{}")
                    elif msg.topic() == topics.alerts:
                        summary.add_alert(msg.value() or b"{}")
                    elif msg.topic() == topics.payloads:
                        rec = json.loads(msg.value() or b"{}")
                        summary.payloads[rec.get("reason") or rec.get("status", "?")] += 1
                    else:
                        reason = dict(msg.headers() or []).get("spanwatch.reason") or b"?"
                        summary.deadletters[
                            reason.decode() if isinstance(reason, bytes) else reason
                        ] += 1
                if elapsed - last_render >= 3.0:
                    last_render = elapsed
                    print("\n" + summary.render(elapsed, counter[0]), flush=True)
        except KeyboardInterrupt:
            pass
        finally:
            stop_flag.set()
            producer.join(timeout=10)
            consumer.close()
            stop(worker)
        print("\n" + summary.render(time.monotonic() - start, counter[0]), flush=True)
    print("stopped the worker and the broker.", flush=True)
    return 0 if summary.records else 1
