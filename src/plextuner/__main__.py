"""`python -m plextuner` and the `plextuner` command."""

import sys

from plextuner import early


def main() -> None:
    early.start(sys.argv)  # before the imports below (see early.py)
    from plextuner.cli import run

    run()


if __name__ == "__main__":  # not when a multiprocessing child imports it as its main
    main()
