"""Data-pipeline steps: training goes on past an image it cannot read."""
from __future__ import annotations

import logging

from mmcv.transforms import LoadImageFromFile
from mmengine.logging import print_log


class LoadImageOrSkip(LoadImageFromFile):
    """``LoadImageFromFile`` that gives None for an image it cannot read, so a training
    dataset draws another (MMEngine's BaseDataset refetches); each skip is logged with
    the count so far in this data-loading process."""

    skipped = 0

    def transform(self, results):
        try:
            return super().transform(results)
        except Exception as err:  # unreadable, truncated, or not an image
            LoadImageOrSkip.skipped += 1
            print_log(f"skipped unreadable image {results.get('img_path')!r} ({type(err).__name__}: {err}); "
                      f"{LoadImageOrSkip.skipped} skipped so far in this process", logger="current",
                      level=logging.WARNING)
            return None
