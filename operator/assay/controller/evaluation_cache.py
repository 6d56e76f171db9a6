"""Evaluations as the controller reads them: from kopf's index, parsed once per resourceVersion, with the
status this process last wrote until the index shows that write.

Everything here can be lost (a restart) without harm: it is only ever a faster way to the index's content.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from assay.api import TERMINAL_PHASES, Evaluation, EvaluationStatus
from assay.controller.indexes import EvaluationIndex, EvaluationKey, first

logger = logging.getLogger(__name__)

TERMINAL_PHASE_NAMES = frozenset(phase.value for phase in TERMINAL_PHASES)  # as raw statuses have them


@dataclass
class EvaluationCache:
    """Reads Evaluations from ``index`` (kopf's ``evaluations_by_key``)."""

    index: EvaluationIndex | None
    # Status as last written and the resourceVersion it got, by uid, until the index shows that version
    # (till then the index may still show the older status).
    written: dict[str, tuple[str, dict[str, Any]]] = field(default_factory=dict)
    # Parsed Evaluations, by uid, with the resourceVersion they were parsed at.
    parsed: dict[str, tuple[str, Evaluation]] = field(default_factory=dict)
    # Parsed statuses, by uid, with the stored dict they were parsed from (compared by identity).
    statuses: dict[str, tuple[Mapping[str, Any], EvaluationStatus]] = field(default_factory=dict)

    def get(self, key: EvaluationKey) -> tuple[Mapping[str, Any], Evaluation] | None:
        """The raw Evaluation and its model, with the status this process last wrote."""
        raw = first(self.index, key)
        if raw is None:
            return None
        metadata = raw.get("metadata", {})
        uid, version = metadata.get("uid", ""), metadata.get("resourceVersion", "")
        cached = self.parsed.get(uid)
        if cached is not None and cached[0] == version:
            model = cached[1]
        else:
            try:
                model = Evaluation.model_validate({**raw, "status": {}})
            except ValidationError as exc:
                logger.warning("Evaluation %s/%s cannot be read and is ignored: %s", *key, exc)
                return None
            self.parsed[uid] = (version, model)
        stored = self.stored_status(raw)
        known = self.statuses.get(uid)
        if known is not None and known[0] is stored:  # the same stored status: no need to parse it again
            status = known[1]
        else:
            try:
                status = EvaluationStatus.model_validate(stored)
            except ValidationError:
                status = EvaluationStatus()
            self.statuses[uid] = (stored, status)
        return raw, model.model_copy(update={"status": status})

    def stored_status(self, raw: Mapping[str, Any]) -> Mapping[str, Any]:
        """The Evaluation's status: as this process last wrote it until the index shows that write."""
        metadata = raw.get("metadata") or {}
        uid = metadata.get("uid", "")
        written = self.written.get(uid)
        if written is not None:
            if written[0] != metadata.get("resourceVersion"):
                return written[1]
            del self.written[uid]  # the index caught up: keep one copy, not two
        status: Mapping[str, Any] = raw.get("status") or {}
        return status

    def wrote(self, uid: str, result: Mapping[str, Any]) -> None:
        """Remember a status write's answer (the object as the apiserver stored it)."""
        version = (result.get("metadata") or {}).get("resourceVersion", "")
        self.written[uid] = (version, dict(result.get("status") or {}))

    def is_echo(self, metadata: Mapping[str, Any]) -> bool:
        """Whether an event shows the Evaluation exactly as this process's last status write left it (its
        own write coming back: nothing new to decide)."""
        written = self.written.get(metadata.get("uid", ""))
        return written is not None and written[0] == metadata.get("resourceVersion")

    def raw_in(self, pool: str) -> Iterator[tuple[EvaluationKey, Mapping[str, Any]]]:
        """Every raw Evaluation that names ``pool``, finished ones included."""
        index = self.index
        for key in list(index or {}):
            raw = first(index, key)
            if raw is not None and (raw.get("spec") or {}).get("pool") == pool:
                yield key, raw

    def unfinished_in(self, pool: str, *, running_only: bool = False) -> Iterator[EvaluationKey]:
        """Keys of the pool's Evaluations not in a terminal phase (and, with ``running_only``, neither
        suspended nor cancelled), read from the raw objects."""
        for key, raw in self.raw_in(pool):
            spec = raw.get("spec") or {}
            if running_only and (spec.get("suspend") or spec.get("cancel")):
                continue
            if self.stored_status(raw).get("phase") not in TERMINAL_PHASE_NAMES:
                yield key

    def may_run_in(self, pool: str) -> Iterator[tuple[EvaluationKey, Evaluation]]:
        """The pool's Evaluations that may still run: not suspended, cancelled or finished.

        Decided on the raw objects first, so that a pool with thousands of idle Evaluations costs a
        dictionary lookup for each of them, not a parse."""
        for key in self.unfinished_in(pool, running_only=True):
            found = self.get(key)
            if found is not None:
                yield key, found[1]

    def idle(self, uid: str) -> None:
        """The Evaluation went idle (suspended, finished, not accepted): rarely read again, so not worth
        keeping parsed."""
        self.parsed.pop(uid, None)
        self.statuses.pop(uid, None)

    def forget(self, uid: str) -> None:
        """The Evaluation was deleted."""
        self.idle(uid)
        self.written.pop(uid, None)
