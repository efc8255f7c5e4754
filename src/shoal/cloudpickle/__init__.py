"""``shoal.cloudpickle``: the cloudpickle shoal serializes functions with, under the name
Ray gives it (``import ray.cloudpickle as pickle`` works with ``import shoal as ray``)."""

import sys

import cloudpickle

sys.modules[__name__] = cloudpickle
