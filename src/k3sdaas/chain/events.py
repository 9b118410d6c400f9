"""Reading the package's events incrementally: a cursor file remembers where the last read stopped."""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path

from .client import ChainClient
from .models import ChainEvent


class CursorStore:
    """Named cursors in one JSON file, replaced atomically so a crash never leaves half a file."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    def load(self) -> dict[str, str]:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {}
        return {str(k): str(v) for k, v in data.items()} if isinstance(data, dict) else {}

    def get(self, stream: str) -> str | None:
        return self.load().get(stream)

    def put(self, stream: str, cursor: str) -> None:
        data = self.load()
        data[stream] = cursor
        self.path.parent.mkdir(parents=True, exist_ok=True)
        handle, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=f".{self.path.name}.")
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            json.dump(data, out, indent=1, sort_keys=True)
        os.replace(tmp, self.path)


async def read_new_events(
    client: ChainClient, store: CursorStore, stream: str, names: Sequence[str], *, module: str = "staking",
    page_size: int = 1000,
) -> list[ChainEvent]:
    """Events named ``names`` since the stored cursor of ``stream``; advances the cursor past them."""
    events = [e async for e in client.events(names, module=module, after=store.get(stream), page_size=page_size)]
    cursors = [e.cursor for e in events if e.cursor]
    if cursors:
        store.put(stream, cursors[-1])
    return events
