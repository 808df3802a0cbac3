"""The driver's builds of a run's parts (its model, its optimizer, its evaluators) without
MMEngine's INFO lines: its optimizer constructor logs every parameter's options at INFO
(``paramwise_options -- backbone.bn1.bias:weight_decay=0.0``, a hundred lines for FCOS), and
the driver builds them again for every arm it checks. A run's workers log them into its own
log files, where they belong; warnings still reach the driver's terminal."""
from __future__ import annotations

import logging
from contextlib import contextmanager
from typing import Iterator

from mmengine.logging import MMLogger


@contextmanager
def quiet_mmengine(level: int = logging.WARNING) -> Iterator[None]:
    """MMEngine's current logger (the one its ``print_log(logger='current')`` writes to) at
    ``level`` or above while inside, its own level again after."""
    logger = MMLogger.get_current_instance()
    saved = logger.level
    logger.setLevel(max(level, saved))
    try:
        yield
    finally:
        logger.setLevel(saved)
