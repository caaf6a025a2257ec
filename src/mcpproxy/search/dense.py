"""Tool vectors in one numpy matrix, for the semantic half of hybrid search.

Each tool with a vector has a row; rows of removed tools are reused. A query is one matrix-vector
product (10,000 tools x 384 dimensions: about 4 million multiply-adds, under 2 ms on one core), then a
partial sort of the best rows. Vectors are unit length, so the product is the cosine similarity.
This module needs numpy, which the ``embeddings`` extra brings; it is imported only in hybrid mode.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np

from mcpproxy.search.base import Allow

if TYPE_CHECKING:
    import numpy.typing as npt

    Vector = npt.NDArray[np.float32]
else:
    Vector = Any

__all__ = ["DenseIndex"]


def _dot_rows(matrix: Any, vector: Any) -> Any:
    """Each row of ``matrix`` dotted with ``vector``, on the calling thread.

    ``matrix @ vector`` goes to the BLAS, whose matrix-vector product starts a thread per core
    for a matrix this size: on a shared two-core machine that cost two to four times the CPU time
    (and more wall-clock time) of a plain loop over the rows, which ``vecdot`` (numpy 2) and
    ``einsum`` are.
    """
    vecdot = getattr(np, "vecdot", None)
    if vecdot is not None:
        return vecdot(matrix, vector)
    return np.einsum("ij,j->i", matrix, vector)


class DenseIndex:
    """Unit vectors by tool key (``server:name``), searchable by cosine similarity.

    Args:
        dimension: Length of every vector.
    """

    def __init__(self, dimension: int) -> None:
        self.dimension = dimension
        self._matrix = np.zeros((64, dimension), dtype=np.float32)
        self._row: dict[str, int] = {}
        self._key: list[str | None] = []
        self._free: list[int] = []

    def __len__(self) -> int:
        return len(self._row)

    def __contains__(self, key: object) -> bool:
        return key in self._row

    def set(self, key: str, vector: Vector) -> None:
        """Store (or replace) the vector of ``key``."""
        row = self._row.get(key)
        if row is None:
            if self._free:
                row = self._free.pop()
                self._key[row] = key
            else:
                row = len(self._key)
                self._key.append(key)
                if row >= len(self._matrix):
                    grown = np.zeros((2 * len(self._matrix), self.dimension), dtype=np.float32)
                    grown[: len(self._matrix)] = self._matrix
                    self._matrix = grown
            self._row[key] = row
        self._matrix[row] = vector

    def set_many(self, vectors: Mapping[str, Vector]) -> None:
        for key, vector in vectors.items():
            self.set(key, vector)

    def remove(self, key: str) -> None:
        """Forget the vector of ``key`` (a no-op when it has none)."""
        row = self._row.pop(key, None)
        if row is not None:
            self._matrix[row] = 0.0
            self._key[row] = None
            self._free.append(row)

    def vector(self, key: str) -> Vector | None:
        row = self._row.get(key)
        return None if row is None else self._matrix[row]

    def similarity(self, key: str, query: Vector) -> float | None:
        row = self._row.get(key)
        return None if row is None else float(self._matrix[row] @ query)

    def ranked(self, query: Vector, limit: int, allow: Allow | None = None) -> list[tuple[str, float]]:
        """The ``limit`` keys most similar to ``query`` (a unit vector), best first, ties by key.

        Args:
            query: The query's vector.
            limit: Maximum number of keys.
            allow: ``allow(server, tool)``; refused tools take no place.

        Returns:
            ``(key, cosine)`` pairs.
        """
        used = len(self._key)
        if limit <= 0 or not self._row:
            return []
        sims = _dot_rows(self._matrix[:used], query)
        free = [row for row in self._free if row < used]
        if free:
            sims[free] = -np.inf
        k = min(used, limit)
        out: list[tuple[str, float]] = []
        taken = 0
        while True:
            top = np.argpartition(-sims, k - 1)[:k] if k < used else np.arange(used)
            order = sorted(top.tolist(), key=lambda r: (-float(sims[r]), self._key[r] or ""))
            for row in order[taken:]:
                key = self._key[row]
                if key is None:
                    continue
                server, _, name = key.partition(":")
                if allow is None or allow(server, name):
                    out.append((key, float(sims[row])))
                    if len(out) == limit:
                        return out
            if k >= used:
                return out
            taken = len(order)
            k = min(used, k * 4)
