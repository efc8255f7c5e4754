"""shoal's version, here so that the daemons record it (and processes compare it) without
importing the public package; ``shoal.__version__`` is this same string."""

VERSION = "0.1.0"
