"""The embedded games: deterministic under a seed, their documented returns, and through the adapter."""

from __future__ import annotations

import numpy as np
import pytest

from hieros_lib.envs import EMBEDDED_ENVS, Catch, PinPad, Rooms, make_env
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


@pytest.mark.parametrize("cls", [Catch, PinPad, Rooms])
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
    size = 8 if name == "catch" else 16
    env = make_env(f"hieros:{name}", seed=0, num_envs=2, image_size=size, length=12)
    assert env.num_actions == {"catch": 3, "rooms": 4}.get(name, 5)
    step = env.reset()
    assert step["obs"].shape == (2, size, size, 3) and step["is_first"].all()
    lasts = 0
    for t in range(30):
        step = env.step(np.full(2, t % env.num_actions))
        lasts += int(step["is_last"].sum())
        assert not step["is_terminal"].any()  # time limits only
    assert lasts == 4  # two 12-step episodes per environment in 30 calls (13 calls per episode)
    env.close()


def test_rooms_layout_reward_and_random_coverage() -> None:
    env = Rooms()
    assert env.num_free_cells == 156 and env.free.shape == (16, 16)
    distances = env.distances(env.start)
    assert distances[env.goal] == 22 and (distances[env.free] >= 0).all()  # every free cell is reachable
    assert (distances[~env.free] == -1).all()
    env.reset()
    for _ in range(3):  # up, up, and into the outer wall: the third move stays
        env.step(0)
    assert tuple(env.info()["cell"]) == (env.start[0] - 2, env.start[1])
    env.reset()
    # walk the shortest path: the goal gives +1 and ends the episode (terminal), after exactly 22 moves
    cell, moves = env.start, 0
    while cell != env.goal:
        here = env.distances(cell)[env.goal]
        for action, (dr, dc) in enumerate(((-1, 0), (1, 0), (0, -1), (0, 1))):
            nxt = (cell[0] + dr, cell[1] + dc)
            if env.free[nxt] and env.distances(nxt)[env.goal] == here - 1:
                _, reward, terminated, truncated = env.step(action)
                cell, moves = nxt, moves + 1
                assert tuple(env.info()["cell"]) == cell
                break
    assert (reward, terminated, truncated, moves) == (1.0, True, False, 22)
    # uniformly random actions cover well under half of the cells in an episode (the documented 22.7%)
    rng, covered = np.random.default_rng(0), []
    for _ in range(60):
        env.reset()
        cells, done = {env.start}, False
        while not done:
            _, _, terminated, truncated = env.step(int(rng.integers(4)))
            cells.add(tuple(env.info()["cell"]))
            done = terminated or truncated
        covered.append(len(cells) / env.num_free_cells)
    assert 0.15 < float(np.mean(covered)) < 0.3 and max(covered) < 0.5
    free = Rooms(reward=False, length=5)
    free.reset()
    assert [free.step(3)[1:] for _ in range(5)][-1] == (0.0, False, True)
