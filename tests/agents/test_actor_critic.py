"""The actor-critic: which loss moves which network, and a bandit that one update must get right."""

from __future__ import annotations

import torch

from hieros_lib.agents import ActorCritic, ActorCriticConfig


def build(terms: tuple[str, ...] = ("extrinsic",), *, trained: bool = False, **config: object) -> ActorCritic:
    torch.manual_seed(0)
    ac = ActorCritic(6, 1, 3, terms=terms, config=ActorCriticConfig(units=16, **config))  # type: ignore[arg-type]
    if trained:  # value heads start at zero, which would stop every gradient before them
        with torch.no_grad():
            for p in ac.critics.parameters():
                p.add_(0.1 * torch.randn_like(p))
    return ac


def trajectory(n: int = 64, horizon: int = 4, seed: int = 0) -> tuple[torch.Tensor, ...]:
    g = torch.Generator().manual_seed(seed)
    features = torch.randn(n, horizon + 1, 6, generator=g)
    actions = torch.nn.functional.one_hot(torch.randint(0, 3, (n, horizon + 1), generator=g), 3).float()
    reward = torch.randn(n, horizon + 1, generator=g)
    cont = torch.ones(n, horizon + 1)
    return features, actions[:, :, None], reward, cont


def grads(module: torch.nn.Module) -> dict[str, torch.Tensor | None]:
    return {name: None if p.grad is None else p.grad.clone() for name, p in module.named_parameters()}


def test_the_actor_loss_moves_only_the_actor_and_each_critic_loss_only_its_critic() -> None:
    ac = build(("extrinsic", "novelty"), trained=True)
    features, actions, reward, cont = trajectory()
    inputs = ac.inputs(features, reward, cont, torch.ones_like(reward)).requires_grad_(True)
    rewards = {"extrinsic": reward, "novelty": reward.abs()}
    out = ac.loss(inputs, actions, rewards, cont)
    out.actor.backward(retain_graph=True)
    assert all(g is not None for g in grads(ac.actor).values())
    assert all(g is None for g in grads(ac.critics).values())
    assert inputs.grad is None  # detached inside: nothing reaches the world model's features
    ac.zero_grad(set_to_none=True)
    out.critic.backward()
    assert all(g is None for g in grads(ac.actor).values())
    before = grads(ac.critics)
    assert all(g is not None for g in before.values())
    # changing one term's rewards changes only that term's critic gradient
    ac.zero_grad(set_to_none=True)
    ac2 = build(("extrinsic", "novelty"), trained=True)
    other = ac2.loss(inputs, actions, {"extrinsic": reward, "novelty": reward.abs() + 5.0}, cont)
    other.critic.backward()
    after = grads(ac2.critics)
    for name, grad in before.items():
        same = torch.allclose(grad, after[name])  # type: ignore[arg-type]
        assert same == name.startswith("extrinsic"), name
    assert all(p.grad is None for p in ac.slow_critics.parameters())


def test_one_update_raises_the_probability_of_the_better_action() -> None:
    """A bandit-like imagination: action 0 leads to reward +1, actions 1 and 2 to 0."""
    ac = build(actor_lr=1e-2)
    actor_opt, _ = ac.optimizers()
    n, horizon = 512, 1
    g = torch.Generator().manual_seed(1)
    features = torch.randn(n, horizon + 1, 6, generator=g)
    chosen = torch.randint(0, 3, (n, horizon + 1), generator=g)
    actions = torch.nn.functional.one_hot(chosen, 3).float()[:, :, None]
    reward = torch.zeros(n, horizon + 1)
    reward[:, 1] = (chosen[:, 0] == 0).float()  # the reward of arriving at state 1 comes from action 0
    cont = torch.ones(n, horizon + 1)
    inputs = ac.inputs(features, torch.zeros_like(reward), cont, torch.ones_like(reward))

    def probability_of_action_0() -> float:
        with torch.no_grad():
            return float(ac.logits(inputs[:, 0]).exp()[..., 0].mean())

    before = probability_of_action_0()
    out = ac.loss(inputs, actions, {"extrinsic": reward}, cont)
    actor_opt.zero_grad()
    out.actor.backward()
    actor_opt.step()
    assert probability_of_action_0() > before + 0.01


def test_slow_critics_follow_by_their_rate_and_start_as_copies() -> None:
    ac = build(slow_critic_rate=0.25)
    for slow, fast in zip(ac.slow_critics.parameters(), ac.critics.parameters(), strict=True):
        assert torch.equal(slow, fast)
    with torch.no_grad():
        for p in ac.critics.parameters():
            p.add_(1.0)
    ac.update_slow_critics()
    for slow, fast in zip(ac.slow_critics.parameters(), ac.critics.parameters(), strict=True):
        torch.testing.assert_close(slow, fast - 0.75)


def test_optimisers_have_no_hidden_weight_decay() -> None:
    actor, critic = build().optimizers()
    assert all(group["weight_decay"] == 0.0 for opt in (actor, critic) for group in opt.param_groups)
    assert actor.param_groups[0]["lr"] == 3e-5 and actor.param_groups[0]["eps"] == 1e-5
