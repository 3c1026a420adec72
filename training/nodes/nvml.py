"""Read this machine's GPUs: NVML (nvidia-ml-py) or a fake backend for tests and the CPU demo.

No Django here: callers pass the backend name and the fake description from settings.
"""

from __future__ import annotations

from dataclasses import dataclass, field

NO_GPU_MESSAGE = "no NVIDIA GPU found"
MIB = 1024 * 1024


@dataclass(frozen=True)
class GpuReading:
    """One GPU as NVML (or the fake backend) reports it; memory in MiB."""

    index: int
    name: str
    uuid: str
    total_mib: int
    free_mib: int
    used_mib: int
    used_by_others_mib: int = 0
    utilization_pct: int | None = None
    temperature_c: int | None = None
    power_w: int | None = None


@dataclass(frozen=True)
class GpuReport:
    """All GPUs of this machine, or why there are none."""

    backend: str
    ok: bool
    message: str
    driver: str = ""
    gpus: tuple[GpuReading, ...] = field(default_factory=tuple)


def parse_fake_gpus(spec: str) -> tuple[GpuReading, ...]:
    """Parse "24576@300:RTX 4090,8192/4096" (total MiB[/free MiB][@power W][:name],
    comma-separated). The power (default 0 W) is what the GPU draws at every reading: the
    node agent sums it into the energy of the run holding the GPU."""
    gpus = []
    for index, item in enumerate(part.strip() for part in spec.split(",") if part.strip()):
        sizes, _, name = item.partition(":")
        sizes, _, power_text = sizes.partition("@")
        total_text, _, free_text = sizes.partition("/")
        try:
            total = int(total_text)
            free = int(free_text) if free_text else total
            power = int(power_text) if power_text.strip() else 0
        except ValueError as exc:
            raise ValueError(
                f"Bad fake GPU {item!r}: use TOTAL_MIB[/FREE_MIB][@WATTS][:NAME], "
                "e.g. 24576@300:RTX 4090"
            ) from exc
        if total <= 0 or not 0 <= free <= total:
            raise ValueError(f"Bad fake GPU {item!r}: need 0 <= free <= total and total > 0")
        if power < 0:
            raise ValueError(f"Bad fake GPU {item!r}: the power is 0 W or more")
        gpus.append(
            GpuReading(
                index=index,
                name=name.strip() or "Fake GPU",
                uuid=f"GPU-fake-{index}",
                total_mib=total,
                free_mib=free,
                used_mib=total - free,
                used_by_others_mib=total - free,
                utilization_pct=0,
                temperature_c=30,
                power_w=power,
            )
        )
    return tuple(gpus)


def read_gpus(backend: str, fake_spec: str = "", *, own_pids: frozenset[int] = frozenset()):
    """Return a GpuReport for `backend` ("nvml" or "fake"); never raises for a missing driver.

    `own_pids` are our trainers' processes: their memory does not count as "used by others".
    """
    if backend == "fake":
        try:
            gpus = parse_fake_gpus(fake_spec)
        except ValueError as exc:
            return GpuReport("fake", False, str(exc))
        message = f"{len(gpus)} fake GPU(s)" if gpus else "fake backend with no GPUs (CPU only)"
        return GpuReport("fake", True, message, driver="fake", gpus=gpus)
    if backend != "nvml":
        return GpuReport(backend, False, f"unknown GPU backend {backend!r}")
    return _read_nvml(own_pids)


def _read_nvml(own_pids: frozenset[int]) -> GpuReport:
    """Read every GPU through NVML; a missing library or driver gives a clear state."""
    try:
        import pynvml
    except ImportError:
        return GpuReport("nvml", False, f"{NO_GPU_MESSAGE} (nvidia-ml-py is not installed)")
    try:
        pynvml.nvmlInit()
    except pynvml.NVMLError as exc:
        return GpuReport("nvml", False, f"{NO_GPU_MESSAGE} ({exc})")
    try:
        driver = _text(pynvml.nvmlSystemGetDriverVersion())
        gpus = tuple(_read_device(pynvml, i, own_pids) for i in range(pynvml.nvmlDeviceGetCount()))
    except pynvml.NVMLError as exc:
        return GpuReport("nvml", False, f"NVML error: {exc}")
    finally:
        try:
            pynvml.nvmlShutdown()
        except pynvml.NVMLError:
            pass
    if not gpus:
        return GpuReport("nvml", False, NO_GPU_MESSAGE, driver=driver)
    return GpuReport("nvml", True, f"{len(gpus)} GPU(s), driver {driver}", driver, gpus)


def _text(value) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _optional(call, *args):
    """NVML readings some GPUs do not support come back as None."""
    import pynvml

    try:
        return call(*args)
    except pynvml.NVMLError:
        return None


def _read_device(pynvml, index: int, own_pids: frozenset[int]) -> GpuReading:
    handle = pynvml.nvmlDeviceGetHandleByIndex(index)
    memory = pynvml.nvmlDeviceGetMemoryInfo(handle)
    processes = _optional(pynvml.nvmlDeviceGetComputeRunningProcesses, handle) or []
    ours = sum((p.usedGpuMemory or 0) for p in processes if p.pid in own_pids) // MIB
    utilization = _optional(pynvml.nvmlDeviceGetUtilizationRates, handle)
    temperature = _optional(pynvml.nvmlDeviceGetTemperature, handle, pynvml.NVML_TEMPERATURE_GPU)
    power = _optional(pynvml.nvmlDeviceGetPowerUsage, handle)
    used = memory.used // MIB
    return GpuReading(
        index=index,
        name=_text(pynvml.nvmlDeviceGetName(handle)),
        uuid=_text(pynvml.nvmlDeviceGetUUID(handle)),
        total_mib=memory.total // MIB,
        free_mib=memory.free // MIB,
        used_mib=used,
        used_by_others_mib=max(0, used - ours),
        utilization_pct=utilization.gpu if utilization is not None else None,
        temperature_c=temperature,
        power_w=power // 1000 if power is not None else None,
    )


def process_memory_mib(backend: str, pids: frozenset[int]) -> int | None:
    """GPU memory (MiB) held by `pids` on all GPUs, or None when it cannot be measured."""
    if backend != "nvml" or not pids:
        return None
    try:
        import pynvml

        pynvml.nvmlInit()
    except Exception:
        return None
    try:
        total = 0
        for i in range(pynvml.nvmlDeviceGetCount()):
            handle = pynvml.nvmlDeviceGetHandleByIndex(i)
            for p in _optional(pynvml.nvmlDeviceGetComputeRunningProcesses, handle) or []:
                if p.pid in pids:
                    total += p.usedGpuMemory or 0
        return total // MIB
    except pynvml.NVMLError:
        return None
    finally:
        try:
            pynvml.nvmlShutdown()
        except pynvml.NVMLError:
            pass
