"""SQLite storage for the sandbox: one table per vendor object, each row a JSON document.

The sandbox runs on a single event loop, and every query here is a few rows on a
local database, so the handlers call this synchronously. Filtering for the fake
search endpoints happens in Python over ``rows()``: the data sets are small and
the matching rules (Zendesk query syntax, HubSpot filter groups, Intercom search
queries) are easier to read in Python than in SQL.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

TABLES = (
    "zd_tickets",
    "zd_comments",
    "zd_users",
    "zd_idempotency",
    "hs_notes",
    "hs_contacts",
    "hs_assoc",
    "ic_conversations",
    "ic_tickets",
)

# First ids per table, so ids look like each vendor's (and never collide across vendors
# in a listing). AUTOINCREMENT continues from the value stored in sqlite_sequence.
_FIRST_IDS = {
    "zd_tickets": 1000,
    "zd_comments": 40_000_000_000,
    "zd_users": 9_000_000,
    "hs_notes": 50_000_000_000,
    "hs_contacts": 100,
    "ic_tickets": 700_000_000,
}

_SCHEMA = """
CREATE TABLE IF NOT EXISTS zd_tickets (
    id INTEGER PRIMARY KEY AUTOINCREMENT, key TEXT, created_ts REAL NOT NULL, doc TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS zd_comments (
    id INTEGER PRIMARY KEY AUTOINCREMENT, key TEXT, created_ts REAL NOT NULL, doc TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS zd_users (
    id INTEGER PRIMARY KEY AUTOINCREMENT, key TEXT UNIQUE, created_ts REAL NOT NULL,
    doc TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS zd_idempotency (
    id INTEGER PRIMARY KEY AUTOINCREMENT, key TEXT UNIQUE, created_ts REAL NOT NULL,
    doc TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS hs_notes (
    id INTEGER PRIMARY KEY AUTOINCREMENT, key TEXT, created_ts REAL NOT NULL, doc TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS hs_contacts (
    id INTEGER PRIMARY KEY AUTOINCREMENT, key TEXT, created_ts REAL NOT NULL, doc TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS hs_assoc (
    id INTEGER PRIMARY KEY AUTOINCREMENT, key TEXT UNIQUE, created_ts REAL NOT NULL,
    doc TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS ic_conversations (
    id INTEGER PRIMARY KEY, key TEXT, created_ts REAL NOT NULL, doc TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS ic_tickets (
    id INTEGER PRIMARY KEY AUTOINCREMENT, key TEXT, created_ts REAL NOT NULL, doc TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS zd_comments_key ON zd_comments(key);
CREATE INDEX IF NOT EXISTS zd_tickets_key ON zd_tickets(key);
CREATE INDEX IF NOT EXISTS ic_tickets_key ON ic_tickets(key);
"""


@dataclass(frozen=True)
class Row:
    """One stored object: its id, a lookup key (may be None), creation time and document."""

    id: int
    key: str | None
    created_ts: float
    doc: dict[str, Any]


class Store:
    """A tiny document store over sqlite3; ``db_path`` may be ``":memory:"`` or a file."""

    def __init__(self, db_path: str = ":memory:") -> None:
        self.db_path = db_path
        self._conn = sqlite3.connect(db_path, isolation_level=None)
        if db_path != ":memory:":
            self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.executescript(_SCHEMA)
        self._seed_sequences()

    def _seed_sequences(self) -> None:
        for table, first in _FIRST_IDS.items():
            row = self._conn.execute(
                "SELECT seq FROM sqlite_sequence WHERE name = ?", (table,)
            ).fetchone()
            if row is None:
                self._conn.execute(
                    "INSERT INTO sqlite_sequence(name, seq) VALUES (?, ?)", (table, first - 1)
                )

    def close(self) -> None:
        self._conn.close()

    def insert(
        self,
        table: str,
        doc: dict[str, Any],
        *,
        created_ts: float,
        key: str | None = None,
        id: int | None = None,
    ) -> int:
        """Insert a document and return its id (given, or the next in the table's sequence)."""
        _check(table)
        cur = self._conn.execute(
            f"INSERT INTO {table}(id, key, created_ts, doc) VALUES (?, ?, ?, ?)",
            (id, key, created_ts, json.dumps(doc)),
        )
        assert cur.lastrowid is not None
        return id if id is not None else cur.lastrowid

    def update(self, table: str, id: int, doc: dict[str, Any]) -> None:
        _check(table)
        self._conn.execute(f"UPDATE {table} SET doc = ? WHERE id = ?", (json.dumps(doc), id))

    def get(self, table: str, id: int) -> Row | None:
        _check(table)
        row = self._conn.execute(
            f"SELECT id, key, created_ts, doc FROM {table} WHERE id = ?", (id,)
        ).fetchone()
        return _row(row) if row else None

    def by_key(self, table: str, key: str) -> list[Row]:
        _check(table)
        rows = self._conn.execute(
            f"SELECT id, key, created_ts, doc FROM {table} WHERE key = ? ORDER BY id", (key,)
        ).fetchall()
        return [_row(r) for r in rows]

    def delete_key(self, table: str, key: str) -> None:
        _check(table)
        self._conn.execute(f"DELETE FROM {table} WHERE key = ?", (key,))

    def rows(self, table: str) -> Iterator[Row]:
        _check(table)
        for r in self._conn.execute(f"SELECT id, key, created_ts, doc FROM {table} ORDER BY id"):
            yield _row(r)

    def count(self, table: str) -> int:
        _check(table)
        (n,) = self._conn.execute(f"SELECT COUNT(*) FROM {table}").fetchone()
        return int(n)

    def reset(self) -> None:
        """Delete every row; id sequences keep counting, so old ids never come back."""
        for table in TABLES:
            self._conn.execute(f"DELETE FROM {table}")


def _check(table: str) -> None:
    # Table names are interpolated into SQL; only our own constants are allowed.
    if table not in TABLES:
        raise ValueError(f"unknown sandbox table {table!r}")


def _row(r: tuple[Any, ...]) -> Row:
    return Row(id=int(r[0]), key=r[1], created_ts=float(r[2]), doc=json.loads(r[3]))
