"""``shoal.serve``: the room for Ray Serve (``ray.serve``), so that ``import ray.serve`` maps
to ``import shoal.serve``.

What lands here: deployments behind HTTP, composition, batching, autoscaling. Issue 20
builds it.

Like every library it may import shoal's public API only (``shoal``, ``shoal.util``,
``shoal.dag``, ...), never ``shoal._private``: the contracts in .importlinter check that,
and that the core does not import it.

Until it is built, importing it fails as importing a Ray library that is not installed does,
with ModuleNotFoundError (an ImportError) naming it: a Ray program's ``try: import ray.serve
except ImportError:`` keeps working, and ``shoal.<name>`` stays an AttributeError.
"""

raise ModuleNotFoundError(
    f"{__name__}: Ray Serve (ray.serve) is not built in this version of shoal yet",
    name=__name__)
