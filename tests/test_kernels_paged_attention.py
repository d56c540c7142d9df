"""paged_attention: decode over a shuffled block table equals decode over the contiguous cache and
the dense SDPA reference; ragged lengths, GQA, both variants and the choice, write_kv, bad input."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from inferlab.bench.gate import gate
from inferlab.bench.providers import providers_for
from inferlab.kernels import paged_attention as paged_module
from inferlab.kernels.attention import dot_options
from inferlab.kernels.paged_attention import (
    PAGED_DECODE_SPEC as SPEC,
)
from inferlab.kernels.paged_attention import (
    choose_variant,
    paged_decode_attention,
    paged_decode_attention_ref,
    write_kv,
)
from inferlab.kernels.spec import check
from spec_cases import shape_cases

CASES = shape_cases(SPEC)
TOL = {"atol": 1e-5, "rtol": 1e-5}  # fp32


@pytest.fixture
def tiny_split(monkeypatch):
    """The split variant at tiny sizes: every batch is 'small', partitions of 16 tokens, tiles of 16."""
    monkeypatch.setattr(paged_module, "SPLIT_MIN_SEQ_LEN", 0)
    monkeypatch.setattr(paged_module, "DEFAULT_SM_COUNT", 10_000)
    monkeypatch.setattr(paged_module, "PARTITION_SIZE", 16)
    monkeypatch.setattr(paged_module, "DECODE_BLOCK_N", 16)


def _variant(batch, kv_heads, max_seq_len):
    return choose_variant(batch, kv_heads, max_seq_len, paged_module.DEFAULT_SM_COUNT)


@pytest.mark.parametrize(("shape", "dtype"), CASES)
def test_check(shape, dtype, device):
    result = check(SPEC, shape, dtype, device)
    upcast, _ = dot_options(dtype)
    if result.passed or dtype == torch.float32 or upcast:
        assert result.passed, result.message
        return
    # P rounded to fp16/bf16 for P @ V (see test_kernels_attention.test_check): only the
    # per-element tolerance may complain, and the error stays within twice torch SDPA's
    assert all("outside atol" in p or "reproduce" in p for p in result.problems), result.message
    inputs = SPEC.make_inputs(
        shape.dims, dtype, torch.device(device), torch.Generator().manual_seed(result.seed)
    )
    want = paged_decode_attention_ref(
        **{k: inputs[k] for k in ("q", "k_cache", "v_cache", "block_table", "seq_lens")}
    )
    ours = paged_decode_attention(
        *(inputs[k] for k in ("q", "k_cache", "v_cache", "block_table", "seq_lens"))
    )
    q = inputs["q"][:, :, None]
    group = q.shape[1] // inputs["k_dense"].shape[1]
    k, v = (inputs[n].repeat_interleave(group, dim=1) for n in ("k_dense", "v_dense"))
    torchs = F.scaled_dot_product_attention(q, k, v)[:, :, 0]
    assert (ours.float() - want).abs().max() <= 2 * (torchs.float() - want).abs().max() + 1e-6


def test_check_passes_in_the_split_variant(tiny_split, device):
    assert _variant(3, 2, 48) == "split"
    result = check(SPEC, (3, 4, 2, 37, 64, 16), torch.float32, device)
    assert result.passed, result.message


def test_check_rejects_a_launcher_that_ignores_the_block_table(device):
    def logical_order(q, k_cache, v_cache, block_table, seq_lens, k_dense, v_dense, out):
        identity = torch.arange(block_table.numel(), dtype=torch.int32, device=device).view_as(block_table)
        return paged_decode_attention(q, k_cache, v_cache, identity, seq_lens, out=out)

    result = check(SPEC, (3, 4, 2, 37, 64, 16), torch.float32, device, launcher=logical_order)
    assert not result.passed and "outside atol" in result.message


def _contiguous_and_shuffled(lengths, n_kv_heads, head_dim, block_size, dtype, device, gen):
    """One cache with each sequence's pages in order, and the same pages scattered at random."""
    pages = [-(-n // block_size) for n in lengths]
    max_blocks = max(max(pages), 1)
    num_blocks = sum(pages) + 2
    k = torch.randn(num_blocks, block_size, n_kv_heads, head_dim, generator=gen).to(device, dtype)
    v = torch.randn(num_blocks, block_size, n_kv_heads, head_dim, generator=gen).to(device, dtype)
    table = torch.zeros(len(lengths), max_blocks, dtype=torch.int32)  # unused entries: block 0
    start = 0
    for b, n in enumerate(pages):
        table[b, :n] = torch.arange(start, start + n)
        start += n
    # physical block p of the contiguous cache moves to where[p] in the shuffled one
    where = torch.randperm(num_blocks, generator=gen)
    k_shuffled, v_shuffled = torch.empty_like(k), torch.empty_like(v)
    k_shuffled[where.to(device)], v_shuffled[where.to(device)] = k, v
    table_shuffled = where[table.long()].to(torch.int32)
    return (k, v, table.to(device)), (k_shuffled, v_shuffled, table_shuffled.to(device))


def test_shuffled_block_table_equals_contiguous_cache_and_dense_reference(tiny_split, monkeypatch, device):
    gen = torch.Generator().manual_seed(2024)
    for case in range(20):
        batch = int(torch.randint(1, 5, (1,), generator=gen))
        n_kv_heads = int(torch.randint(1, 3, (1,), generator=gen))
        group = [1, 2, 3, 4][int(torch.randint(0, 4, (1,), generator=gen))]
        block_size = [1, 3, 4, 16][int(torch.randint(0, 4, (1,), generator=gen))]
        head_dim = [16, 32, 48][int(torch.randint(0, 3, (1,), generator=gen))]
        lengths = torch.randint(0, 70, (batch,), generator=gen).tolist()  # ragged, 0 included
        dtype = torch.float16 if case % 4 == 3 else torch.float32
        contiguous, shuffled = _contiguous_and_shuffled(
            lengths, n_kv_heads, head_dim, block_size, dtype, device, gen
        )
        q = torch.randn(batch, n_kv_heads * group, head_dim, generator=gen).to(device, dtype)
        seq_lens = torch.tensor(lengths, dtype=torch.int32, device=device)
        if case % 2:  # odd cases run one_pass, even ones split (tiny_split sends all there)
            monkeypatch.setattr(paged_module, "SPLIT_MIN_SEQ_LEN", 10_000)
        else:
            monkeypatch.setattr(paged_module, "SPLIT_MIN_SEQ_LEN", 0)
        out = paged_decode_attention(q, *contiguous[:2], contiguous[2], seq_lens)
        out_shuffled = paged_decode_attention(q, *shuffled[:2], shuffled[2], seq_lens)
        where = f"case {case}: lengths {lengths}, block_size {block_size}, group {group}, {dtype}"
        assert torch.equal(out, out_shuffled), where  # the same math in the same order: bit for bit
        want = paged_decode_attention_ref(q, *shuffled[:2], shuffled[2], seq_lens)
        tol = TOL if dtype == torch.float32 else {"atol": 2e-3, "rtol": 2e-3}
        torch.testing.assert_close(out.float(), want, **tol, msg=where)
        assert (out[seq_lens == 0] == 0).all(), where  # an empty sequence attends to nothing: 0


def test_variant_choice_follows_programs_and_length():
    sms = 132
    assert choose_variant(32, 8, 4096, sms) == "one_pass"  # 256 programs: two waves already
    assert choose_variant(8, 8, 8192, sms) == "split"  # 64 programs would leave half the SMs idle
    assert choose_variant(1, 8, 32768, sms) == "split"  # long-context decode at batch 1
    assert choose_variant(1, 8, paged_module.SPLIT_MIN_SEQ_LEN, sms) == "one_pass"  # too short to cut
    assert choose_variant(17, 8, 32768, sms) == "one_pass"  # 136 programs fill 132 SMs
    # pipeline depth under the shared-memory budget: 3 tiles of bf16 K and V at 128, fewer past it
    stages = [paged_module.decode_num_stages(d, size) for d, size in ((128, 2), (256, 2), (128, 4), (256, 4))]
    assert stages == [3, 2, 2, 1]
    bench = {s.dims: choose_variant(s.dims[0], s.dims[2], s.dims[3], sms) for s in SPEC.bench_shapes}
    assert list(bench.values()) == ["one_pass", "split", "split"]


class _Spy:
    """Records which kernel the launcher indexed, with its grid, then launches it."""

    def __init__(self, kernel, name, ran):
        self.kernel, self.name, self.ran = kernel, name, ran

    def __getitem__(self, grid):
        self.ran.append((self.name, grid))
        return self.kernel[grid]


def test_launcher_runs_the_variant_it_chose(monkeypatch, device):
    ran = []
    for name in ("_paged_decode_kernel", "_paged_decode_reduce_kernel"):
        monkeypatch.setattr(paged_module, name, _Spy(getattr(paged_module, name), name, ran))
    inputs = SPEC.make_inputs((2, 4, 2, 40, 32, 8), torch.float32, torch.device(device), torch.Generator())
    args = [inputs[k] for k in ("q", "k_cache", "v_cache", "block_table", "seq_lens")]
    want = paged_decode_attention_ref(*args)
    torch.testing.assert_close(paged_decode_attention(*args), want, **TOL)
    assert ran == [("_paged_decode_kernel", (4,))]  # one program per (sequence, kv head)
    ran.clear()
    monkeypatch.setattr(paged_module, "SPLIT_MIN_SEQ_LEN", 0)
    monkeypatch.setattr(paged_module, "PARTITION_SIZE", 16)
    torch.testing.assert_close(paged_decode_attention(*args), want, **TOL)
    # capacity 5 pages x 8 = 40 tokens -> 3 partitions of 16; then one program per (sequence, q head)
    assert ran == [("_paged_decode_kernel", (4, 3)), ("_paged_decode_reduce_kernel", (8,))]
    ran.clear()
    wide = args[:3] + [torch.cat([args[3], args[3]], dim=1), args[4]]  # capacity 80 tokens
    torch.testing.assert_close(paged_decode_attention(*wide), want, **TOL)
    torch.testing.assert_close(paged_decode_attention(*wide, max_seq_len=40), want, **TOL)
    # partitions from the host-side bound: the table's capacity (5), or max_seq_len's (3)
    assert [grid for _, grid in ran[::2]] == [(4, 5), (4, 3)]


def test_write_kv_with_padding_slots(device):
    gen = torch.Generator().manual_seed(5)
    blocks, block_size, n_kv_heads, head_dim = 4, 4, 2, 32
    k_cache = torch.randn(blocks, block_size, n_kv_heads, head_dim, generator=gen).to(device)
    v_cache = torch.randn(blocks, block_size, n_kv_heads, head_dim, generator=gen).to(device)
    k_new = torch.randn(5, n_kv_heads, head_dim, generator=gen).to(device)
    v_new = torch.randn(5, n_kv_heads, head_dim, generator=gen).to(device)
    for dtype in (torch.int32, torch.int64):
        slots = torch.tensor([13, -1, 0, 7, -1], dtype=dtype, device=device)  # -1: padding tokens
        k_want, v_want = k_cache.clone(), v_cache.clone()
        for t, slot in enumerate(slots.tolist()):
            if slot >= 0:
                k_want[slot // block_size, slot % block_size] = k_new[t]
                v_want[slot // block_size, slot % block_size] = v_new[t]
        k_got, v_got = k_cache.clone(), v_cache.clone()
        assert write_kv(k_got, v_got, k_new, v_new, slots) is None
        assert torch.equal(k_got, k_want) and torch.equal(v_got, v_want)


def test_prefill_writes_then_decode_reads_the_same_cache(device):
    # an engine step by step: write 11 tokens' K/V through a slot mapping, then decode over them
    gen = torch.Generator().manual_seed(9)
    block_size, n_kv_heads, head_dim, seq_len = 4, 2, 32, 11
    k_cache = torch.zeros(6, block_size, n_kv_heads, head_dim, device=device)
    v_cache = torch.zeros_like(k_cache)
    table = torch.tensor([[5, 1, 3]], dtype=torch.int32, device=device)  # logical 0, 1, 2 -> physical
    slots = torch.tensor(
        [int(table[0, t // block_size]) * block_size + t % block_size for t in range(seq_len)]
    )
    k, v = (torch.randn(seq_len, n_kv_heads, head_dim, generator=gen).to(device) for _ in range(2))
    write_kv(k_cache, v_cache, k, v, slots.to(device=device, dtype=torch.int32))
    q = torch.randn(1, 4, head_dim, generator=gen).to(device)
    out = paged_decode_attention(
        q, k_cache, v_cache, table, torch.tensor([seq_len], dtype=torch.int32, device=device)
    )
    dense = [t.transpose(0, 1)[None] for t in (k, v)]  # [1, kv_heads, seq, D]
    want = F.scaled_dot_product_attention(q[:, :, None], *(t.repeat_interleave(2, dim=1) for t in dense))
    torch.testing.assert_close(out, want[:, :, 0], **TOL)


def test_providers_pass_the_gate(device):
    sets = [
        SPEC.make_inputs(
            (2, 4, 2, 21, 32, 4), torch.float32, torch.device(device), torch.Generator().manual_seed(s)
        )
        for s in (1, 2)
    ]
    expected = [(SPEC.reference(**s),) for s in sets]
    for provider in providers_for(SPEC, only=["inferlab", "torch", "sdpa-dense"]):
        assert gate(provider, sets, expected) == [], provider.name


def _good(device):
    inputs = SPEC.make_inputs((2, 4, 2, 9, 32, 4), torch.float32, torch.device(device), torch.Generator())
    return [inputs[k] for k in ("q", "k_cache", "v_cache", "block_table", "seq_lens")]


@pytest.mark.parametrize(
    ("change", "error", "message"),
    [
        (lambda q, kc, vc, t, n: (q[:, :3], kc, vc, t, n), ValueError, "multiple of the cache's kv_heads"),
        (
            lambda q, kc, vc, t, n: (q[..., :16], kc, vc, t, n),
            ValueError,
            "q must be \\[batch, q_heads, 32\\]",
        ),
        (lambda q, kc, vc, t, n: (q, kc, vc[:, :2], t, n), ValueError, "k_cache and v_cache must both be"),
        (lambda q, kc, vc, t, n: (q.half(), kc, vc, t, n), TypeError, "pass one dtype"),
        (lambda q, kc, vc, t, n: (q, kc, vc, t.long(), n), TypeError, "block_table has dtype int64"),
        (
            lambda q, kc, vc, t, n: (q, kc, vc, t[:1], n),
            ValueError,
            "block_table must be \\[2, max_blocks\\]",
        ),
        (
            lambda q, kc, vc, t, n: (q, kc[..., :8], vc[..., :8], t, n),
            ValueError,
            "head_dim must be 16 to 256",
        ),
    ],
    ids=["heads", "q-dim", "cache-shapes", "dtype", "table-dtype", "table-batch", "head-dim"],
)
def test_bad_input_gets_one_clear_error(change, error, message, device):
    with pytest.raises(error, match=message):
        paged_decode_attention(*change(*_good(device)))


def test_write_kv_bad_input(device):
    _, k_cache, v_cache, _, _ = _good(device)
    k_new = torch.randn(3, 2, 32, device=device)
    slots = torch.zeros(3, dtype=torch.int32, device=device)
    with pytest.raises(ValueError, match="k_new and v_new must both be \\[tokens, 2, 32\\]"):
        write_kv(k_cache, v_cache, k_new[:, :1], k_new[:, :1], slots)
    with pytest.raises(ValueError, match="slot_mapping must be contiguous \\[3\\]"):
        write_kv(k_cache, v_cache, k_new, k_new, slots[:2])
    with pytest.raises(TypeError, match="slot_mapping has dtype float32"):
        write_kv(k_cache, v_cache, k_new, k_new, slots.float())
    with pytest.raises(TypeError, match="pass one dtype"):
        write_kv(k_cache, v_cache, k_new.half(), k_new.half(), slots)
