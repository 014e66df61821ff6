"""Wing 5, study: runs, comparisons, sweeps and surveys, and the folders they write.

Lives here: one run (``experiment``: prepare, train, evaluate, run), methods x seeds and
grids (``comparison``), topology surveys (``survey``), the rate curve study
(``ratecurve``), results folders (``results``), the rules of what may be written,
replaced and locked (``folders``: safe names, ``.inl-sim`` markers, one lock per study,
atomic writes) and resuming finished runs (``resume``: run keys, ``StoredRun``).
May import: every wing to its left.
"""
