"""`python -m discharge`: the liability clock worker with its gRPC LiabilityService."""

from __future__ import annotations

import sys

from discharge.runtime import run
from overgang.config import load_settings
from overgang.logging import configure_logging


def main() -> int:
    configure_logging("discharge")
    run(load_settings())
    return 0


if __name__ == "__main__":
    sys.exit(main())
