"""Evaluation episodes and the pictures drawn with them (decoded subgoals, open-loop predictions)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from hieros_lib.agents import Hieros, HierosState
from hieros_lib.envs import GymAdapter
from hieros_lib.errors import check
from hieros_lib.replay import SequenceReplay
from hieros_lib.training._media import open_loop_frames, side_by_side, to_uint8, write_gif

__all__ = ["EVAL_MODES", "Evaluator"]

EVAL_MODES = ("sample", "greedy", "random")
"""``"sample"``: every level samples its latents and actions, as DreamerV3 evaluates; ``"greedy"``: the
mode of every categorical (deterministic given the observations); ``"random"``: uniformly random actions
(the baseline)."""


def random_actions(env: GymAdapter, generator: torch.Generator) -> np.ndarray:
    """Uniformly random actions for ``env``: ``(N,)`` indices, or ``(N, d)`` floats in ``[-1, 1]``."""
    n = env.num_envs
    if env.continuous:
        return (torch.rand(n, env.num_actions, generator=generator) * 2.0 - 1.0).numpy()
    return torch.randint(0, env.num_actions, (n,), generator=generator).numpy()


class Evaluator:
    """Plays evaluation episodes with an agent in its own environment, without storing or training.

    Every evaluation restarts the environment from its seed and, in ``"sample"`` mode, draws from a
    generator seeded by ``seed`` and the training step, so an evaluation is the same whether or not the
    run was interrupted before it.

    Args:
        agent: The agent.
        env: The evaluation environment (any ``N``; episodes are counted over all of them).
        mode: One of :data:`EVAL_MODES`.
        seed: Seed of the sampling generators.
    """

    def __init__(self, agent: Hieros, env: GymAdapter, *, mode: str, seed: int) -> None:
        check(mode in EVAL_MODES, "mode", f"one of {EVAL_MODES}", got=repr(mode))
        self.agent, self.env, self.mode, self.seed = agent, env, mode, int(seed)

    def _tensors(self, step: dict[str, np.ndarray]) -> dict[str, torch.Tensor]:
        device = self.agent.device
        return {key: torch.as_tensor(value, device=device) for key, value in step.items()}

    @torch.no_grad()
    def run(
        self,
        episodes: int,
        *,
        step: int,
        on_episode: Callable[[float, int], None] | None = None,
        gif: Path | None = None,
    ) -> list[float]:
        """Play ``episodes`` episodes; returns their returns.

        Args:
            episodes: How many episodes to finish.
            step: The training step (seeds the sampling).
            on_episode: Called with ``(return, length)`` of every finished episode.
            gif: If given, the first episode is written there as a GIF (image observations only), with
                every level's decoded subgoal beside the observation.
        """
        env, agent = self.env, self.agent
        seed = self.seed * 1_000_003 + step
        generator = torch.Generator(device=agent.device).manual_seed(seed)
        cpu_generator = torch.Generator().manual_seed(seed)
        state = agent.initial_state(env.num_envs)
        current = env.reset()
        returns: list[float] = []
        frames: list[np.ndarray] = []
        totals = np.zeros(env.num_envs)
        lengths = np.zeros(env.num_envs, dtype=np.int64)
        record = gif is not None and len(env.obs_shape) == 3
        policy_mode = "train" if self.mode == "sample" else "eval"
        while len(returns) < episodes:
            if self.mode == "random":
                action = torch.as_tensor(random_actions(env, cpu_generator))
            else:
                tensors = self._tensors(current)
                action, state, _ = agent.policy(tensors, state, mode=policy_mode, generator=generator)
            if record and not returns:
                frames.append(self._frame(current["obs"][0], state) if self.mode != "random" else
                              to_uint8(current["obs"][0]))
            current = env.step(action.cpu().numpy())
            totals += np.where(current["is_first"], 0.0, current["reward"])
            lengths += ~current["is_first"]
            for index in np.nonzero(current["is_last"])[0]:
                if len(returns) < episodes:
                    returns.append(float(totals[index]))
                    if on_episode is not None:
                        on_episode(float(totals[index]), int(lengths[index]))
                totals[index], lengths[index] = 0.0, 0
        if frames and gif is not None:
            write_gif(gif, frames)
        return returns

    def _frame(self, obs: np.ndarray, state: HierosState) -> np.ndarray:
        pictures = [to_uint8(obs)]
        if len(self.agent.levels) > 1:
            pictures += [to_uint8(image[0]) for image in self.agent.subgoal_images(state)]
        return side_by_side(pictures)

    def open_loop(self, replay: SequenceReplay, path: Path) -> bool:
        """Write a GIF of level 0's open-loop predictions on four stored sequences (images only).

        Returns:
            Whether a GIF was written (it needs four sequences of at least 4 steps of images).
        """
        length = replay.sequence_length
        if replay.num_items < 4 or len(self.env.obs_shape) != 3 or length < 4:
            return False
        device = self.agent.device
        indices = np.linspace(0, replay.num_items - 1, 4).astype(np.int64)
        batch = {k: v.to(device) for k, v in replay.sequences(indices).items()}
        generator = torch.Generator(device=device).manual_seed(0)
        frames = open_loop_frames(self.agent.level(0), batch, context=length // 2, generator=generator)
        write_gif(path, frames, fps=4)
        return True
