"""The reference pages generated from the code at every build (``mkdocs-gen-files`` runs this file)."""

import sys
from pathlib import Path

import mkdocs_gen_files

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # docsgen lives at the repository root

from docsgen.build import pages

for path, text in pages().items():
    with mkdocs_gen_files.open(path, "w") as file:
        file.write(text)

# The Mermaid renderer, fetched by scripts/fetch-docs-assets.sh (`make docs` runs it first).
for renderer in sorted(Path(__file__).resolve().parents[1].glob(".cache/docs/mermaid-*.min.js"))[-1:]:
    with mkdocs_gen_files.open("assets/javascripts/mermaid.min.js", "w") as file:
        file.write(renderer.read_text())

# The benchmark's chart of its latest run (`make bench` writes it), shown on the Performance page.
chart = Path(__file__).resolve().parents[1] / "bench" / "results" / "latest.png"
if chart.exists():
    with mkdocs_gen_files.open("explanation/bench-latest.png", "wb") as file:
        file.write(chart.read_bytes())
