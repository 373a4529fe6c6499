"""Typed access to the changelog-backed conversation table.

The Faust table holds raw bytes (orjson of ``ConversationState.dump()``) keyed by the
``conversation_id`` bytes of the input record, so its changelog is partitioned exactly
like ``conversation-events`` and a worker that owns a partition owns its state.
Serialising here, not in a Faust codec, keeps one place that knows the wire form.
"""

from __future__ import annotations

from collections.abc import MutableMapping

import orjson

from handoff.core.state import ConversationState

TABLE_NAME = "conversations"


class ConversationTable:
    def __init__(self, table: MutableMapping[bytes, bytes]) -> None:
        self._table = table

    def get(self, conversation_id: bytes) -> ConversationState | None:
        raw = self._table.get(conversation_id)
        if raw is None:
            return None
        return ConversationState.load(orjson.loads(raw))

    def put(self, conversation_id: bytes, state: ConversationState) -> None:
        self._table[conversation_id] = orjson.dumps(state.dump())

    def raw(self, conversation_id: bytes) -> dict[str, object] | None:
        raw = self._table.get(conversation_id)
        return None if raw is None else orjson.loads(raw)
