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
    # MathJax 3 shipped with the docs (copied into _static/mathjax), so the formulas render offline
    "sphinx-mathjax-offline",
]
# Every cross-reference must resolve: with -W an unresolved one fails the build.
nitpicky = True
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
_PYTHON = "https://docs.python.org/3/"
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
            "torch._C.Generator": ("py:class", "generated/torch.Generator.html#torch.Generator"),
            "torch.nn.modules.module.Module": ("py:class", "generated/torch.nn.Module.html#torch.nn.Module"),
            "nn.Module": ("py:class", "generated/torch.nn.Module.html#torch.nn.Module"),
            "torch.nn.ModuleList": ("py:class", "generated/torch.nn.ModuleList.html#torch.nn.ModuleList"),
            "torch.optim.optimizer.Optimizer": ("py:class", "optim.html#torch.optim.Optimizer"),
            "torch.autocast": ("py:class", "amp.html#torch.autocast"),
            "torch.no_grad": ("py:class", "generated/torch.no_grad.html#torch.no_grad"),
            "torch.log_softmax": ("py:function", "generated/torch.log_softmax.html#torch.log_softmax"),
        },
    ),
    "numpy": (
        _NUMPY,
        {
            "numpy.ndarray": ("py:class", "reference/generated/numpy.ndarray.html#numpy.ndarray"),
            "numpy.dtype": ("py:class", "reference/generated/numpy.dtype.html#numpy.dtype"),
            "numpy.random.Generator": ("py:class", "reference/random/generator.html#numpy.random.Generator"),
            "np.ndarray": ("py:class", "reference/generated/numpy.ndarray.html#numpy.ndarray"),
            "np.dtype": ("py:class", "reference/generated/numpy.dtype.html#numpy.dtype"),
            "np.random.Generator": ("py:class", "reference/random/generator.html#numpy.random.Generator"),
            "numpy.random._generator.Generator": (
                "py:class",
                "reference/random/generator.html#numpy.random.Generator",
            ),
            "numpy.random.SeedSequence": (
                "py:class",
                "reference/random/bit_generators/generated/numpy.random.SeedSequence.html",
            ),
        },
    ),
    "python": (
        _PYTHON,
        {
            "collections.abc.Mapping": ("py:class", "library/collections.abc.html#collections.abc.Mapping"),
            "collections.abc.Sequence": ("py:class", "library/collections.abc.html#collections.abc.Sequence"),
            "collections.abc.Callable": ("py:class", "library/collections.abc.html#collections.abc.Callable"),
            "collections.abc.Iterator": ("py:class", "library/collections.abc.html#collections.abc.Iterator"),
            "os.PathLike": ("py:class", "library/os.html#os.PathLike"),
            "pathlib.Path": ("py:class", "library/pathlib.html#pathlib.Path"),
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
    intersphinx_mapping = {"torch": (_TORCH, None), "numpy": (_NUMPY, None), "python": (_PYTHON, None)}
else:
    _inv_dir = HERE / "_build" / "_inventories"
    intersphinx_mapping = {}
    for _name, (_url, _entries) in _OFFLINE_INVENTORY.items():
        _path = _inv_dir / f"{_name}.inv"
        _write_inventory(_path, _name, _entries)
        intersphinx_mapping[_name] = (_url, str(_path))

nitpick_ignore = [
    # TypeVars and the private bases of public classes (their fields are documented on the subclasses)
    ("py:class", "hieros_lib._tree._T"),
    ("py:class", "hieros_lib.world_models._latent.LatentWorldModel"),
    ("py:class", "hieros_lib.world_models._latent.LatentConfig"),
    ("py:class", "hieros_lib.world_models._codec.ObservationConfig"),
    # Literal type aliases of the S5 layer's options (their values are listed in the docstrings)
    ("py:class", "Discretization"),
    ("py:class", "CInit"),
    ("py:class", "Backend"),
    ("py:class", "Activation"),
]

# ---------------------------------------------------------------------------------------------------
# Every public name is documented: constants re-exported from private modules (BATCH_FIELDS, PRESETS,
# ...) are included although autodoc cannot see their docstrings in the package, which are then read
# from the private module that defines them; and after the build every name of every __all__ must be
# in the Python domain, or the build fails (with -W).
import importlib
import pkgutil

from sphinx.pycode import ModuleAnalyzer
from sphinx.util import logging as sphinx_logging

_PACKAGES = ["hieros_lib", "hieros_lib.errors", "hieros_lib.testing"] + [
    f"hieros_lib.{name}"
    for name in ("ssm", "replay", "nn", "world_models", "hrl", "agents", "envs", "metrics", "training")
]


def _public_names() -> dict[str, set[str]]:
    return {name: set(getattr(importlib.import_module(name), "__all__", ())) for name in _PACKAGES}


def _keep_public_data(app, what, name, obj, skip, options):
    public = any(name in names for names in _public_names().values())
    if what == "module" and skip and public and not callable(obj) and not isinstance(obj, type):
        return False
    return None


def _attribute_doc(package: str, attribute: str) -> list[str]:
    module = importlib.import_module(package)
    for info in pkgutil.iter_modules(getattr(module, "__path__", [])):
        if info.name == "__main__":  # running it would start the command line
            continue
        try:
            docs = ModuleAnalyzer.for_module(f"{package}.{info.name}").find_attr_docs()
        except Exception:  # noqa: BLE001 - a module that cannot be analysed has nothing to offer here
            continue
        if ("", attribute) in docs:
            return list(docs[("", attribute)])
    return []


def _fill_data_docstrings(app, what, name, obj, options, lines):
    """A re-exported constant gets the docstring written under it in its private module (instead of
    nothing, or the docstring of its type, e.g. ``dict``'s)."""
    if what == "data":
        package, _, attribute = name.rpartition(".")
        found = _attribute_doc(package, attribute)
        if found:
            lines[:] = found


def _check_api_coverage(app, exception):
    if exception is not None or app.builder.format != "html":
        return
    documented = set(app.env.get_domain("py").objects)
    logger = sphinx_logging.getLogger(__name__)
    for package, names in _public_names().items():
        module = importlib.import_module(package)
        for name in sorted(names):
            obj = getattr(module, name)
            canonical = f"{getattr(obj, '__module__', '')}.{getattr(obj, '__qualname__', '')}"
            missing = f"{package}.{name}" not in documented and canonical not in documented
            if name != "__version__" and missing:
                logger.warning("public name %s.%s is not in the API reference", package, name)


def setup(app):
    app.connect("autodoc-skip-member", _keep_public_data)
    app.connect("autodoc-process-docstring", _fill_data_docstrings)
    app.connect("build-finished", _check_api_coverage)
