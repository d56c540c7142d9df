"""The execution-model vocabulary `inferlab explain` tags lines with, in lesson 1's words.

Each concept says what a line is in the model (with its CUDA counterpart where there is one),
what Triton's compiler does for it, and what stays the programmer's job. A kernel's paragraph
is assembled from the concepts it uses, in this order.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Concept:
    key: str
    label: str  # the tag shown beside a line
    meaning: str  # one sentence, lesson 1's wording
    automated: str = ""  # what the compiler does for it ("" if nothing specific)
    yours: str = ""  # what stays the programmer's


CONCEPTS: dict[str, Concept] = {
    c.key: c
    for c in (
        Concept(
            "jit",
            "@triton.jit",
            "Marks a Triton kernel (or a helper kernels call): compiled on the first launch for each new "
            "combination of argument dtypes, constexpr values and alignment facts; with no GPU, the "
            "interpreter runs it.",
        ),
        Concept(
            "program_id",
            "program instance",
            "`tl.program_id(axis)` is which program instance this is, CUDA's `blockIdx`: the only "
            "thing that differs between the programs of one launch.",
            yours="The decomposition: what one program computes, the grid, and the order programs "
            "visit the data (scheduling across SMs, for cache reuse).",
        ),
        Concept(
            "num_programs",
            "number of programs",
            "`tl.num_programs(axis)` is the size of the launch grid, CUDA's `gridDim`; the launcher "
            "chooses it, usually `triton.cdiv(n, BLOCK_SIZE)`.",
        ),
        Concept(
            "arange",
            "tile offsets",
            "`tl.arange` is a block (vector) of offsets, the same in every program: where CUDA adds "
            "`threadIdx`, Triton adds a whole vector. It is not a thread id; the compiler spreads the "
            "block over `num_warps × 32` threads.",
            automated="Spreading each block over the program's `num_warps × 32` threads (the layout).",
            yours="Block sizes (`BLOCK_*`, powers of two): elements per program, not threads.",
        ),
        Concept(
            "mask",
            "mask (bounds guard)",
            "A block of booleans, CUDA's `if (i < n)`: masked-off lanes are neither read nor written.",
            yours="Correctness at the edges: a mask on every access a ragged size can overrun, and "
            "what a masked load returns (`other=`).",
        ),
        Concept(
            "load",
            "load (global memory)",
            "`tl.load` reads a block of pointers from global memory (DRAM, through L2) into registers.",
            automated="Coalescing and vectorizing loads and stores: wide (up to 16-byte) accesses "
            "where it can prove contiguity and alignment.",
            yours="Memory traffic: what is loaded, how often, and what is fused instead of written "
            "out and read back.",
        ),
        Concept(
            "store", "store (global memory)", "`tl.store` writes a block from registers to global memory."
        ),
        Concept(
            "reduction",
            "reduction (cross-thread)",
            "A reduction or scan over a block's axis: the block lives in many threads, so the compiler "
            "inserts the communication between them.",
            automated="The cross-thread communication of reductions: warp shuffles, shared memory and "
            "the barriers around it.",
            yours="The reduction's numerics (accumulate in fp32) and whether a row fits one block or "
            "needs a loop.",
        ),
        Concept(
            "dot",
            "tl.dot (tensor cores)",
            "`tl.dot` is a block matrix multiply-accumulate, compiled to the GPU's tensor-core (MMA) "
            "instructions for the dtypes they support.",
            automated="Tensor-core instructions for `tl.dot` and the shared-memory layout of its operands.",
            yours="Tile shapes `BLOCK_M/N/K` (reuse against registers and shared memory), operand "
            "dtypes the tensor cores take, fp32 accumulation.",
        ),
        Concept(
            "accumulator",
            "accumulator",
            "A value made with `tl.zeros`/`tl.full` before a loop and updated in it: carried across "
            "iterations in registers.",
        ),
        Concept(
            "loop",
            "loop",
            "A loop inside the program (over K, or over a row's chunks): with `range`/`tl.range` the "
            "compiler can issue later iterations' loads early, `num_stages` deep; `tl.static_range` "
            "unrolls at compile time.",
            automated="Software pipelining: asynchronous copies of later iterations' tiles while the "
            "current one computes.",
            yours="`num_stages` and `num_warps` (occupancy and latency hiding; autotuning only picks "
            "among the candidates you list).",
        ),
        Concept(
            "constexpr",
            "compile-time constant",
            "`tl.constexpr`: known to the compiler, so block shapes can depend on it; each value "
            "compiles (and caches) its own kernel, and branches on it vanish.",
            automated="Specialization: one binary per constexpr value (and per argument alignment), "
            "dead branches removed.",
        ),
        Concept(
            "atomic",
            "atomic (global memory)",
            "An atomic read-modify-write in global memory: indivisible, so conflicting programs "
            "serialize on it.",
            yours="Contention and determinism: floating-point atomics add in a different order each run.",
        ),
        Concept(
            "block_ptr",
            "block pointer / descriptor",
            "A pointer to a whole tile (shape, strides, offsets, order), moved with `tl.advance`; "
            "bounds come from `boundary_check`, and on Hopper a tensor descriptor can use TMA.",
            automated="Address arithmetic and bounds checks of the tile (and TMA copies where supported).",
            yours="`boundary_check` and `padding_option` on every access that can overrun.",
        ),
        Concept(
            "int64",
            "int64 offsets",
            "Widened to int64 before multiplying: `pid * BLOCK` or `row * stride` in int32 wraps once an "
            "offset passes 2**31.",
        ),
        Concept(
            "where",
            "select (tl.where)",
            "`tl.where` picks per lane between two blocks; both sides are computed.",
        ),
        Concept(
            "barrier",
            "barrier",
            "`tl.debug_barrier` is CUDA's `__syncthreads()`: every thread of the program waits there.",
        ),
        Concept(
            "hint",
            "compiler hint",
            "Tells the compiler about alignment or contiguity (`tl.multiple_of`, `tl.max_contiguous`) "
            "so it can prove a wide access safe.",
        ),
        Concept(
            "helper",
            "@triton.jit call",
            "A call to another `@triton.jit` function: inlined into this kernel when it compiles.",
        ),
    )
}

ALWAYS_YOURS = "`num_warps`: threads per program (`num_warps × 32`), traded against registers per thread."
