"""yolor-ray: YOLOR implicit knowledge on MMDetection detectors, trained with Ray.

The heavy stack is pinned. mmcv 2.1.0 has no wheel for
torch 2.14 and is built from source by ``scripts/setup.sh``; install through
``make setup`` rather than a bare ``pip install .``.
"""
from setuptools import find_packages, setup

TRACKERS = ["mlflow-skinny>=3.13", "sqlalchemy>=2", "alembic>=1.13", "wandb>=0.19"]

setup(
    name="yolor-ray",
    version="0.2.0",
    description="YOLOR implicit knowledge on MMDetection detectors, trained and searched with Ray",
    python_requires=">=3.11,<3.12",
    packages=find_packages(include=["yolor_ray", "yolor_ray.*"]),
    install_requires=[
        "torch==2.14.1",
        "torchvision==0.29.1",
        "mmcv==2.1.0",
        "mmengine==0.10.7",
        "mmdet==3.3.0",
        "ray[default,train,tune]==2.60.0",
        "setuptools>=77.0.3,<82",  # mmengine/mmcv import pkg_resources
        "numpy>=1.26",
        "scipy>=1.10",  # t quantiles (noise, resolution); mmdet needs it too
        "pycocotools>=2.0.7",
        "faster-coco-eval>=1.8",  # validation's COCOeval (engine.coco_metric); pycocotools' stays the fallback
        "boto3>=1.34",
        "pyarrow>=15",
        "matplotlib>=3.8",
        "Pillow>=10",
        "PyYAML>=6",  # sweep search spaces
        "tensorboard>=2.16",  # MMEngine's TensorboardVisBackend (torch.utils.tensorboard); tensorboardX is not enough
    ],
    extras_require={
        "optuna": ["optuna>=4"],  # the sweeps' default searcher when installed (else random search)
        # --tracker mlflow|wandb. mlflow-skinny: the client and the SQL stores without the server,
        # whose pins would move pyarrow below what Ray's storage layer here is tested with.
        "trackers": TRACKERS,
        "test": ["pytest>=8", "pytest-timeout>=2.3", "moto[server]>=5", "optuna>=4", *TRACKERS,
                 "ruff==0.17.6", "import-linter==2.17"],  # make lint: pinned, so a new release cannot fail CI
    },
    entry_points={"console_scripts": ["yolor-ray=yolor_ray.cli:main"]},
)
