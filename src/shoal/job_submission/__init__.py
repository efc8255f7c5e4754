"""``shoal.job_submission`` (Ray's ``ray.job_submission``): submit shell commands to run as
jobs on a cluster's head and follow them, over the dashboard's REST API.

``JobSubmissionClient`` (:mod:`.sdk`), ``JobStatus``, ``JobInfo``, ``JobDetails``,
``JobType``, ``DriverInfo``, ``JobErrorType`` (:mod:`.models`). The server side runs in the
head's dashboard (``shoal.dashboard.jobs``); the command line is ``shoal job ...``.

Like every library it imports shoal's public API only (``shoal``, ``shoal._hooks``), never
``shoal._private``: the contracts in .importlinter check that.
"""

from .models import DriverInfo, JobDetails, JobErrorType, JobInfo, JobStatus, JobType
from .sdk import JobSubmissionClient

__all__ = ["DriverInfo", "JobDetails", "JobErrorType", "JobInfo", "JobStatus", "JobSubmissionClient",
           "JobType"]
