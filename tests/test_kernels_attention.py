"""attention.flash_attention against torch SDPA: the error budget, masks, GQA, varlen, configs, bad input.

The low-precision bar (STYLE.md): the kernel's error against fp32 is at most twice the error of
torch SDPA run in the kernel's own dtype on the same inputs. Where the kernel rounds P to fp16 or
bf16 for the tensor-core P @ V product (fp16 everywhere, bf16 when compiled; the interpreter's
bf16 dots run in fp32), `check`'s per-element table is tighter than attention's rounding: see
`test_check`.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from inferlab.bench import baselines_attention, providers
from inferlab.bench.gate import gate
from inferlab.kernels import attention as attention_module
from inferlab.kernels.attention import (
    FLASH_ATTENTION_SPEC as SPEC,
)
from inferlab.kernels.attention import (
    FlashConfig,
    causal_mask,
    causal_pairs,
    config_for,
    dot_options,
    flash_attention,
    flash_attention_ref,
    flash_attention_varlen,
)
from inferlab.kernels.device import select_backend
from inferlab.kernels.spec import check
from spec_cases import shape_cases

CASES = shape_cases(SPEC)
LOW = [torch.float16, torch.bfloat16]


def rounds_p(dtype: torch.dtype) -> bool:
    """True where the kernel rounds P to `dtype` before P @ V, as FlashAttention and SDPA do."""
    upcast, _ = dot_options(dtype)
    return dtype != torch.float32 and not upcast


def qkv(dims, dtype, device, seed=0):
    batch, n_q_heads, n_kv_heads, seq_q, seq_k, head_dim = dims
    gen = torch.Generator().manual_seed(seed)
    return [
        torch.randn(shape, generator=gen).to(device=device, dtype=dtype)
        for shape in (
            (batch, n_q_heads, seq_q, head_dim),
            (batch, n_kv_heads, seq_k, head_dim),
            (batch, n_kv_heads, seq_k, head_dim),
        )
    ]


def sdpa_in_dtype(q, k, v, causal=True):
    """torch SDPA in q's own dtype, the budget's yardstick (same mask and GQA as the reference)."""
    group = q.shape[1] // k.shape[1]
    k, v = k.repeat_interleave(group, dim=1), v.repeat_interleave(group, dim=1)
    mask = causal_mask(q.shape[2], k.shape[2], q.device) if causal else None
    return F.scaled_dot_product_attention(q, k, v, attn_mask=mask)


def interpreter_cast_error(want: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """What the interpreter's fp32 -> bf16 store adds by itself: it truncates (drops the low 16
    bits) where a GPU rounds to nearest. 0 elsewhere."""
    if dtype != torch.bfloat16 or not select_backend().interpreted:
        return torch.zeros_like(want)
    truncated = (want.contiguous().view(torch.int32) & -65536).view(torch.float32)
    return (truncated - want).abs()


def assert_within_twice_sdpa(q, k, v, causal=True):
    want = flash_attention_ref(q, k, v, causal=causal)
    ours = (flash_attention(q, k, v, causal=causal).float() - want).abs()
    torchs = (sdpa_in_dtype(q, k, v, causal).float() - want).abs()
    slack = interpreter_cast_error(want, q.dtype)
    assert ours.max() <= 2 * torchs.max() + slack.max() + 1e-6, (float(ours.max()), float(torchs.max()))
    assert ours.mean() <= 2 * torchs.mean() + slack.mean() + 1e-7, (float(ours.mean()), float(torchs.mean()))


@pytest.mark.parametrize(("shape", "dtype"), CASES)
def test_check(shape, dtype, device):
    result = check(SPEC, shape, dtype, device)
    if result.passed or not rounds_p(dtype):
        assert result.passed, result.message
        return
    # P rounded to fp16/bf16 makes errors the size of P's terms, not of the output, so the few
    # outputs near 0 fail the per-element rtol (torch SDPA fails it too). Everything else
    # check guards must hold, and the error must be within twice torch's own on these inputs.
    tolerance_only = [p for p in result.problems if "outside atol" not in p and "reproduce" not in p]
    assert not tolerance_only, result.message
    inputs = SPEC.make_inputs(
        shape.dims, dtype, torch.device(device), torch.Generator().manual_seed(result.seed)
    )
    assert_within_twice_sdpa(inputs["q"], inputs["k"], inputs["v"])


@pytest.mark.parametrize("dtype", LOW, ids=lambda d: str(d)[6:])
@pytest.mark.parametrize(
    "dims",
    [(1, 2, 2, 37, 37, 64), (2, 4, 2, 16, 80, 64), (1, 2, 1, 130, 130, 128), (1, 2, 2, 40, 40, 96)],
    ids=["odd", "gqa-prefix", "multi-block", "head-dim-96"],
)
def test_error_within_twice_sdpa_in_the_same_dtype(dims, dtype, device):
    assert_within_twice_sdpa(*qkv(dims, dtype, device))


def test_check_rejects_a_missing_causal_mask(device):
    def no_mask(q, k, v, out):
        return flash_attention(q, k, v, causal=False, out=out)

    result = check(SPEC, (1, 2, 2, 37, 37, 64), torch.float32, device, launcher=no_mask)
    assert not result.passed and "outside atol" in result.message


@pytest.mark.parametrize("causal", [True, False], ids=["causal", "full"])
@pytest.mark.parametrize("dims", [(2, 4, 2, 16, 80, 64), (1, 2, 2, 33, 33, 32), (1, 2, 1, 1, 57, 64)])
def test_fp32_matches_reference_with_lse(dims, causal, device):
    q, k, v = qkv(dims, torch.float32, device)
    out, lse = flash_attention(q, k, v, causal=causal, scale=0.3, return_lse=True)
    want, want_lse = flash_attention_ref(q, k, v, causal=causal, scale=0.3, return_lse=True)
    torch.testing.assert_close(out, want, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(lse, want_lse, atol=1e-5, rtol=1e-5)
    assert lse.dtype == torch.float32 and lse.shape == q.shape[:3]


def test_more_queries_than_keys_see_nothing_at_first(device):
    # end-aligned: of 12 queries over 5 keys, the first 7 see no key: out 0, lse -inf
    q, k, v = qkv((1, 2, 2, 12, 5, 32), torch.float32, device)
    out, lse = flash_attention(q, k, v, return_lse=True)
    want, want_lse = flash_attention_ref(q, k, v, return_lse=True)
    assert (out[:, :, :7] == 0).all() and (lse[:, :, :7] == -float("inf")).all()
    torch.testing.assert_close(out, want, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(lse, want_lse, atol=1e-5, rtol=1e-5)


@pytest.fixture(params=[FlashConfig(16, 32, 4, 1), FlashConfig(32, 16, 4, 1)], ids=["m16-n32", "m32-n16"])
def small_blocks(request, monkeypatch):
    """Tiny tiles, BLOCK_M < BLOCK_N and the reverse: many unmasked and diagonal tiles at small sizes."""
    monkeypatch.setitem(attention_module.FLASH_CONFIGS, 64, request.param)
    return request.param


@pytest.mark.parametrize("dims", [(1, 2, 1, 70, 70, 64), (1, 2, 2, 23, 90, 64), (1, 1, 1, 90, 40, 64)])
def test_unmasked_and_diagonal_tiles_with_small_blocks(small_blocks, dims, device):
    q, k, v = qkv(dims, torch.float32, device)
    out, lse = flash_attention(q, k, v, return_lse=True)
    want, want_lse = flash_attention_ref(q, k, v, return_lse=True)
    torch.testing.assert_close(out, want, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(lse, want_lse, atol=1e-5, rtol=1e-5)


@pytest.mark.filterwarnings("ignore:All-NaN slice:RuntimeWarning")  # the later blocks' rows
def test_tiles_no_query_of_the_block_sees_are_never_loaded(small_blocks, device):
    # the first query block (rows < BLOCK_M) sees keys < BLOCK_M only: NaN in every key tile past
    # that stays out of its rows, because a loaded tile, even masked, adds 0 * NaN = NaN
    q, k, v = qkv((1, 1, 1, 64, 64, 64), torch.float32, device)
    rows = small_blocks.block_m
    unseen = -(-rows // small_blocks.block_n) * small_blocks.block_n  # the first tile past them
    want = flash_attention_ref(q, k, v)[:, :, :rows]
    k[:, :, unseen:], v[:, :, unseen:] = float("nan"), float("nan")
    torch.testing.assert_close(flash_attention(q, k, v)[:, :, :rows], want, atol=1e-5, rtol=1e-5)


def test_head_dim_256_and_the_config_table(device):
    assert config_for(128) == FlashConfig(128, 64, 8, 3)  # Llama's heads: the benchmark's config
    assert config_for(64) == FlashConfig(128, 128, 8, 3)
    assert config_for(80) is config_for(96) is config_for(128)  # padded to 128 lanes
    assert config_for(256).block_m == 64  # acc of 64 x 256 fp32 still fits the registers
    assert config_for(128, torch.float32) == FlashConfig(64, 32, 4, 1)  # fp32 tiles: 2x the bytes
    q, k, v = qkv((1, 1, 1, 9, 9, 256), torch.float32, device)
    torch.testing.assert_close(flash_attention(q, k, v), flash_attention_ref(q, k, v), atol=1e-5, rtol=1e-5)


def test_gqa_heads_map_to_kv_head_h_over_group(device):
    # kv head j holds values j + 1 only: each output row is a constant that names its kv head
    q, k, _ = qkv((1, 6, 3, 4, 4, 32), torch.float32, device)
    v = torch.arange(1.0, 4.0, device=device).view(1, 3, 1, 1).expand(1, 3, 4, 32).contiguous()
    out = flash_attention(q, k, v)
    assert out[0, :, :, 0].round().tolist() == [
        [1.0] * 4,
        [1.0] * 4,
        [2.0] * 4,
        [2.0] * 4,
        [3.0] * 4,
        [3.0] * 4,
    ]


def test_sequence_major_views_need_no_copy(device):
    # [batch, seq, heads, D] as a projection writes it, viewed as [batch, heads, seq, D]
    q, k, v = (torch.randn(2, 9, heads, 32, device=device).transpose(1, 2) for heads in (4, 2, 2))
    assert not q.is_contiguous()
    torch.testing.assert_close(flash_attention(q, k, v), flash_attention_ref(q, k, v), atol=1e-5, rtol=1e-5)


def test_empty_queries_or_keys_and_out(device):
    q, k, v = qkv((1, 2, 2, 0, 5, 32), torch.float32, device)
    assert flash_attention(q, k, v).shape == (1, 2, 0, 32)
    q, k, v = qkv((1, 2, 2, 3, 0, 32), torch.float32, device)
    assert (flash_attention(q, k, v, causal=False) == 0).all()  # no key at all: 0
    q, k, v = qkv((1, 2, 2, 3, 3, 32), torch.float32, device)
    out = torch.empty_like(q)
    assert flash_attention(q, k, v, out=out) is out


def _pack(lengths, heads, head_dim, device, gen):
    total = sum(lengths)
    x = torch.randn(total, heads, head_dim, generator=gen).to(device)
    cu = torch.tensor([0, *torch.tensor(lengths).cumsum(0).tolist()], dtype=torch.int32, device=device)
    return x, cu


def test_varlen_equals_each_sequence_alone(device):
    gen = torch.Generator().manual_seed(3)
    q_lens, k_lens = [5, 1, 0, 17, 9], [5, 30, 4, 17, 40]  # chunked prefill: queries end-aligned
    q, cu_q = _pack(q_lens, 4, 64, device, gen)
    k, cu_k = _pack(k_lens, 2, 64, device, gen)
    v, _ = _pack(k_lens, 2, 64, device, gen)
    out, lse = flash_attention_varlen(q, k, v, cu_q, cu_k, max(q_lens), max(k_lens), return_lse=True)
    assert out.shape == q.shape and lse.shape == (4, sum(q_lens))
    for b in range(len(q_lens)):
        qs, ks = slice(cu_q[b], cu_q[b + 1]), slice(cu_k[b], cu_k[b + 1])
        # [tokens, heads, D] -> [1, heads, tokens, D]
        dense = [t[s].transpose(0, 1)[None] for t, s in ((q, qs), (k, ks), (v, ks))]
        want, want_lse = flash_attention(*dense, return_lse=True)
        torch.testing.assert_close(out[qs].transpose(0, 1)[None], want, atol=0, rtol=0)
        torch.testing.assert_close(lse[:, qs][None], want_lse, atol=0, rtol=0)
        torch.testing.assert_close(want, flash_attention_ref(*dense), atol=1e-5, rtol=1e-5)


def test_flops_and_bytes_napkin_math():
    assert causal_pairs(4, 4) == 10 and causal_pairs(2, 5) == 4 + 5 and causal_pairs(5, 2) == 3
    dims = (4, 32, 8, 4096, 4096, 128)
    assert SPEC.flops(dims) == 4 * 4 * 32 * (4096 * 4097 // 2) * 128  # half of 4*B*H*S*S*D, plus the diagonal
    assert SPEC.bytes_moved(dims, torch.bfloat16) == (2 * 4 * 32 + 2 * 4 * 8) * 4096 * 128 * 2


def _good(device):
    return qkv((1, 4, 2, 5, 5, 32), torch.float32, device)


@pytest.mark.parametrize(
    ("change", "error", "message"),
    [
        (lambda q, k, v: (q[0], k, v), ValueError, "must be \\[batch, heads, seq, head_dim\\]"),
        (lambda q, k, v: (q[:, :3], k, v), ValueError, "must be a multiple of kv_heads"),
        (lambda q, k, v: (q, k, v[:, :, :4]), ValueError, "must be \\[1, kv_heads, seq_k, 32\\]"),
        (lambda q, k, v: (q, k, v.half()), TypeError, "pass one dtype"),
        (lambda q, k, v: (q.int(), k.int(), v.int()), TypeError, "int32"),
        (lambda q, k, v: (q[..., :8], k[..., :8], v[..., :8]), ValueError, "head_dim must be 16 to 256"),
        (lambda q, k, v: (q.repeat(1, 1, 1, 2)[..., ::2], k, v), ValueError, "q's last dimension"),
    ],
    ids=["3d", "heads", "v-seq", "dtype", "int", "head-dim", "last-dim"],
)
def test_bad_input_gets_one_clear_error(change, error, message, device):
    with pytest.raises(error, match=message):
        flash_attention(*change(*_good(device)))


def test_varlen_bad_input(device):
    q, k, v = (t[0].transpose(0, 1).contiguous() for t in _good(device))  # [tokens, heads, D]
    cu = torch.tensor([0, 5], dtype=torch.int32, device=device)
    with pytest.raises(TypeError, match="cu_seqlens_q has dtype int64"):
        flash_attention_varlen(q, k, v, cu.long(), cu, 5, 5)
    with pytest.raises(ValueError, match="must both be \\[batch \\+ 1\\]"):
        flash_attention_varlen(q, k, v, cu, cu[:1], 5, 5)
    with pytest.raises(ValueError, match="\\[total_tokens, heads, head_dim\\]"):
        flash_attention_varlen(q[None], k, v, cu, cu, 5, 5)


def test_baselines_pass_the_gate_or_say_why_not(monkeypatch, device):
    gens = [torch.Generator().manual_seed(s) for s in (1, 2)]
    sets = [SPEC.make_inputs((1, 4, 2, 37, 37, 32), torch.float32, torch.device(device), g) for g in gens]
    expected = [(SPEC.reference(**s),) for s in sets]
    names = ["inferlab", "torch", "sdpa-math", "sdpa-cudnn"]
    by_name = {p.name: p for p in providers.providers_for(SPEC, only=names)}
    for name in names[:3]:
        assert gate(by_name[name], sets, expected) == [], name
    (problem,) = gate(by_name["sdpa-cudnn"], sets, expected)  # cuDNN has no fp32 attention (nor a CPU one)
    assert "ProviderUnavailable: SDPBackend.CUDNN_ATTENTION refused these inputs" in problem
    monkeypatch.setattr(baselines_attention, "MATH_MAX_SCORES", 1000)
    (problem,) = gate(by_name["sdpa-math"], sets, expected)
    assert "would materialize 5.5e+03 attention scores" in problem


# Compiles (never launches) the benchmark's configs for an H100/H200 (sm_90) in a fresh process,
# where Triton is not in interpreter mode: a kernel that only the interpreter accepts fails here,
# with no GPU needed. Pointers and strides are marked 16-divisible, as a launch on contiguous
# head_dim-128 tensors specializes them. Prints shared memory, spilled bytes and whether wgmma.
COMPILE_FOR_HOPPER = r"""
import os, re, subprocess, tempfile
os.environ.pop("TRITON_INTERPRET", None)
import torch
torch.cuda.is_available = lambda: True  # select_backend: compiled kernels; nothing is launched
import triton
from triton.backends.compiler import GPUTarget
from triton.compiler import ASTSource
from inferlab.kernels import attention as A, paged_attention as P
PTXAS = os.path.join(os.path.dirname(triton.__file__), "backends", "nvidia", "bin", "ptxas")

def compile_one(fn, types, constexprs, num_warps, num_stages):
    sig = {p.name: "constexpr" if p.name in constexprs else types.get(p.name, "i32") for p in fn.params}
    aligned = [i for i, p in enumerate(fn.params) if sig[p.name][0] == "*" or p.name.startswith("stride")]
    src = ASTSource(fn, sig, constexprs=constexprs, attrs={(i,): [["tt.divisibility", 16]] for i in aligned})
    options = {"num_warps": num_warps, "num_stages": num_stages}
    kernel = triton.compile(src, target=GPUTarget("cuda", 90, 32), options=options)
    with tempfile.NamedTemporaryFile("w", suffix=".ptx", delete=False) as f:
        f.write(kernel.asm["ptx"])
    cmd = [PTXAS, "-v", "--gpu-name=sm_90a", f.name, "-o", os.devnull]
    report = subprocess.run(cmd, capture_output=True, text=True).stderr
    spills = sum(int(n) for n in re.findall(r"(\d+) bytes spill stores", report))
    print(fn.__name__, kernel.metadata.shared, spills, "wgmma" in kernel.asm["ptx"])

types = {"lse_ptr": "*fp32", "cu_seqlens_q_ptr": "*i32", "cu_seqlens_k_ptr": "*i32", "qk_scale": "fp32"}
types |= {name: "*bf16" for name in ("q_ptr", "k_ptr", "v_ptr", "out_ptr", "k_cache_ptr", "v_cache_ptr")}
types |= {"block_table_ptr": "*i32", "seq_lens_ptr": "*i32"}
cfg = A.config_for(128)
flash = dict(HEAD_DIM=128, BLOCK_M=cfg.block_m, BLOCK_N=cfg.block_n, BLOCK_D=128, CAUSAL=True,
             VARLEN=False, STORE_LSE=True, UPCAST=False, INPUT_PRECISION="tf32")
compile_one(A._flash_attention_kernel, types, flash, cfg.num_warps, cfg.num_stages)
split = dict(HEAD_DIM=128, KV_BLOCK_SIZE=16, BLOCK_G=16, BLOCK_N=P.DECODE_BLOCK_N, BLOCK_D=128,
             PARTITION_SIZE=P.PARTITION_SIZE, UPCAST=False, INPUT_PRECISION="tf32")
types["out_ptr"] = "*fp32"  # the split variant writes fp32 partials
compile_one(P._paged_decode_kernel, types, split, P.DECODE_NUM_WARPS, P.decode_num_stages(128, 2))
"""


def test_benchmark_configs_compile_for_hopper_without_spills():
    import subprocess
    import sys

    pytest.importorskip("triton.backends.nvidia", reason="Triton's NVIDIA backend is not installed")
    run = subprocess.run(
        [sys.executable, "-c", COMPILE_FOR_HOPPER], capture_output=True, text=True, timeout=300
    )
    assert run.returncode == 0, run.stderr[-3000:]
    rows = [line.split() for line in run.stdout.splitlines()]
    assert [r[0] for r in rows] == ["_flash_attention_kernel", "_paged_decode_kernel"], run.stdout
    for name, shared_bytes, spills, _ in rows:
        assert int(shared_bytes) <= 228 * 1024 and int(spills) == 0, (name, shared_bytes, spills)
    assert rows[0][3] == "True"  # Hopper's warpgroup MMA: the tensor-core path of the H100/H200
