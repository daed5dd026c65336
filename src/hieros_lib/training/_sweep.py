"""Sweeps: many runs of the trainer over environments, seeds and variants, as Ray tasks.

A sweep directory holds ``sweep.json`` (what was asked for), one run directory per (variant, environment,
seed) as ``<variant>/<env>/seed<k>/`` (each an ordinary run directory of :func:`~hieros_lib.training.train`)
and ``report/`` (written by :func:`~hieros_lib.training.sweep_report`). Ray is imported only here, when a
sweep runs (``pip install "hieros-lib[sweep]"``).
"""

from __future__ import annotations

import json
import logging
import os
import re
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from hieros_lib._games import ATARI100K_GAMES
from hieros_lib._io import atomic_write
from hieros_lib.errors import HierosError, check, check_float, check_int

__all__ = ["RunSpec", "SweepSpec", "plan", "sweep"]

logger = logging.getLogger(__name__)

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.+-]*$")


@dataclass(frozen=True, kw_only=True)
class SweepSpec:
    """What a sweep runs: every (variant, environment, seed) of a preset.

    Attributes:
        preset: The preset of every run (:data:`~hieros_lib.training.PRESETS`).
        envs: Environment specs (``hieros:catch``, ``atari:Pong``, ...); ``atari100k`` stands for the 26
            games of the Atari 100k benchmark.
        seeds: Run seeds.
        variants: Variant name -> its overrides (``{"flat": ["agent.levels=1"], "hieros": []}``); one
            variant named ``default`` without overrides if empty.
        overrides: Overrides of every run (before the variant's).
    """

    preset: str
    envs: tuple[str, ...]
    seeds: tuple[int, ...]
    variants: dict[str, tuple[str, ...]] = field(default_factory=dict)
    overrides: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        check(isinstance(self.preset, str) and self.preset != "", "preset", "a preset name", got=self.preset)
        check(len(self.envs) >= 1 and all(isinstance(e, str) and e for e in self.envs), "envs",
              "at least one environment spec", got=self.envs)
        check(len(self.seeds) >= 1, "seeds", "at least one seed", got=self.seeds)
        for seed in self.seeds:
            check_int(seed, "seeds", minimum=0)
        check(len(set(self.seeds)) == len(self.seeds), "seeds", "distinct seeds", got=self.seeds)
        for name in self.variants:
            check(bool(_NAME.match(name)), "variant", "a name of letters, digits, '_', '.', '+', '-'",
                  got=repr(name))

    def expanded_envs(self) -> tuple[str, ...]:
        """The environment specs with ``atari100k`` expanded to its 26 games."""
        out: list[str] = []
        for env in self.envs:
            games = [f"atari:{game}" for game in ATARI100K_GAMES] if env == "atari100k" else [env]
            out += [g for g in games if g not in out]
        return tuple(out)

    def variant_overrides(self) -> dict[str, tuple[str, ...]]:
        """Variant name -> overrides (``default`` with none if no variant was given)."""
        return dict(self.variants) if self.variants else {"default": ()}

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict (written to ``sweep.json``)."""
        data = asdict(self)
        data["variants"] = {k: list(v) for k, v in self.variants.items()}
        return data


@dataclass(frozen=True)
class RunSpec:
    """One run of a sweep: its labels, its run directory and the overrides it is made with."""

    variant: str
    env: str
    seed: int
    logdir: Path
    overrides: tuple[str, ...]


def env_slug(spec: str) -> str:
    """A directory name for an environment spec: ``atari:Pong`` -> ``atari-Pong``."""
    return re.sub(r"[^A-Za-z0-9_.+-]", "-", spec).strip("-")


def plan(spec: SweepSpec, directory: str | os.PathLike[str], *, threads: int = 1) -> list[RunSpec]:
    """The runs of a sweep, in order (variant, environment, seed).

    Every run gets ``env.spec``, ``run.seed``, ``run.progress=false`` and, unless the overrides set it,
    ``run.threads=threads``.
    """
    directory = Path(directory)
    runs = []
    for variant, variant_overrides in spec.variant_overrides().items():
        for env in spec.expanded_envs():
            for seed in spec.seeds:
                overrides = [*spec.overrides, *variant_overrides, f"env.spec={env}", f"run.seed={seed}",
                             "run.progress=false"]
                if not any(item.startswith("run.threads=") for item in overrides):
                    overrides.append(f"run.threads={threads}")
                logdir = directory / variant / env_slug(env) / f"seed{seed}"
                runs.append(RunSpec(variant, env, seed, logdir, tuple(overrides)))
    return runs


def finished(logdir: Path) -> dict[str, Any] | None:
    """The summary of a run directory whose run finished (None otherwise)."""
    path = logdir / "summary.json"
    if not path.is_file():
        return None
    try:
        summary = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return summary if isinstance(summary, dict) and summary.get("status") == "finished" else None


def execute_run(preset: str, logdir: str, overrides: list[str]) -> dict[str, Any]:
    """Run (or resume) one run of a sweep in this process: the body of every Ray task.

    The process id is written to ``<logdir>/worker.pid`` while it runs (to find, or kill, the worker).
    A run that diverges returns its summary; a bad config or an unusable directory raises
    :class:`~hieros_lib.errors.HierosError` (neither is retried).
    """
    from hieros_lib.training._config import make_config
    from hieros_lib.training._loop import Trainer
    from hieros_lib.training._signals import StopSignal

    config = make_config(preset, [*overrides, f"logdir={logdir}"])
    pid = Path(logdir) / "worker.pid"
    pid.parent.mkdir(parents=True, exist_ok=True)
    pid.write_text(str(os.getpid()))
    try:
        started = time.time()
        summary = Trainer(config, stop=StopSignal()).run()  # no signal handlers of its own in a worker
        return {**summary, "wall_seconds": time.time() - started}
    finally:
        pid.unlink(missing_ok=True)


def _ray() -> Any:
    try:
        import ray
    except ImportError as err:
        raise HierosError("sweeps run on Ray: pip install 'hieros-lib[sweep]'") from err
    return ray


def sweep(
    spec: SweepSpec,
    directory: str | os.PathLike[str],
    *,
    address: str | None = None,
    num_cpus: int | None = None,
    cpus_per_run: float = 1.0,
    gpus_per_run: float = 0.0,
    max_retries: int = 3,
    progress: bool = True,
) -> list[dict[str, Any]]:
    """Run every unfinished run of ``spec`` as a Ray task; returns one result per run.

    Finished runs are skipped (their ``summary.json`` is read; nothing is trained again, and Ray is not
    started when nothing is left). An unfinished run resumes from its own checkpoint. A task whose worker
    dies (a killed process, a lost node) is retried by Ray up to ``max_retries`` times and resumes from
    the run's checkpoint; a run that fails for a reason of its own (a bad config, an unusable directory)
    or diverges is reported and not retried, and the others go on.

    Args:
        spec: The :class:`SweepSpec`.
        directory: The sweep directory (created; ``sweep.json`` is written there).
        address: A running Ray cluster to join (``"auto"``, ``"ray://host:10001"``, ...); None starts a
            local Ray instance for this sweep.
        num_cpus: CPUs of the local instance (all of this machine's if None; ignored with ``address``).
        cpus_per_run: CPUs Ray reserves for each run (fractional allowed); also each run's
            ``run.threads`` (at least 1) unless the overrides set it.
        gpus_per_run: GPUs Ray reserves for each run (0.25: four runs share a GPU).
        max_retries: Retries of a run whose worker died.
        progress: Show a progress bar (tqdm) of the runs done, running and failed.

    Returns:
        Per run: ``variant``, ``env``, ``seed``, ``logdir``, ``status`` (``"finished"``, ``"skipped"``
        (finished before), ``"diverged"``, ``"stopped"`` or ``"failed"``), ``reason`` and the summary.

    Raises:
        HierosError: On bad arguments, an unknown preset, or when Ray is missing.
    """
    from hieros_lib.training._config import make_config

    directory = Path(directory)
    check(isinstance(spec, SweepSpec), "spec", "a SweepSpec", got=type(spec).__name__)
    cpus_per_run = check_float(cpus_per_run, "cpus_per_run", minimum=0.0, exclusive_minimum=True)
    gpus_per_run = check_float(gpus_per_run, "gpus_per_run", minimum=0.0)
    max_retries = check_int(max_retries, "max_retries", minimum=0)
    if num_cpus is not None:
        num_cpus = check_int(num_cpus, "num_cpus", minimum=1)
    runs = plan(spec, directory, threads=max(1, int(cpus_per_run)))
    for run in runs:  # every config is valid before anything starts
        make_config(spec.preset, [*run.overrides, f"logdir={run.logdir}"])
    directory.mkdir(parents=True, exist_ok=True)
    text = json.dumps(spec.to_json(), indent=1).encode()
    atomic_write(directory / "sweep.json", lambda handle: handle.write(text), what="sweep.json")
    results: list[dict[str, Any]] = []
    todo = []
    for run in runs:
        summary = finished(run.logdir)
        if summary is not None:
            results.append(_result(run, "skipped", summary=summary))
        else:
            todo.append(run)
    logger.info(
        "sweep %s: %d runs, %d finished before, %d to run", directory, len(runs), len(results), len(todo)
    )
    if not todo:
        return results
    ray = _ray()
    started_here = not ray.is_initialized()
    if started_here:
        options: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False,
                                   "logging_level": logging.WARNING}
        if address is None:
            options["num_cpus"] = num_cpus
        ray.init(address=address, **options)
    try:
        results += _submit_and_wait(ray, spec, todo, cpus_per_run, gpus_per_run, max_retries, progress)
    finally:
        if started_here:
            ray.shutdown()
    order = {run.logdir: i for i, run in enumerate(runs)}
    return sorted(results, key=lambda r: order[Path(r["logdir"])])


def _result(
    run: RunSpec, status: str, *, summary: dict[str, Any] | None = None, reason: str = ""
) -> dict[str, Any]:
    return {"variant": run.variant, "env": run.env, "seed": run.seed, "logdir": str(run.logdir),
            "status": status, "reason": reason, "summary": summary or {}}


def _submit_and_wait(
    ray: Any,
    spec: SweepSpec,
    todo: list[RunSpec],
    cpus_per_run: float,
    gpus_per_run: float,
    max_retries: int,
    progress: bool,
) -> list[dict[str, Any]]:
    task = ray.remote(execute_run).options(
        num_cpus=cpus_per_run, num_gpus=gpus_per_run, max_retries=max_retries, retry_exceptions=False
    )
    pending = {task.remote(spec.preset, str(run.logdir), list(run.overrides)): run for run in todo}
    bar: Any = None
    if progress:
        try:
            from tqdm.auto import tqdm
        except ImportError:
            logger.warning("no progress bar: pip install tqdm (part of hieros-lib[train])")
        else:
            bar = tqdm(total=len(todo), unit="run", dynamic_ncols=True)
    results, failed = [], 0
    try:
        while pending:
            done, _ = ray.wait(list(pending), num_returns=1, timeout=None)
            for ref in done:
                run = pending.pop(ref)
                try:
                    summary = ray.get(ref)
                except ray.exceptions.RayError as err:  # the run's own error, or retries used up
                    reason = str(getattr(err, "cause", None) or err).strip().splitlines()[-1][:500]
                    result = _result(run, "failed", reason=reason)
                else:
                    status = str(summary.get("status", "failed"))
                    result = _result(run, status, summary=summary, reason=str(summary.get("reason", "")))
                failed += result["status"] != "finished"
                results.append(result)
                line = _line(result)
                if bar is not None:
                    bar.write(line)
                    bar.update(1)
                    running = min(len(pending), _slots(ray, cpus_per_run))
                    bar.set_postfix(done=len(results), running=running, failed=failed, refresh=False)
                else:
                    logger.info(line)
    finally:
        if bar is not None:
            bar.close()
    return results


def _slots(ray: Any, cpus_per_run: float) -> int:
    cpus = float(ray.cluster_resources().get("CPU", 1.0))
    return max(1, int(cpus // cpus_per_run))


def _line(result: dict[str, Any]) -> str:
    summary = result["summary"]
    what = f"{result['variant']} {result['env']} seed {result['seed']}"
    if result["status"] == "finished":
        seconds = summary.get("wall_seconds", summary.get("train_seconds", 0.0))
        return f"{what}: finished, eval return {summary['eval_return_mean']:.2f} ({seconds:.0f} s)"
    return f"{what}: {result['status']} ({result['reason']})"
