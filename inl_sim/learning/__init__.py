"""Wing 3, learning: what the nodes compute and what their messages are.

Lives here: data (``data``), node modules and their composition (``modules``), gates
(``gating``), message and error codecs (``coding``), information quantities
(``information``) and the accuracy-rate curve maths (``curves``).  Knows nothing of time.
May import: ``inl_sim.errors``, ``inl_sim.scenario``, ``inl_sim.network``.
Add a gate: one class + one ``GATES`` entry; a codec: one class + one ``CODECS`` entry.
Importing this package imports nothing heavy; its modules import torch.
"""
