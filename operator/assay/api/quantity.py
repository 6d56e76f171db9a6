"""Kubernetes resource quantities ("500m", "16Gi", "1e3") as exact decimals.

Used wherever Assay compares or adds quantities: pool min/max checks, quota sums, cost. Follows the rules of
``k8s.io/apimachinery/pkg/api/resource``: a decimal number, then at most one suffix — binary (Ki … Ei),
decimal SI (n, u, m, k, M, G, T, P, E) or a decimal exponent (e3, E-2).
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation
from typing import Annotated, Any

from pydantic import BeforeValidator, WithJsonSchema

BINARY_SUFFIXES: dict[str, int] = {
    "Ki": 2**10,
    "Mi": 2**20,
    "Gi": 2**30,
    "Ti": 2**40,
    "Pi": 2**50,
    "Ei": 2**60,
}
DECIMAL_SUFFIXES: dict[str, Decimal] = {
    "n": Decimal("1e-9"),
    "u": Decimal("1e-6"),
    "m": Decimal("1e-3"),
    "": Decimal(1),
    "k": Decimal("1e3"),
    "M": Decimal("1e6"),
    "G": Decimal("1e9"),
    "T": Decimal("1e12"),
    "P": Decimal("1e15"),
    "E": Decimal("1e18"),
}

# Non-negative quantities only: nothing in Assay (requests, bounds, quota) may be negative.
QUANTITY_PATTERN = r"^\+?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))(([KMGTPE]i)|[numkMGTPE]|([eE][+-]?[0-9]+))?$"
# Kubernetes never needs more; bounds the CEL cost of rules that read quantities.
QUANTITY_MAX_LENGTH = 64
_QUANTITY_RE = re.compile(QUANTITY_PATTERN)
_SPLIT_RE = re.compile(r"^\+?(?P<number>[0-9]*\.?[0-9]*)(?P<suffix>.*)$")


class QuantityError(ValueError):
    """Not a Kubernetes quantity."""


def parse_quantity(value: str | int | Decimal) -> Decimal:
    """The exact value of a quantity: ``parse_quantity("16Gi") == 2**34``, ``parse_quantity("500m") == 0.5``.

    Raises :class:`QuantityError` for anything Kubernetes would not accept (including negative values).
    """
    if isinstance(value, bool):
        raise QuantityError(f"{value!r} is not a quantity")
    if isinstance(value, int | Decimal):
        if value < 0:
            raise QuantityError(f"quantity {value} is negative")
        return Decimal(value)
    text = str(value).strip()
    if len(text) > QUANTITY_MAX_LENGTH or not _QUANTITY_RE.match(text):
        raise QuantityError(f"{value!r} is not a Kubernetes quantity (examples: 1, 500m, 4, 16Gi, 1e3)")
    match = _SPLIT_RE.match(text)
    assert match is not None  # guaranteed by the pattern above
    number, suffix = match["number"], match["suffix"]
    try:
        magnitude = Decimal(number)
    except InvalidOperation as exc:  # pragma: no cover - the pattern admits only decimals
        raise QuantityError(f"{value!r} is not a Kubernetes quantity") from exc
    if suffix in BINARY_SUFFIXES:
        return magnitude * BINARY_SUFFIXES[suffix]
    if suffix in DECIMAL_SUFFIXES:
        return magnitude * DECIMAL_SUFFIXES[suffix]
    return magnitude * (Decimal(10) ** int(suffix[1:]))  # e/E exponent


def format_quantity(value: Decimal | int, *, binary: bool = False) -> str:
    """A canonical quantity string: whole numbers plain ("4"), fractions in milli units ("500m").

    With ``binary`` (memory), exact multiples of 1024 use the largest binary suffix ("16Gi").
    """
    amount = Decimal(value)
    if amount < 0:
        raise QuantityError(f"quantity {value} is negative")
    if amount == amount.to_integral_value():
        whole = int(amount)
        if binary and whole:
            for suffix, factor in reversed(BINARY_SUFFIXES.items()):
                if whole % factor == 0:
                    return f"{whole // factor}{suffix}"
        return str(whole)
    milli = amount * 1000
    if milli == milli.to_integral_value():
        return f"{int(milli)}m"
    # Below a milli-unit Kubernetes rounds up; so do we, never under-reporting a request.
    return f"{int(milli.to_integral_value(rounding='ROUND_CEILING'))}m"


def is_quantity(value: Any) -> bool:
    """True when ``value`` is a valid non-negative quantity."""
    try:
        parse_quantity(value)
    except QuantityError:
        return False
    return True


def _validate_quantity(value: Any) -> str:
    # The apiserver stores `gpu: 1` (int-or-string) as an integer; Assay always handles the string form.
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise ValueError(f"{value!r} is not a Kubernetes quantity (examples: 1, 500m, 16Gi)")
    text = str(value).strip()
    parse_quantity(text)
    return text


QUANTITY_SCHEMA: dict[str, Any] = {
    "x-kubernetes-int-or-string": True,
    "anyOf": [{"type": "integer"}, {"type": "string"}],
    "minimum": 0,
    "pattern": QUANTITY_PATTERN,
    "maxLength": QUANTITY_MAX_LENGTH,
}

Quantity = Annotated[str, BeforeValidator(_validate_quantity), WithJsonSchema(QUANTITY_SCHEMA)]
"""A Kubernetes quantity, kept as the string the user wrote (an integer from the API becomes its string)."""
