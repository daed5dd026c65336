"""The training loop: act, store, train, log, evaluate, draw, checkpoint, resume."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import Any

import numpy as np
import torch

from hieros_lib.agents import Hieros, HierosReplay, HierosState
from hieros_lib.envs import make_env
from hieros_lib.errors import HierosError, NonFiniteError, check
from hieros_lib.metrics import human_normalized_score
from hieros_lib.training._checkpoint import CheckpointStore
from hieros_lib.training._config import TrainConfig, config_to_yaml, resolve_device
from hieros_lib.training._counters import RunCounters
from hieros_lib.training._evaluation import Evaluator, random_actions
from hieros_lib.training._logger import MetricMeans, RunLogger
from hieros_lib.training._plots import draw_plots
from hieros_lib.training._rundir import RunDirectory, config_differences
from hieros_lib.training._signals import StopSignal
from hieros_lib.training._subgoals import SubgoalTracker
from hieros_lib.world_models import map_state

__all__ = ["TIMING_KEYS", "Trainer", "reference_returns", "train"]

logger = logging.getLogger(__name__)

TIMING_KEYS = ("fps", "time", "updates_per_s")
"""Keys of ``metrics.jsonl`` that measure time, not learning (they differ between two identical runs)."""


def reference_returns(spec: str, options: dict[str, Any]) -> dict[str, float]:
    """Random and optimal returns of the embedded environments as documented (empty if unknown)."""
    if spec == "hieros:catch" and options.get("columns", 4) == 4:
        balls = int(options.get("length", 100)) // 8
        return {"random": -0.5 * balls, "optimal": float(balls)}
    if spec == "hieros:pinpad-three":
        scale = int(options.get("length", 2000)) / 1000.0
        return {"random": 1.3 * scale, "scripted optimal": 225.0 * scale}
    if spec == "hieros:rooms" and options.get("reward", True) and not set(options) - {"reward", "image_size"}:
        return {"random": 0.016, "optimal": 1.0}  # the defaults: 200-step episodes (docs of Rooms)
    if spec == "gym:Pendulum-v1":
        return {"random": -1210.0}  # 400 episodes of uniform actions: -1210 +- 13 (any action repeat)
    return {}


def _seeds(seed: int) -> list[int]:
    """The run's derived seeds: environments, evaluation environment, parameters, replays, evaluation."""
    return [int(s) for s in np.random.SeedSequence(seed).generate_state(5)]


def _all_finite(module: torch.nn.Module) -> bool:
    """Whether every parameter and floating buffer of ``module`` is finite (one host synchronisation)."""
    tensors = [t for t in (*module.parameters(), *module.buffers()) if t.is_floating_point()]
    return bool(torch.stack([torch.isfinite(t).all() for t in tensors]).all())


class Trainer:
    """One training run in a run directory; :meth:`run` trains until ``run.steps`` or a stop.

    Building a trainer checks everything that could fail before anything is written: the device exists,
    every directory of the run is writable and the disk has room, the environment exists, and an
    existing run in the directory has the same config (except the keys that change no result:
    ``run.steps``, ``run.progress``, ``run.tensorboard``, ``run.keep_last``, ``logdir``) and an intact
    checkpoint, which :meth:`run` resumes from.

    **What a crash can lose.** Nothing that a checkpoint covers: checkpoints are written under a new name
    and verified by checksums, the previous ones are removed only after the new one is complete, and a
    resume cuts the logs back to what its checkpoint covers. So a run killed at any instant (``kill
    -9`` included) and started again with the same command writes what the uninterrupted run would have
    written (exactly, for the embedded environments on the CPU). See the training guide.

    Args:
        config: A :class:`~hieros_lib.training.TrainConfig`.
        stop: The :class:`StopSignal` to obey (the command line's, installed before start-up); by default
            :meth:`run` installs SIGINT / SIGTERM handlers of its own.
        checkpoint_hook: Called with each phase of every checkpoint write (fault injection in tests).

    Raises:
        HierosError: On an unknown device, an unwritable or full run directory, an unknown environment, a
            run directory that holds another config, or no intact checkpoint; nothing is changed then.
    """

    def __init__(
        self,
        config: TrainConfig,
        *,
        stop: StopSignal | None = None,
        checkpoint_hook: Callable[[str], None] | None = None,
    ) -> None:
        check(isinstance(config, TrainConfig), "config", "a TrainConfig", got=type(config).__name__)
        self.config = config
        run, env_config = config.run, config.env
        self.stop = StopSignal() if stop is None else stop
        self._own_signals = stop is None
        self.device = resolve_device(run.device)
        self.directory = Path(config.logdir)
        self.run_dir = RunDirectory(self.directory)
        size = env_config.image_size**2 * 3 if env_config.spec.startswith(("atari:", "hieros:")) else 4096
        # the replays of the newest checkpoints and of one being written
        self.run_dir.preflight(need_bytes=64 * 2**20 + (run.keep_last + 1) * run.steps * size)
        self.checkpoints = CheckpointStore(
            self.run_dir.checkpoints, keep_last=run.keep_last, hook=checkpoint_hook
        )
        self._resume_from, self._damaged = self.checkpoints.find()
        self._resume_state = self.checkpoints.load(self._resume_from) if self._resume_from else None
        self._check_same_run()
        seeds = _seeds(run.seed)
        options = dict(env_config.options)
        try:
            self.env = make_env(
                env_config.spec,
                seed=seeds[0],
                num_envs=env_config.num_envs,
                asynchronous=env_config.asynchronous,
                image_size=env_config.image_size,
                **options,
            )
        except HierosError as err:
            if options and str(err).startswith("options:"):  # e.g. a preset's options for another env
                raise HierosError(
                    f"env.{err} (the config sets env.options={options}; clear them with 'env.options={{}}')"
                ) from err
            raise
        try:
            self.eval_env = make_env(
                env_config.spec,
                seed=seeds[1],
                num_envs=1,
                image_size=env_config.image_size,
                **options,
                **env_config.eval_options,
            )
        except HierosError:
            self.env.close()
            raise
        with torch.random.fork_rng(devices=[]):  # parameters from the run's seed; the global RNGs untouched
            torch.random.default_generator.manual_seed(seeds[2])
            self.agent = Hieros(
                config.agent,
                obs_shape=self.env.obs_shape,
                num_actions=self.env.num_actions,
                num_envs=self.env.num_envs,
                continuous=self.env.continuous,
                device=self.device,
            )
        self.replay = HierosReplay(
            config.agent,
            num_envs=self.env.num_envs,
            num_actions=None if self.env.continuous else self.env.num_actions,  # continuous: vectors stored
            seed=seeds[3] % 2**31,
        )
        eval_mode = "random" if run.policy == "random" else run.eval_mode
        self.evaluator = Evaluator(self.agent, self.eval_env, mode=eval_mode, seed=seeds[4])
        self.act_generator = torch.Generator(device=self.device).manual_seed(seeds[2] + 1)
        self.train_generator = torch.Generator(device=self.device).manual_seed(seeds[2] + 2)
        self._random_generator = torch.Generator().manual_seed(seeds[2] + 3)  # run.policy=random
        self.reference = reference_returns(env_config.spec, options)
        self.counters = RunCounters.start(
            log_every=run.log_every,
            eval_every=run.eval_every,
            plot_every=run.plot_every,
            checkpoint_every=run.checkpoint_every,
        )
        self.means = MetricMeans()
        self.subgoals = SubgoalTracker(self.agent) if config.agent.levels > 1 else None
        self._cells: set[int] = set()  # cells visited in training (environments with a "cell" field)
        self._episode_cells: list[set[int]] = [set() for _ in range(self.env.num_envs)]
        self.state: HierosState = self.agent.initial_state()
        self.step: dict[str, np.ndarray] = {}
        self.episode_return = np.zeros(self.env.num_envs)
        self.episode_length = np.zeros(self.env.num_envs, dtype=np.int64)
        self.logger: RunLogger | None = None
        self._summary: dict[str, Any] | None = None

    # ------------------------------------------------------------------------------- resuming
    def _check_same_run(self) -> None:
        """Refuse a run directory that holds a run of another config (config.yaml or the checkpoint's)."""
        stored = self.run_dir.read_config()
        if stored is None and self._resume_state is not None:
            from hieros_lib.training._config import config_from_yaml

            stored = config_from_yaml(self._resume_state["config"], source=f"{self._resume_from}/state.pt")
        if stored is None:
            return
        different = config_differences(self.config, stored)
        check(
            not different,
            "logdir",
            f"a run directory of the same config to resume {str(self.directory)!r} (or a new --logdir)",
            got=f"a run whose config differs in {different}",
        )

    def _restore(self, state: dict[str, Any]) -> None:
        assert self._resume_from is not None
        directory = self._resume_from
        try:
            self.agent.load_state_dict(state["agent"])
            self.agent.load_training_state_dict(state["training"])
            self.replay.load(directory / "replay")
            self.replay.load_state_dict(state["replay"])
            self.state = map_state(lambda x: x.to(self.device), state["acting"])
            self.counters = RunCounters.from_state_dict(state["counters"])
            self.means.load_state_dict(state["means"], self.device)
            if self.subgoals is not None:
                self.subgoals.load_state_dict(state["subgoals"], self.device)
            self._cells = set(self.counters.cells)
            self.act_generator.set_state(state["generators"]["act"])
            self.train_generator.set_state(state["generators"]["train"])
            self._random_generator.set_state(state["generators"]["random"])
            if state["env"] is not None:
                self.env.set_state(state["env"])
                self.step = state["step"]
                self.episode_return = state["episode"]["return"]
                self.episode_length = state["episode"]["length"]
                self._episode_cells = [set(cells) for cells in state["episode_cells"]]
            else:  # Atari, Gymnasium, subprocesses: new episodes (the interrupted ones are not scored)
                logger.warning("%s cannot restore its environments: they start new episodes", self.directory)
                self.step = self.env.reset(seed=self.config.run.seed + self.counters.env_steps)
        except (KeyError, RuntimeError, TypeError, ValueError) as err:
            raise HierosError(
                f"checkpoint {str(directory)!r}: expected a checkpoint of this config, got "
                f"{type(err).__name__}: {err}"
            ) from err
        threads = state.get("threads")
        if threads is not None and threads != torch.get_num_threads():
            logger.warning(
                "the run used %d CPU threads and resumes with %d: its results will differ from an "
                "uninterrupted run's in the last bits (set run.threads to fix the count)",
                threads,
                torch.get_num_threads(),
            )
        if state.get("device") is not None and state["device"] != str(self.device):
            logger.warning("the run was on %s and resumes on %s", state["device"], self.device)
        for damaged in self._damaged:
            self.checkpoints.set_aside(damaged)
        finished = bool(state.get("finished")) and self.counters.env_steps >= self.config.run.steps
        self.run_dir.cut_to(state["files"], self.counters.env_steps, finished=finished)
        if finished:
            self._summary = dict(state["summary"])
        logger.info("resumed %s at step %d", self.directory, self.counters.env_steps)

    # ------------------------------------------------------------------------------- checkpoints
    def _checkpoint(self, *, finished: bool = False) -> None:
        """Write a checkpoint of everything (the agent must be finite: a diverged one is never saved)."""
        state = {
            "config": config_to_yaml(self.config),
            "agent": self.agent.state_dict(),
            "training": self.agent.training_state_dict(),
            "replay": self.replay.state_dict(),
            "acting": map_state(lambda x: x.detach().cpu(), self.state),
            "env": self.env.get_state() if self.env.can_save_state else None,
            "step": self.step,
            "counters": {**self.counters.state_dict(), "cells": sorted(self._cells)},
            "episode": {"return": self.episode_return.copy(), "length": self.episode_length.copy()},
            "means": self.means.state_dict(),
            "subgoals": None if self.subgoals is None else self.subgoals.state_dict(),
            "episode_cells": [sorted(cells) for cells in self._episode_cells],
            "generators": {"act": self.act_generator.get_state(), "train": self.train_generator.get_state(),
                           "random": self._random_generator.get_state()},
            "files": self.run_dir.log_sizes(),
            "threads": torch.get_num_threads(),
            "device": str(self.device),
            "finished": finished,
            "summary": self._summary if finished else None,
        }
        self.checkpoints.save(
            self.counters.env_steps, state, lambda directory: self.replay.save(_mkdir(directory / "replay"))
        )

    # ------------------------------------------------------------------------------- evaluation
    def evaluate(self, episodes: int, *, media: bool) -> list[float]:
        """Play ``episodes`` evaluation episodes (``run.eval_mode``) and log them (``scores.jsonl``,
        ``"eval"``); with ``media``, the first one as a GIF with the decoded subgoals.

        Returns:
            The episode returns.
        """
        step = self.counters.env_steps
        log = self._require_logger()

        def on_episode(value: float, length: int) -> None:
            log.score(step, "eval", value, length, env=0)

        gif = self.directory / "media" / f"eval_step{step:09d}.gif" if media else None
        return self.evaluator.run(episodes, step=step, on_episode=on_episode, gif=gif)

    def request_stop(self, reason: str = "requested") -> None:
        """Stop after the current step, with a checkpoint (what SIGINT / SIGTERM do)."""
        self.stop.request(reason)

    def _require_logger(self) -> RunLogger:
        check(self.logger is not None, "evaluate", "a running trainer (call run())")
        assert self.logger is not None
        return self.logger

    # ---------------------------------------------------------------------------------- the loop
    def _tensors(self, step: dict[str, np.ndarray]) -> dict[str, torch.Tensor]:
        return {key: torch.as_tensor(value, device=self.device) for key, value in step.items()}

    def _train(self, count: int) -> str | None:
        """``count`` training calls; returns a reason to stop (divergence) or None."""
        c, levels = self.counters, len(self.agent.levels)
        for _ in range(count):
            due = self.config.agent.levels_due(c.updates)
            batches = [
                self.replay.sample(i, device=self.device) if i in due and self.replay.ready(i) else None
                for i in range(levels)
            ]
            # the replays refused non-finite values as they were stored: no value checks (host syncs) here
            metrics = self.agent.train_step(batches, generator=self.train_generator, validate=False)
            c.updates += 1
            if any(float(v) > 0 for k, v in metrics.items() if k.endswith("/nonfinite")):
                c.nonfinite_streak += 1
                c.nonfinite_total += 1
                if c.nonfinite_streak >= self.config.run.max_nonfinite:
                    return f"{c.nonfinite_streak} non-finite updates in a row"
            else:
                c.nonfinite_streak = 0
            self.means.add({k: v for k, v in metrics.items() if not k.endswith("/nonfinite")})
        return None

    def _record_episodes(self, step: dict[str, np.ndarray]) -> None:
        log, c = self._require_logger(), self.counters
        rewards = np.where(step["is_first"], 0.0, step["reward"])
        self.episode_return += rewards
        self.episode_length += ~step["is_first"]  # a reset step is not part of an episode
        if c.first_reward_step is None and (rewards > 0).any():
            c.first_reward_step = c.env_steps
        cells = step.get("cell")
        if cells is not None:  # exploration: the cells visited, over the run and per episode
            for env, (row, col) in enumerate(np.asarray(cells).reshape(self.env.num_envs, 2)):
                index = int(row) * 1000 + int(col)
                self._cells.add(index)
                self._episode_cells[env].add(index)
        for ended in np.nonzero(step["is_last"])[0]:
            value = float(self.episode_return[ended])
            c.add_return(value)
            extra = {"cells": len(self._episode_cells[ended])} if cells is not None else {}
            log.score(c.env_steps, "train", value, int(self.episode_length[ended]), env=int(ended), **extra)
            self._episode_cells[ended] = set()
        self.episode_return[step["is_last"]] = 0.0
        self.episode_length[step["is_last"]] = 0

    def run(self) -> dict[str, Any]:
        """Train to ``run.steps`` environment steps (or until a stop), evaluate, write the summary.

        Returns:
            The summary, also written to ``summary.json``: ``status`` is ``"finished"``, ``"stopped"``
            (a signal or :meth:`request_stop`; a checkpoint holds the progress) or ``"diverged"`` (too
            many non-finite updates, or a non-finite acting step; the last intact checkpoint is kept and
            no checkpoint of the diverged agent is written).

        Raises:
            HierosError: If a file cannot be written (a full or read-only disk): the last checkpoint is
                intact, and running the same command again resumes from it.
        """
        run = self.config.run
        handling = self.stop.handling() if self._own_signals else nullcontext()
        threads = torch.get_num_threads()
        try:
            with handling:
                if run.threads:
                    torch.set_num_threads(run.threads)
                if self.stop.requested:  # before anything was written: leave the directory as it is
                    return {"status": "stopped", "reason": self.stop.reason, "env_steps": 0, "started": False}
                if self._resume_state is not None:
                    self._restore(self._resume_state)
                    self._resume_state = None
                else:
                    self.run_dir.start_clean()
                    self.run_dir.write_config(self.config)
                if self._summary is not None:  # the newest checkpoint is the finished run's
                    logger.info("%s already finished at step %d", self.directory, self.counters.env_steps)
                    if not self.run_dir.summary_path.is_file():
                        self.run_dir.write_summary(self._summary)
                    return self._summary
                self.logger = RunLogger(
                    self.directory,
                    total_steps=run.steps,
                    tensorboard=run.tensorboard,
                    progress=run.progress,
                    initial_step=self.counters.env_steps,
                )
                with self._log_through_bar():
                    return self._loop()
        finally:
            torch.set_num_threads(threads)
            if self.logger is not None:
                self.logger.close()
            self.env.close()
            self.eval_env.close()

    @contextmanager
    def _log_through_bar(self) -> Iterator[None]:
        """Route log lines through the progress bar (tqdm.write), so they do not glue onto it."""
        if self.logger is None or self.logger.bar is None:
            yield
            return
        from tqdm.contrib.logging import logging_redirect_tqdm

        with logging_redirect_tqdm():
            yield

    def _loop(self) -> dict[str, Any]:
        config, run, c = self.config, self.config.run, self.counters
        log = self._require_logger()
        n = self.env.num_envs
        if not self.step:
            self.step = self.env.reset()
        started, steps_at_start, updates_at_start = time.time(), c.env_steps, c.updates
        resumed_at = c.env_steps  # 0 for a fresh start
        last_time, last_steps = started, c.env_steps
        diverged: str | None = None
        while c.env_steps < run.steps and not self.stop.requested:
            if run.policy == "random":  # the baseline: no agent, no learning
                actions_np = random_actions(self.env, self._random_generator)
            else:
                try:
                    before = self.state
                    actions, self.state, level_steps = self.agent.policy(
                        self._tensors(self.step), self.state, mode="train", generator=self.act_generator,
                        validate=False,  # the environments checked the step
                    )
                    self.replay.add(level_steps)  # refuses NaN: what a diverged agent acts with
                    if self.subgoals is not None:
                        self.subgoals.update(before, self.state, level_steps)
                except NonFiniteError as err:
                    diverged = f"non-finite acting step ({err})"
                    break
                actions_np = actions.cpu().numpy()
            self.step = self.env.step(actions_np)
            c.env_steps += n
            self._record_episodes(self.step)
            if c.env_steps >= run.warmup and run.policy == "agent":
                c.due += n * run.train_ratio
                count = int(c.due)
                c.due -= count
                diverged = self._train(count)
                if diverged:
                    break
            now = time.time()
            recent = c.recent_returns
            log.progress(
                n,
                fps=round((c.env_steps - last_steps) / max(now - last_time, 1e-9)),
                ret=recent[-1] if recent else None,
                mean=round(float(np.mean(recent)), 2) if recent else None,
            )
            if c.env_steps >= c.next_log:
                c.next_log += run.log_every
                values: dict[str, Any] = self.means.result()
                if self.subgoals is not None:
                    values.update(self.subgoals.result())
                if self._cells:
                    values["explore/cells_visited"] = len(self._cells)
                elapsed = c.elapsed + now - started
                values.update(
                    {
                        "updates": c.updates,
                        "episodes": c.episodes,
                        "nonfinite_total": c.nonfinite_total,
                        "time": elapsed,
                        "fps": (c.env_steps - steps_at_start) / max(now - started, 1e-9),
                        "updates_per_s": (c.updates - updates_at_start) / max(now - started, 1e-9),
                    }
                )
                if recent:
                    values["train/return_mean20"] = float(np.mean(recent))
                log.metrics(c.env_steps, values)
            last_time, last_steps = now, c.env_steps
            if c.env_steps >= c.next_eval:
                c.next_eval += run.eval_every
                if c.env_steps < run.steps:  # the last one is the final evaluation
                    self._evaluation(run.eval_episodes)
            if c.env_steps >= c.next_plot:
                c.next_plot += run.plot_every
                draw_plots(self.directory, title=self._title(), reference=self.reference)
            if c.env_steps >= c.next_checkpoint or self.stop.requested:
                if c.env_steps >= c.next_checkpoint:
                    c.next_checkpoint += run.checkpoint_every
                if not _all_finite(self.agent):
                    diverged = "non-finite parameters"
                    break
                c.elapsed += time.time() - started
                started = time.time()
                steps_at_start, updates_at_start = c.env_steps, c.updates
                self._checkpoint()
        c.elapsed += time.time() - started
        if diverged is not None:
            logger.warning("run diverged at step %d: %s (the last checkpoint is kept)", c.env_steps, diverged)
            stopped = {"status": "diverged", "reason": diverged, "env_steps": c.env_steps}
            self.run_dir.write_summary(stopped)
            return stopped
        if self.stop.requested:
            logger.warning("run stopped at step %d: %s", c.env_steps, self.stop.reason)
            stopped = {"status": "stopped", "reason": self.stop.reason, "env_steps": c.env_steps}
            self.run_dir.write_summary(stopped)
            return stopped
        final = self._evaluation(run.final_eval_episodes, final=True)
        draw_plots(self.directory, title=self._title(), reference=self.reference)
        summary: dict[str, Any] = {
            "status": "finished",
            "env_steps": c.env_steps,
            "updates": c.updates,
            "episodes": c.episodes,
            "eval_return_mean": float(np.mean(final)),
            "eval_return_std": float(np.std(final)),
            "eval_episodes": len(final),
            "eval_mode": self.evaluator.mode,
            "train_seconds": c.elapsed,
            "resumed_at": resumed_at,
            "first_reward_step": c.first_reward_step,
            "reference_returns": self.reference,
        }
        if self._cells:
            summary["cells_visited"] = len(self._cells)
        if config.env.spec.startswith("atari:"):
            game = config.env.spec.split(":", 1)[1]
            summary["human_normalized_score"] = float(human_normalized_score(game, float(np.mean(final))))
        self._summary = summary
        self.run_dir.write_summary(summary)
        # after the summary: a crash in between resumes from the periodic checkpoint and redoes the end
        self._checkpoint(finished=True)
        return summary

    def _evaluation(self, episodes: int, *, final: bool = False) -> list[float]:
        media = self.config.run.media
        returns = self.evaluate(episodes, media=media)
        if media:
            step = self.counters.env_steps
            path = self.directory / "media" / f"open_loop_step{step:09d}.gif"
            self.evaluator.open_loop(self.replay.replays[0][0], path)
        mean = float(np.mean(returns))
        self._require_logger().metrics(
            self.counters.env_steps,
            {"eval/return": mean, "eval/return_std": float(np.std(returns)), "eval/episodes": len(returns)},
        )
        logger.info(
            "%s step %d: eval return %.2f over %d episode%s (%s)%s",
            self._title(),
            self.counters.env_steps,
            mean,
            len(returns),
            "" if len(returns) == 1 else "s",
            self.evaluator.mode,
            " (final)" if final else "",
        )
        return returns

    def _title(self) -> str:
        levels = self.config.agent.levels
        return f"{self.config.env.spec}, {levels} level{'s' if levels > 1 else ''}"


def _mkdir(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    return path


def train(config: TrainConfig) -> dict[str, Any]:
    """Run (or resume) the training run that ``config`` describes; returns its summary.

    The run directory (``config.logdir``) receives ``config.yaml``, ``metrics.jsonl``, ``scores.jsonl``,
    TensorBoard events, ``plots/``, ``media/``, ``checkpoints/`` and, at the end, ``summary.json``. Running
    again with the same directory resumes from the newest intact checkpoint.

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

