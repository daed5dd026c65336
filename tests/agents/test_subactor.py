"""One level: acting for N environments, resets, training isolation and state round trips."""

from __future__ import annotations

import copy

import pytest
import torch
from wm_batches import random_level_batch

from hieros_lib.agents import Subactor, SubactorConfig
from hieros_lib.errors import HierosError

N, A, SIZE = 3, 3, 16


@pytest.fixture(scope="module", params=["s5wm", "rssm", "twm"])
def name(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def build(name: str, seed: int = 0, **overrides: object) -> Subactor:
    torch.manual_seed(seed)
    config = SubactorConfig.tiny(world_model=name, **overrides)  # type: ignore[arg-type]
    return Subactor(config, obs_shape=(SIZE, SIZE, 3), action_shape=(A,))


def observation(t: int, n: int = N, first: bool = False) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(100 + t)
    return {
        "obs": torch.randint(0, 256, (n, SIZE, SIZE, 3), generator=g, dtype=torch.uint8),
        "is_first": torch.full((n,), first),
        "reward": torch.randn(n, generator=g),
    }


def test_policy_for_n_environments_equals_n_separate_calls(name: str) -> None:
    level = build(name).eval()
    together = level.initial_state(N)
    alone = [level.initial_state(1) for _ in range(N)]
    for t in range(4):
        step = observation(t, first=t == 0)
        actions, together = level.policy(step, together, mode="eval")
        for env in range(N):
            single = {k: v[env : env + 1] for k, v in step.items()}
            action, alone[env] = level.policy(single, alone[env], mode="eval")
            torch.testing.assert_close(action, actions[env : env + 1])
            torch.testing.assert_close(
                level.model.deter(alone[env].model),
                level.model.deter(together.model)[env : env + 1],
                atol=1e-5,
                rtol=1e-5,
            )


def test_is_first_resets_exactly_one_environment(name: str) -> None:
    level = build(name).eval()
    state = level.initial_state(N)
    for t in range(3):
        _, state = level.policy(observation(t, first=t == 0), state, mode="eval")
    step = observation(3)
    step["is_first"] = torch.tensor([False, True, False])
    _, after = level.policy(step, state, mode="eval")
    _, fresh = level.policy(
        {**step, "is_first": torch.ones(N, dtype=torch.bool)}, level.initial_state(N), mode="eval"
    )
    _, carried = level.policy({**step, "is_first": torch.zeros(N, dtype=torch.bool)}, state, mode="eval")
    deter = level.model.deter
    torch.testing.assert_close(deter(after.model)[1], deter(fresh.model)[1], atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(deter(after.model)[[0, 2]], deter(carried.model)[[0, 2]], atol=1e-5, rtol=1e-5)


def test_the_world_model_gets_no_gradient_from_the_actor_critic(name: str) -> None:
    level = build(name)
    batch = random_level_batch(4, 8, obs_shape=(SIZE, SIZE, 3), num_actions=A)
    seen: dict[str, torch.Tensor] = {}
    optimizer = level._optimizers["model"]
    original_step = optimizer.step

    def recording_step(*args: object, **kwargs: object) -> object:
        for pname, p in level.model.named_parameters():
            if p.grad is not None:
                seen[pname] = p.grad.clone()
        return original_step(*args, **kwargs)

    optimizer.step = recording_step  # type: ignore[method-assign]
    metrics = level.train_step(batch, generator=torch.Generator().manual_seed(0))
    assert seen and all(bool(torch.isfinite(v)) for v in metrics.values())
    for pname, p in level.model.named_parameters():  # the actor-critic's backward added nothing
        if pname in seen:
            assert torch.equal(p.grad, seen[pname]), pname


def test_state_dict_round_trip_gives_the_same_actions_and_losses(name: str) -> None:
    first = build(name, seed=1)
    batch = random_level_batch(4, 8, obs_shape=(SIZE, SIZE, 3), num_actions=A)
    first.train_step(batch, generator=torch.Generator().manual_seed(0))
    second = build(name, seed=2)
    second.load_state_dict(copy.deepcopy(first.state_dict()))
    second.load_optimizer_state_dict(copy.deepcopy(first.optimizer_state_dict()))
    results = []
    for level in (first, second):
        g = torch.Generator().manual_seed(7)
        state = level.initial_state(N)
        actions = []
        for t in range(3):
            action, state = level.policy(observation(t, first=t == 0), state, generator=g)
            actions.append(action)
        metrics = level.train_step(batch, generator=g)
        results.append((torch.stack(actions), {k: float(v) for k, v in metrics.items()}))
    torch.testing.assert_close(results[0][0], results[1][0])
    assert results[0][1] == results[1][1]


def test_bad_input() -> None:
    level = build("s5wm")
    with pytest.raises(HierosError, match="mode"):
        level.policy(observation(0, first=True), level.initial_state(N), mode="greedy")
    batch = random_level_batch(2, 4, obs_shape=(SIZE, SIZE, 3), num_actions=A)
    with pytest.raises(HierosError, match="batch"):
        level.train_step({**batch, "goal": torch.zeros(2, 4, 8, 8)})
    with pytest.raises(HierosError, match="obs"):
        level.train_step({**batch, "obs": batch["obs"][..., :2]})
