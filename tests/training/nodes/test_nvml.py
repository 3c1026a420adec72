"""GPU readings: the fake backend's description and the clear state without a driver."""

import os

import pytest

from training.nodes import nvml


@pytest.mark.parametrize(
    "spec, expected",
    [
        ("", []),
        ("24576", [(0, "Fake GPU", 24576, 24576)]),
        ("24576:RTX 4090", [(0, "RTX 4090", 24576, 24576)]),
        ("24576/20480:A, 8192", [(0, "A", 24576, 20480), (1, "Fake GPU", 8192, 8192)]),
        (" 8192/0 : B ", [(0, "B", 8192, 0)]),
    ],
)
def test_fake_gpus_are_read_from_their_description(spec, expected):
    gpus = nvml.parse_fake_gpus(spec)
    assert [(g.index, g.name, g.total_mib, g.free_mib) for g in gpus] == expected
    assert all(g.used_mib == g.total_mib - g.free_mib for g in gpus)
    assert all(g.power_w == 0 for g in gpus)


def test_a_fake_gpu_can_draw_power():
    gpus = nvml.parse_fake_gpus("24576/20000@350:RTX 4090, 8192@0")
    assert [(g.name, g.free_mib, g.power_w) for g in gpus] == [
        ("RTX 4090", 20000, 350),
        ("Fake GPU", 8192, 0),
    ]


@pytest.mark.parametrize("spec", ["big", "0", "100/200", "-5", "24576/x", "24576@hot", "8192@-1"])
def test_bad_fake_description_is_refused_with_the_expected_form(spec):
    with pytest.raises(ValueError, match="TOTAL_MIB|free <= total|0 W or more"):
        nvml.parse_fake_gpus(spec)
    report = nvml.read_gpus("fake", spec)
    assert not report.ok and report.gpus == ()


def test_fake_backend_without_gpus_is_a_cpu_only_node():
    report = nvml.read_gpus("fake", "")
    assert report.ok and report.gpus == () and "CPU only" in report.message


def test_machine_without_nvidia_driver_gets_the_clear_state():
    # This machine has no NVIDIA driver: pynvml.nvmlInit() raises NVMLError_LibraryNotFound.
    report = nvml.read_gpus("nvml")
    assert not report.ok
    assert report.gpus == ()
    assert report.message.startswith("no NVIDIA GPU found")
    assert nvml.process_memory_mib("nvml", frozenset({os.getpid()})) is None
