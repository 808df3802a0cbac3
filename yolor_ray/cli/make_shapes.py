"""``yolor-ray make-shapes``: the seeded synthetic COCO set of shapes."""
from __future__ import annotations

import argparse

HELP = "generate a seeded synthetic COCO dataset of shapes"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("dir", help="output folder")
    parser.add_argument("--images", type=int, default=256, help="training images (default 256)")
    parser.add_argument("--val-images", type=int, help="validation images (default max(16, images/4))")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument("--size", type=int, default=256, help="image side in pixels (default 256)")
    parser.add_argument("--overwrite", action="store_true", help="replace DIR if it holds anything")


def run(args: argparse.Namespace) -> int:
    from yolor_ray.data.shapes import ShapesSpec, make_shapes  # deferred: numpy, PIL

    num_val = args.val_images if args.val_images is not None else max(16, args.images // 4)
    spec = ShapesSpec(num_train=args.images, num_val=num_val, seed=args.seed, image_size=args.size)
    out = make_shapes(args.dir, spec, overwrite=args.overwrite)
    print(f"wrote {spec.num_train} train + {spec.num_val} val images ({spec.image_size}px, seed {spec.seed}) to {out}")
    return 0
