import functools
import hashlib
import io
import socket
import tarfile
import threading
import zipfile
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

import pytest
from PIL import Image

from genlab.data import cifar10, unpaired_sources
from genlab.data.cifar10 import CIFAR10
from genlab.data.download import (
    ChecksumError,
    CorruptFileError,
    DataNotFoundError,
    download_file,
    ensure_files,
    extract_tar,
    extract_zip,
    md5sum,
)
from genlab.data.idx import MNIST, FashionMNIST
from genlab.data.unpaired_sources import UnpairedFolder

PAYLOAD = bytes(range(256)) * 1000
PAYLOAD_MD5 = hashlib.md5(PAYLOAD).hexdigest()


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format, *args):
        pass


@pytest.fixture
def server(tmp_path):
    """(folder served, its base URL) on 127.0.0.1."""
    served = tmp_path / "served"
    served.mkdir()
    handler = functools.partial(_QuietHandler, directory=str(served))
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, args=(0.01,), daemon=True)
    thread.start()
    yield served, f"http://127.0.0.1:{httpd.server_address[1]}/"
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture
def dead_url():
    """A URL on a local port that nothing listens on."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/file.bin"


def test_md5sum(tmp_path):
    (tmp_path / "a").write_bytes(PAYLOAD)
    assert md5sum(tmp_path / "a") == PAYLOAD_MD5


def test_download_with_right_md5(server, tmp_path):
    served, base = server
    (served / "file.bin").write_bytes(PAYLOAD)
    dest = tmp_path / "out" / "file.bin"
    assert download_file([base + "file.bin"], dest, PAYLOAD_MD5) == dest
    assert dest.read_bytes() == PAYLOAD
    assert [p.name for p in dest.parent.iterdir()] == ["file.bin"]


def test_wrong_md5_leaves_nothing(server, tmp_path):
    served, base = server
    (served / "file.bin").write_bytes(PAYLOAD)
    dest = tmp_path / "out" / "file.bin"
    with pytest.raises(ChecksumError) as info:
        download_file([base + "file.bin"], dest, "0" * 32)
    message = str(info.value)
    assert base + "file.bin" in message and "0" * 32 in message and PAYLOAD_MD5 in message
    assert list(dest.parent.iterdir()) == []  # neither dest nor a temp file


def test_dead_and_missing_urls_fall_back(server, tmp_path, dead_url):
    served, base = server
    (served / "file.bin").write_bytes(PAYLOAD)
    dest = tmp_path / "file.bin"
    download_file([dead_url, base + "missing.bin", base + "file.bin"], dest, PAYLOAD_MD5)
    assert dest.read_bytes() == PAYLOAD
    with pytest.raises(ConnectionError, match="404") as info:
        download_file([dead_url, base + "missing.bin"], tmp_path / "x.bin", PAYLOAD_MD5)
    assert dead_url in str(info.value) and not (tmp_path / "x.bin").exists()


@pytest.mark.parametrize("source", [MNIST, FashionMNIST, CIFAR10])
def test_missing_files_without_download(tmp_path, source):
    with pytest.raises(DataNotFoundError) as info:
        source(str(tmp_path)).prepare()
    message = str(info.value)
    assert source.name in message and "GENLAB_DATA" in message and "paths.data_dir" in message
    assert "data.source.download=true" in message
    assert str(tmp_path / source.name) in message


def test_ensure_files_lists_every_expected_path(tmp_path):
    (tmp_path / "a.gz").write_bytes(b"x")
    files = {"a.gz": (["http://unused/"], "0" * 32), "b.gz": (["http://unused/"], "0" * 32)}
    ensure_files("toy", tmp_path, {"a.gz": files["a.gz"]}, download=False)
    with pytest.raises(DataNotFoundError, match="1 of 2 expected files") as info:
        ensure_files("toy", tmp_path, files, download=False)
    assert f"{tmp_path / 'a.gz'}\n" in str(info.value)
    assert f"{tmp_path / 'b.gz'} (missing)" in str(info.value)


def test_mnist_prepare_downloads_from_the_mirrors(
    server, tmp_path, dead_url, monkeypatch, write_idx_dataset
):
    served, base = server
    written = write_idx_dataset(served, {"train": 3, "test": 2}, seed=0)
    md5s = {p.name: md5sum(p) for p in served.iterdir()}
    monkeypatch.setattr(MNIST, "mirrors", (dead_url.rsplit("/", 1)[0] + "/", base))
    monkeypatch.setattr(MNIST, "md5s", md5s)
    source = MNIST(str(tmp_path / "root"), download=True)
    source.prepare()
    assert source.load("test").labels.tolist() == written["test"][1].tolist()
    assert sorted(p.name for p in (tmp_path / "root" / "mnist").iterdir()) == sorted(md5s)


def _tar_gz(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def test_cifar_prepare_downloads_and_extracts(server, tmp_path, monkeypatch, write_cifar):
    served, base = server
    written = write_cifar(tmp_path / "made", per_batch=2, seed=0)
    archive = _tar_gz(
        {f"cifar-10-batches-py/{n}": (tmp_path / "made" / n).read_bytes() for n in written}
    )
    (served / cifar10.ARCHIVE).write_bytes(archive)
    monkeypatch.setattr(cifar10, "URL", base + cifar10.ARCHIVE)
    monkeypatch.setattr(cifar10, "MD5", hashlib.md5(archive).hexdigest())
    source = CIFAR10(str(tmp_path / "root"), download=True)
    source.prepare()
    assert len(source.load("train")) == 10 and len(source.load("test")) == 2
    assert [p.name for p in (tmp_path / "root" / "cifar10").iterdir()] == ["cifar-10-batches-py"]


@pytest.mark.parametrize("name", ["../escape.txt", "/abs/escape.txt", "a/../../escape.txt"])
def test_extract_rejects_escaping_members(tmp_path, name):
    (tmp_path / "evil.tar.gz").write_bytes(_tar_gz({"ok.txt": b"fine", name: b"evil"}))
    with pytest.raises(CorruptFileError, match="unsafe member"):
        extract_tar(tmp_path / "evil.tar.gz", tmp_path / "out")
    assert not (tmp_path / "escape.txt").exists() and not (tmp_path / "out" / "ok.txt").exists()


def test_extract_rejects_links(tmp_path):
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        link = tarfile.TarInfo("link")
        link.type, link.linkname = tarfile.SYMTYPE, "/etc/passwd"
        tar.addfile(link)
    (tmp_path / "links.tar.gz").write_bytes(buffer.getvalue())
    with pytest.raises(CorruptFileError, match="unsafe member 'link'"):
        extract_tar(tmp_path / "links.tar.gz", tmp_path / "out")


def _zip(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return buffer.getvalue()


def _png(value: int, size: int = 6, mode: str = "RGB") -> bytes:
    buffer = io.BytesIO()
    Image.new(mode, (size, size), (value,) * len(mode)).save(buffer, format="PNG")
    return buffer.getvalue()


def test_sha256_checksums_are_accepted_and_checked(server, tmp_path):
    served, base = server
    (served / "file.bin").write_bytes(PAYLOAD)
    sha = hashlib.sha256(PAYLOAD).hexdigest()
    assert download_file([base + "file.bin"], tmp_path / "a.bin", sha).read_bytes() == PAYLOAD
    with pytest.raises(ChecksumError, match=f"expected sha256 {'0' * 64}, got {sha}"):
        download_file([base + "file.bin"], tmp_path / "b.bin", "0" * 64)
    assert not (tmp_path / "b.bin").exists()
    with pytest.raises(ValueError, match="neither an md5"):
        download_file([base + "file.bin"], tmp_path / "c.bin", "abc")


def test_cyclegan_folder_downloads_the_official_zip(server, tmp_path, dead_url, monkeypatch):
    served, base = server
    members = {
        f"horse2zebra/{split}{domain}/{i}.png": _png(40 * i)
        for split in ("train", "test")
        for domain in "AB"
        for i in range(1, 3)
    }
    archive = _zip(members)
    (served / "horse2zebra.zip").write_bytes(archive)
    monkeypatch.setattr(unpaired_sources, "MIRRORS", (dead_url.rsplit("/", 1)[0] + "/", base))
    monkeypatch.setitem(
        unpaired_sources.ARCHIVES, "horse2zebra", hashlib.sha256(archive).hexdigest()
    )
    source = UnpairedFolder(str(tmp_path / "root"), "horse2zebra", 6, 4, download=True)
    source.prepare()
    assert sorted(p.name for p in (tmp_path / "root").iterdir()) == ["horse2zebra"]  # no zip
    assert source.load_domain("train", "B").shape == (2, 3, 6, 6)
    assert source.load("test").labels.tolist() == [0, 0, 1, 1]


def test_cyclegan_download_with_a_wrong_checksum_leaves_nothing(server, tmp_path, monkeypatch):
    served, base = server
    (served / "horse2zebra.zip").write_bytes(_zip({"horse2zebra/trainA/1.png": _png(1)}))
    monkeypatch.setattr(unpaired_sources, "MIRRORS", (base,))
    source = UnpairedFolder(str(tmp_path / "root"), "horse2zebra", 6, 4, download=True)
    with pytest.raises(ChecksumError, match=r"horse2zebra\.zip"):
        source.prepare()
    assert not (tmp_path / "root").exists() or not any((tmp_path / "root").iterdir())


def test_unknown_cyclegan_sets_cannot_be_downloaded(tmp_path):
    with pytest.raises(ValueError, match="known: apple2orange"):
        UnpairedFolder(str(tmp_path), "cats2dogs", 6, 4, download=True)


@pytest.mark.parametrize("name", ["../escape.txt", "/abs/escape.txt", "a/../../escape.txt"])
def test_zip_extraction_rejects_escaping_members(tmp_path, name):
    (tmp_path / "evil.zip").write_bytes(_zip({"ok.txt": b"fine", name: b"evil"}))
    with pytest.raises(CorruptFileError, match="unsafe member"):
        extract_zip(tmp_path / "evil.zip", tmp_path / "out")
    assert not (tmp_path / "escape.txt").exists() and not (tmp_path / "out" / "ok.txt").exists()


def test_a_broken_zip_is_reported_as_corrupt(tmp_path):
    (tmp_path / "broken.zip").write_bytes(_zip({"a.txt": b"x" * 100})[:-30])
    with pytest.raises(CorruptFileError, match="not a readable zip"):
        extract_zip(tmp_path / "broken.zip", tmp_path / "out")
