"""Datasets: ``coco`` checks a COCO-layout folder before training; ``shapes`` writes a
seeded synthetic one in that layout; ``synthetic_coco`` makes COCO-size annotations and detections
in memory (measuring and checking COCO evaluation). Import the module you need (nothing is re-exported)."""
