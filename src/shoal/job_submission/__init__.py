"""``shoal.job_submission``: the room for the Ray Jobs API (``ray.job_submission``), so that
``import ray.job_submission`` maps to ``import shoal.job_submission``.

What lands here: JobSubmissionClient and the jobs the head runs and records. Issue 15 builds
it.

Like every library it may import shoal's public API only (``shoal``, ``shoal.util``,
``shoal.dag``, ...), never ``shoal._private``: the contracts in .importlinter check that,
and that the core does not import it.

Until it is built, importing it fails as importing a Ray library that is not installed does,
with ModuleNotFoundError (an ImportError) naming it: a Ray program's ``try: import
ray.job_submission except ImportError:`` keeps working, and ``shoal.<name>`` stays an
AttributeError.
"""

raise ModuleNotFoundError(
    f"{__name__}: the Ray Jobs API (ray.job_submission) is not built in this version of shoal yet",
    name=__name__)
