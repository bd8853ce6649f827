"""A traffic generator of realistic multi-layer LLM traces, as OTLP ``TracesData``.

Each trace is one user request: an AI gateway span, an agent run (``invoke_agent``) with
several model calls (``chat``, streamed, CLIENT spans) each served by a vLLM model server span,
and tool / MCP calls between them. Apps use different instrumentations (OTel GenAI, OpenInference,
LoongSuite), so the demo and the benchmark exercise every mapping. Some calls fail; every
``runaway_every``-th trace is an agent stuck in a tool loop. Deterministic for a given seed.
"""

from __future__ import annotations

import hashlib
import heapq
import json
import random
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.metrics.v1.metrics_pb2 import MetricsData
from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status, TracesData

from spanwatch.pipeline.stitch import chunks

SERVER, CLIENT, INTERNAL = Span.SPAN_KIND_SERVER, Span.SPAN_KIND_CLIENT, Span.SPAN_KIND_INTERNAL


def any_value(v: Any) -> AnyValue:
    if isinstance(v, bool):
        return AnyValue(bool_value=v)
    if isinstance(v, int):
        return AnyValue(int_value=v)
    if isinstance(v, float):
        return AnyValue(double_value=v)
    if isinstance(v, (list, tuple)):
        out = AnyValue()
        out.array_value.values.extend(any_value(x) for x in v)
        return out
    return AnyValue(string_value=str(v))


def kvs(attrs: dict[str, Any]) -> list[KeyValue]:
    return [KeyValue(key=k, value=any_value(v)) for k, v in attrs.items() if v is not None]


@dataclass(frozen=True)
class Model:
    name: str
    provider: str
    server: str  # service.name of the model server ("" for a cloud API)
    ttft_s: float  # median
    tpot_s: float  # median seconds per output token


MODELS = (
    Model("qwen2.5-72b-instruct", "vllm", "vllm-qwen", 0.35, 0.030),
    Model("deepseek-v3", "vllm", "sglang-deepseek", 0.60, 0.045),
    Model("gpt-4o-mini", "openai", "", 0.45, 0.012),
    Model("llama-3.1-8b-instruct", "vllm", "vllm-llama", 0.12, 0.010),
)
APPS = (  # service name, instrumentation convention
    ("support-agent", "genai"),
    ("rag-app", "openinference"),
    ("dify-workflow", "loongsuite"),
)
TOOLS = ("search_docs", "get_order", "run_sql", "fetch_url")
PROMPTS = (  # (template, weight): what the support agent's users ask
    ("我要退货，订单号 {n}，请问多久能退款到原支付账户？", 3),
    ("How do I reset the password of my account {n}? I no longer get the email.", 2),
    ("Where is my parcel {n}? The tracking page has not changed for three days.", 2),
)
NEW_PROMPTS = (  # then users start complaining about refunds that never came
    ("退款申请 {n} 已经两周了还没到账，客服一直不回复，太差劲了！", 3),
    ("Order {n}: refund promised ten days ago and still nothing. Worst support ever.", 2),
)


@dataclass
class Spans:
    """Spans of one batch grouped by (service, scope) so they form real ResourceSpans."""

    groups: dict[tuple[str, str], list[Span]] = field(default_factory=lambda: defaultdict(list))

    def add(self, service: str, scope: str, span: Span) -> None:
        self.groups[(service, scope)].append(span)

    def count(self) -> int:
        return sum(len(v) for v in self.groups.values())

    def traces_data(self) -> TracesData:
        data = TracesData()
        for (service, scope), spans in self.groups.items():
            rs = data.resource_spans.add()
            rs.resource.attributes.extend(
                kvs(
                    {
                        "service.name": service,
                        "service.version": "1.4.2",
                        "deployment.environment.name": "prod",
                        "telemetry.sdk.language": "python",
                        "telemetry.sdk.name": "opentelemetry",
                        "telemetry.sdk.version": "1.27.0",
                        "host.name": f"{service}-7d9f",
                        "k8s.namespace.name": "llm-apps",
                    }
                )
            )
            ss = rs.scope_spans.add()
            ss.scope.name = scope
            ss.spans.extend(spans)
        return data


class TrafficGenerator:
    """Generates traces ending at the given time; use :meth:`batches` for Kafka messages."""

    def __init__(
        self,
        seed: int = 7,
        *,
        error_rate: float = 0.03,
        runaway_every: int = 50,
        slow_model: str | None = None,
        slow_factor: float = 1.0,
        chunk_every: int = 0,
        pii_every: int = 0,
        dependencies: bool = False,
        slow_dependency: float = 1.0,
        hang_every: int = 0,
        workflow_nodes: bool = False,
        prompts: bool = False,
        short_steps: bool = False,
        hang_timeout_s: float = 30.0,
    ) -> None:
        self.rng = random.Random(seed)
        # GenAI chat calls carry their user prompt (gen_ai.input.messages), drawn from a few
        # templates (prompt clusters); ``new_prompts`` adds a kind of request not seen before
        self.prompts = prompts
        self.new_prompts = False
        self.prompt_rng = random.Random(seed ^ 0x9A0F)
        self.engine_rng = random.Random(seed + 1)  # engine scrapes never shift the spans
        # dependency calls (a Redis lookup per run, a vector search per search_docs tool call)
        # draw from their own generator, so switching them on leaves every trace's other spans
        # as they were
        self.dependencies = dependencies
        self.slow_dependency = slow_dependency  # factor on the vector database's latency
        self.dep_rng = random.Random(seed ^ 0x5EED)
        # every Nth trace: the model call hangs, the gateway times out after hang_timeout_s
        # (504) and no LLM span ever comes
        self.hang_every = hang_every
        self.hang_timeout_ns = int(hang_timeout_s * 1e9)
        # an agent's steps before its answer (and a looping agent's) are tool calls: short
        # outputs of 15-80 tokens, as real ones are, and answers of at most 250; off, every
        # call answers with up to 600 (the traffic the captured tests were recorded with)
        self.short_steps = short_steps
        # the Dify app's calls and tools wrapped in workflow node spans
        self.workflow_nodes = workflow_nodes
        self.node_rng = random.Random(seed ^ 0x0DE5)
        self.error_rate = error_rate
        self.runaway_every = runaway_every
        self.slow_model = slow_model
        self.slow_factor = slow_factor
        # only calls starting within this long of their trace's start are slowed (the
        # engine recovers; a long trace's later calls are served normally)
        self.slow_for_ns = 2**62
        self.chunk_every = chunk_every  # every Nth GenAI chat call: a big chunked completion
        self.pii_every = pii_every  # every Nth GenAI chat call: a completion leaking PII
        self.traces = 0
        self.truth: dict[str, int] = defaultdict(int)  # what was generated, for tests

    def _id(self, n: int) -> bytes:
        return self.rng.getrandbits(8 * n).to_bytes(n, "big") or b"\x01" * n

    def _span(
        self,
        trace_id: bytes,
        parent: bytes,
        name: str,
        kind: Any,
        start: int,
        end: int,
        attrs: dict[str, Any],
        error: str | None = None,
        span_id: bytes | None = None,
    ) -> Span:
        sp = Span(
            trace_id=trace_id,
            span_id=span_id or self._id(8),
            parent_span_id=parent,
            name=name,
            kind=kind,
            start_time_unix_nano=start,
            end_time_unix_nano=end,
        )
        sp.attributes.extend(kvs(attrs))
        if error:
            sp.status.CopyFrom(Status(code=Status.STATUS_CODE_ERROR, message=error))
            sp.attributes.append(KeyValue(key="error.type", value=AnyValue(string_value=error)))
        return sp

    def trace(self, end_ns: int, out: Spans) -> None:
        """Append one whole trace that ends at ``end_ns`` to ``out``."""
        rng = self.rng
        self.traces += 1
        trace_id = self._id(16)
        app, convention = rng.choice(APPS)
        user = f"user-{rng.randrange(40):03d}"
        session = f"sess-{rng.randrange(200):04d}"
        runaway = self.runaway_every > 0 and self.traces % self.runaway_every == 0
        steps = 24 if runaway else rng.randint(1, 4)
        model = rng.choice(MODELS)
        if self.hang_every > 0 and self.traces % self.hang_every == 0:
            self._emit_hang(out, trace_id, end_ns, app, convention, user, session)
            return
        # Lay out the agent's steps back to back, then wrap them.
        cursor = 0
        children: list[tuple[str, Any]] = []
        for step in range(steps):
            short = self.short_steps and (runaway or step < steps - 1)
            # a backed-up engine slows the calls made while it is backed up
            call = self._model_call(model, runaway, short, cursor < self.slow_for_ns)
            children.append(("llm", (cursor, call)))
            cursor += int(call["e2e"] * 1e9) + 2_000_000
            if step < steps - 1 or runaway:
                dur = int(rng.lognormvariate(-2.5, 0.6) * 1e9)
                tool = TOOLS[0] if runaway else rng.choice(TOOLS)
                args = {"q": "refund policy"} if runaway else {"q": f"item {rng.randrange(1000)}"}
                children.append(("tool", (cursor, dur, tool, args)))
                cursor += dur + 1_000_000
        total = cursor + 5_000_000
        t0 = end_ns - total - 4_000_000
        gw = self._span(
            trace_id,
            b"",
            "POST /v1/agents/run",
            SERVER,
            t0,
            end_ns,
            {
                "http.route": "/v1/agents/run",
                "http.request.method": "POST",
                "http.response.status_code": 200,
                "url.path": "/v1/agents/run",
                "url.scheme": "https",
                "server.address": "ai.example.internal",
                "client.address": f"10.1.{rng.randrange(256)}.{rng.randrange(256)}",
                "user_agent.original": "python-httpx/0.27.0",
                "gen_ai.operation.name": "invoke_agent",
                "user.id": user,
                "gen_ai.conversation.id": session,
            },
        )
        out.add("ai-gateway", "envoy.ai_gateway", gw)
        agent_start = t0 + 2_000_000
        agent = self._agent_span(
            trace_id, gw.span_id, app, convention, agent_start, agent_start + total, user, session
        )
        out.add(app, _scope(convention), agent)
        if self.dependencies:
            self._emit_cache_lookup(out, trace_id, agent.span_id, app, agent_start)
        nodes = self.workflow_nodes and convention == "loongsuite"  # Dify's node spans
        for kind, payload in children:
            # node span ids come from their own generator: every other span stays the same
            nid = self.node_rng.getrandbits(64).to_bytes(8, "big") if nodes else None
            parent = nid or agent.span_id
            if kind == "llm":
                offset, call = payload
                start = agent_start + offset
                self._emit_llm(
                    out, trace_id, parent, app, convention, model, start, call, user, session
                )
                end, node, error = start + int(call["e2e"] * 1e9), ("llm", "LLM"), call["error"]
            else:
                offset, dur, tool, args = payload
                start = agent_start + offset
                end = self._emit_tool(
                    out, trace_id, parent, app, convention, start, dur, tool, args
                )
                node, error = ("tool", tool), None
            if nid is not None:
                self._emit_node(out, trace_id, agent.span_id, nid, app, node, start, end, error)
        self.truth["traces"] += 1
        self.truth["runaway_traces"] += int(runaway)

    def _model_call(
        self, model: Model, runaway: bool, short: bool = False, slow_now: bool = True
    ) -> dict[str, Any]:
        rng = self.rng
        slow = self.slow_factor if model.name == self.slow_model and slow_now else 1.0
        queue = rng.lognormvariate(-4.0, 1.0) * slow
        prefill = model.ttft_s * rng.lognormvariate(0, 0.35)
        ttft = queue + prefill
        out_tokens = (
            rng.randint(15, 80) if short else rng.randint(20, 250 if self.short_steps else 600)
        )
        decode = model.tpot_s * rng.lognormvariate(0, 0.2) * (out_tokens - 1)
        in_tokens = rng.randint(200, 4000) + (3000 if runaway else 0)
        cached = rng.randrange(0, in_tokens // 2) if rng.random() < 0.4 else 0
        error = None
        if rng.random() < self.error_rate:
            error = rng.choice(("rate_limit_exceeded", "timeout", "500"))
            out_tokens = 0
            decode = 0.0
        return {
            "queue": queue,
            "prefill": prefill,
            "ttft": ttft,
            "decode": decode,
            "e2e": ttft + decode,
            "in": in_tokens,
            "out": out_tokens,
            "cached": cached,
            "error": error,
            "slowed": slow > 1,
        }

    def _agent_span(
        self,
        trace_id: bytes,
        parent: bytes,
        app: str,
        convention: str,
        start: int,
        end: int,
        user: str,
        session: str,
    ) -> Span:
        if convention == "openinference":
            attrs: dict[str, Any] = {
                "openinference.span.kind": "AGENT",
                "agent.name": app,
                "user.id": user,
                "session.id": session,
            }
        elif convention == "loongsuite":
            attrs = {
                "gen_ai.span.kind": "AGENT",
                "gen_ai.user.id": user,
                "gen_ai.session.id": session,
            }
        else:
            attrs = {
                "gen_ai.operation.name": "invoke_agent",
                "gen_ai.agent.name": app,
                "gen_ai.conversation.id": session,
                "user.id": user,
            }
        return self._span(trace_id, parent, f"invoke_agent {app}", INTERNAL, start, end, attrs)

    def _emit_llm(
        self,
        out: Spans,
        trace_id: bytes,
        parent: bytes,
        app: str,
        convention: str,
        model: Model,
        start: int,
        call: dict[str, Any],
        user: str,
        session: str,
    ) -> None:
        end = start + int(call["e2e"] * 1e9)
        err = call["error"]
        if convention == "openinference":
            attrs: dict[str, Any] = {
                "openinference.span.kind": "LLM",
                "llm.model_name": model.name,
                "llm.provider": model.provider,
                "llm.token_count.prompt": call["in"],
                "llm.token_count.completion": call["out"],
                "llm.token_count.total": call["in"] + call["out"],
                "llm.token_count.prompt_details.cache_read": call["cached"],
                "llm.invocation_parameters": json.dumps({"stream": True, "temperature": 0.2}),
                "user.id": user,
                "session.id": session,
            }
        elif convention == "loongsuite":
            attrs = {
                "gen_ai.span.kind": "LLM",
                "gen_ai.request.model": model.name,
                "gen_ai.system": model.provider,
                "gen_ai.usage.input_tokens": call["in"],
                "gen_ai.usage.output_tokens": call["out"],
                "gen_ai.usage.total_tokens": call["in"] + call["out"],
                "gen_ai.response.time_to_first_token": int(call["ttft"] * 1e9),
                "gen_ai.request.stream": True,
                "gen_ai.user.id": user,
                "gen_ai.session.id": session,
            }
        else:
            attrs = {
                "gen_ai.operation.name": "chat",
                "gen_ai.provider.name": model.provider,
                "gen_ai.request.model": model.name,
                "gen_ai.response.model": model.name,
                "gen_ai.usage.input_tokens": call["in"],
                "gen_ai.usage.output_tokens": call["out"],
                "gen_ai.usage.cache_read.input_tokens": call["cached"],
                "gen_ai.response.time_to_first_chunk": call["ttft"],
                "gen_ai.request.stream": True,
                "gen_ai.response.finish_reasons": ["error" if err else "stop"],
                "gen_ai.response.id": f"chatcmpl-{self._id(8).hex()}",
                "gen_ai.request.temperature": 0.2,
                "gen_ai.request.max_tokens": 1024,
                "gen_ai.output.type": "text",
                "server.address": "api.example.internal",
                "server.port": 443,
                "gen_ai.conversation.id": session,
                "user.id": user,
            }
        sp = self._span(trace_id, parent, f"chat {model.name}", CLIENT, start, end, attrs, err)
        if self.prompts and convention == "genai":
            sp.attributes.extend(kvs({"gen_ai.input.messages": self._prompt()}))
        if convention == "openinference" and not err:
            ev = sp.events.add(
                name="First Token Stream Event", time_unix_nano=start + int(call["ttft"] * 1e9)
            )
            del ev  # the event carries no attributes
        out.add(app, _scope(convention), sp)
        self.truth["llm_calls"] += 1
        if (
            convention == "genai"
            and self.chunk_every
            and self.truth["llm_calls"] % self.chunk_every == 0
        ):
            self._chunked_output(out, app, sp, end)
        elif (
            convention == "genai"
            and self.pii_every
            and self.truth["llm_calls"] % self.pii_every == 0
        ):
            sp.attributes.append(
                KeyValue(
                    key="gen_ai.output.messages",
                    value=AnyValue(
                        string_value=json.dumps(
                            [
                                {
                                    "role": "assistant",
                                    "parts": [{"type": "text", "content": self._pii_text()}],
                                }
                            ],
                            ensure_ascii=False,
                        )
                    ),
                )
            )
            self.truth["pii_completions"] += 1
        self.truth["input_tokens"] += call["in"]
        self.truth["output_tokens"] += call["out"]
        if model.server:
            srv_start = start + 1_000_000
            srv = self._span(
                trace_id,
                sp.span_id,
                "llm_request",
                SERVER,
                srv_start,
                srv_start + int(call["e2e"] * 1e9),
                {
                    "gen_ai.request.model": model.name,
                    "gen_ai.response.model": model.name,
                    "gen_ai.request.id": f"cmpl-{self._id(6).hex()}",
                    "gen_ai.usage.prompt_tokens": call["in"],
                    "gen_ai.usage.completion_tokens": call["out"],
                    "gen_ai.latency.time_in_queue": call["queue"],
                    "gen_ai.latency.time_to_first_token": call["ttft"],
                    "gen_ai.latency.time_in_model_prefill": call["prefill"],
                    "gen_ai.latency.time_in_model_decode": call["decode"],
                    "gen_ai.latency.e2e": call["e2e"],
                    "gen_ai.request.temperature": 0.2,
                    "gen_ai.request.top_p": 0.9,
                    "gen_ai.request.max_tokens": 1024,
                    "gen_ai.request.n": 1,
                },
                err,
            )
            if call["slowed"]:
                # a backed-up engine preempts running requests to admit waiting ones
                ev = srv.events.add(name="journey.PREEMPTED", time_unix_nano=srv_start + 1000)
                ev.attributes.extend(kvs({"event.type": "PREEMPTED", "num_preemptions": 1}))
            out.add(model.server, "vllm.llm_engine", srv)

    def _prompt(self) -> str:
        rng = self.prompt_rng
        kinds = PROMPTS + (NEW_PROMPTS if self.new_prompts else ())
        template = rng.choices(kinds, [w for _, w in kinds])[0][0]
        text = template.format(n=rng.randrange(10_000, 99_999))
        return json.dumps(
            [{"role": "user", "parts": [{"type": "text", "content": text}]}], ensure_ascii=False
        )

    def _pii_text(self) -> str:
        """A completion that repeats a customer's (synthetic, well-formed) phone and ID."""
        rng = self.rng
        phone = f"13{rng.randint(0, 9)}{rng.randint(0, 99_999_999):08d}"
        month, day, seq = rng.randint(1, 12), rng.randint(1, 28), rng.randint(0, 999)
        body = f"1101051990{month:02d}{day:02d}{seq:03d}"
        weights = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
        check = "10X98765432"[sum(int(d) * w for d, w in zip(body, weights, strict=True)) % 11]
        return f"已为您查到订单，联系电话 {phone}，身份证号 {body}{check}，请核对。"

    def _chunked_output(self, out: Spans, app: str, sp: Span, end: int) -> None:
        """A completion too big for one export: pieces on carrier spans (docs/CHUNKING.md)."""
        pid = f"{sp.span_id.hex()}:gen_ai.output.messages"
        sp.attributes.append(KeyValue(key=chunks.CHUNKED_PAYLOADS, value=any_value([pid])))
        text = "The agent's long answer. 长篇回答。" * self.rng.randint(2000, 6000)
        pieces = chunks.make_pieces(text, pid, "output", piece_bytes=32 * 1024)
        for i in range(0, len(pieces), 4):
            carrier = self._span(
                sp.trace_id,
                sp.span_id,
                "gen_ai.content.chunks",
                INTERNAL,
                end,
                end,
                {chunks.A_TARGET: sp.span_id.hex()},
            )
            for attrs in pieces[i : i + 4]:
                ev = carrier.events.add(name=chunks.EVENT, time_unix_nano=end)
                ev.attributes.extend(kvs(attrs))
            out.add(app, _scope("genai"), carrier)
        self.truth["chunked_payloads"] += 1

    def _emit_tool(
        self,
        out: Spans,
        trace_id: bytes,
        parent: bytes,
        app: str,
        convention: str,
        start: int,
        dur: int,
        tool: str,
        args: dict[str, Any],
    ) -> int:
        """The tool's span (and the MCP server's, the vector search); returns its end."""
        arg_text = json.dumps(args, sort_keys=True)
        if convention == "openinference":
            attrs: dict[str, Any] = {
                "openinference.span.kind": "TOOL",
                "tool.name": tool,
                "tool.parameters": arg_text,
            }
        else:
            attrs = {
                "gen_ai.operation.name": "execute_tool",
                "gen_ai.tool.name": tool,
                "gen_ai.tool.call.id": f"call_{self._id(4).hex()}",
                "gen_ai.tool.call.arguments": arg_text,
            }
        search = self.dependencies and tool == "search_docs"
        took = self._search_ns() if search else 0
        dur = max(dur, took + 300_000)  # the tool waits for its vector search
        sp = self._span(
            trace_id, parent, f"execute_tool {tool}", INTERNAL, start, start + dur, attrs
        )
        out.add(app, _scope(convention), sp)
        self.truth["tool_calls"] += 1
        if search:
            self._emit_vector_search(out, trace_id, sp.span_id, app, start, took)
        if tool == "fetch_url":  # served by an MCP server
            mcp = self._span(
                trace_id,
                sp.span_id,
                "tools/call fetch_url",
                SERVER,
                start + 500_000,
                start + dur - 500_000,
                {
                    "mcp.method.name": "tools/call",
                    "gen_ai.tool.name": tool,
                    "mcp.session.id": hashlib.md5(trace_id).hexdigest()[:12],
                },
            )
            out.add("mcp-web-tools", "mcp.server", mcp)
        return start + dur

    def _emit_node(
        self,
        out: Spans,
        trace_id: bytes,
        parent: bytes,
        span_id: bytes,
        app: str,
        node: tuple[str, str],
        start: int,
        end: int,
        error: str | None,
    ) -> None:
        """A Dify workflow node span, as Dify's ObservabilityLayer writes it."""
        ntype, title = node
        attrs = {
            "node.id": span_id.hex()[:13],
            "node.execution_id": span_id.hex(),
            "node.type": ntype,
            "gen_ai.framework": "dify",
            "gen_ai.span.kind": "LLM" if ntype == "llm" else "TOOL",
        }
        sp = self._span(trace_id, parent, title, INTERNAL, start, end, attrs, error, span_id)
        out.add(app, "core.workflow.graph_engine.layers.observability", sp)
        self.truth["workflow_nodes"] += 1

    def _emit_hang(
        self,
        out: Spans,
        trace_id: bytes,
        end_ns: int,
        app: str,
        convention: str,
        user: str,
        session: str,
    ) -> None:
        """A request whose model call never returned: the agent and the gateway time out."""
        t0 = end_ns - self.hang_timeout_ns
        gw_attrs = {
            "http.route": "/v1/agents/run",
            "http.request.method": "POST",
            "http.response.status_code": 504,
            "server.address": "ai.example.internal",
            "gen_ai.operation.name": "invoke_agent",
            "user.id": user,
        }
        gw = self._span(trace_id, b"", "POST /v1/agents/run", SERVER, t0, end_ns, gw_attrs, "504")
        out.add("ai-gateway", "envoy.ai_gateway", gw)
        agent = self._agent_span(
            trace_id, gw.span_id, app, convention, t0 + 2_000_000, end_ns - 1_000_000, user, session
        )
        agent.status.CopyFrom(Status(code=Status.STATUS_CODE_ERROR, message="timed out"))
        agent.attributes.append(
            KeyValue(key="error.type", value=AnyValue(string_value="TimeoutError"))
        )
        out.add(app, _scope(convention), agent)
        self.truth["traces"] += 1
        self.truth["hung_traces"] += 1

    def _emit_cache_lookup(
        self, out: Spans, trace_id: bytes, parent: bytes, app: str, start: int
    ) -> None:
        """A Redis GET (old semantic-convention names, as redis-py's instrumentation sends)."""
        dur = int(self.dep_rng.lognormvariate(-6.9, 0.5) * 1e9)  # ~1 ms
        attrs = {
            "db.system": "redis",
            "db.statement": "GET ?",
            "db.redis.database_index": 0,
            "net.peer.name": "cache",
            "net.peer.port": 6379,
        }
        sid = self.dep_rng.getrandbits(64).to_bytes(8, "big")
        sp = self._span(trace_id, parent, "GET", CLIENT, start, start + dur, attrs, None, sid)
        out.add(app, "opentelemetry.instrumentation.redis", sp)
        self.truth["dependency_calls"] += 1

    def _search_ns(self) -> int:
        """How long a vector search takes (~20 ms, times ``slow_dependency``)."""
        return max(int(self.dep_rng.lognormvariate(-3.9, 0.4) * self.slow_dependency * 1e9), 1)

    def _emit_vector_search(
        self, out: Spans, trace_id: bytes, parent: bytes, app: str, start: int, took: int
    ) -> None:
        """A vector search inside the tool call (OpenLLMetry's Qdrant shape)."""
        rng = self.dep_rng
        failed = rng.random() < self.error_rate
        attrs = {
            "db.system": "qdrant",
            "db.operation": "search",
            "db.vector.query.top_k": 5,
            "server.address": "qdrant",
            "server.port": 6333,
        }
        begin = start + 100_000
        error = "TimeoutError" if failed else None
        sid = rng.getrandbits(64).to_bytes(8, "big")
        end = begin + took
        sp = self._span(trace_id, parent, "qdrant.search", CLIENT, begin, end, attrs, error, sid)
        out.add(app, "opentelemetry.instrumentation.qdrant", sp)
        self.truth["dependency_calls"] += 1
        self.truth["dependency_errors"] += int(failed)

    def engine_scrape(self, t_ns: int, backed_up: str | None = None) -> MetricsData:
        """One scrape of every self-hosted model's engine, as a collector's prometheus
        receiver exports it: resource ``service.name`` = the scrape job (the engine's service),
        vLLM or SGLang gauge names, ``model_name`` labels. The ``backed_up`` model's engine
        has a long queue and a nearly full KV cache."""
        rng = self.engine_rng
        data = MetricsData()
        for m in MODELS:
            if not m.server:
                continue
            hot = m.name == backed_up
            prefix, names = (
                ("sglang:", ("num_running_reqs", "num_queue_reqs", "token_usage"))
                if m.server.startswith("sglang")
                else (
                    "vllm:",
                    ("num_requests_running", "num_requests_waiting", "kv_cache_usage_perc"),
                )
            )
            values = (
                float(rng.randint(48, 64) if hot else rng.randint(8, 40)),
                float(rng.randint(15, 40) if hot else rng.randint(0, 3)),
                rng.uniform(0.96, 0.995) if hot else rng.uniform(0.3, 0.7),
            )
            rm = data.resource_metrics.add()
            rm.resource.attributes.extend(
                kvs({"service.name": m.server, "service.instance.id": f"{m.server}:8000"})
            )
            scope = rm.scope_metrics.add()
            for name, value in zip(names, values, strict=True):
                metric = scope.metrics.add()
                metric.name = prefix + name
                point = metric.gauge.data_points.add()
                point.time_unix_nano, point.as_double = t_ns, value
                point.attributes.extend(kvs({"model_name": m.name}))
        return data

    def exported(self, total: int, per_message: int, start_ns: int, rate: float) -> list[Spans]:
        """About ``total`` spans of traces ending ``rate`` spans per second apart from
        ``start_ns``, in messages of ``per_message`` spans in the order the spans end: what a
        batching exporter sends (a trace's early spans go out before its root ends)."""
        out = Spans()
        n = 0
        while n < total:
            before = out.count()
            self.trace(start_ns + int(n / rate * 1e9), out)
            n += out.count() - before
        flat = sorted(
            (span.end_time_unix_nano, seq, key, span)
            for seq, (key, span) in enumerate(
                (key, span) for key, spans in out.groups.items() for span in spans
            )
        )
        messages = []
        for i in range(0, len(flat), per_message):
            m = Spans()
            for _, _, (service, scope), span in flat[i : i + per_message]:
                m.add(service, scope, span)
            messages.append(m)
        return messages

    def batches(self, spans_per_batch: int, end_ns: int, spread_ns: int = 0) -> Iterator[Spans]:
        """Endless batches of about ``spans_per_batch`` spans (whole traces)."""
        while True:
            out = Spans()
            while out.count() < spans_per_batch:
                jitter = self.rng.randrange(spread_ns) if spread_ns else 0
                self.trace(end_ns - jitter, out)
            yield out


@dataclass
class LiveExport:
    """Spans as an SDK's batch processor exports them: each once it has ended.

    :meth:`TrafficGenerator.trace` lays a trace out backwards from its end, so sending it
    whole at "now" back-dates every span of a long trace (a 24-step agent loop started four
    minutes ago). :meth:`start` moves a trace to begin at ``now_ns`` and holds its spans;
    :meth:`due` releases those that have ended by then, the root last."""

    held: list[tuple[int, int, str, str, Span]] = field(default_factory=list)  # heap by end
    _seq: int = 0

    def start(self, trace: Spans, now_ns: int) -> None:
        spans = [s for group in trace.groups.values() for s in group]
        if not spans:
            return
        shift = now_ns - min(s.start_time_unix_nano for s in spans)
        for (service, scope), group in trace.groups.items():
            for sp in group:
                sp.start_time_unix_nano += shift
                sp.end_time_unix_nano += shift
                for ev in sp.events:
                    ev.time_unix_nano += shift
                self._seq += 1
                heapq.heappush(self.held, (sp.end_time_unix_nano, self._seq, service, scope, sp))

    def due(self, now_ns: int) -> Spans:
        out = Spans()
        while self.held and self.held[0][0] <= now_ns:
            _, _, service, scope, sp = heapq.heappop(self.held)
            out.add(service, scope, sp)
        return out


def _scope(convention: str) -> str:
    return {
        "genai": "opentelemetry.instrumentation.openai_v2",
        "openinference": "openinference.instrumentation.openai",
        "loongsuite": "loongsuite.instrumentation.dify",
    }[convention]
