"""The spanwatch command line."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from spanwatch import __version__
from spanwatch.pipeline.common.errors import SpanwatchError
from spanwatch.pipeline.config import Settings, load_settings


def _settings(args: argparse.Namespace) -> Settings:
    return load_settings(
        args.config,
        kafka__bootstrap_servers=getattr(args, "broker", None),
        kafka__profile=getattr(args, "profile", None),
        topics__source=getattr(args, "source_topic", None),
        topics__partitions=getattr(args, "partitions", None),
        ingest__encoding=getattr(args, "encoding", None),
        worker__app_id=getattr(args, "app_id", None),
        worker__data_dir=getattr(args, "data_dir", None),
        worker__loglevel=getattr(args, "loglevel", None),
        metrics__prometheus_port=getattr(args, "metrics_port", None),
    )


def _cmd_worker(args: argparse.Namespace) -> int:
    from spanwatch.runtime.worker import run_worker

    run_worker(_settings(args))
    return 0


def _cmd_broker(args: argparse.Namespace) -> int:
    from spanwatch.devtools.broker import EmbeddedBroker
    from spanwatch.devtools.proc import wait_for_signal

    settings = _settings(args)
    topics = settings.topics
    with EmbeddedBroker(
        args.port,
        topics=topics.all_topics(),
        partitions=topics.partitions,
        single_partition_topics=topics.single_partition_topics(),
    ) as broker:
        print(
            f"tansu (pid {broker.proc.pid if broker.proc else '?'}) listening on "
            f"{broker.bootstrap}; topics {', '.join(topics.all_topics())} with "
            f"{topics.partitions} partitions, {', '.join(topics.single_partition_topics())} "
            "with 1. Ctrl-C stops it.",
            flush=True,
        )
        wait_for_signal()
    return 0


def _cmd_capture(args: argparse.Namespace) -> int:
    from spanwatch.commands.capture import capture

    n = capture(
        _settings(args),
        args.topic,
        Path(args.out),
        max_messages=args.max,
        idle_timeout=args.idle_timeout,
    )
    print(f"captured {n} messages from {args.topic} into {args.out}", file=sys.stderr)
    return 0


def _cmd_normalize(args: argparse.Namespace) -> int:
    from spanwatch.commands.normalize import mapping_markdown, normalize_files

    if args.mapping:
        sys.stdout.write(mapping_markdown())
        return 0
    if not args.files:
        raise SpanwatchError("normalize: give one or more files (or --mapping)")
    settings = _settings(args)
    return normalize_files(args.files, settings, sys.stdout, keep_non_llm=args.keep_non_llm)


def _cmd_demo(args: argparse.Namespace) -> int:
    from spanwatch.devtools.demo import run_demo

    return run_demo(
        duration=args.duration, port=args.port, rate=args.rate, seed=args.seed, ui_port=args.ui_port
    )


def _cmd_ui(args: argparse.Namespace) -> int:
    from spanwatch.devtools.proc import wait_for_signal
    from spanwatch.runtime.kafka import check_reachable
    from spanwatch.runtime.ui import UiServer, UiThread, browser_url

    settings = _settings(args)
    check_reachable(settings.kafka)  # one clear line when no broker answers
    host = args.bind or settings.ui.bind
    port = args.port or settings.ui.port
    server = UiServer(settings, host, port)  # a ConfigError when bound open with no token
    ui = UiThread(server).start()
    print(f"spanwatch ui: {browser_url(host, port, server.token)} (Ctrl-C stops it)", flush=True)
    try:
        wait_for_signal()
    finally:
        ui.stop()
    return 0


def _cmd_bench(args: argparse.Namespace) -> int:
    from spanwatch.devtools.bench import run_bench

    if args.what == "burst":
        from spanwatch.devtools.bench_burst import bench_burst

        return bench_burst(args.spans or 20_000, args.factor, args.worker_config)
    return run_bench(
        args.what,
        spans=args.spans or 100_000,
        batch=args.batch,
        broker=not args.no_broker,
        payloads=args.payloads,
        cap_mb=args.cap_mb,
        fetch_wait_ms=args.fetch_wait_ms,
        data=args.data,
        quick=args.quick,
        compiled=args.compiled,
    )


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="spanwatch",
        description="Real-time observability for LLM and agent applications: OTLP spans from "
        "Kafka to golden signals, token accounting, safety findings and alerts.",
    )
    p.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    p.add_argument("--config", help="YAML configuration file (see README)")
    p.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = p.add_subparsers(dest="command", required=True)

    def kafka_opts(sp: argparse.ArgumentParser) -> None:
        sp.add_argument("--broker", help="bootstrap servers, e.g. kafka:9092")
        sp.add_argument("--profile", choices=["kafka", "tansu"], help="broker profile")

    w = sub.add_parser("worker", help="run a worker of the consumer group")
    kafka_opts(w)
    w.add_argument("--source-topic", help="the collector's topic (default otlp_spans)")
    w.add_argument(
        "--encoding",
        choices=["auto", "otlp_proto", "otlp_json"],
        help="the collector's encoding (auto: detect per message)",
    )
    w.add_argument("--partitions", type=int, help="partitions of topics spanwatch creates")
    w.add_argument("--app-id", help="consumer group / faust app id")
    w.add_argument("--data-dir", help="faust data directory")
    w.add_argument(
        "--loglevel",
        choices=["debug", "info", "warning", "error"],
        help="log level (other libraries log at info and above whatever it is)",
    )
    w.add_argument("--metrics-port", type=int, help="Prometheus /metrics port (0 disables)")
    w.set_defaults(func=_cmd_worker)

    b = sub.add_parser("broker", help="run the embedded Tansu broker on loopback")
    b.add_argument("--port", type=int, default=9092, help="loopback port to listen on (9092)")
    b.add_argument(
        "--partitions",
        type=int,
        help="partitions of the topics it creates (default topics.partitions, 4; "
        "spanwatch.alerting and spanwatch.silences always 1)",
    )
    b.set_defaults(func=_cmd_broker)

    c = sub.add_parser("capture", help="save raw messages of a topic as files")
    kafka_opts(c)
    c.add_argument("--topic", required=True, help="the topic to read, from its beginning")
    c.add_argument("--out", required=True, help="output directory")
    c.add_argument("--max", type=int, default=0, help="stop after N messages (0: no limit)")
    c.add_argument(
        "--idle-timeout",
        type=float,
        default=5.0,
        help="stop after this many seconds without a message",
    )
    c.set_defaults(func=_cmd_capture)

    n = sub.add_parser("normalize", help="print normalized records of OTLP files as JSON lines")
    n.add_argument("files", nargs="*")
    n.add_argument(
        "--encoding",
        choices=["auto", "otlp_proto", "otlp_json"],
        help="the files' encoding (auto: detect per file)",
    )
    n.add_argument("--keep-non-llm", action="store_true", help="also print non-LLM spans")
    n.add_argument("--mapping", action="store_true", help="print the attribute mapping table")
    n.set_defaults(func=_cmd_normalize)

    d = sub.add_parser("demo", help="embedded broker + worker + realistic traffic, live summary")
    d.add_argument(
        "--duration",
        type=float,
        default=0,
        help="seconds of traffic, from when the worker is ready; 0 runs until Ctrl-C",
    )
    d.add_argument("--port", type=int, default=0, help="broker port (default: a free one)")
    d.add_argument("--rate", type=float, default=20.0, help="traces per second")
    d.add_argument(
        "--seed", type=int, default=7, help="seed of the generated traffic (same seed, same run)"
    )
    d.add_argument(
        "--ui-port", type=int, default=0, help="port of the web view (default: a free one)"
    )
    d.set_defaults(func=_cmd_demo)

    u = sub.add_parser("ui", help="the live web view of the output topics")
    kafka_opts(u)
    u.add_argument("--port", type=int, help="HTTP port (default ui.port, 8080)")
    u.add_argument("--bind", help="address to listen on (default ui.bind)")
    u.set_defaults(func=_cmd_ui)

    from spanwatch.commands import anomaly, health, rules, safety

    safety.add_parser(sub, _settings)
    anomaly.add_parser(sub)
    rules.add_parsers(sub, _settings, kafka_opts)
    health.add_parser(sub)

    be = sub.add_parser("bench", help="benchmarks that print numbers")
    be.add_argument(
        "what",
        choices=[
            "ingest",
            "core",
            "read",
            "metrics",
            "stitch",
            "safety",
            "anomaly",
            "alerts",
            "clusters",
            "ui",
            "burst",
        ],
        help="burst: a worker's peak memory under a 10x burst; ui: bytes per second one web "
        "view tab receives with 1,000 series; read: "
        "reading the source topic alone, faust agent against aiokafka and confluent-kafka; "
        "core: the mypyc-compiled core against the pure-Python one, in one process and "
        "then the whole worker (--no-broker: in one process only)",
    )
    be.add_argument(
        "--quick",
        action="store_true",
        help="ingest: 20,000 spans, first and last stage steps only (under 3 minutes)",
    )
    be.add_argument("--payloads", type=int, default=10_000, help="stitch: concurrent payloads")
    be.add_argument("--cap-mb", type=int, default=512, help="stitch: byte cap, MiB")
    be.add_argument(
        "--spans", type=int, help="spans to process (100,000; burst: the steady load, 20,000)"
    )
    be.add_argument("--factor", type=int, default=10, help="burst: its size, times the steady load")
    be.add_argument(
        "--worker-config",
        default="",
        metavar="YAML",
        help="burst: worker configuration (YAML text), e.g. 'ingest: {reader: batch}'",
    )
    be.add_argument("--batch", type=int, default=500, help="spans per Kafka message")
    be.add_argument(
        "--no-broker", action="store_true", help="skip the through-the-worker rates (ingest, core)"
    )
    be.add_argument(
        "--compiled",
        metavar="DIR",
        help="core: the directory a compiled wheel is installed in (default .compiled/site, "
        "what ./dev compiled builds)",
    )
    be.add_argument(
        "--fetch-wait-ms",
        type=int,
        default=100,
        help="alerts: cap of the worker's fetch long-poll (1500: faust's own)",
    )
    be.add_argument(
        "--data",
        help="anomaly: folder holding clones of the public labelled "
        "sets (default $SPANWATCH_DATASETS or ~/.cache/spanwatch/datasets)",
    )
    be.set_defaults(func=_cmd_bench)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        rc: Any = args.func(args)
    except SpanwatchError as exc:
        print(f"spanwatch: error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:  # a missing or unreadable file: one line, not a traceback
        where = f"{exc.filename}: " if exc.filename else ""
        print(f"spanwatch: error: {where}{exc.strerror or exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    return int(rc or 0)


if __name__ == "__main__":
    sys.exit(main())
