"""How a weight-only matmul is launched: the configs (tiles per path and weight format), the path
M takes (`choose_path`), split-K (`split_k_for`), the plan that puts them together
(`plan_launch`), and `_launch`, which follows it: the matmul kernel, then the split-K reduction.

Split-K: each split writes fp32 partials [SPLIT_K, M, N]; they are summed in split order and
rounded once, either by a second launch (`_splitk_reduce_kernel`) or, where the config says
`reduce_in_kernel`, by the split of each output tile that finishes last (`_reduce_if_last_split`;
one launch). Both are deterministic (atomically adding the partials into y would let the arrival
order move the last bit, and would need y zeroed first) and give the same bits. The in-kernel
counters are one small int32 buffer per device and stream (`tile_counters`), zeroed once and left
zeroed by every launch. On an H100 (experiment 0007, run 12) the one launch saved 0.5-1.4 us on
the CUDA-core GEMV where few output tiles are split many ways, lost ~1 us on 4096 -> 14336, and
lost 2-16% on the tensor-core GEMVs (each program's release of its partials waits for its stores
before it can exit), so only FMA_CONFIGS use it. With SPLIT_K = 1 the kernel stores y itself.

## Configs (module constants, no autotuning at import)

WGMMA_CONFIGS for int4 (from 33 rows w4a16_wgmma_ws.py where TMA can copy the weight, else
WGMMA_TILED_CONFIGS: w4a16_wgmma_tiled.py) and NF4_WGMMA_CONFIGS for NF4 (from 64 rows
w4a16_wgmma_ws.py too, else NF4_WGMMA_TILED_CONFIGS), any M on sm_90 (w4a16_wgmma.py, nf4_wgmma.py;
chosen on an H100 and an H200 by `benchmarks/sweep_wgmma.py`),
else FMA_CONFIGS (CUDA-core GEMV) for one row where a
format has one, GEMV_CONFIGS up to
GEMV_MAX_M, TILED_CONFIGS by M above; a caller that passes `materialize=True` lets the weight be
dequantized once and multiplied by cuBLAS from DEQUANT_MIN_M rows (w4a16_dequant.py). Split-K
from each config's programs_per_sm and MAX_SPLIT_K. Each chosen by `benchmarks/sweep_w4a16.py`
on an H200 (the logs are in experiments/0007-weight-only-matmuls/logs/); `benchmarks/gpu_w4a16.sh`
times the baselines.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import torch

from inferlab.kernels._matmul_tiles import _splitk_reduce_kernel
from inferlab.kernels._triton import triton
from inferlab.kernels.device import select_backend
from inferlab.kernels.nf4 import _bf16_by_int
from inferlab.kernels.w4a16_wgmma import WgmmaConfig
from inferlab.kernels.w4a16_wgmma import available as wgmma_available


@dataclass(frozen=True, slots=True)
class MatmulConfig:
    """One tiling: tile sizes, L2 grouping, warps, pipeline stages, split-K (None: the rule),
    and two ways to feed the tensor cores: `swap_ab` computes y.T = W @ x.T (the weight tile as
    the left operand) and `planes` (int4 only) unpacks words as 8 nibble planes rather than one
    whole [BLOCK_N, BLOCK_K] tile."""

    block_m: int
    block_n: int
    block_k: int
    group_m: int = 8
    num_warps: int = 4
    num_stages: int = 3
    split_k: int | None = None
    swap_ab: bool = False
    planes: bool = True
    fma: bool = False  # CUDA cores, no tensor cores (w4a16_gemv.py): int4 and int8 decode
    programs_per_sm: int = 2  # the split-K rule's target (`split_k_for`) when split_k is None
    reduce_in_kernel: bool = False  # split-K: the last split sums the partials (no second launch)

    def __post_init__(self) -> None:
        for name in ("block_m", "block_n", "block_k", "group_m"):
            value = getattr(self, name)
            if value < 1 or value & (value - 1):
                raise ValueError(f"{name} must be a power of two, not {value}")
        if self.block_k < 16:
            raise ValueError(
                f"block_k must be at least 16 (two int4 words, one tl.dot step), not {self.block_k}"
            )
        if self.fma and self.block_m != 1:
            raise ValueError(f"fma takes one row of x per program (block_m 1), not block_m {self.block_m}")
        if self.split_k is not None and self.split_k < 1:
            raise ValueError(f"split_k must be None or >= 1, not {self.split_k}")

    @property
    def label(self) -> str:
        split = f"rule({self.programs_per_sm}/SM)" if self.split_k is None else self.split_k
        feed = " swap_ab" if self.swap_ab else ""
        feed += "" if self.planes else " tile"
        feed += " fma" if self.fma else ""
        feed += " reduce=last-split" if self.reduce_in_kernel else ""
        return (
            f"{self.block_m}x{self.block_n}x{self.block_k} group_m={self.group_m} "
            f"warps={self.num_warps} stages={self.num_stages} split_k={split}{feed}"
        )


# Chosen by benchmarks/sweep_w4a16.py on an H200 (CUDA-graph replays over rotating weight copies,
# Llama-3-8B layers, bf16; logs in experiments/0007-weight-only-matmuls/): the fastest config that
# passed its check at each (format, M), where one config led across the layers.
FMA_MAX_M = 1  # CUDA-core GEMV (w4a16_gemv.py) for one row: at M = 4 it was 2x slower than M = 1
FMA_CONFIGS = {  # NF4's (one table look-up per weight) measured slower than its tensor-core path
    "int4": MatmulConfig(1, 64, 256, 1, 4, 1, fma=True, programs_per_sm=2, reduce_in_kernel=True),
    "int8": MatmulConfig(1, 32, 512, 1, 4, 1, fma=True, reduce_in_kernel=True),
}
GEMV_MAX_M = 16  # decode and small batches: one BLOCK_M = 16 tensor-core tile holds every row
GEMV_CONFIGS = {
    "int4": MatmulConfig(16, 128, 256, 1, num_warps=4, num_stages=4),  # nibble planes
    "nf4": MatmulConfig(16, 64, 128, 1, num_warps=4, num_stages=4, swap_ab=True, planes=False),
    "int8": MatmulConfig(16, 32, 256, 1, num_warps=4, num_stages=4, planes=False),
}
GEMV_CONFIG = GEMV_CONFIGS["int4"]
# int4 on sm_90: up to 32 rows the wgmma kernel whose unpacked nibbles are already wgmma's A
# registers, each group's product folded in fp32 (w4a16_wgmma.py; chosen on an H100 by
# benchmarks/sweep_wgmma.py, 0007 runs 14-19; from 17 rows x is permuted and summed once per call,
# `prepare_x`); from 33 rows W dequantized whole into A and M tiled (w4a16_wgmma_tiled.py; chosen
# on an H200 by sweep_wgmma.py --tiled, 0007 runs 45-49), which warp-specialized kernels
# (w4a16_wgmma_ws.py) replaced where TMA can copy the weight. (largest M or None, config)
WGMMA_MIN_M, WGMMA_MAX_M = 1, 64  # the fold kernels' rows (int4 and NF4)
_TILED = dict(programs_per_sm=1, stages=3, dequantize_a=True)  # w4a16_wgmma_tiled.py
# w4a16_wgmma_ws.py: two consumer warp groups of 64 weight rows, K split into one wave
_WS = dict(block_n=128, num_warps=8, programs_per_sm=1, dequantize_a=True, warp_specialized=True)
_WS_64 = WgmmaConfig(block_m=64, stages=6, dequantizers=2, **_WS)  # K steps of 64 (or the group)
WGMMA_CONFIGS: tuple[tuple[int | None, WgmmaConfig], ...] = (
    (1, WgmmaConfig(block_n=128, block_m=8, programs_per_sm=2, stages=2)),
    (16, WgmmaConfig(block_n=128, programs_per_sm=1, stages=2)),
    (32, WgmmaConfig(block_n=128, block_m=32, programs_per_sm=1, stages=2, prepare_x=True)),
    # from 33 rows producer warp groups dequantize W into shared memory beside the consumers'
    # wgmma (sweep_wgmma.py --ws: on the four layers 1.2-1.6x the tiled kernel at M = 128 and 256
    # on an H200, 0007 runs 59-60; 1.1-1.4x at M = 64 on an H100, run 64); to 64 rows in K steps
    # of 128 where the group is 128 (7-8% faster on the large layers, level on the small ones,
    # H100 run 75; `wgmma_config_for` takes _WS_64 for other groups)
    (64, WgmmaConfig(block_m=64, stages=4, dequantizers=2, step_k=128, **_WS)),
    (128, WgmmaConfig(block_m=128, stages=6, dequantizers=2, **_WS)),
    (None, WgmmaConfig(block_m=256, stages=4, **_WS)),
)
# where TMA cannot take the weight (N not a multiple of 16, a tensor not 16-byte aligned: see
# w4a16_wgmma_ws.tma_ready), W dequantized into the A registers instead (0007 runs 45-49)
WGMMA_TILED_CONFIGS: tuple[tuple[int | None, WgmmaConfig], ...] = (
    (64, WgmmaConfig(block_n=128, block_m=64, num_warps=8, words_in_registers=True, **_TILED)),
    (128, WgmmaConfig(block_n=64, block_m=128, **_TILED)),
    (None, WgmmaConfig(block_n=64, block_m=256, step_k=64, words_in_registers=True, **_TILED)),
)

WGMMA_FORMATS = ("int4", "nf4")
# NF4 (nf4_wgmma.py), chosen on an H200 (sweep_wgmma.py --format nf4, 0007 runs 32-35, 41): 64-row
# tiles, two 64-weight absmax blocks per K step, 4 programs per SM; x prepared from 17 rows. From
# 64 rows warp groups look the codes up into shared memory beside the wgmma, with int4's configs
# (w4a16_wgmma_ws.py, NF4=True; on an H100 against the kernels before it, 0007 runs 68-69: at
# M = 64 level or 1.25-1.27x, at 128 1.13-1.53x, at 256 1.38-1.62x on the four layers; at 32
# 0.73-0.88x, so the fold kernel keeps its rows below 64, where it was not measured against it).
_NF4_FOLD_64 = WgmmaConfig(block_n=64, block_m=64, programs_per_sm=4, stages=3, prepare_x=True)
NF4_WGMMA_CONFIGS: tuple[tuple[int | None, WgmmaConfig], ...] = (
    (1, WgmmaConfig(block_n=64, block_m=8, programs_per_sm=4, stages=2, blocks_per_step=2)),
    (16, WgmmaConfig(block_n=64, programs_per_sm=4, stages=2, blocks_per_step=2)),
    (32, WgmmaConfig(block_n=64, block_m=32, programs_per_sm=4, stages=2, prepare_x=True, blocks_per_step=2)),
    (63, _NF4_FOLD_64),
    (64, _WS_64),
    (128, WgmmaConfig(block_m=128, stages=6, dequantizers=2, **_WS)),
    (None, WgmmaConfig(block_m=256, stages=4, **_WS)),
)
# where TMA cannot copy NF4's weight (w4a16_wgmma_ws.nf4_ws_ready): to 64 rows the fold, beyond
# the codes scaled in the A registers and M tiled, 128 x rows and two absmax blocks a step
# (sweep_wgmma.py --tiled --format nf4, 0007 run 54)
NF4_WGMMA_TILED_CONFIGS: tuple[tuple[int | None, WgmmaConfig], ...] = (
    (64, _NF4_FOLD_64),
    (None, WgmmaConfig(block_n=64, block_m=128, blocks_per_step=2, prepare_x=True, **_TILED)),
)


def ws_config_for(M: int) -> WgmmaConfig:
    """NF4's warp-specialized config for M rows (w4a16_wgmma_ws.py; 64-row tiles below 64 rows):
    what the bench times NF4 with below the rows where it is NF4's default (`inferlab-ws`)."""
    return next(c for max_m, c in NF4_WGMMA_CONFIGS if c.warp_specialized and (max_m is None or M <= max_m))


def wgmma_config_for(M: int, fmt: str = "int4", tma: bool = True, group_size: int = 128) -> WgmmaConfig:
    """The wgmma kernels' config for M rows of format `fmt` ("int4" or "nf4"); `tma` False: the
    weight's tensors cannot be copied by TMA, so no warp-specialized kernel; int4's `group_size`
    other than 128: no K steps of 128 (a step would span two groups)."""
    table = NF4_WGMMA_CONFIGS if fmt == "nf4" else WGMMA_CONFIGS
    config = next(c for max_m, c in table if max_m is None or M <= max_m)
    if config.step_k == 128 and group_size != 128:
        config = _WS_64
    if config.warp_specialized and not tma:
        fallback = NF4_WGMMA_TILED_CONFIGS if fmt == "nf4" else WGMMA_TILED_CONFIGS
        config = next(c for max_m, c in fallback if max_m is None or M <= max_m)
    return config


# (largest M, config) past GEMV_MAX_M, for every format; the whole-tile unpacking led everywhere
TILED_CONFIGS: tuple[tuple[int | None, MatmulConfig], ...] = (
    (32, MatmulConfig(32, 64, 128, 8, num_warps=4, num_stages=3, swap_ab=True, planes=False)),
    (64, MatmulConfig(64, 64, 64, 8, num_warps=4, num_stages=3, planes=False)),
    (None, MatmulConfig(128, 64, 64, 8, num_warps=4, num_stages=3, planes=False)),
)
# With materialize=True, from these M int4 and NF4 dequantize the whole weight once into a scratch
# buffer and call cuBLAS (w4a16_dequant.py): where the sweep measured that level with the fused
# tiled kernel (int4: 73 vs 73 us at M = 64) or ahead (NF4: 74 vs 111 us at M = 64;
# logs/run10-sweep-dequant.log). Off by default: the contract is that W is never
# materialized (a quantized model should not hold a bf16 copy of a layer, even briefly). int8 has
# no such path (a dequantization pass would move 3x its weight's bytes).
DEQUANT_MIN_M = {"int4": 128, "nf4": 64}
DEQUANT_FORMATS = tuple(DEQUANT_MIN_M)
TARGET_PROGRAMS_PER_SM = 2  # split K until output tiles x splits reach this many programs per SM
MAX_SPLIT_K = 16  # partials are SPLIT_K x M x N fp32: more splits cost more than they hide
# the tiled wgmma kernels (dequantize_a) move M x N x 4 bytes of partials per split: from 65 rows
# (4096 -> 1024 at M = 128 and 256) 8 splits were 14-20% faster than the rule's 16; at 64 rows 16
# still led by 5% (0007 runs 55-56)
TILED_MAX_SPLIT_K = 8
INTERPRETER_SMS = 2  # what the split-K rule assumes without a GPU (keeps test programs few)
REDUCE_BLOCK = 1024  # outputs per program of the split-K reduction (second launch)
MIN_COUNTERS = 1 << 16  # tile counters allocated at once (256 KB): enough for any Llama layer


@dataclass(frozen=True, slots=True)
class LaunchPlan:
    path: str  # "fma", "gemv" or "tiled": the fused kernel's path (`choose_path`)
    config: MatmulConfig
    split_k: int  # programs along K, every one non-empty
    k_per_split: int  # a multiple of config.block_k
    grid: tuple[int, int]  # (output tiles, split_k)


def choose_path(
    M: int, fmt: str = "int4", materialize: bool = False, device: torch.device | None = None
) -> str:
    """Path for M rows of x in weight format `fmt` ("int4", "nf4", "int8"): int4 and NF4 take
    "wgmma" from WGMMA_MIN_M to WGMMA_MAX_M rows when `device` is an sm_90 GPU (w4a16_wgmma.py,
    nf4_wgmma.py); else
    "fma" (CUDA-core GEMV) for one row where the format has one, "gemv" (one 16-row tensor-core
    tile, split-K) up to GEMV_MAX_M; "dequant" (the whole weight dequantized, then cuBLAS) from the format's
    DEQUANT_MIN_M when the caller allows `materialize`; past that int4 and NF4 on sm_90 stay on
    "wgmma" (W dequantized whole, M tiled: int4 w4a16_wgmma_ws.py, nf4_wgmma.py);
    else "tiled"."""
    on_hopper = device is not None and wgmma_available(device)
    if fmt in WGMMA_FORMATS and WGMMA_MIN_M <= M <= WGMMA_MAX_M and on_hopper:
        return "wgmma"
    if M <= FMA_MAX_M and fmt in FMA_CONFIGS:
        return "fma"
    if materialize and M >= DEQUANT_MIN_M.get(fmt, float("inf")):
        return "dequant"
    if fmt in WGMMA_FORMATS and M > WGMMA_MAX_M and on_hopper:
        return "wgmma"
    return "gemv" if M <= GEMV_MAX_M else "tiled"


def config_for(M: int, fmt: str = "int4") -> MatmulConfig:
    """The fused kernel's config for M rows (on the "dequant" path: the tiled one, used only
    when a caller passes it as `config=` to force the fused kernel)."""
    path = choose_path(M, fmt)
    if path == "fma":
        return FMA_CONFIGS[fmt]
    if path == "gemv":
        return GEMV_CONFIGS[fmt]
    return next(c for max_m, c in TILED_CONFIGS if max_m is None or M <= max_m)


@functools.cache
def _num_sms(device: torch.device) -> int:
    if device.type != "cuda":
        return INTERPRETER_SMS
    return torch.cuda.get_device_properties(device).multi_processor_count


def split_k_for(
    num_tiles: int, k_tiles: int, num_sms: int, per_sm: int = TARGET_PROGRAMS_PER_SM, most: int = MAX_SPLIT_K
) -> int:
    """The fewest splits (a power of two) that give `per_sm` programs per SM, at most `most`
    (MAX_SPLIT_K) and at most one split per BLOCK_K step of K."""
    split = 1
    while num_tiles * split < per_sm * num_sms and split * 2 <= min(k_tiles, most):
        split *= 2
    return split


def plan_launch(
    M: int, N: int, K: int, device: torch.device, config: MatmulConfig | None = None
) -> LaunchPlan:
    """Path, tiles and split-K for an [M, K] x [K, N] product (M, N, K >= 1); `config` None is
    the int4 default (`config_for`)."""
    cfg = config or config_for(M)
    path = "fma" if cfg.fma else ("gemv" if M <= GEMV_MAX_M else "tiled")  # the fused kernel's
    num_tiles = triton.cdiv(M, cfg.block_m) * triton.cdiv(N, cfg.block_n)
    k_tiles = triton.cdiv(K, cfg.block_k)
    per_sm = cfg.programs_per_sm
    split = cfg.split_k or split_k_for(num_tiles, k_tiles, _num_sms(torch.device(device)), per_sm)
    k_per_split = triton.cdiv(k_tiles, min(split, k_tiles)) * cfg.block_k
    split = triton.cdiv(K, k_per_split)  # splits that would start past K are dropped
    return LaunchPlan(path, cfg, split, k_per_split, (num_tiles, split))


_COUNTERS: dict[tuple[torch.device, int], torch.Tensor] = {}


def tile_counters(device: torch.device, num_tiles: int) -> torch.Tensor:
    """Zeroed int32 arrival counters, at least one per output tile, for split-K's in-kernel
    reduction. One buffer per (device, stream): launches on one stream run one after another and
    each leaves its counters at zero, while two streams could run two launches at once. During
    CUDA-graph capture a missing buffer is made per call, not cached: its zeroing is recorded into
    the graph and only happens when the graph runs."""
    stream = torch.cuda.current_stream(device).cuda_stream if device.type == "cuda" else 0
    key = (device, stream)
    counters = _COUNTERS.get(key)
    if counters is not None and counters.numel() >= num_tiles:
        return counters
    counters = torch.zeros(max(num_tiles, MIN_COUNTERS), dtype=torch.int32, device=device)
    if device.type != "cuda" or not torch.cuda.is_current_stream_capturing():
        _COUNTERS[key] = counters
    return counters


def _launch(kernel, x, out, N: int, K: int, weight_args: tuple, constexprs: dict, config, fp_fusion=True):
    """Plan, allocate the split-K partials if any, launch the matmul (and, unless the config
    reduces in the kernel, the reduction)."""
    M = x.shape[0]
    if M == 0 or N == 0:
        return out
    if K == 0:
        return out.zero_()
    plan = plan_launch(M, N, K, x.device, config)
    cfg = plan.config
    write_partial = plan.split_k > 1
    reduce_in_kernel = write_partial and cfg.reduce_in_kernel
    partial = (
        torch.empty((plan.split_k, M, N), dtype=torch.float32, device=x.device) if write_partial else out
    )
    counters = tile_counters(x.device, plan.grid[0]) if reduce_in_kernel else partial
    bf16_by_int = _bf16_by_int(x.device)
    kernel[plan.grid](
        x, out, partial, counters, M, N, K, x.stride(0), x.stride(1), plan.k_per_split, *weight_args,
        **constexprs,
        BLOCK_M=cfg.block_m, BLOCK_N=cfg.block_n, BLOCK_K=cfg.block_k, GROUP_M=cfg.group_m,
        SWAP_AB=cfg.swap_ab, WRITE_PARTIAL=write_partial, LAST_SPLIT_REDUCES=reduce_in_kernel,
        EMULATE_BF16=select_backend().interpreted and x.dtype == torch.bfloat16,
        BF16_BY_INT=bf16_by_int,
        num_warps=cfg.num_warps, num_stages=cfg.num_stages, enable_fp_fusion=fp_fusion,
    )  # fmt: skip
    if write_partial and not reduce_in_kernel:
        reduce_partials(partial, out)
    return out


def reduce_partials(partial: torch.Tensor, out: torch.Tensor) -> None:
    """Split-K's second launch: fp32 partials [SPLIT_K, M, N] summed in split order into `out`."""
    numel = out.numel()
    _splitk_reduce_kernel[(triton.cdiv(numel, REDUCE_BLOCK),)](
        partial, out, numel, partial.shape[0], BLOCK=REDUCE_BLOCK, BF16_BY_INT=_bf16_by_int(out.device)
    )
