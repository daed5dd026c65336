"""The continuous actor (DreamerV3's bounded normal) and one level and the hierarchy acting and training
with continuous actions."""

from __future__ import annotations

import math

import pytest
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
from hieros_lib.errors import HierosError


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
        step = {
            "obs": torch.randn(2, 5),
            "reward": torch.zeros(2),
            "is_first": torch.full((2,), t == 0),
            "is_last": torch.zeros(2, dtype=torch.bool),
            "is_terminal": torch.zeros(2, dtype=torch.bool),
        }
        action, state, level_steps = agent.policy(step, state, generator=gen)
        assert action.shape == (2, 2) and action.dtype == torch.float32
        replay.add(level_steps)
    batch = replay.sample(0)
    assert batch["action"].shape == (2, 4, 2) and batch["action"].is_floating_point()
    metrics = agent.train_step([batch, replay.sample(1)], generator=gen)
    assert {"level0/actor/std", "level1/actor/entropy"} <= set(metrics)


def _reference_backprop_actor_loss(
    ac: ActorCritic, inputs: torch.Tensor, rewards: dict[str, torch.Tensor], cont: torch.Tensor
) -> torch.Tensor:
    """The dynamics-backpropagation actor loss written out step by step (DreamerV3 2023)."""
    c = ac.config
    steps = inputs.shape[1]
    weight = [cont[:, 0]]
    for t in range(1, steps):
        weight.append(weight[-1] * c.discount * cont[:, t])
    objective = 0.0
    for term, w in ac.weights.items():
        value = ac.twohot.mean(ac.critics[term](inputs))  # gradient through the inputs
        returns = [value[:, -1]]
        for t in range(steps - 2, -1, -1):
            blend = (1 - c.lam) * value[:, t + 1] + c.lam * returns[0]
            returns.insert(0, rewards[term][:, t + 1] + c.discount * cont[:, t + 1] * blend)
        ret = torch.stack(returns[:-1], 1)
        flat = ret.detach().flatten()
        low, high = torch.quantile(flat, 0.05), torch.quantile(flat, 0.95)
        scale = torch.clamp(c.return_rate * (high - low), min=1.0)  # the normaliser's first step from zero
        objective = objective + w * (ret - value[:, :-1].detach()) / scale
    objective = objective / sum(ac.weights.values())
    entropy = ac.entropy(ac.policy_params(inputs[:, :-1].detach()))
    omega = torch.stack(weight, 1)[:, :-1]
    return (omega * (-objective - c.entropy_scale * entropy)).mean()


def test_the_backprop_estimator_matches_its_written_out_gradient() -> None:
    torch.manual_seed(0)
    config = ActorCriticConfig(units=16, continuous_gradient="backprop", return_rate=1.0)
    ac = ActorCritic(6, 1, 2, continuous=True, terms=("extrinsic", "subgoal"), config=config)
    for critic in ac.critics.values():  # not the zero head of a fresh critic: values that vary
        torch.nn.init.normal_(critic.net[-1].weight, std=0.3)
    theta = torch.randn(4, 5, 9, requires_grad=True)  # stands for the actions of the trajectory
    inputs = torch.tanh(theta) * 2
    rewards = {"extrinsic": (theta[..., 0] * 3).sin() * 4, "subgoal": theta[..., 1].cos()}
    cont = torch.rand(4, 5) * 0.2 + 0.8
    loss = ac.loss(inputs, torch.zeros(4, 5, 1, 2), rewards, cont)
    (grad,) = torch.autograd.grad(loss.actor, theta, retain_graph=True)
    (reference,) = torch.autograd.grad(_reference_backprop_actor_loss(ac, inputs, rewards, cont), theta)
    assert grad.abs().sum() > 0
    torch.testing.assert_close(grad, reference)
    critic_grads = torch.autograd.grad(loss.actor, list(ac.critics.parameters()), allow_unused=True)
    assert all(g is None or not g.any() for g in critic_grads)  # the critics are read detached


def test_backprop_trains_the_actor_and_leaves_the_world_model_and_the_critics_to_their_own_losses() -> None:
    # The world-model update comes before imagination and the samples draw the same noise under both
    # estimators: the same model and critics after one step mean that the actor's loss reached neither.
    # Without the entropy term the actor moves only if the returns' gradient reaches it through the actions.
    for world_model in ("s5wm", "rssm", "twm"):
        levels = {}
        for estimator in ("reinforce", "backprop"):
            torch.manual_seed(0)
            config = SubactorConfig.tiny(
                world_model=world_model,
                model_warmup=0,
                autoencoder=True,
                actor_critic=ActorCriticConfig(units=16, continuous_gradient=estimator, entropy_scale=0.0),
            )
            levels[estimator] = Subactor(
                config, obs_shape=(5,), action_shape=(2,), continuous=True, goal_shape=(8, 8)
            )
        levels["backprop"].load_state_dict(levels["reinforce"].state_dict())
        batch = random_level_batch(3, 6, obs_shape=(5,), num_actions=2)
        batch["action"] = torch.rand(3, 6, 2) * 2 - 1
        batch["goal"] = torch.nn.functional.one_hot(torch.randint(0, 8, (3, 6, 8)), 8).float()
        reinforce, backprop = levels["reinforce"], levels["backprop"]
        actor_before = [p.detach().clone() for p in backprop.actor_critic.actor.parameters()]
        metrics = {
            k: lv.train_step(batch, generator=torch.Generator().manual_seed(1)) for k, lv in levels.items()
        }
        assert float(metrics["backprop"]["nonfinite"]) == 0.0

        def same(a: torch.nn.Module, b: torch.nn.Module) -> bool:
            return all(torch.equal(x, y) for x, y in zip(a.parameters(), b.parameters(), strict=True))

        assert same(reinforce.model, backprop.model), world_model
        for x, y in zip(reinforce.model.parameters(), backprop.model.parameters(), strict=True):
            assert (x.grad is None and y.grad is None) or torch.equal(x.grad, y.grad), world_model
        assert same(reinforce.actor_critic.critics, backprop.actor_critic.critics), world_model
        moved = [
            not torch.equal(a, b) for a, b in zip(actor_before, backprop.actor_critic.actor.parameters())
        ]
        assert all(moved), world_model
        assert all(
            p.requires_grad
            for p in backprop.parameters()
            if p not in set(backprop.actor_critic.slow_critics.parameters())
        )  # frozen only while imagining


def test_discrete_actors_ignore_the_continuous_estimator_and_bad_names_are_refused() -> None:
    config = ActorCriticConfig(units=8, continuous_gradient="backprop")
    assert not ActorCritic(6, 1, 3, config=config).backprop
    with pytest.raises(HierosError, match="continuous_gradient"):
        ActorCriticConfig(continuous_gradient="dynamics")
