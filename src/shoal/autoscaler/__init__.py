"""``shoal.autoscaler``: the room for the Ray autoscaler (``ray.autoscaler``), so that ``import
ray.autoscaler`` maps to ``import shoal.autoscaler``.

What lands here: node providers, `shoal up/down` and the autoscaler (sdk.request_resources).
Issue 22 builds it.

Like every library it may import shoal's public API only (``shoal``, ``shoal.util``,
``shoal.dag``, ...), never ``shoal._private``: the contracts in .importlinter check that,
and that the core does not import it.

Until it is built, importing it fails as importing a Ray library that is not installed does,
with ModuleNotFoundError (an ImportError) naming it: a Ray program's ``try: import
ray.autoscaler except ImportError:`` keeps working, and ``shoal.<name>`` stays an
AttributeError.
"""

raise ModuleNotFoundError(
    f"{__name__}: the Ray autoscaler (ray.autoscaler) is not built in this version of shoal yet",
    name=__name__)
