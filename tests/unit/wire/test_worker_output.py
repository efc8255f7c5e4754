"""Worker output: Ray's driver prefixes, the in-band name marks, and a node's pipe reader."""

from __future__ import annotations

import asyncio
import io
import os

import pytest

from shoal._private.node import output as node_output
from shoal._private.runtime.core import log_prefix
from shoal._private.wire import worker_output


def test_prefix_names_the_task_or_actor_and_other_nodes(monkeypatch):
    monkeypatch.setenv("RAY_COLOR_PREFIX", "0")
    here = "10.0.0.1"
    assert log_prefix({"pid": 12, "ip": here, "name": "square"}, here) == "(square pid=12) "
    assert log_prefix({"pid": 12, "ip": here}, here) == "(pid=12) "
    assert log_prefix({"pid": 7, "ip": "10.0.0.2", "name": "A(1)"}, here) == \
        "(A(1) pid=7, ip=10.0.0.2) "


def test_prefix_colours_follow_ray_color_prefix(monkeypatch):
    monkeypatch.delenv("RAY_COLOR_PREFIX", raising=False)
    body = {"pid": 12, "ip": "127.0.0.1", "name": "f"}
    assert log_prefix(body, "127.0.0.1") == "\x1b[36m(f pid=12)\x1b[0m "
    monkeypatch.setenv("RAY_COLOR_PREFIX", "1")
    other = log_prefix({**body, "pid": 13}, "127.0.0.1")
    assert log_prefix(body, "127.0.0.1") != other and other.endswith("(f pid=13)\x1b[0m ")


def test_actor_name_is_the_repr_only_when_the_class_defines_one():
    class Plain:
        pass

    class Shown:
        def __repr__(self):
            return "Shown(3)"

    class Broken:
        def __repr__(self):
            raise RuntimeError("no")

    assert worker_output.actor_name(Plain()) == "Plain"
    assert worker_output.actor_name(Shown()) == "Shown(3)"
    assert worker_output.actor_name(Broken()) == "Broken"


def test_named_stream_announces_a_new_name_once_before_its_output(monkeypatch):
    raw = io.BytesIO()
    original = io.TextIOWrapper(raw, encoding="utf-8", write_through=True)
    stream = worker_output._NamedStream(original)
    monkeypatch.setattr(worker_output, "_streams", [stream])
    monkeypatch.setattr(worker_output, "_name", None)
    worker_output.set_name("f")
    stream.write("partial")
    worker_output.set_name("g")
    worker_output.set_name("g")
    stream.write("one\n")
    stream.write("two\n")
    mark = worker_output.MARK
    assert raw.getvalue() == mark + b"f\npartial\n" + mark + b"g\none\ntwo\n"


class _Daemon:
    def __init__(self):
        self.ip = "127.0.0.1"
        self.sent = []
        self.log_subscribers = {1: {self}}
        self.closed = False
        self.procs = {}

    def send(self, kind, msg):  # the driver's connection
        self.sent.append((kind, msg))


class _Worker:
    pid = 42
    job_id = 1

    def __init__(self):
        self.log_file = io.BytesIO()
        self.readers = []


def test_reader_sends_batches_under_announced_names_and_flushes():
    async def main():
        daemon, wp = _Daemon(), _Worker()
        daemon.procs[b"w"] = wp
        r, w = os.pipe()
        reader = node_output.OutputReader(daemon, wp, False)
        wp.readers.append(reader)
        transport, _ = await asyncio.get_running_loop().connect_read_pipe(
            lambda: reader, os.fdopen(r, "rb", buffering=0))
        os.write(w, b"a\n" + worker_output.MARK + b"task\nb\nc\n" + b"x" * 50_000 + b"\n")
        await node_output.flush(daemon, 1)
        os.close(w)
        await reader.done
        transport.close()
        return daemon.sent, wp.log_file.getvalue()

    sent, logged = asyncio.run(main())
    lines = [(m.get("name"), line) for _k, m in sent for line in m["lines"]]
    assert lines[:3] == [(None, "a"), ("task", "b"), ("task", "c")]
    assert "".join(line for _n, line in lines[3:]) == "x" * 50_000
    assert all(kind == "log_lines" and m["pid"] == 42 for kind, m in sent)
    assert logged == b"a\nb\nc\n" + b"x" * 50_000 + b"\n"


@pytest.mark.parametrize("job", [1, 2])
def test_flush_of_a_job_without_pending_output_answers_at_once(job):
    async def main():
        daemon = _Daemon()
        return await asyncio.wait_for(node_output.flush(daemon, job), 1)

    assert asyncio.run(main()) == {"ok": True}
