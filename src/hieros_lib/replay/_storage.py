"""Sequence replay storage: a ring of steps from ``N`` parallel environments, sampled as ``(B, T, ...)``."""

from __future__ import annotations

import json
import logging
import os
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch

from hieros_lib._io import atomic_write
from hieros_lib.errors import HierosError, check, check_int
from hieros_lib.replay._samplers import Sampler, UniformSampler

__all__ = ["REQUIRED_FIELDS", "SequenceReplay"]

logger = logging.getLogger(__name__)

REQUIRED_FIELDS: tuple[str, ...] = ("obs", "reward", "is_first", "is_last", "is_terminal", "action")
"""The step fields every :meth:`SequenceReplay.add` must carry (see the docs' architecture page)."""

_FORMAT = "hieros_lib.replay.SequenceReplay"
_FORMAT_VERSION = 1
_FLAGS = ("is_first", "is_last", "is_terminal")


def _to_numpy(value: Any, name: str) -> np.ndarray:
    if isinstance(value, torch.Tensor):
        return value.detach().cpu().numpy()
    try:
        return np.asarray(value)
    except (TypeError, ValueError) as err:
        raise HierosError(f"step[{name!r}]: expected an array-like, got {type(value).__name__}") from err


def _fit(name: str, arr: np.ndarray, dtype: np.dtype) -> np.ndarray:
    """``arr`` in the storage dtype ``dtype``, converted only where the values keep their meaning.

    Floats of any precision go into a float field (rounded to its precision); integers go into an integer
    field that holds their values; ``bool`` or 0/1 integers into a ``bool`` field; integers go into the
    float32 ``reward`` only where float32 holds them exactly. Anything else raises.
    """
    field = f"step[{name!r}]"
    kind, target = arr.dtype.kind, dtype.kind
    if arr.dtype == dtype:
        return arr
    if target == "f":
        if kind == "f":
            return arr.astype(dtype)
        if name == "reward" and kind in "iu":
            converted = arr.astype(dtype)
            check(
                bool((converted.astype(arr.dtype) == arr).all()),
                field,
                f"integers that {dtype} holds exactly",
                got=lambda: arr.tolist(),
            )
            return converted
        check(False, field, f"a float array (the field is stored as {dtype})", got=arr.dtype)
    if target == "b":
        check(
            kind == "b" or (kind in "iu" and bool(np.isin(arr, (0, 1)).all())),
            field,
            "bool (or 0/1) values",
            got=arr.dtype,
        )
        return arr.astype(bool)
    if target in "iu":
        info = np.iinfo(dtype)
        check(
            kind in "iu" and (arr.size == 0 or (int(arr.min()) >= info.min and int(arr.max()) <= info.max)),
            field,
            f"integers that fit the field's dtype {dtype}",
            got=lambda: f"{arr.dtype} values in [{arr.min()}, {arr.max()}]" if kind in "iu" else arr.dtype,
        )
        return arr.astype(dtype)
    raise HierosError(f"{field}: expected dtype {dtype}, got {arr.dtype}")


def _check_sampler_items(sampler: Sampler, num_items: int) -> None:
    """A sampler that tracks items (``num_known``) must track exactly the ``num_items`` stored."""
    known = getattr(sampler, "num_known", None)
    if known is not None:
        check(
            known == num_items,
            "sampler",
            f"state for the {num_items} items stored in the file",
            got=f"a state for {known} items",
        )


def _check_device(device: torch.device | str | None) -> torch.device | None:
    if device is None:
        return None
    try:
        return torch.device(device)
    except (RuntimeError, TypeError) as err:
        message = f"device: expected a torch device such as 'cpu' or 'cuda:0', got {device!r}"
        raise HierosError(message) from err


class SequenceReplay:
    """Replay of fixed-length sequences over steps from ``num_envs`` parallel environments.

    **Layout.** Every :meth:`add` writes one step for each environment (a row); the storage is a ring of
    ``capacity // num_envs`` rows, so each environment keeps its last ``capacity // num_envs`` steps in
    order, and the oldest row is overwritten once the ring is full.

    **Items.** An item is a valid start of a sequence of ``sequence_length`` (``T``) consecutive steps of
    one environment, all of them stored now. With ``R`` rows stored there are
    ``num_items = num_envs * (R - T + 1)`` items (0 while ``R < T``), numbered by age: item ``k`` starts at
    the ``k // num_envs``-th oldest stored row, in environment ``k % num_envs``. A sampler
    (:class:`~hieros_lib.replay.Sampler`) picks item indices; every returned sequence therefore lies in
    written, not-yet-overwritten memory, and never mixes environments.

    **Episode borders.** Sequences may cross episode borders; the stored ``is_first`` flag marks the first
    step of the new episode (and ``is_last`` / ``is_terminal`` the last one of the old). Flags are returned
    exactly as stored, also across the wrap of the ring. A sampled sequence usually starts mid-episode,
    so a model should start it from its initial state; ``is_first[:, 0]`` is not forced to true.

    **Step fields** (each with a leading ``num_envs`` axis in :meth:`add`; dtypes as stored):

    - ``obs``: ``uint8`` images ``(H, W, C)`` are kept as ``uint8`` (4x smaller than float); float
      vectors are stored as ``float32``. Non-finite float observations are rejected.
    - ``reward``: ``float32`` scalar, received on arriving at ``obs``.
    - ``is_first``, ``is_last``, ``is_terminal``: ``bool`` scalars.
    - ``action``: the action chosen after seeing ``obs``. With ``num_actions=A`` it is a discrete action
      index, stored as ``int64`` and returned one-hot as ``float32`` ``(B, T, A)`` (what world models
      take). Without ``num_actions``, float vectors are stored and returned as ``float32``; integer
      indices are stored and returned as ``int64`` ``(B, T)``.
    - Any extra field (e.g. a subgoal) is stored alongside: floats as ``float32``, other dtypes as given.

    **Dtypes.** The first :meth:`add` fixes every field's storage dtype as listed above. Every later value
    must fit that dtype without changing meaning, or :meth:`add` raises: a float field takes floats of any
    precision (rounded to ``float32``, the one documented conversion; the reward also takes integers
    that ``float32`` holds exactly), an integer field takes integers whose values it can hold, a ``bool``
    field takes ``bool`` or 0/1 integers. A float never goes into an integer field (no truncation), and
    integer images never go into a float field (no mixing of the 0-255 and float scales).

    Args:
        capacity: Total number of steps kept (over all environments); a multiple of ``num_envs`` with
            ``capacity // num_envs >= sequence_length``.
        sequence_length: ``T``, the length of every sampled sequence.
        num_envs: ``N``, how many environments each :meth:`add` carries.
        sampler: Chooses the items; defaults to :class:`~hieros_lib.replay.UniformSampler` (unseeded).
        num_actions: Number of discrete actions, or ``None`` for continuous (or raw integer) actions.

    Raises:
        HierosError: On invalid sizes.

    Examples:
        >>> import numpy as np
        >>> from hieros_lib.replay import ETBSampler, SequenceReplay
        >>> replay = SequenceReplay(100, sequence_length=4, num_envs=2, num_actions=3,
        ...                         sampler=ETBSampler(generator=0))
        >>> for t in range(10):
        ...     replay.add({"obs": np.zeros((2, 8, 8, 1), np.uint8), "reward": np.zeros(2),
        ...                 "is_first": np.full(2, t == 0), "is_last": np.zeros(2, bool),
        ...                 "is_terminal": np.zeros(2, bool), "action": np.array([0, 2])})
        >>> replay.num_items  # 2 envs x (10 - 4 + 1) starts
        14
        >>> batch = replay.sample(5)
        >>> batch["obs"].shape, batch["obs"].dtype, batch["action"].shape
        (torch.Size([5, 4, 8, 8, 1]), torch.uint8, torch.Size([5, 4, 3]))
    """

    def __init__(
        self,
        capacity: int,
        *,
        sequence_length: int,
        num_envs: int = 1,
        sampler: Sampler | None = None,
        num_actions: int | None = None,
    ) -> None:
        capacity = check_int(capacity, "capacity", minimum=1)
        sequence_length = check_int(sequence_length, "sequence_length", minimum=1)
        num_envs = check_int(num_envs, "num_envs", minimum=1)
        check(capacity % num_envs == 0, "capacity", f"a multiple of num_envs={num_envs}", got=capacity)
        check(
            capacity // num_envs >= sequence_length,
            "capacity",
            f"at least num_envs * sequence_length = {num_envs * sequence_length}",
            got=capacity,
        )
        if num_actions is not None:
            num_actions = check_int(num_actions, "num_actions", minimum=1)
        if sampler is None:
            sampler = UniformSampler()
        check(
            isinstance(sampler, Sampler), "sampler", "an object with the Sampler protocol", got=type(sampler)
        )
        self.capacity = int(capacity)
        self.sequence_length = int(sequence_length)
        self.num_envs = int(num_envs)
        self.num_actions = None if num_actions is None else int(num_actions)
        self.sampler = sampler
        self._rows = self.capacity // self.num_envs
        self._data: dict[str, np.ndarray] = {}
        self._next_row = 0  # physical row the next add writes
        self._filled = 0  # rows stored now (R)
        self._total = 0  # rows ever added

    # ------------------------------------------------------------------ sizes
    def __len__(self) -> int:
        """Number of steps stored now, over all environments."""
        return self._filled * self.num_envs

    @property
    def num_items(self) -> int:
        """Number of valid sequence starts, ``num_envs * max(0, R - T + 1)``."""
        return self.num_envs * max(0, self._filled - self.sequence_length + 1)

    @property
    def total_steps(self) -> int:
        """Number of steps ever added, over all environments (dropped ones included)."""
        return self._total * self.num_envs

    @property
    def fields(self) -> dict[str, tuple[np.dtype, tuple[int, ...]]]:
        """The stored fields, name -> (storage dtype, per-step shape); empty before the first :meth:`add`."""
        return {k: (v.dtype, tuple(v.shape[2:])) for k, v in self._data.items()}

    # ------------------------------------------------------------------ adding
    def _convert(self, step: Mapping[str, Any]) -> dict[str, np.ndarray]:
        check(isinstance(step, Mapping), "step", "a mapping of field name -> array", got=type(step))
        missing = [k for k in REQUIRED_FIELDS if k not in step]
        check(not missing, "step", f"the fields {list(REQUIRED_FIELDS)}", got=f"missing {missing}")
        if self._data:
            check(
                set(step) == set(self._data),
                "step",
                f"the same fields as before {sorted(self._data)}",
                got=sorted(step),
            )
        n = self.num_envs
        out: dict[str, np.ndarray] = {}
        for name, value in step.items():
            check(
                isinstance(name, str) and name.isidentifier(),
                "step",
                "field names that are identifiers",
                got=repr(name),
            )
            arr = _to_numpy(value, name)
            check(
                arr.ndim >= 1 and arr.shape[0] == n,
                f"step[{name!r}]",
                f"an array with leading axis num_envs={n}",
                got=arr.shape,
            )
            if name in self._data:
                spec = self._data[name]
                check(
                    arr.shape[1:] == spec.shape[2:],
                    f"step[{name!r}]",
                    f"per-step shape {spec.shape[2:]} as in earlier steps",
                    got=arr.shape[1:],
                )
                out[name] = _fit(name, arr, spec.dtype)
            else:
                out[name] = self._convert_field(name, arr)
        return out

    def _convert_field(self, name: str, arr: np.ndarray) -> np.ndarray:
        """The first value of a field: validate it and choose its storage dtype."""
        n = self.num_envs
        kind = arr.dtype.kind
        check(kind in "biuf", f"step[{name!r}]", "a bool, integer or float array", got=arr.dtype)
        if name == "obs":
            if arr.dtype == np.uint8:
                return arr
            check(kind == "f", "step['obs']", "uint8 images or float vectors", got=arr.dtype)
            return _fit(name, arr, np.dtype(np.float32))
        if name == "reward":
            check(
                arr.shape == (n,) and kind in "iuf",
                "step['reward']",
                f"a float array of shape ({n},)",
                got=f"{arr.dtype} {arr.shape}",
            )
            return _fit(name, arr, np.dtype(np.float32))
        if name in _FLAGS:
            check(arr.shape == (n,), f"step[{name!r}]", f"a bool array of shape ({n},)", got=arr.shape)
            return _fit(name, arr, np.dtype(bool))
        if name == "action":
            if self.num_actions is not None:
                check(
                    arr.shape == (n,) and kind in "iu",
                    "step['action']",
                    f"int action indices of shape ({n},) (num_actions={self.num_actions})",
                    got=f"{arr.dtype} {arr.shape}",
                )
                return _fit(name, arr, np.dtype(np.int64))
            if kind == "f":
                return _fit(name, arr, np.dtype(np.float32))
            check(
                kind in "iu" and arr.shape == (n,),
                "step['action']",
                f"float vectors (num_envs, A) or int indices ({n},)",
                got=f"{arr.dtype} {arr.shape}",
            )
            return _fit(name, arr, np.dtype(np.int64))
        if kind == "f":
            return _fit(name, arr, np.dtype(np.float32))
        return arr

    def _check_values(self, name: str, arr: np.ndarray) -> None:
        """Value rules that hold for every step of a field (after the dtype was fitted)."""
        if arr.dtype.kind == "f" and name in ("obs", "reward", "action"):
            check(bool(np.isfinite(arr).all()), f"step[{name!r}]", "finite values (no NaN / inf)")
        if name == "action" and self.num_actions is not None:
            check(
                bool(((arr >= 0) & (arr < self.num_actions)).all()),
                "step['action']",
                f"indices in [0, {self.num_actions})",
                got=lambda: arr.tolist(),
            )

    def add(self, step: Mapping[str, Any]) -> None:
        """Append one step for every environment (numpy arrays or tensors, leading axis ``num_envs``).

        The first call fixes the fields, their per-step shapes and dtypes; later calls must match. When
        the ring is full, the oldest step of every environment is dropped. Every field is validated before
        anything is written, so a rejected step leaves the storage unchanged.

        Args:
            step: ``{"obs", "reward", "is_first", "is_last", "is_terminal", "action", ...extras}``, each of
                shape ``(num_envs, ...)``.

        Raises:
            HierosError: On a missing or extra field, a wrong shape, a dtype that does not fit the field
                (see "Dtypes" in the class docs), a non-finite float observation, reward or action, or an
                action index outside ``[0, num_actions)``; or if the sampler refuses the new items.
        """
        converted = self._convert(step)
        for name, arr in converted.items():
            self._check_values(name, arr)
        filled = min(self._filled + 1, self._rows)
        if filled >= self.sequence_length:
            # The sampler hears of the new items before anything is written: if it refuses them, the
            # storage is unchanged (it validates before it changes its own state).
            self.sampler.on_insert(self.num_envs, self.num_envs * (filled - self.sequence_length + 1))
        if not self._data:
            for name, arr in converted.items():
                self._data[name] = np.zeros((self._rows, *arr.shape), dtype=arr.dtype)
        for name, arr in converted.items():
            self._data[name][self._next_row] = arr
        self._next_row = (self._next_row + 1) % self._rows
        self._filled = filled
        self._total += 1

    # ------------------------------------------------------------------ reading
    def _items_to_draw_from(self) -> int:
        """``num_items``, checked to be at least one (a full sequence is stored in every environment)."""
        n = self.num_items
        check(
            n >= 1,
            "replay",
            f"at least sequence_length={self.sequence_length} steps per environment",
            got=f"{self._filled} steps",
        )
        return n

    def sequences(
        self, indices: np.ndarray | list[int], *, device: torch.device | str | None = None
    ) -> dict[str, torch.Tensor]:
        """Gather the sequences that start at the given items.

        Args:
            indices: Item indices ``(B,)`` in ``[0, num_items)`` (``0`` the oldest; see the class docs).
            device: Where the tensors go (default CPU).

        Returns:
            ``{field: tensor (B, T, ...)}``; discrete actions one-hot ``float32`` ``(B, T, num_actions)``.

        Raises:
            HierosError: If an index is out of range or not an integer, or nothing was added yet.
        """
        device = _check_device(device)
        idx = np.asarray(indices)
        n = self._items_to_draw_from()
        check(
            idx.ndim == 1 and idx.size >= 1 and idx.dtype.kind in "iu",
            "indices",
            "a non-empty 1-D integer array",
            got=f"{idx.dtype} {idx.shape}",
        )
        check(
            bool(((idx >= 0) & (idx < n)).all()),
            "indices",
            f"values in [0, num_items={n})",
            got=f"min {idx.min()}, max {idx.max()}",
        )
        idx = idx.astype(np.int64)
        oldest = (self._next_row - self._filled) % self._rows
        start_age, env = np.divmod(idx, self.num_envs)
        rows = (oldest + start_age[:, None] + np.arange(self.sequence_length)) % self._rows
        envs = env[:, None]
        out: dict[str, torch.Tensor] = {}
        for name, arr in self._data.items():
            tensor = torch.from_numpy(np.ascontiguousarray(arr[rows, envs]))
            if name == "action" and self.num_actions is not None:
                tensor = torch.nn.functional.one_hot(tensor, self.num_actions).to(torch.float32)
            out[name] = tensor
        if device is not None and device.type != "cpu":
            try:
                out = {name: tensor.to(device) for name, tensor in out.items()}
            except (RuntimeError, AssertionError) as err:  # e.g. no such CUDA device, no CUDA build
                message = f"device: expected a device this machine has, got {device} ({err})"
                raise HierosError(message) from err
        return out

    def sample(self, batch_size: int, *, device: torch.device | str | None = None) -> dict[str, torch.Tensor]:
        """Draw ``batch_size`` items with the sampler and return their sequences.

        Args:
            batch_size: ``B``.
            device: Where the tensors go (default CPU).

        Returns:
            ``{field: tensor (B, T, ...)}`` as in :meth:`sequences`.

        Raises:
            HierosError: If fewer than ``sequence_length`` steps per environment are stored, the device is
                not a valid device, or the sampler returns indices that are not ``(batch_size,)``
                integers in range. A failed call leaves the sampler as it was (no visits counted).
        """
        batch_size = check_int(batch_size, "batch_size", minimum=1)
        device = _check_device(device)
        n = self._items_to_draw_from()
        # A sampler may count the draw (visit counts): if anything after it fails, put it back as it was.
        previous = self.sampler.state_dict()
        try:
            idx = np.asarray(self.sampler.sample(n, batch_size))
            check(
                idx.shape == (batch_size,),
                "sampler.sample",
                f"an index array of shape ({batch_size},)",
                got=idx.shape,
            )
            return self.sequences(idx, device=device)
        except BaseException:
            self.sampler.load_state_dict(previous)
            raise

    # ------------------------------------------------------------------ disk
    def save(self, path: str | os.PathLike[str]) -> None:
        """Write the stored steps (oldest first) and the sampler state to an ``.npz`` file.

        The file is written to a temporary file beside ``path`` first, synced and renamed, so a crash
        never leaves a half written file under ``path`` (the previous file stays until the rename). The
        sampler's state must hold JSON data and numpy arrays at the top level (all samplers here do).

        Args:
            path: File to write (used as given; no suffix is added).

        Raises:
            HierosError: If the sampler state cannot be stored, ``path`` is a directory, or the file cannot
                be written (missing directory, no permission, disk full); ``path`` is then unchanged.
        """
        path = Path(path)
        order = (self._next_row - self._filled + np.arange(self._filled)) % self._rows
        arrays: dict[str, np.ndarray] = {f"field.{k}": v[order] for k, v in self._data.items()}
        sampler_json: dict[str, Any] = {}
        for key, value in self.sampler.state_dict().items():
            if isinstance(value, np.ndarray):
                arrays[f"sampler.{key}"] = value
            else:
                sampler_json[key] = value
        meta = {
            "format": _FORMAT,
            "version": _FORMAT_VERSION,
            "capacity": self.capacity,
            "sequence_length": self.sequence_length,
            "num_envs": self.num_envs,
            "num_actions": self.num_actions,
            "filled_rows": self._filled,
            "total_rows": self._total,
            "fields": {k: {"dtype": v.dtype.str, "shape": list(v.shape[2:])} for k, v in self._data.items()},
            "sampler": sampler_json,
            "sampler_arrays": sorted(k for k in arrays if k.startswith("sampler.")),
        }
        try:
            arrays["meta"] = np.array(json.dumps(meta))
        except (TypeError, ValueError) as err:
            raise HierosError(
                f"sampler.state_dict(): expected JSON data and numpy arrays, got {err}"
            ) from err
        atomic_write(path, lambda handle: np.savez(handle, **arrays), what="replay file")  # type: ignore[arg-type]
        logger.debug("saved %d steps of replay to %s", len(self), path)

    def load(self, path: str | os.PathLike[str]) -> None:
        """Replace the contents and the sampler state with those saved by :meth:`save`.

        The file must come from a storage with the same ``capacity``, ``sequence_length``, ``num_envs``,
        ``num_actions`` (and fields, if this one has data). Everything is read and validated before
        anything changes: on any error the storage and its sampler are left as they were.

        Args:
            path: File written by :meth:`save`.

        Raises:
            HierosError: If the file is missing, unreadable, corrupt, of another format version, or does
                not match this storage.
        """
        where = f"replay file {os.fspath(path)!r}"
        expected = "an .npz written by SequenceReplay.save"
        try:
            npz = np.load(path, allow_pickle=False)
        except (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile) as err:
            raise HierosError(f"{where}: expected {expected}, got {err!r}") from err
        if not isinstance(npz, np.lib.npyio.NpzFile):  # a plain .npy holds one array, not an archive
            raise HierosError(f"{where}: expected {expected}, got a single {type(npz).__name__}")
        try:
            with npz:
                loaded = {k: npz[k] for k in npz.files}
        except (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile) as err:
            raise HierosError(f"{where}: expected {expected}, got {err!r}") from err
        check("meta" in loaded, where, "a 'meta' entry", got=sorted(loaded))
        try:
            meta = json.loads(str(loaded["meta"]))
        except (TypeError, ValueError) as err:
            raise HierosError(f"{where}: expected JSON metadata, got {err!r}") from err
        check(
            isinstance(meta, dict) and meta.get("format") == _FORMAT,
            where,
            f"format {_FORMAT!r}",
            got=meta.get("format") if isinstance(meta, dict) else type(meta),
        )
        check(
            meta.get("version") == _FORMAT_VERSION,
            where,
            f"format version {_FORMAT_VERSION}",
            got=meta.get("version"),
        )
        for key in ("capacity", "sequence_length", "num_envs", "num_actions"):
            check(
                meta.get(key) == getattr(self, key),
                f"{where}: {key}",
                f"{getattr(self, key)} as in this replay",
                got=meta.get(key),
            )
        filled, total = meta.get("filled_rows"), meta.get("total_rows")
        check(
            isinstance(filled, int) and isinstance(total, int) and 0 <= filled <= min(total, self._rows),
            f"{where}: filled_rows",
            f"an int in [0, min(total_rows, {self._rows})]",
            got=(filled, total),
        )
        specs = meta.get("fields")
        check(isinstance(specs, dict), f"{where}: fields", "a dict", got=type(specs))
        if filled:
            check(
                set(REQUIRED_FIELDS) <= set(specs),
                f"{where}: fields",
                f"at least {list(REQUIRED_FIELDS)}",
                got=sorted(specs),
            )
        if self._data and specs:
            check(
                set(specs) == set(self._data),
                f"{where}: fields",
                f"{sorted(self._data)} as in this replay",
                got=sorted(specs),
            )
        data: dict[str, np.ndarray] = {}
        for name, spec in specs.items():
            key = f"field.{name}"
            check(key in loaded, where, f"an array {key!r}", got="missing")
            arr = loaded[key]
            check(
                isinstance(spec, dict)
                and isinstance(spec.get("shape"), list)
                and all(isinstance(d, int) for d in spec["shape"]),
                f"{where}: fields[{name!r}]",
                "a dict with a 'dtype' and an int list 'shape'",
                got=spec,
            )
            shape = tuple(spec["shape"])
            dtype = spec.get("dtype")
            check(
                arr.dtype.str == dtype and arr.shape == (filled, self.num_envs, *shape),
                f"{where}: {key}",
                f"{dtype} of shape {(filled, self.num_envs, *shape)}",
                got=f"{arr.dtype.str} {arr.shape}",
            )
            if name in self._data:
                mine = self._data[name]
                check(
                    mine.dtype == arr.dtype and mine.shape[2:] == arr.shape[2:],
                    f"{where}: {key}",
                    f"{mine.dtype} per-step shape {mine.shape[2:]} as in this replay",
                    got=f"{arr.dtype} {arr.shape[2:]}",
                )
            if name in _FLAGS:
                check(arr.dtype == np.bool_, f"{where}: {key}", "a bool array", got=arr.dtype)
            if name in ("obs", "reward", "action") and arr.dtype.kind == "f":
                check(bool(np.isfinite(arr).all()), f"{where}: {key}", "finite values")
            data[name] = arr
        if self.num_actions is not None and "action" in data and data["action"].size:
            action = data["action"]
            check(
                bool(((action >= 0) & (action < self.num_actions)).all()),
                f"{where}: field.action",
                f"indices in [0, {self.num_actions})",
            )
        sampler_state: dict[str, Any] = dict(meta.get("sampler") or {})
        for key in meta.get("sampler_arrays", []):
            check(isinstance(key, str) and key in loaded, where, f"an array {key!r}", got="missing")
            sampler_state[key.removeprefix("sampler.")] = loaded[key]
        # Sampler last, with a rollback, so a failure leaves everything as it was. The loaded sampler must
        # agree with the loaded storage on the number of items (a visit-count array of another length would
        # make a later add fail after writing).
        num_items = self.num_envs * max(0, filled - self.sequence_length + 1)
        previous = self.sampler.state_dict()
        try:
            self.sampler.load_state_dict(sampler_state)
            _check_sampler_items(self.sampler, num_items)
        except HierosError as err:
            self.sampler.load_state_dict(previous)
            raise HierosError(f"{where}: sampler state: {err}") from err
        new_data = {}
        for name, arr in data.items():
            ring = np.zeros((self._rows, *arr.shape[1:]), dtype=arr.dtype)
            ring[:filled] = arr
            new_data[name] = ring
        self._data = new_data
        self._filled, self._total = filled, total
        self._next_row = filled % self._rows
        logger.debug("loaded %d steps of replay from %s", len(self), path)

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(capacity={self.capacity}, sequence_length={self.sequence_length}, "
            f"num_envs={self.num_envs}, steps={len(self)}, items={self.num_items}, "
            f"sampler={type(self.sampler).__name__})"
        )
