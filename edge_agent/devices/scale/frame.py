"""What one indicator frame decodes to, and the unit table.

A parser returns one of three values per frame it recognises:

- `WeightFrame`: a weight, always in kg, with the indicator's own flags and the raw bytes;
- `BadFrame`: bytes shaped like a frame that failed a check (checksum, digits, length);
- `Notice`: a well-formed frame without a weight (an acknowledgement, an error code).

`Display` is the other direction: what an indicator shows, for the frame encoders the
simulator and the tests use.
"""

from __future__ import annotations

from dataclasses import dataclass

# Conversion factors to kg. The pound and ounce are exact by the 1959 international
# agreement; the long ton is 2240 lb; the troy ounce and pennyweight follow from the grain.
KG_PER_UNIT: dict[str, float] = {
    "kg": 1.0,
    "g": 0.001,
    "mg": 0.000001,
    "t": 1000.0,
    "lb": 0.45359237,
    "oz": 0.028349523125,
    "ozt": 0.0311034768,
    "dwt": 0.00155517384,
    "ton": 907.18474,  # short ton, 2000 lb
    "lt": 1016.0469088,  # long ton, 2240 lb
}


def to_kg(value: float, unit: str) -> float | None:
    """`value` in `unit` as kg, rounded to the milligram; None for a unit that is not a mass."""
    factor = KG_PER_UNIT.get(unit)
    if factor is None:
        return None
    return round(value * factor, 6)


@dataclass(frozen=True, slots=True)
class WeightFrame:
    """One decoded weight. `stable` is the indicator's own flag, None where it has none."""

    value_kg: float
    raw: bytes
    unit: str = "kg"  # as the indicator sent it; value_kg is already converted
    net: bool = False  # the indicator showed net (gross minus tare), not gross
    stable: bool | None = None
    out_of_range: bool = False
    tare_kg: float | None = None
    division_kg: float | None = None  # where the frame states it (Toledo SWA)

    @property
    def gross_kg(self) -> float | None:
        """The gross mass: the value itself, or net plus the tare the frame carries."""
        if not self.net:
            return self.value_kg
        if self.tare_kg is not None:
            return round(self.value_kg + self.tare_kg, 3)
        return None


@dataclass(frozen=True, slots=True)
class BadFrame:
    """Bytes shaped like a frame that failed a check; never a weight.

    Only what the bytes say: no source, no time. The transport stamps it, counts it and
    logs it as the reader's rejection (`ScaleReader.health()["last_reject"]`).
    """

    reason: str
    raw: bytes


@dataclass(frozen=True, slots=True)
class Notice:
    """A well-formed frame that carries no weight: an acknowledgement or an error code."""

    code: str
    raw: bytes
    error: bool = False


Frame = WeightFrame | BadFrame | Notice


@dataclass(frozen=True, slots=True)
class Display:
    """What an indicator shows, in kg: the input of the frame encoders."""

    value_kg: float
    motion: bool = False
    net: bool = False
    tare_kg: float = 0.0
    over: bool = False  # out of range (overload or underload)
    decimals: int = 0
    division_kg: float = 20.0

    def text(self, width: int) -> str:
        """The magnitude right-justified in `width` characters with its decimal point."""
        return f"{abs(self.value_kg):.{self.decimals}f}".rjust(width, "0")[-width:]
