"""Wing 4, sim: one training run in motion: learning-plane steps, network-plane time, the ledger.

Lives here: the columnar transfer ledger (``accounting``) and its record view
(``table``: :class:`TransferTable`, CSV and Parquet writers), metrics derived from its records
(``metrics``), the energy of a run from those records and the nodes' FLOPs (``energy``), the link channels that own time (``links``), the network plane that times
a learning plane's traffic (``timing``: :class:`NetworkPlane`, :class:`EpochTraffic`) with
its node programs and SimPy executor (``programs``) and its fault-free INL sweep
(``sweep``: scalar for narrow levels, vectorised for wide ones), and the 0.1 per-node SimPy engine kept as the reference oracle
(``engine``), the network plane with faults (``faults``: :class:`FaultRecorder` times each
step on a faulty network through the executor's ``transmit`` hook and the programs' inputs:
stop-and-wait retransmissions as ledger records, outages, capacity, stragglers,
deadlines), and the learning plane: the fast engine that trains a whole step as one
autograd graph (``plane``), its batched same-signature node groups (``stacked``), the one
flat buffer that holds all their parameters and gradients (``flat``), its
link functions and stacked codecs (``linkfn``) and the epoch traffic it hands the
network plane and the ledger (``traffic``).  A new paradigm's timing is a program builder in ``programs``; those of centralised,
federated and split learning, whose messages cross multi-hop routes one ledger record per
hop, are in ``routed``;
``experts`` times a routed expert bank hop by hop.
May import: ``inl_sim.errors``, ``scenario``, ``network``, ``learning``.
New gates, codecs, costs or faults never edit this wing: they plug into the registries
of the wings to its left.
"""
