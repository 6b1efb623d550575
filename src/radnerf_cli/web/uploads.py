"""Uploaded audio: bounded in size, recognised by its first bytes, then decoded by ffmpeg to be sure."""

from __future__ import annotations

from pathlib import Path

MAX_UPLOAD_MB = 50

# (offset, magic, suffix): the containers a browser or a user sends speech in
MAGIC = [
    (0, b"RIFF", ".wav"),  # checked for WAVE below
    (0, b"fLaC", ".flac"),
    (0, b"OggS", ".ogg"),
    (0, b"ID3", ".mp3"),
    (0, b"\x1a\x45\xdf\xa3", ".webm"),  # Matroska / WebM (MediaRecorder)
    (4, b"ftyp", ".m4a"),  # mp4 / m4a / mov
]


class UploadError(Exception):
    """A rejected upload: ``status`` is the HTTP status, ``message`` the one line shown to the user."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status
        self.message = message


def sniff_suffix(head: bytes, name: str) -> str:
    """The file suffix the first bytes say; UploadError 415 when they are not an audio container."""
    for off, magic, suffix in MAGIC:
        if head[off : off + len(magic)] == magic:
            if suffix == ".wav" and head[8:12] != b"WAVE":
                break
            return suffix
    if len(head) >= 2 and head[0] == 0xFF and head[1] & 0xE0 == 0xE0:  # an MPEG audio frame (mp3 without ID3)
        return ".mp3"
    raise UploadError(415, f"{name}: not an audio file (wav, flac, mp3, ogg, webm or m4a expected)")


async def save_upload(upload, folder: Path, limit_mb: int = MAX_UPLOAD_MB) -> Path:
    """Stream a Starlette UploadFile to ``folder``; UploadError when too large or not audio."""
    name = Path(upload.filename or "upload").name
    limit = limit_mb * 1024 * 1024
    first = await upload.read(64 * 1024)
    if not first:
        raise UploadError(400, f"{name}: the file is empty")
    suffix = sniff_suffix(first, name)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"upload{suffix}"
    size = len(first)
    with open(path, "wb") as f:
        f.write(first)
        while True:
            b = await upload.read(1024 * 1024)
            if not b:
                break
            size += len(b)
            if size > limit:
                f.close()
                path.unlink(missing_ok=True)
                raise UploadError(413, f"{name}: larger than the {limit_mb} MB upload limit")
            f.write(b)
    return path
