"""``hieros_lib.training``: the training loop of Hieros, its configs and its run directory.

* :func:`train` (and :class:`Trainer`): act in ``N`` environments, store every level's steps, train at the
  paper's ratio, evaluate, log, draw and checkpoint, all counted in environment steps; running again with
  the same run directory resumes exactly.
* :class:`TrainConfig` (:class:`EnvConfig`, :class:`RunConfig` and the agent's
  :class:`~hieros_lib.agents.HierosConfig`) and the presets of :data:`PRESETS`; :func:`make_config`
  applies ``key=value`` overrides (parsed and type-checked by OmegaConf).
* :func:`main`: the command line, ``hieros-train`` (also ``examples/train_hieros.py``).

The optional dependencies (OmegaConf, tqdm, TensorBoard, matplotlib, Pillow) come with
``pip install "hieros-lib[train]"``.
"""

from hieros_lib.training._cli import main
from hieros_lib.training._config import (
    PRESETS,
    EnvConfig,
    RunConfig,
    TrainConfig,
    config_from_yaml,
    config_to_yaml,
    make_config,
)
from hieros_lib.training._loop import TIMING_KEYS, Trainer, reference_returns, train

__all__ = [
    "PRESETS",
    "TIMING_KEYS",
    "EnvConfig",
    "RunConfig",
    "TrainConfig",
    "Trainer",
    "config_from_yaml",
    "config_to_yaml",
    "main",
    "make_config",
    "reference_returns",
    "train",
]
