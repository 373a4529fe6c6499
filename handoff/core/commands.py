"""Building the commands a decision emits, from the new state (contract sections 4-5).

Customer-visible fields (subject, public description, tags, requester) are built only from
what the customer said or the helpdesk knows; internal context goes to custom fields and
the private note alone.
"""

from __future__ import annotations

import uuid
from typing import Any

from handoff.core.policy import Policy
from handoff.core.state import ConversationState, clip
from handoff.core.summary import agent_summary, asked_text, crm_body, crm_tags
from handoff.core.tags import base_tags
from handoff.streams.commands import Contact, CrmNoteCommand, Requester, TicketCommand

COMMAND_NAMESPACE = uuid.UUID("5b0c3f1e-8d2a-5c47-9e61-0a7d4f2b9c18")
_SCALAR = (str, int, float, bool)


def command_id(conversation_id: str, source_id: str, kind: str, index: int) -> str:
    """Deterministic: the same input always yields the same command id (uuid5)."""
    return str(
        uuid.uuid5(COMMAND_NAMESPACE, f"{conversation_id}\x1f{source_id}\x1f{kind}\x1f{index}")
    )


def ticket_key(conversation_id: str, attempt: int) -> str:
    return f"{conversation_id}:escalation:{attempt}"


def crm_key(conversation_id: str) -> str:
    return f"{conversation_id}:crm-note"


def _custom_fields(s: ConversationState) -> dict[str, Any]:
    """Agent-only fields: context, entities and internal context (scalars), then ours."""
    fields: dict[str, Any] = {}
    for source in (s.context, s.entities, s.internal_context):
        for k, v in source.items():
            if isinstance(v, _SCALAR):
                fields[k] = v
    fields.update(
        bot_conversation_id=s.conversation_id,
        intent=s.intent,
        channel=s.channel,
        language=s.language,
        escalation_attempt=s.attempt,
    )
    return fields


def subject(s: ConversationState) -> str:
    """Customer-visible: the intent in words plus order/invoice number, never internal."""
    title = (s.intent or "support request").replace("_", " ").strip().capitalize()
    keys = [
        f"{label} {clip(str(s.entities[k]), 40)}"
        for k, label in (("order_id", "order"), ("invoice_id", "invoice"))
        if isinstance(s.entities.get(k), _SCALAR)
    ]
    return clip(f"{title}: {', '.join(keys)}" if keys else title, 150)


def public_description(s: ConversationState) -> str:
    """Customer-visible first comment: the customer's own words and the reference only."""
    asked = asked_text(s)
    lines = ["Your conversation with our assistant has been passed to our support team."]
    if asked:
        lines.append(f'Your request: "{clip(asked, 500)}"')
    lines.append(f"Reference: {s.conversation_id}")
    return "\n".join(lines)


def dedupe_key(s: ConversationState) -> str | None:
    """``email|intent|order_id=...`` for cross-conversation dedupe, or None."""
    email = s.requester()[0]
    if not email or not s.intent:
        return None
    for k in ("order_id", "invoice_id"):
        v = s.entities.get(k)
        if isinstance(v, _SCALAR) and str(v).strip():
            return f"{email}|{s.intent}|{k}={str(v).strip()}"
    return None


def ticket_command(
    s: ConversationState, action: str, notes: list[str], cid: str, policy: Policy
) -> TicketCommand:
    """A ``create`` (private note = the agent summary) or an ``update`` (the new notes)."""
    ip = policy.intent(s.intent)
    email, name, external, verified = s.requester()
    if action == "create":
        note = agent_summary(s, s.reasons)
    else:
        note = "\n".join(f"- {n}" for n in notes)
        if s.disposition == "reopened":
            note += "\n\n" + agent_summary(s, s.reasons)
    return TicketCommand(
        command_id=cid,
        idempotency_key=ticket_key(s.conversation_id, max(s.attempt, 1)),
        conversation_id=s.conversation_id,
        ticket_id=s.ticket_id,
        requester=Requester(email=email, name=name, external_id=external, verified=verified),
        subject=subject(s),
        intent=s.intent,
        priority=ip.priority,
        ticket_type=ip.ticket_type,
        custom_fields=_custom_fields(s),
        tags_add=base_tags(s, escalated=True),
        private_note=note,
        transcript_ref=f"handoff://conversations/{s.conversation_id}/transcript",
        escalation_reasons=list(s.reasons),
        disposition=s.disposition or "escalated_to_agent",
        attempt=max(s.attempt, 1),
        action="create" if action == "create" else "update",
        public_description=public_description(s),
        dedupe_key=dedupe_key(s),
    )


def crm_command(s: ConversationState, cid: str, policy: Policy) -> CrmNoteCommand:
    return CrmNoteCommand(
        command_id=cid,
        idempotency_key=crm_key(s.conversation_id),
        conversation_id=s.conversation_id,
        contact=Contact(email=s.requester()[0], crm_contact_id=s.crm_contact_id),
        note_id=s.crm_note_id,
        body=crm_body(s, policy.crm_body_limit),
        tags=crm_tags(s),
        disposition=s.disposition or "escalated_to_agent",
        ticket_url=s.ticket_url,
    )
