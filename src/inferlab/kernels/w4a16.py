"""Weight-only quantized matmuls (lesson 8: W4A16): y = x @ W.T with W stored in 4 or 8 bits.

Three weight formats (quant_formats.py specifies each bit), one launcher each:

    w4a16_matmul(x, qweight)              int4 group-wise (G = 32, 64, 128), Int4Weight layout
    nf4_matmul(x, weight, quant_state)    NF4 as bitsandbytes stores a Linear's weight [N, K]
    int8_matmul(x, w_int8, scale)         int8 per output channel

x: [M, K] fp16/bf16 -> y: [M, N] in x's dtype, with W = [N, K] = [out_features, in_features]:

    W[n, k] = dtype( fp32 product of the format's integer and scale(s) )   rounded ONCE
    y[m, n] = dtype( fp32 sum over k of x[m, k] * W[n, k] )

That is the reference (`*_ref`); path 1 below skips W's rounding and path 4 lets cuBLAS sum.

## The paths, chosen by M, format and device (`choose_path`; experiment 7)

1. "fma" (M = 1, int4 and int8): a CUDA-core GEMV (w4a16_gemv.py). Decode reads every weight
   once: at M = 1 the 4096 -> 14336 layer reads 117 MB in bf16 but 30.8 MB in int4 g128 (29.4
   packed + 0.9 scales + 0.5 zeros), so ~3.8x over cuBLAS bf16 is the ceiling; what limits a
   kernel first is the ALU work per weight, so this path spends ~2.5 operations on each and
   never rounds W (zero point and scale come off once per 8 weights).
1b. "wgmma" (sm_90 only; int4 and NF4 at every M): w4a16_wgmma.py, written in
   Gluon so that the unpacked nibbles land in the registers wgmma reads its A operand from (K
   read in a permuted order, the same for x); up to 32 rows zero point and scale are folded
   once per group into the fp32 result, so W is never rounded (0007, runs 14-23). From 33
   rows that fold costs more than finishing the dequantization in the A registers, which
   w4a16_wgmma_tiled.py does (W rounded as the reference rounds it, M tiled; runs 45-52: on an
   H100 1.25-1.27x cuBLAS at 64 rows on the large layers). Wherever TMA can copy the weight,
   w4a16_wgmma_ws.py takes those rows instead: a warp-specialized kernel whose producer warp
   groups dequantize W into shared memory beside the consumers' asynchronous wgmma (runs 57-76:
   on an H100 1.53-1.66x cuBLAS at 64 rows on the large layers, 1.22-1.45x at 128, 0.90-1.08x
   at 256). nf4_wgmma.py does both for bitsandbytes' NF4 (the fold up to 64 rows), the 16 code
   values looked up in registers by `prmt` (the code rounded to 16 bits).
2. "gemv" (M <= 16): one BLOCK_M = 16 tensor-core tile holds every row of x; a program owns
   BLOCK_N outputs and one split of K (`split_k_for`: few output tiles would leave SMs idle).
3. "tiled" (M > 16): BLOCK_M x BLOCK_N x BLOCK_K tiles by M (TILED_CONFIGS), GROUP_M ordering so
   programs in flight share weight tiles through L2. Arithmetic intensity is 4M FLOP per weight
   byte for int4 (M for bf16), so W4A16 turns compute bound near M ~ 50-100 on an H100/H200,
   and the dequantization work then costs time that a bf16 GEMM does not pay.
4. "dequant", only with `materialize=True` (from M = 128 for int4, 64 for NF4: DEQUANT_MIN_M):
   the whole weight dequantized once into a scratch buffer, then cuBLAS (w4a16_dequant.py).
   Large M is cuBLAS's ground: this doubled the speed at M = 256 on an H200, at the cost of a
   bf16 copy of the weight for the duration of the call. Off by default: W is never
   materialized unless the caller says so.

On paths 2 and 3, W is bit for bit what "dequantize to x's dtype" gives, so the kernels differ
from their references (`*_ref`: dequantize, fp32 matmul, cast) only in the order of the fp32
sum. W never exists in HBM there: each program dequantizes a tile of W into registers and feeds
it to tl.dot (mma.sync or wgmma on sm_90) beside an fp32 accumulator. Path 4 rounds W the same
way, and cuBLAS sums.

## Where the code is

- w4a16_kernels.py: the tensor-core kernel of each format, and how each dequantizes in registers;
- w4a16_gemv.py: the CUDA-core GEMV for one row of x (int4, int8; NF4's, slower, as an option);
- w4a16_wgmma.py, nf4_wgmma.py: int4 (to 32 rows) and NF4 (every M) on sm_90's wgmma (Gluon);
- w4a16_wgmma_ws.py: int4 on sm_90's wgmma from 33 rows, warp-specialized (a producer dequantizes);
- w4a16_wgmma_tiled.py: the same rows where TMA cannot copy the weight, W dequantized into A registers;
- w4a16_dequant.py: the dequantize-then-cuBLAS path for large M (int4, NF4);
- _matmul_plan.py: `MatmulConfig`, the config tables, the path, split-K and `_launch`;
- _matmul_tiles.py: the tile pieces all of them share (program order, x loads, tl.dot, stores);
- w4a16_shapes.py: the SPECs' shapes, napkin math and inputs. This file: the references, the
  launchers and the SPECs, and every name above that callers import from here.

Every launcher takes `config=` to try another tiling (a `MatmulConfig`; `split_k` None = the rule).

## No GPU: Triton's interpreter

It holds bf16 as raw uint16 (arithmetic on raw bits is wrong) and truncates fp32 -> bf16. So there,
and for bf16 only (EMULATE_BF16), tiles are dequantized in fp32, rounded to bf16 precision by
integer ops while staying fp32, and tl.dot runs on fp32 operands; outputs round by nf4's
`_round_to_bf16`. fp16 runs the GPU code unchanged (numpy's fp16 arithmetic is IEEE).
"""

from __future__ import annotations

import copy

import torch

from inferlab.kernels import w4a16_kernels
from inferlab.kernels._launch import prepare_out, require_contiguous, validate

# Re-exported as well as used (noqa): callers import the weight-only matmuls' names from this module
from inferlab.kernels._matmul_plan import (  # noqa: F401
    DEQUANT_FORMATS,
    DEQUANT_MIN_M,
    FMA_CONFIGS,
    FMA_MAX_M,
    GEMV_CONFIG,
    GEMV_CONFIGS,
    GEMV_MAX_M,
    INTERPRETER_SMS,
    MAX_SPLIT_K,
    REDUCE_BLOCK,
    TARGET_PROGRAMS_PER_SM,
    TILED_CONFIGS,
    WGMMA_CONFIGS,
    WGMMA_MAX_M,
    WGMMA_MIN_M,
    LaunchPlan,
    MatmulConfig,
    _launch,
    choose_path,
    config_for,
    plan_launch,
    split_k_for,
    wgmma_config_for,
)
from inferlab.kernels.nf4 import _validated_args
from inferlab.kernels.nf4_wgmma import fit_blocks
from inferlab.kernels.nf4_wgmma import launch as launch_nf4_wgmma
from inferlab.kernels.nf4_wgmma import supports as nf4_wgmma_supports
from inferlab.kernels.quant_formats import (
    Int4Weight,
    dequantize_int4_ref,
    dequantize_int8_ref,
    dequantize_nf4_ref,
)
from inferlab.kernels.spec import KernelSpec
from inferlab.kernels.w4a16_dequant import int4_weight_t, nf4_weight
from inferlab.kernels.w4a16_gemv import (
    INT4_GEMV_MASKS,
    _int4_gemv_kernel,
    _int8_gemv_kernel,
    _nf4_gemv_kernel,
)
from inferlab.kernels.w4a16_kernels import (
    _INT4_MAGIC,
    INT4_MIN_BLOCK_K,
    _int8_matmul_kernel,
    _nf4_matmul_kernel,
    _w4a16_kernel,
)
from inferlab.kernels.w4a16_shapes import (  # noqa: F401
    BENCH_SHAPES,
    BENCH_TOKENS,
    LLAMA3_8B_LAYERS,
    SPEC_GROUP_SIZE,
    SPEC_NF4_BLOCKSIZE,
    TEST_SHAPES,
    _flops,
    _int4_bytes,
    _int4_inputs,
    _int8_bytes,
    _int8_inputs,
    _nf4_bytes,
    _nf4_inputs,
    nf4_state_of,
)
from inferlab.kernels.w4a16_wgmma import WgmmaConfig, int4_wgmma_matmul
from inferlab.kernels.w4a16_wgmma import available as wgmma_available
from inferlab.kernels.w4a16_wgmma_ws import nf4_ws_ready, tma_ready

ACT_DTYPES = (torch.float16, torch.bfloat16)


# ---------------------------------------------------------------- references (plain PyTorch)
def _matmul_ref(x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """x: [M, K], w: [N, K] already in x's dtype -> [M, N]: fp32 matmul, one rounding."""
    return (x.float() @ w.float().t()).to(x.dtype)


def w4a16_matmul_ref(x: torch.Tensor, qweight: Int4Weight) -> torch.Tensor:
    return _matmul_ref(x, dequantize_int4_ref(qweight, x.dtype))


def nf4_matmul_ref(x: torch.Tensor, weight: torch.Tensor, quant_state) -> torch.Tensor:
    fp32_state = copy.copy(quant_state)  # a shallow copy: the same tensors, dtype fp32
    fp32_state.dtype = torch.float32  # the fp32 product, rounded once below to x's dtype
    return _matmul_ref(x, dequantize_nf4_ref(weight, fp32_state).to(x.dtype))


def int8_matmul_ref(x: torch.Tensor, w_int8: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    return _matmul_ref(x, dequantize_int8_ref(w_int8, scale, x.dtype))


# ---------------------------------------------------------------- launchers
def _check_x(x: torch.Tensor, K: int) -> None:
    validate({"x": x}, ACT_DTYPES)
    if x.dim() != 2:
        raise ValueError(
            f"x must be 2-D [M, K], not {tuple(x.shape)}; flatten leading dims: x.reshape(-1, x.shape[-1])"
        )
    if x.shape[1] != K:
        raise ValueError(f"x has {x.shape[1]} columns but the weight has in_features K = {K}")


def _check_on(device: torch.device, **tensors: torch.Tensor) -> None:
    for name, t in tensors.items():
        if t.device != device:
            raise ValueError(f"{name} is on {t.device} but x is on {device}")


def _check_wgmma(x: torch.Tensor, config: WgmmaConfig) -> None:
    if not wgmma_available(x.device):
        raise ValueError("a WgmmaConfig needs an sm_90 GPU (wgmma): use a MatmulConfig here")
    if x.shape[0] > WGMMA_MAX_M and not config.dequantize_a:
        raise ValueError(
            f"the wgmma kernel takes at most {WGMMA_MAX_M} rows of x, not {x.shape[0]} "
            "(dequantize_a=True takes any M)"
        )


def _block_divides(block_k: int, quant_block: int, what: str) -> None:
    if block_k % quant_block and quant_block % block_k:
        raise ValueError(f"block_k {block_k} and {what} {quant_block}: one must divide the other")


def w4a16_matmul(
    x: torch.Tensor,
    qweight: Int4Weight,
    out: torch.Tensor | None = None,
    *,
    config: MatmulConfig | WgmmaConfig | None = None,
    materialize: bool = False,
) -> torch.Tensor:
    """x: [M, K] fp16/bf16, qweight: Int4Weight of W [N, K] -> x @ W.T: [M, N] in x's dtype.

    `config` forces a fused kernel's tiling (a WgmmaConfig: the sm_90 wgmma kernels, M <= 64, or
    any M with dequantize_a);
    `materialize=True` lets M >= DEQUANT_MIN_M["int4"] dequantize W once into a bf16/fp16
    scratch buffer and call cuBLAS (faster there; costs the buffer, N x K x 2 bytes, for the
    duration of the call)."""
    if not isinstance(qweight, Int4Weight):
        raise TypeError(
            f"qweight must be an Int4Weight (quantize_int4, int4_from_awq or int4_from_gptq make one), "
            f"not {type(qweight).__name__}"
        )
    N, K = qweight.shape
    G = qweight.group_size
    if K % G:
        raise ValueError(f"in_features K = {K} is not a multiple of group_size {G}")
    _check_x(x, K)
    if qweight.scales.dtype != x.dtype:
        raise TypeError(
            f"qweight.scales is {qweight.scales.dtype} but x is {x.dtype}; quantize with scale_dtype=x.dtype"
        )
    zeros = qweight.zeros
    pieces = {"qweight.qweight": qweight.qweight, "qweight.scales": qweight.scales}
    if zeros is not None:
        pieces["qweight.zeros"] = zeros
    _check_on(x.device, **pieces)
    require_contiguous(**pieces)
    out = prepare_out(out, (x.shape[0], N), x)
    path = choose_path(x.shape[0], "int4", materialize, x.device)
    if config is None and path == "dequant":
        return torch.mm(x, int4_weight_t(qweight, x.dtype), out=out)
    if isinstance(config, WgmmaConfig) or (config is None and path == "wgmma"):
        config = config or wgmma_config_for(x.shape[0], tma=tma_ready(qweight), group_size=G)
        _check_wgmma(x, config)
        if x.shape[0] == 0:
            return out
        return int4_wgmma_matmul(x, qweight, out, config)
    cfg = config or config_for(x.shape[0])
    if cfg.fma:
        constexprs = dict(GROUP_SIZE=G, HAS_ZEROS=zeros is not None)
        weight_args = (qweight.qweight, qweight.scales, qweight.scales if zeros is None else zeros)
        weight_args += INT4_GEMV_MASKS
        return _launch(_int4_gemv_kernel, x, out, N, K, weight_args, constexprs, cfg)
    if cfg.planes and cfg.block_k < INT4_MIN_BLOCK_K:
        raise ValueError(
            f"block_k {cfg.block_k} is too small for int4 planes: each of the 8 nibble planes is a "
            f"tl.dot over block_k / 8 inputs, and tensor cores need 16 (block_k >= {INT4_MIN_BLOCK_K})"
        )
    if cfg.planes and cfg.swap_ab:
        raise ValueError("swap_ab needs planes=False: the nibble planes are right-hand operands")
    _block_divides(cfg.block_k, G, "group_size")
    constexprs = dict(
        GROUP_SIZE=G,
        ONE_GROUP=cfg.block_k <= G,
        HAS_ZEROS=zeros is not None,
        MAGIC=_INT4_MAGIC[x.dtype],
        PLANES=cfg.planes,
    )
    weight_args = (qweight.qweight, qweight.scales, qweight.scales if zeros is None else zeros)
    return _launch(_w4a16_kernel, x, out, N, K, weight_args, constexprs, cfg)


def nf4_matmul(
    x: torch.Tensor, weight: torch.Tensor, quant_state, out: torch.Tensor | None = None, *,
    config: MatmulConfig | WgmmaConfig | None = None, materialize: bool = False,
) -> torch.Tensor:  # fmt: skip
    """x: [M, K], weight: packed NF4 of W [N, K] (bitsandbytes' layout and QuantState) -> x @ W.T.

    W is rounded once to x's dtype (bitsandbytes' matmul_4bit rounds to quant_state.dtype, then to
    x's: the same bits whenever quant_state.dtype is x's dtype or fp32); on sm_90 the wgmma kernel
    (nf4_wgmma.py) rounds the code instead and, below 64 rows, scales in fp32 (an error of the
    same size); from 64 rows (w4a16_wgmma_ws.py) it rounds code x absmax again. `config` and
    `materialize` as for `w4a16_matmul` (DEQUANT_MIN_M["nf4"] rows)."""
    validated = _validated_args(weight, quant_state)
    shape, _, blocksize, absmax2, code2, offset, blocksize2 = validated
    if len(shape) != 2:
        raise ValueError(f"quant_state.shape must be 2-D [N, K] (out_features, in_features), not {shape}")
    N, K = shape
    _check_x(x, K)
    if K % blocksize:
        raise ValueError(
            f"in_features K = {K} is not a multiple of quant_state.blocksize {blocksize}: "
            "a quantization block would span two rows of W"
        )
    _check_on(x.device, weight=weight)
    out = prepare_out(out, (x.shape[0], N), x)
    path = choose_path(x.shape[0], "nf4", materialize, x.device)
    if config is None and path == "dequant":
        return torch.mm(x, nf4_weight(weight, quant_state, x.dtype).t(), out=out)
    # a blocksize (or weight) the wgmma kernel does not take goes on to the tl kernels
    wgmma = config is None and path == "wgmma" and nf4_wgmma_supports(weight, blocksize)
    if isinstance(config, WgmmaConfig) or wgmma:
        tma = nf4_ws_ready(weight, blocksize, N, K)
        config = config or fit_blocks(wgmma_config_for(x.shape[0], "nf4", tma=tma), K, blocksize)
        _check_wgmma(x, config)
        if x.shape[0] == 0:
            return out
        return launch_nf4_wgmma(x, weight, quant_state, validated, out, config)
    cfg = config or config_for(x.shape[0], "nf4")
    if cfg.fma and cfg.block_k != blocksize:
        raise ValueError(
            f"the NF4 CUDA-core GEMV takes one quantization block per K step: block_k must be "
            f"quant_state.blocksize {blocksize}, not {cfg.block_k}"
        )
    block_k = cfg.block_k
    _block_divides(block_k, blocksize, "quant_state.blocksize")
    nested = absmax2 is not None
    absmax, code = quant_state.absmax, quant_state.code
    weight_args = (
        weight, absmax, code,
        absmax2 if nested else absmax, code2 if nested else code, offset if nested else code,
        blocksize2,
    )  # fmt: skip
    constexprs = dict(BLOCKSIZE=blocksize, ABSMAX_PER_TILE=max(1, block_k // blocksize), NESTED=nested)
    if cfg.fma:  # its sums never round W, so an FMA in the absmax (an fp32 ulp) does not show
        return _launch(_nf4_gemv_kernel, x, out, N, K, weight_args, constexprs, cfg)
    # no FMA: bitsandbytes rounds code2 * absmax2 before adding offset
    return _launch(_nf4_matmul_kernel, x, out, N, K, weight_args, constexprs, cfg, fp_fusion=False)


def int8_matmul(
    x: torch.Tensor, w_int8: torch.Tensor, scale: torch.Tensor, out: torch.Tensor | None = None, *,
    config: MatmulConfig | None = None,
) -> torch.Tensor:  # fmt: skip
    """x: [M, K], w_int8: int8 [N, K], scale: [N] per output channel -> x @ (w_int8 * scale).T."""
    for name, t in (("w_int8", w_int8), ("scale", scale)):
        if not isinstance(t, torch.Tensor):
            raise TypeError(f"{name} must be a torch.Tensor, not {type(t).__name__}")
    if w_int8.dtype != torch.int8 or w_int8.dim() != 2:
        raise TypeError(f"w_int8 must be int8 [N, K], not {w_int8.dtype} {tuple(w_int8.shape)}")
    N, K = w_int8.shape
    _check_x(x, K)
    if not scale.is_floating_point() or scale.numel() != N:
        raise ValueError(
            f"scale must be a float tensor of N = {N} values, not {scale.dtype} {tuple(scale.shape)}"
        )
    _check_on(x.device, w_int8=w_int8, scale=scale)
    require_contiguous(w_int8=w_int8, scale=scale)
    out = prepare_out(out, (x.shape[0], N), x)
    cfg = config or config_for(x.shape[0], "int8")
    kernel = _int8_gemv_kernel if cfg.fma else _int8_matmul_kernel
    return _launch(kernel, x, out, N, K, (w_int8, scale), {}, cfg)


# ---------------------------------------------------------------- specs (shapes and inputs: w4a16_shapes.py)
def _int4_weight(qweight, scales, zeros=None) -> Int4Weight:
    return Int4Weight(qweight, scales, zeros, SPEC_GROUP_SIZE)


def _int4_reference(x, qweight, scales, zeros=None, w_dense=None):
    return w4a16_matmul_ref(x, _int4_weight(qweight, scales, zeros))


def _int4_launcher(x, qweight, scales, zeros=None, w_dense=None, out=None, materialize=False):
    return w4a16_matmul(x, _int4_weight(qweight, scales, zeros), out=out, materialize=materialize)


def _nf4_n(x, weight) -> int:
    return 2 * weight.numel() // x.shape[1]  # K is even: no padding nibble


def _nf4_reference(x, weight, w_dense=None, **state):
    inputs = {"x": x, **state}
    return nf4_matmul_ref(x, weight, nf4_state_of(inputs, _nf4_n(x, weight)))


def _nf4_launcher(x, weight, w_dense=None, out=None, materialize=False, config=None, **state):
    inputs = {"x": x, **state}
    state_ = nf4_state_of(inputs, _nf4_n(x, weight))
    return nf4_matmul(x, weight, state_, out=out, materialize=materialize, config=config)


def _int8_reference(x, w_int8, scale, w_dense=None):
    return int8_matmul_ref(x, w_int8, scale)


def _int8_launcher(x, w_int8, scale, w_dense=None, out=None):
    return int8_matmul(x, w_int8, scale, out=out)


def _dense_in_dtype(x, *args, w_dense, **kwargs):
    """PyTorch's own computation: the dequantized weight, torch.mm in x's dtype (cuBLAS, which may
    sum in reduced precision: torch.backends.cuda.matmul.allow_bf16_reduced_precision_reduction)."""
    return torch.mm(x, w_dense.t())


_GEMV_ROUNDING = (
    "at M = 1 the CUDA-core GEMV (w4a16_gemv.py) scales each group's exact sum of x (q - z) once "
    "instead of rounding every weight to the 16-bit type first; the two differ by the sum of the "
    "weights' roundings, which follows the size of the summed terms (the tests hold both to fp64)"
)
_COMMON = dict(
    # `inferlab explain FILE --compiled` compiles FILE's kernels through the SPECs whose module
    # it is: these SPECs launch the kernels of w4a16_kernels.py (this file has none of its own)
    module=w4a16_kernels.__name__,
    low_precision_reference=_dense_in_dtype,
    test_shapes=TEST_SHAPES,
    bench_shapes=BENCH_SHAPES,
    flops=_flops,
    bound="memory",  # decode reads every weight once per token; large M turns compute bound
    dtypes=ACT_DTYPES,
    lesson=8,
)
W4A16_SPEC = KernelSpec(
    name="w4a16_matmul",
    launcher=_int4_launcher,
    reference=_int4_reference,
    make_inputs=_int4_inputs,
    bytes_moved=_int4_bytes,
    baselines=("cublas-bf16", "torch-int4pack", "inferlab-materialize"),
    error_scales_with_rms=_GEMV_ROUNDING.replace(
        "(w4a16_gemv.py) scales",
        "(w4a16_gemv.py), and from 1 to 32 rows on sm_90 the wgmma kernel (w4a16_wgmma.py), scale",
    ),
    summary="x @ W.T, W int4 group-wise (g128, zero points) dequantized in registers: GEMV, wgmma or tiled",
    **_COMMON,
)
NF4_MATMUL_SPEC = KernelSpec(
    name="nf4_matmul",
    launcher=_nf4_launcher,
    reference=_nf4_reference,
    make_inputs=_nf4_inputs,
    bytes_moved=_nf4_bytes,
    baselines=("cublas-bf16", "bitsandbytes", "inferlab-materialize", "inferlab-ws"),
    summary="x @ W.T with W in bitsandbytes NF4 (double-quantized absmax), dequantized in registers",
    error_scales_with_rms=(
        "on sm_90 the wgmma kernels round each NF4 code to the 16-bit type and, below 64 rows, "
        "scale the fp32 sum by the absmax (from 64 rows they round code x absmax once more), where "
        "the reference rounds code x absmax once; the two differ by the sum of the weights' "
        "roundings, which follows the size of the summed terms (the tests hold both to fp64)"
    ),
    **_COMMON,
)
INT8_MATMUL_SPEC = KernelSpec(
    name="int8_matmul",
    launcher=_int8_launcher,
    reference=_int8_reference,
    make_inputs=_int8_inputs,
    bytes_moved=_int8_bytes,
    baselines=("cublas-bf16",),
    error_scales_with_rms=_GEMV_ROUNDING.replace("x (q - z)", "x q").replace("group's", "channel's"),
    summary="x @ W.T with W int8 per output channel, dequantized in registers",
    **_COMMON,
)
