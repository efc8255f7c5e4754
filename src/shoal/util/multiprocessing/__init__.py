"""``shoal.util.multiprocessing``: the room for Ray's multiprocessing.Pool
(``ray.util.multiprocessing``), so that ``import ray.util.multiprocessing`` maps to ``import
shoal.util.multiprocessing``.

What lands here: a Pool with the standard library's API whose processes are shoal actors.
Issue 21 builds it.

Like every library it may import shoal's public API only (``shoal``, ``shoal.util``,
``shoal.dag``, ...), never ``shoal._private``: the contracts in .importlinter check that,
and that the core does not import it.

Until it is built, importing it fails as importing a Ray library that is not installed does,
with ModuleNotFoundError (an ImportError) naming it: a Ray program's ``try: import
ray.util.multiprocessing except ImportError:`` keeps working, and ``shoal.<name>`` stays an
AttributeError.
"""

raise ModuleNotFoundError(
    f"{__name__}: Ray's multiprocessing.Pool (ray.util.multiprocessing) is not built in this version of shoal yet",
    name=__name__)
