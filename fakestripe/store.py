"""In-memory state: objects by id, per-type insertion-ordered indexes, journal persistence.

Lists walk an index kept in creation order, so a page costs O(limit + skipped), never a sort.
Persistence appends one JSON line per object write (constant cost per write, unlike
re-pickling the whole store) and compacts the journal on start and shutdown.
"""

from __future__ import annotations

import copy
import json
import os
import secrets
import string
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

_ALPHABET = string.digits + string.ascii_uppercase + string.ascii_lowercase  # ASCII order


def _b62(number: int, width: int) -> str:
    out = []
    for _ in range(width):
        number, digit = divmod(number, 62)
        out.append(_ALPHABET[digit])
    return "".join(reversed(out))


class IdFactory:
    """Ids that sort by creation: a fixed-width base62 microsecond clock, then randomness."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._last = 0

    def tick(self) -> int:
        with self._lock:
            self._last = max(self._last + 1, time.time_ns() // 1000)
            return self._last

    def new(self, prefix: str) -> str:
        rand = "".join(secrets.choice(_ALPHABET) for _ in range(6))
        return f"{prefix}_{_b62(self.tick(), 10)}{rand}"


class TypeIndex:
    """Ids of one object type in creation order; removal leaves a hole to keep positions."""

    __slots__ = ("ids", "pos")

    def __init__(self) -> None:
        self.ids: list[str | None] = []
        self.pos: dict[str, int] = {}

    def add(self, object_id: str) -> None:
        if object_id not in self.pos:
            self.pos[object_id] = len(self.ids)
            self.ids.append(object_id)

    def remove(self, object_id: str) -> None:
        position = self.pos.pop(object_id, None)
        if position is not None:
            self.ids[position] = None

    def newest_first(self, before: int | None = None) -> Iterator[str]:
        start = len(self.ids) - 1 if before is None else before - 1
        for i in range(start, -1, -1):
            object_id = self.ids[i]
            if object_id is not None:
                yield object_id

    def oldest_first(self, after: int) -> Iterator[str]:
        for i in range(after + 1, len(self.ids)):
            object_id = self.ids[i]
            if object_id is not None:
                yield object_id


class Store:
    """All emulator objects. Callers hold `lock` around read-modify-write sequences."""

    def __init__(self, state_file: str | os.PathLike | None = None) -> None:
        self.lock = threading.RLock()
        self.ids = IdFactory()
        self.objects: dict[str, dict[str, Any]] = {}
        self.indexes: dict[str, TypeIndex] = {}
        self._journal_path = Path(state_file) if state_file else None
        self._journal = None
        if self._journal_path:
            self._load()
            self.compact()

    # -- objects -----------------------------------------------------------------------

    def get(self, object_id: str) -> dict[str, Any] | None:
        return self.objects.get(object_id)

    def put(self, obj: dict[str, Any], *, listed: bool = True) -> dict[str, Any]:
        with self.lock:
            self.objects[obj["id"]] = obj
            if listed:
                self.index(obj["object"]).add(obj["id"])
            self._write({"put": obj, "listed": listed})
        return obj

    def save(self, obj: dict[str, Any]) -> None:
        """Record an in-place change of a stored object (journal only)."""
        with self.lock:
            self._write({"put": obj, "listed": obj["id"] in self.index(obj["object"]).pos})

    def unlist(self, object_id: str, *, keep: dict[str, Any] | None = None) -> None:
        """Drop from lists; keep a stub (deleted customers stay retrievable) or nothing."""
        with self.lock:
            obj = self.objects.get(object_id)
            if obj is None:
                return
            self.index(obj["object"]).remove(object_id)
            if keep is None:
                del self.objects[object_id]
            else:
                self.objects[object_id] = keep
            self._write({"unlist": object_id, "keep": keep})

    def index(self, object_type: str) -> TypeIndex:
        index = self.indexes.get(object_type)
        if index is None:
            index = self.indexes[object_type] = TypeIndex()
        return index

    def snapshot(self, object_id: str) -> dict[str, Any] | None:
        obj = self.objects.get(object_id)
        return copy.deepcopy(obj) if obj is not None else None

    def clear(self) -> None:
        with self.lock:
            self.objects.clear()
            self.indexes.clear()
            if self._journal_path:
                self.compact()

    # -- persistence -------------------------------------------------------------------

    def _write(self, record: dict[str, Any]) -> None:
        if self._journal is not None:
            self._journal.write(json.dumps(record, separators=(",", ":")) + "\n")
            self._journal.flush()

    def _load(self) -> None:
        if not self._journal_path.exists():
            return
        with self._journal_path.open(encoding="utf-8") as journal:
            for line in journal:
                try:
                    record = json.loads(line)
                except ValueError:
                    break  # a torn last line from a crash: everything before it stands
                if "put" in record:
                    obj = record["put"]
                    self.objects[obj["id"]] = obj
                    if record.get("listed", True):
                        self.index(obj["object"]).add(obj["id"])
                elif "unlist" in record:
                    object_id = record["unlist"]
                    obj = self.objects.get(object_id)
                    if obj is not None:
                        self.index(obj["object"]).remove(object_id)
                        if record.get("keep") is None:
                            del self.objects[object_id]
                        else:
                            self.objects[object_id] = record["keep"]

    def compact(self) -> None:
        """Rewrite the journal as one line per live object, atomically (temp + replace)."""
        if not self._journal_path:
            return
        with self.lock:
            if self._journal is not None:
                self._journal.close()
            listed = {oid for index in self.indexes.values() for oid in index.pos}
            # Rewrite in index order so replay rebuilds the same creation order.
            order = [oid for index in self.indexes.values() for oid in index.ids if oid]
            order += [oid for oid in self.objects if oid not in listed]
            tmp = self._journal_path.with_suffix(self._journal_path.suffix + ".tmp")
            self._journal_path.parent.mkdir(parents=True, exist_ok=True)
            with tmp.open("w", encoding="utf-8") as out:
                for oid in order:
                    record = {"put": self.objects[oid], "listed": oid in listed}
                    out.write(json.dumps(record, separators=(",", ":")) + "\n")
                out.flush()
                os.fsync(out.fileno())
            os.replace(tmp, self._journal_path)
            self._journal = self._journal_path.open("a", encoding="utf-8")

    def close(self) -> None:
        if self._journal_path:
            self.compact()
            with self.lock:
                if self._journal is not None:
                    self._journal.close()
                    self._journal = None
