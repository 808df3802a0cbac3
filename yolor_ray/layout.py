"""Every file name of a run, a sweep and a deploy folder, in one place.

A run, ``STORAGE/NAME/``::

    run.json            written before training: the config and scale the name belongs to
    config.py           the merged config, written before training
    checkpoint_*/       Ray Train's checkpoints: checkpoint.pth + run_state.json each
    logs/TIMESTAMP/     rank 0's MMEngine log folder: its text log, output.log (everything the
                        worker printed, library warnings included), vis_data/ (scalars.json,
                        TensorBoard's events.out.tfevents.*, offline W&B runs)
    logs/rankN/TIMESTAMP/  the same for rank N (its text log and output.log)
    logs/driver_warnings.log  the driver's library warnings (without --verbose)
    curves.png, samples.png
    results.json        written last: a run that has it is complete

A sweep, ``STORAGE/NAME/``: Tune's experiment, ``sweep.json``, ``runs/TRIAL/`` (one run
each, as above), ``leaderboard.json`` (written last), ``leaderboard.md``, ``trials.png``,
``best_config.py``; with ``--confirm``, ``confirm/ARM-seedN/`` (runs),
``confirmation.json`` and ``confirmation.png`` (its forest plot).

A sweep's confirmation and a reproduction train their runs through one Tune experiment
(``yolor_ray.paired``): runs in their Tune actors have it in their runs folder (each trial's
folder its run's); TorchTrainer runs have it in ``tune/`` beside it.

A reproduction of the reference table (``yolor-ray reproduce``), ``STORAGE/NAME/``:
``reproduce_plan.json`` (written first: the rows, seeds and settings the name belongs to),
``runs/ROW-ARM-seedN/`` (one run each, as above; ARM is baseline or yolor), ``reproduce.json``,
``reproduce.md`` and ``reproduce.png`` (its forest plot; written after every pass, failed runs marked).

``yolor-ray fuse`` writes ``deploy.pth``, ``deploy.py`` and ``fuse_report.json`` into its output folder.
"""

# A run
RUN_FILE = "run.json"
RUN_CONFIG = "config.py"
RESULTS_FILE = "results.json"
CURVES_PNG = "curves.png"
SAMPLES_PNG = "samples.png"
LOGS_DIR = "logs"
DRIVER_WARNINGS = "driver_warnings.log"  # in logs/: the driver's library warnings (without --verbose)
WORKER_OUTPUT = "output.log"  # in each rank's log folder: what the worker printed
CHECKPOINT_DIR_PREFIX = "checkpoint_"  # Ray Train names its checkpoint folders so
CHECKPOINT_FILE = "checkpoint.pth"  # in each checkpoint folder: MMEngine's checkpoint
RUN_STATE_FILE = "run_state.json"  # beside it: metrics per epoch so far, restarts, nodes

# A sweep
SWEEP_FILE = "sweep.json"
RUNS_DIR = "runs"
LEADERBOARD_FILE = "leaderboard.json"
LEADERBOARD_MD = "leaderboard.md"
TRIALS_PNG = "trials.png"
BEST_CONFIG = "best_config.py"
CONFIRM_DIR = "confirm"  # --confirm: a run per arm and seed, confirm/ARM-seedN
CONFIRMATION_FILE = "confirmation.json"
CONFIRMATION_PNG = "confirmation.png"  # the forest plot of its comparisons
TUNE_DIR = "tune"  # Tune's experiment of a confirmation's or a reproduction's TorchTrainer runs

# A reproduction of the reference table
REPRODUCE_PLAN = "reproduce_plan.json"
REPRODUCTION_FILE = "reproduce.json"
REPRODUCTION_MD = "reproduce.md"
REPRODUCTION_PNG = "reproduce.png"  # the forest plot of its rows and metrics

# yolor-ray fuse
DEPLOY_CHECKPOINT = "deploy.pth"
DEPLOY_CONFIG = "deploy.py"
FUSE_REPORT = "fuse_report.json"
