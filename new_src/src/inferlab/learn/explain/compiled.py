"""`inferlab explain --compiled`: what the compiler made of the package's own kernels on a GPU.

Best effort, and only for kernels a SPEC in `inferlab.kernels.REGISTRY` launches: the module is
imported, the SPEC's launcher runs on each of its test shapes in its first dtype (which compiles
the variants those shapes pick), and each compiled binary in the kernel's cache reports its
warps, stages, registers, spills and shared memory, and the PTX lines that `tl.program_id`
(`%ctaid`) and the loads and stores (`ld.global`, `st.global`) became. Needs a CUDA GPU.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from inferlab.errors import InferlabError

PTX_LINES_SHOWN = 4
VARIANTS_SHOWN = 3  # per kernel: each constexpr combination the shapes picked is a binary of its own


class CompiledUnavailable(InferlabError):
    """The compiled view cannot be produced here (no GPU, or a kernel with no SPEC)."""


@dataclass(frozen=True, slots=True)
class CompiledFacts:
    kernel: str
    variant: str  # the constexprs it was compiled for
    num_warps: int
    num_stages: int
    n_regs: int
    n_spills: int
    shared: int
    ptx_program_id: list[str]
    ptx_loads: list[str]
    ptx_stores: list[str]


def module_of(path: Path) -> str | None:
    """`.../inferlab/kernels/elementwise.py` -> `inferlab.kernels.elementwise` (None if not ours)."""
    import inferlab

    package = Path(inferlab.__file__).resolve().parent
    try:
        rel = path.resolve().relative_to(package)
    except ValueError:
        return None
    return ".".join(["inferlab", *rel.with_suffix("").parts])


def compiled_facts(path: Path, kernel_names: list[str]) -> tuple[list[CompiledFacts], list[str]]:
    """(facts of each compiled variant of `kernel_names`, notes); CompiledUnavailable if it cannot."""
    import importlib

    module_name = module_of(path)
    if module_name is None or not module_name.startswith("inferlab.kernels."):
        raise CompiledUnavailable(
            f"--compiled covers the package's kernels that have a SPEC (inferlab.kernels); "
            f"{path} is not one of them"
        )
    from inferlab.kernels.device import select_backend

    backend = select_backend()
    if not backend.triton_available or backend.interpreted:
        raise CompiledUnavailable(f"--compiled needs a CUDA GPU to compile the kernel on ({backend.reason})")
    import torch

    from inferlab.kernels import REGISTRY

    specs = [s for s in REGISTRY if s.module == module_name]
    if not specs:
        raise CompiledUnavailable(
            f"no SPEC in inferlab.kernels.REGISTRY launches the kernels of {module_name}"
        )
    module = importlib.import_module(module_name)
    notes = []
    for spec in specs:
        dtype = spec.dtypes[0]
        for shape in spec.test_shapes:
            gen = torch.Generator().manual_seed(0)
            inputs = spec.make_inputs(shape.dims, dtype, torch.device("cuda"), gen)
            spec.launcher(**inputs)
        notes.append(
            f"{spec.name}: launched on its {len(spec.test_shapes)} test shape(s) in "
            f"{str(dtype).removeprefix('torch.')}"
        )
    torch.cuda.synchronize()
    facts = []
    for name in kernel_names:
        jit_fn = getattr(module, name, None)
        compiled = [k for cache in getattr(jit_fn, "device_caches", {}).values() for k in cache[0].values()]
        if not compiled:
            notes.append(
                f"{name}: no binary of its own (inlined into its callers, or not picked by these shapes)"
            )
        facts += [_facts(name, k) for k in compiled[:VARIANTS_SHOWN]]
        if len(compiled) > VARIANTS_SHOWN:
            notes.append(f"{name}: {len(compiled)} compiled variants, the first {VARIANTS_SHOWN} shown")
    return facts, notes


def _facts(name: str, k) -> CompiledFacts:
    k._init_handles()  # loads the binary: n_regs and n_spills come from the driver
    ptx = k.asm.get("ptx", "").splitlines()
    src = getattr(k, "src", None)
    constants = getattr(src, "constants", {}) or {}
    arg_names = list(getattr(getattr(src, "fn", None), "arg_names", []))
    variant = ", ".join(f"{_arg(key, arg_names)}={value}" for key, value in constants.items())
    return CompiledFacts(
        kernel=name,
        variant=variant,
        num_warps=k.metadata.num_warps,
        num_stages=k.metadata.num_stages,
        n_regs=k.n_regs,
        n_spills=k.n_spills,
        shared=k.metadata.shared,
        ptx_program_id=_grep(ptx, "%ctaid"),
        ptx_loads=_grep(ptx, "ld.global"),
        ptx_stores=_grep(ptx, "st.global"),
    )


def _arg(key, arg_names: list[str]) -> str:
    """A constant's name: Triton keys constants by argument position, `(4,)` -> `BLOCK_SIZE`."""
    if isinstance(key, tuple) and len(key) == 1 and isinstance(key[0], int) and key[0] < len(arg_names):
        return arg_names[key[0]]
    return str(key)


def _grep(lines: list[str], needle: str) -> list[str]:
    hits = [line.strip() for line in lines if needle in line]
    shown = hits[:PTX_LINES_SHOWN]
    if len(hits) > PTX_LINES_SHOWN:
        shown.append(f"... {len(hits) - PTX_LINES_SHOWN} more")
    return shown
