"""Gymnasium environments for the adapter: the Atari 100k protocol, any registered id, embedded games.

This module imports gymnasium at the top; :mod:`hieros_lib.envs` imports it only when an environment is
made, so importing the package needs no optional dependency.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

import numpy as np

from hieros_lib._games import atari_game
from hieros_lib.envs._adapter import GymAdapter
from hieros_lib.envs._catch import Catch
from hieros_lib.envs._dmc import ActionRepeat
from hieros_lib.envs._pinpad import PinPad
from hieros_lib.envs._rooms import Rooms
from hieros_lib.errors import HierosError, check, check_int

try:
    import gymnasium as gym
except ImportError as err:  # pragma: no cover - exercised only without the extra
    raise HierosError(
        "hieros_lib.envs needs gymnasium: pip install 'hieros-lib[envs]' (or [atari] for Atari)"
    ) from err

__all__: list[str] = []

EnvFn = Callable[[], Any]

# Packages that register Gymnasium ids when imported, by the prefix of the ids they register.
_REGISTERING = {"ALE/": "ale_py", "MiniGrid-": "minigrid", "BabyAI-": "minigrid", "MinAtar/": "minatar"}


def _cv2() -> Any:
    try:
        return importlib.import_module("cv2")
    except ImportError as err:
        raise HierosError(
            "resizing images needs OpenCV: pip install opencv-python-headless (part of hieros-lib[atari])"
        ) from err


def resize(image: np.ndarray, size: int) -> np.ndarray:
    """``(H, W, C)`` uint8 -> ``(size, size, C)`` with area interpolation (OpenCV ``INTER_AREA``)."""
    if image.shape[0] == size and image.shape[1] == size:
        return image
    out = _cv2().resize(image, (size, size), interpolation=_cv2().INTER_AREA)
    return out[..., None] if out.ndim == 2 else out


# ---------------------------------------------------------------------------------------------- embedded
class EmbeddedEnv(gym.Env):
    """A Gymnasium face for the NumPy games (:class:`Catch`, :class:`PinPad`, :class:`Rooms`); ``core`` is
    the game, and its ``info()`` (if it has one) is the step's info."""

    metadata: dict[str, Any] = {"render_modes": ["rgb_array"], "render_fps": 15}  # noqa: RUF012

    def __init__(self, core: Catch | PinPad | Rooms) -> None:
        self.core = core
        self.observation_space = gym.spaces.Box(0, 255, core.obs_shape, np.uint8)
        self.action_space = gym.spaces.Discrete(core.num_actions)
        self.render_mode = "rgb_array"

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[Any, dict]:
        super().reset(seed=seed)
        obs = self.core.reset(seed=seed)
        return obs, self._info()

    def step(self, action: Any) -> tuple[Any, float, bool, bool, dict]:
        obs, reward, terminated, truncated = self.core.step(int(action))
        return obs, reward, terminated, truncated, self._info()

    def _info(self) -> dict[str, Any]:
        info = getattr(self.core, "info", None)
        return dict(info()) if info is not None else {}

    def render(self) -> np.ndarray:
        return self.core.render()


_EMBEDDED: dict[str, Callable[..., Catch | PinPad | Rooms]] = {
    "catch": lambda **kw: Catch(**kw),
    "rooms": lambda **kw: Rooms(**kw),
    **{f"pinpad-{task}": (lambda task=task, **kw: PinPad(task, **kw)) for task in
       ("three", "four", "five", "six", "seven", "eight")},
}


def embedded_fn(name: str, image_size: int | None, kwargs: dict[str, Any]) -> EnvFn:
    check(name in _EMBEDDED, "spec", f"'hieros:<name>' with a name in {sorted(_EMBEDDED)}", got=repr(name))
    options = dict(kwargs)
    if image_size is not None:
        options["image_size"] = image_size
    try:
        _EMBEDDED[name](**options)  # fail here, in this process, on bad arguments
    except TypeError as err:
        raise HierosError(f"options: 'hieros:{name}' does not take {sorted(kwargs)} ({err})") from err
    return lambda: EmbeddedEnv(_EMBEDDED[name](**options))


# -------------------------------------------------------------------------------------------- any gym id
class ObservationAdapter(gym.ObservationWrapper):
    """Images resized to ``image_size`` (uint8), dicts reduced to their ``"image"``, vectors as float32,
    or, with ``pixels``, the ``rgb_array`` rendering as the observation."""

    def __init__(self, env: Any, *, image_size: int | None, pixels: bool, env_id: str) -> None:
        super().__init__(env)
        space = env.observation_space
        self.size: int | None = None
        if pixels:
            check(env.render_mode == "rgb_array", "pixels", f"an env rendering 'rgb_array' ({env_id})",
                  got=env.render_mode)
            self.kind = "pixels"
            self.size = image_size or 64
            self.observation_space = gym.spaces.Box(0, 255, (self.size, self.size, 3), np.uint8)
            return
        self.kind = "plain"
        if isinstance(space, gym.spaces.Dict):
            check("image" in space.spaces, "env", f"a dict observation with an 'image' key ({env_id})",
                  got=list(space.spaces))
            self.kind, space = "dict", space.spaces["image"]
        shape: Any = getattr(space, "shape", None)
        check(
            isinstance(space, gym.spaces.Box) and shape is not None and len(shape) in (1, 3),
            "env",
            f"a Box observation of images (H, W, C) or vectors (D,) ({env_id}); a vector env can also be "
            "observed as pixels with pixels=True",
            got=env.observation_space,
        )
        if len(shape) == 3:
            check(space.dtype == np.uint8, "env", f"uint8 images ({env_id})", got=space.dtype)
            self.size = image_size
            height, width = (image_size, image_size) if image_size else shape[:2]
            self.observation_space = gym.spaces.Box(0, 255, (height, width, shape[2]), np.uint8)
        else:
            self.observation_space = gym.spaces.Box(-np.inf, np.inf, shape, np.float32)

    def observation(self, observation: Any) -> np.ndarray:
        if self.kind == "pixels":
            observation = self.env.render()
        elif self.kind == "dict":
            observation = observation["image"]
        observation = np.asarray(observation)
        if self.observation_space.dtype == np.uint8:
            image = observation.astype(np.uint8)
            return resize(image, self.size) if self.size else image
        return observation.astype(np.float32)


def _ensure_registered(env_id: str) -> None:
    module = env_id.partition(":")[0] if ":" in env_id else None
    for prefix, package in _REGISTERING.items():
        if env_id.startswith(prefix):
            module = package
    if module:
        try:
            imported = importlib.import_module(module)
        except ImportError as err:
            raise HierosError(f"spec: {env_id!r} needs the package {module!r} (pip install it)") from err
        if module == "minatar":
            imported.gym.register_envs()


def gym_fn(
    env_id: str, image_size: int | None, pixels: bool, kwargs: dict[str, Any], *, action_repeat: int = 1
) -> EnvFn:
    _ensure_registered(env_id)
    make_id = env_id.partition(":")[2] if ":" in env_id else env_id
    options = dict(kwargs)
    if pixels:
        options.setdefault("render_mode", "rgb_array")
    try:
        probe = gym.make(make_id, **options)
    except gym.error.Error as err:
        raise HierosError(f"spec: expected a registered Gymnasium id, got {env_id!r} ({err})") from err
    except TypeError as err:  # an option the environment's constructor does not take
        raise HierosError(f"options: {env_id!r} does not take {sorted(kwargs)} ({err})") from err
    try:
        check(isinstance(probe.action_space, (gym.spaces.Discrete, gym.spaces.Box)), "env",
              f"a Discrete or a Box action space ({env_id})", got=probe.action_space)
        ObservationAdapter(probe, image_size=image_size, pixels=pixels, env_id=env_id)  # fail here, early
        if pixels:
            probe.reset(seed=0)
            try:
                frame = probe.render()
            except gym.error.DependencyNotInstalled as err:
                raise HierosError(f"pixels: rendering {env_id!r} needs a missing package ({err})") from err
            check(isinstance(frame, np.ndarray) and frame.ndim == 3, "pixels",
                  f"an rgb_array rendering (H, W, 3) from {env_id!r}", got=type(frame).__name__)
    finally:
        probe.close()

    action_repeat = check_int(action_repeat, "action_repeat", minimum=1)

    def make() -> Any:
        env = ObservationAdapter(gym.make(make_id, **options), image_size=image_size, pixels=pixels,
                                 env_id=env_id)
        return ActionRepeat(env, action_repeat) if action_repeat > 1 else env

    return make


# -------------------------------------------------------------------------------------------- Atari 100k
class AtariProtocol(gym.Wrapper):
    """The Atari 100k protocol on an ALE environment created with ``frameskip=1``.

    Each step repeats the action ``frame_skip`` times, sums the rewards and returns the pixel-wise
    maximum of the last two frames (also when the episode ends earlier inside the step), resized to
    ``image_size`` with area interpolation. ``reset`` plays ``U{0, noop_max}`` no-op frames. With
    ``terminal_on_life_loss`` a lost life ends the episode as terminal, and the next ``reset`` continues
    the same game (no emulator reset) unless it is over.
    """

    def __init__(
        self,
        env: Any,
        *,
        image_size: int,
        frame_skip: int,
        noop_max: int,
        terminal_on_life_loss: bool,
    ) -> None:
        super().__init__(env)
        self.image_size, self.frame_skip, self.noop_max = image_size, frame_skip, noop_max
        self.terminal_on_life_loss = terminal_on_life_loss
        meanings = env.unwrapped.get_action_meanings()
        check(noop_max == 0 or meanings[0] == "NOOP", "noop_max", "0 for a game whose action 0 is not NOOP")
        self.observation_space = gym.spaces.Box(0, 255, (image_size, image_size, 3), np.uint8)
        self._lives = 0
        self._continue_game = False
        self._last = np.zeros((image_size, image_size, 3), np.uint8)

    def _lives_of(self, info: dict[str, Any]) -> int:
        ale: Any = getattr(self.env.unwrapped, "ale", None)
        return int(info["lives"]) if "lives" in info else int(ale.lives())

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[Any, dict]:
        if self._continue_game and seed is None:
            self._continue_game = False
            return self._last, {"lives": self._lives, "continued": True}
        self._continue_game = False
        frame, info = self.env.reset(seed=seed, options=options)
        previous = frame
        noops = int(self.env.unwrapped.np_random.integers(0, self.noop_max + 1))
        for _ in range(noops):
            previous, (frame, _, terminated, truncated, info) = frame, self.env.step(0)
            if terminated or truncated:
                frame, info = self.env.reset()
                previous = frame
        info = dict(info, noops=noops)
        self._lives = self._lives_of(info)
        self._last = resize(np.maximum(previous, frame), self.image_size)
        return self._last, info

    def step(self, action: Any) -> tuple[Any, float, bool, bool, dict]:
        total = 0.0
        previous: Any = None
        last: Any = None
        terminated = truncated = False
        info: dict[str, Any] = {}
        for _ in range(self.frame_skip):
            frame, reward, terminated, truncated, info = self.env.step(action)
            previous, last = last, frame
            total += float(reward)
            if terminated or truncated:
                break
        pooled = last if previous is None else np.maximum(previous, last)
        lives = self._lives_of(info)
        if self.terminal_on_life_loss and lives < self._lives and not (terminated or truncated):
            terminated = True
            self._continue_game = True
        self._lives = lives
        self._last = resize(pooled, self.image_size)
        return self._last, total, bool(terminated), bool(truncated), info


def atari_fn(
    game: str,
    *,
    image_size: int,
    frame_skip: int,
    noop_max: int,
    repeat_action_probability: float,
    terminal_on_life_loss: bool,
    max_frames: int,
    full_action_space: bool,
) -> EnvFn:
    name = atari_game(game)
    try:
        importlib.import_module("ale_py")
    except ImportError as err:
        raise HierosError("Atari needs ale-py: pip install 'hieros-lib[atari]'") from err
    _cv2()

    def make() -> Any:
        env = gym.make(
            f"ALE/{name}-v5",
            frameskip=1,
            repeat_action_probability=repeat_action_probability,
            full_action_space=full_action_space,
            max_num_frames_per_episode=max_frames,
        )
        return AtariProtocol(
            env,
            image_size=image_size,
            frame_skip=frame_skip,
            noop_max=noop_max,
            terminal_on_life_loss=terminal_on_life_loss,
        )

    return make


# ----------------------------------------------------------------------------------------------- vector
def vectorize(
    fns: list[EnvFn], *, seed: int, asynchronous: bool, name: str, info_keys: tuple[str, ...] = ()
) -> GymAdapter:
    """Run ``fns`` in one process (``SyncVectorEnv``) or one subprocess each (``AsyncVectorEnv``)."""
    mode = gym.vector.AutoresetMode.NEXT_STEP
    vector: Any
    if asynchronous:
        vector = gym.vector.AsyncVectorEnv(fns, autoreset_mode=mode)
    else:
        vector = gym.vector.SyncVectorEnv(fns, autoreset_mode=mode)
    return GymAdapter(vector, seed=seed, name=name, info_keys=info_keys)


def num_envs_of(num_envs: int) -> int:
    return check_int(num_envs, "num_envs", minimum=1)
