"""Ray Train's per-worker function: one MMEngine Runner in each worker process.

Ray has already initialised the process group, so the Runner is built with
``launcher='pytorch'`` and does not init again; MMEngine wraps DDP and shards the data
itself (no ``prepare_model``). Checkpoints go to Ray's storage through the report hook.
"""
from __future__ import annotations

import logging
import shutil
import tempfile
import traceback
from pathlib import Path

import ray.train
import torch
from mmengine.config import Config
from mmengine.utils import import_modules_from_strings

import yolor_ray.registrations  # noqa: F401  (registries are per process)
from yolor_ray import config as cfglib
from yolor_ray.engine.checkpoint import TRUSTED_PREFIX, fetch_checkpoint
from yolor_ray.engine.run_logs import upload_logs
from yolor_ray.engine.runner import WorkerRunner
from yolor_ray.engine.worker_output import copy_output_to
from yolor_ray.layout import CHECKPOINT_FILE, RUN_STATE_FILE, WORKER_OUTPUT
from yolor_ray.records import RunState
from yolor_ray.train.nodes import gather_topology, raise_if_data_differs, spans_nodes

log = logging.getLogger("yolor_ray")


def _fetch_load_from(uri: str, work_dir: str, s3_endpoint: str | None) -> str:
    """``load_from`` through our allow-listed loader (and our own s3:// download)."""
    return TRUSTED_PREFIX + str(fetch_checkpoint(uri, work_dir, s3_endpoint).resolve())


def _sync_buffers_hook(cfg: Config) -> list[dict]:
    """BN statistics averaged over ranks after each training epoch, before validation and the
    checkpoint: the AP reported is the AP of the model stored (not each rank's own BN)."""
    if any(h.get("type") == "SyncBuffersHook" for h in cfg.get("custom_hooks", [])):
        return []
    return [dict(type="SyncBuffersHook")]


def train_worker(config: dict) -> None:
    """Ray Train's per-worker function: one MMEngine Runner in this process. What the worker
    prints (library warnings, evaluation tables) is also copied into its log folder."""
    rank = ray.train.get_context().get_world_rank()
    work_dir = tempfile.mkdtemp(prefix=f"yolor-ray-rank{rank}-")
    try:
        with copy_output_to(Path(work_dir) / WORKER_OUTPUT) as output_file:
            _train(config, work_dir, output_file)
    finally:
        shutil.rmtree(work_dir, ignore_errors=True)


def _train(config: dict, work_dir: str, output_file: Path) -> None:
    ctx = ray.train.get_context()
    if config["data_check"] is not None:
        # A node that joined after the driver's check (autoscaling) is checked here.
        raise_if_data_differs(config["data_check"])
    if config["use_gpu"]:
        # MMEngine only calls set_device when it initialises the group itself.
        torch.cuda.set_device(ctx.get_local_rank())
    else:
        torch.set_num_threads(config["threads"])
    cfg = Config(config["cfg"])
    if cfg.get("custom_imports"):
        # Config.fromfile imported them on the driver; a config rebuilt from a dict does not.
        import_modules_from_strings(**cfg.custom_imports)
    topology = gather_topology()
    if spans_nodes(topology):
        # Each node has its own disk: results are gathered through the process group.
        changed = cfglib.collect_through_process_group(cfg)
        if changed and ctx.get_world_rank() == 0:
            log.info("ranks on %d nodes: %s collect results through the process group",
                     len({r["node_id"] for r in topology}), ", ".join(changed))
    cfg.work_dir = work_dir
    cfg.launcher = "pytorch"
    cfg.model_wrapper_cfg = dict(type="CPUFriendlyDDP", broadcast_buffers=False,
                                 find_unused_parameters=cfg.get("find_unused_parameters", False))
    cfg.default_hooks.checkpoint = None  # checkpoints go to Ray's storage through the report hook
    report_hook = dict(type="RayTrainReportHook", checkpoint_interval=config["checkpoint_interval"],
                       topology=topology)
    checkpoint = ray.train.get_checkpoint()
    if checkpoint is not None:
        with checkpoint.as_directory() as ckpt_dir:
            shutil.copy(Path(ckpt_dir) / CHECKPOINT_FILE, work_dir)
            state = RunState.from_json((Path(ckpt_dir) / RUN_STATE_FILE).read_text())
        cfg.load_from = TRUSTED_PREFIX + str(Path(work_dir) / CHECKPOINT_FILE)
        cfg.resume = True
        report_hook.update(history=state.history, restarts=state.restarts + 1)
    elif cfg.get("load_from"):
        cfg.load_from = _fetch_load_from(cfg.load_from, work_dir, config.get("s3_endpoint"))
    storage = dict(uri=config["storage"].uri, endpoint=config["storage"].endpoint)
    cfg.custom_hooks = [*cfg.get("custom_hooks", []), *_sync_buffers_hook(cfg), report_hook,
                        dict(type="StorageLogHook", storage=storage, run_name=config["run_name"])]
    if ctx.get_world_rank() == 0 and config.get("trackers"):
        cfg.visualizer.vis_backends = [*cfg.visualizer.get("vis_backends", []), *config["trackers"]]
    runner = None
    try:
        runner = WorkerRunner.from_cfg(cfg)
        runner.train()
    except BaseException:
        if runner is not None:
            traceback.print_exc()  # into output.log too, on every rank
            runner.visualizer.close()  # after_run never came: flush TensorBoard, end tracker runs
        raise
    finally:  # upload_logs never raises, so a failure's own traceback stays
        if runner is not None:
            # Every rank, also when training failed (rank 0's are in storage every epoch too).
            upload_logs(runner.log_dir, config["storage"], config["run_name"], ctx.get_world_rank(),
                        output_file=output_file)
