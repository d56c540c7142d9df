"""Tile pieces shared by the weight-only matmul kernels (w4a16_kernels.py, w4a16_gemv.py): program
coordinates, loading x, the tensor-core step, storing y or split-K partials, and the reduction
that sums the partials in a fixed order. Each is a @triton.jit function inlined into its caller."""

from inferlab.kernels._triton import tl, triton
from inferlab.kernels.nf4 import _round_to_bf16


@triton.jit
def _bf16_precision(w):
    """fp32 -> the nearest bf16 value (ties to even), kept in fp32: the interpreter's bf16 tile."""
    bits = w.to(tl.uint32, bitcast=True)
    bits = ((bits + 0x7FFF + ((bits >> 16) & 1)) >> 16) << 16
    return bits.to(tl.float32, bitcast=True)


@triton.jit
def _dot_operand(w, DOT_DTYPE: tl.constexpr, EMULATE_BF16: tl.constexpr):
    """An fp32 tile of exact products, rounded once to the type tl.dot takes."""
    if EMULATE_BF16:
        w = _bf16_precision(w)
    else:
        w = w.to(DOT_DTYPE)
    return w


@triton.jit
def _tile_coords(M, N, BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, GROUP_M: tl.constexpr):
    """(pid_m, pid_n): GROUP_M row tiles walk the N tiles together, so the programs in flight
    read the same weight tiles (L2 serves the repeats) instead of each streaming its own."""
    pid = tl.program_id(axis=0).to(tl.int64)
    num_pid_m = tl.cdiv(M, BLOCK_M)
    num_pid_n = tl.cdiv(N, BLOCK_N)
    num_pid_in_group = GROUP_M * num_pid_n
    first_pid_m = (pid // num_pid_in_group) * GROUP_M
    group_size_m = tl.minimum(num_pid_m - first_pid_m, GROUP_M)
    pid_m = first_pid_m + (pid % num_pid_in_group) % group_size_m
    pid_n = (pid % num_pid_in_group) // group_size_m
    return pid_m, pid_n


@triton.jit
def _load_x(x_ptr, offs_m, offs_k, M, K, stride_xm, stride_xk, EMULATE_BF16: tl.constexpr):
    """x tile [BLOCK_M, len(offs_k)]; rows past M and columns past K read 0, so they add nothing."""
    mask = (offs_m[:, None] < M) & (offs_k[None, :] < K)
    x = tl.load(x_ptr + offs_m[:, None] * stride_xm + offs_k[None, :] * stride_xk, mask=mask, other=0.0)
    if EMULATE_BF16:
        x = x.to(tl.float32)
    return x


@triton.jit
def _store_rounded(out_ptr, offs, acc, mask, BF16_BY_INT: tl.constexpr):
    if BF16_BY_INT and out_ptr.dtype.element_ty == tl.bfloat16:
        tl.store(out_ptr + offs, _round_to_bf16(acc), mask=mask)
    else:
        tl.store(out_ptr + offs, acc.to(out_ptr.dtype.element_ty), mask=mask)  # to nearest even


@triton.jit
def _zero_acc(BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, SWAP_AB: tl.constexpr):
    """The fp32 accumulator: y's tile [BLOCK_M, BLOCK_N], or its transpose when SWAP_AB."""
    if SWAP_AB:
        acc = tl.zeros((BLOCK_N, BLOCK_M), dtype=tl.float32)
    else:
        acc = tl.zeros((BLOCK_M, BLOCK_N), dtype=tl.float32)
    return acc


@triton.jit
def _mma(x, w, acc, SWAP_AB: tl.constexpr):
    """acc += x [BLOCK_M, BLOCK_K] @ w [BLOCK_N, BLOCK_K].T, or with SWAP_AB its transpose
    acc.T += w @ x.T: the weight tile is then the left operand, so on sm_90 wgmma can take it from
    the registers it was dequantized in and its 64-row minimum is met by BLOCK_N, not by M (decode
    has one row; the x side needs only 16 columns)."""
    if SWAP_AB:
        acc = tl.dot(w, tl.trans(x), acc)
    else:
        acc = tl.dot(x, tl.trans(w), acc)
    return acc


@triton.jit
def _store_tile(
    acc, out_ptr, partial_ptr, counter_ptr, offs_m, offs_n, M, N,
    SWAP_AB: tl.constexpr, WRITE_PARTIAL: tl.constexpr, LAST_SPLIT_REDUCES: tl.constexpr,
    BF16_BY_INT: tl.constexpr,
):  # fmt: skip
    """Store y's tile (SPLIT_K = 1), or this split's fp32 partial sums. With LAST_SPLIT_REDUCES
    the split that finishes last sums every split's partials and stores y (one launch); without
    it `_splitk_reduce_kernel` does, in a second launch."""
    if SWAP_AB:
        acc = tl.trans(acc)
    mask = (offs_m[:, None] < M) & (offs_n[None, :] < N)
    offs = offs_m[:, None] * N + offs_n[None, :]  # out and partials: [M, N] contiguous
    if WRITE_PARTIAL:
        tl.store(partial_ptr + tl.program_id(axis=1).to(tl.int64) * M * N + offs, acc, mask=mask)
        if LAST_SPLIT_REDUCES:
            _reduce_if_last_split(acc, out_ptr, partial_ptr, counter_ptr, offs, mask, M * N, BF16_BY_INT)
    else:
        _store_rounded(out_ptr, offs, acc, mask, BF16_BY_INT)


@triton.jit
def _reduce_if_last_split(
    acc, out_ptr, partial_ptr, counter_ptr, offs, mask, numel, BF16_BY_INT: tl.constexpr
):
    """Count this split in for its output tile; the last of the tile's splits to arrive sums the
    partials in split order (the same bits whichever split came last), rounds once, stores y and
    zeroes the counter for the next launch. `counter_ptr` has one int32 per output tile
    (program_id 0), zero when the launch starts.

    Ordering (as CUTLASS's split-K semaphore): the barrier puts every thread's partial stores
    before the count, which one thread adds with release semantics at GPU scope; the acquiring
    add of the last split then sees all of them, and its loads go to L2 (.cg), never to a stale
    L1 line."""
    tl.debug_barrier()
    counter = counter_ptr + tl.program_id(axis=0)
    arrived = tl.atomic_add(counter, 1, sem="acq_rel", scope="gpu")  # one thread adds; all see it
    num_splits = tl.num_programs(axis=1)
    if arrived == num_splits - 1:
        total = tl.zeros_like(acc)
        ptrs = partial_ptr + offs
        for _ in range(0, num_splits):
            total += tl.load(ptrs, mask=mask, other=0.0, cache_modifier=".cg")
            ptrs += numel
        tl.atomic_xchg(counter, 0)  # the next launch on this stream starts after this one ends
        _store_rounded(out_ptr, offs, total, mask, BF16_BY_INT)


@triton.jit
def _splitk_reduce_kernel(
    partial_ptr, out_ptr, numel, split_k, BLOCK: tl.constexpr, BF16_BY_INT: tl.constexpr
):
    """partials: fp32 [split_k, numel] -> out [numel]: summed in split order, rounded once."""
    pid = tl.program_id(axis=0).to(tl.int64)
    offs = pid * BLOCK + tl.arange(0, BLOCK)
    mask = offs < numel
    acc = tl.zeros((BLOCK,), dtype=tl.float32)
    ptrs = partial_ptr + offs
    for _ in range(0, split_k):  # in split order: the same bits on every run
        acc += tl.load(ptrs, mask=mask, other=0.0)
        ptrs += numel
    _store_rounded(out_ptr, offs, acc, mask, BF16_BY_INT)
