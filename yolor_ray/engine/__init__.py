"""What runs inside a training worker, beside MMEngine's Runner: the hooks that report to
Ray Train and copy logs to storage, the DDP wrapper, YOLOR's optimizer recipe, the image
loader that skips unreadable images, checkpoint loading under an allow-list, and MMEngine's
MLflow backend ending a run KILLED or FAILED when it ends early.

Nothing here is registered on import: ``yolor_ray.registrations`` does that.
"""
