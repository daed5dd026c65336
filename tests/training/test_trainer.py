"""The trainer end to end on the debug preset: run directory, exact resumption, faults, command line."""

from __future__ import annotations

import json
import logging
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import torch

from hieros_lib.errors import HierosError
from hieros_lib.training import PRESETS, TIMING_KEYS, Trainer, config_from_yaml, main, make_config, train
from hieros_lib.training._cli import EXIT_CODES


def debug(logdir: Path, *extra: str) -> Any:
    return make_config("debug", [f"logdir={logdir}", "run.progress=false", *extra])


def rows(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def without_timing(metrics: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{k: v for k, v in row.items() if k not in TIMING_KEYS} for row in metrics]


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    logdir = tmp_path_factory.mktemp("debug") / "run"
    summary = train(debug(logdir, "run.tensorboard=true"))
    assert summary["status"] == "finished"
    return logdir


def test_the_run_directory_holds_every_artifact(finished_run: Path) -> None:
    d = finished_run
    config = config_from_yaml((d / "config.yaml").read_text())
    assert config.preset == "debug" and config.run.steps == 240
    metrics = rows(d / "metrics.jsonl")
    assert [m["step"] for m in metrics if "updates" in m] == [40, 80, 120, 160, 200, 240]
    assert any("level0/model/loss_total" in m for m in metrics)
    assert any("level1/model/loss_total" in m for m in metrics)
    assert {"eval/return"} <= {k for m in metrics for k in m}
    scores = rows(d / "scores.jsonl")
    assert {s["mode"] for s in scores} == {"train", "eval"}
    assert all(s["length"] == 40 for s in scores)  # the debug preset's 40-step episodes
    for name in ("returns.png", "world_model.png", "rewards.png"):
        assert (d / "plots" / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    gifs = sorted(p.name for p in (d / "media").iterdir())
    assert any(n.startswith("eval_") for n in gifs) and any(n.startswith("open_loop_") for n in gifs)
    assert all((d / "media" / n).read_bytes()[:6] == b"GIF89a" for n in gifs)
    assert list((d / "tensorboard").glob("events.out.tfevents.*"))
    summary = json.loads((d / "summary.json").read_text())
    assert summary["status"] == "finished" and summary["env_steps"] == 240
    assert summary["eval_episodes"] == 1 and "eval_return_mean" in summary
    assert summary["eval_mode"] == "sample"  # DreamerV3's evaluation, the default
    # checkpoints at 120, 240 and the final one of 240 under its own name; the newest two are kept
    checkpoints = sorted(p.name for p in (d / "checkpoints").iterdir() if p.is_dir())
    assert checkpoints == ["ckpt000001-step000000240", "ckpt000002-step000000240"]
    assert (d / "checkpoints" / "latest").read_text() == "ckpt000002-step000000240"
    assert all(s.get("env") == 0 for s in scores if s["mode"] == "eval")


def test_a_stopped_and_resumed_run_writes_what_the_uninterrupted_one_wrote(
    finished_run: Path, tmp_path: Path
) -> None:
    logdir = tmp_path / "resumed"
    config = debug(logdir, "run.tensorboard=true")
    trainer = Trainer(config)
    original = trainer._checkpoint

    def checkpoint_then_stop() -> None:  # as SIGTERM at step 120 would: checkpoint, then stop
        original()
        trainer.request_stop("test")

    trainer._checkpoint = checkpoint_then_stop  # type: ignore[method-assign]
    assert trainer.run()["status"] == "stopped"
    assert rows(logdir / "metrics.jsonl")[-1]["step"] == 120
    with open(logdir / "metrics.jsonl", "a") as handle:  # a line the crash left after the checkpoint
        handle.write(json.dumps({"step": 140, "junk": 1}) + "\n")
    summary = Trainer(config).run()  # the same command again
    assert summary["status"] == "finished"
    assert without_timing(rows(logdir / "metrics.jsonl")) == without_timing(
        rows(finished_run / "metrics.jsonl")
    )
    assert rows(logdir / "scores.jsonl") == rows(finished_run / "scores.jsonl")
    assert (
        json.loads((logdir / "summary.json").read_text())["eval_return_mean"] == summary["eval_return_mean"]
    )
    before = {p: p.read_bytes() for p in logdir.rglob("*") if p.is_file()}
    assert Trainer(config).run() == summary  # once more: the run is finished, nothing is redone
    assert {p: p.read_bytes() for p in logdir.rglob("*") if p.is_file()} == before


def test_environments_that_cannot_save_their_state_start_new_episodes_on_resume(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # environments in subprocesses, like Atari and any Gymnasium env, cannot hand out their state
    logdir = tmp_path / "async"
    config = debug(logdir, "env.asynchronous=true", "run.steps=200", "run.media=false", "run.plot_every=0")
    trainer = Trainer(config)
    assert not trainer.env.can_save_state and trainer.eval_env.can_save_state
    original = trainer._checkpoint

    def checkpoint_then_stop() -> None:
        original()
        trainer.request_stop("test")

    trainer._checkpoint = checkpoint_then_stop  # type: ignore[method-assign]
    assert trainer.run()["status"] == "stopped"  # at step 120, in the middle of an episode
    scored = [s for s in rows(logdir / "scores.jsonl") if s["mode"] == "train"]
    with caplog.at_level(logging.WARNING, logger="hieros_lib.training"):
        summary = Trainer(config).run()
    assert "start new episodes" in caplog.text
    assert summary["status"] == "finished" and summary["env_steps"] == 200
    after = [s for s in rows(logdir / "scores.jsonl") if s["mode"] == "train"]
    assert after[: len(scored)] == scored and len(after) > len(scored)
    assert all(s["length"] == 40 for s in after)  # the interrupted episode is not scored as a short one
    assert all(s["step"] > 120 for s in after[len(scored) :])


def test_another_config_is_refused_and_nothing_is_touched(finished_run: Path, tmp_path: Path) -> None:
    logdir = tmp_path / "copy"
    shutil.copytree(finished_run, logdir)
    before = {p: p.read_bytes() for p in logdir.rglob("*") if p.is_file()}
    with pytest.raises(HierosError, match=r"agent\.k"):
        Trainer(debug(logdir, "agent.k=3"))
    with pytest.raises(HierosError, match=r"run\.threads"):  # threads change results: refused
        Trainer(debug(logdir, "run.threads=1"))
    (logdir / "config.yaml").write_text("run: {steps: [1, 2\n")
    before[logdir / "config.yaml"] = (logdir / "config.yaml").read_bytes()
    with pytest.raises(HierosError, match=r"config\.yaml"):  # not YAML: one line, no traceback
        Trainer(debug(logdir))
    assert {p: p.read_bytes() for p in logdir.rglob("*") if p.is_file()} == before


def test_bad_directories_and_environments_are_clear_errors(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    with pytest.raises(HierosError, match="logdir: expected a writable directory"):
        Trainer(debug(blocker / "run"))
    with pytest.raises(HierosError, match="spec"):
        Trainer(debug(tmp_path / "env", "env.spec=hieros:nope"))
    full = tmp_path / "full"

    class Usage:
        free = 1024

    monkeypatch.setattr(shutil, "disk_usage", lambda path: Usage())
    with pytest.raises(HierosError, match="MiB free"):
        Trainer(debug(full))
    assert not (full / "config.yaml").exists()


def test_non_finite_losses_are_skipped_then_the_run_diverges_without_a_nan_checkpoint(tmp_path: Path) -> None:
    trainer = Trainer(debug(tmp_path / "nan", "run.max_nonfinite=3"))
    model = trainer.agent.level(0).model
    original = model.loss

    def nan_loss(*args: Any, **kwargs: Any) -> Any:
        out = original(*args, **kwargs)
        return out._replace(loss=out.loss * float("nan"))

    model.loss = nan_loss  # type: ignore[method-assign]
    summary = trainer.run()
    assert summary["status"] == "diverged" and "3 non-finite" in summary["reason"]
    assert json.loads((tmp_path / "nan" / "summary.json").read_text())["status"] == "diverged"
    parameters = [p.detach().clone() for p in model.parameters()]
    assert all(bool(torch.isfinite(p).all()) for p in parameters)  # no NaN update was applied


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "hieros_lib.training", *args], capture_output=True, text=True
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--preset", "nope"), "preset"),
        (("--preset", "debug", "agent.levelz=2"), "levelz"),
        (("--preset", "debug", "run.steps=many"), "run.steps"),
        (("--preset", "debug", "agent.level.horizon=0"), "horizon"),
        (("--preset", "debug", "oops"), "key=value"),
    ],
)
def test_bad_command_lines_print_one_line_and_fail(
    args: tuple[str, ...], message: str, tmp_path: Path
) -> None:
    result = run_cli(*args, "--logdir", str(tmp_path / "run"))
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("hieros-train: error:") and message in lines[0], lines
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--preset", "debug", "run.device=cuda:banana"), "run.device"),
        (("--preset", "debug", "env.options={bogus: 1}"), "bogus"),
        (("--preset", "debug", "env.spec=gym:CartPole-v1"), r"length.*env\.options=\{\}"),
        (("--preset", "debug", "env.options=3"), "env.options"),
        (("--preset", "debug", "run.eval_mode=argmax"), "run.eval_mode"),
    ],
)
def test_bad_devices_options_and_modes_print_one_line(
    args: tuple[str, ...], message: str, tmp_path: Path
) -> None:
    result = run_cli(*args, "--logdir", str(tmp_path / "run"))
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2 and len(lines) == 1, lines
    assert re.search(message, lines[0]) and "Traceback" not in result.stderr, lines


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message of a machine without CUDA")
def test_cuda_on_a_machine_without_it_is_one_line() -> None:
    with pytest.raises(HierosError, match=r"run\.device: expected a CUDA device this machine has \(0"):
        Trainer(make_config("debug", ["run.device=cuda"]))


def test_options_may_follow_overrides_and_help_lists_presets_and_exit_codes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    logdir = tmp_path / "run"
    assert main(["--preset", "debug", "run.steps=10", "--quiet", "run.seed=1", "--logdir", str(logdir),
                 "run.media=false"]) == 0
    assert config_from_yaml((logdir / "config.yaml").read_text()).run.seed == 1
    assert "over 1 episode," in capsys.readouterr().err  # "1 episode", not "1 episodes"
    with pytest.raises(SystemExit):
        main(["--help"])
    text = capsys.readouterr().out
    assert all(f"  {name} " in text for name in PRESETS), text
    assert all(f"  {code} " in text for code in EXIT_CODES)


def test_the_trainer_leaves_the_global_random_state_alone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def reseeds(*args: Any) -> None:
        raise AssertionError("torch.manual_seed reseeds every device's global generator")

    monkeypatch.setattr(torch, "manual_seed", reseeds)
    before = torch.random.get_rng_state()
    Trainer(debug(tmp_path / "run")).env.close()
    assert torch.equal(torch.random.get_rng_state(), before)


@pytest.mark.parametrize(
    "override",
    [
        "agent.level.model_lr=1e30",
        "agent.level.actor_critic.actor_lr=1e30",
        "agent.level.actor_critic.critic_lr=1e30",
        "agent.level.autoencoder_lr=1e30",
    ],
)
def test_divergence_takes_the_documented_path(override: str, tmp_path: Path) -> None:
    """Exit status 1 (diverged), summary.json says so, and no checkpoint holds a non-finite tensor."""
    logdir = tmp_path / "run"
    summary = Trainer(debug(logdir, override, "run.checkpoint_every=40", "run.media=false")).run()
    assert summary["status"] == "diverged", summary
    assert json.loads((logdir / "summary.json").read_text())["status"] == "diverged"
    for state in (logdir / "checkpoints").glob("ckpt*/state.pt"):
        saved = torch.load(state, weights_only=False)["agent"]
        assert all(bool(torch.isfinite(v).all()) for v in saved.values() if v.is_floating_point()), state


@pytest.mark.parametrize("asynchronous", [False, True])
def test_two_environments_train_evaluate_and_resume(asynchronous: bool, tmp_path: Path) -> None:
    """N = 2 (in-process or in subprocesses): evaluation uses its own single environment; a run stopped at
    a checkpoint and resumed writes what the uninterrupted one wrote (in-process environments resume
    exactly; subprocess ones start new episodes)."""
    extra = ["env.num_envs=2", f"env.asynchronous={str(asynchronous).lower()}", "run.steps=120",
             "run.eval_every=60", "run.checkpoint_every=60", "run.media=false", "run.plot_every=0"]
    whole = tmp_path / "whole"
    assert Trainer(debug(whole, *extra)).run()["status"] == "finished"
    resumed = tmp_path / "resumed"
    trainer = Trainer(debug(resumed, *extra))
    original = trainer._checkpoint

    def checkpoint_then_stop(**kwargs: Any) -> None:
        original(**kwargs)
        trainer.request_stop("test")

    trainer._checkpoint = checkpoint_then_stop  # type: ignore[method-assign]
    assert trainer.run()["status"] == "stopped"
    summary = Trainer(debug(resumed, *extra)).run()
    assert summary["status"] == "finished" and summary["env_steps"] == 120
    evals = [s for s in rows(resumed / "scores.jsonl") if s["mode"] == "eval"]
    assert [s["step"] for s in evals] == [60, 120]
    if not asynchronous:
        metrics = without_timing(rows(resumed / "metrics.jsonl"))
        assert metrics == without_timing(rows(whole / "metrics.jsonl"))
        assert rows(resumed / "scores.jsonl") == rows(whole / "scores.jsonl")
