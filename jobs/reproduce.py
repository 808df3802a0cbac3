"""Reproduce the reference table with Ray: its rows x baseline/YOLOR x seeds, each a training run,
then the table with paired 95% intervals and GPU-hours; the entrypoint for ``ray job submit``.

First the cost, nothing started (10 iterations of each row's configs timed on one GPU worker)::

    ray job submit --address http://127.0.0.1:8265 --working-dir . -- \\
        python jobs/reproduce.py --rows atss faster-rcnn --seeds 3 --num-workers 8 --gpu \\
        --storage s3://my-bucket/reproduce --name seed-table --dry-run --calibrate 10

Then the same command without ``--dry-run --calibrate 10``. Submitted again with the same
``--name`` it reuses the done runs, resumes the unfinished and retrains the failed.
Same arguments as ``yolor-ray reproduce`` (``python jobs/reproduce.py --help``); docs/reproduce.md.
"""
import argparse
import sys

from yolor_ray.cli import reproduce, run_command

if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    reproduce.add_arguments(parser)
    sys.exit(run_command(reproduce.run, parser.parse_args()))
