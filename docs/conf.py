"""Sphinx configuration for hieros-lib."""

from __future__ import annotations

import os
import sys
import zlib
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "src"))

from hieros_lib import __version__

project = "hieros-lib"
author = "hieros-lib developers"
copyright = "2026, hieros-lib developers"
release = __version__
version = ".".join(__version__.split(".")[:2])

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.napoleon",
    "sphinx.ext.intersphinx",
    "sphinx.ext.mathjax",
    "sphinx.ext.viewcode",
    "myst_parser",
]
source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
exclude_patterns = ["_build", "conftest.py"]
myst_enable_extensions = ["dollarmath", "amsmath", "colon_fence"]
myst_heading_anchors = 3

autodoc_default_options = {"members": True, "show-inheritance": True}
autodoc_typehints = "description"
autodoc_member_order = "bysource"
autosummary_generate = True
napoleon_google_docstring = True
napoleon_numpy_docstring = True
napoleon_use_rtype = False
# Render "Attributes:" sections as fields, so NamedTuple / dataclass fields are not described twice.
napoleon_use_ivar = True

html_theme = "furo"
html_title = f"hieros-lib {release}"

# Intersphinx. The build must work offline (CI has no route to the documentation hosts), so by default
# we write a small inventory for the names our signatures use and link them to the real pages. Set
# HIEROS_DOCS_ONLINE=1 to use the projects' full published inventories instead.
_TORCH = "https://docs.pytorch.org/docs/stable/"
_NUMPY = "https://numpy.org/doc/stable/"
_OFFLINE_INVENTORY = {
    "torch": (
        _TORCH,
        {
            "torch.Tensor": ("py:class", "tensors.html#torch.Tensor"),
            "torch.dtype": ("py:class", "tensor_attributes.html#torch.dtype"),
            "torch.device": ("py:class", "tensor_attributes.html#torch.device"),
            "torch.Generator": ("py:class", "generated/torch.Generator.html#torch.Generator"),
            "torch.nn.Module": ("py:class", "generated/torch.nn.Module.html#torch.nn.Module"),
            "torch.nn.LayerNorm": ("py:class", "generated/torch.nn.LayerNorm.html#torch.nn.LayerNorm"),
            "torch.nn.SiLU": ("py:class", "generated/torch.nn.SiLU.html#torch.nn.SiLU"),
            "torch.nn.GRUCell": ("py:class", "generated/torch.nn.GRUCell.html#torch.nn.GRUCell"),
            "torch.optim.Optimizer": ("py:class", "optim.html#torch.optim.Optimizer"),
            "torch.autograd.Function": ("py:class", "autograd.html#torch.autograd.Function"),
            "torch.compile": ("py:function", "generated/torch.compile.html#torch.compile"),
            "torch.cumsum": ("py:function", "generated/torch.cumsum.html#torch.cumsum"),
        },
    ),
    "numpy": (
        _NUMPY,
        {
            "numpy.ndarray": ("py:class", "reference/generated/numpy.ndarray.html#numpy.ndarray"),
            "numpy.dtype": ("py:class", "reference/generated/numpy.dtype.html#numpy.dtype"),
            "numpy.random.Generator": ("py:class", "reference/random/generator.html#numpy.random.Generator"),
        },
    ),
}


def _write_inventory(path: Path, project_name: str, entries: dict[str, tuple[str, str]]) -> None:
    header = (
        "# Sphinx inventory version 2\n"
        f"# Project: {project_name}\n"
        "# Version: stable\n"
        "# The remainder of this file is compressed using zlib.\n"
    )
    body = "".join(f"{name} {role} 1 {uri} -\n" for name, (role, uri) in sorted(entries.items()))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(header.encode() + zlib.compress(body.encode()))


if os.environ.get("HIEROS_DOCS_ONLINE") == "1":
    intersphinx_mapping = {"torch": (_TORCH, None), "numpy": (_NUMPY, None)}
else:
    _inv_dir = HERE / "_build" / "_inventories"
    intersphinx_mapping = {}
    for _name, (_url, _entries) in _OFFLINE_INVENTORY.items():
        _path = _inv_dir / f"{_name}.inv"
        _write_inventory(_path, _name, _entries)
        intersphinx_mapping[_name] = (_url, str(_path))
