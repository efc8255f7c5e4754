"""``shoal.data``: the room for Ray Data (``ray.data``), so that ``import ray.data`` maps to
``import shoal.data``.

What lands here: streaming datasets over Arrow blocks: reading and writing, map_batches,
shuffles, splits for Train. Issue 19 builds it.

Like every library it may import shoal's public API only (``shoal``, ``shoal.util``,
``shoal.dag``, ...), never ``shoal._private``: the contracts in .importlinter check that,
and that the core does not import it.

Until it is built, importing it fails as importing a Ray library that is not installed does,
with ModuleNotFoundError (an ImportError) naming it: a Ray program's ``try: import ray.data
except ImportError:`` keeps working, and ``shoal.<name>`` stays an AttributeError.
"""

raise ModuleNotFoundError(
    f"{__name__}: Ray Data (ray.data) is not built in this version of shoal yet",
    name=__name__)
