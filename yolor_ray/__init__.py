"""yolor-ray: YOLOR implicit knowledge on MMDetection detectors, trained with Ray.

Importing the package registers its MMEngine components (``registry``: the CPU DDP
wrapper, the Ray report hook, the allow-listed checkpoint loader, the YOLOR optim-wrapper
constructor, the bf16 optim wrapper, the image loader that skips unreadable images;
``implicit``: the ``type='YOLOR'`` model builder), so configs can use
``custom_imports = dict(imports=['yolor_ray'])``.
"""
__version__ = "0.1.0"

from yolor_ray import implicit, registry  # noqa: E402,F401  (registrations)
