"""Where runs land: a local folder (the default) or ``s3://bucket/prefix``.

Ray Train writes its checkpoints and run files through its own storage layer
(``RunConfig(storage_path, storage_filesystem)``); our own small files
(``results.json``, curves, samples, the run's config) go through this module, with
boto3 for S3. Credentials come from the standard AWS chain (environment, shared
files, instance profile) and are never read, logged or written by us.

Our files are written whole or not at all (a temporary file and a rename; one S3 PUT).
A write that fails for good -- a full disk, a quota, a read-only or forbidden folder, a
denied or deleted bucket -- is told apart from one worth retrying by :func:`storage_fault`;
an S3 call refused before anything is read or written is one line by :func:`s3_access_error`.
"""
from __future__ import annotations

import errno
import os
import re
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Protocol, Sequence
from urllib.parse import urlparse

from yolor_ray import paths
from yolor_ray.errors import RunFailedError, UserError

BUCKET_NAME = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
# A write that fails so fails again: full, over quota, read-only, not allowed.
FATAL_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM})
# S3's answers of the same kind (botocore's error codes); "403": an endpoint that answers
# a denied request without a body (moto does).
FATAL_S3_CODES = frozenset({"AccessDenied", "AllAccessDisabled", "NoSuchBucket", "InvalidAccessKeyId", "403"})
# pyarrow's S3 filesystem (Ray's uploads) names them in its OSError's text: "AWS Error NO_SUCH_BUCKET during ...".
_PYARROW_S3_CODES = {"ACCESS_DENIED": "AccessDenied", "NO_SUCH_BUCKET": "NoSuchBucket"}
_PYARROW_S3_ERROR = re.compile(r"AWS Error ([A-Z_]+) during \w+ operation: ([^(\n]*)")


class StorageError(UserError, ValueError):
    """Storage that is malformed, unreachable, or that we may not write to."""


class StorageFaultError(RunFailedError):
    """A write to storage that retrying cannot fix (:func:`storage_fault`), raised where the
    write failed (a worker's checkpoint upload, the driver's files): the run ends at once.
    ``where``: the storage; ``fault``: what :func:`storage_fault` said of the error;
    ``message``: the one line a user reads, where the raiser words it (a run's, a job's)."""

    def __init__(self, where: str, fault: str, message: str | None = None):
        # The args pickle it: a worker's or a Tune trial's error reaches the driver.
        super().__init__(where, fault, message)
        self.where = where
        self.fault = fault
        self.message = message

    def __str__(self) -> str:
        return self.message or f"a write to {self.where} failed: {self.fault}"


def storage_fault(err: BaseException) -> str | None:
    """What makes ``err`` (or an error it was raised from) a storage fault that retrying cannot
    fix, as ``'ENOSPC: No space left on device'`` or ``'NoSuchBucket: ...'``; None for any
    other error: a reset connection, S3 throttling, a lost worker are worth retrying."""
    for cause in _causes(err):
        if isinstance(cause, StorageFaultError):
            return cause.fault
        if isinstance(cause, OSError) and cause.errno in FATAL_ERRNOS:
            return f"{errno.errorcode[cause.errno]}: {os.strerror(cause.errno)}"
        code, message = _s3_error_code(cause)
        if code in FATAL_S3_CODES:
            return f"{code}: {message}" if message else code
    return None


def _causes(err: BaseException) -> Iterator[BaseException]:
    """``err`` and what it was raised from or during, each once."""
    seen: set[int] = set()
    while err is not None and id(err) not in seen:
        seen.add(id(err))
        yield err
        err = err.__cause__ or err.__context__


def _s3_error_code(err: BaseException) -> tuple[str | None, str]:
    """The S3 error code of a botocore ``ClientError`` (its response) or of pyarrow's S3 OSError (its text)."""
    response = getattr(err, "response", None)
    if isinstance(response, dict) and isinstance(response.get("Error"), dict):
        error = response["Error"]
        return str(error.get("Code", "")) or None, str(error.get("Message", "")).strip()
    if isinstance(err, OSError):
        found = _PYARROW_S3_ERROR.search(str(err))
        if found:
            return _PYARROW_S3_CODES.get(found.group(1), found.group(1)), found.group(2).strip()
    return None, ""


def s3_access_error(err: BaseException, bucket: str, endpoint: str | None) -> StorageError | None:
    """The one line for an S3 call that failed before anything could be read or written (no
    credentials, an endpoint that does not answer, a missing bucket, access denied, another S3
    error), as ``train``, ``table``, ``pull`` and a sweep report it; None for an error that is
    not botocore's."""
    from botocore.exceptions import (  # deferred with boto3
        ClientError,
        ConnectTimeoutError,
        EndpointConnectionError,
        NoCredentialsError,
        ReadTimeoutError,
    )

    where = f"s3://{bucket}" + (f" at {endpoint}" if endpoint else "")
    if isinstance(err, NoCredentialsError):
        return StorageError(f"no AWS credentials found for {where}: set them in the standard AWS chain "
                            "(AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, ~/.aws, or an instance profile)")
    if isinstance(err, (EndpointConnectionError, ConnectTimeoutError, ReadTimeoutError)):
        return StorageError(f"cannot reach the S3 endpoint for {where}: {type(err).__name__}")
    if isinstance(err, ClientError):
        code = str(err.response.get("Error", {}).get("Code", ""))
        if code in ("404", "NoSuchBucket"):
            return StorageError(f"bucket {bucket!r} does not exist ({where}); create it first")
        if code in ("403", "InvalidAccessKeyId", "SignatureDoesNotMatch", "AccessDenied"):
            return StorageError(f"access to {where} denied ({code}): check the AWS credentials in use")
        return StorageError(f"S3 error for {where}: {code or err}")
    return None


@dataclass(frozen=True)
class StorageSpec:
    """``uri``: a local folder or ``s3://bucket[/prefix]``; ``endpoint``: a custom S3
    endpoint such as ``http://127.0.0.1:9000`` (default: ``AWS_ENDPOINT_URL``, else AWS)."""

    uri: str
    endpoint: str | None = None

    def __post_init__(self):
        if not self.uri:
            raise StorageError("storage must be a folder or s3://bucket/prefix, got an empty string")
        scheme = self.uri.split("://", 1)[0] if "://" in self.uri else ""
        if scheme and scheme != "s3":
            raise StorageError(f"unsupported storage {self.uri!r}: valid are a local folder or s3://bucket/prefix")
        if self.is_s3:
            parsed = urlparse(self.uri)
            if parsed.query or parsed.fragment:
                raise StorageError(f"malformed storage URI {self.uri!r}: no query or fragment allowed "
                                   "(give a custom endpoint with --s3-endpoint)")
            if not BUCKET_NAME.match(parsed.netloc or ""):
                raise StorageError(f"malformed storage URI {self.uri!r}: {parsed.netloc!r} is not a valid bucket name "
                                   "(3-63 lowercase letters, digits, '.' and '-')")
            if "//" in parsed.path:
                raise StorageError(f"malformed storage URI {self.uri!r}: empty path segment")
        endpoint = self.endpoint
        if endpoint is not None:
            parsed = urlparse(endpoint)
            if parsed.scheme not in ("http", "https") or not parsed.hostname or parsed.path not in ("", "/"):
                raise StorageError(f"malformed S3 endpoint {endpoint!r}: expected http(s)://host[:port]")

    @property
    def is_s3(self) -> bool:
        return self.uri.startswith("s3://")

    @property
    def bucket(self) -> str:
        return urlparse(self.uri).netloc

    @property
    def prefix(self) -> str:
        return urlparse(self.uri).path.strip("/")

    def resolved_endpoint(self) -> str | None:
        return self.endpoint or os.environ.get("AWS_ENDPOINT_URL") or None


class Storage(Protocol):
    """What a run, a sweep and the tools read and write through: a local folder
    (:class:`LocalStorage`) or an S3 prefix (:class:`S3Storage`). ``parts`` are path
    components under the storage's root."""

    spec: StorageSpec

    def ray_storage(self) -> tuple[str, Any]:
        """Ray's ``storage_path`` and ``storage_filesystem`` (None for a local folder)."""

    def portable_spec(self) -> StorageSpec:
        """This storage as another process (a worker) opens it."""

    def location(self, *parts: str) -> str: ...
    def check(self) -> None: ...
    def exists(self, *parts: str) -> bool: ...
    def read_text(self, *parts: str) -> str | None: ...
    def read_bytes(self, *parts: str) -> bytes: ...
    def write_bytes(self, data: bytes, *parts: str) -> None: ...
    def size(self, *parts: str) -> int | None: ...
    def list_dirs(self, *parts: str) -> list[str]: ...
    def files(self, *parts: str) -> list[tuple[str, ...]]: ...
    def find(self, file_name: str) -> list[tuple[str, ...]]: ...
    def delete_tree(self, *parts: str) -> None: ...
    def rename(self, old: Sequence[str], new: Sequence[str]) -> None: ...


def open_storage(spec: StorageSpec) -> Storage:
    return S3Storage(spec) if spec.is_s3 else LocalStorage(spec)


class LocalStorage:
    """A folder on this machine (or a shared filesystem mounted on every node)."""

    def __init__(self, spec: StorageSpec):
        self.root = Path(spec.uri).expanduser().resolve()

    def ray_storage(self) -> tuple[str, None]:
        return str(self.root), None

    def portable_spec(self) -> StorageSpec:
        """This storage for another process (a worker's working directory is not ours)."""
        return StorageSpec(str(self.root))

    def location(self, *parts: str) -> str:
        return str(self.root.joinpath(*parts))

    def check(self) -> None:
        """A folder that is there and writable, or can be made (its missing parents too)."""
        paths.output_folder(self.root, "storage folder", StorageError)

    def exists(self, *parts: str) -> bool:
        return self.root.joinpath(*parts).exists()

    def read_text(self, *parts: str) -> str | None:
        path = self.root.joinpath(*parts)
        return path.read_text() if path.is_file() else None

    def list_dirs(self, *parts: str) -> list[str]:
        folder = self.root.joinpath(*parts)
        return sorted(p.name for p in folder.iterdir() if p.is_dir()) if folder.is_dir() else []

    def find(self, file_name: str) -> list[tuple[str, ...]]:
        """The folders (as parts under the root) that hold a file of this name, at any depth."""
        if not self.root.is_dir():
            return []
        return sorted(p.parent.relative_to(self.root).parts for p in self.root.rglob(file_name) if p.is_file())

    def delete_tree(self, *parts: str) -> None:
        shutil.rmtree(self.root.joinpath(*parts), ignore_errors=True)

    def files(self, *parts: str) -> list[tuple[str, ...]]:
        """Every file under a folder, as parts relative to it."""
        folder = self.root.joinpath(*parts)
        return sorted(p.relative_to(folder).parts for p in folder.rglob("*") if p.is_file()) if folder.is_dir() else []

    def read_bytes(self, *parts: str) -> bytes:
        return self.root.joinpath(*parts).read_bytes()

    def size(self, *parts: str) -> int | None:
        """A file's size in bytes; None when there is no such file."""
        path = self.root.joinpath(*parts)
        return path.stat().st_size if path.is_file() else None

    def write_bytes(self, data: bytes, *parts: str) -> None:
        """Whole or not at all: a temporary file beside the target, on disk before the rename
        (a crash right after it leaves the old file or the new one, never an empty one)."""
        path = self.root.joinpath(*parts)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def rename(self, old: Sequence[str], new: Sequence[str]) -> None:
        os.replace(self.root.joinpath(*old), self.root.joinpath(*new))


class S3Storage:
    """An S3 bucket and prefix; any S3-compatible endpoint."""

    def __init__(self, spec: StorageSpec):
        self.spec = spec
        self.endpoint = spec.resolved_endpoint()
        self._client = None

    @property
    def client(self):
        if self._client is None:
            import boto3  # deferred: only for s3:// (boto3 takes a second to import)
            from botocore.config import Config  # deferred with boto3

            self._client = boto3.client(
                "s3", endpoint_url=self.endpoint, region_name=aws_region(),
                config=Config(connect_timeout=5, read_timeout=30, retries=dict(mode="standard", max_attempts=4)))
        return self._client

    def portable_spec(self) -> StorageSpec:
        """This storage for another process, with the endpoint resolved here."""
        return StorageSpec(self.spec.uri, self.endpoint)

    def ray_storage(self):
        """Ray's storage path (``bucket/prefix``) and a pyarrow filesystem for the endpoint."""
        import pyarrow.fs  # deferred: only for s3://

        kwargs = dict(region=aws_region(), retry_strategy=pyarrow.fs.AwsStandardS3RetryStrategy(max_attempts=4))
        if self.endpoint:
            parsed = urlparse(self.endpoint)
            kwargs.update(endpoint_override=parsed.netloc, scheme=parsed.scheme)
        path = "/".join(p for p in (self.spec.bucket, self.spec.prefix) if p)
        return path, pyarrow.fs.S3FileSystem(**kwargs)

    def _key(self, *parts: str) -> str:
        return "/".join(p.strip("/") for p in (self.spec.prefix, *parts) if p)

    def location(self, *parts: str) -> str:
        return f"s3://{self.spec.bucket}/{self._key(*parts)}"

    def check(self) -> None:
        """Bucket exists, credentials work, endpoint answers: before any training starts."""
        try:
            self.client.head_bucket(Bucket=self.spec.bucket)
        except Exception as err:
            error = s3_access_error(err, self.spec.bucket, self.endpoint)
            if error is None:
                raise
            raise error from None

    def exists(self, *parts: str) -> bool:
        response = self.client.list_objects_v2(Bucket=self.spec.bucket, Prefix=self._key(*parts), MaxKeys=1)
        return response.get("KeyCount", 0) > 0

    def read_text(self, *parts: str) -> str | None:
        from botocore.exceptions import ClientError  # deferred with boto3

        try:
            body = self.client.get_object(Bucket=self.spec.bucket, Key=self._key(*parts))["Body"]
        except ClientError as err:
            if str(err.response.get("Error", {}).get("Code")) in ("404", "NoSuchKey"):
                return None
            raise
        return body.read().decode()

    def list_dirs(self, *parts: str) -> list[str]:
        prefix = self._key(*parts) + "/"
        pages = self.client.get_paginator("list_objects_v2").paginate(Bucket=self.spec.bucket, Prefix=prefix,
                                                                      Delimiter="/")
        return sorted(p["Prefix"][len(prefix):].rstrip("/") for page in pages for p in page.get("CommonPrefixes", []))

    def find(self, file_name: str) -> list[tuple[str, ...]]:
        """The folders (as parts under the prefix) that hold an object of this name, at any depth."""
        root = self._key()
        pages = self.client.get_paginator("list_objects_v2").paginate(Bucket=self.spec.bucket,
                                                                      Prefix=f"{root}/" if root else "")
        found = []
        for page in pages:
            for obj in page.get("Contents", []):
                parts = tuple(obj["Key"][len(root):].strip("/").split("/"))
                if parts[-1] == file_name:
                    found.append(parts[:-1])
        return sorted(found)

    def delete_tree(self, *parts: str) -> None:
        prefix = self._key(*parts) + "/"
        pages = self.client.get_paginator("list_objects_v2").paginate(Bucket=self.spec.bucket, Prefix=prefix)
        for page in pages:
            keys = [dict(Key=obj["Key"]) for obj in page.get("Contents", [])]
            if keys:
                self.client.delete_objects(Bucket=self.spec.bucket, Delete=dict(Objects=keys, Quiet=True))

    def files(self, *parts: str) -> list[tuple[str, ...]]:
        """Every object under a folder, as parts relative to it."""
        prefix = self._key(*parts) + "/"
        pages = self.client.get_paginator("list_objects_v2").paginate(Bucket=self.spec.bucket, Prefix=prefix)
        return sorted(tuple(obj["Key"][len(prefix):].split("/")) for page in pages for obj in page.get("Contents", [])
                      if not obj["Key"].endswith("/"))

    def read_bytes(self, *parts: str) -> bytes:
        return self.client.get_object(Bucket=self.spec.bucket, Key=self._key(*parts))["Body"].read()

    def size(self, *parts: str) -> int | None:
        """An object's size in bytes; None when there is no such object."""
        response = self.client.list_objects_v2(Bucket=self.spec.bucket, Prefix=self._key(*parts), MaxKeys=1)
        found = response.get("Contents", [])
        return found[0]["Size"] if found and found[0]["Key"] == self._key(*parts) else None

    def write_bytes(self, data: bytes, *parts: str) -> None:
        """One PUT: S3 makes an object visible whole or not at all."""
        self.client.put_object(Bucket=self.spec.bucket, Key=self._key(*parts), Body=data)

    def rename(self, old: Sequence[str], new: Sequence[str]) -> None:
        """A copy, then the original deleted (S3 has no rename): the object is never absent."""
        self.client.copy_object(Bucket=self.spec.bucket, Key=self._key(*new),
                                CopySource=dict(Bucket=self.spec.bucket, Key=self._key(*old)))
        self.client.delete_object(Bucket=self.spec.bucket, Key=self._key(*old))


def aws_region() -> str:
    return os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1"
