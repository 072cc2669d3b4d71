"""The pipe from the server to its shadow worker: mirrored requests as framed pickles.

Each frame is a 4-byte big-endian length and a pickle. A mirrored request's deployment is
the same object for every request until the routing table changes, and pickling it (a
tree of dataclasses) was the largest part of a job's cost on the server's event loop. So a
deployment crosses once, as a *definition* the worker keeps under a number, and each job
carries that number in its place, with its other fields as they are.
"""

from __future__ import annotations

import dataclasses
import pickle
import struct
from collections import OrderedDict
from typing import Any

from keel.deploy.model import Deployment
from keel.deploy.shadow import MirrorJob

FRAME = struct.Struct("!I")
FIELDS = tuple(f.name for f in dataclasses.fields(MirrorJob))
REMEMBERED = 16  # deployments the encoder refers to; the decoder keeps four times as many
_DEFINE, _JOB = 0, 1


def _frame(message: tuple[Any, ...]) -> bytes:
    body = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
    return FRAME.pack(len(body)) + body


class Encoder:
    """The server's side: one per worker (its numbers mean something to that worker only)."""

    def __init__(self) -> None:
        self._known: OrderedDict[int, tuple[Deployment, int]] = OrderedDict()
        self._next = 0

    def encode(self, job: MirrorJob) -> bytes:
        deployment = job.deployment
        known = self._known.get(id(deployment))
        prefix = b""
        if known is None or known[0] is not deployment:  # (an id may be reused)
            number, self._next = self._next, self._next + 1
            self._known[id(deployment)] = (deployment, number)
            if len(self._known) > REMEMBERED:
                self._known.popitem(last=False)
            prefix = _frame((_DEFINE, number, deployment))
        else:
            number = known[1]
        values = tuple(number if name == "deployment" else getattr(job, name) for name in FIELDS)
        return prefix + _frame((_JOB, values))


class Decoder:
    """The worker's side: bytes in as they arrive, whole jobs out."""

    def __init__(self) -> None:
        self._buffer = bytearray()
        self._deployments: dict[int, Deployment] = {}

    def feed(self, data: bytes) -> list[MirrorJob]:
        buffer = self._buffer
        buffer += data
        jobs, start = [], 0
        while len(buffer) - start >= FRAME.size:
            (size,) = FRAME.unpack_from(buffer, start)
            end = start + FRAME.size + size
            if len(buffer) < end:
                break
            message = pickle.loads(buffer[start + FRAME.size : end])  # noqa: S301 - our parent
            start = end
            if message[0] == _DEFINE:
                self._define(message[1], message[2])
            else:
                fields = dict(zip(FIELDS, message[1], strict=True))
                fields["deployment"] = self._deployments[fields["deployment"]]
                jobs.append(MirrorJob(**fields))
        del buffer[:start]
        return jobs

    def _define(self, number: int, deployment: Deployment) -> None:
        self._deployments[number] = deployment
        if len(self._deployments) > 4 * REMEMBERED:  # the encoder refers to recent ones only
            del self._deployments[min(self._deployments)]
