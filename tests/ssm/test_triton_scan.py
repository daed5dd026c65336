"""The Triton scan kernel (``backend="triton"``) against the sequential reference.

Every test runs twice through the ``device`` fixture: on the CPU under Triton's interpreter, and (marked
``gpu``) compiled on CUDA when a device is present.

How the interpreter is enabled (so this works when the whole suite runs in one process): ``triton.jit``
reads ``TRITON_INTERPRET`` when it decorates a function, and the kernel module builds its kernels on
first use, once per mode. The ``device`` fixture sets ``TRITON_INTERPRET=1`` with ``monkeypatch`` for the
CPU case only, so nothing leaks into other tests and the import order does not matter (the kernels use
no ``@jit`` helper of ``triton.language``, whose mode is fixed at ``import triton``). It also swaps the
interpreter's generic ``tl.associative_scan`` and ``tl.reduce`` (Python loops over every element) for the
same left-to-right folds vectorised over the other axis: each output is computed by the same operations
in the same order, only NumPy does all channels of a step at once, which keeps these tests within the
interpreter's speed.

The kernel function itself is imported from its private module because it is the unit under test (its
signature is the contract between the dispatcher and the kernel); the dispatch through the public
``linear_scan`` is tested separately.
"""

from __future__ import annotations

import importlib
import subprocess
import sys
import zlib
from collections.abc import Callable, Iterator

import numpy as np
import pytest
import torch

from hieros_lib.ssm import linear_scan
from hieros_lib.testing import assert_matches_reference

pytest.importorskip("triton", reason="the Triton kernel needs the `triton` extra")



def _dims(device: torch.device) -> tuple[int, int, int, int]:
    """``(B, T, P, chunk)``: T spans three chunks of the launch configuration the kernel picks for the
    device, with a masked tail (interpreter tiles are 32 x 32, so P = 40 also spans two channel blocks)."""
    module = importlib.import_module("hieros_lib.ssm._triton_scan")
    chunk = module._blocks(2, 1 << 20, 40, device)[0]
    return 2, 2 * chunk + 11, 40, chunk


def _vectorised_scan(self, inputs):  # type: ignore[no-untyped-def]
    """Triton's interpreter scan, as a fold along the axis vectorised over the other axes."""
    axis = self.axis
    data = [np.moveaxis(arg.handle.data, axis, 0) for arg in inputs]
    outs = [np.empty_like(d) for d in data]
    acc = None
    for i in range(data[0].shape[0]):
        cur = tuple(self.to_tensor(np.ascontiguousarray(d[i]), x.dtype) for d, x in zip(data, inputs))
        if acc is None:
            acc = cur
        else:
            ret = self.combine_fn.fn(*acc, *cur)
            acc = ret if isinstance(ret, tuple) else (ret,)
        for o, r in zip(outs, acc):
            o[i] = r.handle.data
    return [
        self.to_tensor(np.ascontiguousarray(np.moveaxis(o, 0, axis)), x.dtype) for o, x in zip(outs, inputs)
    ]


def _vectorised_reduce(self, inputs):  # type: ignore[no-untyped-def]
    """Triton's interpreter reduce along one axis, as a fold vectorised over the other axes."""
    if self.axis is None or self.keep_dims:
        return _GENERIC_REDUCE(self, inputs)
    data = [np.moveaxis(arg.handle.data, self.axis, 0) for arg in inputs]
    acc = tuple(self.to_tensor(np.ascontiguousarray(d[0]), x.dtype) for d, x in zip(data, inputs))
    for i in range(1, data[0].shape[0]):
        cur = tuple(self.to_tensor(np.ascontiguousarray(d[i]), x.dtype) for d, x in zip(data, inputs))
        ret = self.combine_fn.fn(*acc, *cur)
        acc = ret if isinstance(ret, tuple) else (ret,)
    return list(acc)


_GENERIC_REDUCE = None


@pytest.fixture(
    params=[pytest.param("cpu", id="interpreter"), pytest.param("cuda", marks=pytest.mark.gpu, id="cuda")]
)
def device(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[torch.device]:
    if request.param == "cpu":
        import triton.runtime.interpreter as interpreter

        global _GENERIC_REDUCE
        if _GENERIC_REDUCE is None:
            _GENERIC_REDUCE = interpreter.ReduceOps.generic_reduce
        monkeypatch.setenv("TRITON_INTERPRET", "1")
        monkeypatch.setattr(interpreter.ScanOps, "generic_scan", _vectorised_scan)
        monkeypatch.setattr(interpreter.ReduceOps, "generic_reduce", _vectorised_reduce)
    # On CUDA the environment is left as it is: compiled kernels, unless the whole run interprets.
    yield torch.device(request.param)


def _kernel() -> Callable[..., tuple[torch.Tensor, torch.Tensor]]:
    module = importlib.import_module("hieros_lib.ssm._triton_scan")
    return module.triton_linear_scan  # type: ignore[no-any-return]


def _decay(shape: tuple[int, ...], complex_: bool, low: float, g: torch.Generator) -> torch.Tensor:
    """Random ``a`` with ``|a|`` in ``[low, 1]`` (and a random phase when complex)."""
    mag = low + (1 - low) * torch.rand(shape, generator=g, dtype=torch.float64)
    if not complex_:
        sign = torch.where(torch.rand(shape, generator=g) < 0.2, -1.0, 1.0).to(torch.float64)
        return mag * sign
    phase = torch.rand(shape, generator=g, dtype=torch.float64) * 2 * torch.pi
    return torch.polar(mag, phase)


def _reset(kind: str, g: torch.Generator, dims: tuple[int, int, int, int]) -> torch.Tensor | None:
    B, T, _, CHUNK = dims
    if kind == "none":
        return None
    if kind == "everywhere":
        return torch.ones(B, T, dtype=torch.bool)
    reset = torch.zeros(B, T, dtype=torch.bool)
    if kind == "t0":
        reset[0, 0] = True
    elif kind == "borders":  # the first and last steps of chunks, and a chunk's first step at t = 0
        reset[0, [CHUNK - 1, CHUNK, 2 * CHUNK]] = True
        reset[1, [0, 2 * CHUNK - 1, T - 1]] = True
    elif kind == "random":
        reset = torch.rand(B, T, generator=g) < 0.1
        reset[:, 0] = True
        reset[0, 0] = False
    return reset


def _reference(reset: torch.Tensor | None, select: str = "both") -> Callable[..., object]:
    """The sequential backend, run in double precision, on the reset given."""

    def run(a: torch.Tensor, b: torch.Tensor, h0: torch.Tensor | None) -> object:
        wide = torch.complex128 if (a.is_complex() or b.is_complex()) else torch.float64
        states, final = linear_scan(
            a.to(wide),
            b.to(wide),
            reset=None if reset is None else reset.to(b.device),
            initial_state=None if h0 is None else h0.to(wide),
            backend="sequential",
        )
        out_dtype = torch.promote_types(a.dtype, b.dtype)
        return _select((states.to(out_dtype), final.to(out_dtype)), select)

    return run


def _fast(reset: torch.Tensor | None, select: str = "both") -> Callable[..., object]:
    """The kernel through the public entry point, ``linear_scan(..., backend="triton")``."""

    def run(a: torch.Tensor, b: torch.Tensor, h0: torch.Tensor | None) -> object:
        out = linear_scan(
            a, b, reset=None if reset is None else reset.to(b.device), initial_state=h0, backend="triton"
        )
        return _select(out, select)

    return run


def _select(out: tuple[torch.Tensor, torch.Tensor], select: str) -> object:
    return {"both": out, "states": out[0], "final": out[1]}[select]


@pytest.mark.parametrize(
    ("dtype", "a_shape", "reset_kind"),
    [
        (torch.complex64, "P", "random"),
        (torch.complex64, "P", "borders"),
        (torch.complex64, "BTP", "random"),
        (torch.complex64, "BTP", "t0"),
        (torch.complex64, "P", "none"),
        (torch.float32, "P", "borders"),
        (torch.float32, "BTP", "random"),
        (torch.float32, "P", "everywhere"),
    ],
)
def test_matches_reference(device: torch.device, dtype: torch.dtype, a_shape: str, reset_kind: str) -> None:
    """States, final state and the gradients of a, b and the initial state equal the reference."""
    dims = _dims(device)
    B, T, P, _ = dims
    g = torch.Generator().manual_seed(zlib.crc32(f"{dtype}{a_shape}{reset_kind}".encode()))
    complex_ = dtype.is_complex
    a = _decay((P,) if a_shape == "P" else (B, T, P), complex_, 0.5, g).to(dtype)
    b = torch.randn(B, T, P, generator=g, dtype=dtype)
    h0 = torch.randn(B, P, generator=g, dtype=dtype)
    reset = _reset(reset_kind, g, dims)
    inputs = (a.to(device), b.to(device), h0.to(device))
    assert_matches_reference(_fast(reset), _reference(reset), inputs)


@pytest.mark.parametrize("dtype", [torch.complex64, torch.float32])
@pytest.mark.parametrize("a_shape", ["P", "BTP"])
def test_hard_mode(device: torch.device, dtype: torch.dtype, a_shape: str) -> None:
    """``|a|`` in [0.99, 1]: a wrong carry between chunks shows up instead of decaying away."""
    dims = _dims(device)
    B, T, P, _ = dims
    g = torch.Generator().manual_seed(7)
    a = _decay((P,) if a_shape == "P" else (B, T, P), dtype.is_complex, 0.99, g).to(dtype)
    b = torch.randn(B, T, P, generator=g, dtype=dtype)
    h0 = torch.randn(B, P, generator=g, dtype=dtype)
    reset = _reset("borders", g, dims)
    inputs = (a.to(device), b.to(device), h0.to(device))
    assert_matches_reference(_fast(reset), _reference(reset), inputs)


@pytest.mark.parametrize("select", ["states", "final"])
def test_one_output_used(device: torch.device, select: str) -> None:
    """Gradients when only the states or only the final state reach the loss (the other grad is None)."""
    dims = _dims(device)
    B, T, P, _ = dims
    g = torch.Generator().manual_seed(11)
    a = _decay((P,), True, 0.9, g).to(torch.complex64)
    b = torch.randn(B, T, P, generator=g, dtype=torch.complex64)
    h0 = torch.randn(B, P, generator=g, dtype=torch.complex64)
    inputs = (a.to(device), b.to(device), h0.to(device))
    reset = _reset("random", g, dims)
    assert_matches_reference(_fast(reset, select), _reference(reset, select), inputs)


def test_without_initial_state_and_odd_shapes(device: torch.device) -> None:
    """No initial state, T = 1 and an odd T / P below one tile."""
    g = torch.Generator().manual_seed(3)
    for length, width in [(1, 3), (13, 5)]:
        a = _decay((width,), True, 0.5, g).to(torch.complex64).to(device)
        b = torch.randn(3, length, width, generator=g, dtype=torch.complex64).to(device)
        reset = torch.rand(3, length, generator=g) < 0.3
        assert_matches_reference(
            lambda a, b, reset=reset: _fast(reset)(a, b, None),
            lambda a, b, reset=reset: _reference(reset)(a, b, None),
            (a, b),
        )


def test_strided_inputs(device: torch.device) -> None:
    """Non-contiguous b and a (P,) decay broadcast to (B, T, P) by a stride-0 view (never copied)."""
    dims = _dims(device)
    B, T, P, _ = dims
    g = torch.Generator().manual_seed(5)
    a_p = _decay((P,), True, 0.9, g).to(torch.complex64).to(device)
    wide = torch.randn(B, T, 2 * P, generator=g, dtype=torch.complex64).to(device)
    h0 = torch.randn(P, B, generator=g, dtype=torch.complex64).to(device).t()
    reset = _reset("random", g, dims)

    def fast(a_p: torch.Tensor, wide: torch.Tensor, h0: torch.Tensor) -> object:
        return _fast(reset)(a_p.expand(B, T, P), wide[..., ::2], h0)

    def ref(a_p: torch.Tensor, wide: torch.Tensor, h0: torch.Tensor) -> object:
        return _reference(reset)(a_p, wide[..., ::2], h0)

    assert_matches_reference(fast, ref, (a_p, wide, h0))


@pytest.mark.parametrize("b_dtype", [torch.bfloat16, torch.float16])
def test_low_precision_b(device: torch.device, b_dtype: torch.dtype) -> None:
    """bf16 / fp16 ``b`` accumulates in fp32: states match an fp64 scan of the same values to fp32
    tolerance, and the gradient of ``b`` comes back in ``b``'s dtype within its tolerance."""
    dims = _dims(device)
    B, T, P, _ = dims
    g = torch.Generator().manual_seed(13)
    a = _decay((P,), False, 0.99, g).to(torch.float32).to(device)
    b = torch.randn(B, T, P, generator=g).to(b_dtype).to(device)
    h0 = torch.randn(B, P, generator=g).to(device)
    reset = _reset("borders", g, dims)
    states, _ = linear_scan(a, b, reset=reset.to(device), initial_state=h0, backend="triton")
    assert states.dtype == torch.float32
    assert_matches_reference(_fast(reset), _reference(reset), (a, b, h0))


def test_dispatch_reaches_kernel(device: torch.device, monkeypatch: pytest.MonkeyPatch) -> None:
    """``linear_scan(..., backend="triton")`` (and ``"auto"`` on CUDA) runs this kernel."""
    dims = _dims(device)
    B, T, P, _ = dims
    module = importlib.import_module("hieros_lib.ssm._triton_scan")
    original = module.triton_linear_scan
    calls: list[tuple[int, ...]] = []

    def spy(a, b, reset, initial_state):  # type: ignore[no-untyped-def]
        calls.append(tuple(a.shape))
        return original(a, b, reset, initial_state)

    monkeypatch.setattr(module, "triton_linear_scan", spy)
    g = torch.Generator().manual_seed(17)
    a = _decay((P,), True, 0.9, g).to(torch.complex64).to(device)
    b = torch.randn(B, T, P, generator=g, dtype=torch.complex64).to(device)
    reset = _reset("random", g, dims)
    backends = ["triton", "auto"] if device.type == "cuda" else ["triton"]
    for backend in backends:
        assert_matches_reference(
            lambda a, b, backend=backend: linear_scan(a, b, reset=reset.to(device), backend=backend),
            lambda a, b: _reference(reset)(a, b, None),
            (a, b),
        )
    assert len(calls) == len(backends)
    assert calls[0] == (P,)  # a (P,) decay reaches the kernel un-broadcast


def test_importing_ssm_does_not_import_triton() -> None:
    code = "import sys, hieros_lib.ssm; assert 'triton' not in sys.modules, 'triton was imported'"
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)


@pytest.mark.slow  # a cold compile (fresh Triton cache) takes a few seconds per kernel
@pytest.mark.filterwarnings("ignore:TRITON_DEFAULT_FP_FUSION")
@pytest.mark.parametrize("is_complex", [True, False])
def test_compiles_for_hopper(is_complex: bool) -> None:
    """The interpreter does not run Triton's compiler: compile both kernels ahead of time for sm_90
    (no GPU needed), with every optional input on and 3 pipeline stages, and check that the shared
    memory fits an H100 / H200 block (227 KiB)."""
    import triton
    import triton.language as tl
    from triton.backends.compiler import GPUTarget
    from triton.compiler import ASTSource

    module = importlib.import_module("hieros_lib.ssm._triton_scan")
    flags = dict(IS_COMPLEX=is_complex, A_PER_STEP=is_complex, HAS_RESET=True, HAS_H0=True)
    flags |= dict(ACC=tl.float32, BLOCK_T=128, BLOCK_P=16, NUM_STAGES=3)
    kernels = [
        (module._fwd_kernel, flags),
        (module._bwd_kernel, dict(flags, HAS_DX=True, HAS_DF=True, NEED_DA=True, NEED_DH=True)),
    ]
    for fn, constants in kernels:
        jit = triton.JITFunction(fn)  # compiled mode, whatever TRITON_INTERPRET says
        ptr = {"r_ptr": "*u8", "b_ptr": "*fp32" if is_complex else "*bf16"}
        signature = {
            name: "constexpr"
            if name in constants
            else (ptr.get(name, "*fp32") if name.endswith("_ptr") else "i32")
            for name in jit.arg_names
        }
        compiled = triton.compile(
            ASTSource(jit, signature, constants), target=GPUTarget("cuda", 90, 32), options={"num_warps": 8}
        )
        assert compiled.asm["cubin"]
        assert compiled.metadata.shared <= 227 * 1024
