"""Finding, downloading and verifying data files; the errors a user sees when data is missing."""

from __future__ import annotations

import contextlib
import hashlib
import http.client
import shutil
import tarfile
import urllib.request
import zipfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from rich.progress import wrap_file

from genlab.errors import UserError
from genlab.utils.io import atomic_open

_CHUNK = 1 << 20


class DataNotFoundError(UserError, FileNotFoundError):
    """Expected data files are missing (and downloading was not asked for)."""


class ChecksumError(RuntimeError):
    """A downloaded file does not have the expected checksum (md5 or sha256)."""


class CorruptFileError(UserError, ValueError):
    """A data file is present but truncated or not in the expected format."""

    def __init__(self, path: Path, reason: str):
        super().__init__(
            f"{path} is corrupt or truncated: {reason}. Delete it and fetch it again "
            "(data.source.download=true downloads it)."
        )
        self.path = path


def md5sum(path: str | Path) -> str:
    """Hex md5 of a file's content."""
    digest = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def require_files(dataset_name: str, paths: Sequence[Path]) -> None:
    """Raise DataNotFoundError, naming every expected path and the fixes, if any is missing."""
    missing = [p for p in paths if not p.is_file()]
    if not missing:
        return
    listing = "\n".join(f"  {p}{' (missing)' if p in missing else ''}" for p in paths)
    raise DataNotFoundError(
        f"{dataset_name} data not found: {len(missing)} of {len(paths)} expected files are "
        f"missing:\n{listing}\nSet paths.data_dir (or the GENLAB_DATA environment variable) to the "
        f"folder that holds the data sets, or pass data.source.download=true to download "
        f"{dataset_name}."
    )


def checksum_digest(checksum: str) -> Any:
    """A fresh hashlib object for a hex ``checksum``: md5 (32 digits) or sha256 (64)."""
    if len(checksum) == 64:
        return hashlib.sha256()
    if len(checksum) == 32:
        return hashlib.md5(usedforsecurity=False)
    raise ValueError(f"checksum {checksum!r} is neither an md5 (32 hex digits) nor a sha256 (64)")


def download_file(urls: Sequence[str], dest: Path, checksum: str, timeout: float = 60) -> Path:
    """Download the first of ``urls`` that answers with content of the given checksum (hex
    md5 or sha256) to ``dest``.

    Streams into a temp file beside ``dest`` and renames it into place only once the checksum
    matches, so ``dest`` is never partial. Raises ChecksumError if a mirror served wrong
    content and none served the right one, ConnectionError if no mirror could be reached.
    """
    dest = Path(dest)
    checksum_digest(checksum)  # a malformed checksum is a bug here, not a mirror's fault
    failures: list[str] = []
    checksum_failed = False
    for url in urls:
        try:
            _fetch(url, dest, checksum, timeout)
            return dest
        except ChecksumError as err:
            checksum_failed = True
            failures.append(str(err))
        except (OSError, http.client.HTTPException) as err:
            failures.append(f"{url}: {err}")
    summary = "\n  ".join(failures)
    if checksum_failed:
        raise ChecksumError(f"no mirror served {dest.name} with checksum {checksum}:\n  {summary}")
    raise ConnectionError(f"could not download {dest.name} from any mirror:\n  {summary}")


def _fetch(url: str, dest: Path, checksum: str, timeout: float) -> None:
    request = urllib.request.Request(url, headers={"User-Agent": "genlab"})
    digest = checksum_digest(checksum)
    with urllib.request.urlopen(request, timeout=timeout) as response, atomic_open(dest) as out:
        total = response.length
        progress = (
            wrap_file(response, total, description=dest.name, transient=True)
            if total
            else contextlib.nullcontext(response)
        )
        with progress as source:
            while chunk := source.read(_CHUNK):
                digest.update(chunk)
                out.write(chunk)
        if digest.hexdigest() != checksum:
            # raising inside atomic_open deletes the temp file; dest stays as it was
            raise ChecksumError(
                f"{url}: expected {digest.name} {checksum}, got {digest.hexdigest()}"
            )


def ensure_files(
    dataset_name: str,
    directory: Path,
    files: Mapping[str, tuple[Sequence[str], str]],
    download: bool,
) -> None:
    """Make sure every file name in ``files`` ({name: (urls, md5)}) is in ``directory``,
    downloading the missing ones first when ``download`` is set."""
    directory = Path(directory)
    if download:
        for name, (urls, md5) in files.items():
            if not (directory / name).is_file():
                download_file(urls, directory / name, md5)
    require_files(dataset_name, [directory / name for name in files])


def extract_tar(archive: Path, directory: Path) -> None:
    """Extract the regular files and folders of a tar archive into ``directory``; refuse
    members that would land outside it (absolute paths, ``..``) and links or devices."""
    root = Path(directory).resolve()
    with tarfile.open(archive) as tar:
        members = tar.getmembers()
        for member in members:
            target = (root / member.name).resolve()
            if not (member.isfile() or member.isdir()) or not target.is_relative_to(root):
                raise CorruptFileError(
                    Path(archive), f"unsafe member {member.name!r} (outside {root} or not a file)"
                )
        for member in members:
            target = root / member.name
            if member.isdir():
                target.mkdir(parents=True, exist_ok=True)
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            with tar.extractfile(member) as src, atomic_open(target) as dst:
                shutil.copyfileobj(src, dst, _CHUNK)


def extract_zip(archive: Path, directory: Path) -> None:
    """Extract the files and folders of a zip archive into ``directory``; refuse members that
    would land outside it (absolute paths, ``..``) and raise CorruptFileError for a broken zip."""
    root = Path(directory).resolve()
    try:
        with zipfile.ZipFile(archive) as zf:
            members = zf.infolist()
            for member in members:
                if not (root / member.filename).resolve().is_relative_to(root):
                    raise CorruptFileError(
                        Path(archive), f"unsafe member {member.filename!r} (outside {root})"
                    )
            for member in members:
                target = root / member.filename
                if member.is_dir():
                    target.mkdir(parents=True, exist_ok=True)
                    continue
                target.parent.mkdir(parents=True, exist_ok=True)
                with zf.open(member) as src, atomic_open(target) as dst:
                    shutil.copyfileobj(src, dst, _CHUNK)
    except (zipfile.BadZipFile, EOFError) as err:
        raise CorruptFileError(Path(archive), f"not a readable zip file ({err})") from err
