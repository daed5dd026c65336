"""``hieros_lib.world_models``: the :class:`WorldModel` protocol, S5WM, RSSM and TWM behind it.

Every model takes a replay sequence *as stored* (``action[t]`` chosen after ``obs[t]``) and shifts the
actions itself through :func:`shift_actions`, the one place where that happens. Imagination goes through
the one shared loop :func:`imagine`. Models are built by name with :func:`make_world_model`.
"""

from hieros_lib.world_models._protocol import (
    BATCH_FIELDS,
    Imagination,
    ImaginedStep,
    Observation,
    Policy,
    WorldModel,
    WorldModelLoss,
    detach_state,
    flatten_time,
    imagine,
    map_state,
    shift_actions,
    validate_action,
    validate_batch,
    validate_sequence,
    validate_state,
)
from hieros_lib.world_models._registry import (
    available_world_models,
    make_world_model,
    register_world_model,
    world_model_config,
)
from hieros_lib.world_models._rssm import RSSM, RSSMConfig, RSSMState
from hieros_lib.world_models._s5wm import S5WM, S5WMConfig, S5WMState
from hieros_lib.world_models._twm import TWM, TWMConfig, TWMState

__all__ = [
    "BATCH_FIELDS",
    "RSSM",
    "S5WM",
    "TWM",
    "Imagination",
    "ImaginedStep",
    "Observation",
    "Policy",
    "RSSMConfig",
    "RSSMState",
    "S5WMConfig",
    "S5WMState",
    "TWMConfig",
    "TWMState",
    "WorldModel",
    "WorldModelLoss",
    "available_world_models",
    "detach_state",
    "flatten_time",
    "imagine",
    "make_world_model",
    "map_state",
    "register_world_model",
    "shift_actions",
    "validate_action",
    "validate_batch",
    "validate_sequence",
    "validate_state",
    "world_model_config",
]
