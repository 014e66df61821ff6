"""Wing 5, study: runs, comparisons, sweeps and surveys, and the folders they write.

Lives here: one run (``experiment``: prepare, train, evaluate, run; paradigms beside INL
in ``paradigms``, one runner per paradigm in ``RUNNERS``, over ``routed``'s setup and epoch loop), methods x seeds and
grids (``comparison``), topology surveys (``survey``), the rate curve study
(``ratecurve``), the finite-expert-bank study (``experts``), the ``repair``
policy of faults (``repair``: the training graph rebuilt on the surviving network between
epochs), results folders (``results``), the rules of what may be written,
replaced and locked (``folders``: safe names, ``.inl-sim`` markers, one lock per study,
atomic writes), resuming finished runs (``resume``: run keys, ``StoredRun``; ``interrupts``:
SIGTERM raised like Ctrl-C, finished runs counted) and where a
study's runs execute (``executors``: local, worker processes or Ray; a new one is a class
in ``EXECUTORS``), paired statistics over seeds (``statistics``) and the equal-budget
control (``budget``).
May import: every wing to its left.
"""
