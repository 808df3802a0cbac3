"""The JSON records a run and a sweep leave, as typed dataclasses.

Every record is written with a ``schema`` number and read back through ``from_json``,
which also reads the records written before schemas existed (schema 0: the same keys,
some of them absent). Readers use the fields, never string keys of the raw JSON.
File names are in :mod:`yolor_ray.layout`.

* :mod:`.base`: :class:`Part` and :class:`Record`, what every record is.
* :mod:`.runs`: a training run's (run.json, run_state.json, results.json).
* :mod:`.paired`: runs compared in pairs (a run's outcome, a paired difference, a confirmation).
* :mod:`.sweep`: a sweep's (sweep.json, leaderboard.json).
* :mod:`.reproduce`: a reproduction's (reproduce_plan.json, reproduce.json).
"""
from yolor_ray.records.base import Part, Record, RecordError
from yolor_ray.records.paired import (
    CAPPED,
    INCOMPLETE,
    PILOT_INCOMPLETE,
    RESOLVED,
    ArmValues,
    Confirmation,
    ConfirmedVariant,
    PairedMetric,
    PairedRuns,
    RunOutcome,
    SeedsReached,
)
from yolor_ray.records.reproduce import ReproducedMetric, ReproducedRow, ReproduceManifest, Reproduction, RowHours
from yolor_ray.records.runs import EPOCH_TIME, RunManifest, RunResults, RunState
from yolor_ray.records.sweep import Leaderboard, LeaderboardEntry, SweepManifest

__all__ = ["CAPPED", "EPOCH_TIME", "INCOMPLETE", "PILOT_INCOMPLETE", "RESOLVED", "ArmValues", "Confirmation",
           "ConfirmedVariant", "Leaderboard", "LeaderboardEntry", "PairedMetric", "PairedRuns", "Part", "Record",
           "RecordError", "ReproduceManifest", "ReproducedMetric", "ReproducedRow", "Reproduction", "RowHours",
           "RunManifest", "RunOutcome", "RunResults", "RunState", "SeedsReached", "SweepManifest"]
