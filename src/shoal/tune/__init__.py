"""``shoal.tune``: the room for Ray Tune (``ray.tune``), so that ``import ray.tune`` maps to
``import shoal.tune``.

What lands here: hyperparameter search: Tuner, search algorithms, trial schedulers,
checkpoints. Issue 16 builds it.

Like every library it may import shoal's public API only (``shoal``, ``shoal.util``,
``shoal.dag``, ...), never ``shoal._private``: the contracts in .importlinter check that,
and that the core does not import it.

Until it is built, importing it fails as importing a Ray library that is not installed does,
with ModuleNotFoundError (an ImportError) naming it: a Ray program's ``try: import ray.tune
except ImportError:`` keeps working, and ``shoal.<name>`` stays an AttributeError.
"""

raise ModuleNotFoundError(
    f"{__name__}: Ray Tune (ray.tune) is not built in this version of shoal yet",
    name=__name__)
