"""The goal-following experiment's diagnostic without the autoencoder (``codes="cells"``)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from hieros_lib.agents import SubactorConfig
from hieros_lib.errors import HierosError
from hieros_lib.training import GoalFollowingConfig
from hieros_lib.training._goals import _Experiment


def test_cell_codes_name_every_cell_and_decode_to_its_h() -> None:
    level = SubactorConfig.tiny(autoencoder=True, extrinsic_weight=0.0)
    experiment = _Experiment(GoalFollowingConfig(steps=40, warmup=30, codes="cells", level=level))
    try:
        experiment.run(40, train=True)
        cells = sorted(experiment.visited)
        assert len(cells) > 3
        codes = torch.cat([experiment.code_of(c) for c in cells])
        assert codes.shape == (len(cells), 8, 8) and bool((codes.sum(-1) == 1).all())
        assert len({tuple(x) for x in codes.argmax(-1).tolist()}) == len(cells)  # one code per cell
        autoencoder = experiment.level.autoencoder
        assert autoencoder is not None
        decoded = autoencoder.decode(codes)
        assert torch.equal(decoded, torch.stack([experiment.visited[c] for c in cells]))
        diagnostics = experiment.diagnose()
        assert diagnostics["distinct_codes"] == len(cells)
        assert diagnostics["reward_by_distance"]["0"] == pytest.approx(1.0, abs=1e-4)  # h against itself
    finally:
        experiment.env.close()


def test_bad_codes_are_refused() -> None:
    with pytest.raises(HierosError, match="codes"):
        GoalFollowingConfig(codes="oracle")
    with pytest.raises(HierosError, match="model_pretrain"):
        GoalFollowingConfig(model_pretrain=-1)


def test_model_pretrain_trains_the_world_model_alone_once_after_the_warmup(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    level = SubactorConfig.tiny(autoencoder=True, extrinsic_weight=0.0, world_model_preset="tiny")
    experiment = _Experiment(GoalFollowingConfig(steps=24, warmup=20, model_pretrain=3, level=level))
    calls: list[int] = []  # the level's full updates so far, at every world-model-only update
    original = experiment.level.train_world_model

    def recording(*args: object, **kwargs: object) -> object:
        calls.append(experiment.level.updates)
        return original(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(experiment.level, "train_world_model", recording)
    try:
        experiment.run(24, train=True)
    finally:
        experiment.env.close()
    assert calls == [0, 0, 0] and experiment.level.updates == 4


@pytest.mark.parametrize("image_size", [16, 32])
def test_the_agent_cell_is_read_from_images(image_size: int) -> None:
    from hieros_lib.envs import Rooms
    from hieros_lib.training._goals import _agent_cell

    env = Rooms(image_size=image_size, reward=True)
    env.reset()
    cells, images = [], []
    for action in [1, 1, 2, 2, 0, 3, 3, 3]:
        images.append(env.render())
        cells.append(env.cell_index(env.info()["cell"]))
        env.step(action)
    found = _agent_cell(torch.as_tensor(np.stack(images)), env.free)
    assert found.tolist() == cells
    blurred = torch.as_tensor(np.stack(images)).float() / 255 * 0.5  # a dim agent still beats the floor
    assert _agent_cell(blurred, env.free).tolist() == cells
