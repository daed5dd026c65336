"""One contract suite that every registered world model passes (new registrations join automatically)."""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F
from wm_testdata import KINDS, VECTOR_DIM, obs_overrides, random_batch

from hieros_lib.errors import HierosError
from hieros_lib.world_models import (
    ImaginedStep,
    WorldModel,
    available_world_models,
    make_world_model,
    map_state,
    world_model_config,
)

MODELS = available_world_models()
B, T, A, SIZE = 2, 6, 3, 16


def build(name: str, seed: int = 0, kind: str = "image") -> torch.nn.Module:
    torch.manual_seed(seed)
    return make_world_model(name, preset="tiny", action_dim=A, **obs_overrides(kind, SIZE))


def batch_for(kind: str, seed: int = 0) -> dict[str, torch.Tensor]:
    vector = VECTOR_DIM if kind == "vector" else None
    return random_batch(B, T, image_size=SIZE, action_dim=A, seed=seed, vector_dim=vector)


def leaves(state: object) -> list[torch.Tensor]:
    out: list[torch.Tensor] = []
    map_state(lambda x: out.append(x) or x, state)
    return out


def first_action_policy(step: ImaginedStep, model: WorldModel) -> torch.Tensor:
    batch = step.features.shape[0]
    return F.one_hot(torch.zeros(batch, dtype=torch.long), model.action_dim).float()


@pytest.fixture(scope="module", params=MODELS)
def name(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(scope="module", params=KINDS)
def kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def test_registry_lists_the_builtin_models() -> None:
    assert {"s5wm", "rssm"} <= set(MODELS)
    with pytest.raises(HierosError, match="name"):
        make_world_model("no-such-model")
    with pytest.raises(HierosError, match="overrides"):
        world_model_config("rssm", "tiny", action_dim=3, no_such_field=1)


def test_satisfies_protocol_and_paper_preset_builds_config(name: str) -> None:
    model = build(name)
    assert isinstance(model, WorldModel)
    assert isinstance(model, torch.nn.Module)
    paper = world_model_config(name, "paper", action_dim=A)
    assert paper.image_size == 64 and paper.action_dim == A
    with pytest.raises(Exception):  # noqa: B017 - configs are frozen
        paper.action_dim = 5  # type: ignore[misc]


def test_shapes_and_dtypes(name: str, kind: str) -> None:
    model = build(name, kind=kind)
    batch = batch_for(kind)
    g = torch.Generator().manual_seed(1)
    out = model.observe(batch["obs"], batch["action"], batch["is_first"], generator=g)
    for state in (out.posterior, out.prior):
        feat = model.features(state)
        assert feat.shape == (B, T, model.feature_dim) and feat.dtype == torch.float32
        assert model.deter(state).shape == (B, T, model.deter_dim)
        assert model.reward(state).shape == (B, T)
        assert model.entropy(state).shape == (B, T)
        cont = model.cont(state)
        assert cont.shape == (B, T) and bool(((cont >= 0) & (cont <= 1)).all())
    assert model.features(out.final_state).shape == (B, model.feature_dim)
    decoded = model.decode(out.posterior)
    if kind == "image":
        assert decoded.shape == (B, T, SIZE, SIZE, 3)
        assert bool(((decoded >= 0) & (decoded <= 1)).all())
    else:
        assert decoded.shape == (B, T, VECTOR_DIM) and decoded.dtype == torch.float32
    torch.testing.assert_close(
        model.features(out.posterior),
        torch.cat([model.deter(out.posterior), model.stoch(out.posterior).flatten(-2)], -1),
    )
    assert model.features(model.initial_state(B)).shape == (B, model.feature_dim)

    start = model.start_states(out)
    horizon = 4
    imag = model.imagine(start, lambda step: first_action_policy(step, model), horizon, generator=g)
    n = B * T
    assert imag.features.shape == (n, horizon + 1, model.feature_dim)
    assert imag.deter.shape == (n, horizon + 1, model.deter_dim)
    assert imag.actions.shape == (n, horizon + 1, A)
    for field in (imag.reward, imag.cont, imag.entropy):
        assert field.shape == (n, horizon + 1)
        assert bool(torch.isfinite(field).all())
    # the start state is index 0
    torch.testing.assert_close(imag.features[:, 0], model.features(start))
    # sample=False takes the prior's mode: the generator no longer matters
    policy = lambda step: first_action_policy(step, model)  # noqa: E731
    modes = [
        model.imagine(start, policy, horizon, sample=False, generator=torch.Generator().manual_seed(seed))
        for seed in (1, 2)
    ]
    torch.testing.assert_close(modes[0].features, modes[1].features, rtol=0, atol=0)
    gens = [torch.Generator().manual_seed(i) for i in (1, 2)]
    sampled = [model.imagine(start, policy, horizon, generator=gen) for gen in gens]
    assert not torch.equal(sampled[0].features, sampled[1].features)


def test_every_parameter_trains_and_nothing_is_nan(name: str, kind: str) -> None:
    model = build(name, kind=kind)
    if hasattr(model.config, "free_bits"):  # below 1 nat of KL free bits stop the prior's gradient
        overrides = {"free_bits": 0.0, **obs_overrides(kind, SIZE)}
        model = make_world_model(name, preset="tiny", action_dim=A, **overrides)
    batch = batch_for(kind)
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    g = torch.Generator().manual_seed(0)
    for _ in range(2):  # two steps: zero-initialised output layers unblock the layers before them
        out = model.loss(batch, generator=g)
        assert out.loss.dim() == 0 and bool(torch.isfinite(out.loss))
        assert all(bool(torch.isfinite(v)) for v in out.metrics.values())
        opt.zero_grad()
        out.loss.backward()
        for pname, p in model.named_parameters():
            assert p.grad is not None, pname
            assert bool(torch.isfinite(p.grad).all()), pname
        opt.step()
    frozen = [n for n, p in model.named_parameters() if torch.equal(p.detach(), before[n])]
    assert not frozen, f"parameters that never got a gradient: {frozen}"


def test_same_seed_same_loss_and_state_dict_round_trip(name: str, kind: str) -> None:
    batch = batch_for(kind)
    first, second = build(name, seed=3, kind=kind), build(name, seed=3, kind=kind)
    loss1 = first.loss(batch, generator=torch.Generator().manual_seed(5)).loss
    loss2 = second.loss(batch, generator=torch.Generator().manual_seed(5)).loss
    assert torch.equal(loss1, loss2)
    other = build(name, seed=4, kind=kind)
    loss_other = other.loss(batch, generator=torch.Generator().manual_seed(5)).loss
    assert not torch.equal(loss1, loss_other)
    other.load_state_dict(copy.deepcopy(first.state_dict()))
    loss3 = other.loss(batch, generator=torch.Generator().manual_seed(5)).loss
    assert torch.equal(loss1, loss3)


def test_continuing_from_the_final_state_equals_one_pass(name: str, kind: str) -> None:
    model = build(name, kind=kind).eval()
    batch = batch_for(kind, seed=2)
    batch["is_first"][:] = False
    batch["is_first"][:, 0] = True
    obs, action, first = batch["obs"], batch["action"], batch["is_first"]
    k = T // 2
    with torch.no_grad():
        whole = model.observe(obs, action, first, sample=False)
        head = model.observe(obs[:, :k], action[:, :k], first[:, :k], sample=False)
        tail = model.observe(
            obs[:, k:],
            action[:, k:],
            first[:, k:],
            head.final_state,
            prev_action=action[:, k - 1],
            sample=False,
        )
    for part, sl in ((head, slice(0, k)), (tail, slice(k, T))):
        for which in ("posterior", "prior"):
            got = getattr(part, which)
            want = map_state(lambda x, sl=sl: x[:, sl], getattr(whole, which))
            for a, b in zip(leaves(got), leaves(want), strict=True):
                torch.testing.assert_close(a, b, atol=1e-4, rtol=1e-4)
    for a, b in zip(leaves(tail.final_state), leaves(whole.final_state), strict=True):
        torch.testing.assert_close(a, b, atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize(
    "field, bad, match",
    [
        ("obs", lambda b: b["obs"][..., :2], "obs"),
        ("obs", lambda b: b["obs"].float(), "obs"),
        ("obs", lambda b: b["obs"][:, :, :8], "obs"),
        ("action", lambda b: b["action"] * 2.0, "action"),
        ("action", lambda b: b["action"][..., :2], "action"),
        ("action", lambda b: b["action"] * float("nan"), "action"),
        ("is_first", lambda b: b["is_first"].float(), "is_first"),
        ("reward", lambda b: b["reward"][:, :-1], "reward"),
        ("is_terminal", lambda b: b["is_terminal"].long(), "is_terminal"),
    ],
)
def test_bad_input_raises_the_library_error(name: str, field: str, bad: object, match: str) -> None:
    model = build(name)
    batch = random_batch(B, T, image_size=SIZE, action_dim=A)
    broken = dict(batch)
    broken[field] = bad(batch)  # type: ignore[operator]
    with pytest.raises(HierosError, match=match):
        model.loss(broken)
    if field in ("obs", "action", "is_first"):
        with pytest.raises(HierosError, match=match):
            model.observe(broken["obs"], broken["action"], broken["is_first"])
    missing = {k: v for k, v in batch.items() if k != "reward"}
    with pytest.raises(HierosError, match="batch"):
        model.loss(missing)
