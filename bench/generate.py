"""Generate a large, realistic pipeline file for benchmarks: N tasks in a layered random DAG."""

from __future__ import annotations

import random
import sys

import yaml


def pipeline(tasks: int, seed: int = 1) -> dict:
    rng = random.Random(seed)
    out = []
    for i in range(tasks):
        earlier = range(max(0, i - 50), i)
        deps = sorted(rng.sample(earlier, k=min(len(earlier), rng.randint(0, 3))))
        gpu = rng.random() < 0.2
        out.append(
            {
                "name": f"task-{i:04d}",
                "description": f"Step {i} of the generated pipeline",
                "type": "custom",
                "dependencies": [f"task-{d:04d}" for d in deps],
                "skip": False,
                "continue_on_failure": rng.random() < 0.05,
                "cluster_mode": "single-node",
                "cluster_size": 1,
                "module_uri": "",
                "command": f"python3 main.py --step {i} --input ${{PIPELINE_INPUT1:-/pipeline/input1}}",
                "environment": {
                    "project": "default",
                    "scaling-group": "nvidia-H100" if gpu else "default",
                    "image": (
                        "cr.backend.ai/cloud/ngc-pytorch:24.09-pytorch2.5-py310-cuda12.6"
                        if gpu
                        else "cr.backend.ai/multiarch/python:3.10-ubuntu20.04"
                    ),
                    "envs": {"STEP": str(i), "API_TOKEN": "${{ secrets.API_TOKEN }}"},
                },
                "resources": {
                    "cpu": rng.choice([1, 2, 4, 8]),
                    "mem": rng.choice(["512m", "4g", "16g"]),
                    **({"cuda.shares": rng.choice([0.5, 1, "2"])} if gpu else {}),
                },
                "resource_opts": {"shmem": "256m"},
                "mounts": ["datasets:data"],
                "retry": {"max_attempts": 2, "delay": 5},
                "timeout": "30m",
            }
        )
    return {
        "version": "26.4.4",
        "name": f"generated-{tasks}",
        "description": "A generated pipeline for benchmarks",
        "ownership": {"domain": "default", "scope": "user"},
        "environment": {"envs": {"SEED": "1"}},
        "params": [],
        "on": {"push": {"branches": ["main"], "paths": ["pipelines/**", "tasks/**"]}},
        "tasks": out,
    }


if __name__ == "__main__":
    sys.stdout.write(yaml.safe_dump(pipeline(int(sys.argv[1]) if len(sys.argv) > 1 else 1000), sort_keys=False))
