"""bench.startup_stamps and bench.ray_overhead's start-up profile: phases that add up, the
run's processes told apart by what their environment inherited."""
import os
import subprocess
import sys
import time

import pytest

from bench.ray_overhead import mean_of_dicts
from bench.startup_stamps import StartupCpu, startup_phases


def test_ray_phases_add_up_to_the_start_up():
    driver = {"driver imported": 4.0, "prepare_run start": 4.1, "prepare_run end": 5.0, "ray.init start": 5.0,
              "ray.init end": 9.0, "trainer start": 9.5}
    worker = {"process started": 14.0, "hook module imported": 20.0, "runner's hooks built": 21.0,
              "before_train": 22.0}
    phases = startup_phases(0.0, driver, worker, 22.5, plain=False)
    assert phases == {"imports (driver)": 4.0, "prepare_run": 0.9, "Ray's start (ray.init)": 4.0,
                      "trainer start to the worker's process": 4.5, "the worker's own start and imports": 6.0,
                      "Runner's build": 2.0, "first epoch's start": 0.5, "other": 0.6}
    assert sum(phases.values()) == pytest.approx(22.5)


def test_plain_phases_count_the_runner_from_the_end_of_prepare_run():
    # the plain Runner's hook module is imported inside prepare_run (the config's custom_imports)
    driver = {"driver imported": 4.0, "prepare_run start": 4.0, "prepare_run end": 5.0}
    worker = {"process started": 0.0, "hook module imported": 4.5, "before_train": 7.0}
    phases = startup_phases(0.0, driver, worker, 7.25, plain=True)
    assert phases == {"imports (driver)": 4.0, "prepare_run": 1.0, "Runner's build": 2.0, "first epoch's start": 0.25,
                      "other": 0.0}


def test_means_of_profiles_keep_the_phases_order_or_rank_the_processes():
    runs = [{"b": 2.0, "a": 1.0}, {"b": 4.0, "c": 6.0}]
    assert list(mean_of_dicts(runs)) == ["b", "a", "c"]
    assert mean_of_dicts(runs, largest_first=True) == {"b": 3.0, "c": 3.0, "a": 0.5}


@pytest.mark.subprocess
def test_startup_cpu_counts_the_runs_processes_only(tmp_path):
    burn = "import time\nend = time.process_time() + 0.5\nwhile time.process_time() < end: pass\n"
    marker = str(tmp_path / "run.stamps.json")
    with StartupCpu(marker, interval_s=0.05) as cpu:
        ours = subprocess.Popen([sys.executable, "-c", burn + "time.sleep(0.3)"], env=dict(os.environ, MARK=marker))
        other = subprocess.Popen([sys.executable, "-c", burn + "time.sleep(0.3)"])
        ours.wait(), other.wait()
        time.sleep(0.1)
    used = cpu.until(time.perf_counter())
    assert list(used) == ["python"] and 0.4 <= used["python"] <= 1.0, used
    assert cpu.until(0.0) == {}


@pytest.mark.subprocess
def test_cpu_sampler_of_its_own_tree_counts_grandchildren():
    from bench.cpu_profile import CpuSampler

    burn = "import time\nend = time.process_time() + 0.4\nwhile time.process_time() < end: pass\n"
    with CpuSampler(interval_s=0.05, own_tree=True) as cpu:
        subprocess.run([sys.executable, "-c", f"import subprocess, sys\nsubprocess.run([sys.executable, '-c', "
                        f"{burn!r}])"], check=True)
    assert 0.3 <= cpu.result["cpu_s"].get("python", 0.0) <= 1.5, cpu.result


def test_cpu_sampler_of_its_own_tree_leaves_other_work_out():
    from bench.cpu_profile import CpuSampler

    sampler = CpuSampler(own_tree=True)
    sampler._parents = {100: os.getpid(), 101: 100, 200: 1, 201: 200, 300: 301, 301: 300}  # 300/301: a cycle
    assert sampler._in_own_tree(101) and sampler._in_own_tree(os.getpid())
    assert not sampler._in_own_tree(201) and not sampler._in_own_tree(300) and not sampler._in_own_tree(999)
