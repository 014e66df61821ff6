#!/usr/bin/env python
"""Run inl-sim from a checkout: ``python run.py run quickstart``."""

import sys

from inl_sim.cli import main

if __name__ == "__main__":
    sys.exit(main())
