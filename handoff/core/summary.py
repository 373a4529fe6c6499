"""Text for humans: the agent summary (ticket private note) and the CRM note body.

``agent_summary`` is agent-only and is the one place internal context is written out.
``crm_body`` leaves internal context out: a CRM note is internal to the company but is
read far more widely than a ticket's private note (marketing, sales, exports), and the
contract allows internal values only in agent-only places.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable
from typing import Any

from handoff.core.state import ConversationState
from handoff.core.tags import base_tags

DEFAULT_CRM_LIMIT = 65_536
TRUNCATED = "\n[truncated]"
_VALUE_CHARS = 200
_QUOTE_CHARS = 300


def _val(value: Any, limit: int = _VALUE_CHARS) -> str:
    text = value if isinstance(value, str) else str(value)
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _pairs(items: dict[str, Any], empty: str = "none") -> str:
    if not items:
        return empty
    return ", ".join(f"{_val(k, 60)}={_val(v)}" for k, v in sorted(items.items()))


def _quote(text: str | None) -> str:
    return f'"{_val(text, _QUOTE_CHARS)}"' if text else "(nothing yet)"


def asked_text(state: ConversationState) -> str | None:
    """What the customer asked: the first substantive message, else the first message."""
    return state.issue_message or state.first_message


def _identity_line(state: ConversationState) -> str:
    email, name, external, verified = state.requester()
    who = " ".join(p for p in (_val(name) if name else None, f"<{email}>" if email else None) if p)
    parts = [who or "unknown customer", "verified" if verified else "unverified"]
    if external:
        parts.append(f"external id {_val(external)}")
    return ", ".join(parts)


def _bot_line(state: ConversationState) -> str:
    steps = ", ".join(_val(s, 60) for s in state.steps_tried) or "no steps"
    return (
        f"{steps} (answered {state.bot_answered}, asked {state.bot_asked}, "
        f"failed {state.bot_failed})"
    )


def _sentiment_line(state: ConversationState) -> str:
    if state.sentiment_last is None:
        text = "no sentiment scores"
    else:
        text = f"last {state.sentiment_last:+.2f}, lowest {state.sentiment_min or 0.0:+.2f}"
    text += f"; negative streak {state.negative_streak}"
    if state.angry:
        text += "; anger detected"
    if state.human_requested:
        text += "; asked for a human"
    return text


def agent_summary(state: ConversationState, reasons: Iterable[str]) -> str:
    """The ticket's private note: 7-8 bullets, the last customer messages, failed steps.

    Built from the whole conversation, not the last message: "Customer asked" quotes the
    first substantive message, so a conversation ending in "thanks" still names the issue.
    The last bullet, internal context, is present only when there is any.
    """
    ctx = {k: v for k, v in state.context.items() if isinstance(v, str | int | float | bool)}
    intent = state.intent or "unknown"
    conf = f" (confidence {state.confidence:.2f})" if state.confidence is not None else ""
    others = [i for i in state.intents_seen if i != state.intent]
    seen = f"; also seen: {', '.join(others)}" if others else ""
    where = f"channel {state.channel or 'unknown'}, language {state.language or 'unknown'}"
    reason_list = ", ".join(reasons) or "none"
    bullets = [
        f"Customer: {_identity_line(state)}; {where}; context: {_pairs(ctx)}",
        f"Intent: {intent}{conf}{seen}",
        f"Customer asked: {_quote(asked_text(state))} ({state.customer_turns} customer turns)",
        f"Entities: {_pairs(state.entities, 'none collected')}",
        f"Bot tried: {_bot_line(state)}",
        f"Sentiment: {_sentiment_line(state)}",
        f"Escalation reasons: {reason_list} (attempt {max(state.attempt, 1)})",
    ]
    if state.internal_context:
        bullets.append(
            f"Agent-only context (never share with the customer): {_pairs(state.internal_context)}"
        )
    lines = [f"- {b}" for b in bullets]
    lines.append("")
    lines.append("Last customer messages:")
    lines.extend(f"> {_val(m, _QUOTE_CHARS)}" for m in state.last_messages or ("(none)",))
    lines.append("")
    lines.append("Failed bot steps:")
    lines.extend(f"- {_val(s, 80)}" for s in state.failed_steps or ("(none)",))
    return "\n".join(lines)


def crm_tags(state: ConversationState) -> list[str]:
    """Tags on the CRM note: escalation, intent, language, disposition."""
    tags = base_tags(state, escalated=state.escalated)
    if state.disposition:
        tags.append(f"disposition_{state.disposition}")
    return tags


def crm_body(state: ConversationState, limit: int = DEFAULT_CRM_LIMIT) -> str:
    """The CRM note body, at most ``limit`` UTF-16 code units (so also ``limit`` characters).

    The ticket line comes first so truncation can never drop it. Internal context is
    left out (see the module docstring).
    """
    ticket = state.ticket_url or state.ticket_id
    lines = [
        f"Ticket: {_val(ticket, 2000)}" if ticket else "Ticket: none",
        f"Customer: {_identity_line(state)}",
        f"Conversation: {_val(state.conversation_id)} "
        f"(channel {state.channel or 'unknown'}, language {state.language or 'unknown'})",
        f"Intent: {state.intent or 'unknown'}",
        f"Customer asked: {_quote(asked_text(state))}",
        f"Bot attempted: {_bot_line(state)}",
        f"Key entities: {_pairs(state.entities)}",
        f"Disposition: {state.disposition or 'open'}",
        f"Escalation reasons: {', '.join(state.reasons) or 'none'}",
        f"Tags: {', '.join(crm_tags(state))}",
    ]
    if state.csat is not None:
        lines.append(f"CSAT: {state.csat}/5")
    if state.failed_steps:
        lines.append(f"Failed bot steps: {', '.join(_val(s, 80) for s in state.failed_steps)}")
    return truncate("\n".join(lines), limit)


def utf16_len(text: str) -> int:
    """Length in UTF-16 code units, the unit most CRM and helpdesk limits count in."""
    return len(text.encode("utf-16-le", "surrogatepass")) // 2


def _joined(prev: str, nxt: str) -> bool:
    """True when cutting between ``prev`` and ``nxt`` would split one visible character."""
    o = ord(nxt)
    return (
        unicodedata.combining(nxt) != 0
        or prev == "\u200d"
        or o == 0x200D
        or 0xFE00 <= o <= 0xFE0F  # variation selectors
        or 0x1F3FB <= o <= 0x1F3FF  # skin tone modifiers
        or 0xE0020 <= o <= 0xE007F  # emoji tag sequences
        or 0xE0100 <= o <= 0xE01EF
        or (0x1F1E6 <= o <= 0x1F1FF and 0x1F1E6 <= ord(prev) <= 0x1F1FF)  # flags
        or 0xDC00 <= o <= 0xDFFF  # a lone low surrogate belongs to what precedes it
    )


def truncate(text: str, limit: int, marker: str = TRUNCATED) -> str:
    """``text`` cut to at most ``limit`` UTF-16 units, ending in ``marker`` when cut.

    The cut never splits a surrogate pair, a base character from its combining marks, or
    an emoji ZWJ/modifier/flag sequence: it backs off to the previous boundary.
    """
    raw = text.encode("utf-16-le", "surrogatepass")
    if len(raw) // 2 <= limit:
        return text
    budget = max(limit - utf16_len(marker), 0)
    head = raw[: budget * 2].decode("utf-16-le", "surrogatepass")
    if head and 0xD800 <= ord(head[-1]) <= 0xDBFF:
        head = head[:-1]
    cut = len(head)
    while cut > 0 and _joined(text[cut - 1], text[cut]):
        cut -= 1
    return text[:cut] + marker if budget else marker[:limit]
