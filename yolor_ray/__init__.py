"""yolor-ray: YOLOR implicit knowledge on MMDetection detectors, trained with Ray.

Importing the package imports nothing else: no torch, no registrations. Configs name
``yolor_ray.registrations`` in ``custom_imports`` to make our MMEngine / mmdet types
known (README, "Layout" says which module does what).
"""
__version__ = "0.2.0"
