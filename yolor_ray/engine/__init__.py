"""What runs inside a training worker, beside MMEngine's Runner: the hooks that report to
Ray Train and copy logs to storage, the DDP wrapper, YOLOR's optimizer recipe, the image
loader that skips unreadable images, checkpoint loading under an allow-list, MMEngine's
MLflow backend ending a run KILLED or FAILED when it ends early, and the project's COCO metric
(faster-coco-eval's COCOeval, APs also unrounded).

Nothing here is registered on import: ``yolor_ray.registrations`` does that.
"""
