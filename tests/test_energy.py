"""Energy figures: the meter's window, and when a figure is withheld (on CPU, with a stand-in for
NVML's counter; tests/test_gpu.py reads the real one)."""

from __future__ import annotations

import sys
import time
import types
from types import SimpleNamespace

import pytest

from infercomp.figures import energy_of
from infercomp.measure import energy, nvml, timing


@pytest.fixture
def counter(monkeypatch):
    """A stand-in for pynvml whose total-energy counter (mJ) gains 300 mJ per read."""
    state = {"mj": 10_000}

    def total(_handle):
        state["mj"] += 300
        return state["mj"]

    fake = types.ModuleType("pynvml")
    fake.nvmlDeviceGetTotalEnergyConsumption = total
    monkeypatch.setitem(sys.modules, "pynvml", fake)
    monkeypatch.setattr(nvml, "device_handle", lambda device: object())
    monkeypatch.setattr(timing, "synchronize", lambda device: None)
    return state


def test_the_meter_counts_joules_and_the_window_they_span(counter):
    with energy.EnergyMeter("cuda") as meter:
        time.sleep(0.05)
    assert meter.unavailable is None
    assert meter.joules == pytest.approx(0.3)  # one read after the start's: +300 mJ
    assert 0.05 <= meter.seconds < 5


def run_of(joules, window_s, unavailable=None, replayed=False):
    return SimpleNamespace(
        joules=joules, energy_window_s=window_s, energy_unavailable=unavailable, energy_replayed=replayed
    )


def test_a_long_enough_window_gives_joules_per_token_and_mean_power():
    e = energy_of(run_of(400.0, 2.0), tokens=1000)
    assert e.unavailable is None
    assert e.joules == 400.0 and e.joules_per_token == pytest.approx(0.4) and e.mean_watts == pytest.approx(200.0)
    assert e.window_s == 2.0


def test_a_window_shorter_than_the_counter_resolves_is_withheld_with_its_reason():
    e = energy_of(run_of(35.0, 0.12), tokens=1000)
    assert e.joules is None and e.joules_per_token is None and e.mean_watts is None
    assert e.unavailable.startswith("not measured: the timed repeats took 0.12 s")
    assert e.window_s == 0.12


def test_no_counter_passes_its_reason_through():
    e = energy_of(run_of(None, 0.0, "not available: no GPU energy counter on CPU"), tokens=10)
    assert e.joules is None and e.unavailable == "not available: no GPU energy counter on CPU"


def test_repeats_with_replayed_calls_are_withheld():
    """On resume, replayed calls spend neither time nor joules: no figure rather than a low one."""
    e = energy_of(run_of(400.0, 2.0, replayed=True), tokens=1000)
    assert e.joules is None and e.unavailable.startswith("not measured: resumed")


def test_a_repeat_whose_calls_were_replayed_is_marked_and_one_that_ran_is_not():
    """MethodRun notices a call hook that returns saved outputs without running the call."""
    from infercomp.collect import MethodRun
    from infercomp.plan import MethodPlan
    from test_warmup import ShapeCostMethod, StubEngine

    saved = {}

    def hook(repeat, index, run):
        if (repeat, index) in saved:  # replay, as checkpoint.hook does on resume
            return saved[(repeat, index)]
        saved[(repeat, index)] = run()
        return saved[(repeat, index)]

    first = MethodRun(StubEngine(0), ShapeCostMethod(), MethodPlan("stub", [[0], [1]]), None, call_hook=hook)
    first.measure_repeat(0, None)
    assert first.error is None and not first.energy_replayed
    resumed = MethodRun(StubEngine(0), ShapeCostMethod(), MethodPlan("stub", [[0], [1]]), None, call_hook=hook)
    resumed.measure_repeat(0, None)
    assert resumed.error is None and resumed.energy_replayed
