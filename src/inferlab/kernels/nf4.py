"""NF4 dequantization (lesson: quantization): bitsandbytes' 4-bit weights back to fp16/bf16/fp32.

Math (quant_formats.py has the whole format; this is bitsandbytes' arithmetic, bit for bit):

    absmax[b] = fp32(fp32(code2[absmax_u8[b]] * absmax2[b // blocksize2]) + offset)   (nested)
    out[i]    = dtype(fp32(code[nibble(i)] * absmax[i // blocksize]))   one rounding, to even

Layout: `weight` holds n = prod(shape) 4-bit codes, flattened row-major, two per byte: byte j
has value 2j in its high nibble and 2j+1 in its low nibble. One program owns BLOCK_ELEMENTS
consecutive outputs = BLOCK_ELEMENTS // blocksize whole quantization blocks, seen as a tile

    packed: [blocks, blocksize / 2] bytes -> hi, lo: [blocks, blocksize / 2] fp32
    fp16/bf16: (hi, lo) -> one 32-bit word, hi in the low half: [blocks, blocksize / 2] words
    fp32:      join(hi, lo): [blocks, blocksize / 2, 2] -> reshape: [blocks, blocksize]

so each block's absmax (and its double-quantization: one uint8 code, one state2 scale) is
loaded once per block, not once per value, and the bytes and outputs move as wide vectors with
no masks. Word j of the output (little-endian: value 2j at the lower address) holds byte j's two
values, so a 16-bit output needs no interleaving: the join did it by moving every value between
threads through shared memory (sm_90 SASS of a full program, blocksize 64, nested: 4 STS.128,
4 LDSM, 7 BAR.SYNC). For the words to stay in their thread, a thread loads 4 bytes, not 16, so at
blocksize 64 it spans 4 blocks, not 1: 4x the per-block absmax work (whole kernel, same SASS: 608
-> 688 instructions, none of them shared memory but the masked tail's). The join
stays for fp32, for an `out` that does not start 4-byte aligned (PACK_PAIRS, a host check), and
for the blocks past the last whole tile, which get one masked program each (`num_programs`).
The 16-entry code table is read from `code` with one gather load per nibble (64 bytes that
stay in L1). On an H200 this ties `tl.gather` from a register copy of the table (48.2 vs 47.5
us in an early version) and beats a 15-select tree by 2.6x (126 us): the selects cost more
instructions than the memory time leaves. Everything happens in ONE launch; no absmax buffer.

Rounding: fp16 and fp32 use Triton's conversion (round to nearest even; sm_75 has it for fp16).
bf16 uses the hardware conversion on sm_80+; where there is none that rounds to nearest even
(the CPU interpreter truncates; sm_75 has no bf16 instruction) BF16_BY_INT rounds with integer
ops instead (add 0x7FFF plus the lowest kept bit, drop 16 bits): the same bits, ~20% slower on
an H200, hence not used there. FP contraction is off for the launch: a fused multiply-add of
`code2 * absmax2 + offset` would round once where bitsandbytes rounds twice.

Inline asm (PACK_ASM, CUDA sm_80+): `cvt.rn.f16x2.f32 d, a, b` (or bf16x2) converts two values
and packs them in one instruction, where Triton emits a conversion per value plus shift/or or a
byte shuffle (whole kernel, sm_90 SASS: 688 instructions with it, 720 without). It puts
cvt(a) in d's UPPER half, so it gets (lo, hi). Same rounding to nearest even, same bits. The
interpreter cannot run asm and sm_75 has no x2 conversion (ptxas rejects it), so there a
portable path converts each value and packs with shift/or. Measured on an H100 (14336 x 4096,
benchmarks/sweep_nf4_dequant.py, experiment 0007 run 11): fp16 join 53.5, words 54.0, asm 53.7 us
(a tie); bf16 join 64.5, words 56.0, asm 53.6 us: the asm store is level with the best everywhere
and removes the join's bf16 slowdown at that size, so it is the default on sm_80+.

Napkin math per output value (b bytes per output): read 1/2 byte of codes + absmax bytes per
block (nested: 1/64 + 4/16384 of a byte; plain: 4/64), write b -> memory bound. At 14336 x 4096
fp16 that is 29.4 + 0.9 + 117.4 MB = 148 MB: 37 us at the 3.97 TB/s an H200 copies at.
Measured there for the join version (CUDA graphs, rotating inputs, triton 3.6): 39.8 us = 93% of
copy bandwidth, 1.79x bitsandbytes 0.50.2 (71.2 us) on the same inputs; fp16 and bf16 alike.
The packed asm version on an H100 (20261127T011113Z): 54.2 us, 91% of that card's measured
ceiling, 1.40x bitsandbytes (75.9 us); H100 and H200 figures are not comparable.

Tunables: BLOCK_ELEMENTS (outputs per full program) and NUM_WARPS. Supported block sizes: those
bitsandbytes accepts, 32 .. 4096 (NF4_BLOCKSIZES); the state2 block size may be any positive int.
"""

from __future__ import annotations

import math

import torch

from inferlab.kernels._launch import FLOAT_DTYPES, prepare_out
from inferlab.kernels._triton import tl, triton
from inferlab.kernels.device import select_backend
from inferlab.kernels.quant_formats import (
    NF4_BLOCKSIZES,
    NestedState,
    NF4State,
    dequantize_nf4_ref,
    quantize_nf4_ref,
)
from inferlab.kernels.spec import BenchShape, KernelSpec, Shape, random_tensor

# Measured on an H200 (14336 x 4096 fp16, nested): 2048/2 39.8 us, 4096/2 40.1, 8192/4 40.2,
# 4096/4 41.5, 1024/1 40.8: 32 outputs per thread and small programs keep the most bytes in flight.
BLOCK_ELEMENTS = 2048  # outputs per full program: 32 NF4 blocks of 64; 32 outputs per thread
NUM_WARPS = 2


# ---------------------------------------------------------------- kernel
@triton.jit
def _round_to_bf16(x):
    """fp32 -> bf16 rounded to nearest even by integer ops: the bits cvt.rn.bf16.f32 gives."""
    bits = x.to(tl.uint32, bitcast=True)
    bits = (bits + 0x7FFF + ((bits >> 16) & 1)) >> 16  # a quiet NaN stays NaN: its bit 22 survives
    return bits.to(tl.uint16).to(tl.bfloat16, bitcast=True)


@triton.jit
def _to_out_dtype(x, OUT_DTYPE: tl.constexpr, BF16_BY_INT: tl.constexpr):
    """fp32 -> the output dtype, rounded to nearest even (see Rounding above)."""
    if BF16_BY_INT and OUT_DTYPE == tl.bfloat16:
        return _round_to_bf16(x)
    return x.to(OUT_DTYPE)


@triton.jit
def _pack_pair(hi, lo, OUT_DTYPE: tl.constexpr, BF16_BY_INT: tl.constexpr, PACK_ASM: tl.constexpr):
    """fp32 hi, lo -> one uint32 word: hi's 16-bit value in the low half (the lower address)."""
    if PACK_ASM:
        # One instruction converts both values and packs them in memory order; Triton would emit a
        # conversion per value plus a shift/or or a shuffle. cvt.rn.{f16x2,bf16x2}.f32 d, a, b puts
        # cvt(a) in d's UPPER half, so a = $2 = lo and b = $1 = hi. Rounds to nearest even, as the
        # per-value conversion does.
        if OUT_DTYPE == tl.float16:
            return tl.inline_asm_elementwise(
                "cvt.rn.f16x2.f32 $0, $2, $1;", "=r,f,f", [hi, lo], dtype=tl.uint32, is_pure=True, pack=1
            )
        return tl.inline_asm_elementwise(
            "cvt.rn.bf16x2.f32 $0, $2, $1;", "=r,f,f", [hi, lo], dtype=tl.uint32, is_pure=True, pack=1
        )
    hi_bits = _to_out_dtype(hi, OUT_DTYPE, BF16_BY_INT).to(tl.uint16, bitcast=True).to(tl.uint32)
    lo_bits = _to_out_dtype(lo, OUT_DTYPE, BF16_BY_INT).to(tl.uint16, bitcast=True).to(tl.uint32)
    return (lo_bits << 16) | hi_bits


@triton.jit
def _dequantize_blocks(
    packed_ptr, absmax_ptr, code_ptr, out_ptr, absmax2_ptr, code2_ptr, offset_ptr,
    blocks, n_elements, blocksize2,
    BLOCKSIZE: tl.constexpr, BLOCKS_PER_PROGRAM: tl.constexpr, NESTED: tl.constexpr,
    BF16_BY_INT: tl.constexpr, MASKED: tl.constexpr, PACK_PAIRS: tl.constexpr, PACK_ASM: tl.constexpr,
):  # fmt: skip
    """Dequantize the quantization blocks `blocks` [B]; MASKED only for the program at the end.
    PACK_PAIRS (16-bit output at a 4-byte-aligned address): an unmasked program stores each byte's
    two outputs as one 32-bit word; otherwise (and in the masked tail, which may end mid-pair: odd
    n) hi and lo are interleaved by join + reshape."""
    HALF: tl.constexpr = BLOCKSIZE // 2
    offs_byte = blocks[:, None] * HALF + tl.arange(0, HALF)[None, :]  # [B, HALF]
    if MASKED:
        block_mask = blocks < tl.cdiv(n_elements, BLOCKSIZE)
        byte_mask = offs_byte < (n_elements + 1) // 2
    else:  # a whole program: no masks, so loads and stores stay full-width vectors
        block_mask = None
        byte_mask = None

    # Masked-off lanes need no `other`: their values are never stored, and a masked uint8 load
    # still yields a byte, so every table index below stays inside its table.

    # per block: absmax, double-dequantized in place when nested (two roundings, no FMA)
    if NESTED:
        q_absmax = tl.load(absmax_ptr + blocks, mask=block_mask, eviction_policy="evict_first").to(tl.int32)
        scale2 = tl.load(absmax2_ptr + blocks // blocksize2, mask=block_mask)
        absmax = tl.load(code2_ptr + q_absmax) * scale2 + tl.load(offset_ptr)
    else:
        absmax = tl.load(absmax_ptr + blocks, mask=block_mask)

    # per byte: two codes -> two values. The packed bytes and absmax codes are read once, so they
    # are loaded evict-first: they should not push out of L2 the tables every program reads, nor
    # (inside a model) the activations around the layer; the output keeps the default policy,
    # since the matmul that follows reads it.
    if PACK_PAIRS:
        # The word store moves 16 bytes = 4 words per thread, so it wants bytes 4t..4t+3 in thread t;
        # a 16-byte load would put 16 bytes there, and the words would cross threads through shared
        # memory again. Capping the known contiguity at 4 makes the load take the store's layout.
        # Cost: a thread now spans 4 blocks, not 1, so it loads (and, nested, divides for) 4 absmax.
        # The masked tail narrows too: where its tile has the full programs' shape (blocksize 4096,
        # one block per program) the compiler gives both loads one layout, and a 16-byte tail load
        # brought the shared-memory round trip back (15 bar.sync in the full programs' sm_90 PTX).
        offs_byte = tl.max_contiguous(offs_byte, [1, 4])
    packed = tl.load(packed_ptr + offs_byte, mask=byte_mask, eviction_policy="evict_first").to(tl.int32)
    hi = tl.load(code_ptr + (packed >> 4)) * absmax[:, None]  # element 2j: the high nibble
    lo = tl.load(code_ptr + (packed & 0xF)) * absmax[:, None]  # element 2j + 1: the low nibble

    OUT_DTYPE: tl.constexpr = out_ptr.dtype.element_ty
    if PACK_PAIRS and not MASKED:
        # Interleaving hi and lo with join + reshape moved every value between threads through
        # shared memory (sm_90 SASS: 4 STS.128, 4 LDSM, 7 BAR.SYNC per full program). Each byte's
        # two 16-bit outputs are adjacent in memory, so they go out as one 32-bit word instead.
        words = _pack_pair(hi, lo, OUT_DTYPE, BF16_BY_INT, PACK_ASM)  # [B, HALF] uint32
        tl.store(out_ptr.to(tl.pointer_type(tl.uint32)) + offs_byte, words)  # word j = outputs 2j, 2j + 1
    else:
        offs = blocks[:, None] * BLOCKSIZE + tl.arange(0, BLOCKSIZE)[None, :]  # [B, BLOCKSIZE]
        mask = offs < n_elements if MASKED else None
        vals = tl.reshape(tl.join(hi, lo), (BLOCKS_PER_PROGRAM, BLOCKSIZE))  # [B, HALF, 2] -> [B, BLOCKSIZE]
        if BF16_BY_INT and OUT_DTYPE == tl.bfloat16:
            tl.store(out_ptr + offs, _round_to_bf16(vals), mask=mask)
        else:
            tl.store(out_ptr + offs, vals.to(OUT_DTYPE), mask=mask)  # rounds to nearest even


@triton.jit
def _dequantize_nf4_kernel(
    packed_ptr,  # uint8 [(n + 1) // 2]
    absmax_ptr,  # fp32 [num_blocks], or uint8 codes when NESTED
    code_ptr,  # fp32 [16]
    out_ptr,  # [n]
    absmax2_ptr,  # fp32 [cdiv(num_blocks, blocksize2)]   (NESTED only)
    code2_ptr,  # fp32 [256]                              (NESTED only)
    offset_ptr,  # fp32 [1]                               (NESTED only)
    n_elements,
    blocksize2,
    BLOCKSIZE: tl.constexpr,
    BLOCKS_PER_PROGRAM: tl.constexpr,
    NESTED: tl.constexpr,
    BF16_BY_INT: tl.constexpr,
    PACK_PAIRS: tl.constexpr,  # full programs store 32-bit words of two 16-bit outputs
    PACK_ASM: tl.constexpr,  # ... converted and packed by one cvt.rn.{f16x2,bf16x2}.f32 (sm_80+)
):
    pid = tl.program_id(axis=0).to(tl.int64)  # int64: byte and element offsets can pass 2**31
    num_full = n_elements // (BLOCKS_PER_PROGRAM * BLOCKSIZE)  # programs whose tile is all inside
    if pid < num_full:
        blocks = pid * BLOCKS_PER_PROGRAM + tl.arange(0, BLOCKS_PER_PROGRAM)  # [B] quantization blocks
        _dequantize_blocks(
            packed_ptr, absmax_ptr, code_ptr, out_ptr, absmax2_ptr, code2_ptr, offset_ptr,
            blocks, n_elements, blocksize2, BLOCKSIZE, BLOCKS_PER_PROGRAM, NESTED, BF16_BY_INT, False,
            PACK_PAIRS, PACK_ASM,
        )  # fmt: skip
    else:
        # The ragged end: one program per remaining block, masked. A whole masked tile would need
        # scalar stores when n is not a multiple of 16, and those raise the register count of the
        # whole kernel (48 -> 80 on an H200) and slow every program down by ~17%.
        block = num_full * BLOCKS_PER_PROGRAM + (pid - num_full) + tl.arange(0, 1)  # [1]
        _dequantize_blocks(
            packed_ptr, absmax_ptr, code_ptr, out_ptr, absmax2_ptr, code2_ptr, offset_ptr,
            block, n_elements, blocksize2, BLOCKSIZE, 1, NESTED, BF16_BY_INT, True,
            PACK_PAIRS, PACK_ASM,  # (masked: stores through the join, see _dequantize_blocks)
        )  # fmt: skip


def _bf16_by_int(device: torch.device) -> bool:
    """Round to bf16 with integer ops where no native conversion rounds to nearest even: the
    interpreter (it truncates) and GPUs before sm_80 (no cvt.rn.bf16.f32). Elsewhere it costs
    ~20% of the kernel's time (measured on an H200), so the hardware conversion is used."""
    if device.type != "cuda":
        return True
    return torch.cuda.get_device_capability(device) < (8, 0)


def _pack_asm(device: torch.device) -> bool:
    """Convert and pack each pair with one inline-asm cvt.rn.{f16x2,bf16x2}.f32: PTX from sm_80 on
    (ptxas rejects both for sm_75) that the interpreter cannot run. Elsewhere the portable path,
    a conversion per value plus shift/or, gives the same bits."""
    if device.type != "cuda" or torch.version.hip is not None:  # ROCm: "cuda" tensors, no PTX
        return False
    return torch.cuda.get_device_capability(device) >= (8, 0)


def _pack_pairs(out: torch.Tensor) -> bool:
    """Store pairs of 16-bit outputs as 32-bit words: only where out starts 4-byte aligned (an
    `out=` view can start at an odd element); fp32 outputs keep the join. A host check, no sync."""
    return out.element_size() == 2 and out.data_ptr() % 4 == 0


def blocks_per_program(blocksize: int) -> int:
    """Quantization blocks one full program owns: BLOCK_ELEMENTS worth, at least one whole block."""
    return max(1, BLOCK_ELEMENTS // blocksize)


def num_programs(n_elements: int, blocksize: int) -> int:
    """Full programs of blocks_per_program blocks, then one program per block that is left over."""
    per_program = blocks_per_program(blocksize)
    num_full = n_elements // (per_program * blocksize)
    return num_full + triton.cdiv(n_elements, blocksize) - num_full * per_program


def _launch(weight, absmax, code, out, absmax2, code2, offset, blocksize: int, blocksize2: int) -> None:
    n = out.numel()
    if n == 0:
        return
    nested = absmax2 is not None
    per_program = blocks_per_program(blocksize)
    grid = (num_programs(n, blocksize),)
    _dequantize_nf4_kernel[grid](
        weight, absmax, code, out,
        absmax2 if nested else absmax, code2 if nested else code, offset if nested else code,
        n, blocksize2,
        BLOCKSIZE=blocksize, BLOCKS_PER_PROGRAM=per_program, NESTED=nested,
        BF16_BY_INT=_bf16_by_int(out.device), PACK_PAIRS=_pack_pairs(out), PACK_ASM=_pack_asm(out.device),
        num_warps=NUM_WARPS,
        enable_fp_fusion=False,  # bitsandbytes rounds code2 * absmax2 before adding offset
    )  # fmt: skip


# ---------------------------------------------------------------- torch custom ops
# Opaque to torch.compile (fullgraph works); the fake implementations give shapes only.
@torch.library.custom_op("inferlab::dequantize_nf4", mutates_args=())
def _dequantize_nf4_op(
    weight: torch.Tensor,
    absmax: torch.Tensor,
    code: torch.Tensor,
    blocksize: int,
    shape: list[int],
    dtype: torch.dtype,
    absmax2: torch.Tensor | None,
    code2: torch.Tensor | None,
    offset: torch.Tensor | None,
    blocksize2: int,
) -> torch.Tensor:
    out = torch.empty(shape, dtype=dtype, device=weight.device)
    _launch(weight, absmax, code, out, absmax2, code2, offset, blocksize, blocksize2)
    return out


@_dequantize_nf4_op.register_fake
def _(weight, absmax, code, blocksize, shape, dtype, absmax2, code2, offset, blocksize2):
    return weight.new_empty(shape, dtype=dtype)


@torch.library.custom_op("inferlab::dequantize_nf4_out", mutates_args=("out",))
def _dequantize_nf4_out_op(
    weight: torch.Tensor,
    absmax: torch.Tensor,
    code: torch.Tensor,
    blocksize: int,
    absmax2: torch.Tensor | None,
    code2: torch.Tensor | None,
    offset: torch.Tensor | None,
    blocksize2: int,
    out: torch.Tensor,
) -> None:
    _launch(weight, absmax, code, out, absmax2, code2, offset, blocksize, blocksize2)


@_dequantize_nf4_out_op.register_fake
def _(weight, absmax, code, blocksize, absmax2, code2, offset, blocksize2, out):
    return None


# ---------------------------------------------------------------- launcher
_FIELDS = ("absmax", "shape", "dtype", "blocksize", "code")
_NESTED_FIELDS = ("absmax", "code", "blocksize")


def _field(obj, name: str, owner: str):
    if not hasattr(obj, name):
        raise TypeError(f"{owner} has no field {name!r}; pass a bitsandbytes QuantState or an NF4State")
    return getattr(obj, name)


def _check_tensor(t, name: str, dtype: torch.dtype, numel: int, device: torch.device) -> None:
    if not isinstance(t, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, not {type(t).__name__}")
    if t.dtype != dtype:
        raise TypeError(f"{name} has dtype {str(t.dtype).removeprefix('torch.')}; it must be {dtype}")
    if t.numel() != numel:
        raise ValueError(f"{name} has {t.numel()} elements, expected {numel}")
    if t.device != device:
        raise ValueError(f"{name} is on {t.device} but weight is on {device}")
    if not t.is_contiguous():
        raise ValueError(f"{name} must be contiguous (call .contiguous() first)")


def _validated_args(weight: torch.Tensor, quant_state) -> tuple:
    """Check weight and quant_state; return the custom op's tensor and int arguments."""
    if not isinstance(weight, torch.Tensor):
        raise TypeError(f"weight must be a torch.Tensor, not {type(weight).__name__}")
    for name in _FIELDS:
        _field(quant_state, name, "quant_state")
    if getattr(quant_state, "quant_type", "nf4") != "nf4":
        raise ValueError(f"quant_state.quant_type is {quant_state.quant_type!r}; this kernel decodes 'nf4'")
    shape, dtype, blocksize = list(quant_state.shape), quant_state.dtype, quant_state.blocksize
    if dtype not in FLOAT_DTYPES:
        raise TypeError(f"quant_state.dtype is {dtype}; supported: float32, float16, bfloat16")
    if blocksize not in NF4_BLOCKSIZES:
        raise ValueError(f"quant_state.blocksize is {blocksize}; supported: {NF4_BLOCKSIZES}")
    n = math.prod(shape)
    num_blocks = -(-n // blocksize)
    device = weight.device
    backend = select_backend()
    if device.type != backend.device:
        raise ValueError(
            f"kernels run on {backend.device} here ({backend.reason}), but weight is on {device}"
        )
    if weight.dtype != torch.uint8:
        raise TypeError(
            f"weight has dtype {str(weight.dtype).removeprefix('torch.')}; it must be uint8 "
            "(a checkpoint stored with another quant_storage dtype: pass weight.view(torch.uint8))"
        )
    _check_tensor(weight, "weight", torch.uint8, (n + 1) // 2, device)
    _check_tensor(quant_state.code, "quant_state.code", torch.float32, 16, device)
    state2 = getattr(quant_state, "state2", None)
    if not getattr(quant_state, "nested", state2 is not None):
        _check_tensor(quant_state.absmax, "quant_state.absmax", torch.float32, num_blocks, device)
        return shape, dtype, blocksize, None, None, None, 1
    if state2 is None:
        raise TypeError("quant_state is nested but has no state2")
    for name in _NESTED_FIELDS:
        _field(state2, name, "quant_state.state2")
    blocksize2 = state2.blocksize
    if not isinstance(blocksize2, int) or blocksize2 <= 0:
        raise ValueError(f"quant_state.state2.blocksize must be a positive int, not {blocksize2!r}")
    offset = _field(quant_state, "offset", "quant_state")
    _check_tensor(quant_state.absmax, "quant_state.absmax", torch.uint8, num_blocks, device)
    num_scales2 = -(-num_blocks // blocksize2)
    _check_tensor(state2.absmax, "quant_state.state2.absmax", torch.float32, num_scales2, device)
    _check_tensor(state2.code, "quant_state.state2.code", torch.float32, 256, device)
    _check_tensor(offset, "quant_state.offset", torch.float32, 1, device)
    return shape, dtype, blocksize, state2.absmax, state2.code, offset, blocksize2


def dequantize_nf4(weight: torch.Tensor, quant_state, out: torch.Tensor | None = None) -> torch.Tensor:
    """weight: uint8 [(n+1)//2, ...] packed NF4, quant_state: bitsandbytes QuantState -> quant_state.shape.

    Bit-exact with bitsandbytes.functional.dequantize_4bit; one launch, no host synchronisation."""
    shape, dtype, blocksize, absmax2, code2, offset, blocksize2 = _validated_args(weight, quant_state)
    absmax, code = quant_state.absmax, quant_state.code
    if out is None:
        return torch.ops.inferlab.dequantize_nf4(
            weight, absmax, code, blocksize, shape, dtype, absmax2, code2, offset, blocksize2
        )
    out = prepare_out(out, tuple(shape), torch.empty(0, dtype=dtype, device=weight.device))
    op_args = (weight, absmax, code, blocksize, absmax2, code2, offset, blocksize2)
    torch.ops.inferlab.dequantize_nf4_out(*op_args, out)
    return out


# ---------------------------------------------------------------- spec
SPEC_BLOCKSIZE = 64  # QLoRA's default; the SPEC's inputs are double-quantized, as QLoRA's are


def state_from_inputs(inputs: dict[str, torch.Tensor], shape, dtype: torch.dtype) -> NF4State:
    """The NF4State (usable by bitsandbytes too) that the SPEC's input tensors describe."""
    nested = NestedState(absmax=inputs["state2_absmax"], code=inputs["state2_code"])
    return NF4State(
        absmax=inputs["absmax"], shape=torch.Size(shape), dtype=dtype, blocksize=SPEC_BLOCKSIZE,
        code=inputs["code"], offset=inputs["offset"], state2=nested,
    )  # fmt: skip


def state_tensors(packed: torch.Tensor, state: NF4State) -> dict[str, torch.Tensor]:
    """A nested NF4 weight as the named tensors SPEC inputs carry (`state_from_inputs` reverses it)."""
    return {
        "weight": packed,
        "absmax": state.absmax,
        "code": state.code,
        "state2_absmax": state.state2.absmax,
        "state2_code": state.state2.code,
        "offset": state.offset,
    }


def _make_inputs(dims, dtype, device, gen) -> dict[str, torch.Tensor]:
    w = random_tensor(dims, torch.float32, device, gen)
    packed, state = quantize_nf4_ref(w, blocksize=SPEC_BLOCKSIZE, nested=True)
    return state_tensors(packed, state) | {
        # check() hands the reference the inputs only: the output's shape and dtype travel as tensors
        "out_shape": torch.tensor(dims, dtype=torch.int64, device=device),
        "out_dtype": torch.empty(0, dtype=dtype, device=device),
    }


def _reference(out_shape, out_dtype, **inputs) -> torch.Tensor:
    state = state_from_inputs(inputs, out_shape.tolist(), out_dtype.dtype)
    return dequantize_nf4_ref(inputs["weight"], state)


def _launcher(out_shape, out_dtype, out=None, **inputs) -> torch.Tensor:
    if out is None:
        shape, dtype = out_shape.tolist(), out_dtype.dtype  # a sync, only without `out`
    else:
        shape, dtype = out.shape, out.dtype
    return dequantize_nf4(inputs["weight"], state_from_inputs(inputs, shape, dtype), out=out)


def _bytes_moved(dims: tuple[int, ...], dtype: torch.dtype) -> int:
    n = math.prod(dims)
    blocks = -(-n // SPEC_BLOCKSIZE)
    packed = (n + 1) // 2  # two codes per byte
    absmax = blocks + 4 * -(-blocks // 256) + 4  # uint8 code per block, fp32 per 256 blocks, offset
    return packed + absmax + n * dtype.itemsize  # + the output, written once


SPEC = KernelSpec(
    name="nf4_dequantize",
    module=__name__,
    launcher=_launcher,
    reference=_reference,
    make_inputs=_make_inputs,
    test_shapes=(
        Shape((1, 1), "size 1: one value in the high nibble of one byte, one partial block"),
        Shape((100, 70), "7000 values: not a multiple of 64, an odd row length, 2 programs"),
        Shape((3, 1001), "odd element count: the last byte's low nibble is padding"),
        Shape((1, 64), "exactly one quantization block"),
        Shape((9, 4096), "9 rows of a Llama-3-8B q_proj: 9 programs, 576 blocks, 3 state2 scales"),
    ),
    bench_shapes=(
        BenchShape((14336, 4096), "llama-3-8b", "gate/up proj weight [intermediate, hidden]"),
        BenchShape((4096, 14336), "llama-3-8b", "down proj weight [hidden, intermediate]"),
        BenchShape((4096, 4096), "llama-3-8b", "q/o proj weight"),
        BenchShape((1024, 4096), "llama-3-8b", "k/v proj weight (8 kv heads x 128)"),
    ),
    flops=math.prod,  # one multiply per value (the table look-up is not a FLOP)
    bytes_moved=_bytes_moved,
    bound="memory",
    baselines=("bitsandbytes",),
    summary="NF4 dequantize (bitsandbytes layout, double-quantized absmax), bit-exact, one launch",
)
NF4_DEQUANT_SPEC = SPEC
