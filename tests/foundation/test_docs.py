"""The documentation builds with every reference resolved, every public name in it, and math that renders
offline.

``docs/conf.py`` turns on nitpicky mode and, after the build, checks that every name of every ``__all__`` is
in the API reference; with ``-W`` either problem fails the build. MathJax is shipped with the pages
(``sphinx-mathjax-offline``), so the formulas do not depend on a CDN.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

DOCS = Path(__file__).resolve().parents[2] / "docs"


def test_the_docs_build_without_warnings_and_ship_their_math_renderer(tmp_path: Path) -> None:
    out = tmp_path / "html"
    result = subprocess.run(
        [sys.executable, "-m", "sphinx", "-W", "--keep-going", "-q", "-b", "html", str(DOCS), str(out)],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    page = (out / "api" / "agents.html").read_text()
    assert 'src="../_static/mathjax/tex-chtml.js"' in page
    assert (out / "_static" / "mathjax" / "tex-chtml.js").is_file()
    pages = [p.read_text() for p in out.rglob("*.html")]
    assert not any("cdn.jsdelivr.net" in text or "mathjax@" in text for text in pages)
    assert "hieros_lib.training.Trainer" in (out / "api" / "training.html").read_text()
