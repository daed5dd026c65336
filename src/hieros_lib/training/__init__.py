"""``hieros_lib.training``: the training loop of Hieros, its configs and its run directory.

* :func:`train` (and :class:`Trainer`): act in ``N`` environments, store every level's steps, train at the
  paper's ratio, evaluate, log, draw and checkpoint, all counted in environment steps; running again with
  the same run directory resumes exactly, also after ``kill -9``.
* :class:`TrainConfig` (:class:`EnvConfig`, :class:`RunConfig` and the agent's
  :class:`~hieros_lib.agents.HierosConfig`) and the presets of :data:`PRESETS`; :func:`make_config`
  applies ``key=value`` overrides (parsed and type-checked by OmegaConf).
* :class:`StopSignal`: how SIGINT / SIGTERM (or :meth:`Trainer.request_stop`) stop a run cleanly.
* :func:`sweep` (:class:`SweepSpec`): many runs, variants x environments x seeds, as Ray tasks on this
  machine or a cluster, idempotent and resumable; :func:`sweep_report` writes their report (final returns
  over seeds, the Atari 100k aggregates with bootstrap intervals, curves); ``hieros-sweep``
  (:func:`sweep_main`) is its command line.
* :func:`goal_following` (:class:`GoalFollowingConfig`): does one level reach the cells its subgoals
  stand for? The mechanism of the hierarchy measured on :class:`~hieros_lib.envs.Rooms`.
* :func:`main`: the command line, ``hieros-train`` (also ``examples/train_hieros.py``).

The modules: ``_config`` (configs and presets), ``_rundir`` (the run directory and its checks),
``_checkpoint`` (numbered, checksummed checkpoints), ``_counters`` (what a run counts), ``_logger``
(JSON lines, TensorBoard, progress), ``_evaluation`` (evaluation episodes and their pictures),
``_loop`` (the loop itself), ``_subgoals`` (subgoal achievement per level), ``_goals`` (the
goal-following experiment), ``_cli`` (the command line), ``_sweep``, ``_report`` and ``_sweep_cli``
(sweeps, their report and their command line).

Importing this package is cheap: everything but :func:`main` is loaded on first use, so the command line
catches signals before it imports torch. The optional dependencies (OmegaConf, tqdm, TensorBoard,
matplotlib, Pillow) come with ``pip install "hieros-lib[train]"``.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from hieros_lib.training._cli import EXIT_CODES, main

if TYPE_CHECKING:
    from hieros_lib.training._config import (
        PRESETS,
        EnvConfig,
        RunConfig,
        TrainConfig,
        config_from_yaml,
        config_to_yaml,
        make_config,
    )
    from hieros_lib.training._goals import GoalFollowingConfig, goal_following
    from hieros_lib.training._loop import TIMING_KEYS, Trainer, reference_returns, train
    from hieros_lib.training._report import sweep_report
    from hieros_lib.training._signals import StopSignal
    from hieros_lib.training._sweep import SweepSpec, sweep
    from hieros_lib.training._sweep_cli import sweep_main

__all__ = [
    "EXIT_CODES",
    "PRESETS",
    "TIMING_KEYS",
    "EnvConfig",
    "GoalFollowingConfig",
    "RunConfig",
    "StopSignal",
    "SweepSpec",
    "TrainConfig",
    "Trainer",
    "config_from_yaml",
    "config_to_yaml",
    "goal_following",
    "main",
    "make_config",
    "reference_returns",
    "sweep",
    "sweep_main",
    "sweep_report",
    "train",
]

_LAZY = {
    "GoalFollowingConfig": "_goals",
    "goal_following": "_goals",
    "PRESETS": "_config",
    "EnvConfig": "_config",
    "RunConfig": "_config",
    "TrainConfig": "_config",
    "config_from_yaml": "_config",
    "config_to_yaml": "_config",
    "make_config": "_config",
    "TIMING_KEYS": "_loop",
    "Trainer": "_loop",
    "reference_returns": "_loop",
    "train": "_loop",
    "StopSignal": "_signals",
    "SweepSpec": "_sweep",
    "sweep": "_sweep",
    "sweep_report": "_report",
    "sweep_main": "_sweep_cli",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'hieros_lib.training' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"hieros_lib.training.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
