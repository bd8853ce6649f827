"""Routing (an Alertmanager-style tree), receivers (apprise URLs) and inhibition rules, from
the alerting configuration document (a rules file with ``route:`` / ``receivers:``).

Receiver URLs may hold ``${ENV_VAR}`` references; they are expanded when the worker loads the
rules and never printed (``repr`` and logs use apprise's privacy form).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..common.durations import parse_duration_s
from ..common.errors import ConfigError
from ..common.settings import expand_env
from ..common.yamlpos import Located, Path_
from . import templates
from .matchers import Matcher, all_match
from .rules import Problems, _suggest

FORMATS = ("auto", "slack", "dingtalk", "markdown", "text")
ROUTE_KEYS = {
    "receiver",
    "group_by",
    "group_wait",
    "group_interval",
    "repeat_interval",
    "matchers",
    "routes",
    "continue",
}
RECEIVER_KEYS = {"name", "urls", "console", "format", "send_resolved", "mentions"}
DOC_KEYS = {"route", "receivers", "inhibit_rules", "templates"}


@dataclass(frozen=True)
class Receiver:
    name: str
    urls: tuple[str, ...] = ()  # as written (may contain ${VAR}); expanded by the notifier
    console: bool = False
    format: str = "auto"
    send_resolved: bool = True
    mentions: tuple[str, ...] = ()

    def __repr__(self) -> str:  # URLs are secrets
        return (
            f"Receiver(name={self.name!r}, urls=<{len(self.urls)} secret>, console={self.console})"
        )


@dataclass(frozen=True)
class Route:
    receiver: str
    group_by: tuple[str, ...] = ("alertname",)
    group_wait_s: float = 10.0
    group_interval_s: float = 60.0
    repeat_interval_s: float = 4 * 3600.0
    matchers: tuple[Matcher, ...] = ()
    routes: tuple[Route, ...] = ()
    continue_: bool = False

    def match(self, labels: dict[str, str], path: str = "0") -> list[tuple[str, Route]]:
        """The routes an alert goes to, with their paths in the tree (``"0"``, ``"0.1"``):
        depth first, siblings stop at the first match unless ``continue``, the route itself
        when no child matches."""
        if not all_match(self.matchers, labels):
            return []
        found: list[tuple[str, Route]] = []
        for i, child in enumerate(self.routes):
            hit = child.match(labels, f"{path}.{i}")
            found += hit
            if hit and not child.continue_:
                break
        return found or [(path, self)]

    def at(self, path: str) -> Route:
        """The route at a path returned by :meth:`match`."""
        route = self
        for i in path.split(".")[1:]:
            route = route.routes[int(i)]
        return route


@dataclass(frozen=True)
class InhibitRule:
    source: tuple[Matcher, ...]
    target: tuple[Matcher, ...]
    equal: tuple[str, ...] = ()


@dataclass(frozen=True)
class AlertingConfig:
    route: Route = field(default_factory=lambda: Route("console"))
    receivers: dict[str, Receiver] = field(
        default_factory=lambda: {"console": Receiver("console", console=True)}
    )
    inhibit_rules: tuple[InhibitRule, ...] = ()
    trace_url: str = ""  # template with {{ trace_id }}


def unusable_receivers(config: AlertingConfig) -> list[str]:
    """``receiver 'x': environment variable X is not set`` for every URL whose ``${VAR}``
    cannot be expanded now, or that expands to nothing (``dingtalk://${DINGTALK_TOKEN}``
    with the variable set empty): an error for the worker, a warning for ``rules check``."""
    out = []
    for receiver in config.receivers.values():
        for i, url in enumerate(receiver.urls):
            try:
                expanded = expand_env(url)
            except ConfigError as exc:
                out.append(f"receiver {receiver.name!r}: {exc}")
                continue
            if not expanded.strip() or expanded.strip().endswith("://"):
                # compose passes an unset variable as "" (${VAR:-}): an empty URL is no target
                out.append(
                    f"receiver {receiver.name!r}: URL {i + 1} is empty once its environment "
                    "variables are expanded (set them, or remove the receiver)"
                )
    return out


def parse_config(doc: Located, problems: Problems) -> AlertingConfig:
    data = doc.data
    for key in sorted(set(data) - DOC_KEYS, key=str):
        problems.add(doc, (key, "__key__"), f"unknown key {key!r}{_suggest(str(key), DOC_KEYS)}")
    receivers: dict[str, Receiver] = {}
    items = data.get("receivers", [])
    if not isinstance(items, list):
        problems.add(doc, ("receivers",), "'receivers' must be a list")
        items = []
    for i, item in enumerate(items):
        r = _receiver(doc, ("receivers", i), item, problems)
        if r is None:
            continue
        if r.name in receivers:
            problems.add(doc, ("receivers", i, "name"), f"duplicate receiver {r.name!r}")
        receivers[r.name] = r
    if "route" not in data:
        problems.add(doc, ("route",), "'route' is required next to 'receivers'")
        route = Route("console")
    else:
        route = _route(doc, ("route",), data["route"], problems, receivers, None) or Route(
            "console"
        )
    inhibit = tuple(
        x
        for i, item in enumerate(data.get("inhibit_rules") or [])
        if (x := _inhibit(doc, ("inhibit_rules", i), item, problems))
    )
    tmpl = data.get("templates") or {}
    trace_url = tmpl.get("trace_url", "") if isinstance(tmpl, dict) else ""
    if not isinstance(trace_url, str) or (err := templates.check(trace_url)):
        problems.add(
            doc,
            ("templates", "trace_url"),
            f"trace_url: {err if trace_url else ''}"
            if isinstance(trace_url, str)
            else "trace_url must be a string",
        )
    return AlertingConfig(
        route,
        receivers or AlertingConfig().receivers,
        inhibit,
        trace_url if isinstance(trace_url, str) else "",
    )


def _receiver(doc: Located, p: Path_, item: Any, problems: Problems) -> Receiver | None:
    if not isinstance(item, dict) or not isinstance(item.get("name"), str):
        problems.add(doc, p, "a receiver needs a 'name'")
        return None
    for key in sorted(set(item) - RECEIVER_KEYS, key=str):
        problems.add(
            doc,
            (*p, key, "__key__"),
            f"unknown receiver key {key!r}{_suggest(str(key), RECEIVER_KEYS)}",
        )
    urls = problems.str_list(doc, (*p, "urls"), item.get("urls", []), "apprise URLs") or ()
    for i, url in enumerate(urls):
        err = validate_url(url)
        if err:
            problems.add(doc, (*p, "urls", i), err)
    console = bool(item.get("console", False))
    if not urls and not console:
        problems.add(doc, p, f"receiver {item['name']!r} has no 'urls' and is not 'console'")
    fmt = item.get("format", "auto")
    if fmt not in FORMATS:
        problems.add(doc, (*p, "format"), f"format must be one of {', '.join(FORMATS)}")
    mentions = (
        problems.str_list(doc, (*p, "mentions"), item.get("mentions", []), "names to mention") or ()
    )
    return Receiver(
        item["name"], urls, console, fmt, bool(item.get("send_resolved", True)), mentions
    )


def validate_url(url: str) -> str | None:
    """Why an apprise URL is unusable (never echoing the URL: it holds tokens)."""
    if "${" in url:
        return None  # checked when the environment is known (worker start)
    import apprise

    scheme = url.split("://", 1)[0] if "://" in url else "?"
    a = apprise.Apprise()
    if not a.add(url):
        return f"not a valid apprise URL (scheme {scheme!r}); see apprise's URL formats"
    return None


def _route(
    doc: Located,
    p: Path_,
    item: Any,
    problems: Problems,
    receivers: dict[str, Receiver],
    parent: Route | None,
) -> Route | None:
    if not isinstance(item, dict):
        problems.add(doc, p, "a route must be a mapping")
        return None
    for key in sorted(set(item) - ROUTE_KEYS, key=str):
        problems.add(
            doc, (*p, key, "__key__"), f"unknown route key {key!r}{_suggest(str(key), ROUTE_KEYS)}"
        )
    receiver = item.get("receiver", parent.receiver if parent else None)
    if receiver is None:
        problems.add(doc, p, "the root route needs a 'receiver'")
    elif not isinstance(receiver, str):
        problems.add(doc, (*p, "receiver"), "a receiver is named by a string")
        receiver = parent.receiver if parent else "console"
    elif (
        ("receiver" in item or parent is None)
        and receiver not in receivers
        and not (receiver == "console" and not receivers)
    ):
        problems.add(
            doc,
            (*p, "receiver"),
            f"unknown receiver {receiver!r}" + _suggest(str(receiver), set(receivers)),
        )

    def dur(key: str, default: float) -> float:
        if key not in item:
            return default
        try:
            return parse_duration_s(item[key])
        except ValueError as exc:
            problems.add(doc, (*p, key), str(exc))
            return default

    base = parent or Route(str(receiver))
    group_by = problems.str_list(
        doc, (*p, "group_by"), item.get("group_by", list(base.group_by)), "label names"
    )
    if group_by is None:
        group_by = base.group_by
    matchers = problems.matchers(doc, (*p, "matchers"), item.get("matchers", []))
    route = Route(
        str(receiver),
        group_by,
        dur("group_wait", base.group_wait_s),
        dur("group_interval", base.group_interval_s),
        dur("repeat_interval", base.repeat_interval_s),
        matchers,
        (),
        bool(item.get("continue", False)),
    )
    children = item.get("routes", [])
    if not isinstance(children, list):
        problems.add(doc, (*p, "routes"), "'routes' must be a list")
        children = []
    kids = tuple(
        r
        for i, c in enumerate(children)
        if (r := _route(doc, (*p, "routes", i), c, problems, receivers, route))
    )
    return Route(
        route.receiver,
        route.group_by,
        route.group_wait_s,
        route.group_interval_s,
        route.repeat_interval_s,
        route.matchers,
        kids,
        route.continue_,
    )


def _inhibit(doc: Located, p: Path_, item: Any, problems: Problems) -> InhibitRule | None:
    if not isinstance(item, dict):
        problems.add(doc, p, "an inhibit rule must be a mapping")
        return None
    found = len(problems.items)
    src = problems.matchers(doc, (*p, "source_matchers"), item.get("source_matchers", []))
    tgt = problems.matchers(doc, (*p, "target_matchers"), item.get("target_matchers", []))
    equal = problems.str_list(doc, (*p, "equal"), item.get("equal", []), "label names")
    if len(problems.items) > found:
        return None
    if not src or not tgt:
        problems.add(doc, p, "an inhibit rule needs source_matchers and target_matchers")
        return None
    return InhibitRule(src, tgt, equal or ())
