"""The planted secret and an S3 bucket's keys (the endpoint itself: conftest's ``s3_endpoint``)."""
from __future__ import annotations

# A recognisable secret: tests search every file a run writes for it.
PLANTED_SECRET = "yolorSECRETplanted0123456789abcdefXYZ"


def s3_keys(client, bucket_name: str) -> list[str]:
    pages = client.get_paginator("list_objects_v2").paginate(Bucket=bucket_name)
    return sorted(obj["Key"] for page in pages for obj in page.get("Contents", []))
