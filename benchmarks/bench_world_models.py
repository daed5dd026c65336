"""Benchmark the registered world models (S5WM, RSSM, TWM) in one run, through the registry.

For each model at its paper size (default batch 16, length 64, 64x64x3 images):

- parameter count;
- time of one training step (loss forward, backward, Adam step);
- time of the *sequence part* alone: the same training step with the image encoder replaced by a cached
  embedding and the image decoder by a trivial map, so what remains is the latent / sequence model, the
  heads and the losses;
- time per imagination step from 256 start states over horizons 16 and 64 (no gradients).

Each time is the fastest of ``--repeats`` runs after a warm-up run.

Ratios are printed against S5WM (``> 1`` means slower than S5WM). The paper's claims, as targets: S5WM's
sequence part trains at least 2x faster than RSSM's at length 64; S5WM imagines at least 2x faster per
step than TWM.

Usage::

    python benchmarks/bench_world_models.py [--device cpu] [--batch 16] [--length 64] [--image-size 64]
        [--starts 256] [--horizons 16 64] [--repeats 3] [--json out.json] [--models s5wm rssm twm]
"""

from __future__ import annotations

import argparse
import json
import logging
import platform
import time
from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from hieros_lib.world_models import available_world_models, make_world_model, map_state

logger = logging.getLogger("bench_world_models")


def make_batch(
    batch: int, length: int, size: int, action_dim: int, device: torch.device, seed: int = 0
) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    is_first = torch.zeros(batch, length, dtype=torch.bool)
    is_first[:, 0] = True
    flags = torch.zeros(batch, length, dtype=torch.bool)
    data = {
        "obs": torch.randint(0, 256, (batch, length, size, size, 3), generator=g).to(torch.uint8),
        "action": F.one_hot(torch.randint(0, action_dim, (batch, length), generator=g), action_dim).float(),
        "reward": torch.randn(batch, length, generator=g),
        "is_first": is_first,
        "is_last": flags,
        "is_terminal": flags.clone(),
    }
    return {key: value.to(device) for key, value in data.items()}


class CachedEncoder(nn.Module):
    """Stands in for an image encoder: returns a fixed embedding that still receives gradients."""

    def __init__(self, embedding: torch.Tensor) -> None:
        super().__init__()
        self.embedding = nn.Parameter(embedding)
        self.out_dim = embedding.shape[-1]

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        return self.embedding.expand(*image.shape[:-3], -1)


class TrivialDecoder(nn.Module):
    """Stands in for an image decoder: a scalar per step broadcast to the image shape."""

    def __init__(self, in_dim: int, image_shape: tuple[int, int, int]) -> None:
        super().__init__()
        self.proj = nn.Linear(in_dim, 1)
        self.image_shape = image_shape

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(x)[..., None, None].expand(*x.shape[:-1], *self.image_shape)


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(fn: Callable[[], object], device: torch.device, repeats: int) -> float:
    """Fastest wall time of ``fn`` over ``repeats`` calls after one warm-up call.

    The minimum, not the median: on a machine shared with other jobs, interference only ever adds time.
    """
    fn()
    sync(device)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        sync(device)
        times.append(time.perf_counter() - start)
    return min(times)


def train_step_fn(model: nn.Module, batch: dict[str, torch.Tensor]) -> Callable[[], object]:
    opt = torch.optim.Adam(model.parameters(), lr=1e-4)
    generator = torch.Generator(device=batch["obs"].device).manual_seed(0)

    def step() -> object:
        out = model.loss(batch, generator=generator)  # type: ignore[operator]
        opt.zero_grad(set_to_none=True)
        out.loss.backward()
        opt.step()
        return out.loss.detach()

    return step


def sequence_part(model: nn.Module, batch: dict[str, torch.Tensor]) -> nn.Module:
    """The model with its image encoder and decoder swapped for trivial stand-ins (same parameters else)."""
    encoder = model.encoder  # type: ignore[union-attr]
    decoder = model.decoder  # type: ignore[union-attr]
    b, t = batch["obs"].shape[:2]
    with torch.no_grad():
        probe = encoder(torch.zeros(1, *reversed_image_shape(model), device=batch["obs"].device))
    embedding = torch.randn(b, t, probe.shape[-1], device=probe.device, dtype=probe.dtype)
    model.encoder = CachedEncoder(embedding)  # type: ignore[union-attr]
    model.decoder = TrivialDecoder(decoder.in_dim, reversed_image_shape(model)).to(probe.device)  # type: ignore[union-attr]
    return model


def reversed_image_shape(model: nn.Module) -> tuple[int, int, int]:
    h, w, c = model.obs_shape  # type: ignore[union-attr]
    return (int(c), int(h), int(w))


def imagine_per_step(
    model: nn.Module, batch: dict[str, torch.Tensor], starts: int, horizon: int, repeats: int
) -> float:
    device = batch["obs"].device
    generator = torch.Generator(device=device).manual_seed(1)
    action_dim = int(model.action_dim)  # type: ignore[union-attr]
    with torch.no_grad():
        observed = model.observe(  # type: ignore[operator]
            batch["obs"], batch["action"], batch["is_first"], generator=generator
        )
        start = model.start_states(observed)  # type: ignore[operator]
        n = model.features(start).shape[0]  # type: ignore[operator]
        index = torch.arange(starts, device=device) % n
        start = map_state(lambda x: x[index], start)

    def policy(step: Any) -> torch.Tensor:
        batch_size = step.features.shape[0]
        idx = torch.randint(0, action_dim, (batch_size,), device=device, generator=generator)
        return F.one_hot(idx, action_dim).float()

    def run() -> object:
        with torch.no_grad():
            return model.imagine(start, policy, horizon, generator=generator)  # type: ignore[operator]

    return timed(run, device, repeats) / horizon


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--length", type=int, default=64)
    parser.add_argument("--image-size", type=int, default=64)
    parser.add_argument("--action-dim", type=int, default=18)
    parser.add_argument("--starts", type=int, default=256)
    parser.add_argument("--horizons", type=int, nargs="+", default=[16, 64])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--models", nargs="+", default=list(available_world_models()))
    parser.add_argument("--preset", default="paper", choices=["paper", "tiny"])
    parser.add_argument("--json", default="bench_world_models.json")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    device = torch.device(args.device)
    torch.manual_seed(0)
    missing = [name for name in ("s5wm", "rssm", "twm") if name not in available_world_models()]
    if missing:
        logger.info("not registered (skipped): %s", ", ".join(missing))
    models = [name for name in args.models if name in available_world_models()]

    results: dict[str, dict[str, float]] = {}
    for name in models:
        overrides = {"action_dim": args.action_dim, "image_size": args.image_size}
        model = make_world_model(name, preset=args.preset, **overrides).to(device)
        batch = make_batch(args.batch, args.length, args.image_size, args.action_dim, device)
        row: dict[str, float] = {"params": float(sum(p.numel() for p in model.parameters()))}
        logger.info("%s: %.2fM parameters", name, row["params"] / 1e6)
        row["train_step_s"] = timed(train_step_fn(model, batch), device, args.repeats)
        logger.info("%s: train step %.3f s", name, row["train_step_s"])
        for horizon in args.horizons:
            row[f"imagine_step_ms_h{horizon}"] = (
                imagine_per_step(model, batch, args.starts, horizon, args.repeats) * 1e3
            )
            logger.info("%s: imagine h=%d %.2f ms/step", name, horizon, row[f"imagine_step_ms_h{horizon}"])
        seq_model = sequence_part(model, batch)
        row["sequence_step_s"] = timed(train_step_fn(seq_model, batch), device, args.repeats)
        logger.info("%s: sequence part %.3f s", name, row["sequence_step_s"])
        results[name] = row
        del model, seq_model

    keys = ["params", "train_step_s", "sequence_step_s"] + [f"imagine_step_ms_h{h}" for h in args.horizons]
    header = "| model | " + " | ".join(keys) + " |"
    lines = [header, "|" + "---|" * (len(keys) + 1)]
    for name, row in results.items():
        cells = []
        for key in keys:
            value = row[key]
            text = f"{value / 1e6:.2f}M" if key == "params" else f"{value:.4g}"
            if "s5wm" in results and name != "s5wm" and key != "params":
                text += f" ({value / results['s5wm'][key]:.2f}x)"
            cells.append(text)
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    table = "\n".join(lines)
    print(table)
    summary: dict[str, Any] = {
        "machine": f"{platform.processor() or platform.machine()}, {torch.get_num_threads()} threads, "
        f"device {device}",
        "torch": torch.__version__,
        "args": vars(args),
        "results": results,
        "not_registered": missing,
    }
    if "s5wm" in results:
        s5 = results["s5wm"]
        if "rssm" in results:
            summary["claim_sequence_train_vs_rssm"] = (
                results["rssm"]["sequence_step_s"] / s5["sequence_step_s"]
            )
        if "twm" in results:
            summary["claim_imagine_vs_twm"] = {
                h: results["twm"][f"imagine_step_ms_h{h}"] / s5[f"imagine_step_ms_h{h}"]
                for h in args.horizons
            }
    print(json.dumps({k: v for k, v in summary.items() if k.startswith("claim")}, indent=1))
    with open(args.json, "w") as handle:
        json.dump(summary, handle, indent=1)
    return summary


if __name__ == "__main__":
    main()
