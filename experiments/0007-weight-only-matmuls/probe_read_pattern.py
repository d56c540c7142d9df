"""Probe (0007 run 21): how fast can an H100 read a 29 MB int4 weight in the pattern the wgmma
kernel uses (tiles of 16 word rows x 128 columns of qweight [K / 8, N], split along K), against
reading the same bytes in contiguous 8 KB blocks. Read-only kernels: no math, one xor per word.

    PYTHONPATH=src:benchmarks python3 experiments/0007-weight-only-matmuls/probe_read_pattern.py
"""

from __future__ import annotations

import functools
import sys

import torch
import triton
import triton.language as tl

sys.path.insert(0, "benchmarks")
from sweep_w4a16 import graph_us  # noqa: E402


@triton.jit
def _tiles(w_ptr, out_ptr, N, rows_per_split, ROWS: tl.constexpr, COLS: tl.constexpr):
    cols = tl.program_id(0) * COLS + tl.arange(0, COLS)
    r0 = tl.program_id(1) * rows_per_split
    acc = tl.zeros([ROWS, COLS], tl.int32)
    for r in range(r0, r0 + rows_per_split, ROWS):
        acc ^= tl.load(w_ptr + (r + tl.arange(0, ROWS))[:, None].to(tl.int64) * N + cols[None, :])
    tl.store(out_ptr + tl.program_id(1) * N + cols, tl.reduce(acc, 0, _xor))


@triton.jit
def _xor(a, b):
    return a ^ b


@triton.jit
def _blocks(w_ptr, out_ptr, words_per_program, BLOCK: tl.constexpr):
    start = tl.program_id(0).to(tl.int64) * words_per_program
    acc = tl.zeros([BLOCK], tl.int32)
    for i in range(0, words_per_program, BLOCK):
        acc ^= tl.load(w_ptr + start + i + tl.arange(0, BLOCK))
    tl.store(out_ptr + tl.program_id(0) * BLOCK + tl.arange(0, BLOCK), acc)


def _read_tiles(w, grid, out, n, rows, cols):
    _tiles[grid](w, out, n, rows, ROWS=16, COLS=cols, num_warps=4)


def _read_blocks(w, programs, out, per):
    _blocks[(programs,)](w, out, per, BLOCK=2048, num_warps=4)


def main() -> None:
    sms = torch.cuda.get_device_properties(0).multi_processor_count
    print(torch.cuda.get_device_name())
    for k, n in ((4096, 14336), (14336, 4096)):
        words = [
            torch.randint(-(2**31), 2**31 - 1, (k // 8, n), dtype=torch.int32, device="cuda")
            for _ in range(6)
        ]
        mb = words[0].nbytes / 1e6
        out = torch.empty(16 * n + 2 * 16 * sms * 2048, dtype=torch.int32, device="cuda")
        copy_us = graph_us([functools.partial(torch.clone, w) for w in words])
        print(f"{k}->{n}: {mb:.1f} MB; clone (read + write) {copy_us:.1f} us = {2 * mb / copy_us:.2f} TB/s")
        for cols in (64, 128, 256):
            for split in (1, 2, 4, 8):
                rows_per_split = k // 8 // split
                grid = (n // cols, split)
                call = functools.partial(_read_tiles, grid=grid, out=out, n=n, rows=rows_per_split, cols=cols)
                us = graph_us([functools.partial(call, w) for w in words])
                programs = grid[0] * split
                print(
                    f"  tiles 16x{cols} split {split} ({programs} programs): {us:.1f} us = {mb / us:.2f} TB/s"
                )
        for programs in (sms, 2 * sms, 4 * sms, 8 * sms):
            per = words[0].numel() // programs // 2048 * 2048
            call = functools.partial(_read_blocks, programs=programs, out=out, per=per)
            us = graph_us([functools.partial(call, w) for w in words])
            rate = per * programs * 4 / 1e6 / us
            print(
                f"  contiguous, {programs} programs x {per * 4 / 1e3:.0f} KB: {us:.1f} us = {rate:.2f} TB/s"
            )


if __name__ == "__main__":
    main()
