"""Actors: stateful remote classes (built in issue 3)."""

from __future__ import annotations


class ActorClass:
    @classmethod
    def _from_class(cls, target, options):
        raise NotImplementedError(
            f"@remote on a class ({target.__name__}) needs actor support, which this build of "
            "shoal does not have yet")
