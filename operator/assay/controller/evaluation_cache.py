"""Evaluations as the controller reads them: from kopf's index (compact, see
:class:`~assay.controller.indexes.StoredEvaluation`), parsed once per resourceVersion, with the status this
process last wrote until the index shows that write.

Everything here can be lost (a restart) without harm: it is only ever a faster way to the index's content.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from assay.api import TERMINAL_PHASES, Evaluation, EvaluationStatus
from assay.controller.indexes import EvaluationIndex, EvaluationKey, StoredEvaluation, first

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
    # Parsed statuses, by uid, with the resourceVersion of the status they were parsed from.
    statuses: dict[str, tuple[str, EvaluationStatus]] = field(default_factory=dict)

    def get(self, key: EvaluationKey) -> tuple[Mapping[str, Any], Evaluation] | None:
        """The raw Evaluation and its model, with the status this process last wrote."""
        stored = first(self.index, key)
        if stored is None:
            return None
        raw = stored.raw()
        uid, version = stored.uid, stored.resource_version
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
        status_version = self.status_version(stored)
        known = self.statuses.get(uid)
        if known is not None and known[0] == status_version:  # the same stored status: no need to parse it
            status = known[1]
        else:
            try:
                status = EvaluationStatus.model_validate(self.stored_status(raw))
            except ValidationError:
                status = EvaluationStatus()
            self.statuses[uid] = (status_version, status)
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

    def status_version(self, stored: StoredEvaluation) -> str:
        """The resourceVersion of the status :meth:`stored_status` answers for this Evaluation."""
        written = self.written.get(stored.uid)
        return written[0] if written is not None else stored.resource_version

    def stored_phase(self, stored: StoredEvaluation) -> str | None:
        """The phase of the status :meth:`stored_status` answers, without decoding the Evaluation."""
        written = self.written.get(stored.uid)
        if written is not None and written[0] != stored.resource_version:
            phase: str | None = written[1].get("phase")
            return phase
        return stored.phase

    def wrote(self, uid: str, result: Mapping[str, Any]) -> None:
        """Remember a status write's answer (the object as the apiserver stored it)."""
        version = (result.get("metadata") or {}).get("resourceVersion", "")
        self.written[uid] = (version, dict(result.get("status") or {}))

    def is_echo(self, metadata: Mapping[str, Any]) -> bool:
        """Whether an event shows the Evaluation exactly as this process's last status write left it (its
        own write coming back: nothing new to decide). The index then holds that status, so the copy kept
        since the write is dropped: an Evaluation that is not read again (suspended, finished) would
        otherwise keep two."""
        uid = metadata.get("uid", "")
        written = self.written.get(uid)
        if written is None or written[0] != metadata.get("resourceVersion"):
            return False
        del self.written[uid]
        return True

    def in_pool(self, pool: str) -> Iterator[tuple[EvaluationKey, StoredEvaluation]]:
        """Every Evaluation that names ``pool``, finished ones included, as the index keeps them."""
        index = self.index
        for key in list(index or {}):
            stored = first(index, key)
            if stored is not None and stored.pool == pool:
                yield key, stored

    def unfinished_in(self, pool: str, *, running_only: bool = False) -> Iterator[EvaluationKey]:
        """Keys of the pool's Evaluations not in a terminal phase (and, with ``running_only``, neither
        suspended nor cancelled), read without decoding them."""
        for key, stored in self.in_pool(pool):
            if running_only and (stored.suspend or stored.cancel):
                continue
            if self.stored_phase(stored) not in TERMINAL_PHASE_NAMES:
                yield key

    def may_run_in(self, pool: str) -> Iterator[tuple[EvaluationKey, Evaluation]]:
        """The pool's Evaluations that may still run: not suspended, cancelled or finished.

        Decided on the index's header fields first, so that a pool with thousands of idle Evaluations costs
        a dictionary lookup for each of them, not a parse."""
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
