"""``shoal.train``: the room for Ray Train (``ray.train``), so that ``import ray.train`` maps
to ``import shoal.train``.

What lands here: distributed training (trainers over a group of worker actors, the torch
utilities), on the kit it shares with Tune and RLlib (shoal.air). Issue 17 builds it.

Like every library it may import shoal's public API only (``shoal``, ``shoal.util``,
``shoal.dag``, ...), never ``shoal._private``: the contracts in .importlinter check that,
and that the core does not import it.

Until it is built, importing it fails as importing a Ray library that is not installed does,
with ModuleNotFoundError (an ImportError) naming it: a Ray program's ``try: import ray.train
except ImportError:`` keeps working, and ``shoal.<name>`` stays an AttributeError.
"""

raise ModuleNotFoundError(
    f"{__name__}: Ray Train (ray.train) is not built in this version of shoal yet",
    name=__name__)
