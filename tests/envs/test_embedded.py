"""The embedded games: deterministic under a seed, their documented returns, and through the adapter."""

from __future__ import annotations

import numpy as np
import pytest

from hieros_lib.envs import EMBEDDED_ENVS, Catch, PinPad, make_env
from hieros_lib.errors import HierosError


def rollout(env: Catch | PinPad, policy: str, rng: np.random.Generator, episodes: int) -> np.ndarray:
    returns = []
    for _ in range(episodes):
        env.reset()
        total, done = 0.0, False
        while not done:
            action = env.optimal_action() if policy == "optimal" else int(rng.integers(env.num_actions))
            _, reward, terminated, truncated = env.step(action)
            total += reward
            done = terminated or truncated
        returns.append(total)
    return np.array(returns)


def test_catch_returns_match_its_docs() -> None:
    env = Catch(image_size=8, seed=0)
    assert (rollout(env, "optimal", np.random.default_rng(0), 20) == 12.0).all()
    random = rollout(env, "random", np.random.default_rng(1), 2000)
    # documented: -6.01 (standard error 0.02 over 20,000 episodes); here 2000 episodes, SE ~0.07
    assert abs(random.mean() - (-6.01)) < 0.3, random.mean()
    wide = Catch(image_size=24, seed=0, columns=6)
    assert (rollout(wide, "optimal", np.random.default_rng(0), 5) == 12).all()


def test_pinpad_returns_match_its_docs() -> None:
    env = PinPad("three", image_size=16, length=1000, seed=0)
    scripted = rollout(env, "optimal", np.random.default_rng(0), 20)
    assert abs(scripted.mean() - 225.0) < 10.0, scripted.mean()
    five = PinPad("five", image_size=16, length=1000, seed=0)
    assert abs(rollout(five, "optimal", np.random.default_rng(0), 10).mean() - 151.0) < 10.0
    assert rollout(five, "random", np.random.default_rng(1), 20).sum() == 0.0


@pytest.mark.parametrize("cls", [Catch, PinPad])
def test_same_seed_same_episode(cls: type) -> None:
    def frames(seed: int) -> list[np.ndarray]:
        env = cls(image_size=16, seed=seed)
        rng = np.random.default_rng(5)
        out = [env.reset()]
        out += [env.step(int(rng.integers(env.num_actions)))[0] for _ in range(60)]
        return out

    a, b, c = frames(3), frames(3), frames(4)
    assert all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))
    assert not all(np.array_equal(x, y) for x, y in zip(a, c, strict=True))


@pytest.mark.parametrize("cls", [Catch, PinPad])
def test_state_round_trip_continues_identically(cls: type) -> None:
    env = cls(image_size=16, seed=1)
    env.reset()
    rng = np.random.default_rng(2)
    for _ in range(25):
        env.step(int(rng.integers(env.num_actions)))
    state = env.get_state()
    actions = rng.integers(env.num_actions, size=40)
    first = [env.step(int(a)) for a in actions]
    other = cls(image_size=16, seed=99)
    other.set_state(state)
    second = [other.step(int(a)) for a in actions]
    for x, y in zip(first, second, strict=True):
        assert np.array_equal(x[0], y[0]) and x[1:] == y[1:]


def test_image_sizes_and_bad_arguments() -> None:
    assert Catch(image_size=64).reset().shape == (64, 64, 3)
    assert Catch(image_size=24, columns=6).reset().shape == (24, 24, 3)
    assert PinPad(image_size=32).reset().shape == (32, 32, 3)
    with pytest.raises(HierosError, match="image_size"):
        Catch(image_size=20)
    with pytest.raises(HierosError, match="task"):
        PinPad("nine")
    env = Catch(image_size=8)
    with pytest.raises(HierosError, match="reset"):
        env.step(0)
    env.reset()
    with pytest.raises(HierosError, match="action"):
        env.step(3)


@pytest.mark.parametrize("name", EMBEDDED_ENVS)
def test_every_embedded_env_runs_through_the_adapter(name: str) -> None:
    size = 16 if name.startswith("pinpad") else 8
    env = make_env(f"hieros:{name}", seed=0, num_envs=2, image_size=size, length=12)
    assert env.num_actions == (5 if name.startswith("pinpad") else 3)
    step = env.reset()
    assert step["obs"].shape == (2, size, size, 3) and step["is_first"].all()
    lasts = 0
    for t in range(30):
        step = env.step(np.full(2, t % env.num_actions))
        lasts += int(step["is_last"].sum())
        assert not step["is_terminal"].any()  # time limits only
    assert lasts == 4  # two 12-step episodes per environment in 30 calls (13 calls per episode)
    env.close()
