"""Wing 2, network: graphs with roles, and the training graphs routed over them.

Lives here: seeded generators (``generators``; random geometric and knn on a KD-tree),
topology files (``topofile``), the topohub library of 700+ real networks with capacity
rules and fibre latency (``library``), radio links from positions and a link budget
(``wireless``; Shannon capacity, one KD-tree radius query), the :class:`Network` with its fusion node and sensors
(``build``), the ``most_central`` fusion rule (``centrality``: closeness up to 1,000
nodes, BFS sweeps above), and the training graphs, dense and Dijkstra trees
(``routing``), control spanning trees (``trees``: bfs, random, max-capacity), and the
sensor-to-fusion routes other paradigms send over (``routes``), and where a bank of experts sits
with the routes of its messages (``experts``), and fault schedules (``faults``: scheduled
and random link/node failures, per-link loss, the surviving network; ``dynamics``:
time-varying capacity and stragglers).  Setup is O(V + E log V) time and O(V + E) memory: 10,000 nodes in
well under a second, 100,000 in seconds (``gcpause`` keeps the cyclic collector out of
it).  Never touches a tensor.
May import: ``inl_sim.errors`` and ``inl_sim.scenario``.
Add a generator: one function + one ``GENERATORS`` entry in ``generators``; a topology
source: one module + one branch in ``build._source``; an edge
cost: one function + one ``EDGE_COSTS`` entry in ``routing``; a training graph: one
builder ``(Routes) -> [(child, parent)]`` + one ``TRAINING_GRAPHS`` entry in ``routing``; a fault
model: one class + one ``FAULT_MODELS`` entry in ``faults`` (capacity and straggler kinds:
``CAPACITY_MODELS``/``STRAGGLER_MODELS`` in ``dynamics``).
"""

from inl_sim.network.build import (FUSION_RULES, GENERATORS, TOPOLOGY_DIR, Network, build_network, describe_network,
                                   read_topology_file, shipped_topologies, write_topology_file)

__all__ = [
    "Network", "GENERATORS", "FUSION_RULES", "TOPOLOGY_DIR", "build_network",
    "read_topology_file", "write_topology_file", "describe_network", "shipped_topologies",
]
