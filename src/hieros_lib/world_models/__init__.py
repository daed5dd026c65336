"""``hieros_lib.world_models``: the :class:`WorldModel` protocol, S5WM, RSSM and TWM behind it.

Every model takes a replay sequence *as stored* (``action[t]`` chosen after ``obs[t]``) and shifts the
actions itself through :func:`shift_actions`, the one place where that happens. Imagination goes through
the one shared loop :func:`imagine`. Models are built by name with :func:`make_world_model`.

The modules: ``_protocol`` (the protocol and its data types), ``_algorithms`` (the action shift and the
imagination loop), ``_validate`` (the input checks), ``_codec`` (the observation encoder and decoder every
model builds), the models and their registry; the state-tree utilities (:func:`map_state`,
:func:`detach_state`, :func:`flatten_time`, :func:`where_state`) live in ``hieros_lib._tree``.
"""

from hieros_lib._tree import detach_state, flatten_time, map_state, where_state
from hieros_lib.world_models._algorithms import imagine, shift_actions
from hieros_lib.world_models._protocol import (
    BATCH_FIELDS,
    Imagination,
    ImaginedStep,
    Observation,
    Policy,
    WorldModel,
    WorldModelLoss,
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
from hieros_lib.world_models._validate import (
    validate_action,
    validate_batch,
    validate_sequence,
    validate_state,
)

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
    "where_state",
    "world_model_config",
]
