"""ObjectRef: the name of an object and of its owner; a future for its value.

The class is defined in ``shoal._private.runtime.object_ref`` (the runtime makes refs without
importing a public module) and re-exported here as the same object, named as living here.
"""

from __future__ import annotations

from ._private.runtime.object_ref import ObjectRef

__all__ = ["ObjectRef"]
