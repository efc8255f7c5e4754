"""``shoal.workflow``: the room for Ray Workflows (``ray.workflow``), so that ``import
ray.workflow`` maps to ``import shoal.workflow``.

What lands here: durable workflows on shoal's DAG API (shoal.dag). Issue 23 builds it.

Like every library it may import shoal's public API only (``shoal``, ``shoal.util``,
``shoal.dag``, ...), never ``shoal._private``: the contracts in .importlinter check that,
and that the core does not import it.

Until it is built, importing it fails as importing a Ray library that is not installed does,
with ModuleNotFoundError (an ImportError) naming it: a Ray program's ``try: import
ray.workflow except ImportError:`` keeps working, and ``shoal.<name>`` stays an
AttributeError.
"""

raise ModuleNotFoundError(
    f"{__name__}: Ray Workflows (ray.workflow) is not built in this version of shoal yet",
    name=__name__)
