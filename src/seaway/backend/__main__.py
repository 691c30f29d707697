"""``python -m seaway.backend``: the same as ``seaway backend``."""

from __future__ import annotations

import argparse
import logging
import sys

from seaway.backend.server import add_backend_arguments, run_backend_command


def main() -> int:
    parser = argparse.ArgumentParser(
        prog="python -m seaway.backend",
        description="A test backend: HTTP and TCP echo on one port, UDP echo on the same port.",
    )
    add_backend_arguments(parser)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    return run_backend_command(args)


if __name__ == "__main__":
    sys.exit(main())
