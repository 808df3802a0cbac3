"""Independent training runs through one Tune scheduler, and arms x seeds of them compared
in pairs: the layer a sweep's trials and confirmation (``tune``) and a reproduction
(``reproduce``) stand on, over ``train``.

* :mod:`.capacity`: what one run asks of the cluster, and how many fit side by side.
* :mod:`.checkpoints`: the whole checkpoints a run left in its folder.
* :mod:`.trial`: one training run inside a Tune trial (in its Tune actor, or a TorchTrainer
  run), and :func:`~.trial.fit_independent_runs`, the FIFO Tuner of independent runs.
* :mod:`.plan`: arms x seeds planned as runs (one name each), done / unfinished / new.
* :mod:`.stages`: how many seeds each comparison runs: ``--seeds``, or seeds on demand to a
  resolution (Stein's two stages: the seeds beyond the pilot a second stage of the plan).
* :mod:`.launch`: the pending runs trained, a failed one recorded with its reason; a second
  stage's in one more pass.
* :mod:`.faults`: a storage fault in one run ends the whole job (a sweep, a confirmation, a
  reproduction) at once, in one line, without Tune's retries of that run.
* :mod:`.summary`: the runs' outcomes and the paired comparisons (typed parts of ``records``).
* :mod:`.run_lines`, :mod:`.progress`: the driver's lines of runs side by side (each run's start,
  epochs and end, a status line), printed by a Tune callback in place of Tune's own output.
"""
