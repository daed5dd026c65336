"""Opt-in ``torch.compile`` (``SubactorConfig.compile``): compiled training and acting equal eager."""

from __future__ import annotations

import pytest
import torch
from wm_batches import random_level_batch

from hieros_lib.agents import Subactor, SubactorConfig
from hieros_lib.errors import HierosError

A, SIZE = 3, 16


def build(name: str, **overrides: object) -> Subactor:
    torch.manual_seed(0)
    config = SubactorConfig.tiny(world_model=name, **overrides)  # type: ignore[arg-type]
    return Subactor(config, obs_shape=(SIZE, SIZE, 3), action_shape=(A,))


def run(level: Subactor) -> tuple[list[dict[str, float]], torch.Tensor, list[torch.Tensor]]:
    """Two training steps on fixed batches, then a few acting steps, all under fixed generators."""
    metrics = []
    for step in range(2):
        batch = random_level_batch(2, 6, obs_shape=(SIZE, SIZE, 3), num_actions=A, seed=step)
        out = level.train_step(batch, generator=torch.Generator().manual_seed(10 + step))
        metrics.append({k: float(v) for k, v in out.items()})
    state, actions = level.initial_state(2), []
    generator = torch.Generator().manual_seed(3)
    for t in range(3):
        obs = torch.randint(0, 256, (2, SIZE, SIZE, 3), generator=torch.Generator().manual_seed(t))
        step = {"obs": obs.to(torch.uint8), "is_first": torch.full((2,), t == 0), "reward": torch.ones(2)}
        action, state = level.policy(step, state, generator=generator)
        actions.append(action)
    return metrics, torch.stack(actions), [p.detach().clone() for p in level.parameters()]


# aot_eager traces the same graphs (dynamo and AOT autograd, graph breaks at every generator) without
# generating C++; the inductor backend compiles for minutes on a CPU and is checked in the GPU script.
@pytest.mark.slow
@pytest.mark.parametrize("name", ["s5wm", "rssm", "twm"])
def test_compiled_training_and_acting_equal_eager(name: str) -> None:
    torch._dynamo.reset()
    eager = run(build(name))
    compiled = run(build(name, compile="default", compile_backend="aot_eager"))
    for e, c in zip(eager[0], compiled[0], strict=True):
        assert e.keys() == c.keys()
        for key in e:
            assert c[key] == pytest.approx(e[key], rel=1e-4, abs=1e-5), key
    torch.testing.assert_close(compiled[1], eager[1], rtol=0, atol=0)
    for e, c in zip(eager[2], compiled[2], strict=True):
        torch.testing.assert_close(c, e, rtol=1e-4, atol=1e-5)


def test_compile_options_are_checked() -> None:
    with pytest.raises(HierosError, match="compile"):
        SubactorConfig.tiny(compile="fast")
    with pytest.raises(HierosError, match="compile_backend"):
        SubactorConfig.tiny(compile_backend="")


@pytest.mark.parametrize("name", ["s5wm", "rssm", "twm"])
def test_bf16_autocast_trains_close_to_float32(name: str) -> None:
    """bf16 autocast (the world model and imagination) changes the first losses by rounding only."""
    full = build(name, autocast="none")
    half = build(name, autocast="bfloat16")
    batch = random_level_batch(2, 6, obs_shape=(SIZE, SIZE, 3), num_actions=A, seed=0)
    a = full.train_step(batch, generator=torch.Generator().manual_seed(1))
    b = half.train_step(batch, generator=torch.Generator().manual_seed(1))
    assert float(b["nonfinite"]) == 0.0
    for key in ("model/loss_total", "model/loss_obs", "model/loss_reward"):
        assert float(b[key]) == pytest.approx(float(a[key]), rel=0.05), key
    assert all(bool(torch.isfinite(p).all()) for p in half.parameters())
    assert float(b["model/loss_total"]) != float(a["model/loss_total"])  # autocast really ran


def build_on(device: str, **overrides: object) -> Subactor:
    torch.manual_seed(0)
    config = SubactorConfig.tiny(world_model="s5wm", **overrides)  # type: ignore[arg-type]
    return Subactor(config, obs_shape=(SIZE, SIZE, 3), action_shape=(A,), device=device)


@pytest.mark.gpu
def test_inductor_compiled_training_equals_eager_on_cuda() -> None:
    """The default backend (inductor) on CUDA, where compiling pays: equal to eager within float32
    reordering (inductor fuses reductions, so not bitwise)."""
    torch._dynamo.reset()
    results = []
    for overrides in ({}, {"compile": "default"}):
        level = build_on("cuda", **overrides)
        out = []
        for step in range(2):
            batch = random_level_batch(2, 6, obs_shape=(SIZE, SIZE, 3), num_actions=A, seed=step)
            batch = {k: v.cuda() for k, v in batch.items()}
            metrics = level.train_step(batch, generator=torch.Generator("cuda").manual_seed(10 + step))
            out.append({k: float(v) for k, v in metrics.items()})
        results.append(out)
    for eager, compiled in zip(*results, strict=True):
        for key in eager:
            assert compiled[key] == pytest.approx(eager[key], rel=1e-3, abs=1e-4), key


@pytest.mark.gpu
def test_acting_makes_no_device_sync_on_cuda() -> None:
    """Hieros.policy on CUDA under torch's sync debug mode: no device-to-host synchronisation."""
    from hieros_lib.agents import Hieros, HierosConfig

    torch.manual_seed(0)
    config = HierosConfig(levels=2, k=2, level=SubactorConfig.tiny(), sequence_length=4, batch_size=2)
    agent = Hieros(config, obs_shape=(SIZE, SIZE, 3), num_actions=A, num_envs=2, device="cuda")
    state, gen = agent.initial_state(), torch.Generator("cuda").manual_seed(0)
    step = {
        "obs": torch.zeros(2, SIZE, SIZE, 3, dtype=torch.uint8, device="cuda"),
        "reward": torch.zeros(2, device="cuda"),
        "is_first": torch.ones(2, dtype=torch.bool, device="cuda"),
        "is_last": torch.zeros(2, dtype=torch.bool, device="cuda"),
        "is_terminal": torch.zeros(2, dtype=torch.bool, device="cuda"),
    }
    agent.policy(step, state, generator=gen)  # warm-up (lazy initialisation may sync once)
    torch.cuda.set_sync_debug_mode("error")
    try:
        for t in range(4):
            step = {**step, "is_first": torch.full((2,), t == 0, device="cuda")}
            _, state, _ = agent.policy(step, state, generator=gen)
    finally:
        torch.cuda.set_sync_debug_mode("default")
