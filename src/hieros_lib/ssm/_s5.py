"""The S5 layer (Smith, Warrington, Linderman, 2023) with resets, state carry and a step mode."""

from __future__ import annotations

import math
from typing import Literal

import torch
from torch import nn

from hieros_lib.errors import HierosError, check, check_int
from hieros_lib.ssm._init import hippo_n_blocks, lecun_normal
from hieros_lib.ssm._scan import Backend, linear_scan

__all__ = ["S5"]

Discretization = Literal["zoh", "bilinear"]
CInit = Literal["trunc_standard_normal", "lecun_normal", "complex_normal"]
_COMPLEX = {torch.float32: torch.complex64, torch.float64: torch.complex128}
_HALF = (torch.bfloat16, torch.float16)


class S5(nn.Module):
    r"""S5: a MIMO diagonal state-space layer, run as a resettable linear scan.

    Continuous-time system :math:`\dot x = \Lambda x + \tilde B u`, :math:`y = \Re(\tilde C x) + D u` with a
    complex diagonal :math:`\Lambda` (``P`` modes), discretised per mode with step
    :math:`\Delta = \text{step\_rescale}\cdot e^{\text{log\_step}}`:

    * ZOH: :math:`\bar\Lambda = e^{\Lambda\Delta}`, :math:`\bar B = \Lambda^{-1}(\bar\Lambda - 1)\tilde B`;
    * bilinear: :math:`\bar\Lambda = (1 - \Delta\Lambda/2)^{-1}(1 + \Delta\Lambda/2)`,
      :math:`\bar B = (1 - \Delta\Lambda/2)^{-1}\Delta\tilde B`.

    Then, for every step ``t`` (``d_t`` = ``reset[:, t]``: the state entering ``t`` is zero),

    .. math::

        x_t = \bar\Lambda \odot (1 - d_t) x_{t-1} + \bar B u_t, \qquad
        y_t = f\cdot\Re(\tilde C x_t) + D \odot u_t,

    with ``f = 2`` when ``conj_sym`` (only one mode of each conjugate pair is stored, so ``P = d_state / 2``,
    and ``2 Re`` adds the other half back exactly) and ``f = 1`` otherwise (``P = d_state``).

    Initialisation follows the reference implementation: HiPPO-N of size ``d_state / blocks``, repeated
    ``blocks`` times (``Lambda_re = -1/2``), ``B~ = V^{-1} B`` with ``B`` LeCun-normal, ``C~ = C V`` (or a
    complex normal ``C~``, ``c_init="complex_normal"``), ``D ~ N(0, 1)``,
    ``log_step ~ U[log dt_min, log dt_max]`` per mode. Parameters are real tensors in the reference layout:
    ``Lambda_re``, ``Lambda_im`` ``(P,)``,
    ``B`` ``(P, H, 2)``, ``C`` ``(H, P, 2)`` (``(H, 2P, 2)`` when bidirectional), ``D`` ``(H,)``,
    ``log_step`` ``(P,)``.

    ``clip_eigs`` clamps :math:`\Re\Lambda \le -10^{-4}` in the forward pass (the stored parameter is not
    changed). ``bidirectional`` adds a second scan running backwards in time over the same elements
    (``x^b_t = \bar\Lambda (1 - d_{t+1}) x^b_{t+1} + \bar B u_t``: it does not cross into an earlier packed
    sequence) and reads both states with ``C`` of width ``2P``; it is not causal, so it takes no ``state``
    and has no ``step``.

    **Precision.** The layer always computes in float32 (or float64) with complex64 (or complex128) states:
    a recurrence over hundreds of steps with ``|lambda|`` close to 1 loses too much in half precision.
    Inputs may be of the parameters' dtype or bfloat16 / float16; half inputs are computed in float32 and
    the output is returned in the input's dtype. Under :class:`torch.autocast` the layer turns autocast off
    for its own matmuls and scan, so it runs inside autocast regions as they are (the recommended way to
    train in bf16). ``.to(torch.bfloat16)`` stores the parameters in bf16 like any module, but the layer
    still computes in float32 from them (states stay complex64); prefer autocast, which keeps the
    parameters, in particular the eigenvalues and steps, in full precision.

    Args:
        d_model: ``H``, the input and output width.
        d_state: State size before halving (the reference's ``ssm_size_base``); ``P = d_state / 2`` stored
            complex modes when ``conj_sym``, else ``P = d_state``.
        blocks: ``J``, the number of HiPPO-N blocks (must divide ``d_state``).
        conj_sym: Store one mode of each conjugate pair and output ``2 Re(C~ x)``.
        discretization: ``"zoh"`` or ``"bilinear"``.
        clip_eigs: Clamp the real part of ``Lambda`` to at most ``-1e-4`` in the forward pass.
        bidirectional: Add a backward-in-time scan (non-causal).
        dt_min: Smallest initial step.
        dt_max: Largest initial step.
        c_init: ``"trunc_standard_normal"`` (reference default), ``"lecun_normal"`` or ``"complex_normal"``.
        step_rescale: Factor on every step ``Delta`` (e.g. for a different sampling rate at evaluation).
        backend: Scan backend handed to :func:`~hieros_lib.ssm.linear_scan`.
        generator: Source of the random initialisation (the global generator if ``None``).
        device: Device of the parameters.
        dtype: Real dtype of the parameters (float32 by default); states are the matching complex dtype.

    Raises:
        HierosError: For invalid sizes or options.

    Examples:
        >>> import torch
        >>> layer = S5(8, 16, blocks=2, generator=torch.Generator().manual_seed(0))
        >>> x = torch.randn(2, 10, 8)
        >>> y, state = layer(x)
        >>> y.shape, state.shape, state.dtype
        (torch.Size([2, 10, 8]), torch.Size([2, 8]), torch.complex64)
        >>> y_t, state = layer.step(x[:, 0], layer.initial_state(2))
        >>> torch.allclose(y_t, y[:, 0], atol=1e-5)
        True

    References:
        J. T. H. Smith, A. Warrington, S. W. Linderman. Simplified State Space Layers for Sequence
        Modeling. ICLR 2023.
    """

    def __init__(
        self,
        d_model: int,
        d_state: int,
        *,
        blocks: int = 1,
        conj_sym: bool = True,
        discretization: Discretization = "zoh",
        clip_eigs: bool = False,
        bidirectional: bool = False,
        dt_min: float = 1e-3,
        dt_max: float = 1e-1,
        c_init: CInit = "trunc_standard_normal",
        step_rescale: float = 1.0,
        backend: Backend = "auto",
        generator: torch.Generator | None = None,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__()
        check_int(d_model, "d_model", minimum=1)
        check_int(d_state, "d_state", minimum=1)
        check(
            discretization in ("zoh", "bilinear"),
            "discretization",
            "'zoh' or 'bilinear'",
            got=repr(discretization),
        )
        check(
            c_init in ("trunc_standard_normal", "lecun_normal", "complex_normal"),
            "c_init",
            "'trunc_standard_normal', 'lecun_normal' or 'complex_normal'",
            got=repr(c_init),
        )
        check(0 < dt_min <= dt_max, "dt_min", f"0 < dt_min <= dt_max = {dt_max}", got=dt_min)
        check(step_rescale > 0, "step_rescale", "a positive float", got=step_rescale)
        check(
            backend in ("auto", "sequential", "parallel", "triton"),
            "backend",
            "'auto', 'sequential', 'parallel' or 'triton'",
            got=repr(backend),
        )
        dtype = torch.get_default_dtype() if dtype is None else dtype
        check(dtype in _COMPLEX, "dtype", "torch.float32 or torch.float64", got=dtype)
        self.d_model = d_model
        self.d_state = d_state
        self.blocks = blocks
        self.conj_sym = conj_sym
        self.discretization: Discretization = discretization
        self.clip_eigs = clip_eigs
        self.bidirectional = bidirectional
        self.c_init: CInit = c_init
        self.step_rescale = step_rescale
        self.backend: Backend = backend

        lam, v, v_inv = hippo_n_blocks(d_state, blocks, conj_sym)
        p = lam.shape[0]
        self.P = p
        h = d_model
        b_real = lecun_normal((d_state, h), d_state, generator=generator)
        b_tilde = v_inv @ b_real.to(torch.complex128)  # (P, H)
        if c_init == "complex_normal":
            width = 2 * p if bidirectional else p
            c = torch.randn(h, width, 2, generator=generator, dtype=torch.float64) * math.sqrt(0.5)
        else:
            c_parts = []
            for _ in range(2 if bidirectional else 1):
                if c_init == "trunc_standard_normal":
                    c_raw = lecun_normal((h, d_state, 2), d_state, generator=generator)
                else:
                    c_raw = lecun_normal((h, d_state, 2), d_state * h, generator=generator)
                c_tilde = torch.complex(c_raw[..., 0], c_raw[..., 1]) @ v  # (H, P)
                c_parts.append(torch.view_as_real(c_tilde))
            c = torch.cat(c_parts, dim=1)
        d = torch.randn(h, generator=generator, dtype=torch.float64)
        u = torch.rand(p, generator=generator, dtype=torch.float64)
        log_step = math.log(dt_min) + u * (math.log(dt_max) - math.log(dt_min))
        def param(t: torch.Tensor) -> nn.Parameter:
            return nn.Parameter(t.to(device=device, dtype=dtype))

        self.Lambda_re = param(lam.real)
        self.Lambda_im = param(lam.imag)
        self.B = param(torch.view_as_real(b_tilde))
        self.C = param(c)
        self.D = param(d)
        self.log_step = param(log_step)

    def extra_repr(self) -> str:
        return (
            f"d_model={self.d_model}, d_state={self.d_state}, P={self.P}, blocks={self.blocks}, "
            f"conj_sym={self.conj_sym}, discretization={self.discretization!r}, clip_eigs={self.clip_eigs}, "
            f"bidirectional={self.bidirectional}"
        )

    # ----------------------------------------------------------------------------------------------- math
    @property
    def compute_dtype(self) -> torch.dtype:
        """The real dtype the layer computes in (the parameters', or float32 if they are half precision)."""
        dtype = self.Lambda_re.dtype
        return torch.float32 if dtype in _HALF else dtype

    def continuous(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(Lambda (P,), B~ (P, H), Delta (P,))`` of the continuous-time system (after ``clip_eigs``)."""
        dtype = self.compute_dtype
        lam_re = self.Lambda_re.to(dtype)
        lam_re = lam_re.clamp(max=-1e-4) if self.clip_eigs else lam_re
        lam = torch.complex(lam_re, self.Lambda_im.to(dtype))
        b = self.B.to(dtype)
        b_tilde = torch.complex(b[..., 0], b[..., 1])
        step = self.step_rescale * self.log_step.to(dtype).exp()
        return lam, b_tilde, step

    def discretize(self) -> tuple[torch.Tensor, torch.Tensor]:
        """``(Lambda_bar (P,), B_bar (P, H))``, complex, by ZOH or bilinear (see the class docstring)."""
        lam, b_tilde, step = self.continuous()
        if self.discretization == "zoh":
            lam_bar = torch.exp(lam * step)
            coef = (lam_bar - 1) / lam
        else:
            inv = 1 / (1 - step * lam / 2)
            lam_bar = inv * (1 + step * lam / 2)
            coef = inv * step
        return lam_bar, coef[:, None] * b_tilde

    def _input_weight(self, b_bar: torch.Tensor) -> torch.Tensor:
        """``B_bar`` as a real ``(2P, H)`` matrix with (re, im) interleaved, so ``u @ W.T`` is ``B_bar u``."""
        return torch.view_as_real(b_bar).transpose(1, 2).reshape(2 * self.P, self.d_model)

    def _output_weight(self) -> torch.Tensor:
        """``f * C~`` as a real ``(H, 2P')`` matrix acting on interleaved (re, im) states: ``f Re(C~ x)``."""
        factor = 2.0 if self.conj_sym else 1.0
        c = self.C.to(self.compute_dtype)
        return (factor * torch.stack([c[..., 0], -c[..., 1]], dim=-1)).reshape(self.d_model, -1)

    # ------------------------------------------------------------------------------------------ helpers
    @property
    def state_dtype(self) -> torch.dtype:
        """The complex dtype of the state (complex64 for float32 parameters)."""
        return _COMPLEX[self.compute_dtype]

    def initial_state(self, batch_size: int, *, device: torch.device | str | None = None) -> torch.Tensor:
        """Zero state ``(batch_size, P)`` of :attr:`state_dtype` on ``device`` (default: the parameters')."""
        check_int(batch_size, "batch_size", minimum=1)
        device = self.Lambda_re.device if device is None else device
        return torch.zeros(batch_size, self.P, dtype=self.state_dtype, device=device)

    def _check_input(self, x: torch.Tensor, name: str, shape: str, dims: int) -> None:
        check(
            isinstance(x, torch.Tensor) and x.dim() == dims and x.shape[-1] == self.d_model,
            name,
            f"a tensor of shape {shape} with H={self.d_model}",
            got=f"shape {tuple(x.shape)}" if isinstance(x, torch.Tensor) else type(x).__name__,
        )
        check(
            x.dtype in (self.Lambda_re.dtype, self.compute_dtype, *_HALF),
            name,
            f"dtype {self.Lambda_re.dtype} (the parameters' dtype), bfloat16 or float16",
            got=x.dtype,
        )
        check(x.device == self.Lambda_re.device, name, f"a tensor on {self.Lambda_re.device}", got=x.device)

    def _check_state(self, state: torch.Tensor, batch: int) -> None:
        check(
            isinstance(state, torch.Tensor) and tuple(state.shape) == (batch, self.P),
            "state",
            f"a tensor of shape (B, P) = ({batch}, {self.P})",
            got=f"shape {tuple(state.shape)}" if isinstance(state, torch.Tensor) else type(state).__name__,
        )
        check(state.dtype == self.state_dtype, "state", f"dtype {self.state_dtype}", got=state.dtype)
        check(
            state.device == self.Lambda_re.device,
            "state",
            f"a tensor on {self.Lambda_re.device}",
            got=state.device,
        )

    # ------------------------------------------------------------------------------------------ forward
    def forward(
        self,
        x: torch.Tensor,
        state: torch.Tensor | None = None,
        reset: torch.Tensor | None = None,
        return_states: bool = False,
    ) -> tuple[torch.Tensor, ...]:
        """Run the layer over a sequence (parallel over time).

        Args:
            x: Input ``(B, T, H)`` of the parameters' dtype.
            state: State entering the first step, ``(B, P)`` complex (zeros when ``None``).
            reset: Start flags ``(B, T)`` bool: where true, the state entering that step is zero.
            return_states: Also return every state.

        Returns:
            ``(y (B, T, H), final_state (B, P))``, and with ``return_states`` also ``states (B, T, P)``
            (``(B, T, 2P)``, forward then backward states, when bidirectional).

        Raises:
            HierosError: If a shape, dtype or device is wrong.
        """
        self._check_input(x, "x", "(B, T, H)", 3)
        batch, length, _ = x.shape
        if state is not None:
            check(
                not self.bidirectional,
                "state",
                "None for a bidirectional S5 (it is not causal)",
                got="a tensor",
            )
            self._check_state(state, batch)
        if reset is not None:
            check(
                isinstance(reset, torch.Tensor)
                and tuple(reset.shape) == (batch, length)
                and reset.dtype == torch.bool,
                "reset",
                f"a bool tensor of shape (B, T) = ({batch}, {length})",
                got=f"{tuple(reset.shape)} {reset.dtype}" if isinstance(reset, torch.Tensor) else reset,
            )
        with torch.autocast(x.device.type, enabled=False):
            u = x.to(self.compute_dtype)
            lam_bar, b_bar = self.discretize()
            p = self.P
            bu = torch.view_as_complex((u @ self._input_weight(b_bar).T).view(batch, length, p, 2))
            states, final = linear_scan(lam_bar, bu, reset=reset, initial_state=state, backend=self.backend)
            if self.bidirectional:
                back_reset = None
                if reset is not None:
                    # The backward scan drops the carry from t+1 into t where t+1 starts a new sequence.
                    back_reset = torch.cat([reset[:, 1:], reset.new_zeros(batch, 1)], dim=1).flip(1)
                back, _ = linear_scan(lam_bar, bu.flip(1), reset=back_reset, backend=self.backend)
                states = torch.cat([states, back.flip(1)], dim=-1)
            width = states.shape[-1]
            y = torch.view_as_real(states).reshape(batch, length, 2 * width) @ self._output_weight().T
            y = (y + self.D.to(u.dtype) * u).to(x.dtype)
        if return_states:
            return y, final, states
        return y, final

    def step(
        self, x_t: torch.Tensor, state: torch.Tensor | None, reset: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Advance one step (recurrent mode); equals :meth:`forward` step by step.

        Args:
            x_t: Input ``(B, H)``.
            state: State ``(B, P)`` from :meth:`initial_state` or a previous call (zeros when ``None``).
            reset: Optional ``(B,)`` bool: where true, ``state`` is replaced by zeros first.

        Returns:
            ``(y_t (B, H), state (B, P))``.

        Raises:
            HierosError: If a shape, dtype or device is wrong, or the layer is bidirectional.
        """
        if self.bidirectional:
            raise HierosError("step: a bidirectional S5 has no step mode (it reads the future)")
        self._check_input(x_t, "x_t", "(B, H)", 2)
        batch = x_t.shape[0]
        if state is None:
            state = self.initial_state(batch)
        self._check_state(state, batch)
        if reset is not None:
            check(
                isinstance(reset, torch.Tensor)
                and tuple(reset.shape) == (batch,)
                and reset.dtype == torch.bool,
                "reset",
                f"a bool tensor of shape (B,) = ({batch},)",
                got=f"{tuple(reset.shape)} {reset.dtype}" if isinstance(reset, torch.Tensor) else reset,
            )
            check(reset.device == state.device, "reset", f"a tensor on {state.device}", got=reset.device)
            state = torch.where(reset[:, None], torch.zeros_like(state), state)
        with torch.autocast(x_t.device.type, enabled=False):
            u = x_t.to(self.compute_dtype)
            lam_bar, b_bar = self.discretize()
            bu = torch.view_as_complex((u @ self._input_weight(b_bar).T).view(batch, self.P, 2))
            state = lam_bar * state + bu
            y = torch.view_as_real(state).reshape(batch, 2 * self.P) @ self._output_weight().T
            y = (y + self.D.to(u.dtype) * u).to(x_t.dtype)
        return y, state
