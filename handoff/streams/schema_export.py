"""JSON Schema files for the contract, generated from the models.

``python -m handoff.streams.schema_export schemas`` (``make schemas``) writes them; a test
checks that the committed files equal what the code generates, so chat platforms can
validate events before they produce, against exactly what the worker accepts.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import orjson
from pydantic import BaseModel

from handoff.streams.commands import ConnectorResult, CrmNoteCommand, DeadLetter, TicketCommand
from handoff.streams.events import EVENT_ADAPTER

RECORDS: dict[str, type[BaseModel]] = {
    "ticket-command": TicketCommand,
    "crm-note-command": CrmNoteCommand,
    "connector-result": ConnectorResult,
    "dead-letter": DeadLetter,
}


def schemas() -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {"event": EVENT_ADAPTER.json_schema()}
    out["event"]["title"] = "Event"
    for name, model in RECORDS.items():
        out[name] = model.model_json_schema()
    for schema in out.values():
        schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    return out


def render(schema: dict[str, Any]) -> bytes:
    return orjson.dumps(schema, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS) + b"\n"


def write(folder: Path) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, schema in schemas().items():
        path = folder / f"{name}.schema.json"
        path.write_bytes(render(schema))
        paths.append(path)
    return paths


if __name__ == "__main__":
    for p in write(Path(sys.argv[1] if len(sys.argv) > 1 else "schemas")):
        print(p)
