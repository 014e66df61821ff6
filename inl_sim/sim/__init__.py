"""Wing 4, sim: one training run in motion: learning-plane steps, network-plane time, the ledger.

Lives here: the transfer ledger (``accounting``), metrics derived from its records
(``metrics``), the energy of a run from those records and the nodes' FLOPs
(``energy``), the link channels that own time (``links``) and the 0.1 per-node SimPy
engine kept as the reference oracle (``engine``).
May import: ``inl_sim.errors``, ``scenario``, ``network``, ``learning``.
New gates, codecs, costs or faults never edit this wing: they plug into the registries
of the wings to its left.
"""
