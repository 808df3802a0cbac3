"""The benchmark scripts' own bookkeeping: the CPU profile and the ASHA bench's noise and
process groups (the timings themselves are measured by bench/, never asserted); the GPU
bench's skip without CUDA and its CPU rehearsal."""
import math
import subprocess
import sys

import pytest

from bench.asha_vs_exhaustive import grouped, process_group, seed_noise
from bench.cpu_profile import CpuSampler


@pytest.mark.subprocess
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


@pytest.mark.subprocess
def test_gpu_bench_skips_in_one_line_without_cuda(tmp_path):
    """CI has no GPU: bench.gpu says so in one line, exits 0 and writes no result file."""
    from bench.common import RESULTS

    before = (RESULTS / "gpu.json").read_bytes() if (RESULTS / "gpu.json").is_file() else None
    proc = subprocess.run([sys.executable, "-m", "bench.gpu"], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.splitlines() == [proc.stdout.strip()] and "skipped: no CUDA device" in proc.stdout
    after = (RESULTS / "gpu.json").read_bytes() if (RESULTS / "gpu.json").is_file() else None
    assert after == before


@pytest.mark.subprocess
def test_gpu_bench_runs_its_every_step_on_a_cpu_in_rehearsal(tmp_path):
    """--cpu-rehearsal: the GPU bench's code path (train cells in fp32 and bf16, peak memory,
    learned implicit tensors, extras, fused inference) on one row, tiny, on a CPU."""
    import json

    from bench.common import WORK
    from bench.gpu import REHEARSAL

    proc = subprocess.run([sys.executable, "-m", "bench.gpu", "--cpu-rehearsal", "--rows", "atss", "--no-ray",
                           "--steps", "1", "--repeats", "1"], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    result = json.loads((WORK / "gpu_rehearsal.json").read_text())
    atss = result["rows"]["atss"]
    assert REHEARSAL.dtypes == ("fp32", "bf16") and len(REHEARSAL.batches) == 2  # a big and a small batch
    assert set(atss["cells"]) == {f"{dtype}@{size}" for dtype in REHEARSAL.dtypes for size in REHEARSAL.batches}
    for key, cell in atss["cells"].items():
        assert "error" not in cell, (key, cell)
        learned, total = map(int, cell["implicit_learned"].split("/"))
        assert total > 0 and learned == total, key
        assert cell["skipped_steps"]["yolor"] in (None, 0)
    assert atss["train_flop_per_image"] > 0 and atss["inference"]["folded"] > 0
    assert {"bf16", "preprocess_s"} <= set(atss["extras"])
