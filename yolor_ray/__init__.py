"""yolor-ray: YOLOR implicit knowledge on MMDetection detectors, trained with Ray.

Importing the package imports nothing else: no torch, no registrations. Configs name
``yolor_ray.registrations`` in ``custom_imports`` to make our MMEngine / mmdet types known.

The layers, top to bottom; a module imports only from layers below its own (``.importlinter``
says the same to ``make lint``), and each module's docstring says what it is for:

* ``cli``: the ``yolor-ray`` command, one module per command;
* ``reproduce``: the reference table again, its rows x baseline/YOLOR x seeds as paired runs;
* ``tune``: sweeps (training never imports them, so a run behaves the same alone and as a trial);
* ``paired``: independent runs through one Tune scheduler (in their Tune actors or as TorchTrainer
  runs), and arms x seeds of them compared in pairs: a sweep's trials and ``--confirm``, a reproduction;
* ``train``: runs, from the checks on the driver to the worker function and what a run leaves;
  every run (``train``, a sweep's trial, a confirmation's or a reproduction's) is prepared by
  ``train.prepare`` (``train.run_config`` makes its config, ``train.checks`` checks it);
* ``deploy``, ``table``, ``cluster``, ``pull``: tools on trained files, stored runs and cluster files;
* ``models``: the one way a model is built; ``registrations``: everything registered, in one place;
* ``engine``: what runs inside a worker beside MMEngine's Runner;
* ``config``: MMDetection configs loaded and adapted to a run;
* ``implicit``: the model side of YOLOR, on a bare ``nn.Module`` (no configs, Ray or files);
* ``names``: the one check of a ``--name`` (train, tune, reproduce) and the default name;
* ``data`` (``data.coco``: the checks of a COCO folder; ``data.shapes``: the seeded synthetic set),
  ``storage``, ``records``, ``metrics``, ``layout``, ``noise``, ``resolution``, ``reference``: light (no
  torch), what a run reads and writes, and the statistics of paired seeds;
* ``errors``: ``UserError`` (one line, exit 2) and ``RunFailedError`` (one line, exit 1).

What the autoscaler, ``--help``, ``table`` and ``cluster check`` load imports no torch.
"""
__version__ = "0.2.0"
