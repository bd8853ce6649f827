"""Event-time windows and per-partition watermarks.

A :class:`WindowSpec` is tumbling (``step == size``) or hopping (``step < size``); windows are
``[start, start + size)`` on span end time, aligned to the epoch. A source partition's
watermark is the largest span end time it has seen; a window is closed for that partition once
``end + allowed_lateness <= watermark``, and a span arriving for a closed window is late
(counted, never merged). An idle partition (assigned, but no message for ``idle_timeout``)
advances its watermark with the injected wall clock, so it never holds windows open forever.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field

from ..common.clock import WallClock
from ..common.durations import format_duration, parse_duration_ns


@dataclass(frozen=True, slots=True)
class WindowSpec:
    """A window shape: ``size_ns`` long, a new one every ``step_ns``."""

    size_ns: int
    step_ns: int

    @classmethod
    def parse(cls, text: str) -> WindowSpec:
        """``"1m"`` (tumbling) or ``"5m/1m"`` (hopping: size/step)."""
        spec = _PARSED.get(text)
        if spec is None:
            spec = cls._parse(text)
            if len(_PARSED) < 1000:  # names come from the config: a handful
                _PARSED[text] = spec
        return spec

    @classmethod
    def _parse(cls, text: str) -> WindowSpec:
        size, _, step = text.partition("/")
        size_ns = parse_duration_ns(size)
        step_ns = parse_duration_ns(step) if step else size_ns
        if step_ns > size_ns or size_ns % step_ns:
            raise ValueError(f"bad window {text!r}: the step must divide the size")
        return cls(size_ns, step_ns)

    @property
    def name(self) -> str:
        name = _NAMES.get(self)
        if name is None:
            size = format_duration(self.size_ns)
            name = _NAMES[self] = (
                size if self.step_ns == self.size_ns else f"{size}/{format_duration(self.step_ns)}"
            )
        return name

    def starts(self, t_ns: int) -> range:
        """Starts of every window containing ``t_ns`` (one for tumbling windows)."""
        last = t_ns - t_ns % self.step_ns
        first = last - self.size_ns + self.step_ns
        return range(first, last + 1, self.step_ns)


def window_id(name: str, start_ns: int) -> str:
    """The id of one window of one shape: ``"<name>@<start ns>"`` (``"1m@1700000040000000000"``),
    the key of a window in partials, series state and closed-window records."""
    return f"{name}@{start_ns}"


def parse_window_id(wid: str) -> tuple[WindowSpec, int]:
    """The shape and start of a :func:`window_id`."""
    name, _, start = wid.partition("@")
    return WindowSpec.parse(name), int(start)


def window_ids(specs: Sequence[WindowSpec], t_ns: int) -> list[str]:
    """Ids of every window of ``specs`` that the instant ``t_ns`` falls into."""
    return [window_id(spec.name, start) for spec in specs for start in spec.starts(t_ns)]


_NAMES: dict[WindowSpec, str] = {}  # window names are used per span: computed once
_PARSED: dict[str, WindowSpec] = {}  # and parsed once per name


def has_backlog(end: int | None, committed: int | None, processed: int | None) -> bool:
    """Whether a source partition holds records this worker has not processed yet, so that
    its watermark must not follow the wall clock (lagging, or paused, is not idle).

    ``end`` is the partition's end offset (the next one to be written; ``None`` until a fetch
    has answered), ``committed`` the group's committed offset (the next one to read) as this
    consumer knows it, ``processed`` the last offset this worker has handled since it was
    assigned the partition. A record fetched but still waiting in a stream buffer is not
    processed: only what the stage has handled counts, never what the consumer has read."""
    if end is None:
        return True
    done = max(committed or 0, processed + 1 if processed is not None else 0)
    return end > done


@dataclass
class PartitionClock:
    """Watermark of one source partition; ``now`` callables are injected for tests.

    Lateness is judged by the order of the source messages alone: a span is late when a
    message before it in its partition (sent or not, however batches are cut) ended
    ``allowed_lateness`` past the span's window, or when the wall clock moved an idle
    partition past it. A rebalance rewinds a partition this worker keeps to its committed
    offset, and the messages read again must be judged as they were the first time, not
    against the ones after them: :meth:`at` puts the mark back (the last ``depth`` messages
    are remembered; older ones were committed, so no rewind goes behind them)."""

    allowed_lateness_ns: int
    idle_timeout_ns: int
    wall_ns: WallClock
    depth: int = 0  # messages a rewind may go back over (0: none remembered)
    watermark_ns: int = 0  # what may be announced: spans up to here are with the owners
    last_message_ns: int = 0  # wall time of the last message (or of the assignment)
    seen_ns: int = 0  # the newest span end of every message pre-aggregated, sent or not
    idle_ns: int = 0  # where the wall clock moved the watermark of an idle partition
    # the seen mark when the current message began (:meth:`at`): its spans, and what is made
    # from it after they moved the seen mark (prompt samples), are judged against it
    before_ns: int = 0
    # (offset, seen mark before it) of the last ``depth`` messages, oldest first
    _before: deque[tuple[int, int]] = field(default_factory=deque, repr=False)
    _forgot: int = -1  # the newest offset dropped from ``_before``
    _last: int = -1  # the offset of the last message

    def observe(self, event_end_ns: int) -> None:
        """A span with this end time was processed (and its partials sent)."""
        if event_end_ns > self.watermark_ns:
            self.watermark_ns = event_end_ns

    def at(self, offset: int) -> None:
        """The message at ``offset`` is next. When it was read before (a rewind), the seen
        mark goes back to what it was before it; past what is remembered, to nothing (as
        for a partition new here: nothing before it is known)."""
        before = self._before
        if offset <= self._last:
            mark = 0
            while before and before[-1][0] >= offset:
                mark = before.pop()[1]
            self.seen_ns = 0 if offset <= self._forgot else mark
        self._last = offset
        self.before_ns = self.seen_ns
        if self.depth:
            before.append((offset, self.seen_ns))
            if len(before) > self.depth:
                self._forgot = before.popleft()[0]

    def see(self, event_end_ns: int) -> None:
        """A message with spans ending up to here was pre-aggregated (perhaps not sent yet)."""
        if event_end_ns > self.seen_ns:
            self.seen_ns = event_end_ns

    def touch(self) -> None:
        """A message arrived (or the partition was assigned)."""
        self.last_message_ns = self.wall_ns()

    def current(self, backlog: bool = False) -> int:
        """The watermark, advanced by the wall clock when the partition is idle. A partition
        with ``backlog`` (records written that this worker has not read yet: it lags, or a
        rebalance paused it) is not idle, however long since its last message."""
        if backlog:
            self.touch()
        now = self.wall_ns()
        if self.last_message_ns and now - self.last_message_ns >= self.idle_timeout_ns:
            idle_mark = now - self.idle_timeout_ns - self.allowed_lateness_ns
            if idle_mark > self.watermark_ns:
                self.watermark_ns = self.idle_ns = idle_mark
        return self.watermark_ns

    def late_mark(self) -> int:
        """What lateness is judged against: the newest span end of the messages before the
        current one (never the message itself: its spans are not late to each other), or
        the mark the wall clock moved an idle partition to. Not the announced watermark: it
        may cover messages a rewind reads again."""
        return self.before_ns if self.before_ns > self.idle_ns else self.idle_ns

    def is_late(self, window_end_ns: int) -> bool:
        return window_end_ns + self.allowed_lateness_ns <= self.late_mark()

    def late_start(self, step_ns: int) -> int:
        """Where something late is counted: the start of the window (a new one every
        ``step_ns``) open at :meth:`late_mark`."""
        mark = self.late_mark()
        return mark - mark % step_ns


@dataclass(frozen=True)
class WindowSettings:
    """Window shapes and lateness, shared by the pre-aggregation and the merge. Built from
    the ``metrics:`` section (:meth:`~pipeline.windows.settings.MetricsSettings.window_settings`),
    where the catalog and its defaults live."""

    specs: tuple[WindowSpec, ...]
    allowed_lateness_ns: int
    idle_timeout_ns: int

    @property
    def smallest(self) -> WindowSpec:
        """The smallest shape: its windows feed the Prometheus counters and the alert and
        anomaly stages' "latest window" (each span counted once: see ``runtime.prom``)."""
        return min(self.specs, key=lambda s: (s.size_ns, s.step_ns))
