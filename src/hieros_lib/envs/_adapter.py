"""One adapter from Gymnasium's vector environments to the library's data convention."""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

from hieros_lib.errors import HierosError, check, check_int

__all__ = ["STEP_FIELDS", "GymAdapter"]

logger = logging.getLogger(__name__)

STEP_FIELDS: tuple[str, ...] = ("obs", "reward", "is_first", "is_last", "is_terminal")
"""The fields of every step dict that :meth:`GymAdapter.reset` and :meth:`GymAdapter.step` return."""


def env_seeds(seed: int, num_envs: int) -> list[int]:
    """``num_envs`` independent seeds derived from one (NumPy ``SeedSequence``, so they do not overlap)."""
    seed = check_int(seed, "seed", minimum=0)
    return [int(s) for s in np.random.SeedSequence(seed).generate_state(num_envs)]


class GymAdapter:
    """``N`` Gymnasium environments behind ``reset()`` and ``step(actions)`` in the library's convention.

    Each call returns a dict of NumPy arrays with a leading ``N`` axis (:data:`~hieros_lib.envs.STEP_FIELDS`):

    - ``obs``: uint8 images ``(N, H, W, C)`` or float32 vectors ``(N, D)``;
    - ``reward`` float32 ``(N,)``: received on arriving at ``obs``;
    - ``is_first``, ``is_last``, ``is_terminal`` bool ``(N,)``.

    Actions: a ``Discrete`` space takes ``(N,)`` indices (``num_actions`` of them); a flat ``Box`` space
    with finite bounds (``continuous``) takes ``(N, d)`` floats in ``[-1, 1]``, which the adapter
    rescales to the space's bounds (``num_actions`` is then ``d``), so the agent sees every
    continuous space as ``[-1, 1]^d``.

    A Gymnasium ``terminated`` becomes ``is_terminal`` and ``is_last``; ``truncated`` (a time limit)
    becomes ``is_last`` only. The step that ends an episode delivers that episode's final observation
    and reward; on the next call that environment starts its next episode: the step holds the reset
    observation with ``is_first``, reward 0 and no end flag, and the action given for it is ignored
    (Gymnasium 1.x vector environments in ``NEXT_STEP`` autoreset mode, which this adapter requires). So
    every step of every episode appears exactly once, in order, and nothing is shifted.

    The environment seeds derive from one ``seed`` (:class:`numpy.random.SeedSequence`), applied at
    :meth:`reset`; later episodes continue each environment's own generator, so a run is reproducible.

    Build one with :func:`~hieros_lib.envs.make_env` or :func:`~hieros_lib.envs.make_atari100k`, or wrap
    a ``gymnasium.vector.SyncVectorEnv`` / ``AsyncVectorEnv`` of your own whose single observation space
    is a uint8 ``(H, W, C)`` or a float ``(D,)`` Box and whose single action space is ``Discrete`` or a flat
    float ``Box`` with finite bounds.

    Args:
        env: A Gymnasium vector environment in ``NEXT_STEP`` autoreset mode.
        seed: The seed the environment seeds derive from.
        name: A name for messages and logs (e.g. the spec it was made from).
        info_keys: Entries of the environments' info to pass on as extra step fields, ``(N, ...)``
            arrays (e.g. ``("cell",)`` for :class:`~hieros_lib.envs.Rooms`: what the trainer measures
            exploration with; the agent does not read them).

    Attributes:
        num_envs: ``N``.
        obs_shape: The observation shape, ``(H, W, C)`` or ``(D,)``.
        continuous: Whether actions are continuous (a ``Box`` space).
        num_actions: The number of discrete actions, or ``d``, the size of a continuous action.
        action_low: ``(d,)`` lower bounds of a continuous space (None for a discrete one).
        action_high: ``(d,)`` upper bounds of a continuous space (None for a discrete one).

    Raises:
        HierosError: If the spaces or the autoreset mode are not supported.

    Examples:
        >>> from hieros_lib.envs import make_env
        >>> env = make_env("hieros:catch", seed=0, num_envs=2, image_size=16)
        >>> step = env.reset()
        >>> step["obs"].shape, step["is_first"].tolist()
        ((2, 16, 16, 3), [True, True])
        >>> step = env.step([0, 2])
        >>> step["reward"].dtype, step["is_first"].tolist()
        (dtype('float32'), [False, False])
        >>> env.close()
    """

    def __init__(self, env: Any, *, seed: int, name: str = "", info_keys: tuple[str, ...] = ()) -> None:
        self.env = env
        self.name = name or type(env).__name__
        self.num_envs = check_int(getattr(env, "num_envs", None), "env.num_envs", minimum=1)
        mode = getattr(env, "metadata", {}).get("autoreset_mode")
        check(
            mode is None or getattr(mode, "name", str(mode)) in ("NEXT_STEP", "NextStep"),
            "env",
            "a vector environment in NEXT_STEP autoreset mode (Gymnasium's default)",
            got=mode,
        )
        space = env.single_observation_space
        shape = tuple(int(d) for d in getattr(space, "shape", None) or ())
        dtype = np.dtype(getattr(space, "dtype", None) or np.float64)
        image = len(shape) == 3 and dtype == np.uint8
        check(
            image or (len(shape) == 1 and dtype.kind == "f"),
            "env.single_observation_space",
            "a Box of uint8 images (H, W, C) or of float vectors (D,)",
            got=space,
        )
        self.obs_shape: tuple[int, ...] = shape
        self._batch_obs_shape = (self.num_envs, *shape)
        self.obs_dtype = np.dtype(np.uint8) if image else np.dtype(np.float32)
        action_space = env.single_action_space
        kind = type(action_space).__name__
        self.continuous = kind == "Box"
        self.action_low: np.ndarray | None = None
        self.action_high: np.ndarray | None = None
        if self.continuous:
            low = np.asarray(action_space.low, np.float64)
            high = np.asarray(action_space.high, np.float64)
            check(
                low.ndim == 1 and low.size >= 1 and np.dtype(action_space.dtype).kind == "f",
                "env.single_action_space",
                "a flat Box of floats (d,) (reshape other Box spaces with a wrapper of your own)",
                got=action_space,
            )
            check(
                bool(np.isfinite(low).all() and np.isfinite(high).all() and (high > low).all()),
                "env.single_action_space",
                "a Box with finite bounds, low < high (actions in [-1, 1] are rescaled to them)",
                got=action_space,
            )
            self.action_low, self.action_high = low, high
            self._action_dtype = np.dtype(action_space.dtype)
            self.num_actions = int(low.size)
        else:
            check(
                kind == "Discrete" and int(getattr(action_space, "start", 0)) == 0,
                "env.single_action_space",
                "a Discrete action space starting at 0, or a flat Box of floats with finite bounds",
                got=action_space,
            )
            self.num_actions = int(action_space.n)
        self.seed = check_int(seed, "seed", minimum=0)
        check(isinstance(info_keys, tuple) and all(isinstance(k, str) and k not in STEP_FIELDS
                                                   for k in info_keys),
              "info_keys", "a tuple of info names other than the step fields", got=info_keys)
        self.info_keys = info_keys
        self._ended = np.zeros(self.num_envs, bool)
        self._started = False

    def __repr__(self) -> str:
        actions = f"continuous {self.num_actions}" if self.continuous else f"{self.num_actions}"
        return (
            f"GymAdapter({self.name!r}, num_envs={self.num_envs}, obs={self.obs_shape} {self.obs_dtype}, "
            f"actions={actions})"
        )

    def __enter__(self) -> GymAdapter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _pack(
        self,
        obs: Any,
        reward: np.ndarray,
        first: np.ndarray,
        terminated: np.ndarray,
        last: np.ndarray,
        info: Any = None,
    ) -> dict[str, np.ndarray]:
        obs = np.asarray(obs)
        if obs.shape != self._batch_obs_shape:  # the hot path runs plain comparisons, messages on failure
            check(False, "obs", f"observations of shape {self._batch_obs_shape} from {self.name}",
                  got=obs.shape)
        if self.obs_dtype == np.float32:
            obs = obs.astype(np.float32, copy=False)
            if not np.isfinite(obs).all():
                bad = np.nonzero(~np.isfinite(obs).all(-1))[0].tolist()
                check(False, "obs", f"finite observations from {self.name}", got=f"NaN or inf in envs {bad}")
        elif obs.dtype != np.uint8:
            obs = obs.astype(np.uint8)
        out = {
            "obs": obs,
            "reward": reward.astype(np.float32),
            "is_first": first,
            "is_last": last,
            "is_terminal": terminated,
        }
        for key in self.info_keys:
            check(isinstance(info, dict) and key in info, "env", f"an info entry {key!r} at every step",
                  got=sorted(info) if isinstance(info, dict) else type(info).__name__)
            out[key] = np.asarray(info[key])
        return out

    def reset(self, seed: int | None = None) -> dict[str, np.ndarray]:
        """Start every environment; all steps have ``is_first``.

        Args:
            seed: The seed the ``N`` environments' seeds derive from; the adapter's ``seed`` when ``None``.
        """
        seed = self.seed if seed is None else check_int(seed, "seed", minimum=0)
        obs, info = self.env.reset(seed=env_seeds(seed, self.num_envs))
        self._ended = np.zeros(self.num_envs, bool)
        self._started = True
        n = self.num_envs
        false = np.zeros(n, bool)
        return self._pack(obs, np.zeros(n, np.float32), np.ones(n, bool), false, false.copy(), info)

    def _env_actions(self, actions: Any) -> np.ndarray:
        """Checked actions in the environment's own form: indices, or vectors rescaled to its bounds."""
        if hasattr(actions, "detach"):
            actions = actions.detach().cpu().numpy()
        actions = np.asarray(actions)
        n = self.num_envs
        if not self.continuous:
            if actions.shape != (n,) or actions.dtype.kind not in "iu":
                check(False, "actions", f"{n} integer action indices, shape ({n},)",
                      got=f"{actions.dtype} {actions.shape}")
            if actions.min() < 0 or actions.max() >= self.num_actions:
                check(False, "actions", f"indices in [0, {self.num_actions})", got=actions.tolist())
            return actions.astype(np.int64, copy=False)
        d = self.num_actions
        if actions.shape != (n, d) or actions.dtype.kind != "f":
            check(False, "actions", f"float actions of shape ({n}, {d}) in [-1, 1]",
                  got=f"{actions.dtype} {actions.shape}")
        if not np.isfinite(actions).all():
            check(False, "actions", "finite values", got="NaN or inf")
        assert self.action_low is not None and self.action_high is not None
        unit = np.clip(actions.astype(np.float64), -1.0, 1.0)  # documented: clipped, not refused
        scaled = self.action_low + (unit + 1.0) * 0.5 * (self.action_high - self.action_low)
        return scaled.astype(self._action_dtype)

    def step(self, actions: Any) -> dict[str, np.ndarray]:
        """Apply one action per environment; returns the next step of every environment.

        Args:
            actions: For a ``Discrete`` space ``(N,)`` integer indices in ``[0, num_actions)``; for a
                ``Box`` space ``(N, d)`` floats in ``[-1, 1]``, rescaled linearly to the space's bounds
                (``-1`` is ``low``, ``1`` is ``high``); values outside ``[-1, 1]`` are clipped to it. A list,
                array or tensor.

        Raises:
            HierosError: On a wrong shape or dtype, an out-of-range index, a NaN or infinite continuous
                action, a step before :meth:`reset`, or a non-finite observation from the environment.
        """
        check(self._started, "step", "a call to reset() first")
        obs, reward, terminated, truncated, info = self.env.step(self._env_actions(actions))
        first = self._ended  # these environments were reset by this call (NEXT_STEP autoreset)
        live = ~first
        terminated = np.asarray(terminated, bool) & live
        last = (terminated | np.asarray(truncated, bool)) & live
        reward = np.where(first, 0.0, reward)
        if not np.isfinite(reward).all():
            check(False, "reward", f"finite rewards from {self.name}", got=reward.tolist())
        self._ended = last
        return self._pack(obs, reward, first, terminated, last, info)

    def close(self) -> None:
        """Close the environments (and their worker processes)."""
        try:
            self.env.close()
        except (OSError, EOFError, BrokenPipeError) as err:  # a worker that already died
            logger.warning("closing %s: %s", self.name, err)

    # ------------------------------------------------------------------ checkpoints
    @property
    def can_save_state(self) -> bool:
        """Whether :meth:`get_state` can capture the environments exactly: in-process embedded ones.

        Atari, other Gymnasium environments and environments in subprocesses cannot; a trainer restarts
        their episodes when it resumes.
        """
        envs: Any = getattr(self.env, "envs", None)
        return envs is not None and all(
            hasattr(getattr(sub.unwrapped, "core", None), "get_state") for sub in envs
        )

    def get_state(self) -> dict[str, Any]:
        """The exact state of in-process environments that support it (embedded ones), for checkpoints.

        Raises:
            HierosError: If the environments run in subprocesses or do not expose their state.
        """
        envs: Any = getattr(self.env, "envs", None)
        check(envs is not None, "env", "in-process environments (asynchronous=False) to checkpoint")
        states = []
        for sub in envs:
            core = getattr(sub.unwrapped, "core", None)
            if core is None or not hasattr(core, "get_state"):
                raise HierosError(f"env: {self.name} cannot save its state (only embedded environments can)")
            states.append(core.get_state())
        return {"envs": states, "ended": self._ended.tolist(), "started": self._started}

    def set_state(self, state: dict[str, Any]) -> None:
        """Restore :meth:`get_state` (same spec and number of environments)."""
        envs: Any = getattr(self.env, "envs", None)
        check(
            envs is not None and len(state.get("envs", ())) == len(envs),
            "state",
            f"the state of {self.num_envs} in-process environments",
        )
        for sub, sub_state in zip(envs, state["envs"], strict=True):
            sub.unwrapped.core.set_state(sub_state)
        self._ended = np.asarray(state["ended"], bool)
        self._started = bool(state["started"])
        # The vector env must know which environments end so that it resets them on the next step.
        if hasattr(self.env, "_autoreset_envs"):
            self.env._autoreset_envs = self._ended.copy()
