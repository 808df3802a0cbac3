"""``yolor-ray table``: the reference-style AP table of stored runs, sweeps and reproductions."""
from __future__ import annotations

import argparse

from yolor_ray.errors import UserError
from yolor_ray.layout import RESULTS_FILE

HELP = "the reference-style AP table of stored runs and sweeps"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("path", help="a results folder, a run or a sweep; local or s3://bucket/prefix")
    parser.add_argument("--s3-endpoint", metavar="URL", help="custom S3 endpoint (default: AWS_ENDPOINT_URL, else "
                        "AWS)")


def run(args: argparse.Namespace) -> int:
    """The reference-style table of the runs under a path; a reproduction's own table with its noise."""
    from yolor_ray.table import (  # deferred: boto3
        format_confirmation,
        format_reproduction,
        load_confirmations,
        load_records,
        load_reproductions,
        outside_reproductions,
        reference_table,
    )

    records = load_records(args.path, args.s3_endpoint)
    if not records:
        raise UserError(f"no {RESULTS_FILE} under {args.path!r}: point it at a results folder, a run or a sweep")
    reproductions = load_reproductions(args.path, args.s3_endpoint)
    for where, reproduction in reproductions:
        print(f"<!-- {where} -->\n" + format_reproduction(reproduction))
    single = outside_reproductions(records, [where for where, _ in reproductions])
    if single:
        print(reference_table(single).markdown)
    for where, confirmation in load_confirmations(args.path, args.s3_endpoint):
        print("\n" + "\n".join(format_confirmation(confirmation, title=f"{where}: confirmation")))
    return 0
