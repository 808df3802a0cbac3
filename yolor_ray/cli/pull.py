"""``yolor-ray pull``: a run's or a sweep's folder copied from its storage to a local folder."""
from __future__ import annotations

import argparse

HELP = ("copy a run's or a sweep's folder from its storage (s3:// or local) to a local folder, e.g. for "
        "tensorboard --logdir")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("source", metavar="RUN_OR_SWEEP", help="the run or sweep folder, e.g. s3://bucket/prefix/NAME")
    parser.add_argument("dest", help="local folder (created; files already there are replaced)")
    parser.add_argument("--s3-endpoint", metavar="URL", help="custom S3 endpoint (default: AWS_ENDPOINT_URL, else "
                        "AWS)")


def run(args: argparse.Namespace) -> int:
    from yolor_ray.pull import pull  # deferred: boto3 for s3://

    pulled = pull(args.source, args.dest, args.s3_endpoint)
    print(f"pulled {pulled.kind} {pulled.source}: {pulled.files} files, {pulled.bytes / 1e6:.1f} MB -> {pulled.dest}\n"
          f"tensorboard --logdir {pulled.dest}")
    return 0
