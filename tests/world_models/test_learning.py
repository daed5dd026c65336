"""Every registered world model learns a small moving-dot task on the CPU (tiny presets)."""

from __future__ import annotations

import pytest
import torch
from wm_testdata import moving_dot_batch

from hieros_lib.world_models import available_world_models, make_world_model

A, SIZE, BATCH, LENGTH = 3, 16, 8, 12
STEPS = 150
# TWM predicts r_t from h_t alone (before it sees o_t), a harder target on this task: it gets more steps.
STEPS_FOR = {"twm": 300}


@pytest.mark.slow
@pytest.mark.parametrize("name", available_world_models())
def test_loss_falls_and_reward_prediction_beats_a_constant(name: str) -> None:
    torch.manual_seed(0)
    model = make_world_model(name, preset="tiny", action_dim=A, image_size=SIZE)
    opt = torch.optim.Adam(model.parameters(), lr=6e-3)
    data = torch.Generator().manual_seed(1)
    noise = torch.Generator().manual_seed(2)
    losses = []
    for _ in range(STEPS_FOR.get(name, STEPS)):
        out = model.loss(
            moving_dot_batch(BATCH, LENGTH, image_size=SIZE, action_dim=A, generator=data), generator=noise
        )
        opt.zero_grad()
        out.loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 100.0)
        opt.step()
        losses.append(out.loss.item())
    start = sum(losses[:5]) / 5
    end = sum(losses[-10:]) / 10
    assert end < 0.3 * start, (start, end)

    test = moving_dot_batch(
        32, LENGTH, image_size=SIZE, action_dim=A, generator=torch.Generator().manual_seed(9)
    )
    model.eval()
    with torch.no_grad():
        observed = model.observe(test["obs"], test["action"], test["is_first"], sample=False)
        predicted = model.reward(observed.posterior)
    target = test["reward"]
    assert target.sum() > 0  # the test data has wall hits
    model_mse = ((predicted - target) ** 2).mean()
    constant_mse = ((target - target.mean()) ** 2).mean()  # the best constant, chosen on the test data
    assert model_mse < 0.5 * constant_mse, (model_mse.item(), constant_mse.item())
