"""What the weight-only matmul SPECs (w4a16.py) run on: test and bench shapes (M, K, N), the
napkin math of each (FLOPs, fewest bytes per format) and seeded inputs in each weight format,
with the dequantized weight that the cuBLAS baseline multiplies."""

from __future__ import annotations

import torch

from inferlab.kernels.nf4 import state_from_inputs, state_tensors
from inferlab.kernels.quant_formats import (
    dequantize_int4_ref,
    dequantize_int8_ref,
    dequantize_nf4_ref,
    quantize_int4,
    quantize_int8,
    quantize_nf4_ref,
)
from inferlab.kernels.spec import BenchShape, Shape, random_tensor

SPEC_GROUP_SIZE = 128  # int4: GPTQ/AWQ's usual group
SPEC_NF4_BLOCKSIZE = 64  # QLoRA's default (nf4.SPEC_BLOCKSIZE: state_from_inputs assumes it)
BENCH_TOKENS = (1, 16, 32, 64, 128, 256)  # decode (1), GEMV's last M (16), then the tiled path
LLAMA3_8B_LAYERS = (  # (K, N, layer): in_features -> out_features
    (4096, 14336, "gate/up proj"),
    (14336, 4096, "down proj"),
    (4096, 4096, "q/o proj"),
    (4096, 1024, "k/v proj (8 kv heads x 128)"),
)
BENCH_SHAPES = tuple(
    BenchShape((m, k, n), "llama-3-8b", f"{layer} {k}->{n}, M={m} tokens")
    for m in BENCH_TOKENS
    for k, n, layer in LLAMA3_8B_LAYERS
)
TEST_SHAPES = (  # (M, K, N)
    Shape((1, 128, 8), "one token (decode), one int4 group / two NF4 blocks per row, N below one tile"),
    Shape((3, 256, 40), "3 tokens: GEMV tile mostly masked rows; 2 groups and split-K; N = 40 not 2^k"),
    Shape((17, 256, 40), "17 tokens: the first M past the GEMV path, so the tiled path, M tail masked"),
    Shape((17, 128, 8), "tiled path at the smallest K: two K tiles, N = 8 inside one masked tile"),
    Shape((1, 256, 33), "odd N: the last output column alone in its word column / weight row"),
)


def _flops(dims: tuple[int, ...]) -> int:
    m, k, n = dims
    return 2 * m * n * k  # one multiply and one add per (m, n, k); dequantization is not counted


def _activations_bytes(dims: tuple[int, ...], dtype: torch.dtype) -> int:
    m, k, n = dims
    return (m * k + m * n) * dtype.itemsize  # read x, write y (w_dense, the baseline's, counts nothing)


def _int4_bytes(dims: tuple[int, ...], dtype: torch.dtype) -> int:
    _, k, n = dims
    groups = k // SPEC_GROUP_SIZE * n
    return k * n // 2 + groups * dtype.itemsize + groups + _activations_bytes(dims, dtype)  # + scales, zeros


def _nf4_bytes(dims: tuple[int, ...], dtype: torch.dtype) -> int:
    _, k, n = dims
    blocks = k * n // SPEC_NF4_BLOCKSIZE
    absmax = blocks + 4 * -(-blocks // 256) + 4  # uint8 code per block, fp32 per 256 blocks, offset
    return k * n // 2 + absmax + _activations_bytes(dims, dtype)


def _int8_bytes(dims: tuple[int, ...], dtype: torch.dtype) -> int:
    _, k, n = dims
    return k * n + 4 * n + _activations_bytes(dims, dtype)  # int8 weight, fp32 scale per channel


def _int4_inputs(dims, dtype, device, gen, symmetric: bool = False) -> dict[str, torch.Tensor]:
    m, k, n = dims
    x = random_tensor((m, k), dtype, device, gen)
    qw = quantize_int4(random_tensor((n, k), torch.float32, device, gen), SPEC_GROUP_SIZE, symmetric, dtype)
    inputs = {"x": x, "qweight": qw.qweight, "scales": qw.scales, "zeros": qw.zeros}
    if symmetric:
        del inputs["zeros"]
    return inputs | {"w_dense": dequantize_int4_ref(qw, dtype)}  # the cuBLAS baseline's weight


def _nf4_inputs(dims, dtype, device, gen) -> dict[str, torch.Tensor]:
    m, k, n = dims
    x = random_tensor((m, k), dtype, device, gen)
    packed, state = quantize_nf4_ref(random_tensor((n, k), torch.float32, device, gen), SPEC_NF4_BLOCKSIZE)
    state.dtype = dtype
    return {"x": x, **state_tensors(packed, state), "w_dense": dequantize_nf4_ref(packed, state)}


def nf4_state_of(inputs: dict[str, torch.Tensor], n_out: int):
    """The NF4State (bitsandbytes reads it too) that the SPEC's inputs describe, W: [n_out, K]."""
    x = inputs["x"]
    return state_from_inputs(inputs, (n_out, x.shape[1]), x.dtype)


def _int8_inputs(dims, dtype, device, gen) -> dict[str, torch.Tensor]:
    m, k, n = dims
    x = random_tensor((m, k), dtype, device, gen)
    q, scale = quantize_int8(random_tensor((n, k), torch.float32, device, gen))
    return {"x": x, "w_int8": q, "scale": scale, "w_dense": dequantize_int8_ref(q, scale, dtype)}
