"""NF4 weight-only matmul on Hopper's wgmma: bitsandbytes' packed bytes looked up in registers.

The plan of w4a16_wgmma.py (read it first) applied to NF4 as bitsandbytes stores a Linear's
weight: W [N, K] row-major, byte j of a row holding element 2j in its high nibble and 2j + 1 in
its low one, one absmax per `blocksize` (64) weights, itself double-quantized. The differences:

**Which bytes a thread reads.** Rows are contiguous along K here, so a thread reads its rows
directly (wgmma's rows g and g + 8 of each 16) and C = BLOCK_K / 32 adjacent 32-bit words of
each: one 4-, 8- or 16-byte copy. Byte j of a word holds one of wgmma's register pairs, so K is
permuted within each absmax block: word c of thread t, byte s = 2b + h, element e (0: the high
nibble)

    physical k = 8 (t C + c) + 4b + 2h + e   holds   logical k' = 32c + 16b + 8h + 2t + e

which puts every value where wgmma's A fragment wants it (thread t: columns 2t, 2t + 1, 2t + 8,
2t + 9 of each k16 slice); x is permuted the same way (`permute_like_kernel`).

**The look-up.** The 16 code values (quant_state.code, rounded to x's dtype) are split into
byte tables, low bytes and high bytes of codes 0-7 and 8-15: 8 registers. `prmt` picks 4 bytes
from an 8-byte pair of registers by 4 selector nibbles, exactly a 3-bit table look-up, so per 4
weights: two `prmt` per byte table (codes 0-7 and 8-15), a `lop3` choosing between them by each
nibble's bit 3 (a byte mask made by one more `prmt` in its sign-replicating mode), and two `prmt`
interleaving low and high bytes into two bf16 pairs. 21 instructions per 8 weights
(`LOOKUP_ASM`, checked on the CPU by `run_lookup_asm`, a model that executes the same text).

**The fold.** wgmma multiplies the codes themselves; each absmax block's product is scaled once
in fp32: acc += absmax * part. NF4 has no zero point, so no sums of x are needed. A K step holds
`blocks_per_step` blocks (each permuted, multiplied and folded on its own) so that one barrier
and one x tile serve 128 weights of a row. The nested absmax's code-table look-up is done when
its step comes, not where its uint8 code is loaded a step ahead: a load that waits for another
stalls the step that issues it (0007 run 34). A quad's 4 lanes hold the same rows, so each
computes a quarter of their absmax values and a warp-local conversion shares them (run 40).

**Rounding.** bitsandbytes rounds code x absmax to 16 bits; this kernel rounds the code (-1, 0
and 1 are exact; the others within 2^-11 relative in fp16, 2^-8 in bf16, measured 3.3e-4 and
3.1e-3 at most) and keeps the absmax in fp32. Both are one rounding per weight of the same
size, so the error budget is the reference's (the SPEC's rms allowance, as for the int4 kernels
that never round W; the GPU tests hold it to twice the reference's error against fp64).

Measured (experiment 0007, runs 28-43): on an H100 1.67-1.74x cuBLAS bf16 at M = 1 and 1.48-1.54x
at M = 16 on Llama-3-8B's large layers (1.16-1.24x bitsandbytes at M = 1, 2.2-4.2x above); the
same microseconds on an H200 (1.25-1.29x there). What limits it is the instructions it issues,
most of them on the integer pipe (prmt, lop3 and shifts, at half the fp32 rate): the look-up
is 21 per 8 weights.

**Beyond 64 rows where TMA cannot copy the weight** (from 64 rows w4a16_wgmma_ws.py is the
default: producer warp groups look the codes up into shared memory; before it, 0007 runs 53-54,
this path took every M from 65) (`dequantize_a`, DEQUANT_A) the fold gives way to int4's plan for larger M
(w4a16_wgmma_tiled.py): each looked-up code times its absmax in fp32, rounded once to x's dtype,
becomes the A operand, wgmma accumulates into one accumulator, and M is tiled (the M tile the
fastest grid index). W then carries the code's rounding and the product's, one more than
bitsandbytes'. On an H200 (run 53): 0.50-0.53x cuBLAS bf16 at M = 128 and 1.50-1.72x
bitsandbytes on the large layers; 0.35x and 0.89-0.97x at M = 256, where the tl kernels it
replaced took 2.3-2.6x longer.
"""

from __future__ import annotations

import dataclasses
import functools

import torch

from inferlab.kernels.w4a16_wgmma import (
    HAVE_GLUON,
    SUPPORTED_GROUP_SIZES,
    WgmmaConfig,
    block_m_for,
    operand_layouts,
    plan_splits,
    prepare_x,
)

# Per word of 8 nibbles: $8 the word, $9-$12 the low-byte tables (codes 0-3, 4-7, 8-11, 12-15),
# $13-$16 the high-byte ones; out $0-$7 the 16-bit values of bytes 0-3, element 2j first. prmt
# selector nibble: bits 0-2 a byte of {b, a}, bit 3 "replicate that byte's sign bit" (PTX ISA).
_HALF_ASM = """
prmt.b32 a, $9, $10, {sel};
prmt.b32 b, $11, $12, {sel};
lop3.b32 l, a, b, {mask}, 0xD8;
prmt.b32 a, $13, $14, {sel};
prmt.b32 b, $15, $16, {sel};
lop3.b32 h, a, b, {mask}, 0xD8;
prmt.b32 r, l, h, 0x4051;
mov.b32 {{${o0}, ${o1}}}, r;
prmt.b32 r, l, h, 0x6273;
mov.b32 {{${o2}, ${o3}}}, r;"""
LOOKUP_ASM = (
    "{\n.reg .b32 sel, sel_hi, w4, m_lo, m_hi, a, b, l, h, r;\n"
    "and.b32 sel, $8, 0x77777777;\n"  # selectors: each nibble's low 3 bits (bit 3 = sign mode)
    "shr.u32 sel_hi, sel, 16;\n"  # prmt reads selectors from bits 0-15 only
    "shl.b32 w4, $8, 4;\n"  # nibble 2i's bit 3 becomes byte i's sign bit
    "prmt.b32 m_lo, w4, $8, 0xD9C8;\n"  # 0xFF per byte whose nibble (0-3) has bit 3: codes 8-15
    "prmt.b32 m_hi, w4, $8, 0xFBEA;"  # the same for nibbles 4-7
    + _HALF_ASM.format(sel="sel", mask="m_lo", o0=0, o1=1, o2=2, o3=3)
    + _HALF_ASM.format(sel="sel_hi", mask="m_hi", o0=4, o1=5, o2=6, o3=7)
    + "\n}"
)

if HAVE_GLUON:
    from triton.experimental.gluon.language.nvidia.hopper import fence_async_shared, warpgroup_mma

    from inferlab.kernels.w4a16_wgmma import (
        _cta_barrier,
        _fetch_stage,
        _split_range,
        _store_result,
        _x_tile,
        gl,
        gluon,
        wait_group,
    )

    _LOOKUP_ASM = gl.constexpr(LOOKUP_ASM)  # a kernel reads only constexpr globals

    @gluon.jit
    def _code_table_words(code_ptr, dtype: gl.constexpr, HIGH: gl.constexpr):
        """quant_state.code rounded to `dtype`, the low (or high) byte of each value, as four
        32-bit table words of codes 0-3, 4-7, 8-11, 12-15 (every thread computes all four)."""
        layout: gl.constexpr = gl.BlockedLayout([16], [32], [gl.num_warps()], [0])
        i = gl.arange(0, 16, layout=layout)
        bits = gl.load(code_ptr + i).to(dtype).to(gl.int16, bitcast=True).to(gl.int32) & 0xFFFF
        if HIGH:
            bits = bits >> 8
        placed = (bits & 0xFF) << (8 * (i % 4))
        word = i // 4  # bytes in distinct places: their sum is their OR
        return (
            gl.sum(gl.where(word == 0, placed, 0), axis=0), gl.sum(gl.where(word == 1, placed, 0), axis=0),
            gl.sum(gl.where(word == 2, placed, 0), axis=0), gl.sum(gl.where(word == 3, placed, 0), axis=0),
        )  # fmt: skip

    @gluon.jit
    def _codes(words, lo, hi, dtype: gl.constexpr):
        """`LOOKUP_ASM` on every word: 8 tensors, the codes of its bytes' nibbles in W's K order
        (byte s: element 2s in the high nibble, then 2s + 1), as `dtype`."""
        return gl.inline_asm_elementwise(
            _LOOKUP_ASM, "=h,=h,=h,=h,=h,=h,=h,=h,r,r,r,r,r,r,r,r,r",
            [words, lo[0], lo[1], lo[2], lo[3], hi[0], hi[1], hi[2], hi[3]],
            dtype=(dtype.value, dtype.value, dtype.value, dtype.value,
                   dtype.value, dtype.value, dtype.value, dtype.value),
            is_pure=True, pack=1,
        )  # fmt: skip

    @gluon.jit
    def _look_up(words, lo, hi, BLOCK_N: gl.constexpr, BLOCK_K: gl.constexpr, dtype: gl.constexpr):
        """[BLOCK_N, BLOCK_K / 8] words -> [BLOCK_N, BLOCK_K] code values in the logical K order."""
        v = _codes(words, lo, hi, dtype)
        # byte s = 2b + h of each word: a pair (e = 0, 1)
        w = gl.join(
            gl.join(gl.join(v[0], v[1]), gl.join(v[2], v[3])),
            gl.join(gl.join(v[4], v[5]), gl.join(v[6], v[7])),
        )  # [n, tC + c, e, h, b]
        w = gl.reshape(w, [BLOCK_N, 4, BLOCK_K // 32, 2, 2, 2])  # [n, t, c, e, h, b]
        w = gl.permute(w, [0, 2, 5, 4, 1, 3])  # [n, c, b, h, t, e]: k' = 32c + 16b + 8h + 2t + e
        return gl.reshape(w, [BLOCK_N, BLOCK_K])

    @gluon.jit
    def _scaled(code, absmax, dtype: gl.constexpr):
        """A looked-up code times its absmax in fp32, rounded once to `dtype`."""
        return (code.to(gl.float32) * absmax).to(dtype)

    @gluon.jit
    def _look_up_natural(words, absmax, lo, hi, dtype: gl.constexpr):
        """[R, W] words (8 weights each, along K) and each row's absmax ([R, 1], fp32) -> [R, 8 W]
        weights in W's own K order: code x absmax in fp32, rounded once to `dtype` (as
        DEQUANT_A; w4a16_wgmma_ws.py)."""
        v = _codes(words, lo, hi, dtype)
        absmax, _ = gl.broadcast(absmax, words)
        w = gl.join(
            gl.join(gl.join(_scaled(v[0], absmax, dtype), _scaled(v[1], absmax, dtype)),
                    gl.join(_scaled(v[2], absmax, dtype), _scaled(v[3], absmax, dtype))),
            gl.join(gl.join(_scaled(v[4], absmax, dtype), _scaled(v[5], absmax, dtype)),
                    gl.join(_scaled(v[6], absmax, dtype), _scaled(v[7], absmax, dtype))),
        )  # [r, word, e, b, a]: output 4a + 2b + e of the word  # fmt: skip
        w = gl.permute(w, [0, 1, 4, 3, 2])  # [r, word, a, b, e]: k = 8 word + 4a + 2b + e
        R: gl.constexpr = words.shape[0]
        W: gl.constexpr = words.shape[1]
        return gl.reshape(w, [R, 8 * W])

    @gluon.jit
    def _permute_x(x, BLOCK_M: gl.constexpr, BLOCK_K: gl.constexpr, BLOCKS: gl.constexpr):
        """x's [BLOCK_M, BLOCKS * BLOCK_K] tile, block by block, from physical k = 8 (tC + c) + 4b
        + 2h + e to logical k'."""
        x = gl.reshape(x, [BLOCK_M, BLOCKS, 4, BLOCK_K // 32, 2, 2, 2])  # [m, j, t, c, b, h, e]
        x = gl.permute(x, [0, 1, 3, 4, 5, 2, 6])  # [m, j, c, b, h, t, e]
        return gl.reshape(x, [BLOCK_M, BLOCKS * BLOCK_K])

    @gluon.jit
    def _mul_rn(a, b):
        """a * b rounded on its own: never contracted into an FMA with a later add (bitsandbytes
        rounds code2 x absmax2 before adding the offset)."""
        return gl.inline_asm_elementwise("mul.rn.f32 $0, $1, $2;", "=r,r,r", [a, b], dtype=gl.float32,
                                         is_pure=True, pack=1)  # fmt: skip

    @gluon.jit
    def _load_step(x_rows, x_in, step_blocks, blocks_in, absmax_ptr, absmax2_ptr, k0,
                   BLOCK_K: gl.constexpr, BLOCKSIZE2: gl.constexpr, NESTED: gl.constexpr,
                   X_PREPARED: gl.constexpr):  # fmt: skip
        """One K step's small operands, loaded a step ahead: for each row and block of the step
        ([BLOCK_N, BLOCKS]) the absmax (fp32) or, NESTED, its uint8 code and absmax2 (`_absmax`
        finishes it when the step comes: its table look-up depends on the code, and a load
        that waits for another here would stall the step that issues it); unless X_PREPARED,
        x's tile."""
        blocks = step_blocks + k0 // BLOCK_K
        if NESTED:
            q = gl.load(absmax_ptr + blocks, mask=blocks_in, other=0).to(gl.int32)
            scale2 = gl.load(absmax2_ptr + blocks // BLOCKSIZE2, mask=blocks_in, other=0.0)
        else:
            q = gl.load(absmax_ptr + blocks, mask=blocks_in, other=0.0)
            scale2 = q
        if X_PREPARED:  # x's tile goes to shared memory by cp.async, with the words
            x = gl.full([1], 0.0, gl.float32, gl.BlockedLayout([1], [32], [gl.num_warps()], [0]))
        else:
            x = gl.load(x_rows + k0, mask=x_in, other=0.0)
        return x, q, scale2

    @gluon.jit
    def _absmax(q, scale2, code2_ptr, offset, NESTED: gl.constexpr):
        """The step's absmax from `_load_step`'s values: code2[q] x absmax2 + offset (bitsandbytes'
        double dequantization, as nf4.py does it), or the fp32 absmax as loaded."""
        if NESTED:
            absmax = _mul_rn(gl.load(code2_ptr + q), scale2) + offset
        else:
            absmax = q
        return absmax

    @gluon.jit
    def _nf4_wgmma_kernel(
        x_ptr, out_ptr, partial_ptr, weight_ptr, absmax_ptr, code_ptr, absmax2_ptr, code2_ptr,
        offset_ptr, M, N, K, stride_xm, k_per_split, m_tiles,
        BLOCKSIZE2: gl.constexpr, NESTED: gl.constexpr, WRITE_PARTIAL: gl.constexpr, DEQUANT_A: gl.constexpr,
        EVEN_N: gl.constexpr, IS_BF16: gl.constexpr, X_PREPARED: gl.constexpr, STAGES: gl.constexpr,
        BLOCK_N: gl.constexpr, BLOCK_K: gl.constexpr, BLOCKS: gl.constexpr, BLOCK_M: gl.constexpr,
        word_layout: gl.constexpr, step_word_layout: gl.constexpr, absmax_layout: gl.constexpr,
        absmax_load_layout: gl.constexpr,
        x_layout: gl.constexpr, mma_layout: gl.constexpr, a_layout: gl.constexpr,
        x_smem_layout: gl.constexpr, w_smem_layout: gl.constexpr,
    ):  # fmt: skip
        """Program (m tile + m_tiles x n tile, split): y[m tile, n tile] (or its split's fp32
        partial). One K step is BLOCKS absmax blocks (BLOCK_K = blocksize), each permuted on its
        own, multiplied by its own wgmma and folded with its absmax; or, with DEQUANT_A (from 65
        rows), its codes scaled by the absmax in the A registers and accumulated by wgmma
        directly, as w4a16_wgmma_tiled.py does for int4. weight_ptr is the packed bytes read as
        int32 words [N, K / 8]. The ring, the barrier and the step-ahead loads are
        w4a16_wgmma.py's."""
        pid = gl.program_id(0)
        m0 = (pid % m_tiles) * BLOCK_M
        pid_n = pid // m_tiles
        dtype: gl.constexpr = gl.bfloat16 if IS_BF16 else gl.float16
        STEP_K: gl.constexpr = BLOCKS * BLOCK_K
        lo = _code_table_words(code_ptr, dtype, False)
        hi = _code_table_words(code_ptr, dtype, True)
        offs_n = pid_n * BLOCK_N + gl.arange(0, BLOCK_N, layout=gl.SliceLayout(1, step_word_layout))
        offs_w = gl.arange(0, STEP_K // 8, layout=gl.SliceLayout(0, step_word_layout))
        offs_on = pid_n * BLOCK_N + gl.arange(0, BLOCK_N, layout=gl.SliceLayout(1, mma_layout))
        offs_om = m0 + gl.arange(0, BLOCK_M, layout=gl.SliceLayout(0, mma_layout))
        offs_an = pid_n * BLOCK_N + gl.arange(0, BLOCK_N, layout=gl.SliceLayout(1, absmax_load_layout))
        offs_aj = gl.arange(0, BLOCKS, layout=gl.SliceLayout(0, absmax_load_layout))
        step_j = gl.arange(0, BLOCKS, layout=gl.SliceLayout(0, absmax_layout))
        w_smem = gl.allocate_shared_memory(gl.int32, [STAGES, BLOCK_N, STEP_K // 8], w_smem_layout)
        x_smem = gl.allocate_shared_memory(dtype, [STAGES, BLOCK_M, STEP_K], x_smem_layout)
        acc = gl.zeros([BLOCK_N, BLOCK_M], gl.float32, mma_layout)
        part = gl.zeros([BLOCK_N, BLOCK_M], gl.float32, mma_layout)

        k_start, k_end, k_last = _split_range(k_per_split, K, STEP_K)
        n_in = offs_n < N
        x_rows, x_in = _x_tile(x_ptr + m0 * stride_xm, M - m0, stride_xm, BLOCK_M, STEP_K, x_layout)
        word_rows = weight_ptr + offs_n[:, None].to(gl.int64) * (K // 8) + offs_w[None, :]
        # absmax block of (row, block j of the step): int32, `supports` checks that it fits
        step_blocks = offs_an[:, None] * (K // BLOCK_K) + offs_aj[None, :]
        blocks_in = (offs_an[:, None] < N) & (offs_aj[None, :] < BLOCKS)  # rows past N, as 2-D
        if NESTED:
            offset = gl.load(offset_ptr)
        else:
            offset = 0.0
        for stage in gl.static_range(STAGES - 1):
            k_fetch = gl.minimum(k_start + stage * STEP_K, k_last)
            _fetch_stage(
                w_smem, x_smem, stage, word_rows + k_fetch // 8, n_in, x_rows + k_fetch, x_in,
                EVEN_N, X_PREPARED,
            )  # fmt: skip
        x, q, scale2 = _load_step(
            x_rows, x_in, step_blocks, blocks_in, absmax_ptr, absmax2_ptr, k_start, BLOCK_K, BLOCKSIZE2,
            NESTED, X_PREPARED,
        )  # fmt: skip
        stage = 0
        for k0 in range(k_start, k_end, STEP_K):
            absmax = _absmax(q, scale2, code2_ptr, offset, NESTED)  # an L1 hit: the table is 1 KB
            absmax = gl.convert_layout(absmax, absmax_layout)  # each lane of a quad made a quarter
            k_next = gl.minimum(k0 + STEP_K, k_last)
            next_x, next_q, next_scale2 = _load_step(
                x_rows, x_in, step_blocks, blocks_in, absmax_ptr, absmax2_ptr, k_next, BLOCK_K,
                BLOCKSIZE2, NESTED, X_PREPARED,
            )  # fmt: skip
            k_fetch = gl.minimum(k0 + (STAGES - 1) * STEP_K, k_last)
            _fetch_stage(
                w_smem, x_smem, (stage + STAGES - 1) % STAGES, word_rows + k_fetch // 8, n_in,
                x_rows + k_fetch, x_in, EVEN_N, X_PREPARED,
            )  # fmt: skip
            wait_group(STAGES - 1)  # this step's copies have landed
            x_tile = x_smem.index(stage)
            if not X_PREPARED:
                x_tile.store(_permute_x(x, BLOCK_M, BLOCK_K, BLOCKS))
            fence_async_shared()
            _cta_barrier()  # every thread's part of x's tile is in shared memory
            for j in gl.static_range(BLOCKS):
                words = w_smem.index(stage).slice(j * (BLOCK_K // 8), BLOCK_K // 8, dim=1).load(word_layout)
                a = _look_up(words, lo, hi, BLOCK_N, BLOCK_K, dtype)
                a = gl.convert_layout(a, a_layout, assert_trivial=True)  # no data moves
                x_block = x_tile.slice(j * BLOCK_K, BLOCK_K, dim=1).permute([1, 0])
                scale = gl.sum(gl.where(step_j[None, :] == j, absmax, 0.0), axis=1)  # in registers
                if DEQUANT_A:  # code x absmax in fp32, rounded to x's dtype: bitsandbytes' weight
                    # but for the code's own rounding (the look-up gives 16-bit codes)
                    scale = gl.convert_layout(scale, gl.SliceLayout(1, a_layout))
                    a = (a.to(gl.float32) * scale[:, None]).to(dtype)
                    acc = warpgroup_mma(a, x_block, acc)
                else:
                    part = warpgroup_mma(a, x_block, part, use_acc=False)
                    scale = gl.convert_layout(scale, gl.SliceLayout(1, mma_layout), assert_trivial=True)
                    acc += part * scale[:, None]
            stage = (stage + 1) % STAGES
            x, q, scale2 = next_x, next_q, next_scale2
        wait_group(0)  # no copy may land in shared memory after the program ends
        _store_result(acc, out_ptr, partial_ptr, offs_om, offs_on, M, N, WRITE_PARTIAL)


def _row_bases(block_n: int, num_warps: int) -> dict:
    """wgmma's A rows as a linear layout: lane g row g, register row + 8 then the 64-row blocks,
    warp w rows 16w (lanes t, the quad, hold the same rows)."""
    return dict(
        regs=[[8, 0]] + [[64 << j, 0] for j in range((block_n // 64).bit_length() - 1)],
        lanes=[[1, 0], [2, 0], [4, 0]],
        warps=[[16 << j, 0] for j in range(num_warps.bit_length() - 1)],
    )


def _word_layout(block_n: int, block_k: int, num_warps: int, blocks: int = 1):
    """[block_n, blocks * block_k / 8] words in wgmma's A layout before the look-up: lanes t
    (the C adjacent words of a row and block a thread copies at once) and g (row); registers
    those C words, the blocks of the step, row g + 8, then the 64-row blocks; warps 16-row
    blocks. Each thread copies (cp.async) and later reads exactly its own words, so the ring
    needs no barrier."""
    words = block_k // 32  # C: adjacent words per thread, row and block
    rows = _row_bases(block_n, num_warps)
    regs = [[0, 1 << j] for j in range(words.bit_length() - 1)]
    regs += [[0, (block_k // 8) << j] for j in range(blocks.bit_length() - 1)]
    return gl.DistributedLinearLayout(
        reg_bases=regs + rows["regs"],
        lane_bases=[[0, words], [0, 2 * words]] + rows["lanes"],
        warp_bases=rows["warps"],
        block_bases=[],
        shape=[block_n, blocks * block_k // 8],
    )


def _absmax_layout(block_n: int, num_warps: int, blocks: int, spread: bool = False):
    """[block_n, blocks] absmax values: each row where wgmma's accumulator has it (the quad's
    4 lanes alike), the blocks of the step in registers. `spread`: the quad's lanes t take
    different values instead (the first two register bases), so each computes a quarter."""
    rows = _row_bases(block_n, num_warps)
    regs = [[0, 1 << j] for j in range(blocks.bit_length() - 1)] + rows["regs"]
    lanes = (regs[:2] if spread else []) + [[0, 0], [0, 0]]  # a quad's lanes: 2 bases, maybe repeats
    lanes = lanes[:2]
    return gl.DistributedLinearLayout(
        reg_bases=regs[2:] if spread else regs,
        lane_bases=lanes + rows["lanes"],
        warp_bases=rows["warps"],
        block_bases=[],
        shape=[block_n, blocks],
    )


@functools.cache
def kernel_layouts(block_n: int, block_k: int, block_m: int, num_warps: int, blocks: int = 1) -> dict:
    """`operand_layouts` for a K step of `blocks` absmax blocks, the words of one block
    (`_word_layout`) and of the step (how they are copied), the absmax, and the words'
    shared-memory ring: rows of blocks * block_k / 8 words, unswizzled."""
    if num_warps != 4:  # two warp groups would take rows 64 apart: another word layout
        raise ValueError(f"the NF4 wgmma kernel takes num_warps=4 (one warp group), not {num_warps}")
    if blocks not in (1, 2, 4) or (blocks > 1 and block_k < 64):
        raise ValueError(f"blocks_per_step must be 1, 2 or 4 (1 for blocksize 32), not {blocks}")
    layouts = operand_layouts(block_n, block_k, block_m, num_warps, blocks * block_k)
    return dict(
        word_layout=_word_layout(block_n, block_k, num_warps),
        step_word_layout=_word_layout(block_n, block_k, num_warps, blocks),
        absmax_layout=_absmax_layout(block_n, num_warps, blocks),
        absmax_load_layout=_absmax_layout(block_n, num_warps, blocks, spread=True),
        w_smem_layout=gl.SwizzledSharedLayout(vec=1, per_phase=1, max_phase=1, order=[1, 0]),
        **layouts,
    )  # fmt: skip


def permute_like_kernel(x: torch.Tensor, block_k: int) -> torch.Tensor:
    """Plain-PyTorch model of `_permute_x`: [M, K] -> [M, K] in the kernel's logical K order."""
    m, k = x.shape
    x = x.reshape(m, k // block_k, 4, block_k // 32, 2, 2, 2)  # [m, step, t, c, b, h, e]
    return x.permute(0, 1, 3, 4, 5, 2, 6).reshape(m, k)


def nf4_wgmma_matmul(x: torch.Tensor, weight: torch.Tensor, quant_state, out: torch.Tensor,
                     config: WgmmaConfig) -> torch.Tensor:  # fmt: skip
    """x [M <= 64, K] @ W.T into `out` [M, N], W in bitsandbytes NF4 (x and out already checked
    by nf4_matmul; `supports` says whether this kernel takes the weight)."""
    from inferlab.kernels.nf4 import _validated_args

    return launch(x, weight, quant_state, _validated_args(weight, quant_state), out, config)


def launch(x: torch.Tensor, weight: torch.Tensor, quant_state, validated: tuple, out: torch.Tensor,
           config: WgmmaConfig) -> torch.Tensor:  # fmt: skip
    """`nf4_wgmma_matmul` with quant_state's fields already checked (`validated`: what
    nf4._validated_args returned), so that nf4_matmul checks them once per call."""
    from inferlab.kernels._matmul_plan import reduce_partials
    from inferlab.kernels._triton import triton

    _, _, blocksize, absmax2, code2, offset, blocksize2 = validated
    if config.warp_specialized:  # the codes looked up by a producer warp group (w4a16_wgmma_ws.py)
        from inferlab.kernels.w4a16_wgmma_ws import nf4_wgmma_ws_matmul

        return nf4_wgmma_ws_matmul(x, weight, quant_state, out, config, validated)
    if config.step_k is not None or config.words_in_registers:
        raise ValueError(
            "step_k and words_in_registers are int4's (w4a16_wgmma_tiled.py): NF4 steps by blocks"
        )
    if not supports(weight, blocksize):
        raise ValueError(
            f"the NF4 wgmma kernel takes blocksize {SUPPORTED_GROUP_SIZES} and a contiguous, 4-byte "
            f"aligned weight of fewer than 2^31 blocks; not blocksize {blocksize}"
        )
    if x.stride(1) != 1:  # the kernel reads along K with unit stride (any row stride is fine)
        x = x.contiguous()
    M, K = x.shape
    N = out.shape[1]
    # the fold takes all of M in one tile (M <= 64); dequantize_a tiles M by config.block_m
    block_m = config.block_m if config.dequantize_a else max(config.block_m, block_m_for(M))
    m_tiles = triton.cdiv(M, block_m)
    blocks = config.blocks_per_step
    if (K // blocksize) % blocks:
        raise ValueError(f"K = {K} is not a whole number of steps of {blocks} absmax blocks of {blocksize}")
    layouts = kernel_layouts(config.block_n, blocksize, block_m, config.num_warps, blocks)
    step_k = blocks * blocksize
    num_tiles, split, steps_per_split, partial = plan_splits(config, M, N, K // step_k, out, m_tiles)
    if config.prepare_x:
        x, _ = prepare_x(x, blocksize, nf4=True)
    nested = absmax2 is not None
    absmax = quant_state.absmax
    _nf4_wgmma_kernel[(num_tiles * m_tiles, split)](
        x, out, partial, weight.view(-1).view(torch.int32), absmax, quant_state.code,
        absmax2 if nested else absmax, code2 if nested else absmax, offset if nested else absmax,
        M, N, K, x.stride(0), steps_per_split * step_k, m_tiles,
        BLOCKSIZE2=blocksize2, NESTED=nested, WRITE_PARTIAL=split > 1, DEQUANT_A=config.dequantize_a,
        EVEN_N=N % config.block_n == 0,
        IS_BF16=x.dtype == torch.bfloat16, X_PREPARED=config.prepare_x, STAGES=config.stages,
        BLOCK_N=config.block_n, BLOCK_K=blocksize, BLOCKS=blocks, BLOCK_M=block_m, **layouts,
        num_warps=config.num_warps,
    )  # fmt: skip
    if split > 1:
        reduce_partials(partial, out)
    return out


def fit_blocks(config: WgmmaConfig, K: int, blocksize: int) -> WgmmaConfig:
    """`config` with as many absmax blocks per K step as it asks for, or fewer (4, 2, 1) where
    K's blocks do not divide into them or the step would not be legal (`kernel_layouts`): for a
    default config, which must take any K."""
    blocks = config.blocks_per_step
    while blocks > 1 and ((K // blocksize) % blocks or blocksize < 64 or blocks * blocksize > 256):
        blocks //= 2
    if blocks == config.blocks_per_step:  # the usual case: no new config on every call
        return config
    return dataclasses.replace(config, blocks_per_step=blocks)


def supports(weight: torch.Tensor, blocksize: int) -> bool:
    """Whether the kernel takes this weight: one K step per absmax block of 32, 64 or 128, the
    packed bytes read as 32-bit words (contiguous, 4-byte aligned), int32 block indices."""
    aligned = weight.is_contiguous() and weight.data_ptr() % 4 == 0
    return blocksize in SUPPORTED_GROUP_SIZES and aligned and 2 * weight.numel() // blocksize < 2**31


# ---------------------------------------------------------------- a CPU model of the look-up
def code_table_words(code: torch.Tensor, dtype: torch.dtype) -> list[int]:
    """Plain-PyTorch model of `_code_table_words`: the 8 table registers, low bytes then high."""
    bits = [int(b) & 0xFFFF for b in code.float().to(dtype).view(torch.int16).tolist()]
    return [
        sum(((b >> shift) & 0xFF) << (8 * (i % 4)) for i, b in enumerate(bits) if i // 4 == word)
        for shift in (0, 8)
        for word in range(4)
    ]


def run_lookup_asm(word: int, tables: list[int]) -> list[int]:
    """Execute `LOOKUP_ASM` on one 32-bit word: a tiny interpreter for exactly the PTX it uses
    (and, shr, shl, prmt, lop3, mov into a 16-bit pair), so the CPU tests check the kernel's own
    text. Returns the 8 16-bit outputs $0-$7."""
    regs = {"$8": word & 0xFFFFFFFF} | {f"${9 + i}": t for i, t in enumerate(tables)}
    outs: dict[str, int] = {}

    def value(operand: str) -> int:
        return regs[operand] if operand in regs else int(operand, 0)  # a register or an immediate

    for line in LOOKUP_ASM.splitlines():
        line = line.split("//")[0].strip().rstrip(";")
        if not line or line[0] in "{}." or line.startswith(".reg"):
            continue
        op, rest = line.split(None, 1)
        if op == "mov.b32":  # {$lo, $hi}, r
            pair, src = rest.rsplit(",", 1)
            lo, hi = (o.strip() for o in pair.strip(" {}").split(","))
            outs[lo], outs[hi] = regs[src.strip()] & 0xFFFF, regs[src.strip()] >> 16
            continue
        dst, *args = (a.strip() for a in rest.split(","))
        v = [value(a) for a in args]
        if op == "and.b32":
            r = v[0] & v[1]
        elif op == "shr.u32":
            r = v[0] >> v[1]
        elif op == "shl.b32":
            r = (v[0] << v[1]) & 0xFFFFFFFF
        elif op == "lop3.b32":  # bit i of the LUT at index (a_i << 2 | b_i << 1 | c_i)
            r = sum(((v[3] >> ((v[0] >> i & 1) << 2 | (v[1] >> i & 1) << 1 | (v[2] >> i & 1))) & 1) << i
                    for i in range(32))  # fmt: skip
        elif op == "prmt.b32":
            source = v[0] | v[1] << 32
            r = 0
            for i in range(4):
                sel = v[2] >> (4 * i) & 0xF
                byte = source >> (8 * (sel & 7)) & 0xFF
                r |= (0xFF if byte & 0x80 else 0) << (8 * i) if sel & 8 else byte << (8 * i)
        else:
            raise ValueError(f"run_lookup_asm does not model {op}")
        regs[dst] = r
    return [outs[f"${i}"] for i in range(8)]
