"""Tags and other customer-visible labels, derived only from customer-visible facts.

Tags are customer-visible (contract section 3), so they come from the intent name, the
language tag and reason codes: never from internal context.
"""

from __future__ import annotations

import re

from handoff.core.state import ConversationState

_SLUG = re.compile(r"[^a-z0-9]+")


def slug(text: str, limit: int = 60) -> str:
    """Lower-case ``[a-z0-9_]`` form of ``text`` ("Order Status!" -> "order_status")."""
    return _SLUG.sub("_", text.lower()).strip("_")[:limit] or "unknown"


def lang_tag(language: str | None) -> str | None:
    """``lang_<primary subtag>``: ``pt-BR`` -> ``lang_pt``; None without a language."""
    if not language:
        return None
    primary = _SLUG.sub("", language.replace("_", "-").split("-", 1)[0].lower())
    return f"lang_{primary}" if primary else None


def base_tags(state: ConversationState, *, escalated: bool) -> list[str]:
    """``bot_escalated`` (when escalated), ``intent_<name>``, ``lang_<xx>``,
    ``missing_required_entity`` when that reason applies to the current attempt."""
    tags = ["bot_escalated"] if escalated else []
    tags.append(f"intent_{slug(state.intent or 'unknown')}")
    lang = lang_tag(state.language)
    if lang:
        tags.append(lang)
    if "missing_required_entity" in state.reasons:
        tags.append("missing_required_entity")
    return tags
