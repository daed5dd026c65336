"""Every world model takes continuous actions (``(B, T, d)`` floats in ``[-1, 1]``) as it takes one-hot ones:
causality, step by step equal to the sequence, and a gradient through the action embedding."""

from __future__ import annotations

import pytest
import torch
from wm_testdata import random_batch

from hieros_lib.world_models import available_world_models, make_world_model, map_state

B, T, D, SIZE = 2, 6, 2, 16


@pytest.fixture(scope="module", params=available_world_models())
def model(request: pytest.FixtureRequest) -> torch.nn.Module:
    torch.manual_seed(0)
    return make_world_model(request.param, preset="tiny", action_dim=D, image_size=SIZE).eval()


def continuous_batch(seed: int = 0) -> dict[str, torch.Tensor]:
    batch = random_batch(B, T, image_size=SIZE, action_dim=D, seed=seed)
    batch["action"] = torch.rand(B, T, D, generator=torch.Generator().manual_seed(seed)) * 2 - 1
    batch["is_first"][:] = False
    batch["is_first"][:, 0] = True
    return batch


def test_the_action_at_t_reaches_the_prior_at_t_plus_1_and_nothing_before(model: torch.nn.Module) -> None:
    batch = continuous_batch()
    changed = {**batch, "action": batch["action"].clone()}
    changed["action"][:, 2] = -changed["action"][:, 2]
    with torch.no_grad():
        a = model.observe(batch["obs"], batch["action"], batch["is_first"], sample=False,
                          reward=batch["reward"])
        b = model.observe(changed["obs"], changed["action"], changed["is_first"], sample=False,
                          reward=batch["reward"])
    deter = model.deter
    torch.testing.assert_close(deter(a.prior)[:, :3], deter(b.prior)[:, :3])  # up to t = 2: unchanged
    assert not torch.allclose(deter(a.prior)[:, 3], deter(b.prior)[:, 3])  # t + 1 sees the action


def test_step_by_step_equals_the_sequence(model: torch.nn.Module) -> None:
    batch = continuous_batch(seed=1)
    with torch.no_grad():
        whole = model.observe(batch["obs"], batch["action"], batch["is_first"], sample=False,
                              reward=batch["reward"])
        state, prev = model.initial_state(B), torch.zeros(B, D)
        for t in range(T):
            state = model.observe_step(batch["obs"][:, t], prev, batch["is_first"][:, t], state,
                                       reward=batch["reward"][:, t], sample=False)
            want = map_state(lambda x, t=t: x[:, t], whole.posterior)
            torch.testing.assert_close(model.deter(state), model.deter(want), atol=1e-4, rtol=1e-4)
            prev = batch["action"][:, t]


def test_the_loss_trains_the_action_embedding(model: torch.nn.Module) -> None:
    model.train()
    out = model.loss(continuous_batch(seed=2), generator=torch.Generator().manual_seed(0))
    assert bool(torch.isfinite(out.loss))
    out.loss.backward()
    grads = [p.grad for p in model.parameters() if p.grad is not None]
    assert grads and all(bool(torch.isfinite(g).all()) for g in grads)
    model.zero_grad(set_to_none=True)
    model.eval()
