"""Replay and samplers under bad input: no silent conversions, failed calls change nothing, clear errors."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from hieros_lib.errors import HierosError
from hieros_lib.replay import ETBSampler, SequenceReplay, TimeBalancedSampler, UniformSampler


def step(n: int = 2, **fields: Any) -> dict[str, Any]:
    out: dict[str, Any] = {
        "obs": np.zeros((n, 4, 4, 3), np.uint8),
        "reward": np.zeros(n, np.float32),
        "is_first": np.zeros(n, bool),
        "is_last": np.zeros(n, bool),
        "is_terminal": np.zeros(n, bool),
        "action": np.zeros(n, np.int64),
    }
    out.update(fields)
    return out


# ---- dtypes: the first add fixes them, later adds may not change meaning ------------------------------
def test_float_into_uint8_images_is_rejected() -> None:
    replay = SequenceReplay(20, sequence_length=2, num_envs=2, num_actions=2)
    replay.add(step())
    for bad in (np.full((2, 4, 4, 3), 0.7), np.full((2, 4, 4, 3), 300.0)):
        with pytest.raises(HierosError, match="obs"):
            replay.add(step(obs=bad))
    assert len(replay) == 2


def test_uint8_into_float_vectors_is_rejected() -> None:
    replay = SequenceReplay(20, sequence_length=2, num_envs=2, num_actions=2)
    replay.add(step(obs=np.full((2, 3), 0.5, np.float32)))
    with pytest.raises(HierosError, match="obs"):
        replay.add(step(obs=np.full((2, 3), 200, np.uint8)))
    replay.add(step(obs=np.full((2, 3), 0.25, np.float64)))  # floats of any precision: rounded to float32
    assert len(replay) == 4


def test_float_into_an_int_extra_field_is_rejected() -> None:
    replay = SequenceReplay(20, sequence_length=2, num_envs=2, num_actions=2)
    replay.add(step(count=np.array([1, 2], np.int64)))
    with pytest.raises(HierosError, match="count"):
        replay.add(step(count=np.array([1.9, 2.0])))
    with pytest.raises(HierosError, match="count"):
        replay.add(step(count=np.array([2**63 + 5, 0], np.uint64)))  # does not fit int64
    replay.add(step(count=np.array([3, 4], np.int32)))  # a narrower int fits
    assert len(replay) == 4


def test_integer_rewards_only_where_float32_is_exact() -> None:
    replay = SequenceReplay(20, sequence_length=2, num_envs=2, num_actions=2)
    replay.add(step(reward=np.array([1, -3])))
    with pytest.raises(HierosError, match="reward"):
        replay.add(step(reward=np.array([2**24 + 1, 0])))


DTYPES = [np.uint8, np.int32, np.int64, np.float16, np.float32, np.float64, np.bool_]


def values_of(dtype: type, draw: st.DrawFn) -> np.ndarray:
    if dtype is np.bool_:
        return np.array(draw(st.lists(st.booleans(), min_size=6, max_size=6)), bool).reshape(2, 3)
    if np.issubdtype(dtype, np.integer):
        info = np.iinfo(dtype)
        ints = st.integers(max(info.min, -(2**40)), min(info.max, 2**40))
        return np.array(draw(st.lists(ints, min_size=6, max_size=6)), dtype).reshape(2, 3)
    floats = st.sampled_from([0.0, 0.7, 1.9, -2.5, 300.0, 1e-3, 65000.0])
    return np.array(draw(st.lists(floats, min_size=6, max_size=6)), dtype).reshape(2, 3)


@given(st.data(), st.sampled_from(["obs", "extra"]))
def test_nothing_stored_is_ever_silently_converted(data: st.DataObject, field: str) -> None:
    """Random dtype sequences: an add either raises or stores the same numbers (floats rounded to float32)."""
    replay = SequenceReplay(40, sequence_length=1, num_envs=2, num_actions=2)
    first_kind: str | None = None
    for _ in range(data.draw(st.integers(1, 6))):
        dtype = data.draw(st.sampled_from(DTYPES))
        values = values_of(dtype, data.draw)
        before = len(replay)
        try:
            replay.add(step(**{field: values}))
        except HierosError:
            assert len(replay) == before
            continue
        n = replay.num_items
        stored = replay.sequences([n - 2, n - 1])[field][:, 0].numpy()  # the newest step of both envs
        kind, stored_kind = values.dtype.kind, stored.dtype.kind
        first_kind = first_kind or stored_kind
        assert stored_kind == first_kind  # the first add fixed the storage
        if stored_kind == "f":
            assert kind == "f", f"{values.dtype} was mixed into a float field"
            assert np.array_equal(stored, values.astype(np.float32))
        elif stored_kind == "b":
            assert kind in "biu" and np.array_equal(stored, values.astype(bool))
            assert np.array_equal(stored.astype(np.int64), values.astype(np.int64))
        else:
            assert kind in "iu", f"{values.dtype} was truncated into an integer field"
            assert np.array_equal(stored.astype(np.int64), values.astype(np.int64))


# ---- failed calls leave replay and sampler unchanged -------------------------------------------------
def test_a_failed_sample_counts_no_visits() -> None:
    sampler = TimeBalancedSampler(generator=0)
    replay = SequenceReplay(20, sequence_length=2, num_envs=2, num_actions=2, sampler=sampler)
    for _ in range(5):
        replay.add(step())
    visits = sampler.visits(replay.num_items)
    state = sampler.state_dict()
    with pytest.raises(HierosError, match="device"):
        replay.sample(3, device="nope")
    assert np.array_equal(sampler.visits(replay.num_items), visits)
    assert sampler.state_dict()["rng"] == state["rng"]


def test_load_rejects_a_sampler_state_for_another_number_of_items(tmp_path: Path) -> None:
    replay = SequenceReplay(20, sequence_length=2, num_envs=2, num_actions=2, sampler=TimeBalancedSampler())
    for _ in range(4):
        replay.add(step())
    path = tmp_path / "replay.npz"
    replay.save(path)
    with np.load(path) as npz:
        arrays = {k: npz[k] for k in npz.files}
    arrays["sampler.visits"] = np.zeros(3, np.int64)  # the file stores 6 items
    np.savez(path, **arrays)
    fresh = SequenceReplay(20, sequence_length=2, num_envs=2, num_actions=2, sampler=TimeBalancedSampler())
    with pytest.raises(HierosError, match="sampler"):
        fresh.load(path)
    assert len(fresh) == 0 and fresh.sampler.num_known == 0  # type: ignore[attr-defined]
    for _ in range(3):
        fresh.add(step())  # and it still works


def test_add_leaves_storage_unchanged_when_the_sampler_refuses() -> None:
    class Refuses(UniformSampler):
        def on_insert(self, num_new: int, num_items: int | None = None) -> None:
            raise HierosError("num_items: expected fewer")

    replay = SequenceReplay(20, sequence_length=2, num_envs=2, num_actions=2, sampler=Refuses())
    replay.add(step())
    with pytest.raises(HierosError):
        replay.add(step())
    assert len(replay) == 2 and replay.total_steps == 2


# ---- files ------------------------------------------------------------------------------------------
def test_save_errors_are_library_errors_and_leave_nothing_behind(tmp_path: Path) -> None:
    replay = SequenceReplay(20, sequence_length=2, num_envs=2, num_actions=2)
    replay.add(step())
    with pytest.raises(HierosError, match="directory"):
        replay.save(tmp_path)
    with pytest.raises(HierosError, match="could not write"):
        replay.save(tmp_path / "missing" / "replay.npz")
    assert sorted(os.listdir(tmp_path)) == []
    if os.geteuid() != 0:  # root ignores permissions
        locked = tmp_path / "locked"
        locked.mkdir(mode=0o500)
        with pytest.raises(HierosError, match="could not write"):
            replay.save(locked / "replay.npz")


def test_save_over_an_existing_file_keeps_it_when_writing_fails(tmp_path: Path) -> None:
    replay = SequenceReplay(20, sequence_length=2, num_envs=2, num_actions=2)
    replay.add(step())
    path = tmp_path / "replay.npz"
    replay.save(path)
    good = path.read_bytes()

    class Broken(UniformSampler):
        def state_dict(self) -> dict[str, Any]:
            return {"kind": "uniform", "rng": object()}  # not JSON

    replay.sampler = Broken()
    with pytest.raises(HierosError, match="state_dict"):
        replay.save(path)
    assert path.read_bytes() == good and sorted(os.listdir(tmp_path)) == ["replay.npz"]


def test_loading_a_npy_file_is_a_library_error(tmp_path: Path) -> None:
    path = tmp_path / "x.npy"
    np.save(path, np.zeros(3))
    replay = SequenceReplay(20, sequence_length=2, num_envs=2, num_actions=2)
    with pytest.raises(HierosError, match="npz"):
        replay.load(path)


# ---- numbers: numpy scalars accepted, bools and absurd sizes rejected -------------------------------
def test_samplers_take_numpy_scalars_and_refuse_bools_and_huge_sizes() -> None:
    for sampler in (UniformSampler(generator=0), ETBSampler(generator=0)):
        idx = sampler.sample(np.int64(10), np.int64(4))
        assert idx.shape == (4,)
        with pytest.raises(HierosError, match="num_items"):
            sampler.sample(2**63, 4)
        with pytest.raises(HierosError, match="num_items"):
            sampler.sample(True, 4)
    assert ETBSampler(temperature=np.float32(0.3)).temperature == pytest.approx(0.3)
    assert TimeBalancedSampler(temperature=np.int64(8)).temperature == 8.0
    for bad in (True, np.bool_(False)):
        with pytest.raises(HierosError, match="temperature"):
            ETBSampler(temperature=bad)  # type: ignore[arg-type]
        with pytest.raises(HierosError, match="temperature"):
            TimeBalancedSampler(temperature=bad)  # type: ignore[arg-type]
    replay = SequenceReplay(np.int64(20), sequence_length=np.int32(2), num_envs=np.int64(2))
    assert replay.capacity == 20
    with pytest.raises(HierosError, match="num_envs"):
        SequenceReplay(20, sequence_length=2, num_envs=True)  # type: ignore[arg-type]
