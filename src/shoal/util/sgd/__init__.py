"""``shoal.util.sgd``: the room for RaySGD (``ray.util.sgd``), so that ``import ray.util.sgd``
maps to ``import shoal.util.sgd``.

What lands here: the RaySGD TorchTrainer of the tutorials, on top of shoal.train. Issue 17
builds it.

Like every library it may import shoal's public API only (``shoal``, ``shoal.util``,
``shoal.dag``, ...), never ``shoal._private``: the contracts in .importlinter check that,
and that the core does not import it.

Until it is built, importing it fails as importing a Ray library that is not installed does,
with ModuleNotFoundError (an ImportError) naming it: a Ray program's ``try: import
ray.util.sgd except ImportError:`` keeps working, and ``shoal.<name>`` stays an
AttributeError.
"""

raise ModuleNotFoundError(
    f"{__name__}: RaySGD (ray.util.sgd) is not built in this version of shoal yet",
    name=__name__)
