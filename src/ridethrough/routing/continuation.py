"""Mid-stream continuation: the request that asks a target to finish an answer another began.

A committed stream that dies (cut, stalled past the idle limit, an in-band error) has given
the client part of an answer. The faithful way to finish it is a *prefill*: the original
request plus the text already sent as a partial assistant turn, which the model continues
word for word instead of starting over. So a continuation goes only to a target that takes
a prefill (``capabilities.prefill``, or learned from its 400), and whatever it sends is
spliced into the client's stream (protocols/splice.py). Where no target can, the client gets
the clean in-band error, as without continuation.

This module builds that request (in the client's own format, so the usual translation
applies) and orders the targets that may take it.
"""

from __future__ import annotations

import copy
import dataclasses
from typing import Any

from ridethrough.protocols.splice import Cut
from ridethrough.routing.clock import Clock
from ridethrough.routing.deadline import Deadline
from ridethrough.routing.plan import Target
from ridethrough.routing.request import InboundRequest


def continuation_request(req: InboundRequest, cut: Cut, clock: Clock) -> InboundRequest:
    """``req`` with the answer so far as a trailing assistant turn (merged into the client's
    own prefill, if it sent one), and ``max_tokens`` reduced by what was already generated.
    Its deadline is new: after the commit point the client is reading, not waiting."""
    body = copy.copy(req.body)
    messages = list(body.get("messages") or [])
    if cut.prefill:
        messages = _with_prefill(messages, cut.prefill, req.format)
    body["messages"] = messages
    if cut.restart_tool and not cut.prefill:
        # Nothing but the tool call's opening was sent: ask for exactly that tool, so the
        # model does not write text first (the client has the call open, text cannot go in).
        body["tool_choice"] = {"type": "tool", "name": cut.restart_tool} if req.format == "anthropic" \
            else {"type": "function", "function": {"name": cut.restart_tool}}
    # What the client allowed, less what was generated: counted generously (a delta may hold
    # several tokens; ~4 characters a token), so the whole answer never exceeds the limit.
    spent = max(cut.output_tokens, -(-len(cut.prefill) // 4))
    for key in ("max_tokens", "max_completion_tokens"):
        if isinstance(body.get(key), int) and not isinstance(body[key], bool):
            body[key] = max(1, body[key] - spent)
    return dataclasses.replace(req, body=body, deadline=Deadline.start(clock, req.route.deadline_s),
                               continuation=True)


def _with_prefill(messages: list[Any], text: str, fmt: str) -> list[Any]:
    last = messages[-1] if messages else None
    if isinstance(last, dict) and last.get("role") == "assistant":
        # The client prefilled this answer itself: the model's text followed its own.
        content = last.get("content")
        if isinstance(content, str) or content is None:
            merged: Any = (content or "") + text
        else:
            merged = [*content, {"type": "text", "text": text}]
        return [*messages[:-1], {**last, "content": merged}]
    return [*messages, {"role": "assistant", "content": text}]


def order_candidates(available: list[Target], cut_target: Target, refused: set[str]) -> list[Target]:
    """Targets that may continue: those that take a prefill (declared, and not since refused),
    in the route's order, the target that was cut last (asked only if still healthy)."""
    able = [t for t in available if t.caps.prefill and t.key not in refused]
    return [t for t in able if t.key != cut_target.key] + \
        [t for t in able if t.key == cut_target.key]
