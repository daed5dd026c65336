"""Every world model under bad input, half precision and a budget of host synchronisations."""

from __future__ import annotations

import pytest
import torch
from wm_testdata import random_batch

from hieros_lib.errors import HierosError
from hieros_lib.testing import count_host_syncs
from hieros_lib.world_models import (
    available_world_models,
    make_world_model,
    map_state,
    validate_batch,
    validate_sequence,
)

B, T, A, SIZE = 2, 6, 3, 16


@pytest.fixture(scope="module", params=available_world_models())
def name(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def build(name: str) -> torch.nn.Module:
    torch.manual_seed(0)
    return make_world_model(name, preset="tiny", action_dim=A, image_size=SIZE)


def test_a_state_of_another_batch_size_is_refused_not_broadcast(name: str) -> None:
    model = build(name)
    batch = random_batch(B, T, image_size=SIZE, action_dim=A)
    for state in (model.initial_state(1), model.initial_state(B + 1)):
        with pytest.raises(HierosError, match=r"^state: expected .* batch size 2"):
            model.observe(batch["obs"], batch["action"], batch["is_first"], state=state)
    with pytest.raises(HierosError, match=r"^state: expected"):
        model.observe(batch["obs"], batch["action"], batch["is_first"], state=(torch.zeros(B),))


def test_imagine_step_refuses_what_is_not_a_state(name: str) -> None:
    model = build(name)
    action = torch.zeros(B, A)
    for bad in (None, (torch.zeros(B, 4),), model.initial_state(B + 1)):
        with pytest.raises(HierosError, match=r"^state: expected"):
            model.imagine_step(bad, action)
    with pytest.raises(HierosError, match=r"^action: expected"):
        model.imagine_step(model.initial_state(B), torch.zeros(B, A + 1))


def nan_like(state: object) -> object:
    return map_state(lambda x: x.clone().fill_(float("nan")) if x.is_floating_point() else x, state)


def test_nan_in_prev_action_state_or_policy_action_is_refused(name: str) -> None:
    model = build(name)
    batch = random_batch(B, T, image_size=SIZE, action_dim=A)
    obs, action, first = batch["obs"], batch["action"], batch["is_first"]
    bad_prev = torch.full((B, A), float("nan"))
    with pytest.raises(HierosError, match=r"^prev_action: expected finite"):
        model.observe(obs, action, first, prev_action=bad_prev)
    with pytest.raises(HierosError, match=r"^state: expected finite"):
        model.observe(obs, action, first, state=nan_like(model.initial_state(B)))
    with pytest.raises(HierosError, match=r"^state: expected finite"):
        model.imagine_step(nan_like(model.initial_state(B)), torch.zeros(B, A))
    with pytest.raises(HierosError, match=r"^action: expected finite"):
        model.imagine_step(model.initial_state(B), torch.full((B, A), float("nan")), sample=False)
    start = model.start_states(model.observe(obs, action, first))
    with pytest.raises(HierosError, match=r"^policy: expected finite"):
        model.imagine(start, lambda s: torch.full((B * T, A), float("nan")), 3)


def test_value_checks_can_be_skipped_but_shapes_cannot(name: str) -> None:
    model = build(name)
    batch = random_batch(B, T, image_size=SIZE, action_dim=A)
    bad_prev = torch.full((B, A), float("nan"))
    model.observe(batch["obs"], batch["action"], batch["is_first"], prev_action=bad_prev, validate=False,
                  sample=False)
    with pytest.raises(HierosError, match=r"^prev_action: expected"):
        model.observe(batch["obs"], batch["action"], batch["is_first"], prev_action=torch.zeros(B, A + 1),
                      validate=False)


@pytest.mark.parametrize("shape", [(0, T), (B, 0)])
def test_empty_batch_or_sequence_is_a_library_error(name: str, shape: tuple[int, int]) -> None:
    model = build(name)
    batch = random_batch(B, T, image_size=SIZE, action_dim=A)
    empty = {key: value[: shape[0], : shape[1]] for key, value in batch.items()}
    with pytest.raises(HierosError, match=r"^obs: expected B >= 1 and T >= 1"):
        model.loss(empty)
    with pytest.raises(HierosError, match=r"^obs: expected B >= 1 and T >= 1"):
        model.observe(empty["obs"], empty["action"], empty["is_first"])


def test_huge_finite_rewards_give_finite_losses(name: str) -> None:
    model = build(name)
    batch = random_batch(B, T, image_size=SIZE, action_dim=A)
    batch["reward"] = torch.full((B, T), 1e30)
    out = model.loss(batch, generator=torch.Generator().manual_seed(0))
    assert bool(torch.isfinite(out.loss))
    observed = model.observe(batch["obs"], batch["action"], batch["is_first"], reward=batch["reward"])
    assert bool(torch.isfinite(model.features(observed.posterior)).all())


def test_loss_reads_values_once_per_batch_and_not_at_all_when_told(name: str) -> None:
    """Before: 9 host synchronisations per S5WM / RSSM loss and 10 per TWM loss (values read twice and
    messages built eagerly with .item()). Now: the three value checks of one batch, or none."""
    model = build(name)
    batch = random_batch(B, T, image_size=SIZE, action_dim=A)
    with count_host_syncs() as checked:
        model.loss(batch)
    with count_host_syncs() as unchecked:
        model.loss(batch, validate=False)
    assert len(checked) <= 3, checked
    assert unchecked == []


def test_validation_of_meta_tensors_reads_no_values() -> None:
    meta = random_batch(B, T, image_size=SIZE, action_dim=A)
    meta = {key: value.to("meta") for key, value in meta.items()}
    validate_batch(meta, obs_shape=(SIZE, SIZE, 3), action_dim=A)
    validate_sequence(meta["obs"], meta["action"], meta["is_first"], obs_shape=(SIZE, SIZE, 3),
                      action_dim=A, reward=meta["reward"])
    with pytest.raises(HierosError, match=r"^action: expected a tensor of shape"):
        validate_sequence(meta["obs"], meta["action"][..., :2], meta["is_first"],
                          obs_shape=(SIZE, SIZE, 3), action_dim=A)


def test_s5wm_under_bf16_autocast_matches_float32() -> None:
    """S5WM's outputs under CPU bf16 autocast (latent modes, so no sampling noise): ``h`` and the
    posterior and prior logits within 5% relative / 0.05 absolute of float32 (bf16 keeps 8 mantissa
    bits; the S5 scan itself stays float32 / complex64)."""
    model = build("s5wm").eval()
    batch = random_batch(B, T, image_size=SIZE, action_dim=A)
    obs, action, first = batch["obs"], batch["action"], batch["is_first"]
    with torch.no_grad():
        ref = model.observe(obs, action, first, sample=False)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            half = model.observe(obs, action, first, sample=False)
    assert half.posterior.ssm[0].dtype == torch.complex64
    for got, want in (
        (model.deter(half.posterior), model.deter(ref.posterior)),
        (half.posterior.logits, ref.posterior.logits),
        (half.prior.logits, ref.prior.logits),
    ):
        torch.testing.assert_close(got.float(), want, rtol=0.05, atol=0.05)


def test_a_model_trains_under_bf16_autocast(name: str) -> None:
    """One optimiser step under CPU bf16 autocast: finite loss within 5% of float32, finite gradients."""
    model = build(name)
    batch = random_batch(B, T, image_size=SIZE, action_dim=A)
    loss32 = model.loss(batch, generator=torch.Generator().manual_seed(1)).loss
    with torch.autocast("cpu", dtype=torch.bfloat16):
        loss16 = model.loss(batch, generator=torch.Generator().manual_seed(1)).loss
    assert bool(torch.isfinite(loss16))
    assert abs(loss16.item() - loss32.item()) <= 0.05 * abs(loss32.item())
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    loss16.backward()
    assert all(bool(torch.isfinite(p.grad).all()) for p in model.parameters() if p.grad is not None)
    opt.step()
