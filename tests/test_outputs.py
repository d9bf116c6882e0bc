"""Where outputs go and how they are written: nothing a user owns is lost."""

import errno
import os
import subprocess
import sys

import numpy as np
import pytest
from conftest import on_a_full_disk
from PIL import Image

from pix2color import outputs


def test_outputs_module_imports_no_tensorflow_numpy_or_pillow():
    """Commands check and plan their outputs before TensorFlow (or NumPy, or Pillow) loads."""
    code = ("import sys, pix2color.outputs; loaded = {'tensorflow', 'numpy', 'PIL'} & set(sys.modules); "
            "assert not loaded, loaded")
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0


def test_write_output_never_replaces_unasked_and_leaves_nothing_when_it_fails(tmp_path):
    def fails(handle):
        handle.write(b"half a file")
        raise OSError("disk full")

    existing = tmp_path / "existing.png"
    existing.write_bytes(b"mine")
    with pytest.raises(outputs.OutputExists):
        outputs.write_output(existing, lambda handle: handle.write(b"new"))
    assert existing.read_bytes() == b"mine"
    for overwrite in (False, True):
        with pytest.raises(OSError, match="disk full"):
            outputs.write_output(tmp_path / "new.png", fails, overwrite)
        with pytest.raises(OSError, match="disk full"):
            outputs.write_output(existing, fails, overwrite=True)
        assert sorted(p.name for p in tmp_path.iterdir()) == ["existing.png"] and existing.read_bytes() == b"mine"
    finished = outputs.reserve_temporary(tmp_path / "video.mp4")  # a file finished after `existing` appeared
    with pytest.raises(outputs.OutputExists):
        outputs.move_into_place(finished, existing)
    assert not finished.exists() and existing.read_bytes() == b"mine"
    link = tmp_path / "link.png"
    link.symlink_to(existing)
    outputs.write_output(link, lambda handle: handle.write(b"new"), overwrite=True)
    assert not link.is_symlink() and link.read_bytes() == b"new" and existing.read_bytes() == b"mine"


@pytest.mark.parametrize("silent", [False, True], ids=["enospc", "short-write"])
@pytest.mark.parametrize("image_format", ["JPEG", "PNG"])
def test_a_full_disk_fails_the_write_and_leaves_no_file(tmp_path, monkeypatch, image_format, silent):
    """Pillow's JPEG encoder writes straight to a file's descriptor and may not notice a full disk:
    the image is encoded in memory, and its bytes written and counted by Python's file API."""
    pixels = np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    on_a_full_disk(monkeypatch, silent)
    for overwrite in (False, True):
        with pytest.raises(OSError) as raised:
            outputs.write_output(tmp_path / "x.img", lambda handle: Image.fromarray(pixels).save(handle, image_format),
                                 overwrite)
        assert raised.value.errno == errno.ENOSPC, raised.value
        assert list(tmp_path.iterdir()) == []


def test_overwrite_never_replaces_a_fifo_or_a_socket(tmp_path):
    """--overwrite replaces files (and symlinks, themselves), never a FIFO, a device or a socket."""
    import socket

    fifo, sock = tmp_path / "out.png", tmp_path / "out.csv"
    os.mkfifo(fifo)
    server = socket.socket(socket.AF_UNIX)
    server.bind(str(sock))
    try:
        for path in (fifo, sock):
            with pytest.raises(outputs.OutputExists):
                outputs.write_output(path, lambda handle: handle.write(b"data"), overwrite=True)
            assert "not a regular file" in outputs.exists_message(path)
        assert fifo.is_fifo() and sock.is_socket() and sorted(p.name for p in tmp_path.iterdir()) == ["out.csv", "out.png"]
    finally:
        server.close()
