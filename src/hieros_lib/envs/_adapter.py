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
    is a uint8 ``(H, W, C)`` or a float ``(D,)`` Box and whose single action space is ``Discrete``.

    Args:
        env: A Gymnasium vector environment in ``NEXT_STEP`` autoreset mode.
        seed: The seed the environment seeds derive from.
        name: A name for messages and logs (e.g. the spec it was made from).

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

    def __init__(self, env: Any, *, seed: int, name: str = "") -> None:
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
        check(
            type(action_space).__name__ == "Discrete" and int(getattr(action_space, "start", 0)) == 0,
            "env.single_action_space",
            "a Discrete action space starting at 0 (other action spaces are not supported)",
            got=action_space,
        )
        self.num_actions = int(action_space.n)
        self.seed = check_int(seed, "seed", minimum=0)
        self._ended = np.zeros(self.num_envs, bool)
        self._started = False

    def __repr__(self) -> str:
        return (
            f"GymAdapter({self.name!r}, num_envs={self.num_envs}, obs={self.obs_shape} {self.obs_dtype}, "
            f"num_actions={self.num_actions})"
        )

    def __enter__(self) -> GymAdapter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _pack(
        self, obs: Any, reward: np.ndarray, first: np.ndarray, terminated: np.ndarray, last: np.ndarray
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
        return {
            "obs": obs,
            "reward": reward.astype(np.float32),
            "is_first": first,
            "is_last": last,
            "is_terminal": terminated,
        }

    def reset(self, seed: int | None = None) -> dict[str, np.ndarray]:
        """Start every environment; all steps have ``is_first``.

        Args:
            seed: The seed the ``N`` environments' seeds derive from; the adapter's ``seed`` when ``None``.
        """
        seed = self.seed if seed is None else check_int(seed, "seed", minimum=0)
        obs, _ = self.env.reset(seed=env_seeds(seed, self.num_envs))
        self._ended = np.zeros(self.num_envs, bool)
        self._started = True
        n = self.num_envs
        false = np.zeros(n, bool)
        return self._pack(obs, np.zeros(n, np.float32), np.ones(n, bool), false, false.copy())

    def step(self, actions: Any) -> dict[str, np.ndarray]:
        """Apply one action index per environment; returns the next step of every environment.

        Args:
            actions: ``(N,)`` integer action indices in ``[0, num_actions)`` (a list, array or tensor).

        Raises:
            HierosError: On a wrong shape, a non-integer or out-of-range index, a step before
                :meth:`reset`, or a non-finite observation from the environment.
        """
        check(self._started, "step", "a call to reset() first")
        if hasattr(actions, "detach"):
            actions = actions.detach().cpu().numpy()
        actions = np.asarray(actions)
        if actions.shape != (self.num_envs,) or actions.dtype.kind not in "iu":
            check(False, "actions", f"{self.num_envs} integer action indices, shape ({self.num_envs},)",
                  got=f"{actions.dtype} {actions.shape}")
        if actions.min() < 0 or actions.max() >= self.num_actions:
            check(False, "actions", f"indices in [0, {self.num_actions})", got=actions.tolist())
        obs, reward, terminated, truncated, _ = self.env.step(actions.astype(np.int64, copy=False))
        first = self._ended  # these environments were reset by this call (NEXT_STEP autoreset)
        live = ~first
        terminated = np.asarray(terminated, bool) & live
        last = (terminated | np.asarray(truncated, bool)) & live
        reward = np.where(first, 0.0, reward)
        if not np.isfinite(reward).all():
            check(False, "reward", f"finite rewards from {self.name}", got=reward.tolist())
        self._ended = last
        return self._pack(obs, reward, first, terminated, last)

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
