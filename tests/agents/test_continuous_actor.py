"""The continuous actor (DreamerV3's bounded normal) and one level and the hierarchy acting and training
with continuous actions."""

from __future__ import annotations

import math

import torch
from wm_batches import random_level_batch

from hieros_lib.agents import (
    ActorCritic,
    ActorCriticConfig,
    Hieros,
    HierosConfig,
    HierosReplay,
    Subactor,
    SubactorConfig,
)


def test_the_bounded_normal_matches_torch_distributions() -> None:
    torch.manual_seed(0)
    ac = ActorCritic(6, 1, 3, continuous=True, config=ActorCriticConfig(units=16, min_std=0.1, max_std=1.0))
    inputs = torch.randn(5, 6 + 3)
    params = ac.policy_params(inputs)
    mean, std = params[..., 0], params[..., 1]
    assert params.shape == (5, 1, 3, 2) and bool((mean.abs() <= 1).all())
    assert bool((std >= 0.1).all() and (std <= 1.0).all())
    action = ac.sample(params, generator=torch.Generator().manual_seed(1))
    normal = torch.distributions.Normal(mean, std)
    torch.testing.assert_close(ac.log_prob(params, action), normal.log_prob(action).sum((-2, -1)))
    torch.testing.assert_close(ac.entropy(params), normal.entropy().sum((-2, -1)))
    acted = ac.act(inputs, generator=torch.Generator().manual_seed(1))
    assert bool((acted.abs() <= 1).all())  # clipped for the environment
    torch.testing.assert_close(ac.act(inputs, sample=False), mean)  # the mode


def test_a_level_with_continuous_actions_acts_and_learns() -> None:
    torch.manual_seed(0)
    level = Subactor(SubactorConfig.tiny(), obs_shape=(4,), action_shape=(2,), continuous=True)
    step = {"obs": torch.randn(3, 4), "is_first": torch.ones(3, dtype=torch.bool), "reward": torch.zeros(3)}
    action, _ = level.policy(step, level.initial_state(3), generator=torch.Generator().manual_seed(0))
    assert action.shape == (3, 1, 2) and bool((action.abs() <= 1).all())
    mode, _ = level.policy(step, level.initial_state(3), mode="eval")
    mode_again, _ = level.policy(step, level.initial_state(3), mode="eval")
    torch.testing.assert_close(mode, mode_again)
    batch = random_level_batch(4, 8, obs_shape=(4,), num_actions=2)
    batch["action"] = torch.rand(4, 8, 2) * 2 - 1
    before = [p.detach().clone() for p in level.actor_critic.actor.parameters()]
    metrics = level.train_step(batch, generator=torch.Generator().manual_seed(0))
    assert float(metrics["nonfinite"]) == 0.0 and math.isfinite(float(metrics["actor/std"]))
    after = list(level.actor_critic.actor.parameters())
    assert any(not torch.equal(a, b) for a, b in zip(before, after, strict=True))


def test_the_hierarchy_with_continuous_actions_stores_vectors() -> None:
    torch.manual_seed(0)
    config = HierosConfig(levels=2, k=2, level=SubactorConfig.tiny(), sequence_length=4, batch_size=2)
    agent = Hieros(config, obs_shape=(5,), num_actions=2, num_envs=2, continuous=True)
    replay = HierosReplay(config, num_envs=2, num_actions=None, seed=0)
    state, gen = agent.initial_state(), torch.Generator().manual_seed(0)
    for t in range(8):
        step = {"obs": torch.randn(2, 5), "reward": torch.zeros(2), "is_first": torch.full((2,), t == 0),
                "is_last": torch.zeros(2, dtype=torch.bool), "is_terminal": torch.zeros(2, dtype=torch.bool)}
        action, state, level_steps = agent.policy(step, state, generator=gen)
        assert action.shape == (2, 2) and action.dtype == torch.float32
        replay.add(level_steps)
    batch = replay.sample(0)
    assert batch["action"].shape == (2, 4, 2) and batch["action"].is_floating_point()
    metrics = agent.train_step([batch, replay.sample(1)], generator=gen)
    assert {"level0/actor/std", "level1/actor/entropy"} <= set(metrics)
