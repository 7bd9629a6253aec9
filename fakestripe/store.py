"""In-memory state: objects by id, per-type insertion-ordered indexes, journal persistence.

Lists walk an index kept in creation order, so a page costs O(limit + skipped), never a sort.
Persistence appends one JSON line per object write (constant cost per write, unlike
re-pickling the whole store) and compacts the journal on start and shutdown.
"""

from __future__ import annotations

import bisect
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


def _indexable(value: Any) -> Any:
    return value if isinstance(value, str) and value else None


class TypeIndex:
    """Ids of one object type in creation order; removal leaves a hole to keep positions.

    Optional secondary indexes map a field's value (e.g. a charge's `customer`) to the sorted
    positions of the objects holding it, so a filtered list walks only its matches.
    """

    __slots__ = ("by_value", "fields", "ids", "pos", "values")

    def __init__(self, fields: tuple[str, ...] = ()) -> None:
        self.ids: list[str | None] = []
        self.pos: dict[str, int] = {}
        self.fields = fields
        self.by_value: dict[str, dict[str, list[int]]] = {f: {} for f in fields}
        self.values: dict[str, tuple] = {}

    def add(self, object_id: str, obj: dict[str, Any] | None = None) -> None:
        if object_id not in self.pos:
            self.pos[object_id] = len(self.ids)
            self.ids.append(object_id)
        if obj is not None and self.fields:
            self.reindex(obj)

    def reindex(self, obj: dict[str, Any]) -> None:
        position = self.pos.get(obj["id"])
        if position is None or not self.fields:
            return
        new = tuple(_indexable(obj.get(f)) for f in self.fields)
        old = self.values.get(obj["id"], (None,) * len(self.fields))
        if new == old:
            return
        for field, before, after in zip(self.fields, old, new, strict=True):
            if before == after:
                continue
            if before is not None:
                self._drop(self.by_value[field], before, position)
            if after is not None:
                bisect.insort(self.by_value[field].setdefault(after, []), position)
        self.values[obj["id"]] = new

    @staticmethod
    def _drop(table: dict[str, list[int]], value: str, position: int) -> None:
        positions = table.get(value, [])
        i = bisect.bisect_left(positions, position)
        if i < len(positions) and positions[i] == position:
            del positions[i]
        if not positions:
            table.pop(value, None)

    def remove(self, object_id: str) -> None:
        position = self.pos.pop(object_id, None)
        if position is None:
            return
        self.ids[position] = None
        for field, value in zip(self.fields, self.values.pop(object_id, ()), strict=False):
            if value is not None:
                self._drop(self.by_value[field], value, position)

    def matching(self, field: str, value: str) -> list[int]:
        """Sorted positions of objects whose `field` equals `value` (an indexed field)."""
        return self.by_value[field].get(value, [])

    def newest_first(self, before: int | None = None, positions: list[int] | None = None):
        if positions is None:
            start = len(self.ids) - 1 if before is None else before - 1
            candidates = range(start, -1, -1)
        else:
            end = len(positions) if before is None else bisect.bisect_left(positions, before)
            candidates = (positions[i] for i in range(end - 1, -1, -1))
        for i in candidates:
            object_id = self.ids[i]
            if object_id is not None:
                yield object_id

    def oldest_first(self, after: int, positions: list[int] | None = None) -> Iterator[str]:
        if positions is None:
            candidates = range(after + 1, len(self.ids))
        else:
            start = bisect.bisect_right(positions, after)
            candidates = (positions[i] for i in range(start, len(positions)))
        for i in candidates:
            object_id = self.ids[i]
            if object_id is not None:
                yield object_id


class Store:
    """All emulator objects. Callers hold `lock` around read-modify-write sequences."""

    def __init__(
        self,
        state_file: str | os.PathLike | None = None,
        indexed: dict[str, tuple[str, ...]] | None = None,
    ) -> None:
        self.lock = threading.RLock()
        self.indexed = indexed or {}  # object type -> fields with a secondary index
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
                self.index(obj["object"]).add(obj["id"], obj)
            self._write({"put": obj, "listed": listed})
        return obj

    def save(self, obj: dict[str, Any]) -> None:
        """Record an in-place change of a stored object (journal and secondary indexes)."""
        with self.lock:
            index = self.index(obj["object"])
            index.reindex(obj)
            self._write({"put": obj, "listed": obj["id"] in index.pos})

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
            index = self.indexes[object_type] = TypeIndex(self.indexed.get(object_type, ()))
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
                        self.index(obj["object"]).add(obj["id"], obj)
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
