"""How a provider is timed on the GPU: CUDA graphs of many calls, CUDA events, a cold L2.

What to time (a provider and its input sets) comes from the runner; this module only times.

- Cold (the headline): the L2 must not hold the inputs. If a few input sets together exceed
  3x L2, the calls rotate through them (`rotate`); if a set is so small that would take more
  than MAX_ROTATING_SETS sets, each call is preceded by writing a buffer of 2x L2 (`flush`),
  and a graph of the flushes alone is timed right after and subtracted.
- Warm: the same calls on one input set, so what fits in L2 stays there.
- One sample = one replay of a graph of R calls, timed with CUDA events, divided by R: the
  graph removes the launch gaps that would otherwise dominate microsecond kernels.
- Eager: events around R back-to-back eager calls (no graph): launch overhead included,
  reported separately.
- If graph capture fails, events around each eager call are summed instead, and labelled.

Nothing here changes the card's clocks or settings.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch

from inferlab.bench.providers import Provider
from inferlab.kernels.spec import Inputs

MAX_ROTATING_SETS = 4096
MAX_CALLS_PER_REPLAY = 4096
TARGET_REPLAY_US = 2000.0  # a replay long enough that event resolution (~0.5 us) is noise


@dataclass(frozen=True, slots=True)
class ColdPlan:
    method: str  # "rotate" or "flush"
    num_sets: int  # input sets the calls cycle through (at least 2: a stale output shows)
    flush_bytes: int  # bytes written before every call, 0 when rotating

    def describe(self, set_bytes: int) -> str:
        if self.method == "rotate":
            return f"rotating {self.num_sets} input sets ({self.num_sets * set_bytes / 1e6:.0f} MB)"
        return f"L2 flushed before each call ({self.flush_bytes / 1e6:.0f} MB written, subtracted)"


def plan_cold(set_bytes: int, l2_bytes: int) -> ColdPlan:
    """Rotate input sets if enough of them to exceed 3x L2 are few; otherwise flush L2."""
    needed = max(2, math.ceil(3 * l2_bytes / max(set_bytes, 1)))
    if needed <= MAX_ROTATING_SETS:
        return ColdPlan("rotate", needed, 0)
    return ColdPlan("flush", 2, 2 * l2_bytes)


def calls_per_replay(est_call_us: float, num_sets: int) -> int:
    """Enough calls for a ~2 ms replay, a whole number of passes over the sets, capped."""
    calls = math.ceil(TARGET_REPLAY_US / max(est_call_us, 0.5))
    passes = max(1, math.ceil(calls / num_sets))
    passes = min(passes, max(1, MAX_CALLS_PER_REPLAY // num_sets))
    return passes * num_sets  # the last call always uses set num_sets - 1


# ---------------------------------------------------------------- CUDA pieces (GPU only)
def l2_bytes() -> int:
    return int(torch.cuda.get_device_properties(0).L2_cache_size)


def event_ms(fn: Callable[[], object]) -> float:
    """Milliseconds of device time between events recorded around `fn` on the current stream."""
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    start.record()
    fn()
    end.record()
    end.synchronize()
    return start.elapsed_time(end)


def capture(body: Callable[[], object]) -> torch.cuda.CUDAGraph:
    """Warm `body` up on a side stream (as torch's capture notes ask), then capture it."""
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):
        body()
    torch.cuda.current_stream().wait_stream(side)
    torch.cuda.synchronize()
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        body()
    torch.cuda.synchronize()
    return graph


class Flush:
    """Writes a buffer of `nbytes`: afterwards L2 holds none of anyone's inputs."""

    def __init__(self, nbytes: int):
        self.buffer = torch.empty(nbytes, dtype=torch.uint8, device="cuda")

    def __call__(self) -> None:
        self.buffer.zero_()


class ProviderTimer:
    """The graphs of one provider at one shape; each method call returns one sample in µs."""

    def __init__(
        self,
        provider: Provider,
        input_sets: Sequence[Inputs],
        outs: Sequence[torch.Tensor | tuple[torch.Tensor, ...]],  # the `out=` argument per set
        plan: ColdPlan,
        calls: int,
        flush: Flush | None,
    ):
        self.provider, self.input_sets, self.outs = provider, input_sets, outs
        self.plan, self.calls, self.flush = plan, calls, flush
        self.last_out = None  # output(s) of the last call of a cold replay
        self.last_set = (calls - 1) % plan.num_sets
        self.method = "cuda-graph"
        try:
            self.cold_graph = capture(self._cold_body)
            self.warm_graph = capture(self._warm_body)
            self.flush_graph = capture(self._flush_body) if plan.method == "flush" else None
        except RuntimeError as e:  # e.g. a provider that syncs or allocates on the host mid-call
            torch.cuda.synchronize()
            self.cold_graph = self.warm_graph = self.flush_graph = None
            self.method = f"eager-events (graph capture failed: {str(e).splitlines()[0][:80]})"

    def _call(self, i: int) -> torch.Tensor:
        return self.provider.fn(self.input_sets[i], self.outs[i])

    def _cold_body(self) -> None:
        for j in range(self.calls):
            if self.flush is not None:
                self.flush()
            self.last_out = self._call(j % self.plan.num_sets)

    def _warm_body(self) -> None:
        for _ in range(self.calls):
            self._call(0)

    def _flush_body(self) -> None:
        for _ in range(self.calls):
            self.flush()

    def cold_us(self) -> float:
        if self.cold_graph is None:
            return self._eager_events_us(cold=True)
        total = event_ms(self.cold_graph.replay)
        if self.flush_graph is not None:
            total -= event_ms(self.flush_graph.replay)
        return total * 1000 / self.calls

    def warm_us(self) -> float:
        if self.warm_graph is None:
            return self._eager_events_us(cold=False)
        return event_ms(self.warm_graph.replay) * 1000 / self.calls

    def eager_us(self) -> float:
        """Back-to-back eager calls on one set: device time including launch gaps."""
        return event_ms(self._warm_body) * 1000 / self.calls

    def _eager_events_us(self, cold: bool) -> float:
        # Fallback without a graph: events around each call only, so the flush stays outside.
        pairs = []
        for j in range(self.calls):
            i = j % self.plan.num_sets if cold else 0
            if cold and self.flush is not None:
                self.flush()
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            out = self._call(i)
            end.record()
            pairs.append((start, end))
            if cold:
                self.last_out = out
        pairs[-1][1].synchronize()
        return sum(s.elapsed_time(e) for s, e in pairs) * 1000 / self.calls
