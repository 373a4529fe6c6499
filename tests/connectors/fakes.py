"""In-memory vendors for ``httpx.MockTransport``: state, search lag and injected faults.

Fakes record what was sent (``requests``) rather than mocking calls; tests assert on the
resulting vendor state, which is what "no duplicates" is about.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx

NOW = datetime(2026, 9, 1, 12, 30, tzinfo=UTC)


@dataclass
class Fault:
    method: str
    pattern: str
    kind: str  # "status" (answer without processing), "lose" (commit, then drop), "timeout"
    times: int = 1
    status: int = 500
    headers: dict[str, str] = field(default_factory=dict)
    body: str = '{"error": "injected"}'


class FakeVendor:
    prefix = ""

    def __init__(self) -> None:
        self.requests: list[httpx.Request] = []
        self.faults: list[Fault] = []
        self.validator: Callable[[httpx.Request], None] | None = None

    def fail(self, method: str, pattern: str, kind: str = "status", **kw: Any) -> None:
        self.faults.append(Fault(method, pattern, kind, **kw))

    def sent(self, method: str, pattern: str = "") -> list[httpx.Request]:
        return [r for r in self.requests if r.method == method and re.search(pattern, r.url.path)]

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if self.validator is not None:
            self.validator(request)
        path = request.url.path
        for fault in self.faults:
            if fault.times and fault.method == request.method and re.search(fault.pattern, path):
                fault.times -= 1
                if fault.kind == "timeout":
                    raise httpx.ReadTimeout("injected", request=request)
                if fault.kind == "status":
                    return httpx.Response(fault.status, headers=fault.headers, text=fault.body)
                self.handle(request)  # the vendor commits; the answer never arrives
                raise httpx.RemoteProtocolError("server disconnected", request=request)
        return self.handle(request)

    def handle(self, request: httpx.Request) -> httpx.Response:
        raise NotImplementedError


def body(request: httpx.Request) -> Any:
    return json.loads(request.content) if request.content else None


class FakeZendesk(FakeVendor):
    def __init__(self, field_id: int = 9001) -> None:
        super().__init__()
        self.field_id = field_id
        self.tickets: dict[int, dict[str, Any]] = {}
        self.comments: dict[int, list[dict[str, Any]]] = {}
        self.keys: dict[str, int] = {}
        self.indexed: set[int] = set()  # tickets visible to search (search lags)
        self.index_on_create = False
        self.next_id = 100

    def add_ticket(self, **ticket: Any) -> dict[str, Any]:
        tid = ticket.pop("id", None) or self.next_id
        self.next_id = max(self.next_id, tid) + 1
        ticket = {
            "id": tid,
            "status": "open",
            "tags": [],
            "custom_fields": [],
            "created_at": "2026-09-01T12:00:00Z",
            "external_id": None,
            **ticket,
        }
        self.tickets[tid] = ticket
        self.comments[tid] = []
        self.indexed.add(tid)
        return ticket

    def handle(self, request: httpx.Request) -> httpx.Response:
        path, method, q = request.url.path, request.method, request.url.params
        if method == "GET" and path == "/api/v2/tickets":
            found = [t for t in self.tickets.values() if t["external_id"] == q["external_id"]]
            return httpx.Response(200, json={"tickets": found})
        if method == "GET" and path == "/api/v2/search":
            return httpx.Response(200, json={"results": self._search(q["query"])})
        if method == "POST" and path == "/api/v2/tickets":
            key = request.headers.get("Idempotency-Key")
            if key and key in self.keys:
                ticket = self.tickets[self.keys[key]]
                return httpx.Response(
                    201, json={"ticket": ticket}, headers={"x-idempotency-lookup": "hit"}
                )
            data = body(request)["ticket"]
            ticket = self.add_ticket(
                subject=data["subject"],
                external_id=data.get("external_id"),
                custom_fields=data.get("custom_fields", []),
                tags=data.get("tags", []),
                requester=data.get("requester"),
                priority=data.get("priority"),
                type=data.get("type"),
            )
            if not self.index_on_create:
                self.indexed.discard(ticket["id"])
            self.comments[ticket["id"]].append(dict(data["comment"]))
            if key:
                self.keys[key] = ticket["id"]
            return httpx.Response(
                201, json={"ticket": ticket}, headers={"x-idempotency-lookup": "miss"}
            )
        m = re.fullmatch(r"/api/v2/tickets/(\d+)(/tags|/comments)?", path)
        if m and int(m.group(1)) in self.tickets:
            tid = int(m.group(1))
            ticket = self.tickets[tid]
            if m.group(2) == "/comments" and method == "GET":
                return httpx.Response(200, json={"comments": self.comments[tid]})
            if m.group(2) == "/tags" and method == "PUT":
                for tag in body(request)["tags"]:
                    if tag not in ticket["tags"]:
                        ticket["tags"].append(tag)
                return httpx.Response(200, json={"tags": ticket["tags"]})
            if m.group(2) is None and method == "PUT":
                data = body(request)["ticket"]
                if "tags" in data:
                    ticket["tags"] = data["tags"]
                if "comment" in data:
                    self.comments[tid].append(dict(data["comment"]))
                fields = {f["id"]: f for f in ticket["custom_fields"]}
                fields.update({f["id"]: f for f in data.get("custom_fields", [])})
                ticket["custom_fields"] = list(fields.values())
                return httpx.Response(200, json={"ticket": ticket, "audit": {"events": []}})
        return httpx.Response(404, json={"error": "RecordNotFound"})

    def _search(self, query: str) -> list[dict[str, Any]]:
        terms = dict(re.findall(r"(\S+?)[:<](\S+)", query))
        out = []
        for tid in sorted(self.indexed):
            t = self.tickets[tid]
            ok = True
            for k, v in terms.items():
                if k.startswith("custom_field_"):
                    fid = int(k.removeprefix("custom_field_"))
                    ok &= any(f["id"] == fid and str(f["value"]) == v for f in t["custom_fields"])
                elif k == "requester":
                    ok &= (t.get("requester") or {}).get("email") == v
                elif k == "tags":
                    ok &= v in t["tags"]
                elif k == "status":
                    ok &= t["status"] not in ("solved", "closed")
            if ok:
                out.append({**t, "result_type": "ticket"})
        return out

    def private_comments(self, tid: int) -> list[str]:
        return [c["body"] for c in self.comments[tid] if c.get("public") is False]


class FakeHubSpot(FakeVendor):
    def __init__(self) -> None:
        super().__init__()
        self.contacts: dict[str, dict[str, Any]] = {}
        self.notes: dict[str, dict[str, Any]] = {}
        self.associations: set[tuple[str, str, int]] = set()
        self.indexed: set[str] = set()
        self.index_on_create = False
        self.labels = [
            {"category": "HUBSPOT_DEFINED", "typeId": 202, "label": None},
            {"category": "USER_DEFINED", "typeId": 7, "label": "Primary"},
        ]
        self.next_id = 5000

    def add_contact(self, email: str) -> str:
        cid = str(len(self.contacts) + 1)
        self.contacts[cid] = {"id": cid, "properties": {"email": email}}
        return cid

    def handle(self, request: httpx.Request) -> httpx.Response:
        path, method = request.url.path, request.method
        if method == "POST" and path == "/crm/v3/objects/contacts/search":
            f = body(request)["filterGroups"][0]["filters"][0]
            hits = [c for c in self.contacts.values() if c["properties"]["email"] == f["value"]]
            return httpx.Response(200, json={"total": len(hits), "results": hits[:2]})
        if method == "GET" and path == "/crm/associations/v4/notes/contacts/labels":
            return httpx.Response(200, json={"results": self.labels})
        if method == "POST" and path == "/crm/v3/objects/notes/search":
            hits = [
                self.notes[n]
                for n in sorted(self.indexed)
                if any(self._matches(self.notes[n], g) for g in body(request)["filterGroups"])
            ]
            return httpx.Response(200, json={"total": len(hits), "results": hits})
        if method == "POST" and path == "/crm/v3/objects/notes":
            data = body(request)
            nid = str(self.next_id)
            self.next_id += 1
            self.notes[nid] = {"id": nid, "properties": dict(data["properties"])}
            for a in data["associations"]:
                for t in a["types"]:
                    self.associations.add((nid, a["to"]["id"], t["associationTypeId"]))
            if self.index_on_create:
                self.indexed.add(nid)
            return httpx.Response(201, json=self.notes[nid])
        m = re.fullmatch(r"/crm/v3/objects/notes/(\d+)", path)
        if m and method == "PATCH":
            if m.group(1) not in self.notes:
                return httpx.Response(404, json={"message": "not found"})
            self.notes[m.group(1)]["properties"].update(body(request)["properties"])
            return httpx.Response(200, json=self.notes[m.group(1)])
        m = re.fullmatch(r"/crm/v4/objects/notes/(\d+)/associations/contacts/(\d+)", path)
        if m and method == "PUT":
            for t in body(request):
                self.associations.add((m.group(1), m.group(2), t["associationTypeId"]))
            return httpx.Response(200, json={})
        return httpx.Response(404, json={"message": "no route"})

    @staticmethod
    def _matches(note: dict[str, Any], group: dict[str, Any]) -> bool:
        for f in group["filters"]:
            value = note["properties"].get(f["propertyName"]) or ""
            if f["operator"] == "EQ" and value != f["value"]:
                return False
            if f["operator"] == "CONTAINS_TOKEN" and f["value"] not in value.split():
                return False
        return True


class FakeIntercom(FakeVendor):
    def __init__(self) -> None:
        super().__init__()
        self.conversations: dict[str, dict[str, Any]] = {}
        self.tickets: dict[str, dict[str, Any]] = {}
        self.converts = 0
        self.next_id = 700

    def add_conversation(self, cid: str, *, ticket_id: str | None = None) -> None:
        self.conversations[cid] = {
            "type": "conversation",
            "id": cid,
            "ticket": None,
            "linked_objects": {"type": "list", "data": [], "total_count": 0, "has_more": False},
            "conversation_parts": {"type": "conversation_part.list", "conversation_parts": []},
        }
        if ticket_id:
            self._link(cid, ticket_id)

    def _link(self, cid: str, ticket_id: str) -> None:
        self.tickets.setdefault(ticket_id, {"type": "ticket", "id": ticket_id, "open": True})
        self.conversations[cid]["linked_objects"]["data"].append(
            {"type": "ticket", "id": ticket_id, "category": "Customer"}
        )

    def notes(self, cid: str) -> list[str]:
        parts = self.conversations[cid]["conversation_parts"]["conversation_parts"]
        return [p["body"] for p in parts if p["part_type"] == "note"]

    def handle(self, request: httpx.Request) -> httpx.Response:
        path, method = request.url.path, request.method
        m = re.fullmatch(r"/conversations/(\w+)(/convert|/reply)?", path)
        if m and m.group(1) in self.conversations:
            conv = self.conversations[m.group(1)]
            if method == "GET" and m.group(2) is None:
                return httpx.Response(200, json=conv)
            if method == "POST" and m.group(2) == "/convert":
                if conv["linked_objects"]["data"]:
                    return httpx.Response(
                        400,
                        json={"type": "error.list", "errors": [{"code": "parameter_invalid"}]},
                    )
                self.converts += 1
                tid = str(self.next_id)
                self.next_id += 1
                self._link(m.group(1), tid)
                self.tickets[tid]["ticket_attributes"] = body(request).get("attributes", {})
                return httpx.Response(200, json=self.tickets[tid])
            if method == "POST" and m.group(2) == "/reply":
                data = body(request)
                conv["conversation_parts"]["conversation_parts"].append(
                    {
                        "type": "conversation_part",
                        "part_type": data["message_type"],
                        "body": data["body"],
                    }
                )
                return httpx.Response(200, json=conv)
        m = re.fullmatch(r"/tickets/(\w+)", path)
        if m and method == "PUT" and m.group(1) in self.tickets:
            self.tickets[m.group(1)].update(body(request))
            return httpx.Response(200, json=self.tickets[m.group(1)])
        return httpx.Response(
            404, json={"type": "error.list", "errors": [{"code": "not_found", "message": "nf"}]}
        )
