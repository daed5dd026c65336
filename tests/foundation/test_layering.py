"""The layering of the design, checked in fresh interpreters and in the source.

* A leaf (``ssm``, ``replay``, ``nn``, ``metrics``) loads no other ``hieros_lib`` subpackage.
* Every subpackage loads only the subpackages it may depend on.
* No subpackage imports gymnasium, triton or matplotlib at import time.
* No source file imports a subpackage it may not depend on, even lazily inside a function.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[2] / "src" / "hieros_lib"

# Which subpackages each subpackage may import (DESIGN.md, "Layers").
ALLOWED: dict[str, set[str]] = {
    "ssm": set(),
    "replay": set(),
    "nn": set(),
    "metrics": set(),
    "world_models": {"ssm", "nn"},
    "hrl": {"nn"},
    "envs": set(),
    "agents": {"ssm", "replay", "nn", "world_models", "hrl", "envs", "metrics"},
    "training": {"ssm", "replay", "nn", "world_models", "hrl", "envs", "metrics", "agents"},
}
LEAVES = ("ssm", "replay", "nn", "metrics")
HEAVY_OPTIONAL = (
    "gymnasium",
    "ale_py",
    "triton",
    "matplotlib",
    "cv2",
    "omegaconf",
    "PIL",
    "tensorboard",
)  # not tqdm: torch.hub imports it whenever it is installed

_PROBE = """
import json, sys
import hieros_lib.{name}
mods = sorted(sys.modules)
print(json.dumps(mods))
"""


def _loaded_modules(name: str) -> list[str]:
    out = subprocess.run([sys.executable, "-c", _PROBE.format(name=name)], capture_output=True, text=True)
    assert out.returncode == 0, f"importing hieros_lib.{name} failed in a fresh interpreter:\n{out.stderr}"
    return json.loads(out.stdout.strip().splitlines()[-1])


def _subpackages_in(modules: list[str]) -> set[str]:
    return {m.split(".")[1] for m in modules if m.startswith("hieros_lib.") and m.split(".")[1] in ALLOWED}


def test_design_lists_every_subpackage() -> None:
    on_disk = {p.name for p in SRC.iterdir() if (p / "__init__.py").is_file()}
    assert on_disk == set(ALLOWED), "a subpackage was added or removed without updating the layering rules"


@pytest.mark.parametrize("name", sorted(ALLOWED))
def test_import_in_fresh_interpreter_respects_layers(name: str) -> None:
    modules = _loaded_modules(name)
    loaded = _subpackages_in(modules) - {name}
    assert loaded <= ALLOWED[name], f"hieros_lib.{name} loaded {sorted(loaded - ALLOWED[name])}"
    if name in LEAVES:
        assert not loaded, f"leaf hieros_lib.{name} loaded other subpackages: {sorted(loaded)}"
    heavy = sorted({m.split(".")[0] for m in modules} & set(HEAVY_OPTIONAL))
    assert not heavy, f"importing hieros_lib.{name} imported optional dependencies {heavy}"


def _imported_subpackages(path: Path, package: str, src: Path = SRC) -> set[str]:
    """Every ``hieros_lib`` subpackage a file imports, absolutely or relatively, anywhere in it."""
    tree = ast.parse(path.read_text(), filename=str(path))
    depth_of_file = len(path.relative_to(src).parts) - 1  # directories below hieros_lib
    found: set[str] = set()
    for node in ast.walk(tree):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level == 0 and node.module:
                names = [node.module]
                if node.module == "hieros_lib":
                    names += [f"hieros_lib.{alias.name}" for alias in node.names]
            elif node.level > 0:
                base = ["hieros_lib", *path.relative_to(src).parts[:depth_of_file]]
                base = base[: len(base) - (node.level - 1)]
                mod = ".".join([*base, *(node.module.split(".") if node.module else [])])
                names = [mod] + ([f"{mod}.{alias.name}" for alias in node.names] if not node.module else [])
        for full in names:
            parts = full.split(".")
            if parts[0] == "hieros_lib" and len(parts) > 1 and parts[1] in ALLOWED:
                found.add(parts[1])
    return found - {package}


@pytest.mark.parametrize("name", sorted(ALLOWED))
def test_source_imports_respect_layers(name: str) -> None:
    for path in sorted((SRC / name).rglob("*.py")):
        bad = _imported_subpackages(path, name) - ALLOWED[name]
        assert not bad, f"{path.relative_to(SRC)} imports {sorted(bad)}, not allowed for hieros_lib.{name}"


def test_source_scan_catches_a_violation(tmp_path: Path) -> None:
    """The static check itself must see absolute, relative and lazy imports."""
    (tmp_path / "ssm").mkdir()
    fake = tmp_path / "ssm" / "_probe.py"
    fake.write_text(
        "from . import _scan\nfrom hieros_lib import metrics\n"
        "def f():\n    from ..nn import MLP\n    import hieros_lib.replay\n"
    )
    assert _imported_subpackages(fake, "ssm", src=tmp_path) == {"nn", "replay", "metrics"}
