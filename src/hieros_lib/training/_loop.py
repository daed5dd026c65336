"""The training loop: act, store, train, log, evaluate, draw, checkpoint, resume."""

from __future__ import annotations

import json
import logging
import math
import os
import shutil
import signal
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import torch

from hieros_lib._io import atomic_write
from hieros_lib.agents import Hieros, HierosState
from hieros_lib.envs import make_env
from hieros_lib.errors import HierosError, check
from hieros_lib.metrics import human_normalized_score
from hieros_lib.training._checkpoint import latest_checkpoint, load_checkpoint, save_checkpoint
from hieros_lib.training._config import TrainConfig, config_from_yaml, config_to_yaml
from hieros_lib.training._logger import RunLogger
from hieros_lib.training._media import open_loop_frames, side_by_side, to_uint8, write_gif
from hieros_lib.training._plots import draw_plots
from hieros_lib.world_models import map_state

__all__ = ["Trainer", "reference_returns", "train"]

logger = logging.getLogger(__name__)

# Fields of the config that may change when a run is resumed (they change no result).
_RESUMABLE = {"logdir", "run.steps", "run.progress", "run.tensorboard", "run.device", "run.threads"}
# Keys of metrics.jsonl that measure time, not learning (they differ between two identical runs).
TIMING_KEYS = ("fps", "time", "updates_per_s")


def reference_returns(spec: str, options: dict[str, Any]) -> dict[str, float]:
    """Random and optimal returns of the embedded environments as documented (empty if unknown)."""
    if spec == "hieros:catch" and options.get("columns", 4) == 4:
        balls = int(options.get("length", 100)) // 8
        return {"random": -0.5 * balls, "optimal": float(balls)}
    if spec == "hieros:pinpad-three":
        scale = int(options.get("length", 2000)) / 1000.0
        return {"random": 1.3 * scale, "scripted optimal": 225.0 * scale}
    return {}


def _flat(config: Any, prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in vars(config).items():
        if hasattr(value, "__dataclass_fields__"):
            out.update(_flat(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


class _Mean:
    """Running means of named scalars between two log lines (its state goes into checkpoints)."""

    def __init__(self) -> None:
        self.sums: dict[str, float] = {}
        self.counts: dict[str, int] = {}

    def add(self, values: dict[str, Any]) -> None:
        for key, value in values.items():
            value = float(value)
            self.sums[key] = self.sums.get(key, 0.0) + value
            self.counts[key] = self.counts.get(key, 0) + 1

    def result(self) -> dict[str, float]:
        out = {key: self.sums[key] / self.counts[key] for key in self.sums}
        self.sums, self.counts = {}, {}
        return out


class Trainer:
    """One training run in a run directory; :meth:`run` trains until ``run.steps`` or a stop.

    Building a trainer checks everything that could fail before anything is written: the run directory
    is writable and has room, the environment exists, and an existing run in the directory has the same
    config (except ``run.steps``, ``run.progress``, ``run.tensorboard``, ``run.device``, ``run.threads``
    and ``logdir`` itself) and a readable checkpoint, which it then resumes from.

    Args:
        config: A :class:`~hieros_lib.training.TrainConfig`.

    Raises:
        HierosError: On an unwritable or full run directory, an unknown environment, a run directory that
            holds another config, or a corrupt checkpoint; nothing in the directory is changed then.
    """

    def __init__(self, config: TrainConfig) -> None:
        check(isinstance(config, TrainConfig), "config", "a TrainConfig", got=type(config).__name__)
        self.config = config
        self.directory = Path(config.logdir)
        self._stop_reason: str | None = None
        self._prepare_directory()
        self.checkpoint_root = self.directory / "checkpoints"
        self._resume_from = self._check_existing_run()
        run = config.run
        self.device = torch.device(
            ("cuda" if torch.cuda.is_available() else "cpu") if run.device == "auto" else run.device
        )
        seeds = np.random.SeedSequence(run.seed).generate_state(4)
        env_config = config.env
        options = dict(env_config.options)
        self.env = make_env(
            env_config.spec,
            seed=int(seeds[0]),
            num_envs=env_config.num_envs,
            asynchronous=env_config.asynchronous,
            image_size=env_config.image_size,
            **options,
        )
        self.eval_env = make_env(
            env_config.spec,
            seed=int(seeds[1]),
            num_envs=1,
            image_size=env_config.image_size,
            **options,
            **env_config.eval_options,
        )
        with torch.random.fork_rng(devices=[]):  # parameters from the run's seed, global RNG left alone
            torch.manual_seed(int(seeds[2]))
            self.agent = Hieros(
                config.agent,
                obs_shape=self.env.obs_shape,
                num_actions=self.env.num_actions,
                num_envs=self.env.num_envs,
                seed=int(seeds[3]) % 2**31,
                device=self.device,
            )
        self.act_generator = torch.Generator(device=self.device).manual_seed(int(seeds[2]) + 1)
        self.train_generator = torch.Generator(device=self.device).manual_seed(int(seeds[2]) + 2)
        self.reference = reference_returns(env_config.spec, options)
        self.env_steps = 0
        self.due = 0.0
        self.nonfinite_streak = 0
        self.nonfinite_total = 0
        self.updates = 0
        self.episodes = 0
        self.recent_returns: list[float] = []
        self.next_log = run.log_every
        self.next_eval = run.eval_every or math.inf
        self.next_plot = run.plot_every or math.inf
        self.next_checkpoint = run.checkpoint_every or math.inf
        self.train_means = _Mean()
        self.state: HierosState = self.agent.initial_state()
        self.step: dict[str, np.ndarray] = {}
        self.episode_return = np.zeros(self.env.num_envs)
        self.episode_length = np.zeros(self.env.num_envs, dtype=np.int64)
        self.file_sizes = {"metrics.jsonl": 0, "scores.jsonl": 0}
        self.elapsed = 0.0
        self.logger: RunLogger

    # ------------------------------------------------------------------------------- the directory
    def _prepare_directory(self) -> None:
        directory = self.directory
        try:
            directory.mkdir(parents=True, exist_ok=True)
            probe = directory / f".write-test-{os.getpid()}"
            probe.write_bytes(b"ok")
            probe.unlink()
        except OSError as err:
            raise HierosError(
                f"logdir: expected a writable directory, got {str(directory)!r} ({err})"
            ) from err
        run, env = self.config.run, self.config.env
        size = env.image_size**2 * 3 if env.spec.startswith(("atari:", "hieros:")) else 4096
        need = 64 * 2**20 + 3 * run.steps * size  # replay files of two checkpoints and one being written
        free = shutil.disk_usage(directory).free
        if free < need:
            raise HierosError(
                f"logdir: expected at least {need / 2**20:.0f} MiB free for {str(directory)!r} "
                f"(checkpoints hold the replay), got {free / 2**20:.0f} MiB"
            )

    def _check_existing_run(self) -> Path | None:
        config_path = self.directory / "config.yaml"
        if not config_path.is_file():
            return None
        stored = config_from_yaml(config_path.read_text(encoding="utf-8"))
        mine, theirs = _flat(self.config), _flat(stored)
        different = sorted(k for k in mine if mine[k] != theirs.get(k) and k not in _RESUMABLE)
        check(
            not different,
            "logdir",
            f"a run directory of the same config to resume {str(self.directory)!r} (or a new --logdir)",
            got=f"a run whose config differs in {different}",
        )
        return latest_checkpoint(self.checkpoint_root)

    # ------------------------------------------------------------------------------- checkpoints
    def _checkpoint(self) -> None:
        def write_extra(directory: Path) -> None:
            (directory / "replay").mkdir()
            self.agent.save_replays(directory / "replay")

        for name in self.file_sizes:
            path = self.directory / name
            self.file_sizes[name] = path.stat().st_size if path.is_file() else 0
        state = {
            "format": "hieros_lib.training/1",
            "config": config_to_yaml(self.config),
            "agent": self.agent.state_dict(),
            "training": self.agent.training_state_dict(),
            "acting": map_state(lambda x: x.detach().cpu(), self.state),
            "env": self.env.get_state() if self.env.can_save_state else None,
            "step": self.step,
            "counters": {
                "env_steps": self.env_steps,
                "due": self.due,
                "updates": self.updates,
                "episodes": self.episodes,
                "nonfinite_streak": self.nonfinite_streak,
                "nonfinite_total": self.nonfinite_total,
                "recent_returns": self.recent_returns,
                "next_log": self.next_log,
                "next_eval": self.next_eval,
                "next_plot": self.next_plot,
                "next_checkpoint": self.next_checkpoint,
                "elapsed": self.elapsed,
            },
            "episode": {"return": self.episode_return.copy(), "length": self.episode_length.copy()},
            "means": {"sums": dict(self.train_means.sums), "counts": dict(self.train_means.counts)},
            "generators": {"act": self.act_generator.get_state(), "train": self.train_generator.get_state()},
            "files": dict(self.file_sizes),
        }
        save_checkpoint(self.checkpoint_root, f"step{self.env_steps:09d}", state, write_extra)

    def _restore(self, directory: Path) -> None:
        state = load_checkpoint(directory)
        try:
            self.agent.load_state_dict(state["agent"])
            self.agent.load_training_state_dict(state["training"])
            self.agent.load_replays(directory / "replay")
            self.state = map_state(lambda x: x.to(self.device), state["acting"])
            for key, value in state["counters"].items():
                setattr(self, key, value)
            if state["env"] is not None:
                self.env.set_state(state["env"])
                self.step = state["step"]
                self.episode_return = state["episode"]["return"]
                self.episode_length = state["episode"]["length"]
            else:  # Atari, Gymnasium, subprocesses: new episodes (the interrupted ones are not scored)
                logger.warning(
                    "%s cannot restore its environments: they start new episodes", self.directory
                )
                self.step = self.env.reset(seed=self.config.run.seed + self.env_steps)
                self.episode_return = np.zeros_like(state["episode"]["return"])
                self.episode_length = np.zeros_like(state["episode"]["length"])
            self.train_means.sums, self.train_means.counts = state["means"]["sums"], state["means"]["counts"]
            self.act_generator.set_state(state["generators"]["act"])
            self.train_generator.set_state(state["generators"]["train"])
            self.file_sizes = state["files"]
        except (KeyError, RuntimeError, TypeError, ValueError) as err:
            raise HierosError(
                f"checkpoint {str(directory)!r}: expected a checkpoint of this config, got "
                f"{type(err).__name__}: {err}"
            ) from err
        for name, size in self.file_sizes.items():  # drop lines written after the checkpoint
            path = self.directory / name
            if path.is_file() and path.stat().st_size > size:
                with open(path, "r+b") as handle:
                    handle.truncate(size)
        logger.info("resumed %s at step %d", self.directory, self.env_steps)

    # ----------------------------------------------------------------------------------- helpers
    def _tensors(self, step: dict[str, np.ndarray]) -> dict[str, torch.Tensor]:
        return {key: torch.as_tensor(value, device=self.device) for key, value in step.items()}

    @contextmanager
    def _signals(self) -> Iterator[None]:
        def stop(signum: int, frame: Any) -> None:
            self._stop_reason = signal.Signals(signum).name

        previous = {}
        try:
            for sig in (signal.SIGINT, signal.SIGTERM):
                previous[sig] = signal.signal(sig, stop)
        except ValueError:  # not the main thread: no handlers
            previous = {}
        try:
            yield
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)

    def request_stop(self, reason: str = "requested") -> None:
        """Stop after the current step, with a checkpoint (what SIGINT / SIGTERM do)."""
        self._stop_reason = reason

    # ------------------------------------------------------------------------------- evaluation
    @torch.no_grad()
    def evaluate(self, episodes: int, *, media: bool) -> list[float]:
        """``episodes`` episodes in the evaluation environment with the mode of every level's policy.

        The evaluation environment restarts from its seed each time, so every evaluation plays the same
        starts. Returns the episode returns (also written to ``scores.jsonl`` as ``"eval"``).
        """
        env = self.eval_env
        agent_state = self._eval_state()
        step = env.reset()
        returns: list[float] = []
        frames: list[np.ndarray] = []
        total, length = 0.0, 0
        while len(returns) < episodes:
            tensors = self._tensors(step)
            action, agent_state, _ = self.agent.policy(tensors, agent_state, mode="eval")
            if media and not returns and len(env.obs_shape) == 3:
                frames.append(self._eval_frame(step["obs"][0], agent_state))
            step = env.step(action.cpu().numpy())
            total += float(step["reward"][0])
            length += 1
            if step["is_last"][0]:
                returns.append(total)
                self.logger.score(self.env_steps, "eval", total, length)
                total, length = 0.0, 0
        if frames:
            write_gif(self.directory / "media" / f"eval_step{self.env_steps:09d}.gif", frames)
        return returns

    def _eval_state(self) -> HierosState:
        """A fresh acting state for the single evaluation environment."""
        full = self.agent.initial_state()
        return map_state(lambda x: x[:1], full) if self.agent.num_envs > 1 else full

    def _eval_frame(self, obs: np.ndarray, state: HierosState) -> np.ndarray:
        pictures = [to_uint8(obs)]
        if len(self.agent.levels) > 1:
            pictures += [to_uint8(image[0]) for image in self.agent.subgoal_images(state)]
        return side_by_side(pictures)

    def _open_loop(self) -> None:
        replay = self.agent.replays[0][0]
        length = self.config.agent.sequence_length
        if replay.num_items < 4 or len(self.env.obs_shape) != 3 or length < 4:
            return
        indices = np.linspace(0, replay.num_items - 1, 4).astype(np.int64)
        batch = {k: v.to(self.device) for k, v in replay.sequences(indices).items()}
        frames = open_loop_frames(
            self.agent.level(0),
            batch,
            context=length // 2,
            generator=torch.Generator(device=self.device).manual_seed(0),
        )
        write_gif(self.directory / "media" / f"open_loop_step{self.env_steps:09d}.gif", frames, fps=4)

    # ---------------------------------------------------------------------------------- the loop
    def _train(self, count: int) -> None:
        for _ in range(count):
            metrics = self.agent.train_step(generator=self.train_generator)
            nonfinite = any(float(v) > 0 for k, v in metrics.items() if k.endswith("/nonfinite"))
            self.updates += 1
            if nonfinite:
                self.nonfinite_streak += 1
                self.nonfinite_total += 1
                if self.nonfinite_streak >= self.config.run.max_nonfinite:
                    self._stop_reason = f"{self.nonfinite_streak} non-finite losses in a row"
                    return
            else:
                self.nonfinite_streak = 0
            self.train_means.add({k: v for k, v in metrics.items() if not k.endswith("/nonfinite")})

    def _record_episodes(self, step: dict[str, np.ndarray]) -> None:
        self.episode_return += np.where(step["is_first"], 0.0, step["reward"])
        self.episode_length += ~step["is_first"]  # a reset step is not part of an episode
        for env in np.nonzero(step["is_last"])[0]:
            self.episodes += 1
            value = float(self.episode_return[env])
            self.recent_returns = ([*self.recent_returns, value])[-20:]
            self.logger.score(self.env_steps, "train", value, int(self.episode_length[env]), env=int(env))
        self.episode_return[step["is_last"]] = 0.0
        self.episode_length[step["is_last"]] = 0

    def run(self) -> dict[str, Any]:
        """Train to ``run.steps`` environment steps (or until a stop), evaluate, write the summary.

        Returns:
            The summary also written to ``summary.json`` (``status`` is ``"finished"``, ``"stopped"`` or
            ``"diverged"``).
        """
        config, run = self.config, self.config.run
        if self._resume_from is not None:
            self._restore(self._resume_from)
            finished = self._finished_summary()
            if finished is not None:
                logger.info("%s already finished at step %d", self.directory, self.env_steps)
                self.env.close()
                self.eval_env.close()
                return finished
        else:
            atomic_write(
                self.directory / "config.yaml",
                lambda h: h.write(config_to_yaml(config).encode()),
                what="config.yaml",
            )
        self.logger = RunLogger(
            self.directory,
            total_steps=run.steps,
            tensorboard=run.tensorboard,
            progress=run.progress,
            initial_step=self.env_steps,
        )
        threads = torch.get_num_threads()
        if run.threads:
            torch.set_num_threads(run.threads)
        try:
            with self._signals():
                return self._loop()
        finally:
            torch.set_num_threads(threads)
            self.logger.close()
            self.env.close()
            self.eval_env.close()

    def _loop(self) -> dict[str, Any]:
        config, run = self.config, self.config.run
        n = self.env.num_envs
        if not self.step:
            self.step = self.env.reset()
        started, steps_at_start, updates_at_start = time.time(), self.env_steps, self.updates
        last_time, last_steps = started, self.env_steps
        while self.env_steps < run.steps and self._stop_reason is None:
            actions, self.state, level_steps = self.agent.policy(
                self._tensors(self.step), self.state, mode="train", generator=self.act_generator
            )
            self.agent.store(level_steps)
            self.step = self.env.step(actions.cpu().numpy())
            self.env_steps += n
            self._record_episodes(self.step)
            if self.env_steps >= run.warmup:
                self.due += n * run.train_ratio
                count = int(self.due)
                self.due -= count
                self._train(count)
            now = time.time()
            recent = self.recent_returns
            self.logger.progress(
                n,
                fps=round((self.env_steps - last_steps) / max(now - last_time, 1e-9)),
                ret=recent[-1] if recent else None,
                mean=round(float(np.mean(recent)), 2) if recent else None,
            )
            if self.env_steps >= self.next_log:
                self.next_log += run.log_every
                values = self.train_means.result()
                elapsed = self.elapsed + now - started
                values.update(
                    {
                        "updates": self.updates,
                        "episodes": self.episodes,
                        "nonfinite_total": self.nonfinite_total,
                        "time": elapsed,
                        "fps": (self.env_steps - steps_at_start) / max(now - started, 1e-9),
                        "updates_per_s": (self.updates - updates_at_start) / max(now - started, 1e-9),
                    }
                )
                if self.recent_returns:
                    values["train/return_mean20"] = float(np.mean(self.recent_returns))
                self.logger.metrics(self.env_steps, values)
            last_time, last_steps = now, self.env_steps
            if self.env_steps >= self.next_eval:
                self.next_eval += run.eval_every
                if self.env_steps < run.steps:  # the last one is the final evaluation
                    self._evaluation(run.eval_episodes)
            if self.env_steps >= self.next_plot:
                self.next_plot += run.plot_every
                draw_plots(self.directory, title=self._title(), reference=self.reference)
            if self.env_steps >= self.next_checkpoint or self._stop_reason is not None:
                if self.env_steps >= self.next_checkpoint:
                    self.next_checkpoint += run.checkpoint_every
                self.elapsed += time.time() - started
                started = time.time()
                steps_at_start, updates_at_start = self.env_steps, self.updates
                self._checkpoint()
        self.elapsed += time.time() - started
        if self._stop_reason is not None:
            status = "diverged" if "non-finite" in self._stop_reason else "stopped"
            logger.warning("run stopped at step %d: %s", self.env_steps, self._stop_reason)
            summary = {"status": status, "reason": self._stop_reason, "env_steps": self.env_steps}
            self._write_summary(summary)
            return summary
        final = self._evaluation(run.final_eval_episodes, final=True)
        draw_plots(self.directory, title=self._title(), reference=self.reference)
        summary = {
            "status": "finished",
            "env_steps": self.env_steps,
            "updates": self.updates,
            "episodes": self.episodes,
            "eval_return_mean": float(np.mean(final)),
            "eval_return_std": float(np.std(final)),
            "eval_episodes": len(final),
            "train_seconds": self.elapsed,
            "reference_returns": self.reference,
        }
        if config.env.spec.startswith("atari:"):
            game = config.env.spec.split(":", 1)[1]
            summary["human_normalized_score"] = float(human_normalized_score(game, float(np.mean(final))))
        self._write_summary(summary)
        self._checkpoint()  # after the summary: a crash in between redoes the end from the last checkpoint
        return summary

    def _finished_summary(self) -> dict[str, Any] | None:
        """The summary of a run that already reached ``run.steps`` (None if it has not)."""
        path = self.directory / "summary.json"
        if self.env_steps < self.config.run.steps or not path.is_file():
            return None
        summary = json.loads(path.read_text(encoding="utf-8"))
        finished = summary.get("status") == "finished" and summary.get("env_steps") == self.env_steps
        return dict(summary) if finished else None

    def _evaluation(self, episodes: int, *, final: bool = False) -> list[float]:
        media = self.config.run.media
        returns = self.evaluate(episodes, media=media)
        if media:
            self._open_loop()
        mean = float(np.mean(returns))
        self.logger.metrics(
            self.env_steps,
            {"eval/return": mean, "eval/return_std": float(np.std(returns)), "eval/episodes": len(returns)},
        )
        logger.info(
            "%s step %d: eval return %.2f over %d episodes%s",
            self._title(),
            self.env_steps,
            mean,
            len(returns),
            " (final)" if final else "",
        )
        return returns

    def _title(self) -> str:
        levels = self.config.agent.levels
        return f"{self.config.env.spec}, {levels} level{'s' if levels > 1 else ''}"

    def _write_summary(self, summary: dict[str, Any]) -> None:
        text = json.dumps(summary, indent=2)
        atomic_write(self.directory / "summary.json", lambda h: h.write(text.encode()), what="summary.json")


def train(config: TrainConfig) -> dict[str, Any]:
    """Run (or resume) the training run that ``config`` describes; returns its summary.

    The run directory (``config.logdir``) receives ``config.yaml``, ``metrics.jsonl``, ``scores.jsonl``,
    TensorBoard events, ``plots/``, ``media/``, ``checkpoints/`` and, at the end, ``summary.json``. Running
    again with the same directory resumes from the last checkpoint.

    Args:
        config: A :class:`~hieros_lib.training.TrainConfig` (see :func:`make_config` for presets).

    Returns:
        The summary (see :meth:`Trainer.run`).

    Raises:
        HierosError: See :class:`Trainer`.

    Examples:
        >>> import tempfile
        >>> from hieros_lib.training import make_config, train
        >>> with tempfile.TemporaryDirectory() as logdir:
        ...     config = make_config("debug", [f"logdir={logdir}", "run.progress=false", "run.media=false"])
        ...     summary = train(config)
        >>> summary["status"], summary["env_steps"]
        ('finished', 240)
    """
    return Trainer(config).run()
