"""Command line: ``python run.py {run,compare,show,sweep,rate-curve,report,topologies}``.

The only module that prints.  Bad input becomes one line on stderr and exit code 2,
never a traceback; a diverged ``run`` exits 3 with its reason; SIGINT and SIGTERM exit
130 and 143 with one line saying what was kept and how to resume.

Lives here: the parser and entry point (``app``), the subcommands (``commands``) and what
they share: loading with overrides, output folders, flag limits, printed verdicts
(``common``).  A new subcommand is one ``cmd_*`` function and one ``add(...)`` line.
May import: every wing (only here may torch-heavy wings load lazily, after the checks).
"""

from inl_sim.cli.app import build_parser, main

__all__ = ["main", "build_parser"]
