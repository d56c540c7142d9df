"""`inferlab explain FILE[:KERNEL]`: any `@triton.jit` kernel, line by line, in the execution model.

Static (no import, no GPU): `analyze` tags each line with the concept it expresses (program
instance, tile offsets, mask, load/store, reduction, tl.dot, accumulator, loop/pipelining,
constexpr, atomics, block pointers), `concepts` holds the vocabulary and what Triton automates
for each, `lint` flags likely bugs (unmasked accesses, 32-bit offsets). `render` prints it with
Rich. On a GPU, `compiled` adds what the compiler made of the package's own kernels.
"""

from inferlab.learn.explain.analyze import KernelReport, Tag, explain_file, parse_target
from inferlab.learn.explain.lint import Finding

__all__ = ["Finding", "KernelReport", "Tag", "explain_file", "parse_target"]
