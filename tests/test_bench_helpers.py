"""The benchmark scripts' own bookkeeping: the CPU profile and the ASHA bench's noise and
process groups (the timings themselves are measured by bench/, never asserted)."""
import math
import subprocess
import sys

from bench.asha_vs_exhaustive import grouped, process_group, seed_noise
from bench.cpu_profile import CpuSampler


def test_cpu_sampler_counts_a_process_that_exits_between_readings():
    burn = "import time\nend = time.process_time() + 0.6\nwhile time.process_time() < end: pass\n"
    with CpuSampler(interval_s=0.05) as cpu:
        subprocess.run([sys.executable, "-c", burn], check=True)
    assert cpu.result["wall_s"] >= 0.6
    # The child is named after its executable; it exited before the last reading.
    child = sum(seconds for name, seconds in cpu.result["cpu_s"].items() if name.startswith("python"))
    assert 0.4 <= child <= cpu.result["total_cpu_s"]


def test_process_groups_from_truncated_proc_names():
    assert process_group("ray::RayTrainWo") == "Train workers"
    assert process_group("ray::TrainContr") == process_group("ray::Preemption") == "Ray Train and Tune helper actors"
    assert process_group("ray::ImplicitFu") == "Tune trial actors"
    assert process_group("raylet") == process_group("ray::IDLE") == "Ray's node processes and others"
    assert grouped({"ray::RayTrainWo": 3.0, "raylet": 1.0, "gcs_server": 2.5}) == {
        "Ray's node processes and others": 3.5, "Train workers": 3.0}


def test_seed_noise_pairs_only_variants_both_sweeps_finished():
    def trial(variant, ap, status="completed"):
        return dict(variant=variant, ap=ap, status=status)

    exhaustive = dict(seed=0, trials=[trial("fpn vector", 0.030), trial("pred mf", 0.010), trial("head_in mf", 0.020)])
    asha = dict(seed=1, trials=[trial("fpn vector", 0.020), trial("pred mf", 0.002, "stopped"),
                                trial("head_in mf", 0.024)])
    noise = seed_noise(exhaustive, asha)
    assert noise["seeds"] == [0, 1]
    assert [p["variant"] for p in noise["pairs"]] == ["fpn vector", "head_in mf"]
    assert math.isclose(noise["max_abs_diff"], 0.010)
    assert math.isclose(noise["sd"], math.sqrt((0.010 ** 2 + 0.004 ** 2) / 2 / 2))
    assert math.isnan(seed_noise(exhaustive, dict(seed=1, trials=[]))["sd"])
