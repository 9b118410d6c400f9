"""The 'newc' cpio format of Linux initramfs images: a deterministic writer and a reader."""

from __future__ import annotations

import stat
from collections.abc import Iterator
from dataclasses import dataclass
from typing import BinaryIO

from k3sdaas.errors import InvalidInput

MAGIC = b"070701"
TRAILER = "TRAILER!!!"
BLOCK = 512


@dataclass(frozen=True)
class Entry:
    name: str
    mode: int  # includes the file type bits
    data: bytes = b""  # file contents, or the target of a symlink
    uid: int = 0
    gid: int = 0
    mtime: int = 0
    rdev_major: int = 0
    rdev_minor: int = 0


def _pad(length: int) -> bytes:
    return b"\0" * (-length % 4)


class Writer:
    """Entries get sequential inode numbers and one link each, so the output depends only on the entries."""

    def __init__(self, out: BinaryIO) -> None:
        self.out = out
        self.written = 0
        self.inode = 0

    def _write(self, data: bytes) -> None:
        self.out.write(data)
        self.written += len(data)

    def add(self, entry: Entry) -> None:
        self.inode += 1
        name = entry.name.encode() + b"\0"
        fields = (
            self.inode,
            entry.mode,
            entry.uid,
            entry.gid,
            1,
            entry.mtime,
            len(entry.data),
            0,
            0,
            entry.rdev_major,
            entry.rdev_minor,
            len(name),
            0,
        )
        header = MAGIC + b"".join(b"%08x" % value for value in fields)
        self._write(header + name + _pad(len(header) + len(name)))
        self._write(entry.data + _pad(len(entry.data)))

    def close(self) -> None:
        self.inode = -1  # the trailer has inode 0
        self.add(Entry(TRAILER, 0))
        self._write(b"\0" * (-self.written % BLOCK))


def read_entries(data: bytes) -> Iterator[Entry]:
    position = 0
    while True:
        header = data[position : position + 110]
        if len(header) != 110 or header[:6] != MAGIC:
            raise InvalidInput(f"cpio header at offset {position} is not newc", field="ramdisk")
        values = [int(header[6 + 8 * i : 14 + 8 * i], 16) for i in range(13)]
        _ino, mode, uid, gid, _nlink, mtime, size, _dmaj, _dmin, rmaj, rmin, name_size, _check = values
        name_at = position + 110
        name = data[name_at : name_at + name_size - 1].decode()
        data_at = name_at + name_size + len(_pad(110 + name_size))
        body = data[data_at : data_at + size]
        position = data_at + size + len(_pad(size))
        if name == TRAILER:
            return
        yield Entry(name, mode, body, uid, gid, mtime, rmaj, rmin)


def is_kind(entry: Entry, kind: int) -> bool:
    return stat.S_IFMT(entry.mode) == kind
