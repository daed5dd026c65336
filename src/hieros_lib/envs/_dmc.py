"""The DeepMind Control Suite as Gymnasium environments, and action repeat for any Gymnasium environment.

This module imports gymnasium at the top; dm-control is imported only when a suite task is made.
"""

from __future__ import annotations

import importlib
import importlib.util
from collections.abc import Callable
from typing import Any

import numpy as np

from hieros_lib.errors import HierosError, check, check_int

try:
    import gymnasium as gym
except ImportError as err:  # pragma: no cover - exercised only without the extra
    raise HierosError("hieros_lib.envs needs gymnasium: pip install 'hieros-lib[envs]'") from err

__all__: list[str] = []

# The cameras DreamerV3's DMC environment uses (its embodied/envs/dmc.py); every other domain: camera 0.
DEFAULT_CAMERAS = {"quadruped": 2, "locom_rodent": 1}


class ActionRepeat(gym.Wrapper):
    """Repeat every action ``repeat`` times, summing the rewards; an episode that ends inside a step ends
    the step (its last observation is returned)."""

    def __init__(self, env: Any, repeat: int) -> None:
        super().__init__(env)
        self.repeat = check_int(repeat, "action_repeat", minimum=1)

    def step(self, action: Any) -> tuple[Any, float, bool, bool, dict]:
        total = 0.0
        obs: Any = None
        terminated = truncated = False
        info: dict[str, Any] = {}
        for _ in range(self.repeat):
            obs, reward, terminated, truncated, info = self.env.step(action)
            total += float(reward)
            if terminated or truncated:
                break
        return obs, total, terminated, truncated, info


class DMCEnv(gym.Env):
    """A DeepMind Control Suite task (a ``dm_env`` environment) as a Gymnasium environment.

    Observations are the rendering of ``camera`` at ``image_size`` x ``image_size`` (uint8 RGB, the "from
    pixels" protocol) or, with ``pixels=False``, the proprioceptive observations concatenated into one
    float32 vector (in the order of the task's observation spec). Actions are the task's bounded Box. An
    episode that the task ends with discount 0 is terminated; one that it ends otherwise (the suite's
    time limit, 1000 steps) is truncated. Rewards are the task's.

    Args:
        make: ``make(seed)`` builds the ``dm_env`` environment, seeding the task's random state (the
            suite's ``task_kwargs={"random": seed}``); called again by :meth:`reset` with a seed.
        image_size: Side of the rendered observation.
        camera: Camera id for rendering.
        pixels: Observe the rendering (True) or the proprioceptive vector.
        name: For messages.
    """

    metadata: dict[str, Any] = {"render_modes": ["rgb_array"], "render_fps": 50}  # noqa: RUF012

    def __init__(
        self, make: Callable[[int | None], Any], *, image_size: int, camera: int, pixels: bool, name: str
    ) -> None:
        self._make, self.name = make, name
        self.image_size, self.camera, self.pixels = image_size, camera, pixels
        self.render_mode = "rgb_array"
        self._env = make(None)
        spec = self._env.action_spec()
        self.action_space = gym.spaces.Box(
            np.asarray(spec.minimum, np.float32), np.asarray(spec.maximum, np.float32), dtype=np.float32
        )
        if pixels:
            self.observation_space = gym.spaces.Box(0, 255, (image_size, image_size, 3), np.uint8)
        else:
            size = sum(int(np.prod(s.shape)) for s in self._env.observation_spec().values())
            self.observation_space = gym.spaces.Box(-np.inf, np.inf, (size,), np.float32)

    def _observe(self, timestep: Any) -> np.ndarray:
        if self.pixels:
            return self.render()
        return np.concatenate([np.asarray(v, np.float32).reshape(-1) for v in timestep.observation.values()])

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[Any, dict]:
        super().reset(seed=seed)
        if seed is not None:
            self._env = self._make(seed)
        return self._observe(self._env.reset()), {}

    def step(self, action: Any) -> tuple[Any, float, bool, bool, dict]:
        timestep = self._env.step(np.asarray(action, np.float64))
        reward = float(timestep.reward or 0.0)
        last = bool(timestep.last())
        terminated = last and float(timestep.discount) == 0.0
        return self._observe(timestep), reward, terminated, last and not terminated, {}

    def render(self) -> np.ndarray:
        try:
            frame = self._env.physics.render(self.image_size, self.image_size, camera_id=self.camera)
        except Exception as err:  # MuJoCo's OpenGL errors come as several types; re-raised with the fix
            raise HierosError(
                f"rendering {self.name} failed ({type(err).__name__}: {err}): MuJoCo needs an OpenGL "
                "back end; without a display set MUJOCO_GL=egl (Mesa's or a GPU's EGL) or MUJOCO_GL=osmesa "
                "before starting"
            ) from err
        return np.asarray(frame, np.uint8)


def dmc_fn(
    name: str, *, image_size: int, action_repeat: int, camera: int | None, pixels: bool
) -> Callable[[], Any]:
    """A factory of ``dmc:<domain>-<task>`` environments (e.g. ``walker-walk``, ``ball_in_cup-catch``)."""
    domain, sep, task = name.partition("-")
    check(bool(sep) and domain != "" and task != "", "spec", "'dmc:<domain>-<task>', e.g. 'dmc:walker-walk'",
          got=repr(name))
    action_repeat = check_int(action_repeat, "action_repeat", minimum=1)
    image_size = check_int(image_size, "image_size", minimum=1)
    camera = DEFAULT_CAMERAS.get(domain, 0) if camera is None else check_int(camera, "camera", minimum=0)
    if importlib.util.find_spec("triton") is not None:
        # MuJoCo's rendering through Mesa (llvmpipe) and Triton each load their own LLVM: importing Triton
        # after the renderer had started crashed the process (a segfault, measured with MUJOCO_GL=egl;
        # torch's compiler support imports Triton on first use); imported before, both work
        importlib.import_module("triton")
    try:
        suite = importlib.import_module("dm_control.suite")
    except ImportError as err:
        message = "the DeepMind Control Suite needs dm-control: pip install 'hieros-lib[dmc]'"
        raise HierosError(message) from err
    check((domain, task) in suite.ALL_TASKS, "spec", f"a task of the DeepMind Control Suite, e.g. "
          f"{sorted(f'{d}-{t}' for d, t in suite.ALL_TASKS)[:6]}", got=repr(name))

    def make_task(seed: int | None) -> Any:
        return suite.load(domain, task, task_kwargs={"random": seed})

    def make() -> Any:
        env = DMCEnv(make_task, image_size=image_size, camera=camera, pixels=pixels, name=f"dmc:{name}")
        return ActionRepeat(env, action_repeat)

    return make
