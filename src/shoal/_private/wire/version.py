"""shoal's version (``shoal.__version__``), here at the bottom so that every module can name
it without importing the ``shoal`` package (which imports them): a daemon records it in
address.json, a joining driver compares it."""

__version__ = "0.1.0"
__commit__ = ""
