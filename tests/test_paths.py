"""Every path a command takes is checked one way (yolor_ray.paths): missing, a folder where a
file is expected or the reverse, unreadable, not UTF-8, an output whose folder does not exist.
One line naming the option and the path, exit status 2, nothing written."""
from __future__ import annotations

import errno
import os
import sys
from pathlib import Path

import pytest

from yolor_ray import paths
from yolor_ray.errors import UserError

from support.paths import ATSS
from support.runs import yolor_ray


def q(path) -> str:
    return repr(str(path))


def _tree(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*"))


@pytest.fixture
def t(tmp_path) -> Path:
    """A folder, a text file, a file that is not UTF-8 (Latin-1) and nothing else."""
    (tmp_path / "folder").mkdir()
    (tmp_path / "file.txt").write_text("just text\n")
    (tmp_path / "latin1.py").write_bytes(b"name = 'caf\xe9'\n")
    (tmp_path / "latin1.yaml").write_bytes(b"lr: [0.01]  # caf\xe9\n")
    return tmp_path


# --- the module -------------------------------------------------------------------------------------------------


class SpaceLikeError(UserError, ValueError):
    """A caller's own kind, as the modules pass theirs."""


def test_input_file(t):
    assert paths.input_file(t / "file.txt", "config file") == t / "file.txt"
    with pytest.raises(paths.PathError) as raised:
        paths.input_file(t / "nope.py", "config file")
    assert str(raised.value) == f"config file {q(t / 'nope.py')} not found"
    assert isinstance(raised.value, UserError) and isinstance(raised.value, ValueError)
    with pytest.raises(SpaceLikeError) as raised:
        paths.input_file(t / "folder", "--space file", SpaceLikeError)
    assert str(raised.value) == f"--space file {q(t / 'folder')} is a folder; expected a file"
    with pytest.raises(paths.PathError, match=r"nope' not found; pass a Python config$"):
        paths.input_file(t / "nope", "config file", hint="pass a Python config")
    with pytest.raises(paths.PathError, match=r"under' not found$"):  # a file where a folder on the way should be
        paths.input_file(t / "file.txt" / "under", "config file")


def test_a_named_pipe_is_not_a_file_and_is_not_opened(t):
    os.mkfifo(t / "pipe")  # opening it would block: the check looks at what it is first
    with pytest.raises(paths.PathError, match=r"pipe' is a named pipe; expected a file$"):
        paths.input_file(t / "pipe", "config file")
    with pytest.raises(paths.PathError, match=r"pipe' is a named pipe; expected a file or a folder$"):
        paths.input_file_or_folder(t / "pipe", "checkpoint")


def test_input_folder(t):
    assert paths.input_folder(t / "folder", "dataset folder") == t / "folder"
    with pytest.raises(paths.PathError) as raised:
        paths.input_folder(t / "file.txt", "dataset folder")
    assert str(raised.value) == f"dataset folder {q(t / 'file.txt')} is a file; expected a folder"
    with pytest.raises(paths.PathError) as raised:
        paths.input_folder(t / "nowhere", "dataset folder", hint="--data takes a COCO-layout folder")
    assert str(raised.value) == f"dataset folder {q(t / 'nowhere')} not found; --data takes a COCO-layout folder"
    with pytest.raises(paths.PathError, match=r"is a file; --data takes a COCO-layout folder$"):
        paths.input_folder(t / "file.txt", "dataset folder", hint="--data takes a COCO-layout folder")


def test_input_file_or_folder(t):
    assert paths.input_file_or_folder(t / "folder", "--from") == t / "folder"
    assert paths.input_file_or_folder(t / "file.txt", "--from") == t / "file.txt"
    with pytest.raises(paths.PathError, match=r"^--from '.*nothing' not found$"):
        paths.input_file_or_folder(t / "nothing", "--from")


def test_read_text(t):
    assert paths.read_text(t / "file.txt", "cluster file") == "just text\n"
    (t / "bom.yaml").write_bytes(b"\xef\xbb\xbfa: 1\n")
    assert paths.read_text(t / "bom.yaml", "cluster file") == "a: 1\n"  # UTF-8 with a byte-order mark
    with pytest.raises(paths.PathError) as raised:
        paths.read_text(t / "latin1.py", "config file")
    assert str(raised.value) == f"config file {q(t / 'latin1.py')} is not UTF-8 text (byte 0xe9 at offset 11)"
    with pytest.raises(paths.PathError, match="is a folder; expected a file"):
        paths.read_text(t / "folder", "cluster file")


def _os_refuses(path: Path) -> bool:
    try:
        if path.is_dir():
            with os.scandir(path):
                pass
        else:
            os.close(os.open(path, os.O_RDONLY))
    except PermissionError:
        return True
    return False


def test_unreadable_paths(t):
    (t / "secret.yaml").write_text("a: 1\n")
    (t / "locked").mkdir()
    for path in (t / "secret.yaml", t / "locked"):
        path.chmod(0)
    try:
        if not _os_refuses(t / "secret.yaml"):
            pytest.skip("permission bits do not stop this user (root) from reading: "
                        "test_a_refused_read_is_one_line simulates the OS's refusal instead")
        with pytest.raises(paths.PathError) as raised:
            paths.read_text(t / "secret.yaml", "--space file")
        assert str(raised.value) == f"--space file {q(t / 'secret.yaml')} is not readable (permission denied)"
        with pytest.raises(paths.PathError, match=r"locked' is not readable \(permission denied\)$"):
            paths.input_folder(t / "locked", "dataset folder")
    finally:
        for path in (t / "secret.yaml", t / "locked"):
            path.chmod(0o700)


def test_a_refused_read_is_one_line(t, monkeypatch):
    """Where the OS refuses to open a path (EACCES), simulated: as root no permission bit does."""
    refused = {str(t / "file.txt"), str(t / "folder")}
    real_open, real_scandir = os.open, os.scandir

    def refuse(path):
        if os.fspath(path) in refused:
            raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), os.fspath(path))

    def open_(path, flags, *args, **kwargs):
        refuse(path)
        return real_open(path, flags, *args, **kwargs)

    def scandir(path="."):
        refuse(path)
        return real_scandir(path)

    monkeypatch.setattr(os, "open", open_)
    monkeypatch.setattr(os, "scandir", scandir)
    with pytest.raises(paths.PathError) as raised:
        paths.read_text(t / "file.txt", "cluster file")
    assert str(raised.value) == f"cluster file {q(t / 'file.txt')} is not readable (permission denied)"
    with pytest.raises(SpaceLikeError, match=r"folder' is not readable \(permission denied\)$"):
        paths.input_folder(t / "folder", "table PATH", SpaceLikeError)
    with pytest.raises(paths.PathError, match=r"folder' is not readable \(permission denied\)$"):
        paths.input_file_or_folder(t / "folder", "checkpoint")


def test_output_file(t):
    assert paths.output_file(t / "merged.py", "--dry-run FILE") == t / "merged.py"
    assert paths.output_file(t / "file.txt", "--dry-run FILE") == t / "file.txt"  # replacing it: the caller's rule
    assert paths.output_file(os.devnull, "--dry-run FILE") == Path(os.devnull)  # written in place, /dev not
    with pytest.raises(paths.PathError) as raised:
        paths.output_file(t / "nowhere" / "merged.py", "--dry-run FILE")
    assert str(raised.value) == (f"--dry-run FILE {q(t / 'nowhere' / 'merged.py')}: its folder {q(t / 'nowhere')} "
                                 "does not exist")
    with pytest.raises(paths.PathError) as raised:
        paths.output_file(t / "folder", "--dry-run FILE")
    assert str(raised.value) == f"--dry-run FILE {q(t / 'folder')} is a folder; expected a file"
    with pytest.raises(paths.PathError, match=r"merged.py': its folder '.*file.txt' is a file$"):
        paths.output_file(t / "file.txt" / "merged.py", "--dry-run FILE")
    assert not (t / "merged.py").exists() and not (t / "nowhere").exists()


def test_output_folder(t):
    before = _tree(t)
    assert paths.output_folder(t / "folder", "pull destination") == t / "folder"
    assert paths.output_folder(t / "new" / "deeper", "pull destination") == t / "new" / "deeper"  # made later
    with pytest.raises(paths.PathError) as raised:
        paths.output_folder(t / "file.txt", "pull destination")
    assert str(raised.value) == f"pull destination {q(t / 'file.txt')} is a file; expected a folder"
    with pytest.raises(paths.PathError) as raised:
        paths.output_folder(t / "file.txt" / "out" / "deeper", "output folder")
    assert str(raised.value) == (f"output folder {q(t / 'file.txt' / 'out' / 'deeper')} cannot be made: "
                                 f"{q(t / 'file.txt')} is a file")
    assert _tree(t) == before  # checked, nothing made (the write probe is removed at once)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="/proc refuses new folders on Linux")
def test_an_output_folder_where_nothing_can_be_made():
    """/proc: permission bits may say yes (root), the filesystem still says no."""
    with pytest.raises(paths.PathError, match=r"^storage folder '/proc/yolor-paths' cannot be created or written \("):
        paths.output_folder("/proc/yolor-paths", "storage folder")


def test_an_unwritable_output_folder(t):
    (t / "ro").mkdir()
    (t / "ro" / "merged.py").touch(mode=0o444)
    (t / "ro").chmod(0o555)
    try:
        if os.access(t / "ro", os.W_OK):
            pytest.skip("permission bits do not stop this user (root) from writing: /proc stands in "
                        "(test_an_output_folder_where_nothing_can_be_made)")
        with pytest.raises(paths.PathError) as raised:
            paths.output_folder(t / "ro" / "out", "pull destination")
        assert str(raised.value) == (f"pull destination {q(t / 'ro' / 'out')} cannot be created or written "
                                     f"({q(t / 'ro')} is not a writable folder)")
        with pytest.raises(paths.PathError, match=r"its folder '.*ro' is not writable \(permission denied\)$"):
            paths.output_file(t / "ro" / "new.py", "--dry-run FILE")
        with pytest.raises(paths.PathError, match=r"merged.py' is not writable \(permission denied\)$"):
            paths.output_file(t / "ro" / "merged.py", "--dry-run FILE")
    finally:
        (t / "ro").chmod(0o700)


# --- the entry points, in this process: the module's message in each one's own kind of error --------------------


def test_config_file(t):
    from yolor_ray.config.load import ConfigError, load_config

    with pytest.raises(ConfigError) as raised:
        load_config(t / "folder")
    assert str(raised.value) == f"config file {q(t / 'folder')} is a folder; expected a file"
    with pytest.raises(ConfigError, match=r"latin1.py' is not UTF-8 text \(byte 0xe9 at offset 11\)$"):
        load_config(t / "latin1.py")
    (t / "broken.py").write_text("model = dict(type=\n")
    with pytest.raises(ConfigError, match=r"broken.py' could not be read: SyntaxError") as raised:
        load_config(t / "broken.py")
    assert "\n" not in str(raised.value)


def test_space_file(t):
    from yolor_ray.tune.space import SpaceError
    from yolor_ray.tune.space_parse import load_space_file

    with pytest.raises(SpaceError, match=r"latin1.yaml' is not UTF-8 text"):
        load_space_file(t / "latin1.yaml")
    with pytest.raises(SpaceError, match=r"folder' is a folder; expected a file$"):
        load_space_file(t / "folder")
    (t / "space.yaml").write_text("placements: [[fpn]\n")  # PyYAML's message spans lines
    with pytest.raises(SpaceError, match=r"space.yaml' could not be read: ParserError: while parsing") as raised:
        load_space_file(t / "space.yaml")
    assert "\n" not in str(raised.value)


def test_cluster_file(t):
    from yolor_ray.cluster.check import ClusterFileError, check_cluster_config

    with pytest.raises(ClusterFileError) as raised:
        check_cluster_config(t / "nope.yaml")
    assert str(raised.value) == f"cluster file {q(t / 'nope.yaml')} not found"
    (t / "cluster.yaml").write_text("a: [b\nc: d\n")
    with pytest.raises(ClusterFileError, match=r"cluster.yaml' is not valid YAML: while parsing") as raised:
        check_cluster_config(t / "cluster.yaml")
    assert "\n" not in str(raised.value)
    (t / "cluster.yaml").write_text("- a list\n")
    with pytest.raises(ClusterFileError, match=r"cluster.yaml': the top level must be a mapping of Ray cluster "
                                               r"keys, got list$"):
        check_cluster_config(t / "cluster.yaml")


def test_data_folder(t, monkeypatch):
    from yolor_ray.data.coco import DATA_HINT, DatasetError, annotation_file, inspect_coco_split

    with pytest.raises(DatasetError) as raised:
        inspect_coco_split(t / "file.txt", "train")
    assert str(raised.value) == f"dataset folder {q(t / 'file.txt')} is a file; {DATA_HINT}"
    ann = annotation_file(t / "folder", "train")
    ann.parent.mkdir()
    ann.write_text("{}")
    real_open = os.open

    def open_(path, *args, **kwargs):  # the OS refusing the annotation file, as in test_a_refused_read_is_one_line
        if os.fspath(path) == str(ann):
            raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(ann))
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr(os, "open", open_)
    with pytest.raises(DatasetError) as raised:
        inspect_coco_split(t / "folder", "train")
    assert str(raised.value) == f"annotation file {q(ann)} is not readable (permission denied)"


def test_storage_folder(t):
    from yolor_ray.storage import StorageError, StorageSpec, open_storage

    with pytest.raises(StorageError) as raised:
        open_storage(StorageSpec(str(t / "file.txt"))).check()
    assert str(raised.value) == f"storage folder {q(t / 'file.txt')} is a file; expected a folder"


def test_checkpoint_and_baseline(t):
    from yolor_ray.deploy.fuse import fuse_checkpoint
    from yolor_ray.engine.checkpoint import CheckpointError, load_checkpoint_file
    from yolor_ray.train.warm_start import BaselineError, baseline_checkpoint

    with pytest.raises(CheckpointError) as raised:
        load_checkpoint_file(t / "folder")
    assert str(raised.value) == f"checkpoint {q(t / 'folder')} is a folder; expected a file"
    with pytest.raises(CheckpointError, match=r"file.txt' is not a PyTorch checkpoint"):
        load_checkpoint_file(t / "file.txt")
    with pytest.raises(BaselineError) as raised:
        baseline_checkpoint(str(t / "nothing"), None)
    assert str(raised.value) == f"--from {q(t / 'nothing')} not found"
    with pytest.raises(paths.PathError, match=r"out' cannot be made: '.*file.txt' is a file$"):
        fuse_checkpoint(None, t / "file.txt", t / "file.txt" / "out")  # before the checkpoint is read
    with pytest.raises(FileNotFoundError, match=r"nothing.pth' not found$"):
        fuse_checkpoint(None, t / "nothing.pth", t / "out")
    assert not (t / "out").exists()


def test_pull_and_make_shapes(t):
    from yolor_ray.data.shapes import ShapesSpec, make_shapes
    from yolor_ray.pull import NothingToPullError, pull

    before = _tree(t)
    with pytest.raises(paths.PathError, match=r"^pull destination '.*file.txt' is a file; expected a folder$"):
        pull(str(t / "folder"), t / "file.txt")
    with pytest.raises(NothingToPullError, match=r"^pull source '.*nothing' not found; expected a run or sweep "
                                                 r"folder$"):
        pull(str(t / "nothing"), t / "pulled")
    with pytest.raises(paths.PathError, match=r"^make-shapes DIR '.*file.txt' is a file; expected a folder$"):
        make_shapes(t / "file.txt", ShapesSpec(num_train=1, num_val=1, image_size=64))
    assert _tree(t) == before


# --- the command, in a subprocess: exit 2, one line on stderr, nothing written -----------------------------------


def _cases(t: Path) -> dict[str, tuple[list, str]]:
    """argv and the one line each command answers; every one fails before torch is imported."""
    from yolor_ray.data.coco import DATA_HINT

    storage = ["--storage", t / "results"]
    return {
        "train config missing": (["train", t / "nope.py", *storage], f"config file {q(t / 'nope.py')} not found"),
        "train config is a folder": (["train", t / "folder", *storage],
                                     f"config file {q(t / 'folder')} is a folder; expected a file"),
        "train config not UTF-8": (["train", t / "latin1.py", *storage],
                                   f"config file {q(t / 'latin1.py')} is not UTF-8 text (byte 0xe9 at offset 11)"),
        "train --data is a file": (["train", ATSS, "--data", t / "file.txt", *storage],
                                   f"dataset folder {q(t / 'file.txt')} is a file; {DATA_HINT}"),
        "train --storage is a file": (["train", ATSS, "--storage", t / "file.txt"],
                                      f"--storage folder {q(t / 'file.txt')} is a file; expected a folder"),
        "tune --storage under a file": (["tune", ATSS, "--storage", t / "file.txt" / "results"],
                                        f"--storage folder {q(t / 'file.txt' / 'results')} cannot be made: "
                                        f"{q(t / 'file.txt')} is a file"),
        "train --dry-run FILE in no folder": (["train", ATSS, *storage, "--dry-run", t / "nowhere" / "merged.py"],
                                              f"--dry-run FILE {q(t / 'nowhere' / 'merged.py')}: its folder "
                                              f"{q(t / 'nowhere')} does not exist"),
        "train --dry-run FILE is a folder": (["train", ATSS, *storage, "--dry-run", t / "folder"],
                                             f"--dry-run FILE {q(t / 'folder')} is a folder; expected a file"),
        "train --load-from is a folder": (["train", ATSS, *storage, "--load-from", t / "folder"],
                                          f"--load-from checkpoint {q(t / 'folder')} is a folder; expected a file"),
        "train --from missing": (["train", ATSS, *storage, "--from", t / "nothing"],
                                 f"--from {q(t / 'nothing')} not found"),
        "tune --space is a folder": (["tune", ATSS, *storage, "--space", t / "folder"],
                                     f"--space file {q(t / 'folder')} is a folder; expected a file"),
        "tune --space not UTF-8": (["tune", ATSS, *storage, "--space", t / "latin1.yaml"],
                                   f"--space file {q(t / 'latin1.yaml')} is not UTF-8 text (byte 0xe9 at offset 17)"),
        "cluster check file missing": (["cluster", "check", t / "nope.yaml"],
                                       f"cluster file {q(t / 'nope.yaml')} not found"),
        "pull destination is a file": (["pull", t / "folder", t / "file.txt"],
                                       f"pull destination {q(t / 'file.txt')} is a file; expected a folder"),
        "pull source missing": (["pull", t / "nothing", t / "pulled"],
                                f"pull source {q(t / 'nothing')} not found; expected a run or sweep folder"),
        "table PATH is a file": (["table", t / "file.txt"], f"table PATH {q(t / 'file.txt')} is a file; expected a "
                                                            "results folder, a run or a sweep"),
        "fuse checkpoint missing": (["fuse", t / "nothing.pth", t / "out"],
                                    f"checkpoint {q(t / 'nothing.pth')} not found"),
        "fuse out under a file": (["fuse", t / "folder", t / "file.txt" / "out"],
                                  f"output folder {q(t / 'file.txt' / 'out')} cannot be made: "
                                  f"{q(t / 'file.txt')} is a file"),
        "make-shapes DIR is a file": (["make-shapes", t / "file.txt"],
                                      f"make-shapes DIR {q(t / 'file.txt')} is a file; expected a folder"),
    }


@pytest.mark.subprocess
@pytest.mark.parametrize("case", list(_cases(Path("/t"))))
def test_the_command_says_it_in_one_line_and_writes_nothing(t, case):
    argv, message = _cases(t)[case]
    before = _tree(t)
    proc = yolor_ray(*argv, timeout=120)
    assert proc.returncode == 2, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr
    assert proc.stderr.splitlines() == [f"yolor-ray: error: {message}"]
    assert _tree(t) == before  # no storage, output folder or file made


def test_a_configs_own_annotation_file_without_data(t):
    """Without --data the config's own dataset is used: its annotation file is checked as any input file."""
    from mmengine.config import Config

    from yolor_ray.data.coco import DatasetError
    from yolor_ray.train.checks import check_config_annotations

    def cfg(ann_file):
        loader = dict(dataset=dict(data_root=str(t), ann_file=ann_file))
        return Config(dict(train_dataloader=loader, val_dataloader=loader))

    hint = "pass --data DIR for a COCO-layout folder (make one with: yolor-ray make-shapes DIR)"
    with pytest.raises(DatasetError) as raised:
        check_config_annotations(cfg("nope.json"))
    assert str(raised.value) == f"train_dataloader's annotation file {q(t / 'nope.json')} not found; {hint}"
    with pytest.raises(DatasetError) as raised:
        check_config_annotations(cfg("folder"))
    assert str(raised.value) == f"train_dataloader's annotation file {q(t / 'folder')} is a folder; {hint}"
