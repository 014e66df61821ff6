"""The learning plane's building blocks against independent constructions."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from conftest import tiny_scenario
from inl_sim.learning.coding import make_codec
from inl_sim.learning.gating import make_gate
from inl_sim.learning.modules import NodeModule, _node_seed, build_modules
from inl_sim.scenario import load_scenario
from inl_sim.sim.linkfn import encode_stack
from inl_sim.sim.plane import levels
from inl_sim.study.setup import prepare


@pytest.mark.parametrize("gate", ["none", "gaussian", "gumbel"])
def test_modules_are_initialised_as_by_seeding_torch_per_node(gate: str) -> None:
    """The oracle is the 0.1 construction: torch.manual_seed(node seed), then build the module."""
    sc = load_scenario(tiny_scenario(routing__mode="dense", gate__kind=gate))
    setup = prepare(sc, 3)
    graph, data = setup.graph, setup.dataset
    fresh = build_modules(graph, data.view_dims, data.n_classes, sc.model, sc.gate, seed=3)
    with torch.random.fork_rng(devices=[]):
        for i, v in enumerate(graph.order):
            torch.manual_seed(_node_seed(3, i))
            fusion = v == graph.fusion
            oracle = NodeModule(view_dim=data.view_dims.get(v), n_children=len(graph.children[v]), spec=sc.model,
                                gate=None if fusion else make_gate(sc.gate, sc.model.latent_dim),
                                n_classes=data.n_classes if fusion else None)
            for (name, p), (_, q) in zip(fresh[v].named_parameters(), oracle.named_parameters(), strict=True):
                assert torch.equal(p, q), (v, name)


@pytest.mark.parametrize("codec", ["float32", "float16", "int8", "entropy_coded"])
def test_stacked_encoding_equals_one_encode_per_message(codec: str) -> None:
    enc = make_codec(codec, step=0.05, bits=8)
    x = torch.randn(5, 16, 8, generator=torch.Generator().manual_seed(0)) * torch.tensor([0.1, 1, 3, 10, 0.0]).view(5, 1, 1)
    decoded, nbytes = encode_stack(enc, x)
    for g in range(5):
        one = enc.encode(x[g])
        assert torch.equal(decoded[g], one.tensor) and nbytes[g] == one.nbytes


def test_levels_are_depths_from_the_leaves() -> None:
    import networkx as nx
    setup = prepare(load_scenario(tiny_scenario(routing__mode="dense")), 0)
    g = nx.DiGraph(list(setup.graph.edges))
    lv = levels(setup.graph)
    for v in setup.graph.order:   # longest path from any leaf, by networkx
        anc = nx.ancestors(g, v) if v in g else set()
        depth = max((nx.dag_longest_path_length(g.subgraph(anc | {v})) if anc else 0), 0)
        assert lv[v] == depth, v


def test_module_parameters_share_the_stacked_storage() -> None:
    """Evaluation reads the modules: after an in-place step they hold the new weights, with no copy."""
    setup = prepare(load_scenario(tiny_scenario()), 0)
    before = {v: [p.detach().clone() for p in m.parameters()] for v, m in setup.modules.items()}
    setup.engine.run_epoch(0, [torch.arange(64)])
    moved = sum(not torch.equal(b, p) for v, m in setup.modules.items() for b, p in zip(before[v], m.parameters()))
    assert moved == sum(len(b) for b in before.values())
    ranges = [(p.data_ptr(), p.data_ptr() + p.numel() * p.element_size())
              for g in setup.engine.groups for p in g.params.values()]
    for m in setup.modules.values():
        for p in m.parameters():   # each module parameter lies inside one stacked tensor
            assert any(lo <= p.data_ptr() and p.data_ptr() + p.numel() * p.element_size() <= hi for lo, hi in ranges)


def test_ledger_is_columnar_and_sizes_come_from_the_codec() -> None:
    setup = prepare(load_scenario(tiny_scenario(message__encoding="entropy_coded")), 0)
    setup.engine.run_epoch(0, [torch.arange(64), torch.arange(64, 128)])
    cols = setup.ledger.columns()
    assert len(cols["nbytes"]) == 2 * 2 * len(setup.graph.edges)
    forward = cols["direction"] == 0
    assert np.all(cols["nbytes"][~forward] == 64 * 8 * 4)      # float32 errors
    assert len(np.unique(cols["nbytes"][forward])) > 1          # coded sizes follow the values


def test_the_final_numbers_are_a_fresh_evaluation_of_the_trained_modules() -> None:
    """run() reuses the last epoch's evaluation: it must equal evaluating the trained modules again."""
    import inl_sim
    from inl_sim.study.training import evaluate, train
    sc = load_scenario(tiny_scenario(gate__kind="gaussian", gate__beta=0.01, training__epochs=2))
    res = inl_sim.run(sc, 0)
    setup = prepare(sc, 0)
    train(setup)
    fresh = evaluate(setup)
    assert (res.accuracy, res.test_loss, res.accuracy_sampled) == (fresh["accuracy"], fresh["loss"],
                                                                     fresh["accuracy_sampled"])
    assert res.accuracy_sampled != res.accuracy or fresh["rate_estimates_nats"]   # the sampled pass ran
    on_train = evaluate(setup, split="train")
    assert (res.train_accuracy, res.train_loss) == (on_train["accuracy"], on_train["loss"])
    quick = evaluate(setup, split="train", sampled=False)
    assert quick["accuracy"] == on_train["accuracy"] and quick["accuracy_sampled"] is None
