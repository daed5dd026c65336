"""The acting path of every world model: observe_step equals observe, prior entropy, no host syncs."""

from __future__ import annotations

import pytest
import torch
from wm_testdata import KINDS, VECTOR_DIM, obs_overrides, random_batch

from hieros_lib.nn import categorical_entropy
from hieros_lib.testing import count_host_syncs
from hieros_lib.world_models import available_world_models, make_world_model, map_state

B, T, A, SIZE = 3, 7, 3, 16
CASES = [(m, k) for m in available_world_models() for k in KINDS]


@pytest.fixture(scope="module", params=CASES, ids=lambda p: f"{p[0]}-{p[1]}")
def case(request: pytest.FixtureRequest) -> tuple[torch.nn.Module, dict[str, torch.Tensor]]:
    name, kind = request.param
    torch.manual_seed(0)
    model = make_world_model(name, preset="tiny", action_dim=A, **obs_overrides(kind, SIZE)).eval()
    batch = random_batch(
        B, T, image_size=SIZE, action_dim=A, seed=4, vector_dim=VECTOR_DIM if kind == "vector" else None
    )
    batch["is_first"][:] = False
    batch["is_first"][:, 0] = True
    batch["is_first"][1, 4] = True  # one environment starts a new episode mid-way
    return model, batch


def test_observe_step_by_step_equals_observe(case: tuple[torch.nn.Module, dict[str, torch.Tensor]]) -> None:
    model, batch = case
    with torch.no_grad():
        whole = model.observe(
            batch["obs"], batch["action"], batch["is_first"], sample=False, reward=batch["reward"]
        )
        state = model.initial_state(B)
        prev = torch.zeros(B, A)
        for t in range(T):
            state = model.observe_step(
                batch["obs"][:, t],
                prev,
                batch["is_first"][:, t],
                state,
                reward=batch["reward"][:, t],
                sample=False,
            )
            want = map_state(lambda x, t=t: x[:, t], whole.posterior)
            for name in ("deter", "stoch", "logits", "prior_logits"):
                torch.testing.assert_close(getattr(state, name), getattr(want, name), atol=1e-4, rtol=1e-4)
            prev = batch["action"][:, t]


def test_entropy_is_the_priors_also_for_posterior_states(
    case: tuple[torch.nn.Module, dict[str, torch.Tensor]],
) -> None:
    model, batch = case
    with torch.no_grad():
        out = model.observe(batch["obs"], batch["action"], batch["is_first"], reward=batch["reward"])
        prior_entropy = categorical_entropy(out.prior.logits).sum(-1)
        torch.testing.assert_close(model.entropy(out.posterior), prior_entropy)
        torch.testing.assert_close(model.entropy(out.prior), prior_entropy)
        assert not torch.allclose(
            model.entropy(out.posterior), categorical_entropy(out.posterior.logits).sum(-1)
        )
        # imagination starts from posterior states: its first entropy is the prior's of that step
        start = model.start_states(out)
        imagined = model.imagine(
            start, lambda step: torch.eye(A)[torch.zeros(step.features.shape[0]).long()], 2
        )
        torch.testing.assert_close(imagined.entropy[:, 0], prior_entropy.reshape(-1))
        # the acting path too
        step = model.observe_step(
            batch["obs"][:, 0],
            torch.zeros(B, A),
            batch["is_first"][:, 0],
            model.initial_state(B),
            reward=batch["reward"][:, 0],
        )
        torch.testing.assert_close(model.entropy(step), categorical_entropy(step.prior_logits).sum(-1))


def test_observe_step_resets_exactly_the_environments_that_start(
    case: tuple[torch.nn.Module, dict[str, torch.Tensor]],
) -> None:
    model, batch = case
    with torch.no_grad():
        state = model.initial_state(B)
        for t in range(3):
            state = model.observe_step(
                batch["obs"][:, t],
                batch["action"][:, t],
                batch["is_first"][:, t],
                state,
                reward=batch["reward"][:, t],
                sample=False,
            )
        first = torch.tensor([False, True, False])
        obs, prev, reward = batch["obs"][:, 3], batch["action"][:, 2], batch["reward"][:, 3]
        after = model.observe_step(obs, prev, first, state, reward=reward, sample=False)
        fresh = model.observe_step(
            obs, prev, torch.ones(B, dtype=torch.bool), model.initial_state(B), reward=reward, sample=False
        )
        carried = model.observe_step(
            obs, prev, torch.zeros(B, dtype=torch.bool), state, reward=reward, sample=False
        )
    torch.testing.assert_close(after.deter[1], fresh.deter[1], atol=1e-5, rtol=1e-5)
    for env in (0, 2):
        torch.testing.assert_close(after.deter[env], carried.deter[env], atol=1e-5, rtol=1e-5)
    assert not torch.allclose(carried.deter[1], fresh.deter[1])


def test_acting_step_reads_nothing_back_from_the_device(
    case: tuple[torch.nn.Module, dict[str, torch.Tensor]],
) -> None:
    model, batch = case
    with torch.no_grad(), count_host_syncs() as calls:
        model.observe_step(
            batch["obs"][:, 0],
            torch.zeros(B, A),
            batch["is_first"][:, 0],
            model.initial_state(B),
            reward=batch["reward"][:, 0],
        )
    assert calls == []
