"""nf4.dequantize_nf4: bit-exact with bitsandbytes, check() passes and rejects wrong kernels,
torch.compile and custom-op registration, launch choices and input errors."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from inferlab.kernels import nf4
from inferlab.kernels.nf4 import SPEC, blocks_per_program, dequantize_nf4, num_programs, state_from_inputs
from inferlab.kernels.quant_formats import dequantize_nf4_ref, quantize_nf4_ref
from inferlab.kernels.spec import check
from nf4_cases import nf4_cases
from spec_cases import shape_cases

DTYPES = (torch.float32, torch.float16, torch.bfloat16)


def _gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


@pytest.fixture(scope="module")
def bnb():
    return pytest.importorskip("bitsandbytes.functional", reason="bitsandbytes is not installed")


# ---------------------------------------------------------------- the contract
CASES = shape_cases(SPEC)


@pytest.mark.parametrize(("shape", "dtype"), CASES)
def test_matches_reference(shape, dtype, device):
    result = check(SPEC, shape, dtype, device)
    assert result.passed, result.message
    assert result.max_abs_err == 0.0  # the reference is bit-exact, so the kernel must be too


def _swapped_nibbles(out_shape, out_dtype, weight, out=None, **inputs):
    """A kernel that reads the low nibble first: the classic packing bug."""
    swapped = (weight << 4) | (weight >> 4)
    return SPEC.launcher(out_shape=out_shape, out_dtype=out_dtype, weight=swapped, out=out, **inputs)


def _offset_dropped(out_shape, out_dtype, offset, out=None, **inputs):
    """A kernel that forgets to add the nested absmax's offset back."""
    zero = torch.zeros_like(offset)
    return SPEC.launcher(out_shape=out_shape, out_dtype=out_dtype, offset=zero, out=out, **inputs)


@pytest.mark.parametrize("wrong", [_swapped_nibbles, _offset_dropped], ids=["swapped-nibbles", "no-offset"])
def test_checker_rejects_wrong_kernels(wrong, device):
    result = check(SPEC, (100, 70), torch.float16, device, launcher=wrong)
    assert not result.passed, f"check let a wrong kernel through: {result.message}"
    assert "outside atol" in result.message


# ---------------------------------------------------------------- bit-exact with bitsandbytes
# (dims, blocksize): odd element counts, one value, 3 state2 scales, and the other block sizes
BNB_SIZES = [((100, 70), 64), ((3, 1001), 64), ((1, 1), 64), ((9, 4096), 64), ((129, 33), 32),
             ((100, 70), 128), ((70, 100), 4096)]  # fmt: skip


BNB_CASES = nf4_cases(BNB_SIZES)


@pytest.mark.parametrize(("dims", "dtype", "nested", "blocksize"), BNB_CASES)
def test_bit_exact_with_bitsandbytes(bnb, dims, dtype, nested, blocksize, device):
    """A real bitsandbytes QuantState goes in as is; every output bit matches dequantize_4bit."""
    w = (torch.randn(dims, generator=_gen()) * 3).to(device=device, dtype=dtype)
    packed, state = bnb.quantize_4bit(w, quant_type="nf4", compress_statistics=nested, blocksize=blocksize)
    want = bnb.dequantize_4bit(packed, state)
    got = dequantize_nf4(packed, state)
    assert got.shape == want.shape and got.dtype == want.dtype
    assert torch.equal(got, want)


def test_our_state_decodes_through_bitsandbytes_too(bnb, device):
    packed, state = quantize_nf4_ref(torch.randn(100, 70, generator=_gen(1)).to(device), nested=True)
    assert torch.equal(dequantize_nf4(packed, state), bnb.dequantize_4bit(packed, state))


# ---------------------------------------------------------------- launcher
@pytest.mark.parametrize(("blocksize", "expected"), [(64, 32), (32, 64), (4096, 1)])
def test_launch_choice_is_whole_blocks(blocksize, expected):
    assert nf4.BLOCK_ELEMENTS == 2048 and nf4.NUM_WARPS == 2
    assert blocks_per_program(blocksize) == expected


@pytest.mark.parametrize(
    ("n", "blocksize", "expected"),
    [
        (14336 * 4096, 64, 14336 * 4096 // 2048),  # whole tiles only: no masked program
        (3 * 2048 + 2 * 64 + 5, 64, 3 + 3),  # 3 full programs, then 3 blocks left (the last partial)
        (1, 64, 1),  # one masked program, one value
        (4096 * 2 + 1, 4096, 3),  # a block bigger than BLOCK_ELEMENTS: one block per program
    ],
)
def test_grid_is_full_tiles_then_one_program_per_leftover_block(n, blocksize, expected):
    assert num_programs(n, blocksize) == expected


def test_bf16_rounding_choice():
    assert nf4._bf16_by_int(torch.device("cpu"))  # the interpreter truncates fp32 -> bf16
    if torch.cuda.is_available():
        native = torch.cuda.get_device_capability() >= (8, 0)
        assert nf4._bf16_by_int(torch.device("cuda")) is not native


def test_pair_packing_choice():
    assert not nf4._pack_asm(torch.device("cpu"))  # the interpreter cannot run inline asm
    if torch.cuda.is_available():
        native = torch.cuda.get_device_capability() >= (8, 0) and torch.version.hip is None
        assert nf4._pack_asm(torch.device("cuda")) is native
    buf = torch.empty(8, dtype=torch.float16)
    assert nf4._pack_pairs(buf) and nf4._pack_pairs(buf[2:])
    assert not nf4._pack_pairs(buf[1:])  # 2 bytes past an aligned start: no 32-bit stores
    assert not nf4._pack_pairs(torch.empty(8))  # fp32 keeps the join


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_out_at_an_odd_element_offset_is_bit_exact(dtype, device):
    """out= a view one element into a buffer: not 4-byte aligned, so full programs take the join."""
    w = torch.randn(3, 4096, generator=_gen(7)).to(device)  # 6 full programs
    packed, state = quantize_nf4_ref(w, nested=True)
    state = dataclasses.replace(state, dtype=dtype)
    out = torch.empty(3 * 4096 + 1, dtype=dtype, device=device)[1:].view(3, 4096)
    assert not nf4._pack_pairs(out)
    assert dequantize_nf4(packed, state, out=out) is out
    assert torch.equal(out, dequantize_nf4_ref(packed, state))


def test_returns_the_out_tensor_it_was_given(device):
    packed, state = quantize_nf4_ref(torch.randn(8, 64, generator=_gen(2)).to(device), nested=False)
    out = torch.empty(8, 64, device=device)
    assert dequantize_nf4(packed, state, out=out) is out
    assert torch.equal(out, dequantize_nf4_ref(packed, state))


def test_empty_weight(device):
    packed, state = quantize_nf4_ref(torch.empty(0, 4, device=device), nested=False)
    assert dequantize_nf4(packed, state).shape == (0, 4)


def test_torch_compile_fullgraph_gives_the_same_bits(device):
    packed, state = quantize_nf4_ref(torch.randn(100, 70, generator=_gen(3)).to(device), nested=True)
    state.dtype = torch.bfloat16

    def f(packed, state):
        return dequantize_nf4(packed, state).float() * 2

    compiled = torch.compile(f, fullgraph=True)
    assert torch.equal(compiled(packed, state), f(packed, state))
    out = torch.empty(100, 70, dtype=torch.bfloat16, device=device)
    compiled_out = torch.compile(lambda p, s, o: dequantize_nf4(p, s, out=o), fullgraph=True)
    compiled_out(packed, state, out)
    assert torch.equal(out, dequantize_nf4_ref(packed, state))


def test_custom_ops_pass_opcheck(device):
    packed, state = quantize_nf4_ref(torch.randn(10, 70, generator=_gen(4)).to(device), nested=True)
    s2, absmax, code, offset = state.state2, state.absmax, state.code, state.offset
    args = (packed, absmax, code, 64, [10, 70], torch.float16, s2.absmax, s2.code, offset, 256)
    torch.library.opcheck(nf4._dequantize_nf4_op, args)
    out = torch.empty(10, 70, device=device)
    torch.library.opcheck(
        nf4._dequantize_nf4_out_op,
        (packed, state.absmax, state.code, 64, s2.absmax, s2.code, state.offset, 256, out),
    )


@pytest.mark.gpu
def test_no_host_sync_captures_in_a_cuda_graph():
    if not torch.cuda.is_available():
        pytest.skip("needs a CUDA GPU")
    packed, state = quantize_nf4_ref(torch.randn(256, 256, device="cuda"), nested=True)
    out = torch.empty(256, 256, device="cuda")
    dequantize_nf4(packed, state, out=out)  # compile outside the capture
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        dequantize_nf4(packed, state, out=out)
    out.zero_()
    graph.replay()
    torch.cuda.synchronize()
    assert torch.equal(out, dequantize_nf4_ref(packed, state))


def test_spec_inputs_describe_a_bitsandbytes_state(device):
    inputs = SPEC.make_inputs((3, 1001), torch.float16, torch.device(device), _gen(5))
    state = state_from_inputs(inputs, (3, 1001), torch.float16)
    assert state.nested and state.blocksize == 64 and state.state2.blocksize == 256
    assert inputs["weight"].shape == (1502, 1) and inputs["absmax"].dtype == torch.uint8
    assert SPEC.bytes_moved((14336, 4096), torch.float16) == 29360128 + 917504 + 14336 + 4 + 117440512


# ---------------------------------------------------------------- input errors
def _state(device, nested=True):
    return quantize_nf4_ref(torch.randn(4, 64, generator=_gen(6)).to(device), nested=nested)


def test_weight_must_be_packed_uint8(device):
    packed, state = _state(device)
    with pytest.raises(TypeError, match="weight has dtype int8; it must be uint8"):
        dequantize_nf4(packed.view(torch.int8), state)
    with pytest.raises(ValueError, match="weight has 64 elements, expected 128"):
        dequantize_nf4(packed[:64], state)
    with pytest.raises(TypeError, match="weight must be a torch.Tensor"):
        dequantize_nf4(packed.tolist(), state)


def test_quant_state_fields_are_checked(device):
    packed, state = _state(device)

    class Partial:
        absmax, shape, dtype, blocksize = state.absmax, state.shape, state.dtype, state.blocksize

    with pytest.raises(TypeError, match="quant_state has no field 'code'"):
        dequantize_nf4(packed, Partial())
    with pytest.raises(ValueError, match="blocksize is 48; supported"):
        dequantize_nf4(packed, dataclasses.replace(state, blocksize=48))
    with pytest.raises(ValueError, match="quant_type is 'fp4'"):
        dequantize_nf4(packed, dataclasses.replace(state, quant_type="fp4"))
    with pytest.raises(TypeError, match="quant_state.dtype is torch.float64"):
        dequantize_nf4(packed, dataclasses.replace(state, dtype=torch.float64))
    with pytest.raises(TypeError, match="quant_state.absmax has dtype float32; it must be torch.uint8"):
        dequantize_nf4(packed, dataclasses.replace(state, absmax=state.absmax.float()))
    with pytest.raises(ValueError, match="quant_state.state2.code has 16 elements, expected 256"):
        bad2 = dataclasses.replace(state.state2, code=state.code)
        dequantize_nf4(packed, dataclasses.replace(state, state2=bad2))
    plain_packed, plain = _state(device, nested=False)
    with pytest.raises(TypeError, match="quant_state.absmax has dtype uint8; it must be torch.float32"):
        dequantize_nf4(plain_packed, dataclasses.replace(plain, absmax=state.absmax))


def test_wrong_device_and_bad_out(device):
    packed, state = _state(device)
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="kernels run on cpu here"):
            dequantize_nf4(packed.to("meta"), state)
    with pytest.raises(ValueError, match="out has shape \\(4, 65\\), expected \\(4, 64\\)"):
        dequantize_nf4(packed, state, out=torch.empty(4, 65, device=device))
    with pytest.raises(TypeError, match="out must be torch.float32"):
        dequantize_nf4(packed, state, out=torch.empty(4, 64, device=device, dtype=torch.float16))


@pytest.mark.parametrize("nested", [False, True], ids=["plain", "nested"])
@pytest.mark.parametrize(("n", "k", "blocksize"), [(70, 64 * 67, 64), (130, 256, 32)])
def test_absmax_by_step_is_the_references_absmax_transposed(n, k, blocksize, nested, device):
    """The warp-specialized matmul's absmax, [K / blocksize, N] in one launch: the reference's
    values bit for bit (nested: two roundings), in K-step-major order, every entry written."""
    from inferlab.kernels.nf4_absmax import absmax_by_step
    from inferlab.kernels.quant_formats import nf4_absmax_ref

    w = torch.randn(n, k, generator=torch.Generator().manual_seed(n + k)).to(device)
    packed, state = quantize_nf4_ref(w, blocksize, nested=nested)
    _, _, _, absmax2, code2, offset, blocksize2 = nf4._validated_args(packed, state)
    got = absmax_by_step(state.absmax, absmax2, code2, offset, blocksize2, n, k // blocksize)
    want = nf4_absmax_ref(state).view(n, k // blocksize).t()
    assert torch.equal(got, want)
