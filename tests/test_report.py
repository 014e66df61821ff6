"""report.html: figure builders on a tiny 3-method study, the page, and a headless browser.

The fixture is one small compare (dense INL, D-INL, D-INL + finite-rate; 2 seeds, 2
epochs, 256 samples) written to a folder; every test reads that folder only, as the
report does.  Expected values come from the folder's CSV/JSON files read here
independently (``csv``, ``json``), never from the report's own helpers.

The browser test drives Debian's ``chromium`` with playwright (``executable_path``; no
``playwright install``), offline, and fails on any console error, page error or network
request; it skips only when no ``chromium`` binary is on PATH
(``bash scripts/install-browser.sh`` installs it).
"""

from __future__ import annotations

import csv
import dataclasses
import json
import math
import shutil
from collections import defaultdict
from pathlib import Path

import pytest

import inl_sim
from inl_sim import cli
from inl_sim.sim.accounting import Transfer
from inl_sim.errors import ResultsError
from inl_sim.report.html import (FIGURES, build_report, critical_path, exchange_figure,
                            learning_curves_figure, link_bytes, load_results, node_positions, rate_accuracy_figure,
                            sim_time_figure, step_timeline_figure, topology_figure)

from conftest import tiny_scenario

METHODS = ("dense", "D-INL", "D-INL + finite-rate")
SEEDS = 2
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run", "--disable-quic"]


@pytest.fixture(scope="module")
def study(tmp_path_factory: pytest.TempPathFactory) -> Path:
    raw = tiny_scenario(training__epochs=2)
    raw["compare"] = {"seeds": SEEDS, "reference": "dense", "methods": [
        {"name": "dense", "set": {"routing.mode": "dense"}},
        {"name": "D-INL", "set": {"routing.mode": "spt"}},
        {"name": "D-INL + finite-rate", "set": {"routing.mode": "spt", "gate.kind": "gaussian", "gate.beta": 1e-3}},
    ]}
    out = tmp_path_factory.mktemp("report") / "study"
    inl_sim.compare(raw, out_dir=out)
    return out


@pytest.fixture(scope="module")
def data(study: Path):
    return load_results(study)


@pytest.fixture(scope="module")
def report(study: Path) -> Path:
    return build_report(study)


def _run_dirs(study: Path, method: str) -> list[Path]:
    found = [p.parent for p in study.glob("*/seed*/summary.json")
             if json.loads(p.read_text())["method"] == method]
    assert len(found) == SEEDS
    return found


def _csv_link_bytes(study: Path, method: str) -> dict[tuple[str, str], dict[str, float]]:
    """Oracle: mean over seeds of bytes per (child, parent), straight from transfers.csv."""
    out: dict = defaultdict(lambda: {"forward": 0.0, "backward": 0.0})
    for run in _run_dirs(study, method):
        with open(run / "transfers.csv", newline="") as fh:
            for row in csv.DictReader(fh):
                key = (row["src"], row["dst"]) if row["direction"] == "forward" else (row["dst"], row["src"])
                out[key][row["direction"]] += int(row["nbytes"]) / SEEDS
    return dict(out)


def _segments(trace) -> set[frozenset]:
    pts = list(zip(trace.x, trace.y))
    return {frozenset((pts[i], pts[i + 1])) for i in range(0, len(pts) - 1, 3)}


# ---------------------------------------------------------------- loading


def test_report_reads_files_without_importing_torch() -> None:
    """A report only reads result files: building one must not need torch (or SimPy)."""
    import subprocess
    import sys
    code = "import sys, inl_sim.report.html; print(sorted(m for m in ('torch', 'simpy') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=Path(__file__).resolve().parents[1])
    assert out.stdout.strip() == "[]"


def test_compare_folder_loads_every_method_and_seed(data, study: Path) -> None:
    assert data.kind == "compare" and data.methods == METHODS
    for method in METHODS:
        assert [r["summary"]["seed"] for r in data.runs[method]] == list(range(SEEDS))
    assert [r["method"] for r in data.rows] == list(METHODS)
    assert data.runs["dense"][0]["summary"]["rate_bits"] is None
    assert data.runs["D-INL + finite-rate"][0]["summary"]["rate_bits"] > 0


def test_a_single_run_folder_is_a_report_of_one(study: Path) -> None:
    run_dir = _run_dirs(study, "D-INL")[0]
    summary = json.loads((run_dir / "summary.json").read_text())
    one = load_results(run_dir)
    assert one.kind == "run" and one.methods == ("D-INL",)
    assert one.rows[0]["accuracy_mean"] == summary["accuracy"] and one.rows[0]["accuracy_std"] == 0.0
    for _, _, build, _ in FIGURES:
        assert len(build(one).data) > 0


# ---------------------------------------------------------------- derived numbers


def test_per_link_bytes_equal_the_sums_from_transfers_csv(data, study: Path) -> None:
    per = link_bytes(data)
    for method in METHODS:
        oracle = _csv_link_bytes(study, method)
        flat = {(u, v, d): n for (u, v), c in per[method].items() for d, n in c.items()}
        assert flat == pytest.approx({(u, v, d): n for (u, v), c in oracle.items() for d, n in c.items()})
        total = sum(c["forward"] + c["backward"] for c in oracle.values())
        assert total == pytest.approx(data.rows[METHODS.index(method)]["exchange_bytes_mean"])
    n_edges = {m: len(json.loads((_run_dirs(study, m)[0] / "training_graph.json").read_text())["edges"])
               for m in METHODS}
    assert {m: len(per[m]) for m in METHODS} == n_edges


def test_exchange_figure_bars_are_the_per_link_sums(data, study: Path) -> None:
    fig = exchange_figure(data)
    assert len(fig.data) == 2 + len(METHODS)
    unit = {"B": 1.0, "kB": 1e3, "MB": 1e6, "GB": 1e9}[fig.layout.yaxis2.title.text]
    for method in METHODS:
        oracle = _csv_link_bytes(study, method)
        bar = next(t for t in fig.data if t.name == f"{method} (per link)")
        got = {x: y * unit for x, y in zip(bar.x, bar.y) if y}
        assert got == pytest.approx({f"{u}→{v}": c["forward"] + c["backward"] for (u, v), c in oracle.items()})


def test_critical_path_follows_the_last_arrival_back() -> None:
    def t(src, dst, send, arrive):
        return Transfer(0, 0, src, dst, "forward", 1, 4, send, send, arrive)
    a, b, d = t("1", "2", 0.0, 1.0), t("3", "2", 0.0, 3.0), t("1", "0", 0.0, 2.0)
    c = t("2", "0", 3.5, 5.0)
    assert critical_path([a, b, c, d]) == [b, c]
    assert critical_path([a]) == [a] and critical_path([]) == []


def test_node_positions_use_saved_pos_else_a_seeded_layout() -> None:
    net = {"nodes": [{"id": 0, "pos": [0.0, 1.0]}, {"id": "a", "pos": [2, 3]}], "links": [{"u": 0, "v": "a"}]}
    assert node_positions(net) == {"0": (0.0, 1.0), "a": (2.0, 3.0)}
    net["nodes"][1]["pos"] = None
    first = node_positions(net)
    assert first == node_positions(net) and set(first) == {"0", "a"}


# ---------------------------------------------------------------- figures


def test_topology_overlays_the_tree_on_the_dense_graph(data, study: Path) -> None:
    fig = topology_figure(data)
    names = [t.name for t in fig.data]
    dense_i = next(i for i, n in enumerate(names) if n.startswith("dense INL"))
    spt_i = next(i for i, n in enumerate(names) if n.startswith("shortest-path tree"))
    dense, spt = _segments(fig.data[dense_i]), _segments(fig.data[spt_i])
    assert (len(dense), len(spt)) == (27, 8)
    assert spt < dense and spt_i > dense_i  # a subset, drawn on top
    assert fig.data[dense_i].xaxis == fig.data[spt_i].xaxis == "x"
    pos = node_positions(data.network)
    tree = json.loads((_run_dirs(study, "D-INL")[0] / "training_graph.json").read_text())["edges"]
    assert spt == {frozenset((pos[str(u)], pos[str(v)])) for u, v in tree}
    network = json.loads((study / "dense" / "seed0" / "network.json").read_text())
    labels = next(t for t in fig.data if t.name == "capacity (Mb/s)")
    assert list(labels.text) == [f"{e['capacity_bps'] / 1e6:.0f}" for e in network["links"]]


def test_topology_panels_colour_links_by_bytes(data, study: Path) -> None:
    fig = topology_figure(data)
    for method in METHODS:
        oracle = _csv_link_bytes(study, method)
        lines = [t for t in fig.data if t.name.startswith(f"{method}: ") and "->" in t.name]
        assert len(lines) == len(oracle)
        marker = next(t for t in fig.data if t.name == f"{method}: bytes per link")
        assert sorted(marker.marker.color) == pytest.approx(
            sorted((c["forward"] + c["backward"]) / 1e3 for c in oracle.values()))
    # tree panel: physical, dense, tree, capacities, 2 roles; per method: links + marker + 2 roles
    assert len(fig.data) == 6 + sum(len(_csv_link_bytes(study, m)) + 3 for m in METHODS)


def test_learning_curves_are_mean_and_sample_std_over_seeds(data, study: Path) -> None:
    fig = learning_curves_figure(data)
    assert len(fig.data) == 3 * 2 * len(METHODS)
    for method in METHODS:
        hist = [json.loads((d / "history.json").read_text()) for d in _run_dirs(study, method)]
        acc = [[h[e]["test_accuracy"] for h in hist] for e in range(2)]
        upper, lower, mean = [t for t in fig.data if t.legendgroup == method][:3]
        assert list(mean.y) == pytest.approx([sum(a) / len(a) for a in acc])
        std = [math.sqrt(sum((x - sum(a) / 2) ** 2 for x in a)) for a in acc]  # ddof=1 with 2 seeds
        assert [u - m for u, m in zip(upper.y, mean.y)] == pytest.approx(std)
        assert lower.fill == "tonexty" and list(mean.x) == [1, 2]


def test_rate_figure_puts_gated_methods_on_the_rate_axis(data) -> None:
    fig = rate_accuracy_figure(data)
    names = [t.name for t in fig.data]
    assert "dense (no gate: rate n/a)" in names and "D-INL (no gate: rate n/a)" in names
    point = fig.data[names.index("D-INL + finite-rate")]
    assert point.x[0] == pytest.approx(data.rows[2]["rate_bits_mean"])
    sweep_rows = [{"method": f"gate.beta={b}", "rate_bits_mean": r, "accuracy_mean": a}
                  for b, r, a in ((0.1, 1.0, 0.5), (0.0, 3.0, 0.6), (0.01, None, 0.4))]
    swept = rate_accuracy_figure(dataclasses.replace(data, kind="sweep", sweep_rows=sweep_rows))
    curve = next(t for t in swept.data if t.name == "sweep")
    assert list(curve.x) == [1.0, 3.0] and list(curve.y) == [0.5, 0.6]


def test_time_figures(data, study: Path) -> None:
    fig = sim_time_figure(data)
    assert len(fig.data) == 1 + len(METHODS)
    assert list(fig.data[0].y) == pytest.approx([r["sim_time_per_epoch_s_mean"] for r in data.rows])
    timeline = step_timeline_figure(data)
    assert len(timeline.data) == 4 * len(METHODS)
    with open(_run_dirs(study, "dense")[0] / "transfers.csv", newline="") as fh:
        first = [r for r in csv.DictReader(fh) if r["epoch"] == "0" and r["step"] == "0"]
    bars = [t for t in timeline.data if t.name in ("forward", "backward") and t.yaxis == "y"]
    assert sum(len(t.y) for t in bars) == len(first) == 2 * 27


# ---------------------------------------------------------------- page and CLI


def _outside_plotlyjs(text: str) -> str:
    head, _, rest = text.partition('<script id="plotlyjs">')
    return head + rest.partition("</script>")[2]


def test_report_is_self_contained_and_declares_its_figures(report: Path) -> None:
    text = report.read_text(encoding="utf-8")
    assert report.name == "report.html" and text.count('<script id="plotlyjs">') == 1
    assert "<script src=" not in text and "<link" not in text
    page = _outside_plotlyjs(text)
    assert "https://cdn" not in page and "http://" not in page and "https://" not in page
    manifest = json.loads(page.split('id="inl-report-manifest">')[1].split("</script>")[0])
    assert manifest["figures"] == [f"fig-{key}" for key, *_ in FIGURES]
    for fig_id in manifest["figures"]:
        assert page.count(f'id="{fig_id}"') == 1
    for method in ("dense", "D-INL", "D-INL + finite-rate"):
        assert f"<td>{method}</td>" in page
    assert not list(report.parent.glob(".*.tmp"))


def test_cli_rebuilds_the_same_report_and_rejects_a_bad_folder(study: Path, report: Path, tmp_path: Path,
                                                               capsys) -> None:
    target = tmp_path / "copy.html"
    assert cli.main(["report", str(study), "--out", str(target)]) == 0
    assert str(target) in capsys.readouterr().out
    assert target.read_bytes() == report.read_bytes()  # deterministic: rebuilt from the files alone
    assert cli.main(["report", str(tmp_path / "missing")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and "missing" in err[0]


def _break(kind: str, study: Path, tmp: Path) -> Path:
    if kind == "missing":
        return tmp / "nope"
    if kind == "empty":
        tmp.mkdir(exist_ok=True)
        return tmp
    folder = tmp / "broken"
    shutil.copytree(study, folder)
    if kind == "no runs":
        for child in folder.iterdir():
            if child.is_dir():
                shutil.rmtree(child)
    elif kind == "bad json":
        (folder / "comparison.json").write_text("{not json")
    elif kind == "no transfers":
        (_run_dirs(folder, "D-INL")[0] / "transfers.csv").unlink()
        return folder
    return folder


@pytest.mark.parametrize("kind, needle", [
    ("missing", "no such results folder"),
    ("empty", "neither comparison.json"),
    ("no runs", "no <method>/seed<k>/ run folder"),
    ("bad json", "comparison.json: not valid JSON"),
    ("no transfers", "transfers.csv: missing"),
])
def test_bad_folders_raise_results_error_naming_path_and_fix(kind: str, needle: str, study: Path,
                                                             tmp_path: Path) -> None:
    folder = _break(kind, study, tmp_path)
    old = folder / "report.html"
    if folder.is_dir():
        old.write_text("previous report")
    with pytest.raises(ResultsError) as info:
        build_report(folder)
    assert needle in str(info.value) and str(folder) in str(info.value)
    assert any(w in str(info.value) for w in ("re-run", "give"))
    if folder.is_dir():
        assert old.read_text() == "previous report"  # a failed build leaves the old report alone


# ---------------------------------------------------------------- browser


@pytest.mark.browser
def test_report_renders_in_headless_chromium(report: Path) -> None:
    chromium = shutil.which("chromium")
    if chromium is None:
        pytest.skip("no `chromium` on PATH: run `bash scripts/install-browser.sh` (apt-get install chromium)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.fail("playwright is missing: python -m pip install -e '.[test]' (never `playwright install`)")
    problems: list[str] = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        try:
            context = browser.new_context(viewport={"width": 1360, "height": 900}, offline=True)
            page = context.new_page()
            page.on("console", lambda m: problems.append(f"console: {m.text}") if m.type == "error" else None)
            page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
            page.on("request", lambda r: None if r.url.startswith(("file:", "data:", "blob:"))
                    else problems.append(f"request: {r.url}"))
            page.goto(report.as_uri(), wait_until="load")
            page.wait_for_function("() => { const d = [...document.querySelectorAll('.plotly-graph-div')];"
                                   " return d.length > 0 && d.every(g => g.querySelector('.main-svg')); }",
                                   timeout=60_000)
            rendered = page.evaluate("""() => ({
                manifest: JSON.parse(document.getElementById('inl-report-manifest').textContent),
                declared: Number(document.body.dataset.figures),
                figures: [...document.querySelectorAll('.plotly-graph-div')].map(g => ({
                    id: g.id, svg: !!g.querySelector('.main-svg'),
                    traces: g.querySelectorAll('g.trace').length, data: (g.data || []).length})),
                rows: document.querySelectorAll('#comparison tbody tr').length})""")
            page.screenshot(path=str(report.with_name("screenshot.png")), full_page=True)
        finally:
            browser.close()
    assert not problems, problems
    figures = rendered["figures"]
    assert [f["id"] for f in figures] == rendered["manifest"]["figures"]
    assert len(figures) == rendered["declared"] == len(FIGURES)
    for fig in figures:
        assert fig["svg"] and fig["data"] > 0 and fig["traces"] == fig["data"], fig
    assert rendered["rows"] == len(METHODS)
    assert report.with_name("screenshot.png").stat().st_size > 20_000
