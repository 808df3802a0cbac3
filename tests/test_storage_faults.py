"""Storage that fails for good (full, over quota, read-only, denied, its bucket deleted): the run
ends at once in one line, without Ray's retries; Ray's record of the checkpoints cut short by a
full disk is set aside and the same command resumes. In a job of runs through Tune (a sweep, a
confirmation, a reproduction), one run's storage fault ends the job in one line, without Tune's
retries (paired.faults, fed plain objects as Tune's trials). Real Ray runs write to a tmpfs in a
private mount namespace (support.tmpfs); S3's faults are met in this process, through Ray's
and pyarrow's own uploads to the S3 endpoint on 127.0.0.1 (moto)."""
import errno
import json
import pickle
import traceback
from datetime import datetime
from pathlib import Path
from types import SimpleNamespace

import pytest
import ray.cloudpickle
from botocore.exceptions import ClientError, EndpointConnectionError
from ray import tune
from ray.exceptions import ActorDiedError, RayTaskError
from ray.train import FailureConfig
from ray.train.v2._internal.exceptions import UserExceptionWithTraceback
from ray.train.v2._internal.execution.failure_handling import DefaultFailurePolicy, FailureDecision
from ray.train.v2.api.exceptions import ControllerError, WorkerGroupError
from ray.tune.error import TuneError

from yolor_ray.errors import RunFailedError
from yolor_ray.paired.faults import (
    Job,
    JobStorageFaultError,
    StorageFaultsEndTheJob,
    fit_ending_on_storage_faults,
    job_storage_fault,
    trial_storage_fault,
)
from yolor_ray.paired.progress import run_config_output
from yolor_ray.paired.run_lines import LinesPlan
from yolor_ray.paired.trial import TuneReporter
from yolor_ray.records import RunState
from yolor_ray.storage import StorageFaultError, StorageSpec, open_storage, storage_fault
from yolor_ray.train.checkpoints import (
    RAY_RECORD,
    StoredCheckpoint,
    registered_checkpoints,
    remove_partial_checkpoints,
    resume_checkpoint,
    set_aside_unreadable_record,
)
from yolor_ray.train.failures import StorageFaultsEndTheRun, run_storage_fault, upload_fault

from support.net import free_port
from support.paths import ATSS
from support.runs import config_with_user_hook, env_with_test_modules
from support.s3 import s3_keys
from support.tmpfs import TmpfsScenario


def _client_error(code: str, message: str = "") -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": message}}, "PutObject")


def _pyarrow_s3_error(code: str) -> OSError:
    """As pyarrow's S3 filesystem raises it (the text of one met against moto)."""
    return OSError(f"When initiating multiple part upload for key 'runs/r/checkpoint_x/checkpoint.pth' in bucket 'b': "
                   f"AWS Error {code} during CreateMultipartUpload operation: The specified bucket does not exist "
                   "(Request ID: 4gpb7iTUckSVZT0e)")


def _chained(cause: BaseException) -> RuntimeError:
    try:
        raise cause
    except BaseException:
        try:
            raise RuntimeError("upload failed")
        except RuntimeError as err:
            return err


@pytest.mark.parametrize("error, fault", [
    (OSError(errno.ENOSPC, "No space left on device"), "ENOSPC: No space left on device"),
    # pyarrow's local filesystem (Ray's uploads and its record), with errno set
    (OSError(28, "Error writing bytes to file. Detail: [errno 28] No space left on device"), "ENOSPC"),
    (OSError(errno.EDQUOT, "Disk quota exceeded"), "EDQUOT"),
    (OSError(errno.EROFS, "Read-only file system"), "EROFS"),
    (PermissionError(errno.EACCES, "Permission denied"), "EACCES"),
    (PermissionError(errno.EPERM, "Operation not permitted"), "EPERM"),
    (_chained(OSError(errno.ENOSPC, "No space left on device")), "ENOSPC"),
    (_client_error("AccessDenied", "Access Denied"), "AccessDenied: Access Denied"),
    (_client_error("NoSuchBucket", "The specified bucket does not exist"), "NoSuchBucket"),
    (_pyarrow_s3_error("ACCESS_DENIED"), "AccessDenied"),
    (_pyarrow_s3_error("NO_SUCH_BUCKET"), "NoSuchBucket: The specified bucket does not exist"),
    (StorageFaultError("/data/runs", "ENOSPC: No space left on device"), "ENOSPC: No space left on device"),
], ids=lambda value: type(value).__name__ if isinstance(value, BaseException) else None)
def test_storage_faults_that_retrying_cannot_fix(error, fault):
    assert storage_fault(error).startswith(fault)


@pytest.mark.parametrize("error", [
    ConnectionResetError(errno.ECONNRESET, "Connection reset by peer"),
    OSError(errno.EIO, "Input/output error"),
    _client_error("SlowDown", "Please reduce your request rate."),
    _client_error("ThrottlingException"),
    _client_error("InternalError"),
    _pyarrow_s3_error("SLOW_DOWN"),
    _pyarrow_s3_error("NETWORK_CONNECTION"),
    EndpointConnectionError(endpoint_url="http://127.0.0.1:9"),
    ActorDiedError(),  # a worker killed, or its node lost
    RuntimeError("planted failure"),
], ids=lambda value: type(value).__name__)
def test_transient_failures_are_left_to_retries(error):
    assert storage_fault(error) is None
    assert run_storage_fault(WorkerGroupError("rank 0 failed", {0: error})) is None


def test_ray_train_carries_the_fault_to_the_driver_and_the_policy_ends_the_run():
    """As the driver and Ray's controller receive them: a worker's error pickled across Ray
    (wrapped with its traceback as text), the controller's own."""
    worker = pickle.loads(pickle.dumps(WorkerGroupError("rank 0 failed", {0: UserExceptionWithTraceback(
        StorageFaultError("/data/runs", "ENOSPC: No space left on device"), "Traceback ...")})))
    controller = ControllerError(OSError(errno.ENOSPC, "No space left on device"))
    lost_worker = WorkerGroupError("rank 1 died", {1: ActorDiedError()})
    assert run_storage_fault(worker) == run_storage_fault(controller) == "ENOSPC: No space left on device"
    policy = StorageFaultsEndTheRun(FailureConfig(max_failures=3))
    assert policy.make_decision(worker) is FailureDecision.RAISE
    assert policy.make_decision(lost_worker) is FailureDecision.RETRY  # Ray's own rule, max_failures
    assert policy.make_decision(controller) is FailureDecision.RAISE


def test_a_run_trainer_gives_ray_the_policy(monkeypatch, tmp_path):
    from ray.train import RunConfig, ScalingConfig
    from ray.train.v2.api.data_parallel_trainer import DataParallelTrainer

    from yolor_ray.train.trainer import RunTrainer

    seen = {}
    monkeypatch.setattr(DataParallelTrainer, "_initialize_and_run_controller",
                        lambda self, **kwargs: seen.update(kwargs))
    trainer = RunTrainer(lambda config: None, scaling_config=ScalingConfig(num_workers=1),
                         run_config=RunConfig(name="run", storage_path=str(tmp_path)))
    trainer._initialize_and_run_controller(failure_policy=DefaultFailurePolicy(FailureConfig(max_failures=2)))
    assert type(seen["failure_policy"]) is StorageFaultsEndTheRun
    assert seen["failure_policy"].failure_config.max_failures == 2


def test_an_upload_to_a_deleted_bucket_is_a_fault_a_lost_endpoint_is_not(bucket, s3_endpoint, tmp_path):
    """Ray Train's own upload of a checkpoint (its StorageContext, as a worker persists one), in
    this process, to the endpoint: once the bucket is deleted, Ray finds its marker file gone
    and the probe of its marker names NoSuchBucket; pyarrow's own upload error too. A probe
    that cannot reach the endpoint, or that finds the marker, leaves the error to Ray's retries."""
    import pyarrow.fs
    from ray.train import Checkpoint
    from ray.train.v2._internal.execution.storage import StorageContext

    name, client = bucket
    spec = StorageSpec(f"s3://{name}/runs", s3_endpoint)
    path, filesystem = open_storage(spec).ray_storage()
    (tmp_path / "checkpoint.pth").write_bytes(b"w" * 100)
    ray_storage = StorageContext(path, "run", storage_filesystem=filesystem)  # writes Ray's marker file
    ray_storage.persist_current_checkpoint(Checkpoint.from_directory(str(tmp_path)), "checkpoint_0")
    client.delete_objects(Bucket=name, Delete=dict(Objects=[dict(Key=key) for key in s3_keys(client, name)]))
    client.delete_bucket(Bucket=name)
    with pytest.raises(RuntimeError) as marker_gone:
        ray_storage.persist_current_checkpoint(Checkpoint.from_directory(str(tmp_path)), "checkpoint_1")
    assert storage_fault(marker_gone.value) is None  # Ray says only that its marker is not there
    assert upload_fault(marker_gone.value, spec, "run").startswith("NoSuchBucket: The specified bucket does not exist")
    with pytest.raises(OSError) as upload:
        pyarrow.fs.copy_files(str(tmp_path), f"{path}/run/checkpoint_1", destination_filesystem=filesystem)
    assert storage_fault(upload.value).startswith("NoSuchBucket: The specified bucket does not exist")
    unreachable = StorageSpec(f"s3://{name}/runs", f"http://127.0.0.1:{free_port()}")
    assert upload_fault(marker_gone.value, unreachable, "run") is None
    client.create_bucket(Bucket=name)  # there again, without Ray's marker: the folder was deleted
    assert upload_fault(marker_gone.value, spec, "run").startswith("Ray's marker file .validate_storage_marker is gone")
    client.put_object(Bucket=name, Key="runs/run/.validate_storage_marker", Body=b"")
    assert upload_fault(marker_gone.value, spec, "run") is None  # seen now: a passing failure, retried


def _stored_run(storage, name: str, record: str | None) -> None:
    """Whole checkpoints of epochs 1 and 2, one cut short (epoch 3), and Ray's record ``record``
    (None: none, as in a Tune trial's folder)."""
    weights = b"w" * 1000
    for folder, epochs, stored in [("checkpoint_a", 1, weights), ("checkpoint_b", 2, weights),
                                   ("checkpoint_c", 3, weights[:300])]:
        state = RunState(history=[dict(epoch=e) for e in range(1, epochs + 1)], checkpoint_bytes=len(weights))
        storage.write_bytes(state.to_json().encode(), name, folder, "run_state.json")
        storage.write_bytes(stored, name, folder, "checkpoint.pth")
    if record is not None:
        storage.write_bytes(record.encode(), name, RAY_RECORD)


@pytest.mark.parametrize("where, record, reason", [
    ("local", "", "empty"),
    ("local", '{"ray_version": "2.60.0", "checkpoint_results": [{"checkpoint_dir_na', "Unterminated string"),
    ("s3", "", "empty"),
], ids=["local-empty", "local-cut-short", "s3-empty"])
def test_an_unreadable_ray_record_is_set_aside_for_the_newest_whole_checkpoint(where, record, reason, tmp_path,
                                                                             request):
    if where == "s3":
        bucket, _ = request.getfixturevalue("bucket")
        storage = open_storage(StorageSpec(f"s3://{bucket}/runs", request.getfixturevalue("s3_endpoint")))
    else:
        storage = open_storage(StorageSpec(str(tmp_path / "runs")))
    _stored_run(storage, "run", record)
    assert registered_checkpoints(storage, "run").latest is None  # read as 'none registered', not raised
    set_aside = set_aside_unreadable_record(storage, "run", now=datetime(2026, 12, 7, 12, 0, 0))
    kept_as = f"{RAY_RECORD}.invalid-20261207-120000"
    assert set_aside.reason.startswith(reason) and set_aside.kept_as == storage.location("run", kept_as)
    assert resume_checkpoint(storage, "run") == StoredCheckpoint("checkpoint_b", 2)
    assert storage.size("run", RAY_RECORD) is None and storage.read_bytes("run", kept_as) == record.encode()
    assert set_aside_unreadable_record(storage, "run") is None  # nothing left to set aside
    # Only the upload cut short goes: the whole ones stay while no record names any.
    assert remove_partial_checkpoints(storage, "run") == ["checkpoint_c"]
    assert storage.list_dirs("run") == ["checkpoint_a", "checkpoint_b"]


def test_a_ray_record_that_reads_is_left_as_it_is(tmp_path):
    storage = open_storage(StorageSpec(str(tmp_path / "runs")))
    registered = dict(version=0, checkpoint_dir_name="checkpoint_a", metrics=dict(epoch=1))
    _stored_run(storage, "run", json.dumps(dict(  # Ray Train 2.60's own record with one registered checkpoint
        ray_version="2.60.0", checkpoint_results=[registered], checkpoint_report_indices=[0],
        latest_checkpoint_result=registered, pending_training_results=[], pending_validation_specs=[],
        current_report_index=1, validated_checkpoint_dir_names=[], timed_out_validation_checkpoint_dir_names=[],
        failed_validation_checkpoint_dir_names=[])))
    assert set_aside_unreadable_record(storage, "run") is None
    assert storage.size("run", RAY_RECORD) > 0
    assert resume_checkpoint(storage, "run") == StoredCheckpoint("checkpoint_a", 1)  # Ray's, not the newest
    # Once Ray registered one, what it did not register goes: cut short or whole.
    assert remove_partial_checkpoints(storage, "run") == ["checkpoint_b", "checkpoint_c"]


def test_our_files_are_written_whole_or_not_at_all(tmp_path, monkeypatch):
    import os

    storage = open_storage(StorageSpec(str(tmp_path)))
    storage.write_bytes(b'{"old": true}', "run", "results.json")

    def disk_full(fd):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "fsync", disk_full)
    with pytest.raises(OSError) as raised:
        storage.write_bytes(b'{"new": true, "cut": "short"}', "run", "results.json")
    assert storage_fault(raised.value) == "ENOSPC: No space left on device"
    assert sorted(p.name for p in (tmp_path / "run").iterdir()) == ["results.json"]  # no temporary file left
    assert storage.read_bytes("run", "results.json") == b'{"old": true}'


def _tune_trial(tmp_path: Path, error: BaseException | None, run: str = "atss-yolor-seed1", trial_id: str = "t_00001"):
    """A Tune trial as the driver's callbacks get it, having failed with ``error``: Tune pickles
    the error a trial's actor raised (a RayTaskError as ray.get raises it) into the trial's folder
    on the driver."""
    pickled = None
    if error is not None:
        pickled = tmp_path / f"{trial_id}-error.pkl"
        task_error = RayTaskError("ImplicitFunc.train", "Traceback (most recent call last): ...", error)
        pickled.write_bytes(ray.cloudpickle.dumps(task_error.as_instanceof_cause()))
    return SimpleNamespace(trial_id=trial_id, config={"run": run}, pickled_error_file=str(pickled) if pickled else None,
                           error_file=None)


def _reproduction_job(tmp_path: Path) -> Job:
    rep = tmp_path / "results" / "rep"
    return Job("reproduction", str(rep), "rep", StorageSpec(str(rep / "runs")), name_key="run")


@pytest.mark.parametrize("hook", ["on_trial_recover", "on_trial_error"])
def test_a_storage_fault_in_one_run_ends_the_job_in_one_line(tmp_path, hook):
    """Whether Tune would restore the run or not: the job's line is raised out of Tune's loop,
    naming the storage, the fault, the run, its last whole checkpoint and the command that resumes."""
    job = _reproduction_job(tmp_path)
    runs = open_storage(job.runs)
    _stored_run(runs, "atss-yolor-seed1", record=None)  # a Tune trial's folder: Tune's checkpoints, no Ray Train record
    runs.write_bytes(b'{"epoch": 2}\n', "atss-yolor-seed1", "result.json")
    fault = StorageFaultError(job.runs.uri, "ENOSPC: No space left on device")  # as TuneReporter raises it
    trial = _tune_trial(tmp_path, fault)
    with pytest.raises(StorageFaultError) as ended:
        getattr(StorageFaultsEndTheJob(job), hook)(iteration=7, trials=[trial], trial=trial)
    assert isinstance(ended.value, RunFailedError)  # the CLI's one line, exit 1
    assert storage_fault(ended.value) == "ENOSPC: No space left on device"
    assert str(ended.value) == (
        f"reproduction '{tmp_path}/results/rep' stopped: its run atss-yolor-seed1 met a storage fault: a write to "
        f"'{tmp_path}/results/rep/runs' failed with ENOSPC: No space left on device, which retrying cannot fix, and "
        "every run of the reproduction writes there; atss-yolor-seed1's last whole checkpoint is checkpoint_b "
        "(epoch 2); once that is fixed, the same command with --name rep resumes the reproduction: runs done are "
        "kept, unfinished ones continue from their last whole checkpoint")


def test_a_sweep_names_the_trial_by_its_id_and_a_run_faulted_before_its_first_checkpoint(tmp_path):
    runs = StorageSpec(str(tmp_path / "sweeps" / "s" / "runs"))
    job = Job("sweep", str(tmp_path / "sweeps" / "s"), "s", runs, noun="trial")
    # A TorchTrainer trial's run ended on its own one line (train.driver): still a storage fault to the sweep.
    trial = _tune_trial(tmp_path, StorageFaultError(runs.uri, "NoSuchBucket: gone", "run 'x' stopped: ..."),
                        run="ignored", trial_id="ab_00002")
    with pytest.raises(StorageFaultError) as ended:
        StorageFaultsEndTheJob(job).on_trial_error(iteration=1, trials=[trial], trial=trial)
    line = str(ended.value)
    assert line.startswith(f"sweep '{tmp_path}/sweeps/s' stopped: its trial ab_00002 met a storage fault: a write to "
                           f"'{runs.uri}' failed with NoSuchBucket: gone, which retrying cannot fix"), line
    assert "; ab_00002 has no whole checkpoint; once that is fixed, the same command with --name s resumes the " \
           "sweep: trials done are kept, unfinished ones continue from their last whole checkpoint" in line, line


@pytest.mark.parametrize("error", [
    RuntimeError("planted failure"),
    ConnectionResetError(errno.ECONNRESET, "Connection reset by peer"),
    _client_error("SlowDown", "Please reduce your request rate."),
    None,  # no pickled error (Tune pickles Ray's task and actor errors only)
], ids=lambda value: type(value).__name__)
def test_other_failures_of_a_run_are_left_to_tune(tmp_path, error):
    """Retried up to --max-failures, then the run is marked failed and the others go on: today's way."""
    trial = _tune_trial(tmp_path, error)
    guard = StorageFaultsEndTheJob(_reproduction_job(tmp_path))
    assert trial_storage_fault(trial) is None
    guard.on_trial_recover(iteration=1, trials=[trial], trial=trial)
    guard.on_trial_error(iteration=1, trials=[trial], trial=trial)


class _Tuner:
    """``fit()`` as Tune 2.60 ends it on an error a callback raised in its loop: a ``TuneError``
    of the traceback's text, raised while handling it."""

    def __init__(self, raised: BaseException | None):
        self.raised = raised

    def fit(self):
        if self.raised is None:
            return "results"
        try:
            raise self.raised
        except Exception:
            raise TuneError(traceback.format_exc())


def test_the_job_s_line_comes_out_of_tunes_fit_alone(tmp_path):
    ended = job_storage_fault(_reproduction_job(tmp_path), "atss-yolor-seed1", "EDQUOT: Disk quota exceeded")
    with pytest.raises(JobStorageFaultError) as raised:
        fit_ending_on_storage_faults(_Tuner(ended))
    assert raised.value is ended and raised.value.__suppress_context__  # no TuneError, no traceback, printed
    with pytest.raises(TuneError):  # anything else as Tune raised it
        fit_ending_on_storage_faults(_Tuner(RuntimeError("a bug in a callback")))
    assert fit_ending_on_storage_faults(_Tuner(None)) == "results"


def test_an_error_that_does_not_unpickle_here_is_left_to_tune(tmp_path):
    (tmp_path / "error.pkl").write_bytes(b"not a pickle")
    assert trial_storage_fault(SimpleNamespace(pickled_error_file=str(tmp_path / "error.pkl"))) is None
    assert trial_storage_fault(SimpleNamespace(pickled_error_file=str(tmp_path / "gone.pkl"))) is None


def test_the_job_ends_before_the_run_lines_print_a_failure_and_a_restored_sweep_keeps_its_guard(tmp_path):
    job = _reproduction_job(tmp_path)
    plan = LinesPlan(noun="run", total=2, epochs=1, location="/r")
    guard = StorageFaultsEndTheJob(job)
    quiet = run_config_output(plan, verbose=False, name_key="run", before=(guard,))
    assert [type(c).__name__ for c in quiet["callbacks"]] == ["StorageFaultsEndTheJob", "TrialLines"]
    assert run_config_output(plan, verbose=True, before=(guard,)) == dict(verbose=1, callbacks=[guard])
    assert isinstance(guard, tune.Callback)
    assert pickle.loads(pickle.dumps(guard)).job == job  # Tuner.restore unpickles a sweep's callbacks


def test_a_run_in_its_actor_names_an_upload_that_storage_refuses(tmp_path, monkeypatch):
    """tune.report persists the checkpoint in the trial's thread: a full disk (pyarrow's errno),
    or Ray's marker gone from Tune's experiment (the runs' folder) becomes a StorageFaultError,
    whose words survive Ray's pickling (a chained cause does not); a passing failure is Tune's."""
    runs = StorageSpec(str(tmp_path / "runs"))
    open_storage(runs).write_bytes(b"", "atss-seed0", "run.json")
    reporter = TuneReporter(runs)

    def report_raising(error):
        def report(metrics, checkpoint=None):
            raise error
        monkeypatch.setattr(tune, "report", report)

    report_raising(OSError(28, "Error writing bytes to file. Detail: [errno 28] No space left on device"))
    with pytest.raises(StorageFaultError) as full:
        reporter.report({"epoch": 1})
    back = pickle.loads(pickle.dumps(full.value))
    assert (back.where, back.fault) == (runs.uri, "ENOSPC: No space left on device")
    marker_gone = RuntimeError("Unable to set up cluster storage with the following settings: ...")
    report_raising(marker_gone)
    with pytest.raises(StorageFaultError) as gone:
        reporter.report({"epoch": 1})
    assert gone.value.fault.startswith("Ray's marker file .validate_storage_marker is gone")
    open_storage(runs).write_bytes(b"", ".validate_storage_marker")  # there after all: a passing failure
    with pytest.raises(RuntimeError) as passing:
        reporter.report({"epoch": 1})
    assert passing.value is marker_gone
    report_raising(ConnectionResetError(errno.ECONNRESET, "Connection reset by peer"))
    with pytest.raises(ConnectionResetError):
        reporter.report({"epoch": 1})


def test_a_runs_own_one_line_is_still_a_storage_fault_to_the_job(tmp_path):
    """A run's own writes (run.json, results.json) and its TorchTrainer's end on the run's one
    line: raised as a StorageFaultError, so a job's driver tells it from any other failure."""
    from yolor_ray.train.driver import _storage_faults_end_the_run

    storage = open_storage(StorageSpec(str(tmp_path / "runs")))
    run = SimpleNamespace(name="r", location=storage.location("r"), storage=storage)
    with pytest.raises(StorageFaultError) as ended:
        with _storage_faults_end_the_run(run):
            raise OSError(errno.EROFS, "Read-only file system")
    back = pickle.loads(ray.cloudpickle.dumps(ended.value))  # as it reaches a job's driver from a Tune trial
    assert storage_fault(back) == "EROFS: Read-only file system"
    assert str(back) == str(ended.value) == (
        f"run '{tmp_path}/runs/r' stopped: a write to its storage '{tmp_path}/runs' failed with EROFS: Read-only "
        "file system, which retrying cannot fix; it has no whole checkpoint; once that is fixed, the same command "
        "with --name r starts it again")


def _fault_config(tmp_path):
    return config_with_user_hook(tmp_path / "atss_faults.py", ATSS, "support.storage_fault_hook", "StorageFaultHook")


def _train_args(config, data, storage, name: str, epochs: int, *more) -> list:
    return ["train", config, "--data", data, "--small", "--image-size", 64, "--epochs", epochs, "--storage", storage,
            "--name", name, "--samples", 0, *more]


def _one_fault_line(stderr: str) -> str:
    """The run's last line on stderr, its one line of failure; no traceback, no Ray error snippet."""
    assert "Traceback" not in stderr and "Error Snippet" not in stderr and "OSError" not in stderr, stderr[-3000:]
    lines = stderr.strip().splitlines()
    assert lines[-1].startswith("yolor-ray: training failed: run "), stderr[-3000:]
    assert [line for line in lines[:-1] if not line.startswith("[yolor-ray] ")] == [], stderr[-3000:]
    assert not [line for line in lines[:-1] if "space" in line or "ENOSPC" in line], stderr[-3000:]
    return lines[-1]


@pytest.mark.ray
@pytest.mark.subprocess
def test_a_full_disk_ends_the_run_in_one_line_without_a_retry(shapes_dir, tmp_path):
    """The storage, an 8 MB tmpfs, cannot hold the first checkpoint (about 100 MB): its upload
    meets ENOSPC in the worker. One attempt (Ray would retry --max-failures 3 times), one line,
    and the partial upload removed."""
    scenario = TmpfsScenario(tmp_path / "storage", "8m", tmp_path / "out")
    attempts = tmp_path / "attempts"
    scenario.yolor_ray("full", *_train_args(_fault_config(tmp_path), shapes_dir, scenario.mount, "full", 1),
                       env=dict(YOLOR_TEST_ATTEMPTS=attempts, PYTHONPATH=env_with_test_modules()["PYTHONPATH"]))
    ran = scenario.run()["full"]
    assert ran.returncode == 1, ran.stdout[-2000:] + ran.stderr[-3000:]
    line = _one_fault_line(ran.stderr)
    assert line.startswith(f"yolor-ray: training failed: run '{scenario.mount}/full' stopped: a write to its storage "
                           f"'{scenario.mount}' failed with ENOSPC: No space left on device, which retrying cannot "
                           "fix; removed what Ray had not registered: checkpoint_"), line
    assert line.endswith("; it has no whole checkpoint; once that is fixed, the same command with --name full "
                         "starts it again"), line
    assert len(attempts.read_text().splitlines()) == 1
    kept = tmp_path / "out" / "kept" / "full"
    assert {"run.json", "config.py"} <= {p.name for p in kept.iterdir()}
    assert not list(kept.glob("checkpoint_*"))  # nothing half-written left


@pytest.mark.ray
@pytest.mark.subprocess
def test_a_record_cut_short_by_a_full_disk_is_set_aside_and_the_same_command_resumes(shapes_dir, tmp_path):
    """Epoch 1's checkpoint fills the tmpfs exactly (the planted hook fills the rest before its
    upload), so Ray's controller, creating its record of it next, meets ENOSPC and leaves the
    record empty. Deterministic: the record is only written after the upload. The run ends in
    one line naming that checkpoint; with the space freed the same command sets the record
    aside (kept, renamed) in one warning and resumes from it: every epoch once in the history."""
    scenario = TmpfsScenario(tmp_path / "storage", "256m", tmp_path / "out")
    attempts = tmp_path / "attempts"
    args = _train_args(_fault_config(tmp_path), shapes_dir, scenario.mount, "cut", 2)
    env = dict(YOLOR_TEST_ATTEMPTS=attempts, PYTHONPATH=env_with_test_modules()["PYTHONPATH"])
    scenario.yolor_ray("cut", *args, env=dict(env, YOLOR_TEST_FILL=scenario.mount))
    scenario.shell(f"wc -c < {scenario.mount}/cut/{RAY_RECORD} > {tmp_path}/record-bytes")
    scenario.free_space()
    scenario.yolor_ray("again", *args, env=env)
    ran = scenario.run()

    cut, again = ran["cut"], ran["again"]
    assert cut.returncode == 1, cut.stdout[-2000:] + cut.stderr[-3000:]
    line = _one_fault_line(cut.stderr)
    assert "failed with ENOSPC: No space left on device, which retrying cannot fix; its last whole checkpoint is " \
           "checkpoint_" in line and line.endswith(" (epoch 1); once that is fixed, the same command with --name cut "
                                                   "resumes from it"), line
    assert int((tmp_path / "record-bytes").read_text()) == 0
    assert again.returncode == 0, again.stdout[-2000:] + again.stderr[-3000:]
    warnings = [line for line in again.stderr.splitlines() if "does not read" in line]
    assert len(warnings) == 1 and warnings[0].startswith(
        f"[yolor-ray] run {scenario.mount}/cut: Ray's record of its checkpoints does not read (empty); kept as "
        f"{scenario.mount}/cut/{RAY_RECORD}.invalid-") and warnings[0].endswith(" (epoch 1)"), again.stderr[-3000:]
    assert len(attempts.read_text().splitlines()) == 2  # one each: nothing retried
    kept = tmp_path / "out" / "kept" / "cut"
    (set_aside,) = kept.glob(f"{RAY_RECORD}.invalid-*")
    assert set_aside.stat().st_size == 0
    record = json.loads((kept / "results.json").read_text())
    assert [h["epoch"] for h in record["history"]] == [1, 2] and record["restarts"] == 1


@pytest.mark.ray
@pytest.mark.subprocess
def test_a_full_disk_ends_a_reproduction_in_one_line_without_tunes_retries(shapes_dir, tmp_path):
    """A reproduction's 4 runs, one at a time, each in its Tune actor, on an 8 MB tmpfs: the
    first run's first checkpoint (about 100 MB) meets ENOSPC as tune.report persists it. Tune
    would restore that run --max-failures 2 times, then train the other 3 into the same full
    disk; the job ends at once instead: one attempt, one line, the runs' own lines and no
    traceback before it."""
    scenario = TmpfsScenario(tmp_path / "storage", "8m", tmp_path / "out")
    attempts = tmp_path / "attempts"
    scenario.yolor_ray("rep", "reproduce", "--rows", "atss", "--seeds", 2, "--data", shapes_dir, "--small",
                       "--image-size", 64, "--batch-size", 4, "--samples", 0, "--epochs", 1, "--storage",
                       scenario.mount, "--name", "rep", "--max-concurrent", 1, "--max-failures", 2, "--cfg-options",
                       "custom_imports.imports=['yolor_ray.registrations','support.storage_fault_hook']",
                       "default_hooks.faults={'type':'StorageFaultHook'}",
                       env=dict(YOLOR_TEST_ATTEMPTS=attempts, PYTHONPATH=env_with_test_modules()["PYTHONPATH"]))
    ran = scenario.run()["rep"]
    assert ran.returncode == 1, ran.stdout[-2000:] + ran.stderr[-3000:]
    (attempt,) = attempts.read_text().splitlines()  # no retry, and no other run started
    run = attempt.rsplit("-", 1)[0]  # the Runner's experiment: RUN-<random suffix>
    assert "Traceback" not in ran.stderr and "Error Snippet" not in ran.stderr, ran.stderr[-3000:]
    lines = ran.stderr.strip().splitlines()
    assert [line for line in lines[:-1] if not line.startswith("[yolor-ray] ")] == [], ran.stderr[-3000:]
    assert not [line for line in lines[:-1] if "space" in line or "ENOSPC" in line], ran.stderr[-3000:]
    assert lines[-1] == (
        f"yolor-ray: training failed: reproduction '{scenario.mount}/rep' stopped: its run {run} met a storage "
        f"fault: a write to '{scenario.mount}/rep/runs' failed with ENOSPC: No space left on device, which retrying "
        f"cannot fix, and every run of the reproduction writes there; {run} has no whole checkpoint; once that is "
        "fixed, the same command with --name rep resumes the reproduction: runs done are kept, unfinished ones "
        "continue from their last whole checkpoint"), lines[-1]
    out = ran.stdout.splitlines()
    assert f"run {run} started" in out and not [line for line in out if " failed " in line and "runs:" not in line], \
        ran.stdout[-2000:]  # the run's start, and no failure line of its own (the job's is the last)


@pytest.mark.ray
@pytest.mark.subprocess
def test_a_full_disk_ends_a_sweep_in_one_line_without_tunes_retries(shapes_dir, tmp_path):
    """A 1-trial sweep, its trial in its Tune actor, on an 8 MB tmpfs: its first checkpoint
    meets ENOSPC; Tune would restore the trial --max-failures 2 times. One attempt, one line."""
    scenario = TmpfsScenario(tmp_path / "storage", "8m", tmp_path / "out")
    attempts = tmp_path / "attempts"
    scenario.yolor_ray("sweep", "tune", _fault_config(tmp_path), "--data", shapes_dir, "--small", "--image-size", 64,
                       "--epochs", 1, "--search", "grid", "--placements", "fpn", "--no-early-stopping", "--samples", 0,
                       "--storage", scenario.mount, "--name", "sw", "--max-failures", 2,
                       env=dict(YOLOR_TEST_ATTEMPTS=attempts, PYTHONPATH=env_with_test_modules()["PYTHONPATH"]))
    ran = scenario.run()["sweep"]
    assert ran.returncode == 1, ran.stdout[-2000:] + ran.stderr[-3000:]
    (attempt,) = attempts.read_text().splitlines()
    trial = attempt.rsplit("-", 1)[0]  # a trial's run is named by its trial id
    assert "Traceback" not in ran.stderr and "TuneError" not in ran.stderr, ran.stderr[-3000:]
    lines = ran.stderr.strip().splitlines()  # our log lines (the sweep's space below its first), then the job's
    assert [line for line in lines[:-1] if not line.startswith(("[yolor-ray] ", "  "))] == [], ran.stderr[-3000:]
    assert not [line for line in lines[:-1] if "ENOSPC" in line], ran.stderr[-3000:]
    assert lines[-1] == (
        f"yolor-ray: training failed: sweep '{scenario.mount}/sw' stopped: its trial {trial} met a storage fault: a "
        f"write to '{scenario.mount}/sw/runs' failed with ENOSPC: No space left on device, which retrying cannot fix, "
        f"and every trial of the sweep writes there; {trial} has no whole checkpoint; once that is fixed, the same "
        "command with --name sw resumes the sweep: trials done are kept, unfinished ones continue from their last "
        "whole checkpoint"), lines[-1]
