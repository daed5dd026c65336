"""RSSM specifics: the recurrent pass equals prior steps fed the same latents; initial state; config."""

from __future__ import annotations

import pytest
import torch
from wm_testdata import random_batch

from hieros_lib.errors import HierosError
from hieros_lib.world_models import RSSM, RSSMConfig, RSSMState

A = 3


def model() -> RSSM:
    torch.manual_seed(0)
    return RSSM(RSSMConfig.tiny(action_dim=A)).eval()


def test_observe_equals_imagine_steps_fed_the_posterior_latents() -> None:
    m = model()
    batch = random_batch(2, 7, action_dim=A, seed=3)
    batch["is_first"][:] = False
    batch["is_first"][:, 0] = True
    with torch.no_grad():
        out = m.observe(batch["obs"], batch["action"], batch["is_first"], sample=False)
        state = m.imagine_step(m.initial_state(2), torch.zeros(2, A), sample=False)
        torch.testing.assert_close(state.deter, out.prior.deter[:, 0])
        torch.testing.assert_close(state.logits, out.prior.logits[:, 0])
        for t in range(1, 7):
            fed = RSSMState(
                out.posterior.deter[:, t - 1], out.posterior.stoch[:, t - 1], state.logits, state.logits
            )
            state = m.imagine_step(fed, batch["action"][:, t - 1], sample=False)
            torch.testing.assert_close(state.deter, out.prior.deter[:, t])
            torch.testing.assert_close(state.logits, out.prior.logits[:, t])
            torch.testing.assert_close(state.stoch, out.prior.stoch[:, t])


def test_initial_state_is_learned_and_used_at_episode_starts() -> None:
    m = model()
    with torch.no_grad():
        m.init_deter.fill_(0.5)
    init = m.initial_state(3)
    assert init.deter.shape == (3, 32)
    torch.testing.assert_close(init.deter, torch.full((3, 32), float(torch.tanh(torch.tensor(0.5)))))
    assert torch.equal(init.stoch, torch.zeros(3, 8, 8))
    # a state passed in is ignored where is_first is set, and used where it is not
    batch = random_batch(2, 3, action_dim=A)
    other = RSSMState(torch.randn(2, 32), init.stoch[:2], init.logits[:2], init.logits[:2])
    with torch.no_grad():
        fresh = m.observe(batch["obs"], batch["action"], batch["is_first"], sample=False)
        given = m.observe(batch["obs"], batch["action"], batch["is_first"], other, sample=False)
        batch["is_first"][:, 0] = False
        carried = m.observe(batch["obs"], batch["action"], batch["is_first"], other, sample=False)
    torch.testing.assert_close(given.posterior.deter, fresh.posterior.deter)
    assert not torch.allclose(carried.posterior.deter[:, 0], fresh.posterior.deter[:, 0])


def test_config_presets_and_validation() -> None:
    paper = RSSMConfig.paper(action_dim=18)
    assert (paper.deter_dim, paper.hidden, paper.stoch_groups, paper.stoch_classes) == (512, 512, 32, 32)
    assert (paper.dyn_scale, paper.rep_scale, paper.free_bits, paper.unimix) == (0.5, 0.1, 1.0, 0.01)
    assert RSSMConfig.tiny(action_dim=2, deter_dim=16).deter_dim == 16
    with pytest.raises(HierosError, match="deter_dim"):
        RSSMConfig.tiny(action_dim=2, deter_dim=0)
    with pytest.raises(HierosError, match="config"):
        RSSM(object())  # type: ignore[arg-type]


def test_imagine_step_rejects_a_wrong_action_shape() -> None:
    m = model()
    with pytest.raises(HierosError, match="action"):
        m.imagine_step(m.initial_state(2), torch.zeros(2, A + 1))
