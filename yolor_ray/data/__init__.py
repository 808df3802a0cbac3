"""Datasets: ``coco`` checks a COCO-layout folder before training; ``shapes`` writes a
seeded synthetic one in that layout. Import the module you need (nothing is re-exported)."""
