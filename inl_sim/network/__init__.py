"""Wing 2, network: graphs with roles, and the training graphs routed over them.

Lives here: seeded generators (``generators``), topology files (``topofile``), the
:class:`Network` with its fusion node and sensors (``build``), and the training graphs,
dense and Dijkstra trees (``routing``), control spanning trees
(``trees``: bfs, random, max-capacity).  Never touches a tensor.
May import: ``inl_sim.errors`` and ``inl_sim.scenario``.
Add a generator: one function + one ``GENERATORS`` entry in ``generators``; an edge
cost: one function + one ``COSTS`` entry in ``routing``.
"""

from inl_sim.network.build import (FUSION_RULES, GENERATORS, TOPOLOGY_DIR, Network, build_network, describe_network,
                                   read_topology_file, shipped_topologies, write_topology_file)

__all__ = [
    "Network", "GENERATORS", "FUSION_RULES", "TOPOLOGY_DIR", "build_network",
    "read_topology_file", "write_topology_file", "describe_network", "shipped_topologies",
]
