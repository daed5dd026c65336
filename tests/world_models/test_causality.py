"""Causality by perturbation, for every registered world model (DESIGN.md invariant 4).

Nothing at step ``t`` may depend on inputs after ``t``; the prior at ``t`` may not depend on ``action[t]``
or ``obs[t]``; an ``is_first`` in the middle of a sequence cuts every dependence on what came before.
The official Hieros code fails the action part (it feeds ``action[t]`` where ``action[t-1]`` belongs).
"""

from __future__ import annotations

import pytest
import torch
from wm_testdata import KINDS, VECTOR_DIM, flip_obs, obs_overrides, random_batch

from hieros_lib.errors import HierosError
from hieros_lib.world_models import available_world_models, make_world_model, map_state

B, T, A, SIZE = 2, 8, 3, 16


def leaves(state: object) -> list[torch.Tensor]:
    out: list[torch.Tensor] = []
    map_state(lambda x: out.append(x) or x, state)
    return out


def at(state: object, index: int | slice) -> object:
    return map_state(lambda x: x[:, index], state)


def same(lhs: object, rhs: object) -> bool:
    return all(
        a.shape == b.shape and torch.allclose(a, b, atol=1e-5, rtol=1e-5)
        for a, b in zip(leaves(lhs), leaves(rhs), strict=True)
    )


@pytest.fixture(scope="module", params=[(m, k) for m in available_world_models() for k in KINDS],
                ids=lambda p: f"{p[0]}-{p[1]}")
def model(request: pytest.FixtureRequest) -> torch.nn.Module:
    name, kind = request.param
    torch.manual_seed(0)
    return make_world_model(name, preset="tiny", action_dim=A, **obs_overrides(kind, SIZE)).eval()


def run(
    model: torch.nn.Module,
    batch: dict[str, torch.Tensor],
    *,
    sample: bool = True,
    reward: torch.Tensor | None = None,
) -> object:
    with torch.no_grad():
        return model.observe(
            batch["obs"],
            batch["action"],
            batch["is_first"],
            sample=sample,
            generator=torch.Generator().manual_seed(7),
            reward=reward,
        )


def base_batch(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    vector = VECTOR_DIM if len(model.obs_shape) == 1 else None
    batch = random_batch(B, T, image_size=SIZE, action_dim=A, seed=1, vector_dim=vector)
    batch["is_first"][:] = False
    batch["is_first"][:, 0] = True
    return batch


@pytest.mark.parametrize("t", [0, 3, T - 2])
def test_action_at_t_changes_nothing_up_to_t(model: torch.nn.Module, t: int) -> None:
    batch = base_batch(model)
    ref = run(model, batch)
    changed = dict(batch)
    changed["action"] = batch["action"].clone()
    changed["action"][:, t] = torch.roll(batch["action"][:, t], 1, dims=-1)  # another one-hot action
    out = run(model, changed)
    assert same(at(out.posterior, slice(0, t + 1)), at(ref.posterior, slice(0, t + 1)))
    assert same(at(out.prior, slice(0, t + 1)), at(ref.prior, slice(0, t + 1)))
    # ... but it is used: the next step's deterministic state moves
    assert not torch.allclose(model.deter(at(out.prior, t + 1)), model.deter(at(ref.prior, t + 1)))


@pytest.mark.parametrize("t", [0, 3, T - 1])
def test_obs_from_t_on_leaves_the_prior_at_t_and_the_past_unchanged(model: torch.nn.Module, t: int) -> None:
    batch = base_batch(model)
    ref = run(model, batch)
    changed = dict(batch)
    changed["obs"] = batch["obs"].clone()
    changed["obs"][:, t:] = flip_obs(batch["obs"][:, t:])
    out = run(model, changed)
    assert same(at(out.posterior, slice(0, t)), at(ref.posterior, slice(0, t)))
    assert same(at(out.prior, slice(0, t + 1)), at(ref.prior, slice(0, t + 1)))
    # ... but the posterior at t sees it
    assert not same(at(out.posterior, t), at(ref.posterior, t))


def test_last_action_affects_nothing_observed(model: torch.nn.Module) -> None:
    batch = base_batch(model)
    ref = run(model, batch)
    changed = dict(batch)
    changed["action"] = batch["action"].clone()
    changed["action"][:, -1] = torch.roll(batch["action"][:, -1], 1, dims=-1)
    out = run(model, changed)
    assert same(out.posterior, ref.posterior) and same(out.prior, ref.prior)
    assert same(out.final_state, ref.final_state)


def test_is_first_in_the_middle_equals_two_separate_sequences(model: torch.nn.Module) -> None:
    k = 5
    batch = base_batch(model)
    batch["is_first"][:, k] = True
    whole = run(model, batch, sample=False)
    head = run(model, {key: value[:, :k] for key, value in batch.items()}, sample=False)
    tail = run(model, {key: value[:, k:] for key, value in batch.items()}, sample=False)
    for which in ("posterior", "prior"):
        assert same(at(getattr(whole, which), slice(0, k)), getattr(head, which))
        assert same(at(getattr(whole, which), slice(k, T)), getattr(tail, which))
    # and inputs before the reset do not reach past it
    changed = dict(batch)
    changed["obs"] = batch["obs"].clone()
    changed["obs"][:, :k] = flip_obs(batch["obs"][:, :k])
    changed["action"] = batch["action"].clone()
    changed["action"][:, :k] = torch.roll(batch["action"][:, :k], 1, dims=-1)
    out = run(model, changed, sample=False)
    assert same(at(out.posterior, slice(k, T)), at(whole.posterior, slice(k, T)))
    assert same(at(out.prior, slice(k, T)), at(whole.prior, slice(k, T)))
    assert not same(at(out.posterior, slice(0, k)), at(whole.posterior, slice(0, k)))


@pytest.mark.parametrize("t", [0, 3, T - 1])
def test_reward_from_t_on_leaves_the_prior_at_t_and_the_past_unchanged(
    model: torch.nn.Module, t: int
) -> None:
    """``reward[t]`` arrives with ``obs[t]``: the prior at ``t`` (its ``h`` and latent) may not see it."""
    batch = base_batch(model)
    ref = run(model, batch, reward=batch["reward"])
    changed = batch["reward"].clone()
    changed[:, t:] += 5.0
    out = run(model, batch, reward=changed)
    for state_out, state_ref in ((out.prior, ref.prior), (out.posterior, ref.posterior)):
        past_out, past_ref = at(state_out, slice(0, t + 1)), at(state_ref, slice(0, t + 1))
        assert torch.allclose(model.deter(past_out), model.deter(past_ref), atol=1e-5)
        assert torch.allclose(past_out.logits, past_ref.logits, atol=1e-5)
    assert same(at(out.prior, slice(0, t)), at(ref.prior, slice(0, t)))


def test_a_reward_of_the_wrong_shape_raises_the_library_error(model: torch.nn.Module) -> None:
    batch = base_batch(model)
    with pytest.raises(HierosError, match="reward"):
        run(model, batch, reward=batch["reward"][:, :-1])
    with pytest.raises(HierosError, match="reward"):
        run(model, batch, reward=batch["reward"] * float("nan"))
