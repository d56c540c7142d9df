"""What the card can do, measured: copy bandwidth and matmul rate, beside the datasheet.

"% of ceiling" is judged against these measured numbers, not the datasheet: a card never
reaches its datasheet bandwidth with a plain copy, and clocks differ from card to card.

- Memory bandwidth: a device-to-device copy of a buffer of at least 8x L2 (1 GiB or more),
  counting bytes read plus bytes written, and an add stream (2 reads : 1 write) of the same
  size; read-heavy traffic gets more out of HBM (on an H200: copy 4.09 TB/s, add 4.37), so the
  memory ceiling is the better of the two, or an elementwise kernel would look "impossible".
- Matmul: bf16 and fp16 8192^3 through cuBLAS (`torch.mm`), random data (zeros run faster).

Both are cached in the lab per device (name, SMs, memory, driver, torch), since they take a
few seconds. A kernel that reports more than 105% of a measured ceiling is IMPOSSIBLE: the
time or the byte count is wrong, so its numbers are excluded.

`card_state()` reads clocks, power and throttle reasons (never sets them): NVML through
pynvml if it is importable, else `nvidia-smi`.
"""

from __future__ import annotations

import subprocess
from datetime import UTC, datetime

import torch

from inferlab.bench.stats import summarize
from inferlab.bench.timing import event_ms, l2_bytes

IMPOSSIBLE_FRACTION = 1.05
MATMUL_SIZE = 8192
# Datasheet figures, labelled as such: words that must all be in the GPU's name -> (label,
# GB/s, dense fp16/bf16 TFLOP/s). torch names an H100 SXM "NVIDIA H100 80GB HBM3".
DATASHEET = (
    (("H100", "HBM3"), "H100 SXM", 3350.0, 989.0),
    (("H200",), "H200", 4800.0, 989.0),
    (("T4",), "T4", 320.0, 65.0),
)


def datasheet_for(gpu_name: str) -> dict | None:
    """The datasheet figures of this GPU, if we know them."""
    name = gpu_name.upper()
    for words, label, gbps, tflops in DATASHEET:
        if all(w in name for w in words):
            return {"label": f"datasheet ({label})", "copy_gbps": gbps, "matmul_tflops": tflops}
    return None


def device_key(environment: dict) -> dict | None:
    """What must match for cached ceilings to apply: the card and the software that drives it."""
    gpu = environment.get("gpu")
    if not gpu:
        return None
    return {
        "name": gpu["name"],
        "sm_count": gpu["sm_count"],
        "memory_bytes": gpu["memory_bytes"],
        "driver": gpu.get("driver"),
        "torch": environment.get("torch"),
    }


def fraction_of_ceiling(achieved: float, ceiling: float | None) -> float | None:
    return achieved / ceiling if ceiling else None


def is_impossible(fraction: float | None) -> bool:
    return fraction is not None and fraction > IMPOSSIBLE_FRACTION


# ---------------------------------------------------------------- measuring (GPU only)
def _median_ms(fn, repeats: int = 20, warmup_ms: float = 300.0) -> float:
    # Warm up for a stretch of device time, not a count: an idle card starts at low clocks.
    spent = 0.0
    while spent < warmup_ms:
        spent += event_ms(fn)
    return summarize([event_ms(fn) for _ in range(repeats)]).median


def measure_memory_gbps() -> dict:
    """Copy (1 read : 1 write) and add-stream (2 reads : 1 write) bandwidth, bytes read + written."""
    n = max(8 * l2_bytes(), 1 << 30) // 4
    a, b = torch.randn(n, device="cuda"), torch.randn(n, device="cuda")
    c = torch.empty_like(a)
    copy_ms = _median_ms(lambda: c.copy_(a))
    add_ms = _median_ms(lambda: torch.add(a, b, out=c))
    return {
        "copy_gbps": 2 * a.nbytes / (copy_ms * 1e-3) / 1e9,
        "read2_write1_gbps": 3 * a.nbytes / (add_ms * 1e-3) / 1e9,
    }


def measure_matmul_tflops(dtype: torch.dtype) -> float:
    n = MATMUL_SIZE
    gen = torch.Generator(device="cuda").manual_seed(0)
    a = torch.randn(n, n, device="cuda", dtype=dtype, generator=gen)
    b = torch.randn(n, n, device="cuda", dtype=dtype, generator=gen)
    c = torch.empty(n, n, device="cuda", dtype=dtype)
    ms = _median_ms(lambda: torch.mm(a, b, out=c))
    return 2 * n**3 / (ms * 1e-3) / 1e12


def measure(environment: dict) -> dict:
    """Measure the ceilings of GPU 0 now."""
    matmul = {"float16": measure_matmul_tflops(torch.float16)}
    if torch.cuda.is_bf16_supported():
        matmul["bfloat16"] = measure_matmul_tflops(torch.bfloat16)
    memory = measure_memory_gbps()
    gpu = environment["gpu"]
    return {
        "device": device_key(environment),
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
        **memory,
        # read-heavy traffic reaches more of HBM than a 1:1 copy (fewer read/write turnarounds),
        # so the memory ceiling is the better of the two patterns
        "memory_gbps": max(memory.values()),
        "matmul_tflops": matmul,
        "datasheet": datasheet_for(gpu["name"]),
    }


def load_or_measure(lab, environment: dict, refresh: bool = False) -> tuple[dict, bool]:
    """Cached ceilings of this device from the lab, or fresh ones saved there: (ceilings, cached)."""
    import json

    from inferlab.lab.results import list_results, save_result

    key = device_key(environment)
    if not refresh:
        for path in reversed(list_results(lab, "ceilings")):
            payload = json.loads(path.read_text())
            if payload.get("ceilings", {}).get("device") == key:
                return payload["ceilings"], True
    ceilings = measure(environment)
    save_result(lab, "ceilings", {"kind": "ceilings", "environment": environment, "ceilings": ceilings})
    return ceilings, False


def ceiling_for(ceilings: dict | None, bound: str, dtype: torch.dtype) -> float | None:
    """The measured ceiling a kernel is compared to: GB/s if memory bound, else TFLOP/s."""
    if not ceilings:
        return None
    if bound == "memory":
        return ceilings.get("memory_gbps", ceilings["copy_gbps"])
    rates = ceilings["matmul_tflops"]
    return rates.get(str(dtype).removeprefix("torch."), rates.get("float16"))


# ---------------------------------------------------------------- the card as found
NVIDIA_SMI_FIELDS = "clocks.sm,clocks.mem,power.draw,clocks_throttle_reasons.active"


def parse_nvidia_smi(csv_text: str) -> dict:
    """Parse `nvidia-smi --query-gpu=...,--format=csv,noheader` output for GPU 0."""
    values = [v.strip() for v in csv_text.strip().splitlines()[0].split(",")]
    keys = ["sm_clock", "mem_clock", "power_draw", "throttle_reasons"]
    return dict(zip(keys, values, strict=False))


def card_state() -> dict:
    """Clocks, power and throttle reasons of GPU 0 right now (read-only)."""
    stamp = datetime.now(UTC).isoformat(timespec="seconds")
    try:
        import pynvml
    except ImportError:
        pynvml = None
    if pynvml is not None:
        try:
            pynvml.nvmlInit()
            h = pynvml.nvmlDeviceGetHandleByIndex(0)
            return {
                "source": "nvml",
                "at": stamp,
                "sm_clock": f"{pynvml.nvmlDeviceGetClockInfo(h, pynvml.NVML_CLOCK_SM)} MHz",
                "mem_clock": f"{pynvml.nvmlDeviceGetClockInfo(h, pynvml.NVML_CLOCK_MEM)} MHz",
                "power_draw": f"{pynvml.nvmlDeviceGetPowerUsage(h) / 1000:.1f} W",
                "throttle_reasons": hex(pynvml.nvmlDeviceGetCurrentClocksThrottleReasons(h)),
                "temperature": f"{pynvml.nvmlDeviceGetTemperature(h, pynvml.NVML_TEMPERATURE_GPU)} C",
            }
        except pynvml.NVMLError as e:
            return {"source": "nvml", "at": stamp, "error": str(e)}
    try:
        out = subprocess.run(
            ["nvidia-smi", f"--query-gpu={NVIDIA_SMI_FIELDS}", "--format=csv,noheader"],
            capture_output=True,
            text=True,
            timeout=10,
        )
    except (OSError, subprocess.TimeoutExpired) as e:
        return {"source": "none", "at": stamp, "error": str(e)}
    if out.returncode != 0 or not out.stdout.strip():
        return {"source": "nvidia-smi", "at": stamp, "error": out.stderr.strip()[:200]}
    return {"source": "nvidia-smi", "at": stamp, **parse_nvidia_smi(out.stdout)}
