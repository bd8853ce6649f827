"""Rule files: the shipped rules load, good files load, bad files give exactly the expected
messages (rulefmt-style ``*.good.yaml`` / ``*.bad.yaml`` + ``*.bad.expected``), and the
loader only ever raises the project's own error type."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from spanwatch.pipeline.alerting.loader import RuleError, load_rules
from spanwatch.pipeline.common.errors import SpanwatchError
from spanwatch.rules import DEFAULT_RULES_DIR
from tests.support.paths import ROOT, TESTDATA

CASES = TESTDATA
BAD = sorted((CASES / "rules").glob("*.bad.yaml"))


def test_shipped_rules_load_and_cover_the_signals() -> None:
    rs = load_rules([DEFAULT_RULES_DIR])
    kinds = {r.kind for r in rs.rules}
    assert kinds == {"threshold", "absent", "anomaly", "finding", "black_hole"}
    signals = {r.signal for r in rs.rules if r.signal}
    assert {"ttft_p95", "tpot_p95", "error_rate", "queue_p95", "tokens_per_min"} <= signals
    assert rs.config.receivers["console"].console
    assert rs.config.inhibit_rules


def test_example_receivers_load_with_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    rs = load_rules(
        [
            DEFAULT_RULES_DIR / "golden-signals.yaml",
            DEFAULT_RULES_DIR / "examples" / "receivers.yaml",
        ]
    )
    assert set(rs.config.receivers) == {"team-slack", "oncall-dingtalk", "qwen-owners"}
    assert "SLACK" not in repr(rs.config.receivers["team-slack"])


def test_an_empty_receiver_url_is_a_config_error_naming_the_receiver(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Compose passes an unset variable as "" (${VAR:-}): the worker then started with empty
    receiver URLs. Each empty one is named, like an unset variable."""
    from spanwatch.pipeline.alerting.routing import unusable_receivers

    monkeypatch.setenv("SLACK_WEBHOOK_URL", "")
    monkeypatch.setenv("DINGTALK_TOKEN", "")
    monkeypatch.delenv("QWEN_OWNERS_APPRISE_URL", raising=False)
    rs = load_rules([DEFAULT_RULES_DIR / "examples" / "receivers.yaml"])
    problems = unusable_receivers(rs.config)
    assert problems == [
        "receiver 'team-slack': URL 1 is empty once its environment variables are expanded "
        "(set them, or remove the receiver)",
        "receiver 'oncall-dingtalk': URL 1 is empty once its environment variables are "
        "expanded (set them, or remove the receiver)",
        "receiver 'qwen-owners': environment variable QWEN_OWNERS_APPRISE_URL is not set",
    ]


def test_compose_passes_every_variable_the_example_receivers_need() -> None:
    """Following rules/examples/receivers.yaml under compose made the worker refuse to
    start: compose did not pass QWEN_OWNERS_APPRISE_URL."""
    import re

    root = ROOT
    example = (root / "rules" / "examples" / "receivers.yaml").read_text()
    needed = set(re.findall(r"\$\{([A-Z0-9_]+)\}", example))
    compose = yaml.safe_load((root / "docker-compose.yml").read_text())
    passed = set(compose["services"]["spanwatch"]["environment"])
    assert needed and needed <= passed, needed - passed


def test_good_file_loads() -> None:
    rs = load_rules([CASES / "rules" / "good.good.yaml"])
    by = rs.by_name()
    assert by["SlowQwen"].op == ">=" and by["SlowQwen"].for_s == 30
    assert by["UserSpend"].entity == "user" and by["Gone"].for_s == 900
    assert by["Pii"].by == ("service", "model", "kind", "category")
    assert by["Pii"].keep_firing_for_s == 300  # events resolve after 5 minutes by default


@pytest.mark.parametrize("path", BAD, ids=[p.name for p in BAD])
def test_bad_file_reports_every_problem_exactly(path: Path) -> None:
    cwd = os.getcwd()
    os.chdir(CASES)
    try:
        with pytest.raises(RuleError) as info:
            load_rules([path.relative_to(CASES)])
    finally:
        os.chdir(cwd)
    expected = path.with_suffix("").with_suffix(".bad.expected").read_text().splitlines()
    assert info.value.problems == expected


def test_missing_path_and_non_mapping(tmp_path: Path) -> None:
    with pytest.raises(RuleError, match="no rule files found"):
        load_rules([tmp_path])
    (tmp_path / "a.yaml").write_text("- just\n- a list\n")
    with pytest.raises(RuleError, match=r"a.yaml:1:1: top level must be a mapping"):
        load_rules([tmp_path])


_scalar = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=False),
    st.text(max_size=12),
    st.sampled_from(["ttft_p95", "5m", "threshold", "finding", ">", "console", "{{ x"]),
)
_tree = st.recursive(
    _scalar,
    lambda c: st.one_of(
        st.lists(c, max_size=4),
        st.dictionaries(
            st.sampled_from(
                [
                    "groups",
                    "name",
                    "rules",
                    "alert",
                    "kind",
                    "signal",
                    "threshold",
                    "for",
                    "labels",
                    "annotations",
                    "route",
                    "receivers",
                    "receiver",
                    "routes",
                    "matchers",
                    "urls",
                    "by",
                    "window",
                    "entity",
                    "op",
                    "min_severity",
                    "kinds",
                    "x",
                ]
            ),
            c,
            max_size=5,
        ),
    ),
    max_leaves=25,
)


@settings(max_examples=300, deadline=None)
@given(doc=_tree, raw=st.text(max_size=80))
def test_loader_raises_only_its_own_error(
    tmp_path_factory: pytest.TempPathFactory, doc: object, raw: str
) -> None:
    d = tmp_path_factory.mktemp("fuzz")
    (d / "a.yaml").write_text(yaml.safe_dump(doc), encoding="utf-8")
    (d / "b.yaml").write_text(raw, encoding="utf-8")
    with contextlib.suppress(SpanwatchError):  # anything else fails the test
        load_rules([d])


def test_rules_check_reads_the_dimensions_of_the_configuration(tmp_path: Path) -> None:
    """``by: [provider]`` is valid once ``metrics.dimensions`` lists it, and only then."""
    from spanwatch.cli import main

    rule = tmp_path / "r.yaml"
    rule.write_text(
        "groups:\n  - name: g\n    rules:\n      - alert: ByProvider\n"
        "        signal: ttft_p95\n        threshold: 2\n        by: [provider]\n"
    )
    conf = tmp_path / "c.yaml"
    conf.write_text("metrics:\n  dimensions: [service, model, provider]\n")
    assert main(["rules", "check", str(rule)]) == 1
    assert main(["--config", str(conf), "rules", "check", str(rule)]) == 0
