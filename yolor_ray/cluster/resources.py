"""Every node type declares its resources (so the autoscaler plans offline), checked against
the vCPUs and GPUs of the AWS instance types we size for."""
from __future__ import annotations

import re

from yolor_ray.cluster.fields import instance_type, is_aws, node_types

# vCPUs and GPUs of the AWS instance types we size for (docs/cluster.md); others are not checked.
AWS_INSTANCES = {
    "m5.large": (2, 0), "m5.xlarge": (4, 0), "m5.2xlarge": (8, 0), "m5.4xlarge": (16, 0),
    "m6i.xlarge": (4, 0), "m6i.2xlarge": (8, 0), "m6i.4xlarge": (16, 0),
    "g4dn.xlarge": (4, 1), "g4dn.2xlarge": (8, 1), "g4dn.12xlarge": (48, 4), "g4dn.metal": (96, 8),
    "g5.xlarge": (4, 1), "g5.2xlarge": (8, 1), "g5.4xlarge": (16, 1), "g5.8xlarge": (32, 1),
    "g5.12xlarge": (48, 4), "g5.16xlarge": (64, 1), "g5.24xlarge": (96, 4), "g5.48xlarge": (192, 8),
    "g6.xlarge": (4, 1), "g6.12xlarge": (48, 4), "g6.48xlarge": (192, 8),
    "p3.2xlarge": (8, 1), "p3.8xlarge": (32, 4), "p3.16xlarge": (64, 8),
    "p4d.24xlarge": (96, 8), "p4de.24xlarge": (96, 8), "p5.48xlarge": (192, 8),
}
AWS_GPU_FAMILY = re.compile(r"^(p|g|gr)\d")  # every p*/g* instance family on AWS carries NVIDIA/AMD GPUs


def resource_problems(config: dict) -> list[str]:
    problems = []
    aws = is_aws(config)
    for name, spec in node_types(config).items():
        where = f"available_node_types.{name}.resources"
        resources = spec.get("resources")
        resources = resources if isinstance(resources, dict) else {}
        instance = instance_type(spec) if aws else None
        gpu_instance = bool(instance and AWS_GPU_FAMILY.match(instance))
        cpus, gpus = resources.get("CPU"), resources.get("GPU", 0)
        if not isinstance(cpus, int) or cpus < 0:
            problems.append(f"{where}.CPU: not declared; declare the node's CPUs, e.g. `resources: {{CPU: 8}}`, so "
                            "the autoscaler can plan without asking the cloud")
        if gpu_instance and (not isinstance(gpus, int) or gpus < 1):
            known = AWS_INSTANCES.get(instance, (None, None))[1]
            example = f"{{GPU: {known or 1}, CPU: {AWS_INSTANCES.get(instance, (4,))[0]}}}"
            problems.append(f"{where}.GPU: not declared for GPU instance type {instance}; declare it, e.g. "
                            f"`resources: {example}`, so the autoscaler can plan GPU runs offline")
        if instance in AWS_INSTANCES:
            known_cpus, known_gpus = AWS_INSTANCES[instance]
            if isinstance(gpus, int) and (gpus >= 1 or not gpu_instance) and gpus != known_gpus:
                problems.append(f"{where}.GPU: {gpus} declared, but {instance} has {known_gpus} GPU(s)")
            if isinstance(cpus, int) and cpus > known_cpus:
                problems.append(f"{where}.CPU: {cpus} declared, but {instance} has {known_cpus} vCPUs")
    return problems
