"""``python -m yolor_ray.cli ARGS``: the same as ``yolor-ray ARGS``."""
import sys

from yolor_ray.cli import main

if __name__ == "__main__":
    sys.exit(main())
