"""The command line as a user runs it: demo, capture, broker errors."""

from __future__ import annotations

import contextlib
import re
import subprocess
import time
from pathlib import Path

import pytest

from spanwatch.devtools.broker import EmbeddedBroker
from spanwatch.devtools.cluster import wait_until
from spanwatch.devtools.traffic import TrafficGenerator
from tests.support.cli import CLI
from tests.support.cluster import produce
from tests.support.paths import ROOT

# the length ./dev demo gives the demo
DEV_DEMO_SECONDS = re.search(  # type: ignore[union-attr]
    r'demo --duration "\$\{1:-(\d+)\}"', (ROOT / "dev").read_text()
).group(1)


@pytest.mark.broker
def test_demo_runs_and_stops_everything_it_started() -> None:
    """The demo as ``./dev demo`` runs it (60 s of traffic): every alert the README promises
    fires, and those that should resolve do, within it (NegativeUserSentiment fired at
    59-61 s once, after ./dev demo had stopped)."""
    out = subprocess.run(
        [*CLI, "demo", "--duration", DEV_DEMO_SECONDS], capture_output=True, text=True, timeout=300
    )
    assert out.returncode == 0, out.stderr[-2000:]
    last = out.stdout.rsplit("spanwatch demo", 1)[1]
    records = int(re.search(r"records (\d+)", last).group(1))  # type: ignore[union-attr]
    assert records > 100
    by_layer = re.search(r"records by layer: (.*)", last).group(1)  # type: ignore[union-attr]
    for layer in ("gateway", "agent", "app", "tool", "model-server", "dependency"):
        assert f"{layer} " in by_layer
    windows = int(re.search(r"closed windows (\d+)", last).group(1))  # type: ignore[union-attr]
    assert windows > 0
    assert re.search(r"\nmodel-server +vllm-qwen +qwen2.5-72b-instruct +\d", last)
    assert re.search(r"tokens and cost by model .*gpt-4o-mini: in \d+ out \d+ [0-9.]+ USD", last)
    assert "llama-3.1-8b-instruct: in" in last and "unpriced" in last
    assert re.search(r"token black holes: \d+; latest: (trace|session) ", last)
    assert re.search(r"chunked payloads stitched: \d+ complete", last)
    # engine gauges from the metrics topic, after the backlog: short queue, KV cache not full
    assert re.search(
        r"inference engines .*vllm-qwen qwen2\.5-72b-instruct: waiting max [0-3] running max "
        r"\d+ KV cache max \d+%",
        last,
    )
    # prompt clusters: the support agent's three kinds of request, then a fourth
    clusters = re.search(r"prompt clusters \(latest closed window; (\d+) new so far\): (.*)", last)
    assert clusters is not None and int(clusters.group(1)) >= 1
    assert re.search(r"support-agent: [3-9] clusters", clusters.group(2))
    # the stand-in judge's sentiment labels, per window: complaints came with the new kind
    assert re.search(r"judge labels .*support-agent sentiment: \d+ judged, .*neutral", last)
    alerts = re.search(r"alerts firing now: .*; fired: (.*); resolved: (.*)", last)
    assert alerts is not None
    fired = [
        "EngineQueueBackedUp",
        "NegativeUserSentiment",
        "NewPromptCluster",
        "NoResponse",
        "PiiInCompletion",
        "RunawayAgent",
        "SlowModel",
        "SlowVectorSearch",
    ]
    assert alerts.group(1).split(", ") == fired
    assert "SlowModel" in alerts.group(2)  # the model server recovered: the alert resolved
    assert "EngineQueueBackedUp" in alerts.group(2)  # and its engine's queue drained
    assert "SlowVectorSearch" in alerts.group(2)  # so did the vector database
    assert "NoResponse" in alerts.group(2)  # and the hung model calls stopped
    assert re.search(
        r"PiiInCompletion: pii/cn_(mobile|id) .*in a completion of .*\*{6}", out.stdout
    )
    # what crossed what; a resolved alert is shown once, in its resolved state
    assert re.search(r"resolved SlowModel .*: ttft_p95 (\d+ ms|1(\.\d+)? s) <= 1\.5 s", last)
    assert not re.search(r"FIRING +SlowModel", last)
    assert not re.search(r"(?<!\d)1[3-9]\d{9}(?!\d)", out.stdout)  # no raw phone number
    assert "stopped the worker and the broker." in out.stdout
    workdir = re.search(r"logs in (\S+)\)", out.stdout).group(1)  # type: ignore[union-attr]
    ps = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True).stdout
    assert workdir not in ps  # neither the worker nor tansu of this run is left running
    assert not Path(workdir).exists()  # and its working folder is gone (five runs left five)


@pytest.mark.broker
def test_capture_then_normalize(broker: EmbeddedBroker, tmp_path: Path) -> None:
    gen = TrafficGenerator(seed=5)
    batch = next(gen.batches(50, time.time_ns())).traces_data()
    produce(broker.bootstrap, "otlp_spans", [batch.SerializeToString(), b"{broken"])
    out = tmp_path / "cap"
    subprocess.run(
        [
            *CLI,
            "capture",
            "--broker",
            broker.bootstrap,
            "--profile",
            "tansu",
            "--topic",
            "otlp_spans",
            "--out",
            str(out),
            "--max",
            "2",
        ],
        check=True,
        timeout=120,
    )
    files = sorted(p for p in out.iterdir() if not p.name.endswith(".meta.json"))
    assert [p.suffix for p in files] == [".json", ".pb"] or sorted(p.suffix for p in files) == [
        ".json",
        ".pb",
    ]
    res = subprocess.run([*CLI, "normalize", *map(str, files)], capture_output=True, text=True)
    assert res.returncode == 1  # one file was undecodable, and said so
    assert len(res.stdout.splitlines()) == sum(
        len(ss.spans) for rs in batch.resource_spans for ss in rs.scope_spans
    )
    assert "bad_json" in res.stderr


def test_worker_refuses_an_invalid_config(tmp_path: Path) -> None:
    cfg = tmp_path / "bad.yaml"
    cfg.write_text("kafka:\n  profile: nope\n")
    out = subprocess.run(
        [*CLI, "--config", str(cfg), "worker"], capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 2 and "kafka.profile" in out.stderr


def test_broker_on_a_taken_port_is_a_clear_error() -> None:
    with EmbeddedBroker() as first:
        out = subprocess.run(
            [*CLI, "broker", "--port", str(first.port)], capture_output=True, text=True, timeout=60
        )
    assert out.returncode == 2 and "tansu" in out.stderr


def _one_error_line(out: subprocess.CompletedProcess[str], *needles: str) -> None:
    lines = [
        ln for ln in (out.stdout + out.stderr).splitlines() if ln.strip() and " INFO " not in ln
    ]
    assert out.returncode == 2, out
    assert len(lines) == 1 and lines[0].startswith("spanwatch: error: "), lines
    assert "Traceback" not in out.stderr
    for n in needles:
        assert n in lines[0], lines[0]


@pytest.mark.parametrize(
    "command",
    [["worker"], ["capture", "--topic", "otlp_spans", "--out", "{tmp}/cap"]],
    ids=["worker", "capture"],
)
def test_an_unreachable_broker_is_one_line(command: list[str], tmp_path: Path) -> None:
    """``capture`` once said "captured 0 messages" and exited 0 with no broker at all."""
    from spanwatch.devtools.broker import free_port

    args = [a.replace("{tmp}", str(tmp_path)) for a in command]
    out = subprocess.run(
        [*CLI, *args, "--broker", f"127.0.0.1:{free_port()}"],
        capture_output=True,
        text=True,
        timeout=90,
    )
    _one_error_line(out, "no Kafka broker answered at 127.0.0.1:")
    assert not (tmp_path / "cap").exists()


def test_every_option_says_what_it_does() -> None:
    """``broker --port``, ``broker --partitions`` and ``demo --seed`` had no help text, and
    the description showed raw ``spanwatch``."""
    import argparse

    from spanwatch.cli import build_parser

    parser = build_parser()
    assert "``" not in (parser.description or "")
    subs = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    missing = [
        f"{name} {'/'.join(a.option_strings)}"
        for name, sp in subs.choices.items()
        for a in sp._actions
        if a.option_strings and a.help is None and not isinstance(a, argparse._HelpAction)
    ]
    assert missing == []


def test_a_missing_file_is_one_line(tmp_path: Path) -> None:
    for args in (
        ["normalize", str(tmp_path / "nope.pb")],
        ["--config", str(tmp_path / "nope.yaml"), "worker"],
        ["safety", "scan", str(tmp_path / "nope.txt")],
    ):
        out = subprocess.run([*CLI, *args], capture_output=True, text=True, timeout=60)
        _one_error_line(out, str(tmp_path / "nope"))


@pytest.mark.broker
def test_silence_before_any_worker_is_one_line_and_creates_no_topic() -> None:
    from confluent_kafka.admin import AdminClient

    with EmbeddedBroker() as b:  # a bare broker: no spanwatch topic exists yet
        out = subprocess.run(
            [
                *CLI,
                "silence",
                "add",
                "--broker",
                b.bootstrap,
                "--profile",
                "tansu",
                "-m",
                'alertname="X"',
                "--duration",
                "1h",
            ],
            capture_output=True,
            text=True,
            timeout=90,
        )
        topics = AdminClient({"bootstrap.servers": b.bootstrap}).list_topics(timeout=10).topics
    _one_error_line(out, "topic 'spanwatch.alerting' does not exist")
    assert "spanwatch.alerting" not in topics  # Tansu would have made it with 4 partitions


@pytest.mark.broker
def test_a_silence_no_worker_applied_yet_is_listed_as_pending() -> None:
    """With no worker running, ``silence add`` printed an id and ``silence list`` then said
    "no silences"; expiring an id that exists nowhere exited 0."""
    from spanwatch.pipeline.config import TopicSettings

    t = TopicSettings()
    with EmbeddedBroker(topics=[t.alerting, t.silences], partitions=1) as b:

        def silence(*args: str) -> subprocess.CompletedProcess[str]:
            flags = ["--broker", b.bootstrap, "--profile", "tansu"]
            return subprocess.run(
                [*CLI, "silence", *args, *flags], capture_output=True, text=True, timeout=90
            )

        added = silence("add", "-m", 'alertname="X"', "--duration", "1h")
        assert added.returncode == 0, added.stderr
        sid = added.stdout.strip()
        listed = silence("list")
        assert re.search(rf"^{sid}  pending ", listed.stdout, re.M), listed.stdout
        assert "not applied by an alert manager yet" in listed.stdout
        unknown = silence("expire", "does-not-exist")
        assert silence("expire", sid).returncode == 0  # a pending one can be expired
    _one_error_line(unknown, "no silence 'does-not-exist'")


@pytest.mark.broker
def test_broker_command_creates_every_topic_with_its_partition_count(tmp_path: Path) -> None:
    from confluent_kafka.admin import AdminClient

    from spanwatch.devtools.broker import free_port
    from spanwatch.devtools.proc import spanwatch_cmd, spawn, stop
    from spanwatch.pipeline.config import TopicSettings

    port = free_port()
    proc = spawn(spanwatch_cmd("broker", "--port", str(port)), log_path=tmp_path / "b.log")
    want = {t: 4 for t in TopicSettings().all_topics()}
    want.update({t: 1 for t in TopicSettings().single_partition_topics()})
    try:
        admin = AdminClient({"bootstrap.servers": f"127.0.0.1:{port}"})
        got: dict[str, int] = {}

        def created() -> bool:
            with contextlib.suppress(Exception):
                got.update(
                    (name, len(t.partitions))
                    for name, t in admin.list_topics(timeout=1).topics.items()
                )
            return set(got) >= set(want)

        wait_until(created, 60)
    finally:
        stop(proc)
    assert {t: got.get(t) for t in want} == want


def test_version_is_the_installed_distributions() -> None:
    from importlib.metadata import version

    out = subprocess.run([*CLI, "--version"], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and out.stdout.strip() == f"spanwatch {version('spanwatch')}"
