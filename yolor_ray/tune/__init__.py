"""Ray Tune sweeps over implicit variants: the search space (``space``, read by ``space_parse``,
a variant made a run's settings by ``variant``), one trial (``trial``), the sweep's driver
(``sweep``, with ``checks``, ``tuner``, ``stopped`` and ``describe``), its confirmation and its
leaderboard. Training (``yolor_ray.train``) never imports this package."""
