"""The warning category of Ray's deprecated APIs, for the runtime to warn with.

Re-exported (and named as living) in :mod:`shoal.util.annotations`, where Ray users import it
from (``ray.util.annotations.RayDeprecationWarning``).
"""

from __future__ import annotations


class RayDeprecationWarning(DeprecationWarning):
    """A DeprecationWarning of Ray's APIs, for filtering apart from others."""


RayDeprecationWarning.__module__ = "shoal.util.annotations"
