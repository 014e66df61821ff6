"""Wing 6, report: tables and plotly figures from results folders only.

Lives here: the figure builders (``figures``, ``timeline``, ``energy``: the energy map
from each run's ``energy.json``; ``progress``: accuracy vs cumulative bytes and simulated
time; ``routed``: per-link bytes of the paradigms that send over routes; ``experts``: the
expert-bank page; ``faults``: the fault timeline and accuracy through a failure from each
run's ``faults.json``) and the
self-contained HTML report (``html``).  Reads what a study wrote; never runs the simulator and never
imports torch.
May import: ``inl_sim.errors``, ``inl_sim.sim.accounting`` and ``metrics`` (records and
their sums), ``inl_sim.study.results`` (reading folders).
"""

from inl_sim.report.html import (COLUMNS, FIGURES, ReportData, build_report, critical_path, exchange_figure,
                                 learning_curves_figure, link_bytes, load_results, node_positions,
                                 rate_accuracy_figure, render_html, sim_time_figure, step_timeline_figure,
                                 topology_figure)

__all__ = ["build_report", "load_results", "render_html", "ReportData", "FIGURES", "COLUMNS",
           "link_bytes", "critical_path", "node_positions", "topology_figure", "learning_curves_figure",
           "exchange_figure", "rate_accuracy_figure", "sim_time_figure", "step_timeline_figure"]
