"""A session's replay buffer: the latest broadcast frames, bounded by count and by bytes.

A resuming tab gets the frames after its `last_seq` from here; when they are no longer all
here it gets a snapshot instead. Both bounds drop the oldest frames first.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator


class ReplayBuffer:
    __slots__ = ("_bytes", "_frames", "max_bytes", "max_frames")

    def __init__(self, max_frames: int, max_bytes: int) -> None:
        self.max_frames = max_frames
        self.max_bytes = max_bytes
        self._frames: deque[tuple[int, bytes]] = deque()
        self._bytes = 0

    def append(self, item: tuple[int, bytes]) -> None:
        frames = self._frames
        frames.append(item)
        self._bytes += len(item[1])
        while frames and (len(frames) > self.max_frames or self._bytes > self.max_bytes):
            self._bytes -= len(frames.popleft()[1])

    @property
    def byte_size(self) -> int:
        return self._bytes

    def __len__(self) -> int:
        return len(self._frames)

    def __bool__(self) -> bool:
        return bool(self._frames)

    def __getitem__(self, i: int) -> tuple[int, bytes]:
        return self._frames[i]

    def __iter__(self) -> Iterator[tuple[int, bytes]]:
        return iter(self._frames)
