"""PNG snapshots of figures of a ``report.html``, for the README (plotly's static export
needs kaleido, which the project does not install; a headless chromium renders the
self-contained report instead).

Usage::

    python scripts/report_figures.py REPORT_HTML OUT_DIR FIGURE_ID [FIGURE_ID ...]

e.g. ``python scripts/report_figures.py results/faults/report.html docs/figures fig-failure
fig-faults`` writes ``docs/figures/faults-fig-failure.png`` and ``...-fig-faults.png``.
Needs playwright (the test extra) and a ``chromium`` on PATH (scripts/install-browser.sh).
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path


def main(argv: list[str]) -> int:
    if len(argv) < 3:
        print(__doc__, file=sys.stderr)
        return 2
    report, out_dir, ids = Path(argv[0]).resolve(), Path(argv[1]), argv[2:]
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        print("error: no chromium on PATH; run scripts/install-browser.sh", file=sys.stderr)
        return 2
    from playwright.sync_api import sync_playwright
    out_dir.mkdir(parents=True, exist_ok=True)
    stem = report.parent.name
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1100, "height": 900})
        page.goto(report.as_uri())
        page.wait_for_selector(".plot-container", timeout=30_000)
        for fig in ids:
            target = out_dir / f"{stem}-{fig}.png"
            page.locator(f"#{fig}").screenshot(path=str(target))
            print(target)
        browser.close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
