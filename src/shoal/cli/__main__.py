"""``python -m shoal.cli``: the same command line as the ``shoal`` console script."""

from shoal.cli import main

if __name__ == "__main__":
    main(prog_name="shoal")
