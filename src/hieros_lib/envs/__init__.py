"""``hieros_lib.envs``: environments that speak the library's data convention.

* :class:`GymAdapter`: ``N`` Gymnasium environments (in-process or in subprocesses) behind ``reset()`` /
  ``step(actions)``, returning dicts of ``(N, ...)`` arrays with ``obs``, ``reward``, ``is_first``,
  ``is_last`` and ``is_terminal``.
* :func:`make_atari100k`: the Atari 100k protocol on ale-py (its ROMs are bundled).
* :func:`make_env`: any of them from a spec string, ``atari:Pong``, ``gym:CartPole-v1``,
  ``gym:Pendulum-v1`` (continuous actions), ``dmc:walker-walk`` or ``hieros:pinpad-three``.
* Three embedded games in pure NumPy, no download: :class:`Catch` (reactive, dense reward),
  :class:`PinPad` (visit pads in order, sparse reward) and :class:`Rooms` (rooms joined by doors, a
  sparse reward far from the start; the agent's cell exposed for measuring exploration).

Gymnasium (and ale-py, OpenCV) are imported only when an environment is made: ``pip install
"hieros-lib[envs]"`` for Gymnasium and the embedded games, ``"hieros-lib[atari]"`` for Atari.
"""

from __future__ import annotations

import inspect
from typing import Any

from hieros_lib._games import ATARI100K_GAMES, atari_game, atari_rom_id
from hieros_lib.envs._adapter import STEP_FIELDS, GymAdapter
from hieros_lib.envs._catch import Catch
from hieros_lib.envs._pinpad import PinPad
from hieros_lib.envs._rooms import Rooms
from hieros_lib.errors import check, check_float, check_int

__all__ = [
    "ATARI100K_GAMES",
    "EMBEDDED_ENVS",
    "STEP_FIELDS",
    "Catch",
    "GymAdapter",
    "PinPad",
    "Rooms",
    "atari_game",
    "atari_rom_id",
    "make_atari100k",
    "make_env",
]

EMBEDDED_ENVS: tuple[str, ...] = (
    "catch",
    "rooms",
    "pinpad-three",
    "pinpad-four",
    "pinpad-five",
    "pinpad-six",
    "pinpad-seven",
    "pinpad-eight",
)
"""Names of the embedded environments, for specs ``hieros:<name>``."""


def make_atari100k(
    game: str,
    *,
    seed: int,
    num_envs: int = 1,
    asynchronous: bool = False,
    image_size: int = 64,
    frame_skip: int = 4,
    noop_max: int = 30,
    repeat_action_probability: float = 0.0,
    terminal_on_life_loss: bool = False,
    max_frames: int = 108_000,
    full_action_space: bool = False,
    evaluation: bool = False,
) -> GymAdapter:
    """The Atari 100k protocol (Kaiser et al. 2020, as DreamerV3 and TWM run it) for one game.

    Every setting is an argument, with the field's protocol as the default:

    - ``frame_skip=4``: each agent step repeats the action for 4 emulator frames and sums the rewards;
      the observation is the pixel-wise **maximum of the last two frames** (also when the episode ends
      inside a step). 100k agent steps are 400k frames.
    - ``image_size=64``: RGB frames resized to 64 x 64 with OpenCV's area interpolation (DreamerV3 2023,
      TWM's and IRIS's resolution; the original Atari agents used 84 x 84 grey).
    - ``repeat_action_probability=0.0``: no sticky actions (the 100k benchmark's setting; ALE v5's
      default is 0.25).
    - ``full_action_space=False``: the game's minimal action set (e.g. 6 for Pong, 4 for Breakout).
    - ``noop_max=30``: a uniform number of 0 to 30 no-op frames at each reset (DreamerV3's ``noops
      30``; Gymnasium's ``AtariPreprocessing`` draws 1 to 30).
    - ``terminal_on_life_loss=False``: a lost life is not the end of an episode (DreamerV3). ``True`` is
      the variant of TWM and IRIS: a lost life ends the episode as terminal, and the next episode
      continues the same game (the emulator is reset only when the game is over).
    - ``max_frames=108_000``: episodes are capped at 108k emulator frames (30 minutes of play, no-ops
      included), reported as a *truncation* (``is_last`` without ``is_terminal``), not a termination
      (the official Hieros code and DreamerV3 mark it terminal).
    - Rewards are not clipped (the world models regress them in ``symlog`` space).

    ``evaluation=True`` gives the evaluation variant: whole games (``terminal_on_life_loss`` forced
    off), everything else as above. The field reports the mean return of such episodes with the final
    agent; this library's trainer runs 100 of them at the end of a 100k run (see the training docs).

    Args:
        game: One of the 26 games in any usual spelling (:func:`atari_game`).
        seed: Seed of the environments (each of the ``num_envs`` derives its own).
        num_envs: Parallel environments ``N``.
        asynchronous: Run each environment in a subprocess (``AsyncVectorEnv``) instead of in-process.
        image_size: Side of the square observation.
        frame_skip: Emulator frames per agent step.
        noop_max: Most no-op frames at reset (uniform from 0).
        repeat_action_probability: ALE's sticky-action probability.
        terminal_on_life_loss: End an episode (terminal) at each lost life.
        max_frames: Emulator frames after which an episode is truncated.
        full_action_space: All 18 actions instead of the game's minimal set.
        evaluation: Whole games for evaluation (overrides ``terminal_on_life_loss``).

    Returns:
        A :class:`GymAdapter`.

    Raises:
        HierosError: On an unknown game (the message lists the 26), bad arguments, or a missing
            ``atari`` extra.

    Examples:
        >>> env = make_atari100k("pong", seed=0)
        >>> step = env.reset()
        >>> step["obs"].shape, env.num_actions
        ((1, 64, 64, 3), 6)
        >>> env.close()
    """
    game = atari_game(game)
    check(isinstance(asynchronous, bool), "asynchronous", "True or False", got=repr(asynchronous))
    image_size = check_int(image_size, "image_size", minimum=1)
    frame_skip = check_int(frame_skip, "frame_skip", minimum=1)
    noop_max = check_int(noop_max, "noop_max", minimum=0)
    max_frames = check_int(max_frames, "max_frames", minimum=1)
    probability = check_float(repeat_action_probability, "repeat_action_probability", minimum=0.0,
                              maximum=1.0)
    from hieros_lib.envs import _gym

    fn = _gym.atari_fn(
        game,
        image_size=image_size,
        frame_skip=frame_skip,
        noop_max=noop_max,
        repeat_action_probability=probability,
        terminal_on_life_loss=bool(terminal_on_life_loss) and not evaluation,
        max_frames=max_frames,
        full_action_space=bool(full_action_space),
    )
    n = _gym.num_envs_of(num_envs)
    name = f"atari:{game}" + (" (evaluation)" if evaluation else "")
    return _gym.vectorize([fn] * n, seed=seed, asynchronous=asynchronous, name=name)


def make_env(
    spec: str,
    *,
    seed: int,
    num_envs: int = 1,
    asynchronous: bool = False,
    image_size: int | None = 64,
    pixels: bool | None = None,
    action_repeat: int | None = None,
    camera: int | None = None,
    **kwargs: Any,
) -> GymAdapter:
    """``N`` environments from a spec string, behind a :class:`GymAdapter`.

    Spec format, ``<kind>:<name>``:

    - ``atari:<Game>``: :func:`make_atari100k` (``kwargs`` go to it), e.g. ``atari:Pong``,
      ``atari:ms_pacman``;
    - ``hieros:<name>``: an embedded game, one of :data:`EMBEDDED_ENVS` (``catch``, ``rooms``,
      ``pinpad-three`` ... ``pinpad-eight``); ``kwargs`` go to its class (e.g. ``length=500``);
      ``hieros:rooms`` steps carry the agent's cell as the field ``"cell"``;
    - ``gym:<id>`` (or a bare ``<id>``): any registered Gymnasium id, made with ``gymnasium.make(id,
      **kwargs)``. Packages that register ids on import are imported for you for ``ALE/``,
      ``MiniGrid-`` / ``BabyAI-`` (minigrid) and ``MinAtar/`` ids, or name one as ``gym:module:id``.
      The MuJoCo tasks (``gym:HalfCheetah-v5``, ``gym:Hopper-v5``, ...) need the ``mujoco`` extra.
    - ``dmc:<domain>-<task>``: a task of the DeepMind Control Suite (``dm-control``, the ``dmc`` extra),
      e.g. ``dmc:walker-walk``, ``dmc:cartpole-swingup``, ``dmc:ball_in_cup-catch``, observed from pixels
      as DreamerV3 does: the rendering of the domain's camera (``camera``: 2 for quadruped, 0 otherwise)
      at ``image_size`` (64), every action repeated twice (``action_repeat=2``); the suite's 1000-step
      time limit is a truncation. ``pixels=False`` observes the proprioceptive vector instead. Rendering
      without a display needs ``MUJOCO_GL=egl`` (or ``osmesa``) in the environment.

    Observations: uint8 images ``(H, W, C)`` are resized to ``image_size`` x ``image_size`` (``None``
    keeps their size); a dict observation is reduced to its ``"image"`` entry (MiniGrid); vectors are
    passed on as float32; ``pixels=True`` observes the ``rgb_array`` rendering instead (for envs whose
    observation is a vector, e.g. ``gym:CartPole-v1``; the ``pixels`` extra installs pygame for the
    classic-control renderings).

    Actions: ``Discrete`` spaces take indices; flat ``Box`` spaces with finite bounds (``gym:Pendulum-v1``,
    the MuJoCo tasks, DMC) take ``(N, d)`` floats in ``[-1, 1]``, rescaled to the bounds by
    :class:`GymAdapter` (``env.continuous``).

    Args:
        spec: The spec string.
        seed: Seed of the environments (each derives its own).
        num_envs: Parallel environments ``N``.
        asynchronous: One subprocess per environment (``AsyncVectorEnv``) instead of in-process.
        image_size: Side of image observations (embedded games: a multiple of their grid, 8 or 16).
        pixels: Observe rendered frames instead of the environment's observation (None: no for
            ``gym:``, yes for ``dmc:``).
        action_repeat: Repeat every action this many times, summing the rewards (``gym:`` default 1,
            ``dmc:`` 2; Atari has its ``frame_skip``).
        camera: The camera a ``dmc:`` task is rendered with (the domain's default if None).
        **kwargs: Passed to the environment (see above).

    Returns:
        A :class:`GymAdapter`.

    Raises:
        HierosError: On an unknown spec or id, an unsupported action or observation space, bad
            arguments, or a missing optional dependency (named in the message).

    Examples:
        >>> env = make_env("hieros:pinpad-three", seed=0, image_size=16, length=100)
        >>> env.obs_shape, env.num_actions
        ((16, 16, 3), 5)
        >>> env.close()
    """
    check(isinstance(spec, str) and spec.strip() != "", "spec", "a spec string such as 'atari:Pong', "
          "'gym:CartPole-v1' or 'hieros:catch'", got=repr(spec))
    check(isinstance(asynchronous, bool), "asynchronous", "True or False", got=repr(asynchronous))
    check(pixels is None or isinstance(pixels, bool), "pixels", "True, False or None", got=repr(pixels))
    kind, sep, name = spec.partition(":")
    if not sep or kind not in ("atari", "gym", "hieros", "dmc"):
        kind, name = "gym", spec
    check(kind in ("gym", "dmc") or (action_repeat is None and camera is None), "action_repeat",
          "None except for gym: and dmc: specs (Atari has frame_skip)", got=repr(action_repeat))
    if kind == "atari":
        size = 64 if image_size is None else image_size
        fixed = {"game", "seed", "num_envs", "asynchronous", "image_size"}
        known = set(inspect.signature(make_atari100k).parameters) - fixed
        unknown = sorted(set(kwargs) - known)
        check(not unknown, "options", f"options of the Atari protocol {sorted(known)}", got=unknown)
        check(not pixels, "pixels", "False for Atari (its observations are pixels already)")
        return make_atari100k(name, seed=seed, num_envs=num_envs, asynchronous=asynchronous,
                              image_size=size, **kwargs)
    if image_size is not None:
        image_size = check_int(image_size, "image_size", minimum=1)
    n = check_int(num_envs, "num_envs", minimum=1)
    from hieros_lib.envs import _gym

    if kind == "hieros":
        check(not pixels, "pixels", "False for the embedded games (they are observed as pixels already)")
        fn = _gym.embedded_fn(name, image_size, kwargs)
        info_keys = ("cell",) if name == "rooms" else ()
        return _gym.vectorize([fn] * n, seed=seed, asynchronous=asynchronous, name=spec, info_keys=info_keys)
    elif kind == "dmc":
        from hieros_lib.envs import _dmc

        check(not kwargs, "options", "only image_size, action_repeat, camera and pixels for dmc: specs",
              got=sorted(kwargs))
        repeat = 2 if action_repeat is None else action_repeat
        fn = _dmc.dmc_fn(name, image_size=image_size or 64, action_repeat=repeat, camera=camera,
                         pixels=pixels is not False)
    else:
        check(camera is None, "camera", "None for gym: specs (dmc: only)", got=camera)
        fn = _gym.gym_fn(name, image_size, bool(pixels), kwargs, action_repeat=action_repeat or 1)
    return _gym.vectorize([fn] * n, seed=seed, asynchronous=asynchronous, name=spec)
