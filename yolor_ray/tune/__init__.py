"""Ray Tune sweeps over implicit variants: the search space, one trial, the sweep's
driver and its leaderboard. Training (``yolor_ray.train``) never imports this package."""
