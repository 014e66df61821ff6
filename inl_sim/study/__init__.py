"""Wing 5, study: runs, comparisons, sweeps and surveys, and the folders they write.

Lives here: one run (``experiment``: prepare, train, evaluate, run), methods x seeds and
grids (``comparison``), topology surveys (``survey``), the rate curve study
(``ratecurve``), results folders (``results``), paired statistics over seeds
(``statistics``) and the equal-budget control (``budget``).
May import: every wing to its left.
"""
