"""Typed training configs, the presets, and overrides from the command line (OmegaConf)."""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, field
from typing import Any

import torch

from hieros_lib.agents import ActorCriticConfig, HierosConfig, SubactorConfig
from hieros_lib.errors import HierosError, check, check_float, check_int

_DEVICE = re.compile(r"^(auto|cpu|cuda(:\d+)?)$")


def resolve_device(spec: str) -> torch.device:
    """The torch device of ``run.device``: ``"auto"`` is CUDA when available, else the CPU.

    Raises:
        HierosError: If CUDA (or that CUDA device) is asked for and not available.
    """
    check(isinstance(spec, str) and _DEVICE.match(spec) is not None, "run.device",
          "'auto', 'cpu', 'cuda' or 'cuda:<index>'", got=repr(spec))
    if spec == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(spec)
    if device.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        index = device.index or 0
        check(index < count, "run.device", f"a CUDA device this machine has ({count} found)", got=repr(spec))
    return device

__all__ = [
    "PRESETS",
    "EnvConfig",
    "RunConfig",
    "TrainConfig",
    "config_from_yaml",
    "config_to_yaml",
    "make_config",
    "resolve_device",
]


@dataclass(kw_only=True)
class EnvConfig:
    """The environment (see :func:`hieros_lib.envs.make_env` for the spec format).

    Attributes:
        spec: ``hieros:catch``, ``hieros:pinpad-three``, ``atari:Pong``, ``gym:<id>``.
        num_envs: Environments stepped together (``N``).
        asynchronous: One subprocess per environment.
        image_size: Side of image observations.
        options: Passed to the environment (e.g. ``{"length": 200}`` for an embedded game).
        eval_options: Added for the evaluation environment (e.g. ``{"evaluation": true}`` for Atari).
    """

    spec: str = "hieros:catch"
    num_envs: int = 1
    asynchronous: bool = False
    image_size: int = 16
    options: dict[str, Any] = field(default_factory=dict)
    eval_options: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        check(
            isinstance(self.spec, str) and self.spec != "",
            "env.spec",
            "a spec such as 'hieros:catch'",
            got=repr(self.spec),
        )
        check_int(self.num_envs, "env.num_envs", minimum=1)
        check_int(self.image_size, "env.image_size", minimum=1)


@dataclass(kw_only=True)
class RunConfig:
    """The loop; every count is in environment steps (summed over the ``N`` environments).

    Attributes:
        steps: Environment steps to train for.
        seed: The one seed of the run (environments, parameters, replay, every sample).
        train_ratio: Level-0 training steps per environment step after the warm-up (the paper: 1).
        warmup: Environment steps before the first training step.
        eval_every: Environment steps between evaluations (0: only at the end).
        eval_episodes: Episodes per evaluation.
        final_eval_episodes: Episodes of the evaluation at the end (the field reports 100 for Atari 100k).
        eval_mode: ``"sample"`` (every level samples its latents and actions, as DreamerV3 evaluates; the
            default) or ``"greedy"`` (the mode of every categorical). With Atari's deterministic emulator
            and no sticky actions, greedy play leaves only the no-op count as randomness, so 100 greedy
            episodes hold at most 31 distinct games. For continuous actions greedy is the mean action.
        policy: ``"agent"`` (the default) or ``"random"``: uniformly random actions in training and
            evaluation and no learning, the baseline a sweep runs beside the agents.
        log_every: Environment steps between lines of ``metrics.jsonl``.
        checkpoint_every: Environment steps between checkpoints (0: only at the end and on a signal).
        keep_last: Complete checkpoints kept (the newest ones; at least 1, default 2: a checkpoint that
            turns out damaged falls back to the one before it).
        plot_every: Environment steps between refreshes of the plots (0: only at the end).
        media: Write the GIFs (evaluation episodes, open-loop predictions, decoded subgoals) at each
            evaluation.
        device: ``"auto"`` (CUDA if available), ``"cpu"`` or ``"cuda[:i]"``.
        threads: Torch's CPU threads (0: torch's default, the machine's cores). The thread count changes
            floating-point results in their last bits, so a resume refuses another value; with 0, a resume
            on a machine with another core count warns that it will not repeat the uninterrupted run.
        max_nonfinite: Consecutive skipped updates (non-finite loss) after which the run stops, with a
            checkpoint.
        progress: Show a progress bar.
        tensorboard: Write TensorBoard events (needs the ``tensorboard`` package).
    """

    steps: int = 5000
    seed: int = 0
    train_ratio: float = 1.0
    warmup: int = 300
    eval_every: int = 1000
    eval_episodes: int = 5
    final_eval_episodes: int = 10
    eval_mode: str = "sample"
    policy: str = "agent"
    log_every: int = 250
    checkpoint_every: int = 1000
    keep_last: int = 2
    plot_every: int = 1000
    media: bool = True
    device: str = "auto"
    threads: int = 0
    max_nonfinite: int = 10
    progress: bool = True
    tensorboard: bool = True

    def __post_init__(self) -> None:
        check_int(self.steps, "run.steps", minimum=1)
        check_int(self.seed, "run.seed", minimum=0)
        check_float(self.train_ratio, "run.train_ratio", minimum=0.0)
        for name in ("warmup", "eval_every", "checkpoint_every", "plot_every", "threads"):
            check_int(getattr(self, name), f"run.{name}", minimum=0)
        for name in ("eval_episodes", "final_eval_episodes", "log_every", "max_nonfinite", "keep_last"):
            check_int(getattr(self, name), f"run.{name}", minimum=1)
        check(self.eval_mode in ("sample", "greedy"), "run.eval_mode", "'sample' or 'greedy'",
              got=repr(self.eval_mode))
        check(self.policy in ("agent", "random"), "run.policy", "'agent' or 'random'", got=repr(self.policy))
        check(
            isinstance(self.device, str) and _DEVICE.match(self.device) is not None,
            "run.device",
            "'auto', 'cpu', 'cuda' or 'cuda:<index>'",
            got=repr(self.device),
        )


@dataclass(kw_only=True)
class TrainConfig:
    """Everything one run needs; written to ``config.yaml`` in the run directory.

    Attributes:
        preset: The preset it started from (for the record).
        logdir: The run directory; running again with the same one resumes.
        env: :class:`EnvConfig`.
        run: :class:`RunConfig`.
        agent: :class:`~hieros_lib.agents.HierosConfig` (``agent.levels=1`` is the single-level agent).
    """

    preset: str = "cpu-demo"
    logdir: str = "runs/cpu-demo"
    env: EnvConfig = field(default_factory=EnvConfig)
    run: RunConfig = field(default_factory=RunConfig)
    agent: HierosConfig = field(default_factory=HierosConfig)


def _debug() -> TrainConfig:
    level = SubactorConfig.tiny(
        world_model_preset="tiny",
        horizon=4,
        actor_critic=ActorCriticConfig(units=32, actor_lr=3e-4, critic_lr=3e-4, entropy_scale=3e-3),
    )
    return TrainConfig(
        preset="debug",
        logdir="runs/debug",
        env=EnvConfig(spec="hieros:catch", image_size=16, options={"length": 40}),
        run=RunConfig(
            steps=240,
            warmup=40,
            eval_every=120,
            eval_episodes=1,
            final_eval_episodes=1,
            log_every=40,
            checkpoint_every=120,
            plot_every=120,
            tensorboard=False,
        ),
        agent=HierosConfig(
            levels=2, k=2, level=level, batch_size=4, sequence_length=8, replay_capacity=10_000
        ),
    )


def _cpu_demo() -> TrainConfig:
    return TrainConfig(
        preset="cpu-demo",
        logdir="runs/cpu-demo",
        env=EnvConfig(spec="hieros:catch", image_size=16),
        run=RunConfig(
            # 2000 steps: Hieros reached the optimal return 12 at the evaluation of step 2000 (-5.6 at
            # 1000) in about 9 minutes on two cores; the depth-1 agent does by 1250 to 1500
            # (docs/benchmarks.md)
            steps=2000,
            warmup=300,
            eval_every=500,
            eval_episodes=5,
            final_eval_episodes=10,
            log_every=200,
            checkpoint_every=500,
            plot_every=500,
        ),
        agent=HierosConfig(
            levels=3,
            k=4,
            level=SubactorConfig.tiny(),
            batch_size=16,
            sequence_length=16,
            replay_capacity=100_000,
        ),
    )


def _catch_flat() -> TrainConfig:
    config = _cpu_demo()
    # 2000 steps: the S5WM curves over 3 seeds pass 80% of the optimal return by 1500 (docs/benchmarks.md)
    run = dataclasses.replace(config.run, steps=2000, eval_every=500, plot_every=500, checkpoint_every=1000)
    return dataclasses.replace(
        config, preset="catch-flat", logdir="runs/catch-flat", run=run, agent=config.agent.replace(levels=1)
    )


def _pinpad() -> TrainConfig:
    config = _cpu_demo()  # the same agent (3 levels, tiny levels), a longer run on the sparse task
    run = dataclasses.replace(
        config.run,
        steps=12_000,
        warmup=500,
        eval_every=3000,
        eval_episodes=2,
        final_eval_episodes=4,
        log_every=500,
        checkpoint_every=3000,
        plot_every=3000,
    )
    env = EnvConfig(spec="hieros:pinpad-three", image_size=16, options={"length": 500})
    return dataclasses.replace(config, preset="pinpad", logdir="runs/pinpad", env=env, run=run)


def _pinpad_flat() -> TrainConfig:
    config = _pinpad()
    return dataclasses.replace(
        config, preset="pinpad-flat", logdir="runs/pinpad-flat", agent=config.agent.replace(levels=1)
    )


def _atari100k() -> TrainConfig:
    return TrainConfig(
        preset="atari100k",
        logdir="runs/atari100k",
        env=EnvConfig(spec="atari:Pong", image_size=64, eval_options={"evaluation": True}),
        run=RunConfig(
            steps=100_000,
            warmup=1024,
            eval_every=25_000,
            eval_episodes=10,
            final_eval_episodes=100,
            log_every=1000,
            checkpoint_every=10_000,
            plot_every=10_000,
        ),
        agent=HierosConfig(),
    )


def _pendulum() -> TrainConfig:
    config = _catch_flat()  # the same CPU-sized level, on a continuous-control task
    run = dataclasses.replace(
        config.run,
        # 5000 steps: seeds 0-2 ended at -142, -258 and -101 (random -1210), 12-19 minutes each on one
        # shared core (docs/benchmarks.md)
        steps=5000,
        warmup=500,
        eval_every=500,
        eval_episodes=2,
        final_eval_episodes=5,
        eval_mode="greedy",  # continuous control is evaluated with the mean action
        log_every=250,
        checkpoint_every=1000,
        plot_every=1000,
    )
    # DreamerV3's control setting: every action repeated twice
    env = EnvConfig(spec="gym:Pendulum-v1", image_size=16, options={"action_repeat": 2})
    return dataclasses.replace(config, preset="pendulum", logdir="runs/pendulum", env=env, run=run)


def _dmc_vision() -> TrainConfig:
    return TrainConfig(
        preset="dmc-vision",
        logdir="runs/dmc-vision",
        # pixels at 64 x 64, every action repeated twice (the dmc: defaults); 500k steps are 1M frames
        env=EnvConfig(spec="dmc:walker-walk", image_size=64),
        run=RunConfig(
            steps=500_000,
            train_ratio=0.5,  # DreamerV3's train ratio 512 replayed steps per step, with 16 x 64 batches
            warmup=1024,
            eval_every=10_000,
            eval_episodes=5,
            final_eval_episodes=10,
            eval_mode="greedy",
            log_every=1000,
            checkpoint_every=10_000,
            plot_every=10_000,
        ),
        agent=HierosConfig(),
    )


PRESETS = {
    "cpu-demo": _cpu_demo,
    "debug": _debug,
    "catch-flat": _catch_flat,
    "pinpad": _pinpad,
    "pinpad-flat": _pinpad_flat,
    "atari100k": _atari100k,
    "pendulum": _pendulum,
    "dmc-vision": _dmc_vision,
}
"""Preset name -> function building its :class:`TrainConfig`:

* ``cpu-demo`` (the default): Hieros with 3 levels on the embedded Catch, CPU sizes, 2000 steps (about
  ten minutes on two cores);
* ``debug``: seconds, for tests (2 levels, tiny models, 240 steps);
* ``catch-flat``: the depth-1 agent (a single level, DreamerV3-style) on Catch, the CI learning check;
* ``pinpad`` / ``pinpad-flat``: Hieros with 3 levels / 1 level on PinPad (three pads), CPU sizes;
* ``atari100k``: the paper's configuration (appendix E, 3 levels, S5WM) on the Atari 100k protocol;
* ``pendulum``: the depth-1 agent with continuous actions on ``gym:Pendulum-v1`` (action repeat 2), CPU
  sizes, 5000 steps;
* ``dmc-vision``: the paper's Hieros on the DeepMind Control Suite from pixels (``dmc:walker-walk``,
  64 x 64, action repeat 2) at DreamerV3's train ratio (0.5 updates per step), 500k steps (1M frames).
"""


# Mappings an override replaces as a whole ('env.options={}' clears a preset's options); their sub-keys
# ('env.options.length=200') are merged as usual.
_DICT_FIELDS = ("env.options", "env.eval_options", "agent.level.world_model_overrides")


def make_config(preset: str = "cpu-demo", overrides: list[str] | None = None) -> TrainConfig:
    """A preset with ``key=value`` overrides applied (dotted keys, e.g. ``run.steps=2000``).

    Overrides are parsed and type-checked by OmegaConf against the dataclasses above; every value is then
    validated by the config classes themselves. A mapping given whole (``env.options={...}``,
    ``env.eval_options={...}``, ``agent.level.world_model_overrides={...}``) replaces the preset's, so
    ``'env.options={}'`` clears it; a sub-key (``env.options.length=200``) changes one entry.

    Args:
        preset: A name from :data:`PRESETS`.
        overrides: ``["run.steps=2000", "agent.levels=1", "env.spec=atari:Breakout", ...]``.

    Returns:
        The :class:`TrainConfig`.

    Raises:
        HierosError: On an unknown preset, an unknown key (with suggestions), a value of the wrong type or
            out of range; the message names the key.

    Examples:
        >>> config = make_config("debug", ["run.steps=100", "agent.levels=1"])
        >>> config.run.steps, config.agent.levels
        (100, 1)
    """
    check(preset in PRESETS, "preset", f"one of {sorted(PRESETS)}", got=repr(preset))
    base = PRESETS[preset]()
    if not overrides:
        return base
    omegaconf = _omegaconf()
    for item in overrides:
        check(
            isinstance(item, str) and "=" in item and not item.startswith("="),
            "override",
            "key=value (e.g. run.steps=2000)",
            got=repr(item),
        )
    replaced = [item for item in overrides if item.split("=", 1)[0].strip() in _DICT_FIELDS]
    merged_items = [item for item in overrides if item not in replaced]
    try:
        merged = omegaconf.OmegaConf.merge(
            omegaconf.OmegaConf.structured(base), omegaconf.OmegaConf.from_dotlist(merged_items)
        )
        for item in replaced:  # a whole dict replaces the preset's, so 'env.options={}' clears it
            key, value = item.split("=", 1)
            parsed = omegaconf.OmegaConf.to_container(omegaconf.OmegaConf.from_dotlist([f"value={value}"]))
            new = parsed["value"] if isinstance(parsed, dict) else None
            check(isinstance(new, dict), f"override {key.strip()}", "a mapping such as {length: 200} or {}",
                  got=repr(value))
            omegaconf.OmegaConf.update(merged, key.strip(), new, merge=False)
        config = omegaconf.OmegaConf.to_object(merged)
    except HierosError:
        raise
    except (omegaconf.errors.OmegaConfBaseException, ValueError, TypeError) as err:
        message = str(err).splitlines()
        full_key = next((line.split(":", 1)[1].strip() for line in message if "full_key:" in line), "")
        raise HierosError(f"override{' ' + full_key if full_key else ''}: {message[0]}") from err
    assert isinstance(config, TrainConfig)
    return config


def config_to_yaml(config: TrainConfig) -> str:
    """The config as YAML (what ``config.yaml`` holds)."""
    omegaconf = _omegaconf()
    return str(omegaconf.OmegaConf.to_yaml(omegaconf.OmegaConf.structured(config)))


def config_from_yaml(text: str, *, source: str = "config.yaml") -> TrainConfig:
    """Parse :func:`config_to_yaml`'s output back into a :class:`TrainConfig` (validated).

    Raises:
        HierosError: If ``text`` is not valid YAML or not a training config (naming ``source``).
    """
    omegaconf = _omegaconf()
    import yaml  # OmegaConf's own dependency

    try:
        merged = omegaconf.OmegaConf.merge(
            omegaconf.OmegaConf.structured(TrainConfig()), omegaconf.OmegaConf.create(text)
        )
        config = omegaconf.OmegaConf.to_object(merged)
    except HierosError as err:
        raise HierosError(f"{source}: {err}") from err
    except (omegaconf.errors.OmegaConfBaseException, yaml.YAMLError, ValueError, TypeError) as err:
        first = " ".join(str(err).split())[:200]
        raise HierosError(f"{source}: expected a training config in YAML, got {first}") from err
    if not isinstance(config, TrainConfig):
        raise HierosError(f"{source}: expected a training config in YAML, got {type(config).__name__}")
    return config


def _omegaconf() -> Any:
    try:
        import omegaconf
    except ImportError as err:
        raise HierosError("the trainer's configs need OmegaConf: pip install 'hieros-lib[train]'") from err
    return omegaconf
