"""Wing 3, learning: what the nodes compute and what their messages are.

Lives here: data (``data``), node modules and their composition (``modules``), gates
(``gating``), their rate estimators side by side (``rates``), message and error codecs
(``coding``; the dithered codec in ``dither``), the sampled-channel evaluation
(``sampled``), information quantities (``information``), the accuracy-rate curve
maths (``curves``), and the models and steps of the paradigms beside INL (``paradigms/``:
centralised, federated averaging, split learning), the finite expert bank and its router
(``experts``) and data-dependent selection from a finite bank with its Xu-Raginsky and
union bounds (``selection``), and the rule that rewires modules onto a repaired training
graph (``rewire``).  Knows nothing of time.
May import: ``inl_sim.errors``, ``inl_sim.scenario``, ``inl_sim.network``.
Add a gate: one class + one ``GATES`` entry; a codec: one class + one ``CODECS`` entry;
a rate estimator: one function + one ``RATE_ESTIMATORS`` entry.
Importing this package imports nothing heavy; its modules import torch.
"""
