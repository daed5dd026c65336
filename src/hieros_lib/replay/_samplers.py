"""Samplers that choose which stored items to replay: uniform, TWM's visit-count sampler and ETBS.

A sampler never sees the data. It is told how many items exist (items are numbered by age: ``0`` is the
oldest item still stored, ``num_items - 1`` the newest) and returns item indices, so it can sit under any
buffer. Samplers that keep per-item state (the visit counts of :class:`TimeBalancedSampler`) are told about
insertions through :meth:`Sampler.on_insert`; items that left the buffer are the oldest ones, so a smaller
``num_items`` than the sampler has seen means the oldest items were dropped.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, Protocol, runtime_checkable

import numpy as np

from hieros_lib.errors import HierosError, check, check_float, check_int, is_int

__all__ = [
    "ETBSampler",
    "Sampler",
    "TimeBalancedSampler",
    "UniformSampler",
    "etbs_cdf",
]

_BIT_GENERATORS = ("PCG64", "PCG64DXSM", "MT19937", "Philox", "SFC64")


@runtime_checkable
class Sampler(Protocol):
    """What a replay storage asks of a sampler; implement it to plug in your own.

    Items are numbered by age: ``0`` is the oldest item still stored, ``num_items - 1`` the newest. When a
    buffer is full and drops its oldest items, the remaining items are renumbered (the oldest still stored
    is ``0`` again).
    """

    def sample(self, num_items: int, batch_size: int) -> np.ndarray:
        """Return ``batch_size`` item indices in ``[0, num_items)`` as an ``int64`` array ``(batch_size,)``.

        A sampler that counts draws (visit counts) records this draw itself.
        """
        ...

    def on_insert(self, num_new: int, num_items: int | None = None) -> None:
        """Tell the sampler that ``num_new`` items were appended at the newest end.

        ``num_items`` (optional) is the number of items stored afterwards; if it is smaller than the number
        the sampler has seen, the difference are the oldest items, which the buffer dropped.
        """
        ...

    def state_dict(self) -> dict[str, Any]:
        """Everything needed to continue the same stream of draws (a fresh copy, JSON data and arrays)."""
        ...

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore a :meth:`state_dict`; raises :class:`~hieros_lib.errors.HierosError` on a bad one."""
        ...


def _make_generator(generator: int | np.random.Generator | None) -> np.random.Generator:
    if isinstance(generator, np.random.Generator):
        return generator
    if generator is None:
        return np.random.default_rng()
    check(
        is_int(generator) and int(generator) >= 0,
        "generator",
        "a non-negative int seed, a numpy.random.Generator or None",
        got=repr(generator),
    )
    return np.random.default_rng(int(generator))


def _rng_state(rng: np.random.Generator) -> dict[str, Any]:
    state = rng.bit_generator.state
    # Deep-copy through plain containers so later draws cannot change a saved state.
    return _plain_copy(state)


def _plain_copy(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _plain_copy(v) for k, v in value.items()}
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, (list, tuple)):
        return [_plain_copy(v) for v in value]
    if isinstance(value, np.integer):
        return int(value)
    return value


def _rng_from_state(state: Any) -> np.random.Generator:
    check(isinstance(state, Mapping), "state['rng']", "a numpy bit-generator state dict", got=type(state))
    name = state.get("bit_generator")
    check(name in _BIT_GENERATORS, "state['rng']['bit_generator']", f"one of {_BIT_GENERATORS}", got=name)
    bit_generator = getattr(np.random, name)()
    try:
        bit_generator.state = dict(state)
    except (TypeError, ValueError, KeyError) as err:
        raise HierosError(f"state['rng']: expected a valid {name} state, got {err}") from err
    return np.random.Generator(bit_generator)


# The most items a sampler indexes: indices are computed through float64, exact up to 2**53.
_MAX_ITEMS = 2**53


def _check_sample_args(num_items: int, batch_size: int) -> None:
    check(
        is_int(num_items) and 1 <= num_items <= _MAX_ITEMS,
        "num_items",
        "an int in [1, 2**53] (there must be something to sample)",
        got=lambda: repr(num_items),
    )
    check_int(batch_size, "batch_size", minimum=1)


def _check_kind(state: Mapping[str, Any], kind: str) -> None:
    check(isinstance(state, Mapping), "state", "a mapping from state_dict()", got=type(state))
    check(state.get("kind") == kind, "state['kind']", repr(kind), got=repr(state.get("kind")))
    check("rng" in state, "state", "a 'rng' entry", got=sorted(state))


def _index_from_unit(u: np.ndarray, num_items: int) -> np.ndarray:
    """Map draws ``u`` in ``[0, 1]`` to item indices: item ``k`` owns ``[k / n, (k + 1) / n)``."""
    idx = np.floor(u * num_items).astype(np.int64)
    return np.clip(idx, 0, num_items - 1)


class UniformSampler:
    """Every stored item equally likely, independently for every draw (DreamerV3's sampling).

    .. math:: p(k) = 1 / n, \\qquad k = 0, \\dots, n - 1.

    Args:
        generator: A seed, a :class:`numpy.random.Generator` (used, not copied), or ``None`` for fresh
            entropy.

    Examples:
        >>> from hieros_lib.replay import UniformSampler
        >>> sampler = UniformSampler(generator=0)
        >>> idx = sampler.sample(num_items=10, batch_size=4)
        >>> idx.shape, idx.dtype, bool(((idx >= 0) & (idx < 10)).all())
        ((4,), dtype('int64'), True)
    """

    def __init__(self, *, generator: int | np.random.Generator | None = None) -> None:
        self._rng = _make_generator(generator)

    def sample(self, num_items: int, batch_size: int) -> np.ndarray:
        """Draw ``batch_size`` indices uniformly from ``[0, num_items)``.

        Args:
            num_items: How many items are stored (``n >= 1``).
            batch_size: How many indices to draw (``>= 1``).

        Returns:
            ``int64`` array of shape ``(batch_size,)``.

        Raises:
            HierosError: If ``num_items`` or ``batch_size`` is not a positive int.
        """
        _check_sample_args(num_items, batch_size)
        return _index_from_unit(self._rng.random(int(batch_size)), int(num_items))

    def on_insert(self, num_new: int, num_items: int | None = None) -> None:
        """Nothing to do: uniform sampling keeps no per-item state."""

    def state_dict(self) -> dict[str, Any]:
        """Return ``{"kind": "uniform", "rng": <bit-generator state>}``."""
        return {"kind": "uniform", "rng": _rng_state(self._rng)}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore the random stream from :meth:`state_dict`.

        Raises:
            HierosError: If ``state`` is not a uniform sampler's state.
        """
        _check_kind(state, "uniform")
        self._rng = _rng_from_state(state["rng"])


class TimeBalancedSampler:
    """TWM's balanced sampler (Robine et al., 2023, equation 6): ``softmax(-visits / temperature)``.

    Every item keeps a visit counter ``v_k`` that counts how many times it has been drawn (as the start of
    a sequence, when it sits under a sequence storage); a new item starts at ``0``. Each draw picks item
    ``k`` with probability

    .. math:: p_k = \\operatorname{softmax}\\!\\left(-\\frac{v_0}{\\tau}, \\dots,
              -\\frac{v_{n-1}}{\\tau}\\right)_k,

    so items drawn less often (the new ones) are favoured. After a batch is drawn, each drawn index's
    counter is incremented once per occurrence. This costs :math:`O(n)` per batch (the softmax is
    recomputed over all items), which is why the Hieros paper proposes ETBS.

    The batch is drawn from one probability vector, with replacement by default (every draw follows
    equation 6 exactly); ``replacement=False`` draws distinct items, as TWM's own code does. Dropped items
    (the oldest ones) take their counters with them.

    Args:
        temperature: :math:`\\tau > 0`; TWM uses 20. Larger is closer to uniform.
        replacement: Whether a batch may hold the same item twice.
        generator: A seed, a :class:`numpy.random.Generator` (used, not copied), or ``None``.

    Raises:
        HierosError: If ``temperature`` is not a positive finite number.

    Examples:
        >>> from hieros_lib.replay import TimeBalancedSampler
        >>> sampler = TimeBalancedSampler(temperature=20.0, generator=0)
        >>> sampler.on_insert(3)
        >>> sampler.sample(num_items=3, batch_size=2).shape
        (2,)
        >>> int(sampler.visits(3).sum())
        2
    """

    def __init__(
        self,
        *,
        temperature: float = 20.0,
        replacement: bool = True,
        generator: int | np.random.Generator | None = None,
    ) -> None:
        self.temperature = check_float(temperature, "temperature", minimum=0.0, exclusive_minimum=True)
        check(isinstance(replacement, (bool, np.bool_)), "replacement", "a bool", got=repr(replacement))
        self.replacement = bool(replacement)
        self._rng = _make_generator(generator)
        # Visit counts of the items the sampler knows about, oldest first: self._visits[self._start:].
        self._visits = np.zeros(16, dtype=np.int64)
        self._start = 0
        self._end = 0

    @property
    def num_known(self) -> int:
        """How many items the sampler tracks (inserted and not yet known to be dropped)."""
        return self._end - self._start

    def _drop_oldest(self, num_items: int) -> None:
        if num_items < self.num_known:
            self._start = self._end - num_items

    def on_insert(self, num_new: int, num_items: int | None = None) -> None:
        """Append ``num_new`` items with zero visits; drop the oldest beyond ``num_items`` if given.

        Args:
            num_new: How many items were appended (``>= 0``).
            num_items: How many items are stored now, or ``None`` if nothing was dropped.

        Raises:
            HierosError: If the counts are negative or ``num_items`` exceeds the items inserted.
        """
        num_new = check_int(num_new, "num_new", minimum=0)
        total = self.num_known + num_new
        if num_items is not None:
            check(
                is_int(num_items) and 0 <= num_items <= total,
                "num_items",
                f"an int in [0, {total}] (items inserted and not dropped)",
                got=num_items,
            )
        if self._end + num_new > self._visits.shape[0]:
            live = self._visits[self._start : self._end]
            size = max(16, 2 * (live.shape[0] + int(num_new)))
            grown = np.zeros(size, dtype=np.int64)
            grown[: live.shape[0]] = live
            self._visits, self._start, self._end = grown, 0, live.shape[0]
        self._visits[self._end : self._end + num_new] = 0
        self._end += int(num_new)
        if num_items is not None:
            self._drop_oldest(int(num_items))

    def visits(self, num_items: int) -> np.ndarray:
        """Visit counts of the ``num_items`` newest items, oldest first (a copy), shape ``(num_items,)``."""
        check(
            is_int(num_items) and 0 <= num_items <= self.num_known,
            "num_items",
            f"an int in [0, {self.num_known}] (items inserted via on_insert and not dropped)",
            got=num_items,
        )
        return self._visits[self._end - int(num_items) : self._end].copy()

    def probabilities(self, num_items: int) -> np.ndarray:
        """Equation 6 over the ``num_items`` newest items: ``softmax(-visits / temperature)``, float64."""
        check_int(num_items, "num_items", minimum=1, maximum=_MAX_ITEMS)
        logits = -self.visits(num_items).astype(np.float64) / self.temperature
        weights = np.exp(logits - logits.max())
        return weights / weights.sum()

    def sample(self, num_items: int, batch_size: int) -> np.ndarray:
        """Draw ``batch_size`` indices from equation 6, then count them as visits.

        Args:
            num_items: How many items are stored. At most the number inserted through :meth:`on_insert`;
                if fewer, the oldest ones were dropped and are forgotten.
            batch_size: How many indices to draw (at most ``num_items`` without replacement).

        Returns:
            ``int64`` array of shape ``(batch_size,)``.

        Raises:
            HierosError: On a bad ``num_items`` / ``batch_size`` or more items than were inserted.
        """
        _check_sample_args(num_items, batch_size)
        check(
            num_items <= self.num_known,
            "num_items",
            f"at most {self.num_known}, the items reported through on_insert",
            got=num_items,
        )
        if not self.replacement:
            check(
                batch_size <= num_items,
                "batch_size",
                f"<= num_items={num_items} without replacement",
                got=batch_size,
            )
        self._drop_oldest(int(num_items))
        p = self.probabilities(int(num_items))
        idx = self._rng.choice(int(num_items), size=int(batch_size), replace=self.replacement, p=p)
        idx = idx.astype(np.int64)
        np.add.at(self._visits, self._start + idx, 1)
        return idx

    def state_dict(self) -> dict[str, Any]:
        """Return the temperature, the visit counts (oldest first) and the random stream."""
        return {
            "kind": "time_balanced",
            "temperature": self.temperature,
            "replacement": self.replacement,
            "visits": self._visits[self._start : self._end].copy(),
            "rng": _rng_state(self._rng),
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore a :meth:`state_dict` (temperature, replacement, visits, random stream).

        Raises:
            HierosError: If ``state`` is not a valid time-balanced sampler state; nothing is changed then.
        """
        _check_kind(state, "time_balanced")
        visits = np.asarray(state.get("visits"))
        check(
            visits.ndim == 1 and (visits.size == 0 or np.issubdtype(visits.dtype, np.integer)),
            "state['visits']",
            "a 1-D integer array",
            got=f"{visits.dtype} {visits.shape}",
        )
        check(bool((visits >= 0).all()), "state['visits']", "non-negative counts")
        temperature: Any = state.get("temperature")
        temperature = check_float(
            temperature, "state['temperature']", minimum=0.0, exclusive_minimum=True
        )
        rng = _rng_from_state(state["rng"])
        self.temperature = temperature
        self.replacement = bool(state.get("replacement", True))
        self._visits = np.concatenate([visits.astype(np.int64), np.zeros(16, dtype=np.int64)])
        self._start, self._end = 0, int(visits.shape[0])
        self._rng = rng


def etbs_cdf(x: np.ndarray | float, n: int) -> np.ndarray:
    """Equation 24 of the Hieros paper: the CDF on ``[2, n]`` of the skewed density of uniform replay.

    .. math::

        \\mathrm{CDF}_s(x) = \\frac{x\\,(\\ln x - \\ln n - 1) + 2\\,(\\ln n - \\ln 2 + 1)}
                                  {2 \\ln n - n - 2 \\ln 2 + 2}, \\qquad 2 \\le x \\le n,

    the integral from 2 to ``x`` of :math:`p_s(x) \\propto \\ln n - \\ln x` (equation 21). It rises from
    ``0`` at ``x = 2`` to ``1`` at ``x = n`` and is concave: the skewed density is highest for the oldest
    items.

    Args:
        x: Positions in ``[2, n]`` (array or float).
        n: Current number of items, ``> 2`` (the denominator is ``0`` at ``n = 2``).

    Returns:
        float64 array of the same shape as ``x``.

    Raises:
        HierosError: If ``n <= 2``.

    Examples:
        >>> from hieros_lib.replay import etbs_cdf
        >>> etbs_cdf([100.0, 500.0, 1000.0], 1000).round(4).tolist()  # the oldest half holds 84% of the mass
        [0.3205, 0.8443, 1.0]
    """
    check_int(n, "n", minimum=3)
    x = np.asarray(x, dtype=np.float64)
    log_n = math.log(n)
    denominator = 2.0 * log_n - n - 2.0 * math.log(2.0) + 2.0
    numerator = x * (np.log(x) - log_n - 1.0) + 2.0 * (log_n - math.log(2.0) + 1.0)
    return numerator / denominator


class ETBSampler:
    """Efficient time-balanced sampling (ETBS), Hieros paper section 2.3 and appendix H; O(1) per draw.

    Adding one item and drawing uniformly after every insertion draws item ``i`` (``1`` the oldest)
    :math:`H_n - H_i \\approx \\ln n - \\ln i` times in expectation (equations 10-11): old items are
    oversampled. ETBS takes the CDF of that skewed distribution on ``[2, n]`` (equations 20-24, see
    :func:`etbs_cdf`) and mixes (equation 12)

    .. math:: p_{etbs}(k) = \\tau\\, q(k) + (1 - \\tau)\\, \\frac{1}{n},

    where :math:`1/n` is the original (uniform) sampling distribution and :math:`q` is the distribution of
    the index obtained by passing a uniform draw through the CDF. Each draw is computed in constant time:

    1. ``u, v ~ U[0, 1)`` independently;
    2. ``x = 2 + v (n - 2)`` is a uniform position on the range ``[2, n]`` where equations 21-24 hold;
    3. the quantile is ``y = CDF_s(x)`` if ``u < tau`` (the CDF component), else ``y = v`` (uniform);
    4. the item is ``k = min(floor(n y), n - 1)``: item ``k`` owns ``[k/n, (k+1)/n)`` of the unit interval,
       the same map that turns a uniform quantile into a uniform item.

    Hence :math:`q(k) = (\\mathrm{CDF}_s^{-1}((k+1)/n) - \\mathrm{CDF}_s^{-1}(k/n)) / (n - 2)`: since the
    CDF is concave, ``q`` rises with ``k`` and favours the newest items, which reduces (but does not
    remove) the cumulative oversampling of the old ones. ``n`` is always the *current* number of items
    (never the capacity), and every one of the ``n`` items can be drawn. For ``n <= 2`` the CDF is
    undefined (zero denominator), and ETBS falls back to uniform.

    The official Hieros code differs: it scales the CDF by the buffer *capacity* instead of ``n`` and mixes
    positions rather than distributions, which in practice draws the newest 70% of the buffer uniformly and
    the oldest 30% almost never (see the API page for details).

    Args:
        temperature: :math:`\\tau \\in [0, 1]`, the weight of the CDF component; the paper uses 0.3.
            ``0`` is uniform sampling.
        generator: A seed, a :class:`numpy.random.Generator` (used, not copied), or ``None``.

    Raises:
        HierosError: If ``temperature`` is outside ``[0, 1]``.

    Examples:
        >>> from hieros_lib.replay import ETBSampler
        >>> sampler = ETBSampler(temperature=0.3, generator=0)
        >>> idx = sampler.sample(num_items=1_000_000, batch_size=16)
        >>> idx.shape, bool(((idx >= 0) & (idx < 1_000_000)).all())
        ((16,), True)
    """

    def __init__(
        self, *, temperature: float = 0.3, generator: int | np.random.Generator | None = None
    ) -> None:
        self.temperature = check_float(temperature, "temperature", minimum=0.0, maximum=1.0)
        self._rng = _make_generator(generator)

    def sample(self, num_items: int, batch_size: int) -> np.ndarray:
        """Draw ``batch_size`` indices from :math:`p_{etbs}` over ``[0, num_items)``; O(1) per draw.

        Args:
            num_items: How many items are stored now (``n >= 1``).
            batch_size: How many indices to draw (``>= 1``).

        Returns:
            ``int64`` array of shape ``(batch_size,)``.

        Raises:
            HierosError: If ``num_items`` or ``batch_size`` is not a positive int.
        """
        _check_sample_args(num_items, batch_size)
        n, b = int(num_items), int(batch_size)
        u = self._rng.random(b)
        v = self._rng.random(b)
        if n <= 2:
            return _index_from_unit(v, n)
        x = 2.0 + v * (n - 2.0)
        y = np.where(u < self.temperature, etbs_cdf(x, n), v)
        return _index_from_unit(y, n)

    def on_insert(self, num_new: int, num_items: int | None = None) -> None:
        """Nothing to do: ETBS depends only on the current number of items."""

    def state_dict(self) -> dict[str, Any]:
        """Return the temperature and the random stream."""
        return {"kind": "etbs", "temperature": self.temperature, "rng": _rng_state(self._rng)}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore a :meth:`state_dict`.

        Raises:
            HierosError: If ``state`` is not a valid ETBS state; nothing is changed then.
        """
        _check_kind(state, "etbs")
        temperature: Any = state.get("temperature")
        temperature = check_float(temperature, "state['temperature']", minimum=0.0, maximum=1.0)
        rng = _rng_from_state(state["rng"])
        self.temperature = temperature
        self._rng = rng
