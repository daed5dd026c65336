"""Packaging and public-API hygiene: one version source, explicit ``__all__``, documented public names."""

from __future__ import annotations

import importlib
import inspect
import re
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

import hieros_lib
from hieros_lib.errors import HierosError, check

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[2]
SUBPACKAGES = ("ssm", "replay", "nn", "world_models", "hrl", "agents", "envs", "metrics")


def test_version_has_one_source() -> None:
    text = (ROOT / "src" / "hieros_lib" / "_version.py").read_text()
    assert re.search(r'__version__ = "([^"]+)"', text).group(1) == hieros_lib.__version__
    meta = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert "version" in meta["project"]["dynamic"] and "version" not in meta["project"]


def test_core_dependencies_are_ranges_not_pins() -> None:
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    names = {re.split(r"[<>=!~\[ ]", d)[0] for d in deps}
    assert names == {"torch", "einops", "numpy", "typing-extensions"}
    assert not any("==" in d for d in deps), "core dependencies must be ranges"


@pytest.mark.parametrize("name", SUBPACKAGES)
def test_subpackage_has_explicit_all_of_documented_names(name: str) -> None:
    module = importlib.import_module(f"hieros_lib.{name}")
    assert isinstance(module.__all__, list), f"hieros_lib.{name} needs an explicit __all__ list"
    assert len(set(module.__all__)) == len(module.__all__), "duplicate names in __all__"
    for public in module.__all__:
        obj = getattr(module, public)  # raises if __all__ names something that does not exist
        # Classes and functions carry docstrings; type aliases cannot (they are documented in the pages).
        if inspect.isclass(obj) or inspect.isroutine(obj):
            assert (obj.__doc__ or "").strip(), f"hieros_lib.{name}.{public} has no docstring"
    assert (module.__doc__ or "").strip(), f"hieros_lib.{name} has no module docstring"


@pytest.mark.parametrize("name", SUBPACKAGES)
def test_every_subpackage_has_an_api_page(name: str) -> None:
    page = ROOT / "docs" / "api" / f"{name}.rst"
    assert f".. automodule:: hieros_lib.{name}" in page.read_text()
    assert name in (ROOT / "docs" / "api" / "index.rst").read_text()


def test_library_error_names_argument_and_expectation() -> None:
    with pytest.raises(HierosError, match=r"^x: expected shape \(B, T\), got \(3,\)$"):
        check(False, "x", "shape (B, T)", got=(3,))
    check(True, "x", "anything")
    assert issubclass(HierosError, ValueError)


def test_py_typed_marker_is_shipped() -> None:
    assert (ROOT / "src" / "hieros_lib" / "py.typed").is_file()


@pytest.mark.slow
def test_wheel_contains_the_package_and_metadata(tmp_path: Path) -> None:
    subprocess.run(
        [sys.executable, "-m", "build", "--wheel", "--no-isolation", "--outdir", str(tmp_path), str(ROOT)],
        check=True, capture_output=True,
    )
    (wheel,) = tmp_path.glob("hieros_lib-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    for sub in SUBPACKAGES:
        assert f"hieros_lib/{sub}/__init__.py" in names
    assert "hieros_lib/py.typed" in names
    assert not any("tests/" in n or "__pycache__" in n for n in names)
    metadata = next(n for n in names if n.endswith("METADATA"))
    text = zipfile.ZipFile(wheel).read(metadata).decode()
    assert "Name: hieros-lib" in text
    assert f"Version: {hieros_lib.__version__}" in text
    assert "Requires-Dist: torch>=2.2" in text
    assert "Provides-Extra: atari" in text
