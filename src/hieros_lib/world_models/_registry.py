"""A small registry so the agent, the tests and the benchmarks swap world models by name.

Every entry is a model class taking one frozen config dataclass, and that config class. Config classes
follow one convention: fields ``action_dim``, ``image_size`` and ``channels`` (at least), and the class
methods ``paper(**overrides)`` (the sizes of the model's paper) and ``tiny(**overrides)`` (for tests).
"""

from __future__ import annotations

import dataclasses
import importlib
from typing import Any

from hieros_lib.errors import check

__all__ = ["available_world_models", "make_world_model", "register_world_model", "world_model_config"]

# name -> (module, model class name, config class name); imported lazily on first use.
_BUILTIN: dict[str, tuple[str, str, str]] = {
    "rssm": ("hieros_lib.world_models._rssm", "RSSM", "RSSMConfig"),
    "s5wm": ("hieros_lib.world_models._s5wm", "S5WM", "S5WMConfig"),
    "twm": ("hieros_lib.world_models._twm", "TWM", "TWMConfig"),
}

_USER: dict[str, tuple[type, type]] = {}


def _resolve(name: str) -> tuple[type, type]:
    check(
        isinstance(name, str) and (name in _BUILTIN or name in _USER),
        "name",
        f"one of {available_world_models()}",
        got=repr(name),
    )
    if name in _USER:
        return _USER[name]
    module_name, model_name, config_name = _BUILTIN[name]
    module = importlib.import_module(module_name)
    return getattr(module, model_name), getattr(module, config_name)


def available_world_models() -> tuple[str, ...]:
    """Names accepted by :func:`make_world_model`, sorted.

    Examples:
        >>> from hieros_lib.world_models import available_world_models
        >>> {"s5wm", "rssm"} <= set(available_world_models())
        True
    """
    return tuple(sorted({*_BUILTIN, *_USER}))


def register_world_model(name: str, model_cls: type, config_cls: type) -> None:
    """Register your own world model under ``name``.

    Args:
        name: The registry name (must be new).
        model_cls: A class built as ``model_cls(config)`` that satisfies
            :class:`~hieros_lib.world_models.WorldModel`.
        config_cls: Its frozen config dataclass with ``paper(**overrides)`` and ``tiny(**overrides)``.

    Raises:
        HierosError: If ``name`` is taken or ``config_cls`` lacks the presets.
    """
    check(
        isinstance(name, str) and name not in _BUILTIN and name not in _USER,
        "name",
        "a new registry name",
        got=repr(name),
    )
    check(
        dataclasses.is_dataclass(config_cls)
        and callable(getattr(config_cls, "paper", None))
        and callable(getattr(config_cls, "tiny", None)),
        "config_cls",
        "a dataclass with paper() and tiny() class methods",
        got=config_cls,
    )
    _USER[name] = (model_cls, config_cls)


def world_model_config(name: str, preset: str = "paper", **overrides: Any) -> Any:
    """The config of a registered model from a preset, with field overrides.

    Args:
        name: A name from :func:`available_world_models`.
        preset: ``"paper"``, ``"small"`` (CPU-sized, learns small tasks in minutes) or ``"tiny"`` (tests).
        **overrides: Config fields to change (e.g. ``action_dim=6``, ``image_size=32``).

    Returns:
        The frozen config dataclass.

    Raises:
        HierosError: On an unknown name, preset or field.

    Examples:
        >>> from hieros_lib.world_models import world_model_config
        >>> world_model_config("s5wm", "tiny", action_dim=3).action_dim
        3
    """
    _, config_cls = _resolve(name)
    check(preset in ("paper", "small", "tiny"), "preset", "'paper', 'small' or 'tiny'", got=repr(preset))
    check(callable(getattr(config_cls, preset, None)), "preset", f"a preset that {config_cls.__name__} has",
          got=repr(preset))
    fields = {field.name for field in dataclasses.fields(config_cls)}
    unknown = sorted(set(overrides) - fields)
    check(not unknown, "overrides", f"fields of {config_cls.__name__}", got=unknown)
    return getattr(config_cls, preset)(**overrides)


def make_world_model(
    name: str,
    config: Any = None,
    *,
    preset: str = "paper",
    device: Any = None,
    dtype: Any = None,
    **overrides: Any,
) -> Any:
    """Build a registered world model by name.

    Args:
        name: A name from :func:`available_world_models`.
        config: The model's config dataclass; if None, built from ``preset``.
        preset: ``"paper"``, ``"small"`` or ``"tiny"``, used when ``config`` is None.
        device: Device of the parameters (passed to the model class only when given).
        dtype: Floating dtype of the parameters (passed to the model class only when given).
        **overrides: Config fields to change.

    Returns:
        The model (a :class:`torch.nn.Module` satisfying :class:`~hieros_lib.world_models.WorldModel`).

    Raises:
        HierosError: On an unknown name, preset, field, or a config of the wrong type.

    Examples:
        >>> from hieros_lib.world_models import make_world_model
        >>> model = make_world_model("rssm", preset="tiny", action_dim=4)
        >>> model.action_dim, model.obs_shape
        (4, (16, 16, 3))
    """
    model_cls, config_cls = _resolve(name)
    if config is None:
        config = world_model_config(name, preset, **overrides)
    else:
        check(isinstance(config, config_cls), "config", f"a {config_cls.__name__}", got=type(config))
        if overrides:
            config = dataclasses.replace(config, **overrides)
    factory = {key: value for key, value in (("device", device), ("dtype", dtype)) if value is not None}
    return model_cls(config, **factory)
