"""Continuous (Box) action spaces: the adapter's [-1, 1] interface, Pendulum and the MuJoCo tasks, action
repeat, and the DeepMind Control Suite wrapper (on a scripted dm_env-like task)."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import gymnasium as gym
import numpy as np
import pytest

from hieros_lib.envs import GymAdapter, make_env
from hieros_lib.envs._dmc import ActionRepeat, DMCEnv
from hieros_lib.errors import HierosError


class Recorder(gym.Env):
    """A Box-action env that returns the action it got as its observation."""

    def __init__(self, low: Any = (-2.0, 0.0), high: Any = (2.0, 10.0)) -> None:
        self.action_space = gym.spaces.Box(np.array(low, np.float32), np.array(high, np.float32))
        self.observation_space = gym.spaces.Box(-np.inf, np.inf, (len(low),), np.float32)

    def reset(self, *, seed: int | None = None, options: dict | None = None) -> tuple[Any, dict]:
        super().reset(seed=seed)
        return np.zeros(self.observation_space.shape, np.float32), {}

    def step(self, action: Any) -> tuple[Any, float, bool, bool, dict]:
        return np.asarray(action, np.float32), 1.0, False, False, {}


def adapter(env_fn: Any) -> GymAdapter:
    return GymAdapter(gym.vector.SyncVectorEnv([env_fn, env_fn]), seed=0)


def test_actions_in_minus_one_one_are_rescaled_to_the_bounds_and_clipped() -> None:
    env = adapter(lambda: Recorder())
    assert env.continuous and env.num_actions == 2
    env.reset()
    step = env.step(np.array([[-1.0, 1.0], [0.0, 5.0]], np.float32))  # 5 is clipped to 1
    np.testing.assert_allclose(step["obs"], [[-2.0, 10.0], [0.0, 10.0]])
    for bad, match in ((np.full((2, 2), np.nan), "finite"), (np.zeros((2, 3)), r"shape \(2, 2\)"),
                       (np.zeros((2, 2), np.int64), "float")):
        with pytest.raises(HierosError, match=match):
            env.step(bad)
    env.close()


def test_unbounded_or_nested_boxes_are_refused() -> None:
    with pytest.raises(HierosError, match="finite bounds"):
        adapter(lambda: Recorder(low=(-np.inf, 0.0), high=(1.0, 1.0)))

    class Matrix(Recorder):
        def __init__(self) -> None:
            super().__init__()
            self.action_space = gym.spaces.Box(-1.0, 1.0, (2, 2), np.float32)

    with pytest.raises(HierosError, match="flat Box"):
        adapter(lambda: Matrix())


@pytest.mark.parametrize("spec", ["gym:Pendulum-v1", "gym:MountainCarContinuous-v0", "gym:HalfCheetah-v5"])
def test_classic_control_and_mujoco_tasks_take_continuous_actions(spec: str) -> None:
    env = make_env(spec, seed=0, num_envs=2)
    assert env.continuous and env.obs_shape[0] >= 2
    env.reset()
    step = env.step(np.ones((2, env.num_actions), np.float32))
    assert step["obs"].dtype == np.float32 and np.isfinite(step["reward"]).all()
    env.close()


def test_action_repeat_sums_rewards_and_stops_at_the_end() -> None:
    env = make_env("gym:Pendulum-v1", seed=0, action_repeat=4)
    env.reset()
    steps = 0
    while not env.step(np.zeros((1, 1), np.float32))["is_last"][0]:
        steps += 1
    assert steps + 1 == 50  # 200 frames, 4 per step
    with pytest.raises(HierosError, match="action_repeat"):
        make_env("hieros:catch", seed=0, action_repeat=2)


class ScriptedTask:
    """A dm_env-like task: observation = step count, reward 1 per step, the last step at step 5 ends with
    discount ``end_discount``; physics.render draws the step count."""

    def __init__(self, end_discount: float = 1.0) -> None:
        self.end_discount, self.t = end_discount, 0
        self.physics = SimpleNamespace(render=lambda h, w, camera_id: np.full((h, w, 3), self.t, np.uint8))

    def action_spec(self) -> Any:
        return SimpleNamespace(minimum=np.array([-1.0]), maximum=np.array([1.0]))

    def observation_spec(self) -> dict[str, Any]:
        return {"position": SimpleNamespace(shape=(2,)), "velocity": SimpleNamespace(shape=())}

    def _step(self, first: bool) -> Any:
        last = self.t >= 5
        return SimpleNamespace(
            observation={"position": np.full(2, self.t), "velocity": np.float64(-self.t)},
            reward=None if first else 1.0,
            discount=self.end_discount if last else 1.0,
            last=lambda: last,
        )

    def reset(self) -> Any:
        self.t = 0
        return self._step(first=True)

    def step(self, action: Any) -> Any:
        self.t += 1
        return self._step(first=False)


@pytest.mark.parametrize("end_discount", [1.0, 0.0])
def test_the_dmc_wrapper_renders_repeats_and_ends_episodes(end_discount: float) -> None:
    made: list[int | None] = []

    def make(seed: int | None) -> ScriptedTask:
        made.append(seed)
        return ScriptedTask(end_discount)

    env = ActionRepeat(DMCEnv(make, image_size=8, camera=0, pixels=True, name="dmc:test"), 2)
    obs, _ = env.reset(seed=3)
    assert made == [None, 3] and obs.shape == (8, 8, 3) and obs.max() == 0
    obs, reward, terminated, truncated, _ = env.step(np.zeros(1))
    assert reward == 2.0 and obs.max() == 2 and not (terminated or truncated)
    env.step(np.zeros(1))
    obs, reward, terminated, truncated, _ = env.step(np.zeros(1))  # step 5 ends the episode after one
    assert reward == 1.0 and obs.max() == 5
    assert (terminated, truncated) == ((False, True) if end_discount else (True, False))
    vector = DMCEnv(make, image_size=8, camera=0, pixels=False, name="dmc:test")
    assert vector.observation_space.shape == (3,)
    np.testing.assert_allclose(vector.reset()[0], [0.0, 0.0, -0.0])
