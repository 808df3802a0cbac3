"""MMDetection configs, on the driver before Ray spends any time: ``load`` reads a config file
and the user's ``--cfg-options``, ``parts`` reads what a config says, ``edits`` adapts it to a
run (dataset, small scale, epochs, batch, precision, trackers). Each raises
:class:`yolor_ray.config.load.ConfigError` naming what was wrong, what was received and what is
valid. The adapted config is plain MMEngine config: it is dumped next to the results and can be
run again with MMEngine's own tools.
"""
