"""Rule unit tests, like ``promtool test rules``: input series and events over time ->
expected firing alerts at given times, through exactly the worker's evaluator and manager
(clock injected, no broker).

Test file::

    rule_files: [../golden-signals.yaml]      # relative to the test file
    evaluation_interval: 1m
    tests:
      - name: slow TTFT fires after for
        input_series:
          - signal: ttft_p95
            labels: {service: chat, layer: app, operation: chat, model: qwen}
            values: "0.8 3 3 3 3"             # one window per interval; "_" = no window
          - signal: tokens_per_min
            entity: {kind: model, id: qwen}
            values: "100 200"
        input_events:
          - {at: 2m, finding: {kind: pii, category: cn_mobile, severity: medium, role: output}}
          - {at: 2m, black_hole: {entity: {kind: trace, id: t1}, budget: max_tokens, value: 9}}
          - {at: 3m, anomaly: {signal: ttft_p95, labels: {model: qwen}, value: 4.1, score: 0.99}}
        alert_rule_test:
          - eval_time: 4m
            alertname: SlowTimeToFirstToken
            exp_alerts:
              - exp_labels: {severity: warning, service: chat, model: qwen}
                exp_annotations: {summary: "..."}
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from ..common.durations import parse_duration_s
from ..common.errors import ConfigError
from ..windows.values import LABEL_SHARE, METRICS, MIN_JUDGED, TOKENS
from .evaluate import RuleEvaluator
from .loader import load_rules
from .manager import AlertManager

# signal -> the record field an input series sets, per kind of window: the catalog's plain
# values (``requests`` is ``count`` in a golden-signal window, ``requests`` in a token window)
_FIELDS = {
    kind: {name: v.field for name, v in catalog.items() if v.field}
    for kind, catalog in (("metrics", METRICS), ("tokens", TOKENS))
}


@dataclass
class Outcome:
    name: str
    failures: list[str] = field(default_factory=list)


def _set(rec: dict[str, Any], signal: str, value: float, size_s: float) -> None:
    fields = _FIELDS["tokens" if rec.get("type") == "window" else "metrics"]
    head, _, stat = signal.rpartition("_")
    if head in ("ttft", "tpot", "latency", "queue"):
        rec.setdefault(f"{head}_s", {})[stat] = value
    elif signal == "tokens_per_min":
        rec["total_tokens"] = value * size_s / 60
    elif signal in ("cost", "cost_per_min"):
        rec["cost"] = {"USD": value * size_s / 60 if signal == "cost_per_min" else value}
    elif signal in fields:
        rec[fields[signal]] = value
    elif signal.startswith(LABEL_SHARE) and signal in METRICS:
        rec.setdefault("label_share", {})[signal[len(LABEL_SHARE) :]] = value
        rec.setdefault("judged", MIN_JUDGED)  # unless a "judged" series says otherwise
    else:
        raise ConfigError(f"input series: unknown signal {signal!r}")


def _values(text: Any, name: str) -> list[float | None]:
    out: list[float | None] = []
    for tok in str(text).split():
        if tok == "_":
            out.append(None)
            continue
        try:
            out.append(float(tok))
        except ValueError:
            raise ConfigError(f"{name}: value {tok!r} is not a number or '_'") from None
    return out


def run_file(path: Path) -> list[Outcome]:
    try:
        spec = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"{path}: {exc}") from None
    if not isinstance(spec, dict) or not isinstance(spec.get("tests"), list):
        raise ConfigError(f"{path}: expected 'rule_files' and a list of 'tests'")
    files = [path.parent / f for f in spec.get("rule_files", [])]
    ruleset = load_rules(files)  # RuleError lists problems of the rules themselves
    interval = parse_duration_s(spec.get("evaluation_interval", "1m"))
    # a test may set its own evaluation_interval (the window its input series stand for)
    return [
        run_test(ruleset, t, parse_duration_s(t["evaluation_interval"]))
        if "evaluation_interval" in t
        else run_test(ruleset, t, interval)
        for t in spec["tests"]
    ]


def run_test(ruleset: Any, test: dict[str, Any], interval: float) -> Outcome:
    out = Outcome(str(test.get("name", "unnamed")))
    ev, am = RuleEvaluator(ruleset), AlertManager(ruleset)
    windows: dict[tuple[int, str], dict[str, Any]] = {}
    for i, series in enumerate(test.get("input_series", [])):
        signal = series.get("signal")
        entity = series.get("entity")
        for step, v in enumerate(_values(series.get("values", ""), f"input_series[{i}]")):
            if v is None:
                continue
            end = step * interval
            key = (step, repr(sorted((series.get("labels") or entity or {}).items())))
            rec = windows.setdefault(key, _window(series, end, interval))
            _set(rec, signal, v, interval)
    events = sorted(
        (
            (parse_duration_s(e.get("at", 0)), n, e)
            for n, e in enumerate(test.get("input_events", []))
        ),
        key=lambda x: x[:2],
    )
    checks = sorted(
        (
            (parse_duration_s(c["eval_time"]), n, c)
            for n, c in enumerate(test.get("alert_rule_test", []))
        ),
        key=lambda x: x[:2],
    )
    horizon = max([c[0] for c in checks] + [0.0])
    t_step = min(interval, 1.0) if horizon <= 3600 else interval
    now = 0.0
    while now <= horizon + 1e-9:
        step = round(now / interval)
        if abs(step * interval - now) < 1e-9:
            for (s, _), rec in sorted(windows.items()):
                if s == step:
                    topic = "tokens" if rec.get("type") == "window" else "metrics"
                    for smp in ev.samples(topic, rec):
                        am.observe(smp, now)
        while events and events[0][0] <= now + 1e-9:
            _, _, e = events.pop(0)
            topic, rec = _event(e, now)
            for smp in ev.samples(topic, rec):
                am.observe(smp, now)
        am.tick(now)
        while checks and checks[0][0] <= now + 1e-9:
            _, _, c = checks.pop(0)
            out.failures += _check(am, c, now)
        now += t_step
    return out


def _window(series: dict[str, Any], end: float, size: float) -> dict[str, Any]:
    w = {
        "name": series.get("window", "1m"),
        "start_ns": int((end - size) * 1e9),
        "end_ns": int(end * 1e9),
        "size_s": size,
        "step_s": size,
    }
    if series.get("entity"):
        return {"type": "window", "entity": series["entity"], "window": w}
    return {
        "series": {k: str(v) for k, v in (series.get("labels") or {}).items()},
        "window": w,
        "count": 100,
        "exemplars": {"slowest_trace_id": "test-trace"},
    }


def _event(e: dict[str, Any], now: float) -> tuple[str, dict[str, Any]]:
    ns = int(now * 1e9)
    if "finding" in e:
        return "findings", {
            "type": "finding",
            "score": 1.0,
            "excerpt": "",
            "trace_id": "t",
            "service": "",
            "model": "",
            "role": "input",
            "severity": "high",
            "time_ns": ns,
            **e["finding"],
        }
    if "black_hole" in e:
        return "tokens", {"type": "black_hole", "at_ns": ns, "evidence": {}, **e["black_hole"]}
    if "anomaly" in e:
        a = e["anomaly"]
        return "anomalies", {
            "type": "score",
            "window": {"name": a.get("window", "1m"), "end_ns": ns},
            "anomalous": a.get("score", 1.0) >= 0.9,
            **a,
        }
    raise ConfigError(f"input event needs finding, black_hole or anomaly: {sorted(e)}")


def _check(am: AlertManager, c: dict[str, Any], now: float) -> list[str]:
    name = str(c.get("alertname"))
    got = [
        am.record(a, am.rules[a.rule], "firing", now)
        for a in am.alerts.values()
        if a.state == "firing" and a.rule == name
    ]
    want = c.get("exp_alerts") or []
    got_labels: list[list[tuple[str, str]]] = sorted(sorted(r["labels"].items()) for r in got)
    want_labels: list[list[tuple[str, str]]] = sorted(
        sorted(
            {"alertname": name, **{k: str(v) for k, v in w.get("exp_labels", {}).items()}}.items()
        )
        for w in want
    )
    problems = []
    if got_labels != want_labels:
        problems.append(
            f"at {c['eval_time']}, {name}: expected firing {_fmt(want_labels)}, "
            f"got {_fmt(got_labels)}"
        )
        return problems
    for w in want:
        exp = {"alertname": name, **{k: str(v) for k, v in w.get("exp_labels", {}).items()}}
        rec = next(r for r in got if r["labels"] == exp)
        for k, v in (w.get("exp_annotations") or {}).items():
            if rec["annotations"].get(k) != v:
                problems.append(
                    f"at {c['eval_time']}, {name}: annotation {k!r} is "
                    f"{rec['annotations'].get(k)!r}, expected {v!r}"
                )
    return problems


def _fmt(labels: list[list[tuple[str, str]]]) -> str:
    return (
        "[" + "; ".join("{" + ", ".join(f"{k}={v}" for k, v in ls) + "}" for ls in labels) + "]"
        if labels
        else "nothing"
    )
