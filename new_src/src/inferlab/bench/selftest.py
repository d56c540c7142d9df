"""Known-bad providers of `add`: the harness must refuse to time each one.

Each has one classic benchmark-cheating bug (usually an accident, sometimes not):

- `stale-output`: remembers its first result and copies it out on every later call, so its
  timed loop does no arithmetic; right on the first call, wrong on any later input;
- `partial-write`: leaves the last 1/64 of the output (at least one element) unwritten;
- `side-stream`: computes on a side stream the caller never waits for, so events on the
  current stream time nothing (GPU only);
- `wrong-non-pow2`: right when the size is a power of two, silently wrong in the tail past
  the largest power of two otherwise.

`inferlab bench add --self-test` times them beside the real providers: each must come out
INCORRECT, except `wrong-non-pow2` at power-of-two sizes, where it is right (and may be timed).
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from inferlab.bench.providers import Provider, ProviderUnavailable

SELF_TEST_KERNEL = "add"
# a size past L2 that is not a power of two, and one that is
SELF_TEST_SHAPES = ((50_000_017,), (1 << 25,))


def stale_output() -> Provider:
    cache: dict[tuple[int, ...], torch.Tensor] = {}

    def fn(inputs, out):
        x, y = inputs["x"], inputs["y"]
        key = tuple(x.shape)
        if key not in cache:
            cache[key] = x + y
        return out.copy_(cache[key])

    return Provider("bad:stale-output", fn, writes_out=True)


def partial_write() -> Provider:
    def fn(inputs, out):
        n = out.numel()
        head = n - max(1, n // 64)
        torch.add(inputs["x"].view(-1)[:head], inputs["y"].view(-1)[:head], out=out.view(-1)[:head])
        return out

    return Provider("bad:partial-write", fn, writes_out=True)


def side_stream() -> Provider:
    if not torch.cuda.is_available():
        raise ProviderUnavailable("needs a CUDA device (a side stream is a GPU thing)")
    stream = torch.cuda.Stream()

    def fn(inputs, out):
        with torch.cuda.stream(stream):  # bug: no stream.wait_stream(current) before, nor after
            torch.cuda._sleep(10_000_000)  # ~5 ms of spinning makes the race lose every time
            torch.add(inputs["x"], inputs["y"], out=out)
        return out

    return Provider("bad:side-stream", fn, writes_out=True)


def wrong_non_pow2() -> Provider:
    def fn(inputs, out):
        x, y, flat = inputs["x"].view(-1), inputs["y"].view(-1), out.view(-1)
        n = flat.numel()
        p = 1 << (n.bit_length() - 1) if n else 0  # largest power of two <= n
        torch.add(x[:p], y[:p], out=flat[:p])
        flat[p:] = x[p:]  # bug: forgets y in the tail
        return out

    return Provider("bad:wrong-non-pow2", fn, writes_out=True)


BAD_PROVIDERS: dict[str, Callable[[], Provider]] = {
    "bad:stale-output": stale_output,
    "bad:partial-write": partial_write,
    "bad:side-stream": side_stream,
    "bad:wrong-non-pow2": wrong_non_pow2,
}


def must_reject(name: str, dims: tuple[int, ...]) -> bool:
    """Whether a correct harness rejects bad provider `name` at `dims`."""
    n = 1
    for d in dims:
        n *= d
    if name == "bad:wrong-non-pow2":
        return n & (n - 1) != 0
    return True
