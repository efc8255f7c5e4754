"""A progress bar while ``shoal.get(refs, progress=True)`` waits: tqdm if it is installed,
else one line on stderr rewritten in place."""

from __future__ import annotations

import sys
import time


class _Line:
    """The bar without tqdm: ``desc: n/total`` on stderr."""

    def __init__(self, total: int, desc: str):
        self.total, self.desc, self.n = total, desc, 0
        self._draw()

    def update(self, k: int) -> None:
        self.n += k
        self._draw()

    def _draw(self) -> None:
        sys.stderr.write(f"\r{self.desc}: {self.n}/{self.total}")
        sys.stderr.flush()

    def close(self) -> None:
        sys.stderr.write("\n")
        sys.stderr.flush()


def _bar(total: int, desc: str):
    try:
        from tqdm.auto import tqdm
    except ImportError:
        return _Line(total, desc)
    return tqdm(total=total, desc=desc, unit="obj")


def wait_all(refs: list, timeout: float | None, desc: str, wait) -> None:
    """Wait until every ref is ready (or ``timeout`` passes), advancing a bar as they come;
    ``wait`` is ``shoal.wait``. Values are fetched afterwards by the caller."""
    unique = list({r.binary(): r for r in refs}.values())
    bar = _bar(len(unique), desc)
    deadline = None if timeout is None else time.monotonic() + timeout
    try:
        while unique:
            step = 0.2 if deadline is None else max(0.0, min(0.2, deadline - time.monotonic()))
            ready, unique = wait(unique, num_returns=len(unique), timeout=step,
                                 fetch_local=False)
            if ready:
                bar.update(len(ready))
            if deadline is not None and time.monotonic() >= deadline:
                return
    finally:
        bar.close()
