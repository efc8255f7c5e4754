"""A damaged control store is refused loudly, naming the file, or kept aside and replaced
by a fresh one only when ``control_store_on_corrupt=reset`` (issue 13 item 16). Before, a
corrupt WAL was dropped by SQLite without a word and the head came back empty."""

from __future__ import annotations

import logging
import os
import shutil

import pytest

from shoal._private.head.persistence import CorruptStoreError, HeadStore

NAME = "control_store.sqlite3"


def _killed_head_files(tmp_path, jobs: int = 20) -> str:
    """A session dir holding the store as a killed head leaves it: db plus a live WAL."""
    live, killed = tmp_path / "live", tmp_path / "killed"
    live.mkdir()
    killed.mkdir()
    store = HeadStore(str(live))
    for i in range(jobs):
        store.put_job(i, {"job": i, "pad": "x" * 3000})
    for suffix in ("", "-wal"):  # copied while the head still has it open
        shutil.copy(live / (NAME + suffix), killed / (NAME + suffix))
    store.close()
    assert os.path.getsize(killed / (NAME + "-wal")) > 32
    return str(killed)


def _flip(path: str, offset: int) -> None:
    with open(path, "r+b") as f:
        f.seek(offset)
        b = f.read(1)
        f.seek(offset)
        f.write(bytes([b[0] ^ 0xFF]))


def test_sound_store_recovers_everything(tmp_path):
    session = _killed_head_files(tmp_path)
    assert len(HeadStore(session).jobs()) == 20


def test_torn_last_wal_frame_is_not_damage(tmp_path):
    session = _killed_head_files(tmp_path)
    wal = os.path.join(session, NAME + "-wal")
    with open(wal, "r+b") as f:
        f.truncate(os.path.getsize(wal) - 100)
    HeadStore(session)  # a crash mid-write: SQLite drops the torn frame, the head starts


@pytest.mark.parametrize("where", ["wal header", "wal frame", "db page"])
def test_damaged_store_is_refused_naming_the_file(tmp_path, where):
    session = _killed_head_files(tmp_path)
    wal = os.path.join(session, NAME + "-wal")
    if where == "wal header":
        _flip(wal, 20)
    elif where == "wal frame":
        _flip(wal, 32 + 24 + 100)  # inside the first frame's page
    else:
        os.unlink(wal)  # a cleanly closed store: everything in the db file itself
        shutil.copy(tmp_path / "live" / NAME, os.path.join(session, NAME))
        assert os.path.getsize(os.path.join(session, NAME)) > 4096 * 4
        with open(os.path.join(session, NAME), "r+b") as f:
            f.seek(4096)
            f.write(os.urandom(4096 * 2))
    with pytest.raises(CorruptStoreError) as e:
        HeadStore(session)
    assert os.path.join(session, NAME) in str(e.value)
    assert "SHOAL_CONTROL_STORE_ON_CORRUPT=reset" in str(e.value)


def test_reset_keeps_the_damaged_files_aside(tmp_path, monkeypatch, caplog):
    session = _killed_head_files(tmp_path)
    _flip(os.path.join(session, NAME + "-wal"), 32 + 24 + 100)
    monkeypatch.setenv("SHOAL_CONTROL_STORE_ON_CORRUPT", "reset")
    with caplog.at_level(logging.WARNING):
        store = HeadStore(session)
    assert store.jobs() == {} and not store.existed
    kept = sorted(n for n in os.listdir(session) if ".corrupt-" in n)
    assert len(kept) == 2 and kept[1].endswith("-wal")
    assert "damaged" in caplog.text and "kept the damaged files" in caplog.text
