"""Chunked payloads: the convention, piece extraction and reassembly with bounded memory.

Instrumentation that would exceed a collector's message limit (about 1 MB) uploads a large
prompt or completion in pieces, as span events named ``gen_ai.content.chunk`` (see
``docs/CHUNKING.md``). Pieces arrive out of order, duplicated (exporter retries), across many
Kafka messages and minutes apart, and some never arrive. :class:`PayloadState` tracks one
payload; :func:`assemble` puts it back together once every piece is there and checks the
digest. Payload text never goes to logs or ``repr``.
"""

from __future__ import annotations

import base64
import binascii
import gzip
import hashlib
import zlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

EVENT = "gen_ai.content.chunk"
A_PAYLOAD = "gen_ai.content.payload_id"
A_ROLE = "gen_ai.content.role"
A_INDEX = "gen_ai.content.chunk.index"
A_COUNT = "gen_ai.content.chunk.count"
A_DATA = "gen_ai.content.chunk.data"
A_ENCODING = "gen_ai.content.chunk.encoding"
A_DIGEST = "gen_ai.content.digest"  # "sha256:<hex>" of the whole payload's bytes
A_TARGET = "gen_ai.content.target_span_id"  # on a carrier span: the span the payload is of
CHUNKED_PAYLOADS = "gen_ai.content.chunked_payloads"  # on the span whose content moved
ENCODINGS = ("utf-8", "base64", "gzip+base64")
ROLES = ("input", "output", "system", "tool")
MAX_PIECES = 100_000


class ChunkEvent(Protocol):
    """A span event as ingest decodes it (``pipeline.ingest.otlp.EventView``)."""

    @property
    def name(self) -> str: ...

    @property
    def attrs(self) -> Mapping[str, Any]: ...


class CarrierSpan(Protocol):
    """What a piece is read from: a decoded span (``pipeline.ingest.otlp.SpanView``). The
    convention needs no more of it, so this stage depends on no other."""

    @property
    def trace_id(self) -> str: ...

    @property
    def span_id(self) -> str: ...

    @property
    def attrs(self) -> Mapping[str, Any]: ...

    @property
    def events(self) -> Sequence[ChunkEvent]: ...


class PieceError(ValueError):
    """A chunk event that cannot be a piece (the reason is a stable token)."""


@dataclass(frozen=True, slots=True)
class Piece:
    """One piece of a payload, its data already decoded from base64 when so encoded."""

    payload_id: str
    trace_id: str
    span_id: str  # the span the payload belongs to
    role: str
    index: int
    count: int | None
    encoding: str
    data: bytes = field(repr=False)
    digest: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "p": self.payload_id,
            "t": self.trace_id,
            "s": self.span_id,
            "r": self.role,
            "i": self.index,
            "n": self.count,
            "e": self.encoding,
            "d": base64.b64encode(self.data).decode(),
            "h": self.digest,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Piece:
        return cls(
            d["p"],
            d["t"],
            d["s"],
            d["r"],
            int(d["i"]),
            None if d["n"] is None else int(d["n"]),
            d["e"],
            base64.b64decode(d["d"]),
            d["h"],
        )


def extract_pieces(views: Iterable[CarrierSpan]) -> tuple[list[Piece], list[str]]:
    """Pieces carried by span events, and the reasons of chunk events that were unusable."""
    pieces, bad = [], []
    for view in views:
        for ev in view.events:
            if ev.name != EVENT:
                continue
            try:
                pieces.append(_piece(view, ev.attrs))
            except PieceError as exc:
                bad.append(str(exc))
    return pieces, bad


def _piece(view: CarrierSpan, a: Mapping[str, Any]) -> Piece:
    pid, idx, data = a.get(A_PAYLOAD), a.get(A_INDEX), a.get(A_DATA)
    if not isinstance(pid, str) or not pid:
        raise PieceError("chunk_missing_payload_id")
    if not isinstance(idx, int) or isinstance(idx, bool) or not 0 <= idx < MAX_PIECES:
        raise PieceError("chunk_bad_index")
    count = a.get(A_COUNT)
    if count is not None and (
        not isinstance(count, int) or not 0 < count <= MAX_PIECES or idx >= count
    ):
        raise PieceError("chunk_bad_count")
    enc = a.get(A_ENCODING, "utf-8")
    if enc not in ENCODINGS:
        raise PieceError("chunk_bad_encoding")
    if enc == "utf-8":
        if not isinstance(data, str):
            raise PieceError("chunk_bad_data")
        raw = data.encode("utf-8")
    else:
        try:
            raw = base64.b64decode(data if isinstance(data, (str, bytes)) else "", validate=True)
        except (binascii.Error, ValueError) as exc:
            raise PieceError("chunk_bad_base64") from exc
    role = a.get(A_ROLE, "input")
    target = view.attrs.get(A_TARGET)  # set on a carrier span, pointing at the owner span
    digest = a.get(A_DIGEST)
    return Piece(
        pid,
        view.trace_id,
        target if isinstance(target, str) and target else view.span_id,
        role if role in ROLES else "input",
        idx,
        count,
        enc,
        raw,
        digest if isinstance(digest, str) else None,
    )


def split_utf8(text: str, max_bytes: int) -> list[bytes]:
    """UTF-8 bytes of ``text`` in pieces of at most ``max_bytes`` (or one whole character when
    ``max_bytes`` is smaller than it), never split inside a character."""
    data = text.encode("utf-8")
    out, start = [], 0
    while start < len(data):
        end = min(start + max_bytes, len(data))
        while end < len(data) and end > start and (data[end] & 0xC0) == 0x80:
            end -= 1  # never end a piece on a continuation byte
        if end == start:  # one character is longer than max_bytes: it is a piece alone
            end = start + 1
            while end < len(data) and (data[end] & 0xC0) == 0x80:
                end += 1
        out.append(data[start:end])
        start = end
    return out


def make_pieces(
    text: str, payload_id: str, role: str, *, piece_bytes: int, encoding: str = "utf-8"
) -> list[dict[str, object]]:
    """Chunk event attributes for one payload (``base64`` splits anywhere, even mid-char)."""
    raw = text.encode("utf-8")
    digest = "sha256:" + hashlib.sha256(raw).hexdigest()
    if encoding == "utf-8":
        parts: list[bytes] = split_utf8(text, piece_bytes)
    else:
        body = gzip.compress(raw, mtime=0) if encoding == "gzip+base64" else raw
        parts = [body[i : i + piece_bytes] for i in range(0, len(body), piece_bytes)] or [b""]
    out: list[dict[str, object]] = []
    for i, part in enumerate(parts):
        attrs: dict[str, object] = {
            A_PAYLOAD: payload_id,
            A_ROLE: role,
            A_INDEX: i,
            A_ENCODING: encoding,
            A_DATA: part.decode("utf-8")
            if encoding == "utf-8"
            else base64.b64encode(part).decode(),
        }
        attrs[A_COUNT] = len(parts)  # on every piece: any one of them may be lost
        if i == 0:
            attrs[A_DIGEST] = digest
        out.append(attrs)
    return out


def piece_hash(data: bytes) -> str:
    return hashlib.blake2b(data, digest_size=8).hexdigest()


@dataclass
class PayloadState:
    """What is known of one payload while its pieces arrive (no piece data: kept apart)."""

    payload_id: str
    trace_id: str
    span_id: str
    role: str
    encoding: str
    first_seen_ns: int
    count: int | None = None
    digest: str | None = None
    received: dict[int, str] = field(default_factory=dict)  # index -> hash of its data
    bytes_held: int = 0
    duplicates: int = 0
    conflicts: list[int] = field(default_factory=list)

    @classmethod
    def start(cls, piece: Piece, now_ns: int) -> PayloadState:
        return cls(
            piece.payload_id, piece.trace_id, piece.span_id, piece.role, piece.encoding, now_ns
        )

    def add(self, piece: Piece) -> str:
        """``new`` (store its data), ``duplicate`` (same data again) or ``conflict``."""
        if piece.count is not None and self.count is None:
            self.count = piece.count
        if piece.digest and not self.digest:
            self.digest = piece.digest
        h = piece_hash(piece.data)
        seen = self.received.get(piece.index)
        if seen is not None:
            if seen == h:
                self.duplicates += 1
                return "duplicate"
            if piece.index not in self.conflicts:
                self.conflicts.append(piece.index)
            return "conflict"
        self.received[piece.index] = h
        self.bytes_held += len(piece.data)
        return "new"

    @property
    def complete(self) -> bool:
        return self.count is not None and len(self.received) == self.count

    def missing(self) -> list[list[int]]:
        """Missing index ranges ``[first, last]``; the last range ends at ``count - 1`` or,
        when the count is unknown, at the highest index seen + 1 (``None`` = unknown end)."""
        end = self.count if self.count is not None else max(self.received, default=-1) + 1
        out: list[list[int]] = []
        for i in range(end):
            if i not in self.received:
                if out and out[-1][1] == i - 1:
                    out[-1][1] = i
                else:
                    out.append([i, i])
        return out

    def to_dict(self) -> dict[str, Any]:
        return {
            "payload_id": self.payload_id,
            "trace_id": self.trace_id,
            "span_id": self.span_id,
            "role": self.role,
            "encoding": self.encoding,
            "first_seen_ns": self.first_seen_ns,
            "count": self.count,
            "digest": self.digest,
            "received": {str(k): v for k, v in self.received.items()},
            "bytes_held": self.bytes_held,
            "duplicates": self.duplicates,
            "conflicts": self.conflicts,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> PayloadState:
        return cls(
            d["payload_id"],
            d["trace_id"],
            d["span_id"],
            d["role"],
            d["encoding"],
            d["first_seen_ns"],
            d["count"],
            d["digest"],
            {int(k): v for k, v in d["received"].items()},
            d["bytes_held"],
            d["duplicates"],
            list(d["conflicts"]),
        )


@dataclass
class Payload:
    """A reassembled (or partial) payload. ``text`` never appears in ``repr``."""

    state: PayloadState
    status: str  # "complete" | "partial"
    reason: str | None  # partial: "timeout", "evicted", "digest_mismatch", "undecodable"
    text: str | None = field(default=None, repr=False)
    size: int = 0

    def record(self, forward_content: bool, max_content_bytes: int) -> dict[str, Any]:
        """The ``spanwatch.payloads`` record (docs/SCHEMAS.md)."""
        s = self.state
        rec: dict[str, Any] = {
            "payload_id": s.payload_id,
            "trace_id": s.trace_id,
            "span_id": s.span_id,
            "role": s.role,
            "status": self.status,
            "reason": self.reason,
            "pieces": s.count,
            "received": len(s.received),
            "missing": s.missing(),
            "duplicates": s.duplicates,
            "conflicting_indexes": sorted(s.conflicts),
            "size_bytes": self.size,
            "digest": s.digest,
        }
        if forward_content and self.text is not None:
            data = self.text.encode("utf-8")
            cut = data[:max_content_bytes].decode("utf-8", "ignore")
            rec["content"] = cut
            rec["content_truncated"] = len(data) > max_content_bytes
        return rec


def assemble(state: PayloadState, data: dict[int, bytes], reason: str | None = None) -> Payload:
    """Join the pieces held (in index order), decode, verify the digest when complete."""
    joined = b"".join(data[i] for i in sorted(data))
    if state.encoding == "gzip+base64":
        try:
            joined = gzip.decompress(joined) if reason is None else _gunzip_prefix(joined)
        except (OSError, EOFError, zlib.error):
            return Payload(state, "partial", "undecodable", None, len(joined))
    if reason is None and state.digest:
        algo, _, want = state.digest.partition(":")
        got = (
            hashlib.new(algo, joined).hexdigest() if algo in hashlib.algorithms_available else None
        )
        if got != want:
            reason = "digest_mismatch"
    text = joined.decode("utf-8", "replace" if reason else "strict") if reason else None
    if text is None:
        try:
            text = joined.decode("utf-8")
        except UnicodeDecodeError:
            return Payload(state, "partial", "undecodable", None, len(joined))
    return Payload(state, "partial" if reason else "complete", reason, text, len(joined))


def _gunzip_prefix(data: bytes) -> bytes:
    """What can be decompressed from the leading pieces of a gzip stream."""
    d = zlib.decompressobj(wbits=31)
    try:
        return d.decompress(data)
    except zlib.error:
        return b""
