import json
import stat

import pytest

from genlab.utils.io import atomic_open, atomic_write_bytes, atomic_write_json, atomic_write_text


def test_writes_create_and_replace(tmp_path):
    path = tmp_path / "sub" / "metrics.json"
    atomic_write_json(path, {"fid": 1.5, "status": "completed"})
    assert json.loads(path.read_text()) == {"fid": 1.5, "status": "completed"}
    atomic_write_text(path, "héllo\n")
    assert path.read_text(encoding="utf-8") == "héllo\n"
    atomic_write_bytes(path, b"\x00\x01")
    assert path.read_bytes() == b"\x00\x01"
    assert [p.name for p in path.parent.iterdir()] == ["metrics.json"]  # no temp file left


def test_new_file_is_world_readable_and_replacement_keeps_mode(tmp_path):
    path = tmp_path / "a.txt"
    atomic_write_text(path, "x")
    assert stat.S_IMODE(path.stat().st_mode) == 0o644
    path.chmod(0o600)
    atomic_write_text(path, "y")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_failure_leaves_old_content_and_no_temp_file(tmp_path):
    path = tmp_path / "metrics.json"
    atomic_write_json(path, {"step": 1})
    with pytest.raises(TypeError):
        atomic_write_json(path, {"bad": object()})  # not JSON serialisable
    with pytest.raises(RuntimeError), atomic_open(path) as f:
        f.write(b"partial")
        raise RuntimeError("crash mid-write")
    assert json.loads(path.read_text()) == {"step": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["metrics.json"]
