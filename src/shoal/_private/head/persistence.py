"""The control store's durable state: an SQLite file in the head's session directory.

Written through on every change (jobs, the key-value store, actors with their creation
specs, placement groups) and read back when a head starts on an existing session, so a
restarted head finds named and detached actors, groups and jobs where they were. Rows are
msgpack blobs keyed by id: the schema is the code's own dataclasses, versioned by table.
"""

from __future__ import annotations

import os
import sqlite3

import msgpack

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (k TEXT PRIMARY KEY, v BLOB);
CREATE TABLE IF NOT EXISTS kv (ns TEXT, key BLOB, value BLOB, PRIMARY KEY (ns, key));
CREATE TABLE IF NOT EXISTS jobs (id INTEGER PRIMARY KEY, data BLOB);
CREATE TABLE IF NOT EXISTS actors (id BLOB PRIMARY KEY, data BLOB);
CREATE TABLE IF NOT EXISTS pgs (id BLOB PRIMARY KEY, data BLOB);
"""


def _pack(obj) -> bytes:
    return msgpack.packb(obj, use_bin_type=True)


def _unpack(b: bytes):
    return msgpack.unpackb(b, raw=False, strict_map_key=False)


class HeadStore:
    def __init__(self, session_dir: str):
        self.path = os.path.join(session_dir, "control_store.sqlite3")
        self.existed = os.path.exists(self.path)
        self.db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=NORMAL")
        self.db.executescript(SCHEMA)
        os.chmod(self.path, 0o600)

    # -- writes ---------------------------------------------------------------------------
    def set_meta(self, key: str, value) -> None:
        self.db.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, _pack(value)))

    def put_kv(self, ns: str, key: bytes, value: bytes) -> None:
        self.db.execute("INSERT OR REPLACE INTO kv VALUES (?, ?, ?)", (ns, key, value))

    def del_kv(self, ns: str, key: bytes) -> None:
        self.db.execute("DELETE FROM kv WHERE ns = ? AND key = ?", (ns, key))

    def put_job(self, job_id: int, data: dict) -> None:
        self.db.execute("INSERT OR REPLACE INTO jobs VALUES (?, ?)", (job_id, _pack(data)))

    def put_actor(self, actor_id: bytes, data: dict) -> None:
        self.db.execute("INSERT OR REPLACE INTO actors VALUES (?, ?)", (actor_id, _pack(data)))

    def put_pg(self, pg_id: bytes, data: dict) -> None:
        self.db.execute("INSERT OR REPLACE INTO pgs VALUES (?, ?)", (pg_id, _pack(data)))

    # -- reads ----------------------------------------------------------------------------
    def meta(self, key: str, default=None):
        row = self.db.execute("SELECT v FROM meta WHERE k = ?", (key,)).fetchone()
        return _unpack(row[0]) if row else default

    def kv(self) -> dict:
        return {(ns, k): v for ns, k, v in self.db.execute("SELECT ns, key, value FROM kv")}

    def jobs(self) -> dict[int, dict]:
        return {i: _unpack(d) for i, d in self.db.execute("SELECT id, data FROM jobs")}

    def actors(self) -> list[dict]:
        return [_unpack(d) for (d,) in self.db.execute("SELECT data FROM actors")]

    def pgs(self) -> list[dict]:
        return [_unpack(d) for (d,) in self.db.execute("SELECT data FROM pgs")]

    def close(self) -> None:
        self.db.close()
