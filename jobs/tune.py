"""Sweep implicit variants with Ray Tune; the entrypoint for ``ray job submit``.

Each trial is a TorchTrainer with --num-workers workers; ASHA stops weak trials
after each rung. On a cluster (1 GPU per trial, 16 trials, results in S3)::

    ray job submit --address http://127.0.0.1:8265 --working-dir . -- \
        python jobs/tune.py configs/baseline/atss_r50_fpn_1x_coco.py --space configs/sweeps/placements.yaml \
        --num-workers 1 --gpu --epochs 12 --trials 16 --storage s3://my-bucket/sweeps --name atss-placements

Re-submitting the same command with the same --name resumes the sweep.
Same arguments as ``yolor-ray tune`` (``python jobs/tune.py --help``).
"""
import argparse
import sys

from yolor_ray.cli import run_command, tune

if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    tune.add_arguments(parser)
    sys.exit(run_command(tune.run, parser.parse_args()))
