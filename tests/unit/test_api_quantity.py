from decimal import Decimal

import pytest

from assay.api.quantity import QuantityError, format_quantity, is_quantity, parse_quantity


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("1", Decimal(1)),
        (4, Decimal(4)),
        ("500m", Decimal("0.5")),
        ("1.5", Decimal("1.5")),
        ("16Gi", Decimal(16 * 2**30)),
        ("1Ki", Decimal(1024)),
        ("2Ei", Decimal(2 * 2**60)),
        ("1k", Decimal(1000)),
        ("3M", Decimal(3_000_000)),
        ("1G", Decimal(10**9)),
        ("1e3", Decimal(1000)),
        ("12E-1", Decimal("1.2")),
        ("100n", Decimal("1e-7")),
        (".5", Decimal("0.5")),
        ("+2", Decimal(2)),
        ("0", Decimal(0)),
    ],
)
def test_parse_quantity_follows_kubernetes_rules(text: str | int, value: Decimal) -> None:
    assert parse_quantity(text) == value


@pytest.mark.parametrize("text", ["", "-1", "1GiB", "1 Gi", "abc", "1.2.3", "Gi", "1e", True, "1" * 70])
def test_parse_quantity_rejects_what_kubernetes_rejects(text: str) -> None:
    with pytest.raises(QuantityError):
        parse_quantity(text)
    assert not is_quantity(text)


@pytest.mark.parametrize(
    ("value", "binary", "text"),
    [
        (Decimal(4), False, "4"),
        (Decimal("0.5"), False, "500m"),
        (Decimal(16 * 2**30), True, "16Gi"),
        (Decimal(1536 * 2**20), True, "1536Mi"),
        (Decimal(1000), True, "1000"),
        (Decimal(0), True, "0"),
        (Decimal("0.0001"), False, "1m"),  # rounded up, never under-reported
    ],
)
def test_format_quantity(value: Decimal, binary: bool, text: str) -> None:
    assert format_quantity(value, binary=binary) == text


def test_format_then_parse_round_trips() -> None:
    for text in ["16Gi", "250m", "8", "3Ki"]:
        value = parse_quantity(text)
        assert parse_quantity(format_quantity(value, binary=True)) == value
