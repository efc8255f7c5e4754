"""``shoal.util.dask``: the room for Dask on Ray (``ray.util.dask``), so that ``import
ray.util.dask`` maps to ``import shoal.util.dask``.

What lands here: ray_dask_get and enable_dask_on_ray: each dask task a shoal task. Issue 21
builds it.

Like every library it may import shoal's public API only (``shoal``, ``shoal.util``,
``shoal.dag``, ...), never ``shoal._private``: the contracts in .importlinter check that,
and that the core does not import it.

Until it is built, importing it fails as importing a Ray library that is not installed does,
with ModuleNotFoundError (an ImportError) naming it: a Ray program's ``try: import
ray.util.dask except ImportError:`` keeps working, and ``shoal.<name>`` stays an
AttributeError.
"""

raise ModuleNotFoundError(
    f"{__name__}: Dask on Ray (ray.util.dask) is not built in this version of shoal yet",
    name=__name__)
