"""TWM: Transformer-XL memory, stop-mask, causality of the attention, and the loss of equations 3-4."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from hieros_lib.errors import HierosError
from hieros_lib.nn import symlog
from hieros_lib.world_models import TWM, TWMConfig, make_world_model, map_state

A, SIZE = 3, 16


def build(seed: int = 0, **overrides: object) -> TWM:
    torch.manual_seed(seed)
    model = TWM(TWMConfig.tiny(action_dim=A, image_size=SIZE, **overrides))
    return model.double()


def sequence(
    batch: int, length: int, *, seed: int = 0, firsts: tuple[int, ...] = (0,)
) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    is_first = torch.zeros(batch, length, dtype=torch.bool)
    for t in firsts:
        is_first[:, t] = True
    return {
        "obs": torch.randint(0, 256, (batch, length, SIZE, SIZE, 3), generator=g).to(torch.uint8),
        "action": F.one_hot(torch.randint(0, A, (batch, length), generator=g), A).double(),
        "reward": torch.randn(batch, length, generator=g, dtype=torch.float64),
        "is_first": is_first,
        "is_last": torch.zeros(batch, length, dtype=torch.bool),
        "is_terminal": torch.zeros(batch, length, dtype=torch.bool),
    }


def observe(model: TWM, data: dict[str, torch.Tensor], **kwargs: object):
    kwargs.setdefault("reward", data["reward"])
    return model.observe(data["obs"], data["action"], data["is_first"], sample=False, **kwargs)


def at(state: object, t: int) -> object:
    return map_state(lambda x: x[:, t], state)


def close(a: torch.Tensor, b: torch.Tensor) -> None:
    torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-10)


def test_registered_and_presets() -> None:
    model = make_world_model("twm", preset="tiny", action_dim=A, image_size=SIZE)
    assert isinstance(model, TWM)
    paper = TWMConfig.paper(action_dim=6)
    assert (paper.num_layers, paper.num_heads, paper.head_dim, paper.d_model, paper.ff_dim) == (
        10,
        4,
        64,
        256,
        1024,
    )
    assert (paper.memory_length, paper.stoch_groups, paper.stoch_classes) == (16, 32, 32)
    assert (paper.reward_scale, paper.cont_scale) == (10.0, 50.0)
    with pytest.raises(HierosError, match="vector_dim"):
        TWMConfig.tiny(vector_dim=0)
    with pytest.raises(HierosError, match="memory_length"):
        TWMConfig.tiny(memory_length=0)


def test_segment_in_pieces_with_cached_memory_equals_one_pass() -> None:
    # 11 steps = 33 tokens, more than the 3 * 4 = 12-token memory, over two layers
    model = build()
    data = sequence(2, 11, firsts=(0,))
    whole = observe(model, data)
    for cut in (1, 5, 10):
        head = {k: v[:, :cut] for k, v in data.items()}
        tail = {k: v[:, cut:] for k, v in data.items()}
        first = observe(model, head)
        second = observe(model, tail, state=first.final_state, prev_action=data["action"][:, cut - 1])
        close(torch.cat([first.posterior.deter, second.posterior.deter], 1), whole.posterior.deter)
        close(torch.cat([first.prior.logits, second.prior.logits], 1), whole.prior.logits)
        close(torch.cat([first.posterior.memory, second.posterior.memory], 1), whole.posterior.memory)


def test_imagine_step_with_cached_memory_continues_the_parallel_pass() -> None:
    model = build(1)
    data = sequence(3, 9, seed=1)
    out = observe(model, data)
    for t in range(8):
        step = model.imagine_step(at(out.posterior, t), data["action"][:, t], sample=False)
        close(step.deter, out.posterior.deter[:, t + 1])
        close(step.logits, out.prior.logits[:, t + 1])
        close(step.memory, out.posterior.memory[:, t + 1])
    # the imagined latent and reward are fed back as the next tokens
    one = model.imagine_step(at(out.posterior, 8), data["action"][:, 8], sample=False)
    two = model.imagine_step(one, data["action"][:, 0], sample=False)
    assert torch.equal(one.reward, model.reward(one))
    swapped = one._replace(reward=one.reward + 1.0)
    assert not torch.allclose(
        model.imagine_step(swapped, data["action"][:, 0], sample=False).deter, two.deter
    )


def test_step_by_step_observe_feeds_back_predicted_rewards() -> None:
    model = build(2)
    data = sequence(2, 8, seed=2, firsts=(0, 5))
    stepped = model.observe(data["obs"], data["action"], data["is_first"], sample=False)
    predicted = model.reward(stepped.posterior)
    close(stepped.posterior.reward, predicted)
    parallel = observe(model, data, reward=predicted)
    close(stepped.posterior.deter, parallel.posterior.deter)
    close(stepped.prior.logits, parallel.prior.logits)


def test_stop_mask_nothing_attends_across_an_episode_start() -> None:
    model = build(3)
    data = sequence(2, 10, seed=3, firsts=(0, 6))
    out = observe(model, data)
    # the second episode alone, as a fresh sequence
    alone = observe(model, {k: v[:, 6:] for k, v in data.items()})
    close(out.posterior.deter[:, 6:], alone.posterior.deter)
    close(out.prior.logits[:, 6:], alone.prior.logits)
    # changing everything before the border changes nothing after it
    other = sequence(2, 10, seed=33, firsts=(0, 6))
    mixed = {k: torch.cat([other[k][:, :6], data[k][:, 6:]], 1) for k in data}
    changed = observe(model, mixed)
    close(changed.posterior.deter[:, 6:], out.posterior.deter[:, 6:])
    assert not torch.allclose(changed.posterior.deter[:, 1:6], out.posterior.deter[:, 1:6])
    # a carried memory is cut too: continuing with is_first[0] equals starting fresh
    carried = observe(
        model,
        {k: v[:, 6:] for k, v in data.items()},
        state=at(out.posterior, 5),
        prev_action=data["action"][:, 5],
    )
    close(carried.posterior.deter, alone.posterior.deter)


def test_hidden_state_is_read_at_the_action_token_and_is_causal() -> None:
    model = build(4)
    data = sequence(2, 8, seed=4)
    base = observe(model, data)
    t = 4
    g = torch.Generator().manual_seed(5)
    for field in ("obs", "action", "reward"):
        changed = {k: v.clone() for k, v in data.items()}
        if field == "obs":
            changed["obs"][:, t:] = torch.randint(0, 256, changed["obs"][:, t:].shape, generator=g).to(
                torch.uint8
            )
        elif field == "action":
            changed["action"][:, t:] = changed["action"][:, t:].roll(1, dims=-1)
        else:
            changed["reward"][:, t:] += 3.0
        out = observe(model, changed)
        # h_t, the prior of z_t, reward and continuation predictions see nothing from step t on
        close(out.posterior.deter[:, : t + 1], base.posterior.deter[:, : t + 1])
        close(out.prior.logits[:, : t + 1], base.prior.logits[:, : t + 1])
        # ... but h_{t+1} does see each of obs[t], action[t] and reward[t]
        assert not torch.allclose(out.posterior.deter[:, t + 1], base.posterior.deter[:, t + 1]), field
    # and h_t sees action[t - 1] (the action token it is read at)
    changed = {k: v.clone() for k, v in data.items()}
    changed["action"][:, t - 1] = changed["action"][:, t - 1].roll(1, dims=-1)
    out = observe(model, changed)
    close(out.posterior.deter[:, :t], base.posterior.deter[:, :t])
    assert not torch.allclose(out.posterior.deter[:, t], base.posterior.deter[:, t])


def test_loss_terms_follow_equations_3_and_4() -> None:
    model = build(5, kl_scale=0.3, latent_scale=2.0, reward_scale=10.0, cont_scale=50.0, image_scale=1.5)
    data = sequence(2, 7, seed=6, firsts=(4,))  # step 0 has no history although it is no episode start
    data["is_terminal"][0, 3] = True
    data["is_last"][0, 3] = True
    out = model.loss(data, generator=torch.Generator().manual_seed(0))
    post, prior = out.observed.posterior, out.observed.prior
    G, K = post.logits.shape[-2:]
    # equation 3: beta * KL(q(z|o) || uniform) - ln N(o; decoder(z), I), constants dropped
    q = torch.softmax(post.logits, -1)
    kl_uniform = (q * (torch.log(q) - math.log(1.0 / K))).sum((-2, -1))
    # images are preprocessed in float32 (hieros_lib.nn.preprocess_image) to [-0.5, 0.5]
    target = (data["obs"].float().permute(0, 1, 4, 2, 3) / 255.0 - 0.5).double()
    recon = model.decoder(post.stoch.flatten(-2))
    nll_image = 0.5 * ((recon - target) ** 2).sum((-3, -2, -1))
    representation = (1.5 * nll_image + 0.3 * kl_uniform).mean()
    # equation 4 on the steps with a history (not t = 0, not an episode start)
    p_prior = torch.softmax(prior.logits, -1)
    kl_latent = (q * (torch.log(q) - torch.log(p_prior))).sum((-2, -1))
    # the reward is regressed in symlog space: -ln N(symlog(r); r_hat, 1) with r_hat = symlog(reward(post))
    nll_reward = 0.5 * (symlog(data["reward"]) - symlog(model.reward(post))) ** 2
    c = model.cont(post)
    cont = 1.0 - data["is_terminal"].double()
    nll_cont = -(cont * torch.log(c) + (1 - cont) * torch.log(1 - c))
    mask = torch.ones(2, 7, dtype=torch.bool)
    mask[:, 0] = False
    mask[:, 4] = False
    dynamics = (2.0 * kl_latent + 10.0 * nll_reward + 50.0 * nll_cont)[mask].mean()
    close(out.loss, representation + dynamics)
    m = out.metrics
    close(m["loss/obs"], nll_image.mean())
    close(m["loss/encoder_kl"], kl_uniform.mean())
    close(m["loss/latent"], kl_latent[mask].mean())
    close(m["loss/reward"], nll_reward[mask].mean())
    close(m["loss/cont"], nll_cont[mask].mean())
    assert float(kl_uniform.detach().max()) <= G * math.log(K) + 1e-9


def test_dynamics_loss_does_not_train_the_observation_model() -> None:
    model = build(6, image_scale=0.0, kl_scale=0.0)
    data = sequence(2, 6, seed=7)
    model.loss(data, generator=torch.Generator().manual_seed(0)).loss.backward()
    for name, p in model.named_parameters():
        grad = p.grad
        if name.startswith(("encoder", "decoder")):
            assert grad is None or float(grad.abs().max()) == 0.0, name
        elif name.startswith(("transformer", "latent_head", "reward_head", "cont_head")):
            assert grad is not None and float(grad.abs().max()) > 0.0, name


def test_features_and_bad_inputs() -> None:
    data = sequence(2, 5)
    model = build()
    out = observe(model, data)
    assert model.feature_dim == 128  # h (d_model 64) and z (4 x 16 latents), as in every model
    torch.testing.assert_close(
        model.features(out.posterior), torch.cat([out.posterior.deter, out.posterior.stoch.flatten(-2)], -1)
    )
    model = build(unimix=0.5)  # every class keeps at least unimix / K of the probability
    out = observe(model, data)
    for state in (out.posterior, out.prior):
        assert float(torch.softmax(state.logits.detach(), -1).min()) >= 0.5 / 16 - 1e-12
    model = build()
    with pytest.raises(HierosError, match="reward"):
        observe(model, data, reward=data["reward"][:, :3])
    with pytest.raises(HierosError, match="action"):
        model.imagine_step(model.initial_state(2), torch.zeros(2, A + 1, dtype=torch.float64))
    with pytest.raises(HierosError, match="state"):
        observe(model, data, state=model.initial_state(3))


@pytest.mark.parametrize("pre_norm", [False, True])
def test_transformer_layer_matches_the_relative_attention_equations(pre_norm: bool) -> None:
    """One Transformer-XL layer against a plain loop over the equations of Dai et al. (2019)."""
    model = build(7, pre_norm=pre_norm)
    layer = model.transformer.layers[0]
    att = layer.attention
    H, Dh, D = att.num_heads, att.head_dim, model.deter_dim
    g = torch.Generator().manual_seed(8)
    M, N = 4, 5
    memory = torch.randn(1, M, D, generator=g, dtype=torch.float64)
    x = torch.randn(1, N, D, generator=g, dtype=torch.float64)
    mask = torch.rand(1, N, M + N, generator=g) < 0.7
    pos = torch.arange(M + N)
    mask &= (pos[M:, None] >= pos[None, :])[None]  # causal
    mask |= (pos[M:, None] == pos[None, :])[None]  # every token sees itself
    got = layer(x, memory, mask)

    full = torch.cat([memory, x], 1)[0]
    inp = x[0]
    if pre_norm:  # pre-norm layers attend from and to normalised tokens
        full, inp = layer.norm1(full), layer.norm1(inp)
    q = (inp @ att.query.weight.T).view(N, H, Dh)
    k, v = (full @ att.key_value.weight.T).view(M + N, 2, H, Dh).unbind(1)
    inv_freq = 1.0 / 10000.0 ** (torch.arange(0, D, 2, dtype=torch.float64) / D)

    def encoding(d: int) -> torch.Tensor:  # sinusoidal R_d: sines, then cosines
        return torch.cat([torch.sin(d * inv_freq), torch.cos(d * inv_freq)])

    heads = torch.zeros(N, H, Dh, dtype=torch.float64)
    for i in range(N):
        for h in range(H):
            scores = []
            for j in range(M + N):
                r = (
                    (encoding(M + i - j) @ att.position.weight.T).view(H, Dh)[h]
                    if j <= M + i
                    else 0 * k[j, h]
                )
                s = (q[i, h] + att.u[h]) @ k[j, h] + (q[i, h] + att.v[h]) @ r
                scores.append(
                    s / math.sqrt(Dh) if mask[0, i, j] else torch.tensor(-math.inf, dtype=torch.float64)
                )
            w = torch.softmax(torch.stack(scores), 0)
            heads[i, h] = (w[:, None] * v[:, h]).sum(0)
    if pre_norm:
        y = x[0] + att.out(heads.reshape(N, H * Dh))
        want = y + layer.feed_forward(layer.norm2(y))
    else:
        y = layer.norm1(x[0] + att.out(heads.reshape(N, H * Dh)))
        want = layer.norm2(y + layer.feed_forward(y))
    close(got[0], want)
