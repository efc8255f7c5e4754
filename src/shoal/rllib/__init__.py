"""``shoal.rllib``: the room for RLlib (``ray.rllib``), so that ``import ray.rllib`` maps to
``import shoal.rllib``.

What lands here: reinforcement learning: PPO and DQN with rollout actors, on Tune and the
shared kit. Issue 18 builds it.

Like every library it may import shoal's public API only (``shoal``, ``shoal.util``,
``shoal.dag``, ...), never ``shoal._private``: the contracts in .importlinter check that,
and that the core does not import it.

Until it is built, importing it fails as importing a Ray library that is not installed does,
with ModuleNotFoundError (an ImportError) naming it: a Ray program's ``try: import ray.rllib
except ImportError:`` keeps working, and ``shoal.<name>`` stays an AttributeError.
"""

raise ModuleNotFoundError(
    f"{__name__}: RLlib (ray.rllib) is not built in this version of shoal yet",
    name=__name__)
