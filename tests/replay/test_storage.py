"""SequenceReplay: contiguity, flags at episode borders and at the ring's wrap, no stale memory,
multi-environment order, dtypes, devices, validation, and save / load."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from hieros_lib.errors import HierosError
from hieros_lib.replay import (
    REQUIRED_FIELDS,
    ETBSampler,
    Sampler,
    SequenceReplay,
    TimeBalancedSampler,
    UniformSampler,
)


# ---- a synthetic world whose every field is a known function of (env, t) ------------------------------
def episode_length(env: int) -> int:
    return 3 + 2 * env  # env 0: 3 steps, env 1: 5, env 2: 7 ...


def truth(env: int, t: int) -> dict[str, Any]:
    """Ground truth of step t of environment env (t counts that env's steps from 0)."""
    length = episode_length(env)
    episode, pos = divmod(t, length)
    last = pos == length - 1
    return {
        "reward": float(env * 1000 + t) / 7.0,
        "is_first": pos == 0,
        "is_last": last,
        "is_terminal": last and episode % 2 == 0,  # every other episode ends by time limit
        "action": (env + t) % 4,
    }


def make_step(t: int, num_envs: int, image: bool = False) -> dict[str, np.ndarray]:
    if image:
        obs = np.zeros((num_envs, 4, 4, 3), np.uint8)
        for e in range(num_envs):
            obs[e, 0, 0, 0], obs[e, 0, 0, 1], obs[e, 0, 0, 2] = e, t % 256, t // 256
    else:
        obs = np.array([[e, t, 0.5] for e in range(num_envs)], dtype=np.float64)
    rows = [truth(e, t) for e in range(num_envs)]
    return {
        "obs": obs,
        "reward": np.array([r["reward"] for r in rows]),
        "is_first": np.array([r["is_first"] for r in rows]),
        "is_last": np.array([r["is_last"] for r in rows]),
        "is_terminal": np.array([r["is_terminal"] for r in rows]),
        "action": np.array([r["action"] for r in rows]),
    }


def fill(replay: SequenceReplay, steps: int, start: int = 0, image: bool = False) -> None:
    for t in range(start, start + steps):
        replay.add(make_step(t, replay.num_envs, image=image))


def env_and_time(batch: dict[str, torch.Tensor], image: bool = False) -> tuple[np.ndarray, np.ndarray]:
    obs = batch["obs"].numpy()
    if image:
        return obs[:, :, 0, 0, 0].astype(np.int64), obs[:, :, 0, 0, 1] + 256 * obs[:, :, 0, 0, 2].astype(
            np.int64
        )
    return obs[:, :, 0].astype(np.int64), obs[:, :, 1].astype(np.int64)


def check_all_items(replay: SequenceReplay, total: int, image: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Every item of the replay is a contiguous, stored, correctly flagged sequence of one environment."""
    rows = replay.capacity // replay.num_envs
    stored = min(total, rows)
    T, N = replay.sequence_length, replay.num_envs
    assert replay.num_items == N * max(0, stored - T + 1)
    assert len(replay) == N * stored
    if replay.num_items == 0:
        with pytest.raises(HierosError):
            replay.sample(1)
        return np.zeros((0, T), np.int64), np.zeros((0, T), np.int64)
    batch = replay.sequences(np.arange(replay.num_items))
    env, t = env_and_time(batch, image)
    # One environment per sequence, consecutive time steps.
    assert (env == env[:, :1]).all()
    assert (np.diff(t, axis=1) == 1).all()
    # Only written, not overwritten steps: the last `stored` steps of each env.
    assert t.min() >= total - stored and t.max() <= total - 1
    # Items are numbered by age: start row age k // N, environment k % N.
    k = np.arange(replay.num_items)
    assert np.array_equal(env[:, 0], k % N)
    assert np.array_equal(t[:, 0], total - stored + k // N)
    # Every field equals the ground truth at (env, t), flags included (episode borders inside sequences).
    for name in ("reward", "is_first", "is_last", "is_terminal"):
        expected = np.array([[truth(e, s)[name] for e, s in zip(er, tr)] for er, tr in zip(env, t)])
        got = batch[name].numpy()
        if name == "reward":
            np.testing.assert_allclose(got, expected.astype(np.float32), rtol=0, atol=0)
        else:
            assert np.array_equal(got, expected)
    action = batch["action"]
    expected_action = (env + t) % 4
    if replay.num_actions is None:
        assert np.array_equal(action.numpy(), expected_action)
    else:
        assert np.array_equal(action.argmax(-1).numpy(), expected_action)
        assert torch.equal(action.sum(-1), torch.ones(action.shape[:2]))
    return env, t


# ---- layout ---------------------------------------------------------------------------------------------
def test_ring_wraps_several_times_and_sequences_cross_the_wrap() -> None:
    replay = SequenceReplay(
        3 * 7, sequence_length=4, num_envs=3, num_actions=4, sampler=UniformSampler(generator=0)
    )
    total = 0
    for steps in (2, 1, 1, 5, 9, 13):  # below T, exactly T, partly full, wrapped 1..4 times
        fill(replay, steps, start=total)
        total += steps
        _, t = check_all_items(replay, total)
    # Physical row of step t is t % 7: some sequence runs across the end of the array ...
    assert ((t[:, 0] % 7) > 7 - 4).any()
    # ... and some sequence crosses an episode border (is_first inside it, not at its start).
    batch = replay.sequences(np.arange(replay.num_items))
    assert batch["is_first"][:, 1:].any()


@given(
    num_envs=st.integers(1, 3),
    sequence_length=st.integers(1, 5),
    extra_rows=st.integers(0, 6),
    steps=st.lists(st.integers(1, 9), min_size=1, max_size=5),
    discrete=st.booleans(),
)
def test_every_item_is_valid_for_any_sizes(
    num_envs: int, sequence_length: int, extra_rows: int, steps: list[int], discrete: bool
) -> None:
    rows = sequence_length + extra_rows
    replay = SequenceReplay(
        rows * num_envs,
        sequence_length=sequence_length,
        num_envs=num_envs,
        num_actions=4 if discrete else None,
        sampler=UniformSampler(generator=0),
    )
    total = 0
    for chunk in steps:
        fill(replay, chunk, start=total)
        total += chunk
        check_all_items(replay, total)
        if replay.num_items:
            _, t = env_and_time(replay.sample(5))
            assert (np.diff(t, axis=1) == 1).all() and t.min() >= total - min(total, rows)


def test_uint8_images_stay_uint8() -> None:
    replay = SequenceReplay(2 * 300, sequence_length=5, num_envs=2, sampler=UniformSampler(generator=1))
    fill(replay, 310, image=True)  # t up to 309 needs two bytes: checks the whole image is stored
    check_all_items(replay, 310, image=True)
    assert replay.fields["obs"] == (np.dtype(np.uint8), (4, 4, 3))
    batch = replay.sample(3)
    assert batch["obs"].dtype == torch.uint8 and batch["obs"].shape == (3, 5, 4, 4, 3)
    assert batch["reward"].dtype == torch.float32 and batch["is_first"].dtype == torch.bool


def test_float_obs_and_continuous_actions() -> None:
    replay = SequenceReplay(20, sequence_length=3, sampler=UniformSampler(generator=1))
    for t in range(6):
        step = make_step(t, 1)
        step["action"] = np.array([[0.5 * t, -1.0]])
        step["subgoal"] = np.full((1, 2), t, dtype=np.float64)  # an extra field
        replay.add(step)
    batch = replay.sample(4)
    assert batch["obs"].dtype == torch.float32 and batch["action"].dtype == torch.float32
    assert batch["action"].shape == (4, 3, 2) and batch["subgoal"].shape == (4, 3, 2)
    assert torch.equal(batch["action"][..., 0], 0.5 * batch["obs"][..., 1])
    assert torch.equal(batch["subgoal"][..., 0], batch["obs"][..., 1])


def test_integer_actions_without_num_actions_come_back_as_indices() -> None:
    replay = SequenceReplay(10, sequence_length=2, sampler=UniformSampler(generator=1))
    fill(replay, 5)
    batch = replay.sample(6)
    assert batch["action"].dtype == torch.int64 and batch["action"].shape == (6, 2)


def test_batches_go_to_the_requested_device() -> None:
    replay = SequenceReplay(10, sequence_length=2, num_actions=4, sampler=UniformSampler(generator=1))
    fill(replay, 5)
    batch = replay.sample(3, device="meta")
    assert all(v.device.type == "meta" for v in batch.values())
    assert batch["obs"].shape == (3, 2, 3)
    if torch.cuda.is_available():  # pragma: no cover - exercised on GPU machines
        assert replay.sample(3, device="cuda")["obs"].is_cuda


# ---- samplers under the storage -------------------------------------------------------------------------
def test_time_balanced_sampler_counts_visits_of_the_stored_items() -> None:
    sampler = TimeBalancedSampler(temperature=2.0, generator=3)
    replay = SequenceReplay(2 * 6, sequence_length=3, num_envs=2, sampler=sampler)
    fill(SequenceReplay(2 * 6, sequence_length=3, num_envs=2, sampler=sampler), 20)
    assert sampler.num_known == 2 * (6 - 3 + 1)  # told about drops on insertion, not only when sampling
    sampler.load_state_dict(TimeBalancedSampler(temperature=2.0, generator=3).state_dict())
    counts: dict[tuple[int, int], int] = {}
    for total in range(15):
        fill(replay, 1, start=total)
        if replay.num_items:
            env, t = env_and_time(replay.sample(4))
            for e, s in zip(env[:, 0], t[:, 0]):
                counts[(int(e), int(s))] = counts.get((int(e), int(s)), 0) + 1
    # The sampler's counters, oldest item first, are the visits of the items stored now.
    all_env, all_t = env_and_time(replay.sequences(np.arange(replay.num_items)))
    expected = [counts.get((int(e), int(s)), 0) for e, s in zip(all_env[:, 0], all_t[:, 0])]
    assert sampler.visits(replay.num_items).tolist() == expected
    assert sum(expected) < sum(counts.values())  # some visited items were dropped


class NewestSampler:
    """A user's own sampler: always the newest item (implements the Sampler protocol)."""

    def __init__(self) -> None:
        self.inserted = 0

    def sample(self, num_items: int, batch_size: int) -> np.ndarray:
        return np.full(batch_size, num_items - 1, dtype=np.int64)

    def on_insert(self, num_new: int, num_items: int | None = None) -> None:
        self.inserted += num_new

    def state_dict(self) -> dict[str, Any]:
        return {"inserted": self.inserted}

    def load_state_dict(self, state: Any) -> None:
        self.inserted = int(state["inserted"])


def test_a_users_own_sampler_plugs_in() -> None:
    sampler = NewestSampler()
    assert isinstance(sampler, Sampler)
    replay = SequenceReplay(2 * 5, sequence_length=3, num_envs=2, sampler=sampler)
    fill(replay, 12)
    env, t = env_and_time(replay.sample(2))
    assert (env[:, 0] == 1).all() and (t[:, -1] == 11).all()  # the newest sequence of the last env
    assert sampler.inserted == 2 * (12 - 3 + 1)  # told about every new item


def test_a_sampler_returning_bad_indices_is_caught() -> None:
    class Broken(NewestSampler):
        def sample(self, num_items: int, batch_size: int) -> np.ndarray:
            return np.full(batch_size, num_items, dtype=np.int64)

    replay = SequenceReplay(10, sequence_length=2, sampler=Broken())
    fill(replay, 4)
    with pytest.raises(HierosError, match="indices"):
        replay.sample(2)
    with pytest.raises(HierosError):
        replay.sequences(np.array([0.5]))


# ---- validation -----------------------------------------------------------------------------------------
def test_constructor_validation() -> None:
    for kwargs in (
        {"capacity": 0, "sequence_length": 1},
        {"capacity": 10, "sequence_length": 11},
        {"capacity": 10, "sequence_length": 2, "num_envs": 3},
        {"capacity": 10, "sequence_length": 2, "num_actions": 0},
        {"capacity": 10, "sequence_length": 2, "sampler": object()},
    ):
        with pytest.raises(HierosError):
            SequenceReplay(**kwargs)


def _bad_steps() -> list[dict[str, Any]]:
    good = make_step(100, 2)
    bad: list[dict[str, Any]] = []
    for key in REQUIRED_FIELDS:  # a missing field
        bad.append({k: v for k, v in good.items() if k != key})
    bad.append({**good, "extra": np.zeros(2)})  # a field not there before
    bad.append({**good, "reward": np.zeros(3)})  # wrong leading axis
    bad.append({**good, "obs": np.zeros((2, 4))})  # per-step shape changed
    bad.append({**good, "obs": np.array([[0, 1, np.nan], [0, 1, 2]])})  # NaN observation
    bad.append({**good, "reward": np.array([np.inf, 0.0])})
    bad.append({**good, "is_first": np.array([2, 0])})  # not a flag
    bad.append({**good, "action": np.array([4, 0])})  # out of [0, num_actions)
    bad.append({**good, "action": np.array([0.5, 1.0])})  # not an index
    bad.append({**good, "obs": np.array([["a", "b", "c"]] * 2)})  # not numbers
    return bad


def test_bad_steps_raise_and_change_nothing() -> None:
    replay = SequenceReplay(
        2 * 6, sequence_length=2, num_envs=2, num_actions=4, sampler=UniformSampler(generator=0)
    )
    fill(replay, 8)
    before = replay.sequences(np.arange(replay.num_items))
    for step in _bad_steps():
        with pytest.raises(HierosError):
            replay.add(step)
    after = replay.sequences(np.arange(replay.num_items))
    assert len(replay) == 12 and replay.total_steps == 16
    assert all(torch.equal(before[k], after[k]) for k in before)
    fill(replay, 1, start=8)  # still usable
    check_all_items(replay, 9)


def test_tensors_are_accepted_as_input() -> None:
    replay = SequenceReplay(10, sequence_length=2, num_actions=4, sampler=UniformSampler(generator=0))
    for t in range(4):
        replay.add({k: torch.as_tensor(v) for k, v in make_step(t, 1).items()})
    check_all_items(replay, 4)


# ---- save / load ----------------------------------------------------------------------------------------
def _replay(sampler: Sampler, **kwargs: Any) -> SequenceReplay:
    return SequenceReplay(3 * 8, sequence_length=3, num_envs=3, num_actions=4, sampler=sampler, **kwargs)


@pytest.mark.parametrize("make_sampler", [UniformSampler, TimeBalancedSampler, ETBSampler])
@pytest.mark.parametrize("steps", [5, 11])  # part full, wrapped
def test_save_load_round_trip_resumes_the_same_stream(tmp_path: Path, make_sampler: Any, steps: int) -> None:
    a = _replay(make_sampler(generator=5))
    fill(a, steps)
    for _ in range(3):
        a.sample(4)
    path = tmp_path / "replay.npz"
    a.save(path)
    assert not (tmp_path / "replay.npz.tmp").exists()
    b = _replay(make_sampler(generator=99))
    b.load(path)
    assert len(b) == len(a) and b.num_items == a.num_items and b.total_steps == a.total_steps
    for _ in range(2):  # same draws, same data
        x, y = a.sample(5), b.sample(5)
        assert all(torch.equal(x[k], y[k]) for k in x)
    fill(a, 6, start=steps)  # and the ring continues in the same place
    fill(b, 6, start=steps)
    check_all_items(b, steps + 6)
    x, y = a.sample(5), b.sample(5)
    assert all(torch.equal(x[k], y[k]) for k in x)


def test_save_load_of_an_empty_replay(tmp_path: Path) -> None:
    a = _replay(UniformSampler(generator=0))
    a.save(tmp_path / "empty.npz")
    b = _replay(UniformSampler(generator=1))
    b.load(tmp_path / "empty.npz")
    assert len(b) == 0 and b.num_items == 0
    fill(b, 4)
    check_all_items(b, 4)


def _rewrite(src: Path, dst: Path, edit: Any) -> Path:
    with np.load(src) as npz:
        arrays = {k: npz[k] for k in npz.files}
    meta = json.loads(str(arrays["meta"]))
    edit(arrays, meta)
    arrays["meta"] = np.array(json.dumps(meta))
    with open(dst, "wb") as handle:
        np.savez(handle, **arrays)
    return dst


def test_corrupt_or_mismatching_files_raise_and_keep_memory(tmp_path: Path) -> None:
    source = _replay(TimeBalancedSampler(generator=1))
    fill(source, 10)
    source.sample(4)
    good = tmp_path / "good.npz"
    source.save(good)
    raw = good.read_bytes()
    bad_files = {
        "missing": tmp_path / "nope.npz",
        "garbage": tmp_path / "garbage.npz",
        "truncated": tmp_path / "truncated.npz",
        "empty": tmp_path / "empty.npz",
    }
    bad_files["garbage"].write_bytes(b"not a zip file at all" * 10)
    bad_files["truncated"].write_bytes(raw[: len(raw) // 2])
    bad_files["empty"].write_bytes(b"")

    def set_meta(key: str, value: Any) -> Any:
        return lambda arrays, meta: meta.__setitem__(key, value)

    edits = {
        "version": set_meta("version", 2),
        "format": set_meta("format", "something else"),
        "capacity": set_meta("capacity", 48),
        "sequence_length": set_meta("sequence_length", 4),
        "num_actions": set_meta("num_actions", 5),
        "filled_rows": set_meta("filled_rows", 9),
        "fields": set_meta("fields", {"obs": {"dtype": "<f4", "shape": [3]}}),
        "dropped_array": lambda arrays, meta: arrays.pop("field.reward"),
        "wrong_dtype": lambda arrays, meta: arrays.__setitem__(
            "field.reward", arrays["field.reward"].astype("<f8")
        ),
        "wrong_shape": lambda arrays, meta: arrays.__setitem__("field.obs", arrays["field.obs"][:, :2]),
        "nan_obs": lambda arrays, meta: arrays["field.obs"].__setitem__((0, 0, 0), np.nan),
        "bad_action": lambda arrays, meta: arrays["field.action"].__setitem__((0, 0), 7),
        "sampler_kind": lambda arrays, meta: meta["sampler"].__setitem__("kind", "etbs"),
        "sampler_visits": lambda arrays, meta: arrays.__setitem__(
            "sampler.visits", -arrays["sampler.visits"] - 1
        ),
        "no_meta": lambda arrays, meta: None,
    }
    for name, edit in edits.items():
        bad_files[name] = _rewrite(good, tmp_path / f"{name}.npz", edit)
    with np.load(bad_files["no_meta"]) as npz:  # really drop the metadata for this one
        arrays = {k: npz[k] for k in npz.files if k != "meta"}
    with open(bad_files["no_meta"], "wb") as handle:
        np.savez(handle, **arrays)

    target_sampler = TimeBalancedSampler(generator=7)
    target = _replay(target_sampler)
    fill(target, 13, start=50)
    target.sample(3)
    before = target.sequences(np.arange(target.num_items))
    sampler_before = target_sampler.state_dict()
    for name, path in bad_files.items():
        with pytest.raises(HierosError):
            target.load(path)
        after = target.sequences(np.arange(target.num_items))
        assert all(torch.equal(before[k], after[k]) for k in before), name
        state = target_sampler.state_dict()
        assert (
            np.array_equal(state["visits"], sampler_before["visits"])
            and state["rng"] == sampler_before["rng"]
        )
    target.load(good)  # and the good file still loads into it
    check_all_items(target, 10)


def test_import_is_a_leaf() -> None:
    code = (
        "import sys, hieros_lib.replay\n"
        "bad = sorted(m for m in sys.modules if (m.startswith('hieros_lib.') and not m.startswith("
        "('hieros_lib.replay', 'hieros_lib.errors', 'hieros_lib._io', 'hieros_lib._version'))) "
        "or m.split('.')[0] in "
        "('matplotlib', 'gymnasium', 'triton', 'scipy'))\n"
        "assert not bad, bad\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
