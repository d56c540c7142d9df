"""The correctness gate and the provider registry: known-bad providers are never timed."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from inferlab.bench import providers as prov
from inferlab.bench.gate import as_tuple, check_output, check_outputs, gate
from inferlab.bench.selftest import BAD_PROVIDERS, must_reject
from inferlab.kernels import get_spec

ADD = get_spec("add")


def _sets(dims, device, n=2, dtype=torch.float32, spec=ADD):
    gen = torch.Generator().manual_seed(0)
    sets = [spec.make_inputs(dims, dtype, torch.device(device), gen) for _ in range(n)]
    return sets, [as_tuple(spec.reference(**s)) for s in sets]


@pytest.mark.parametrize("name", ["bad:stale-output", "bad:partial-write", "bad:wrong-non-pow2"])
def test_the_gate_rejects_each_cpu_detectable_bad_provider(name, device):
    dims = (1000,)  # not a power of two
    assert must_reject(name, dims)
    sets, expected = _sets(dims, device)
    provider = BAD_PROVIDERS[name]()
    provider.fn(sets[0], torch.empty_like(expected[0][0]))  # the first call, as the runner makes it
    problems = gate(provider, sets, expected)
    assert problems, f"{name} passed the gate"


def test_stale_output_is_caught_on_the_second_set_not_the_first(device):
    sets, expected = _sets((1000,), device)
    problems = gate(BAD_PROVIDERS["bad:stale-output"](), sets, expected)
    assert len(problems) == 1 and problems[0].startswith("input set 1")


def test_partial_write_is_reported_as_unwritten(device):
    sets, expected = _sets((1000,), device)
    (problem,) = gate(BAD_PROVIDERS["bad:partial-write"](), sets, expected)[:1]
    assert "never written" in problem


def test_wrong_non_pow2_is_right_at_a_power_of_two(device):
    sets, expected = _sets((1024,), device)
    assert not must_reject("bad:wrong-non-pow2", (1024,))
    assert gate(BAD_PROVIDERS["bad:wrong-non-pow2"](), sets, expected) == []


def test_side_stream_provider_is_gpu_only():
    if torch.cuda.is_available():
        pytest.skip("on a GPU the side-stream provider exists; the GPU self-test covers it")
    with pytest.raises(prov.ProviderUnavailable, match="CUDA"):
        BAD_PROVIDERS["bad:side-stream"]()


@pytest.mark.parametrize(
    ("name", "dims"),
    [
        ("add", (3, 1000)),
        ("swiglu", (3, 1000)),
        ("softmax", (3, 1000)),
        ("rmsnorm", (3, 1000)),
        ("rmsnorm_residual", (3, 1000)),  # two outputs: normalised and the new residual
        ("rope", (1, 3, 4, 2, 64)),  # two outputs: q and k
    ],
)
def test_our_launcher_and_eager_torch_pass_the_gate(name, dims, device):
    spec = get_spec(name)
    sets, expected = _sets(dims, device, spec=spec)
    by_name = {p.name: p for p in prov.providers_for(spec, only=["inferlab", "torch"])}
    for provider in by_name.values():
        assert gate(provider, sets, expected) == [], provider.name


def test_gate_reports_a_provider_that_raises(device):
    sets, expected = _sets((10,), device)

    def boom(inputs, out):
        raise RuntimeError("no kernel image")

    (problem,) = gate(prov.Provider("boom", boom), sets, expected)
    assert "raised RuntimeError: no kernel image" in problem


def test_a_missing_output_is_reported():
    want = (torch.ones(4), torch.ones(4))
    assert "returned 1 outputs" in check_outputs("o", torch.ones(4), want)
    assert "output 1" in check_outputs("o", (torch.ones(4), torch.zeros(4)), want)


def test_check_output_shape_and_dtype_mismatch():
    want = torch.ones(4)
    assert "reference is (4,)" in check_output("o", torch.ones(5), want)
    assert check_output("o", torch.ones(4, dtype=torch.float16), want) is not None
    assert check_output("o", torch.ones(4), want) is None


def test_registry_lists_ours_first_then_the_spec_baselines():
    names = [p.name for p in prov.providers_for(get_spec("swiglu"))]
    assert names[:4] == ["inferlab", "torch", "torch.compile", "liger"]


def test_a_missing_package_marks_the_provider_unavailable(monkeypatch):
    def needs_missing_package(spec):
        import inferlab_no_such_package  # noqa: F401

        raise AssertionError("unreachable")

    monkeypatch.setitem(prov.EXTRA, "add", {"ghost": needs_missing_package})
    spec = dataclasses.replace(ADD, baselines=("torch", "ghost"))
    by_name = {p.name: p for p in prov.providers_for(spec)}
    ghost = by_name["ghost"]
    assert isinstance(ghost, prov.Unavailable)
    assert ghost.reason.startswith("unavailable:") and "inferlab_no_such_package" in ghost.reason
    assert isinstance(by_name["torch"], prov.Provider)


def test_an_unregistered_baseline_is_unavailable_not_a_crash():
    spec = dataclasses.replace(ADD, baselines=("cutlass",))
    (p,) = [p for p in prov.providers_for(spec) if p.name == "cutlass"]
    assert isinstance(p, prov.Unavailable) and "no provider 'cutlass'" in p.reason


def test_liger_is_unavailable_with_a_reason_when_not_installed():
    try:
        import liger_kernel  # noqa: F401
    except ImportError:
        (liger,) = prov.providers_for(get_spec("swiglu"), only=["liger"])
        assert isinstance(liger, prov.Unavailable) and "liger_kernel" in liger.reason
    else:
        pytest.skip("liger-kernel is installed here")
