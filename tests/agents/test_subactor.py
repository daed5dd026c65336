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


def _statistics(level: Subactor) -> dict[str, torch.Tensor]:
    """Every running statistic and parameter of a level (buffers included)."""
    return {k: v.detach().clone() for k, v in level.state_dict().items()}


@pytest.mark.parametrize(("space", "kl_target"), [("h", None), ("standardized", None), ("h", 10.0)])
def test_a_refused_update_moves_no_running_statistic(space: str, kl_target: float | None) -> None:
    """A non-finite actor-critic batch (NaN rewards in imagination) or an infinite gradient norm skips the
    update and leaves every parameter, return scale, slow critic, variance (and mean) EMA and adapted KL
    weight as it was; the next good update moves them (and they stay finite)."""
    level = build(
        "s5wm", autoencoder=True, novelty=True, subgoal_space=space, autoencoder_kl_target=kl_target
    )
    batch = random_level_batch(4, 8, obs_shape=(SIZE, SIZE, 3), num_actions=A)
    g = torch.Generator().manual_seed(0)
    assert float(level.train_step(batch, generator=g)["nonfinite"]) == 0.0
    ac = level.actor_critic
    original = ac.loss

    def nan_rewards(inputs: torch.Tensor, actions: torch.Tensor, rewards: dict, cont: torch.Tensor) -> object:
        return original(inputs, actions, {k: v * float("nan") for k, v in rewards.items()}, cont)

    ac.loss = nan_rewards  # type: ignore[method-assign]
    before = _statistics(level)
    metrics = level.train_step(batch, generator=g)
    assert float(metrics["nonfinite"]) == 1.0
    after = _statistics(level)
    changed = [k for k in before if k.startswith("actor_critic.") and not torch.equal(before[k], after[k])]
    assert changed == [], changed  # return scales and slow critics included
    del ac.loss
    # an infinite gradient norm with a finite loss: the autoencoder's update is refused, its EMA kept
    assert level.autoencoder is not None
    hook = next(level.autoencoder.parameters()).register_hook(lambda g: g * float("inf"))
    before = _statistics(level)
    metrics = level.train_step(batch, generator=g)
    hook.remove()
    assert float(metrics["nonfinite"]) == 1.0 and "autoencoder/loss" not in metrics
    after = _statistics(level)
    assert all(torch.equal(before[k], after[k]) for k in before if k.startswith("autoencoder."))
    metrics = level.train_step(batch, generator=g)
    assert float(metrics["nonfinite"]) == 0.0
    after_good = _statistics(level)
    keys = ["actor_critic.normalizers.extrinsic.high", "autoencoder.h_variance"]
    keys += ["autoencoder.h_mean"] if space == "standardized" else []
    keys += ["autoencoder.kl_scale"] if kl_target is not None else []
    for key in keys:
        assert bool(torch.isfinite(after_good[key]).all()) and not torch.equal(after_good[key], after[key])


def test_policy_refuses_nan_observations_and_goals() -> None:
    torch.manual_seed(0)
    vector = Subactor(SubactorConfig.tiny(), obs_shape=(5,), action_shape=(A,))
    step = {"obs": torch.zeros(2, 5), "is_first": torch.ones(2, dtype=torch.bool), "reward": torch.zeros(2)}
    vector.policy(step, vector.initial_state(2))
    for bad in (float("nan"), float("inf")):
        with pytest.raises(HierosError, match="finite"):
            vector.policy({**step, "obs": torch.full((2, 5), bad)}, vector.initial_state(2))
    config = SubactorConfig.tiny(autoencoder=True)
    lower = Subactor(config, obs_shape=(5,), action_shape=(A,), goal_shape=(8, 8))
    goal = torch.zeros(2, 8, 8)
    lower.policy({**step, "goal": goal}, lower.initial_state(2))
    with pytest.raises(HierosError, match="finite"):
        lower.policy({**step, "goal": goal * float("nan")}, lower.initial_state(2))
    with pytest.raises(HierosError, match="goal"):
        lower.policy(step, lower.initial_state(2))  # a level with subgoals needs one
    with pytest.raises(HierosError, match="goal"):
        vector.policy({**step, "goal": goal}, vector.initial_state(2))  # and one without takes none
    # the opt-out: no check, no host synchronisation
    action, _ = vector.policy({**step, "obs": torch.full((2, 5), float("nan"))}, vector.initial_state(2),
                              validate=False)
    assert action.shape == (2, 1, A)


def test_a_standardized_level_rewards_subgoals_in_the_standardized_space(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import hieros_lib.agents._subactor as module

    torch.manual_seed(0)
    config = SubactorConfig.tiny(autoencoder=True, subgoal_space="standardized", extrinsic_weight=0.0)
    level = Subactor(config, obs_shape=(SIZE, SIZE, 3), action_shape=(A,), goal_shape=(8, 8))
    batch = random_level_batch(4, 8, obs_shape=(SIZE, SIZE, 3), num_actions=A)
    g = torch.Generator().manual_seed(0)
    level.train_step({**batch, "goal": torch.zeros(4, 8, 8, 8)}, generator=g)  # statistics seen once
    goal = torch.nn.functional.one_hot(torch.randint(0, 8, (4, 8, 8)), 8).float()
    original, seen = module.subgoal_reward, []

    def recording(state: torch.Tensor, target: torch.Tensor, **kwargs: object) -> torch.Tensor:
        seen.append(target)
        return original(state, target, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(module, "subgoal_reward", recording)
    ae = level.autoencoder
    assert ae is not None and ae.standardize
    before = copy.deepcopy(ae)  # imagination runs before this step's autoencoder update
    level.train_step({**batch, "goal": goal}, generator=g)
    with torch.no_grad():
        expected = before.standardized(before.decode(goal.flatten(0, 1)))[:, None]
    assert len(seen) == 1 and torch.allclose(seen[0], expected)


@pytest.mark.parametrize("data", ["replay", "imagined"])
def test_the_autoencoder_trains_on_the_h_it_is_configured_for(
    data: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``autoencoder_data="replay"``: the posterior ``h`` of the batch; ``"imagined"``: the ``h`` of this
    update's imagined trajectories (the official code), and the variance EMA follows those states."""

    level = build("s5wm", autoencoder=True, autoencoder_data=data)
    batch = random_level_batch(4, 8, obs_shape=(SIZE, SIZE, 3), num_actions=A)
    ae = level.autoencoder
    assert ae is not None
    imagined: list[torch.Tensor] = []
    original_imagine = level._imagine

    def recording_imagine(*args: object) -> object:
        result = original_imagine(*args)  # type: ignore[arg-type]
        imagined.append(result.deter.detach().clone())
        return result

    trained: list[torch.Tensor] = []
    original_loss = ae.loss

    def recording_loss(h: torch.Tensor, **kwargs: object) -> object:
        trained.append(h.detach().clone())
        return original_loss(h, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(level, "_imagine", recording_imagine)
    monkeypatch.setattr(ae, "loss", recording_loss)
    g = torch.Generator().manual_seed(0)
    level.train_step(batch, generator=g)
    assert len(imagined) == 1 and len(trained) == 1
    starts, length = 4 * 8, level.config.horizon + 1
    if data == "imagined":
        assert trained[0].shape == (starts, length, level.model.deter_dim)
        assert torch.equal(trained[0], imagined[0])
        expected = imagined[0].reshape(-1, level.model.deter_dim).var(0, unbiased=False)
        assert torch.allclose(ae.h_variance, expected)  # the first batch sets the EMA
    else:
        assert trained[0].shape == (4, 8, level.model.deter_dim)
    with pytest.raises(HierosError, match="autoencoder_data"):
        SubactorConfig.tiny(autoencoder=True, autoencoder_data="posterior")


def test_train_world_model_moves_the_world_model_alone() -> None:
    """One world-model-only update: the world model's parameters move (as in a full step's first phase),
    the actor, critics and autoencoder stay, and the level's update count does not advance."""

    level = build("s5wm", autoencoder=True)
    twin = copy.deepcopy(level)
    batch = random_level_batch(4, 8, obs_shape=(SIZE, SIZE, 3), num_actions=A)
    before = {k: v.clone() for k, v in level.state_dict().items()}
    metrics = level.train_world_model(batch, generator=torch.Generator().manual_seed(0))
    assert float(metrics["nonfinite"]) == 0.0 and "model/loss_total" in metrics
    assert level.updates == 0
    after = level.state_dict()
    moved = {k for k in before if not torch.equal(before[k], after[k])}
    assert moved and all(k.startswith("model.") for k in moved)
    # the same world-model update as the first phase of train_step
    twin.train_step(batch, generator=torch.Generator().manual_seed(0))
    for k, v in twin.model.state_dict().items():
        torch.testing.assert_close(v, level.model.state_dict()[k])
