"""``shoal.air``: the room for Ray AIR (``ray.air``), so that ``import ray.air`` maps to
``import shoal.air``.

What lands here: the kit that Tune, Train and RLlib share: ScalingConfig, RunConfig,
Checkpoint, reporting from a trial or worker, results. Issue 16 builds it.

Like every library it may import shoal's public API only (``shoal``, ``shoal.util``,
``shoal.dag``, ...), never ``shoal._private``: the contracts in .importlinter check that,
and that the core does not import it.

Until it is built, importing it fails as importing a Ray library that is not installed does,
with ModuleNotFoundError (an ImportError) naming it: a Ray program's ``try: import ray.air
except ImportError:`` keeps working, and ``shoal.<name>`` stays an AttributeError.
"""

raise ModuleNotFoundError(
    f"{__name__}: Ray AIR (ray.air) is not built in this version of shoal yet",
    name=__name__)
