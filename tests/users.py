"""Acting as another local user in a test (the multi-user security tests): a forked child
that drops to ``nobody``. Needs root, as CI runs."""

from __future__ import annotations

import os

import pytest

NOBODY = 65534
needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="needs root to act as nobody")


def as_nobody(fn) -> None:
    """Run ``fn`` in a forked child as user ``nobody``; fail the test if it raises."""
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        code = 1
        try:
            os.setgid(NOBODY)
            os.setuid(NOBODY)
            fn()
            code = 0
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
