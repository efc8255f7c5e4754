"""``shoal.util.joblib``: the room for Ray's joblib backend (``ray.util.joblib``), so that
``import ray.util.joblib`` maps to ``import shoal.util.joblib``.

What lands here: register_ray() and joblib's "ray" backend (scikit-learn's n_jobs across the
cluster). Issue 21 builds it.

Like every library it may import shoal's public API only (``shoal``, ``shoal.util``,
``shoal.dag``, ...), never ``shoal._private``: the contracts in .importlinter check that,
and that the core does not import it.

Until it is built, importing it fails as importing a Ray library that is not installed does,
with ModuleNotFoundError (an ImportError) naming it: a Ray program's ``try: import
ray.util.joblib except ImportError:`` keeps working, and ``shoal.<name>`` stays an
AttributeError.
"""

raise ModuleNotFoundError(
    f"{__name__}: Ray's joblib backend (ray.util.joblib) is not built in this version of shoal yet",
    name=__name__)
