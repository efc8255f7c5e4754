"""Which task or actor a worker's output comes from, told to its node daemon in-band.

Ray's driver prefixes a worker's lines with the task's name or the actor's class (its repr
once ``__init__`` has run, if the class defines ``__repr__``): ``(square pid=12)``,
``(Counter(3) pid=12)``. The daemon reads the worker's stdout and stderr through pipes, so
the worker says who is speaking in the pipes themselves: a marker line (``MARK`` + name),
written before the first output after the name changed, which the daemon takes out of the
stream (log files and drivers never see it). Writing it lazily costs nothing to tasks that
print nothing; output written to the file descriptors directly (a C library, a child
process) after a change but before any ``print`` still carries the previous name.
"""

from __future__ import annotations

import io
import sys
import threading

MARK = b"\x1eshoal-name:"
_lock = threading.Lock()
_streams: list[_NamedStream] = []
_name: str | None = None


class _NamedStream(io.TextIOWrapper):
    """``sys.stdout``/``sys.stderr`` of a worker: announces the current name before the
    first write after it changed."""

    def __init__(self, original):
        super().__init__(original.buffer, encoding=original.encoding, errors=original.errors,
                         line_buffering=original.line_buffering, write_through=True)
        self._announce: str | None = None
        self._at_line_start = True

    def write(self, s: str) -> int:
        if not s:
            return 0
        if self._announce is not None:
            with _lock:
                name, self._announce = self._announce, None
                if name is not None:
                    head = "" if self._at_line_start else "\n"
                    super().write(f"{head}{MARK.decode()}{name}\n")
        n = super().write(s)
        self._at_line_start = s.endswith("\n")
        return n


def install() -> None:
    """Replace this process's ``sys.stdout`` and ``sys.stderr`` (a worker, at start)."""
    for attr in ("stdout", "stderr"):
        original = getattr(sys, attr)
        if original is None or not hasattr(original, "buffer"):
            continue
        stream = _NamedStream(original)
        _streams.append(stream)
        setattr(sys, attr, stream)


def set_name(name: str | None) -> None:
    """The name the next output is shown under (a task's name, an actor's class or repr)."""
    global _name
    if name is not None:
        name = name.replace("\n", " ").replace("\r", " ")
    if name == _name:
        return
    with _lock:
        _name = name
        for s in _streams:
            s._announce = name if name is not None else ""


def actor_name(instance) -> str:
    """What an actor's output is shown under once ``__init__`` has run: its repr if its class
    defines ``__repr__``, else its class name."""
    cls = type(instance)
    if cls.__repr__ is not object.__repr__:
        try:
            return repr(instance)
        except Exception:  # noqa: BLE001 - a broken __repr__ keeps the class name
            pass
    return cls.__name__
