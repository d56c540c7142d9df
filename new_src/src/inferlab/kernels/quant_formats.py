"""Weight quantization formats in plain PyTorch: the specification every dequant kernel must meet.

Three formats, each a quantizer, a reference dequantizer and (for int4) loaders for the layouts
real checkpoints ship in. Nothing here launches a kernel; `nf4.py` and the W4A16 GEMM do.

## NF4, exactly as bitsandbytes stores it (QLoRA's `bnb_4bit_quant_type="nf4"`)

- `NF4_CODE`: 16 fp32 values, quantiles of N(0, 1) scaled to [-1, 1] (equal to bitsandbytes'
  `get_4bit_type("nf4")`; a test checks). A 4-bit code is an index into this table, not a float.
- The weight of `shape` is flattened row-major to n values and cut into blocks of `blocksize`
  (64) consecutive values; the last block may be partial. absmax[b] = max |w| over block b (fp32).
- Packing: byte j holds value 2j in its HIGH nibble and value 2j+1 in its LOW nibble; an odd n
  leaves the last low nibble 0. bitsandbytes stores the bytes as uint8 [(n + 1) // 2, 1].
- Double quantization (`compress_statistics=True`, QuantState.nested): the fp32 absmax is
  replaced by one uint8 per block, a code into the 256-entry signed dynamic map
  `state2.code` (`signed_dynamic_map()`), with one fp32 scale per `state2.blocksize` (256)
  codes in `state2.absmax`, after subtracting `offset` = mean(absmax).

Dequantization, in bitsandbytes' order (csrc/kernels.cu kDequantizeBlockwise; the CPU build in
csrc/cpu_ops.cpp and the torch fallback in backends/default/ops.py do the same arithmetic):

    absmax[b] = fp32( fp32(state2.code[absmax_u8[b]] * state2.absmax[b // 256]) + offset )
                   (nested only: a multiply rounded to fp32, then a separate fp32 add: no FMA)
    w[i]      = dtype( fp32(NF4_CODE[nibble(i)] * absmax[i // blocksize]) )

one fp32 product, rounded ONCE to the output dtype (round to nearest even). The absmax is never
rounded to a 16-bit type first, and the product is never formed in fp16/bf16. (One exception
in bitsandbytes itself: its AVX-512 CPU path indexes absmax per row, which differs from these
flat blocks when a row length is a multiple of 16 but not of blocksize. Its CUDA kernel, its
scalar CPU path and its torch fallback all agree with the formula above.)

`quantize_nf4_ref` writes the same packed bytes and fp32 absmax as bitsandbytes'
`quantize_4bit` (tests check on the CPU). With double quantization its uint8 absmax codes are
the exact nearest entries of the dynamic map; bitsandbytes' CPU quantizer looks them up in a
65536-bin table, so a few land one code away. Either state decodes the same way.

## int4, group-wise (the internal layout that our W4A16 kernels read)

The logical weight is nn.Linear's W: [N, K] = [out_features, in_features]. `Int4Weight` holds

    qweight: int32 [K // 8, N]  word (i, n) packs inputs k = 8i .. 8i+7 of output n,
                                 input 8i + j in bits 4j .. 4j+3 (unsigned 0..15)
    scales:  [K // G, N]         fp16 or bf16, one per group of G consecutive inputs
    zeros:   uint8 [K // G, N]   zero points 0..15, unpacked; None when symmetric (zero point 8)
    W[n, k] = (q[k, n] - zero[k // G, n]) * scale[k // G, n]

computed as an exact small integer times the fp32 value of the scale, rounded once. Packing
along K (GPTQ's qweight layout) lets a GEMM tile load [BLOCK_K / 8, BLOCK_N] words coalesced
along N and unpack them with shifts; zeros are kept unpacked because they are 1/64 of the bytes.

Loaders (layouts read from the sources named; `tests/test_quant_formats.py` packs synthetic
checkpoints by these rules and checks the loaders against a direct dequantization):

- AutoAWQ GEMM (awq/modules/linear/gemm.py `WQLinear_GEMM.from_linear`,
  awq/utils/packing_utils.py): qweight int32 [K, N / 8] packed along OUTPUT, and within each
  word the nibble in bits 4i..4i+3 holds output column 8c + AWQ_ORDER[i], AWQ_ORDER =
  [0, 2, 4, 6, 1, 3, 5, 7]; qzeros int32 [K / G, N / 8] packed the same way, zero points stored
  as is; scales [K / G, N] fp16. W = (q - z) * s.
- AutoGPTQ (auto_gptq/nn_modules/qlinear/qlinear_triton.py `QuantLinear.pack`,
  auto_gptq/nn_modules/triton_utils/kernels.py): qweight int32 [K / 8, N] packed along INPUT
  (our layout), qzeros int32 [K / G, N / 8] packed along output in natural order, and in the
  v1 format ("gptq") each zero point is stored minus one, so a stored nibble z decodes as
  (z + 1) & 15 (a zero point of 0 is stored as -1 = 15); scales [K / G, N]; g_idx [K] maps
  input -> group and must be the identity k // G here (act-order checkpoints are refused).

## int8 per-channel weight-only

q = round(W / s) clamped to [-127, 127], s = max_k |W[n, k]| / 127 per output row (fp32);
W ~= q * s, computed in fp32 and rounded once.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

# bitsandbytes' NF4 table (get_4bit_type("nf4")): N(0, 1) quantiles with an exact 0, scaled to [-1, 1]
NF4_CODE = (
    -1.0, -0.6961928009986877, -0.5250730514526367, -0.39491748809814453,
    -0.28444138169288635, -0.18477343022823334, -0.09105003625154495, 0.0,
    0.07958029955625534, 0.16093020141124725, 0.24611230194568634, 0.33791524171829224,
    0.44070982933044434, 0.5626170039176941, 0.7229568362236023, 1.0,
)  # fmt: skip
NF4_BLOCKSIZES = (32, 64, 128, 256, 512, 1024, 2048, 4096)  # what bitsandbytes accepts
NESTED_BLOCKSIZE = 256  # absmax codes per state2 scale, as bitsandbytes' quantize_4bit uses


def nf4_code(device: torch.device | str = "cpu") -> torch.Tensor:
    return torch.tensor(NF4_CODE, dtype=torch.float32, device=device)


def signed_dynamic_map() -> torch.Tensor:
    """The 256-entry signed dynamic map (Dettmers 2015) that bitsandbytes codes absmax with.

    Decade e = 0..6 covers magnitudes 10^(e-6) x (0.1, 1] with 2^e evenly spaced midpoints, each
    with both signs (254 values), plus 0 and 1; sorted. All in fp32, as bitsandbytes computes it."""
    values: list[float] = [0.0, 1.0]
    for e in range(7):
        edges = torch.linspace(0.1, 1, 2**e + 1, dtype=torch.float32)
        mids = (edges[:-1] + edges[1:]) / 2.0
        values += ((10.0 ** (e - 6)) * mids).tolist() + ((-(10.0 ** (e - 6))) * mids).tolist()
    return torch.tensor(sorted(values), dtype=torch.float32)


@dataclass(slots=True)
class NestedState:
    """bitsandbytes' QuantState.state2: how the uint8 absmax codes decode."""

    absmax: torch.Tensor  # fp32 [ceil(num_blocks / blocksize)]
    code: torch.Tensor  # fp32 [256], signed_dynamic_map()
    blocksize: int = NESTED_BLOCKSIZE
    dtype: torch.dtype = torch.float32

    @property
    def nested(self) -> bool:  # bitsandbytes asks every state this, the inner one too
        return False


@dataclass(slots=True)
class NF4State:
    """The fields of bitsandbytes' QuantState that NF4 dequantization reads (same names)."""

    absmax: torch.Tensor  # fp32 [num_blocks], or uint8 codes when nested
    shape: torch.Size
    dtype: torch.dtype
    blocksize: int
    code: torch.Tensor  # fp32 [16], NF4_CODE
    offset: torch.Tensor | None = None  # fp32 scalar, nested only
    state2: NestedState | None = None
    quant_type: str = "nf4"

    @property
    def nested(self) -> bool:
        return self.state2 is not None


def _nearest_code(x: torch.Tensor, code: torch.Tensor) -> torch.Tensor:
    """Index of the nearest entry of the sorted `code` (ties go to the lower entry)."""
    midpoints = (code[:-1] + code[1:]) / 2
    return torch.bucketize(x, midpoints, right=False)


def _blockwise_absmax(x: torch.Tensor, blocksize: int) -> torch.Tensor:
    n = x.numel()
    padded = torch.nn.functional.pad(x.abs(), (0, -n % blocksize))
    return padded.view(-1, blocksize).amax(dim=1)


def _per_element(block_values: torch.Tensor, blocksize: int, n: int) -> torch.Tensor:
    return block_values.repeat_interleave(blocksize)[:n]


def quantize_nf4_ref(
    w: torch.Tensor, blocksize: int = 64, nested: bool = True
) -> tuple[torch.Tensor, NF4State]:
    """w: any shape, float -> (packed uint8 [(n + 1) // 2, 1], NF4State), bitsandbytes' layout.

    Nearest NF4 code of w / absmax per block; with `nested`, the absmax is double-quantized."""
    if blocksize not in NF4_BLOCKSIZES:
        raise ValueError(f"blocksize must be one of {NF4_BLOCKSIZES}, not {blocksize}")
    x = w.detach().reshape(-1).float()
    n = x.numel()
    code = nf4_code(x.device)
    absmax = _blockwise_absmax(x, blocksize)
    safe = torch.where(absmax > 0, absmax, torch.ones_like(absmax))  # an all-zero block codes as 0.0
    scaled = (x / _per_element(safe, blocksize, n)).clamp(-1, 1)
    scaled = torch.nn.functional.pad(scaled, (0, n % 2))  # odd n: the spare low nibble codes 0.0
    q = _nearest_code(scaled, code).to(torch.uint8)
    packed = ((q[0::2] << 4) | q[1::2]).unsqueeze(1)  # value 2j -> high nibble, 2j+1 -> low
    state = NF4State(absmax=absmax, shape=w.shape, dtype=w.dtype, blocksize=blocksize, code=code)
    if nested:
        state.offset = absmax.mean()
        centered = absmax - state.offset
        scale2 = _blockwise_absmax(centered, NESTED_BLOCKSIZE)
        safe2 = torch.where(scale2 > 0, scale2, torch.ones_like(scale2))
        dyn = signed_dynamic_map().to(x.device)
        scaled2 = (centered / _per_element(safe2, NESTED_BLOCKSIZE, absmax.numel())).clamp(-1, 1)
        state.absmax = _nearest_code(scaled2, dyn).to(torch.uint8)
        state.state2 = NestedState(absmax=scale2, code=dyn)
    return packed, state


def unpack_nf4(packed: torch.Tensor, n: int) -> torch.Tensor:
    """uint8 bytes -> int64 [n] codes: byte j gives value 2j (high nibble) and 2j+1 (low)."""
    b = packed.reshape(-1).to(torch.int64)
    return torch.stack([b >> 4, b & 0xF], dim=1).reshape(-1)[:n]


def nf4_absmax_ref(quant_state) -> torch.Tensor:
    """The fp32 per-block absmax, double-dequantized first if the state is nested."""
    if not quant_state.nested:
        return quant_state.absmax.float()
    s2 = quant_state.state2
    num_blocks = quant_state.absmax.numel()
    scale2 = _per_element(s2.absmax.float(), s2.blocksize, num_blocks)
    absmax = s2.code.float()[quant_state.absmax.long()] * scale2  # rounded to fp32 here ...
    return absmax + quant_state.offset.float()  # ... and again here: two roundings, no FMA


def dequantize_nf4_ref(weight: torch.Tensor, quant_state) -> torch.Tensor:
    """packed uint8 + QuantState (ours or bitsandbytes') -> quant_state.shape in quant_state.dtype.

    Bit-exact with bitsandbytes.functional.dequantize_4bit (see the module docstring)."""
    shape = torch.Size(quant_state.shape)
    n = shape.numel()
    absmax = _per_element(nf4_absmax_ref(quant_state), quant_state.blocksize, n)
    values = quant_state.code.float()[unpack_nf4(weight, n)]
    return (values * absmax).to(quant_state.dtype).reshape(shape)  # fp32 product, one rounding


# ---------------------------------------------------------------- int4 group-wise
INT4_GROUP_SIZES = (32, 64, 128)
AWQ_ORDER = (0, 2, 4, 6, 1, 3, 5, 7)  # nibble i of an AWQ word holds column 8c + AWQ_ORDER[i]
_SHIFTS = tuple(range(0, 32, 4))


@dataclass(slots=True)
class Int4Weight:
    """Group-wise int4 weight of W: [N, K], in the internal layout (module docstring)."""

    qweight: torch.Tensor  # int32 [K // 8, N]
    scales: torch.Tensor  # fp16/bf16 [K // G, N]
    zeros: torch.Tensor | None  # uint8 [K // G, N], or None: symmetric, zero point 8
    group_size: int

    def __post_init__(self) -> None:
        k8, n = self.qweight.shape
        if self.qweight.dtype != torch.int32:
            raise TypeError(f"qweight must be int32, not {self.qweight.dtype}")
        if self.group_size not in INT4_GROUP_SIZES:
            raise ValueError(f"group_size must be one of {INT4_GROUP_SIZES}, not {self.group_size}")
        groups = k8 * 8 // self.group_size
        if tuple(self.scales.shape) != (groups, n):
            raise ValueError(f"scales has shape {tuple(self.scales.shape)}, expected {(groups, n)}")
        if self.scales.dtype not in (torch.float16, torch.bfloat16):
            raise TypeError(f"scales must be float16 or bfloat16, not {self.scales.dtype}")
        z = self.zeros
        if z is not None and (z.dtype != torch.uint8 or z.shape != self.scales.shape):
            raise ValueError(f"zeros must be uint8 {(groups, n)}, got {z.dtype} {tuple(z.shape)}")

    @property
    def shape(self) -> tuple[int, int]:
        """(N, K): out_features, in_features."""
        return self.qweight.shape[1], self.qweight.shape[0] * 8

    @property
    def symmetric(self) -> bool:
        return self.zeros is None


def pack_int4_along_k(q: torch.Tensor) -> torch.Tensor:
    """q: [K, N] values 0..15 -> int32 [K // 8, N], input 8i + j in bits 4j."""
    k, n = q.shape
    shifts = torch.tensor(_SHIFTS, device=q.device).view(1, 8, 1)
    words = (q.to(torch.int64).reshape(k // 8, 8, n) << shifts).sum(dim=1)  # 0 .. 2**32 - 1
    return torch.where(words >= 2**31, words - 2**32, words).to(torch.int32)  # same bits, signed


def unpack_int4_along_k(qweight: torch.Tensor) -> torch.Tensor:
    """int32 [K // 8, N] -> int32 [K, N] values 0..15 (inverse of pack_int4_along_k)."""
    k8, n = qweight.shape
    shifts = torch.tensor(_SHIFTS, dtype=torch.int32, device=qweight.device).view(1, 8, 1)
    return ((qweight.unsqueeze(1) >> shifts) & 0xF).reshape(k8 * 8, n)


def _unpack_along_n(words: torch.Tensor, order: tuple[int, ...]) -> torch.Tensor:
    """int32 [R, N // 8] -> int32 [R, N]; nibble i of word c holds column 8c + order[i]."""
    r, c = words.shape
    shifts = torch.tensor(_SHIFTS, dtype=torch.int32, device=words.device)
    nibbles = (words.unsqueeze(2) >> shifts) & 0xF  # [R, C, 8] in nibble order
    out = torch.empty_like(nibbles)
    out[:, :, list(order)] = nibbles
    return out.reshape(r, c * 8)


def quantize_int4(
    w: torch.Tensor, group_size: int = 128, symmetric: bool = False, scale_dtype: torch.dtype | None = None
) -> Int4Weight:
    """w: [N, K] -> Int4Weight. Asymmetric: min/max per group, zero point round(-min / s).
    Symmetric: s = 2 max|w| / 15 and zero point 8 (GPTQ's sym convention: codes -8..7 around 8)."""
    n, k = w.shape
    if group_size not in INT4_GROUP_SIZES:
        raise ValueError(f"group_size must be one of {INT4_GROUP_SIZES}, not {group_size}")
    if k % group_size:
        raise ValueError(f"in_features {k} is not a multiple of group_size {group_size}")
    scale_dtype = scale_dtype or (w.dtype if w.dtype in (torch.float16, torch.bfloat16) else torch.float16)
    g = w.detach().float().t().reshape(k // group_size, group_size, n)  # [groups, G, N]
    if symmetric:
        scales = (g.abs().amax(dim=1) * (2 / 15)).clamp(min=1e-8).to(scale_dtype)
        zeros = torch.full_like(scales, 8, dtype=torch.float32)
    else:
        lo, hi = g.amin(dim=1), g.amax(dim=1)
        scales = ((hi - lo) / 15).clamp(min=1e-8).to(scale_dtype)
        zeros = torch.round(-lo / scales.float()).clamp(0, 15)
    # quantize against the stored (rounded) scale, so dequantization sees the same one
    q = (torch.round(g / scales.float().unsqueeze(1)) + zeros.unsqueeze(1)).clamp(0, 15)
    return Int4Weight(
        qweight=pack_int4_along_k(q.reshape(k, n).to(torch.int32)),
        scales=scales,
        zeros=None if symmetric else zeros.to(torch.uint8),
        group_size=group_size,
    )


def dequantize_int4_ref(qw: Int4Weight, dtype: torch.dtype | None = None) -> torch.Tensor:
    """Int4Weight -> W [N, K] in `dtype` (default: the scales' dtype)."""
    g = qw.group_size
    q = unpack_int4_along_k(qw.qweight)  # [K, N]
    zeros = 8 if qw.zeros is None else qw.zeros.to(torch.int32).repeat_interleave(g, dim=0)
    scales = qw.scales.float().repeat_interleave(g, dim=0)
    w = (q - zeros).float() * scales  # small exact integer x fp32 scale: one rounding below
    return w.to(dtype or qw.scales.dtype).t().contiguous()


def int4_from_awq(
    qweight: torch.Tensor, qzeros: torch.Tensor, scales: torch.Tensor, group_size: int
) -> Int4Weight:
    """AutoAWQ GEMM tensors (qweight int32 [K, N/8], qzeros [K/G, N/8], scales [K/G, N]) -> Int4Weight."""
    q = _unpack_along_n(qweight, AWQ_ORDER)  # [K, N]
    zeros = _unpack_along_n(qzeros, AWQ_ORDER)  # [K/G, N]
    return Int4Weight(pack_int4_along_k(q), scales.contiguous(), zeros.to(torch.uint8), group_size)


def int4_from_gptq(
    qweight: torch.Tensor,
    qzeros: torch.Tensor,
    scales: torch.Tensor,
    group_size: int,
    g_idx: torch.Tensor | None = None,
    checkpoint_format: str = "gptq",
) -> Int4Weight:
    """AutoGPTQ tensors (qweight int32 [K/8, N], qzeros [K/G, N/8], scales [K/G, N]) -> Int4Weight.

    checkpoint_format "gptq" (v1) stores zero points minus one; "gptq_v2" stores them as is."""
    if checkpoint_format not in ("gptq", "gptq_v2"):
        raise ValueError(f"checkpoint_format must be 'gptq' or 'gptq_v2', not {checkpoint_format!r}")
    k = qweight.shape[0] * 8
    if g_idx is not None:
        identity = torch.arange(k, device=g_idx.device) // group_size
        if not torch.equal(g_idx.to(identity.dtype), identity):
            raise ValueError("g_idx is not k // group_size: act-order (desc_act) checkpoints are unsupported")
    zeros = _unpack_along_n(qzeros, tuple(range(8)))
    if checkpoint_format == "gptq":
        zeros = (zeros + 1) & 0xF  # v1 stored zero - 1; a zero point of 0 was stored as 15
    return Int4Weight(qweight.contiguous(), scales.contiguous(), zeros.to(torch.uint8), group_size)


# ---------------------------------------------------------------- int8 per-channel
def quantize_int8(w: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """w: [N, K] -> (int8 [N, K], fp32 scale [N]), symmetric per output channel."""
    x = w.detach().float()
    scale = (x.abs().amax(dim=1) / 127).clamp(min=1e-12)
    q = torch.round(x / scale.unsqueeze(1)).clamp(-127, 127).to(torch.int8)
    return q, scale


def dequantize_int8_ref(
    q: torch.Tensor, scale: torch.Tensor, dtype: torch.dtype = torch.float16
) -> torch.Tensor:
    """int8 [N, K], scale [N] -> [N, K] in dtype: fp32 product, one rounding."""
    return (q.float() * scale.float().unsqueeze(1)).to(dtype)
