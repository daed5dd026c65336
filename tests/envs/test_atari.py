"""The Atari 100k protocol, checked against ALE itself (ale-py's bundled ROMs, CPU)."""

from __future__ import annotations

import cv2
import gymnasium as gym
import numpy as np
import pytest

from hieros_lib.envs import ATARI100K_GAMES, atari_game, make_atari100k, make_env
from hieros_lib.errors import HierosError

pytestmark = pytest.mark.slow


def wrapper(env: object) -> gym.Env:
    """The single Atari environment behind an in-process adapter."""
    return env.env.envs[0]  # type: ignore[attr-defined]


def test_frame_skip_max_pool_and_noops_against_raw_ale() -> None:
    env = make_atari100k("Breakout", seed=0)
    atari = wrapper(env)
    raw = gym.make("ALE/Breakout-v5", frameskip=1, repeat_action_probability=0.0)
    rng = np.random.default_rng(0)
    for seed in (3, 4):
        obs, info = atari.reset(seed=seed)
        frame, _ = raw.reset(seed=seed)
        noops = int(raw.unwrapped.np_random.integers(0, 31))
        assert info["noops"] == noops and 0 <= noops <= 30
        ale = atari.unwrapped.ale
        assert ale.getEpisodeFrameNumber() == noops
        frames = [frame]
        for _ in range(noops):
            frames.append(raw.step(0)[0])
        pooled = np.maximum(frames[-2], frames[-1]) if len(frames) > 1 else frames[-1]
        assert np.array_equal(obs, cv2.resize(pooled, (64, 64), interpolation=cv2.INTER_AREA))
        for _ in range(30):
            action = int(rng.integers(atari.action_space.n))
            before = ale.getEpisodeFrameNumber()
            obs, reward, *_ = atari.step(action)
            assert ale.getEpisodeFrameNumber() - before == 4  # frame skip 4
            subframes, total = [], 0.0
            for _ in range(4):
                frame, r, *_ = raw.step(action)
                subframes.append(frame)
                total += r
            expected = cv2.resize(
                np.maximum(subframes[-2], subframes[-1]), (64, 64), interpolation=cv2.INTER_AREA
            )
            assert np.array_equal(obs, expected)  # the maximum of the last two frames, resized
            assert reward == total  # summed, not clipped
    raw.close()
    env.close()


def test_noops_are_uniform_from_0_to_30() -> None:
    env = make_atari100k("Pong", seed=0)
    atari = wrapper(env)
    atari.reset(seed=0)
    counts = [atari.reset()[1]["noops"] for _ in range(300)]  # unseeded resets continue the generator
    assert min(counts) >= 0 and max(counts) <= 30
    assert len(set(counts)) >= 25  # 300 draws of U{0..30} hit nearly every value
    env.close()


def test_no_sticky_actions_and_the_minimal_action_set() -> None:
    for game, actions in (("Pong", 6), ("Breakout", 4), ("ms_pacman", 9)):
        env = make_atari100k(game, seed=0)
        env.reset()
        assert env.num_actions == actions
        assert wrapper(env).unwrapped.ale.getFloat("repeat_action_probability") == 0.0
        env.close()
    env = make_atari100k("Pong", seed=0, full_action_space=True)
    assert env.num_actions == 18
    env.close()


def test_the_frame_cap_truncates_and_does_not_terminate() -> None:
    env = make_atari100k("Pong", seed=0, max_frames=400)
    step = env.reset()
    steps = 0
    while not step["is_last"][0]:
        step = env.step([0])
        steps += 1
    assert not step["is_terminal"][0]
    assert 92 <= steps <= 100  # 400 frames of 4, less the no-op frames at reset
    step = env.step([0])
    assert step["is_first"][0] and step["reward"][0] == 0.0
    env.close()


def test_life_loss_is_terminal_only_in_the_twm_variant() -> None:
    def lives_when_first_lost(terminal_on_life_loss: bool, evaluation: bool = False) -> tuple[int, int]:
        env = make_atari100k(
            "Breakout", seed=1, terminal_on_life_loss=terminal_on_life_loss, evaluation=evaluation
        )
        ale = wrapper(env).unwrapped.ale
        step = env.reset()
        start = ale.lives()
        for t in range(2000):
            step = env.step([1 if t % 20 == 0 else 0])  # FIRE now and then, else idle: lives are lost
            if ale.lives() < start:
                terminal = bool(step["is_terminal"][0])
                following = env.step([0])
                env.close()
                return int(terminal), int(following["is_first"][0]) + 10 * int(ale.lives() == start - 1)
        raise AssertionError("no life lost")

    assert lives_when_first_lost(False) == (0, 10)  # nothing ends; the game goes on
    assert lives_when_first_lost(True) == (1, 11)  # terminal; a new episode continues the same game
    assert lives_when_first_lost(True, evaluation=True) == (0, 10)  # evaluation plays whole games


def test_game_names() -> None:
    assert len(ATARI100K_GAMES) == 26
    assert atari_game("kung_fu_master") == "KungFuMaster"
    with pytest.raises(HierosError, match=r"Alien.*UpNDown"):
        make_atari100k("Tetris", seed=0)
    env = make_env("atari:up_n_down", seed=0, image_size=32)
    assert env.reset()["obs"].shape == (1, 32, 32, 3)
    env.close()
