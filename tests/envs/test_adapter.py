"""The Gymnasium adapter on scripted environments: every step once, exact flags, nothing shifted."""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
import pytest

from hieros_lib.envs import GymAdapter, make_env
from hieros_lib.errors import HierosError


class Scripted(gym.Env):
    """Episode ``k`` of environment ``e`` lasts ``3 + e + k % 3`` steps; even episodes terminate, odd
    ones are truncated. The observation at step ``t`` is ``[e, k, t]`` and the reward received on
    arriving at it is ``100 k + t`` (0 on reset)."""

    def __init__(self, index: int, nan_at: tuple[int, int] | None = None) -> None:
        self.index, self.nan_at = index, nan_at
        self.observation_space = gym.spaces.Box(-np.inf, np.inf, (3,), np.float64)
        self.action_space = gym.spaces.Discrete(2)
        self.episode, self.t = -1, 0

    def length(self) -> int:
        return 3 + self.index + self.episode % 3

    def obs(self) -> np.ndarray:
        value = np.array([self.index, self.episode, self.t], np.float64)
        if self.nan_at == (self.episode, self.t):
            value[2] = np.nan
        return value

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> Any:
        super().reset(seed=seed)
        self.episode += 1
        self.t = 0
        return self.obs(), {}

    def step(self, action: Any) -> Any:
        self.t += 1
        end = self.t == self.length()
        terminated = end and self.episode % 2 == 0
        truncated = end and not terminated
        return self.obs(), float(100 * self.episode + self.t), terminated, truncated, {}


def expected_stream(index: int, steps: int) -> list[dict[str, Any]]:
    """What environment ``index`` must deliver over ``steps`` adapter calls after reset (reset included)."""
    out, episode, t = [], 0, 0
    for _ in range(steps + 1):
        length = 3 + index + episode % 3
        last = t == length and t > 0
        out.append(
            {
                "obs": [index, episode, t],
                "reward": 0.0 if t == 0 else float(100 * episode + t),
                "is_first": t == 0,
                "is_last": last,
                "is_terminal": last and episode % 2 == 0,
            }
        )
        if last:
            episode, t = episode + 1, 0
        else:
            t += 1
    return out


@pytest.mark.parametrize("asynchronous", [False, True])
@pytest.mark.parametrize("num_envs", [1, 3])
def test_every_step_once_with_exact_flags(num_envs: int, asynchronous: bool) -> None:
    cls = gym.vector.AsyncVectorEnv if asynchronous else gym.vector.SyncVectorEnv
    vector = cls([lambda i=i: Scripted(i) for i in range(num_envs)])
    steps = 40
    with GymAdapter(vector, seed=0, name="scripted") as env:
        got = [env.reset()]
        rng = np.random.default_rng(0)
        for _ in range(steps):
            got.append(env.step(rng.integers(0, 2, num_envs)))
    for e in range(num_envs):
        want = expected_stream(e, steps)
        for k, (step, expected) in enumerate(zip(got, want, strict=True)):
            assert step["obs"].dtype == np.float32 and step["reward"].dtype == np.float32
            assert step["obs"][e].tolist() == expected["obs"], (e, k)
            assert step["reward"][e] == expected["reward"], (e, k)
            for flag in ("is_first", "is_last", "is_terminal"):
                assert bool(step[flag][e]) == expected[flag], (e, k, flag)
            # the design's rules: a terminal step is a last step; a first step has no end flag
            assert not step["is_terminal"][e] or step["is_last"][e]
            assert not (step["is_first"][e] and step["is_last"][e])


def test_bad_actions_and_nan_observations_are_library_errors() -> None:
    vector = gym.vector.SyncVectorEnv([lambda: Scripted(0, nan_at=(0, 2)), lambda: Scripted(1)])
    env = GymAdapter(vector, seed=0)
    with pytest.raises(HierosError, match="reset"):
        env.step([0, 0])
    env.reset()
    for bad in ([0], [0, 2], [-1, 0], [0.5, 1.0], [[0, 1]]):
        with pytest.raises(HierosError, match="actions"):
            env.step(np.array(bad))
    env.step([0, 1])
    with pytest.raises(HierosError, match="obs: expected finite observations"):
        env.step([0, 1])
    env.close()


def test_unsupported_spaces_are_refused_with_what_is_supported() -> None:
    class MultiAction(Scripted):
        def __init__(self) -> None:
            super().__init__(0)
            self.action_space = gym.spaces.MultiDiscrete([2, 3])

    with pytest.raises(HierosError, match="Discrete action space starting at 0, or a flat Box"):
        GymAdapter(gym.vector.SyncVectorEnv([MultiAction]), seed=0)
    with pytest.raises(HierosError, match="registered Gymnasium id"):
        make_env("gym:NoSuchEnv-v9", seed=0)
    with pytest.raises(HierosError, match="hieros:<name>"):
        make_env("hieros:tetris", seed=0)
    with pytest.raises(HierosError, match="spec"):
        make_env("", seed=0)

    class TextObs(Scripted):
        def __init__(self) -> None:
            super().__init__(0)
            self.observation_space = gym.spaces.Discrete(5)

    with pytest.raises(HierosError, match="single_observation_space"):
        GymAdapter(gym.vector.SyncVectorEnv([TextObs]), seed=0)


def test_vector_observations_and_rendered_pixels() -> None:
    env = make_env("gym:CartPole-v1", seed=0, num_envs=2)
    step = env.reset()
    assert step["obs"].shape == (2, 4) and step["obs"].dtype == np.float32 and env.num_actions == 2
    env.close()

    class Drawn(Scripted):
        """A vector env that renders its step counter as the brightness of a 48 x 48 picture."""

        metadata = {"render_modes": ["rgb_array"], "render_fps": 30}  # noqa: RUF012

        def __init__(self, render_mode: str | None = None) -> None:
            super().__init__(0)
            self.render_mode = render_mode

        def render(self) -> np.ndarray:
            return np.full((48, 48, 3), 10 * self.t, np.uint8)

    gym.register("HierosTestDrawn-v0", entry_point=Drawn)
    try:
        env = make_env("gym:HierosTestDrawn-v0", seed=0, pixels=True, image_size=32)
        step = env.reset()
        assert step["obs"].shape == (1, 32, 32, 3) and step["obs"].dtype == np.uint8
        assert (step["obs"] == 0).all() and (env.step([1])["obs"] == 10).all()
        env.close()
    finally:
        gym.registry.pop("HierosTestDrawn-v0")


def test_dict_observations_use_their_image() -> None:
    class DictObs(gym.Env):
        def __init__(self) -> None:
            self.observation_space = gym.spaces.Dict(
                {"image": gym.spaces.Box(0, 255, (8, 8, 3), np.uint8), "mission": gym.spaces.Discrete(3)}
            )
            self.action_space = gym.spaces.Discrete(3)

        def reset(self, *, seed: int | None = None, options: Any = None) -> Any:
            super().reset(seed=seed)
            return {"image": np.full((8, 8, 3), 7, np.uint8), "mission": 0}, {}

        def step(self, action: Any) -> Any:
            return {"image": np.full((8, 8, 3), 9, np.uint8), "mission": 0}, 1.0, False, False, {}

    gym.register("HierosTestDict-v0", entry_point=DictObs)
    try:
        env = make_env("gym:HierosTestDict-v0", seed=0, image_size=16)
        assert env.reset()["obs"].shape == (1, 16, 16, 3)
        assert (env.step([0])["obs"] == 9).all()
        env.close()
    finally:
        gym.registry.pop("HierosTestDict-v0")


@pytest.mark.parametrize(
    ("spec", "kwargs", "message"),
    [
        ("hieros:catch", {"bogus": 1}, r"options: 'hieros:catch' does not take \['bogus'\]"),
        ("gym:CartPole-v1", {"length": 40}, r"options: 'CartPole-v1' does not take \['length'\]"),
        ("atari:Pong", {"length": 40}, r"options: expected options of the Atari protocol"),
        ("hieros:catch", {"asynchronous": "yes"}, "asynchronous: expected True or False"),
        ("gym:CartPole-v1", {"pixels": 1}, "pixels: expected True, False or None"),
    ],
)
def test_unknown_options_and_non_bool_flags_are_named(
    spec: str, kwargs: dict[str, Any], message: str
) -> None:
    with pytest.raises(HierosError, match=message):
        make_env(spec, seed=0, **kwargs)


def test_a_classic_control_env_observed_as_pixels() -> None:
    """``pixels=True`` renders with pygame (the ``pixels`` extra): CartPole becomes 32 x 32 images."""
    env = make_env("gym:CartPole-v1", seed=0, pixels=True, image_size=32)
    step = env.reset()
    assert step["obs"].shape == (1, 32, 32, 3) and step["obs"].dtype == np.uint8
    assert 0 < step["obs"].mean() < 255  # a drawn cart, not a blank frame
    env.close()
