"""Baselines of the weight-only quantized matmuls: cuBLAS on the dequantized weight, torch's int4
kernel (`_weight_int4pack_mm`), bitsandbytes' 4-bit matmul, and the package's own opt-in
dequantize-then-cuBLAS path. Registered in `providers.EXTRA`."""

from __future__ import annotations

import importlib

import torch

from inferlab.bench.provider_types import Provider, ProviderUnavailable
from inferlab.kernels.spec import KernelSpec


def _cublas_dense(spec: KernelSpec) -> Provider:
    # The SPEC's `w_dense` is W dequantized to x's dtype when the inputs were made, outside
    # timing and outside the byte count: this is a plain x @ W.T on the same numbers.
    def mm(inputs, out):
        return torch.mm(inputs["x"], inputs["w_dense"].t(), out=out)

    return Provider("cublas-bf16", mm, writes_out=True, note="x @ W.T, W dense in x's dtype")


def _inferlab_materialize(spec: KernelSpec) -> Provider:
    # The package's own opt-in path, timed beside its default: from DEQUANT_MIN_M rows the
    # weight is dequantized once into a scratch buffer (inside the timed call), then cuBLAS.
    def mm(inputs, out):
        return spec.launcher(**inputs, out=out, materialize=True)

    note = "materialize=True: W dequantized, then cuBLAS"
    return Provider("inferlab-materialize", mm, writes_out=True, note=note)


def _inferlab_warp_specialized(spec: KernelSpec) -> Provider:
    # NF4 through the warp-specialized kernel (w4a16_wgmma_ws.py, `ws_config_for`): NF4's default
    # from 64 rows (0007 runs 68-69); timed beside the default below that, so that a run says
    # whether its threshold should move.
    from inferlab.kernels._matmul_plan import ws_config_for
    from inferlab.kernels.w4a16_wgmma import available

    if not (torch.cuda.is_available() and available(torch.device("cuda"))):
        raise ProviderUnavailable("the warp-specialized kernel needs an sm_90 GPU and Triton's Gluon")

    def mm(inputs, out):
        return spec.launcher(**inputs, out=out, config=ws_config_for(inputs["x"].shape[0]))

    note = "config.warp_specialized: W dequantized by producer warp groups"
    return Provider("inferlab-ws", mm, writes_out=True, note=note)


INT4PACK_SCHEMAS = {  # the signatures the conversion below was written for (torch >= 2.5)
    "_convert_weight_to_int4pack": "(Tensor self, int innerKTiles)",
    "_weight_int4pack_mm": "(Tensor self, Tensor mat2, int qGroupSize, Tensor qScaleAndZeros)",
}
INT4PACK_INNER_K_TILES = 8  # gpt-fast's and torchao's choice; K must be a multiple of 8 x 16


def _to_int4pack(qweight, scales, zeros, group_size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Int4Weight pieces -> (tinygemm's packed weight, scales_and_zeros [K/G, N, 2]).

    tinygemm computes W = (q - 8) * scale + zero, so zero = (8 - zero_point) * scale."""
    from inferlab.kernels.quant_formats import unpack_int4_along_k

    q = unpack_int4_along_k(qweight).t()  # [N, K], 0..15
    as_bytes = ((q[:, ::2] << 4) | q[:, 1::2]).to(torch.uint8).contiguous()  # input 2j: high nibble
    packed = torch.ops.aten._convert_weight_to_int4pack(as_bytes, INT4PACK_INNER_K_TILES)
    s = scales.float()
    zero_point = 8.0 if zeros is None else zeros.float()
    scales_and_zeros = torch.stack([s, (8.0 - zero_point) * s], dim=-1).to(scales.dtype).contiguous()
    return packed, scales_and_zeros


def _torch_int4pack(spec: KernelSpec) -> Provider:
    if not torch.cuda.is_available():
        raise ProviderUnavailable("registered for CUDA only (the CPU op is _weight_int4pack_mm_for_cpu)")
    for name, signature in INT4PACK_SCHEMAS.items():
        op = getattr(torch.ops.aten, name, None)
        if op is None:
            raise ProviderUnavailable(f"this torch has no aten.{name}")
        if signature not in str(op.default._schema):
            raise ProviderUnavailable(f"aten.{name} is {op.default._schema}, not {name}{signature}")
    import weakref

    from inferlab.kernels.quant_formats import dequantize_int4_ref, quantize_int4
    from inferlab.kernels.w4a16 import SPEC_GROUP_SIZE

    # one small product first: a torch whose packing convention differs is unavailable, not wrong
    gen = torch.Generator().manual_seed(0)
    w = torch.randn(64, 256, generator=gen).cuda()
    x = torch.randn(2, 256, generator=gen).cuda().to(torch.bfloat16)
    qw = quantize_int4(w, SPEC_GROUP_SIZE, scale_dtype=torch.bfloat16)
    try:
        packed, sz = _to_int4pack(qw.qweight, qw.scales, qw.zeros, SPEC_GROUP_SIZE)
        got = torch.ops.aten._weight_int4pack_mm(x, packed, SPEC_GROUP_SIZE, sz).float()
    except RuntimeError as e:
        raise ProviderUnavailable(f"aten._weight_int4pack_mm failed a smoke test: {e}") from None
    want = x.float() @ dequantize_int4_ref(qw, torch.bfloat16).float().t()
    if (got - want).abs().max() > 0.05 * want.pow(2).mean().sqrt():
        raise ProviderUnavailable("aten._weight_int4pack_mm disagrees with x @ W.T on a smoke test")

    converted: dict[int, tuple] = {}  # id(qweight) -> (packed, scales_and_zeros), while it lives

    def mm(inputs, out):
        # converted on the first call with each input set (the untimed warm-up), never in a graph
        qweight = inputs["qweight"]
        if id(qweight) not in converted:
            key = id(qweight)
            weakref.finalize(qweight, converted.pop, key, None)
            converted[key] = _to_int4pack(qweight, inputs["scales"], inputs.get("zeros"), SPEC_GROUP_SIZE)
        packed, scales_and_zeros = converted[id(qweight)]
        return torch.ops.aten._weight_int4pack_mm(inputs["x"], packed, SPEC_GROUP_SIZE, scales_and_zeros)

    return Provider("torch-int4pack", mm, note="tinygemm, weight converted before timing")


def _bitsandbytes_nf4_matmul(spec: KernelSpec) -> Provider:
    matmul_4bit = getattr(importlib.import_module("bitsandbytes"), "matmul_4bit", None)
    if matmul_4bit is None:
        raise ProviderUnavailable("bitsandbytes has no matmul_4bit in this version")
    from inferlab.kernels.w4a16 import nf4_state_of

    def mm(inputs, out):
        # W.t() as bitsandbytes' Linear4bit passes it; its own dispatch picks gemv or gemm
        return matmul_4bit(inputs["x"], inputs["weight"].t(), nf4_state_of(inputs, out.shape[1]))

    return Provider("bitsandbytes", mm, note="matmul_4bit")
