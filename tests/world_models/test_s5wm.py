"""S5WM specifics: the parallel pass equals step-by-step imagination fed the same latents and actions."""

from __future__ import annotations

import pytest
import torch
from wm_testdata import random_batch

from hieros_lib.errors import HierosError
from hieros_lib.world_models import S5WM, S5WMConfig, S5WMState

A, T = 3, 9


def model(**overrides: object) -> S5WM:
    torch.manual_seed(0)
    return S5WM(S5WMConfig.tiny(action_dim=A, **overrides)).eval()


@pytest.mark.parametrize("deter_source", ["state", "output"])
def test_parallel_pass_equals_step_by_step_with_the_same_latents(deter_source: str) -> None:
    m = model(deter_source=deter_source)
    batch = random_batch(2, T, action_dim=A, seed=4)
    batch["is_first"][:] = False
    batch["is_first"][:, 0] = True
    batch["is_first"][1, 5] = True  # a reset in the middle of one row
    with torch.no_grad():
        out = m.observe(batch["obs"], batch["action"], batch["is_first"], sample=False)
        state = m.initial_state(2)
        for t in range(T):
            keep = (~batch["is_first"][:, t])[:, None]
            if t == 0:
                stoch, action = state.stoch, torch.zeros(2, A)
            else:  # the same latent and action the parallel pass used
                stoch, action = out.posterior.stoch[:, t - 1], batch["action"][:, t - 1]
            # where an episode starts, the step continues from the initial (zero) state
            fed = S5WMState(
                state.deter,
                stoch * keep[..., None],
                state.logits,
                state.prior_logits,
                tuple(s * keep for s in state.ssm),
            )
            state = m.imagine_step(fed, action * keep, sample=False)
            torch.testing.assert_close(state.deter, out.prior.deter[:, t], atol=1e-5, rtol=1e-5)
            torch.testing.assert_close(state.logits, out.prior.logits[:, t], atol=1e-5, rtol=1e-5)
            torch.testing.assert_close(state.stoch, out.prior.stoch[:, t])
            for step_ssm, seq_ssm in zip(state.ssm, out.prior.ssm, strict=True):
                torch.testing.assert_close(step_ssm, seq_ssm[:, t], atol=1e-5, rtol=1e-5)
        for final, last in zip(out.final_state.ssm, out.posterior.ssm, strict=True):
            torch.testing.assert_close(final, last[:, -1])


def test_deter_is_projected_from_the_internal_states_or_from_the_output() -> None:
    batch = random_batch(2, 5, action_dim=A, seed=5)
    state_model, output_model = model(deter_source="state"), model(deter_source="output")
    n_states = sum(s.shape[-1] for s in state_model.initial_state(1).ssm)
    assert state_model.deter_proj.in_features == n_states  # real parts of every block's x_t
    assert output_model.deter_proj.in_features == output_model.config.model_dim
    for m in (state_model, output_model):
        out = m.observe(batch["obs"], batch["action"], batch["is_first"], sample=False)
        assert out.posterior.deter.shape == (2, 5, m.deter_dim)


def test_config_presets_and_validation() -> None:
    paper = S5WMConfig.paper(action_dim=18)
    assert (paper.model_dim, paper.state_dim, paper.ssm_blocks, paper.num_layers) == (256, 128, 4, 8)
    assert (paper.deter_dim, paper.stoch_groups, paper.stoch_classes, paper.units) == (256, 32, 32, 256)
    assert (paper.dyn_scale, paper.rep_scale, paper.free_bits) == (0.5, 0.1, 1.0)
    assert paper.deter_source == "state" and paper.image_size == 64
    with pytest.raises(HierosError, match="deter_source"):
        S5WMConfig.tiny(action_dim=2, deter_source="nope")
    with pytest.raises(HierosError, match="num_layers"):
        S5WMConfig.tiny(action_dim=2, num_layers=0)
    with pytest.raises(HierosError, match="config"):
        S5WM(object())  # type: ignore[arg-type]


def test_imagine_step_rejects_a_wrong_action_shape() -> None:
    m = model()
    with pytest.raises(HierosError, match="action"):
        m.imagine_step(m.initial_state(2), torch.zeros(2, A + 1))
