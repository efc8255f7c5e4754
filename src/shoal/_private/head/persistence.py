"""The control store's durable state: an SQLite file in the head's session directory.

Written through on every change (jobs, the key-value store, actors with their creation
specs, placement groups) and read back when a head starts on an existing session, so a
restarted head finds named and detached actors, groups and jobs where they were. Rows are
msgpack blobs keyed by id: the schema is the code's own dataclasses, versioned by table.

An actor's class bytes are not in its row: each distinct class is one row of ``blobs``,
keyed by its sha256, and the actor row names it in its ``blob`` column (its spec's class
slot is nil on disk). A blob is deleted with the last row naming it. Rows written before
(class bytes inline, no ``blob``) still load.

On open the file is checked (issue 13 item 16): SQLite silently ignores a WAL whose header or
frames fail their checksums, so a damaged WAL would make a restarted head start empty. The
WAL's header and frame checksums are verified before SQLite sees it, then ``PRAGMA
quick_check`` runs; a damaged store raises :class:`CorruptStoreError` naming the file,
unless ``control_store_on_corrupt`` is ``reset``: then the damaged files are kept aside
(``<name>.corrupt-<time>``) and a fresh store is started, with a warning in the log.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import struct
import time

import msgpack

from ..wire.config import config

log = logging.getLogger(__name__)

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (k TEXT PRIMARY KEY, v BLOB);
CREATE TABLE IF NOT EXISTS kv (ns TEXT, key BLOB, value BLOB, PRIMARY KEY (ns, key));
CREATE TABLE IF NOT EXISTS jobs (id INTEGER PRIMARY KEY, data BLOB);
CREATE TABLE IF NOT EXISTS actors (id BLOB PRIMARY KEY, data BLOB, blob BLOB);
CREATE TABLE IF NOT EXISTS pgs (id BLOB PRIMARY KEY, data BLOB);
CREATE TABLE IF NOT EXISTS blobs (hash BLOB PRIMARY KEY, data BLOB);
"""
# After SCHEMA: a store made before the blobs table gets its actors' blob column.
INDEXES = "CREATE INDEX IF NOT EXISTS actors_by_blob ON actors (blob);"


def _pack(obj) -> bytes:
    return msgpack.packb(obj, use_bin_type=True)


def _unpack(b: bytes):
    return msgpack.unpackb(b, raw=False, strict_map_key=False)


class CorruptStoreError(RuntimeError):
    """The head's SQLite store is damaged (the message names the file and the way out)."""


def _wal_checksum(data: bytes, s1: int, s2: int, big: bool) -> tuple[int, int]:
    words = struct.unpack((">" if big else "<") + f"{len(data) // 4}I", data)
    for i in range(0, len(words), 2):
        s1 = (s1 + words[i] + s2) & 0xFFFFFFFF
        s2 = (s2 + words[i + 1] + s1) & 0xFFFFFFFF
    return s1, s2


def wal_damage(wal_path: str) -> str | None:
    """Why the WAL at ``wal_path`` is damaged, or None (absent, empty, or sound). A frame
    that fails its checksum is damage unless it is the torn last frame of a crash, or a
    stale frame from before the WAL was restarted (other salts)."""
    try:
        with open(wal_path, "rb") as f:
            data = f.read()
    except FileNotFoundError:
        return None
    if not data:
        return None
    if len(data) < 32:
        return f"its header is truncated ({len(data)} bytes)"
    magic, _version, page, _seq, salt1, salt2, c1, c2 = struct.unpack(">8I", data[:32])
    if magic not in (0x377F0682, 0x377F0683):
        return f"its header has a bad magic number {magic:#x}"
    big = magic & 1
    if _wal_checksum(data[:24], 0, 0, big) != (c1, c2):
        return "its header fails its checksum"
    if page < 512 or page > 65536 or page & (page - 1):
        return f"its header names a bad page size {page}"
    s1, s2, off, frame = c1, c2, 32, 24 + page
    while off + frame <= len(data):
        hdr = data[off:off + 24]
        _pgno, _commit, fs1, fs2, fc1, fc2 = struct.unpack(">6I", hdr)
        if (fs1, fs2) != (salt1, salt2):
            return None  # stale frames of an earlier WAL generation follow
        s1, s2 = _wal_checksum(hdr[:8] + data[off + 24:off + frame], s1, s2, big)
        if (s1, s2) != (fc1, fc2):
            rest = off + frame
            if rest + frame <= len(data) and data[rest + 8:rest + 16] == data[16:24]:
                return f"frame {(off - 32) // frame} fails its checksum"
            return None  # the torn last frame of a crash: SQLite drops it, as it should
        off += frame
    return None


class HeadStore:
    def __init__(self, session_dir: str):
        self.path = os.path.join(session_dir, "control_store.sqlite3")
        self.existed = os.path.exists(self.path)
        try:
            self.db = self._open_checked()
        except CorruptStoreError as e:
            if config.control_store_on_corrupt != "reset":
                raise
            kept = self._keep_aside()
            log.warning("%s; kept the damaged files as %s and started a fresh store "
                        "(control_store_on_corrupt=reset)", e, ", ".join(kept))
            self.existed = False
            self.db = self._open_checked()
        os.chmod(self.path, 0o600)

    def _open_checked(self) -> sqlite3.Connection:
        why = wal_damage(self.path + "-wal") if self.existed else None
        db = None
        try:
            if why is None:
                db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
                db.execute("PRAGMA journal_mode=WAL")
                db.execute("PRAGMA synchronous=NORMAL")
                if self.existed:
                    rows = [r[0] for r in db.execute("PRAGMA quick_check").fetchall()]
                    if rows != ["ok"]:
                        why = "; ".join(rows[:3])
                if why is None:
                    db.executescript(SCHEMA)
                    columns = [r[1] for r in db.execute("PRAGMA table_info(actors)")]
                    if "blob" not in columns:
                        db.execute("ALTER TABLE actors ADD COLUMN blob BLOB")
                    db.executescript(INDEXES)
                    return db
        except sqlite3.DatabaseError as e:
            why = str(e)
        if db is not None:
            db.close()
        raise CorruptStoreError(
            f"the head's control store {self.path} is damaged: {why}. The head will not "
            "start on it (its actors, jobs and placement groups would be lost silently). "
            "Restore the file from a copy, or set SHOAL_CONTROL_STORE_ON_CORRUPT=reset to "
            "keep it aside and start a fresh store.")

    def _keep_aside(self) -> list[str]:
        stamp = time.strftime("%Y%m%d-%H%M%S")
        kept = []
        for suffix in ("", "-wal", "-shm"):
            src = self.path + suffix
            if os.path.exists(src):
                dst = f"{self.path}.corrupt-{stamp}{suffix}"
                os.replace(src, dst)
                kept.append(dst)
        return kept

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
        """One actor's row; its class bytes, if ``data["class_blob"]`` names them, are left
        out (they are in ``blobs``, written by :meth:`write_actors`)."""
        key = data.get("class_blob")
        spec, bufs = data.get("spec") or {}, data.get("spec_bufs") or []
        i = spec.get("cls")
        if key is not None and isinstance(i, int) and 0 <= i < len(bufs):
            bufs = list(bufs)
            bufs[i] = None
            data = {**data, "spec_bufs": bufs}
        self.db.execute("INSERT OR REPLACE INTO actors VALUES (?, ?, ?)",
                        (actor_id, _pack(data), key))

    def del_actor(self, actor_id: bytes) -> None:
        self.db.execute("DELETE FROM actors WHERE id = ?", (actor_id,))

    def write_actors(self, added: dict[bytes, bytes], rows: list[tuple[bytes, dict]],
                     removed=(), deleted=()) -> None:
        """In one transaction: store the new class blobs, write the actors' rows, delete
        the ``deleted`` actors and the ``removed`` blobs that no row names any more."""
        self.db.execute("BEGIN")
        try:
            self.db.executemany("INSERT OR IGNORE INTO blobs VALUES (?, ?)", added.items())
            for actor_id, data in rows:
                self.put_actor(actor_id, data)
            self.db.executemany("DELETE FROM actors WHERE id = ?", [(a,) for a in deleted])
            self.db.executemany(
                "DELETE FROM blobs WHERE hash = ? AND NOT EXISTS "
                "(SELECT 1 FROM actors WHERE blob = ?)", [(k, k) for k in removed])
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        self.db.execute("COMMIT")

    def drop_unused_blobs(self) -> int:
        """Delete the blobs no actor row names (left by an older head); how many."""
        return self.db.execute("DELETE FROM blobs WHERE hash NOT IN "
                               "(SELECT blob FROM actors WHERE blob IS NOT NULL)").rowcount

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
        """The actors' rows, each with its class bytes back in its spec (one bytes object
        per blob, shared by the rows naming it). A row naming a missing blob comes back
        without its spec, its ``class_blob`` still set."""
        blobs: dict[bytes, bytes | None] = {}
        out = []
        for data, key in self.db.execute("SELECT data, blob FROM actors"):
            row = _unpack(data)
            if key is not None:
                if key not in blobs:
                    got = self.db.execute("SELECT data FROM blobs WHERE hash = ?",
                                          (key,)).fetchone()
                    blobs[key] = got[0] if got else None
                spec, bufs = row.get("spec") or {}, list(row.get("spec_bufs") or [])
                i = spec.get("cls")
                if blobs[key] is not None and isinstance(i, int) and 0 <= i < len(bufs):
                    bufs[i] = blobs[key]
                    row["spec_bufs"] = bufs
                else:
                    log.warning("actor %s names class blob %s, missing from %s: its "
                                "creation spec is lost", row.get("actor_id", b"").hex(),
                                key.hex()[:16], self.path)
                    row["spec"], row["spec_bufs"] = None, []
                row["class_blob"] = key
            out.append(row)
        return out

    def pgs(self) -> list[dict]:
        return [_unpack(d) for (d,) in self.db.execute("SELECT data FROM pgs")]

    def close(self) -> None:
        self.db.close()
