"""Train one MMDetection config with Ray Train; the entrypoint for ``ray job submit``.

Launch on a cluster (8 GPU workers, the reference table's 8 x 2 images = batch 16)::

    ray job submit --address http://127.0.0.1:8265 --working-dir . -- \
        python jobs/train.py configs/baseline/atss_r50_fpn_1x_coco.py --num-workers 8 --gpu \
        --storage /shared/results

Learning rate: MMDetection's configs are tuned for a total batch of 16 (8 GPUs x 2). With
another total batch (workers x --batch-size) the LR is scaled linearly, lr = base_lr *
total_batch / 16 (MMEngine's ``auto_scale_lr``, on for every run; ``--dry-run`` prints the LR
it trains with). The reference table's batch on 1, 2 or 4 GPUs: docs/cluster.md.

Same arguments as ``yolor-ray train`` (``python jobs/train.py --help``).
"""
import argparse
import sys

from yolor_ray.cli import run_command, train

if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    train.add_arguments(parser)
    sys.exit(run_command(train.run, parser.parse_args()))
