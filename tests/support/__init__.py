"""What the tests share besides fixtures (those are in tests/conftest.py).

``tests/`` is on the path (pytest.ini's ``pythonpath``), so these are ``support.NAME``
everywhere: in tests, in the processes a test starts with :func:`support.runs.env_with_test_modules`
(a config's ``custom_imports=['support.rank_marker_hook']``), and in ``mp.spawn``'s children.
Importing this package imports nothing else: Ray workers import the hook modules by name.

* :mod:`.paths`: the repo and its configs;
* :mod:`.runs`: the ``yolor-ray`` CLI in a subprocess, a config with a user's hook, a run's logs;
* :mod:`.tiers`: the ``ray`` and ``subprocess`` markers and the guard that keeps them honest;
* :mod:`.net`: a free port, a TCP proxy that can be cut; :mod:`.s3`: the planted secret, keys;
* :mod:`.implicit`: small real mmdet models and synthetic batches;
* :mod:`.implicit_checks`: a train step and a fused copy compared on one detector (also ``make coverage``'s);
* :mod:`.fake_cluster`, :mod:`.two_nodes`: Ray clusters on this machine;
* :mod:`.wandb_records`: a W&B offline run file, read back;
* :mod:`.bn_probe_hook`, :mod:`.rank_marker_hook`: hooks that configs load by name.
"""
