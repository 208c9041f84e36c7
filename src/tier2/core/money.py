"""Money as the core checks it: ISO 4217 currency codes, bounded amounts, amounts rounded by
the library's rule (by default to cents, half-up)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from decimal import (
    ROUND_CEILING,
    ROUND_DOWN,
    ROUND_FLOOR,
    ROUND_HALF_EVEN,
    ROUND_HALF_UP,
    ROUND_UP,
    Context,
    Decimal,
)

# The active ISO 4217 alphabetic codes (national currencies, funds and the precious metals),
# without XTS (reserved for testing) and XXX (no currency).
ISO_4217 = frozenset(
    """
    AED AFN ALL AMD ANG AOA ARS AUD AWG AZN BAM BBD BDT BGN BHD BIF BMD BND BOB BOV BRL BSD
    BTN BWP BYN BZD CAD CDF CHE CHF CHW CLF CLP CNY COP COU CRC CUP CVE CZK DJF DKK DOP DZD
    EGP ERN ETB EUR FJD FKP GBP GEL GHS GIP GMD GNF GTQ GYD HKD HNL HTG HUF IDR ILS INR IQD
    IRR ISK JMD JOD JPY KES KGS KHR KMF KPW KRW KWD KYD KZT LAK LBP LKR LRD LSL LYD MAD MDL
    MGA MKD MMK MNT MOP MRU MUR MVR MWK MXN MXV MYR MZN NAD NGN NIO NOK NPR NZD OMR PAB PEN
    PGK PHP PKR PLN PYG QAR RON RSD RUB RWF SAR SBD SCR SDG SEK SGD SHP SLE SLL SOS SRD SSP
    STN SVC SYP SZL THB TJS TMT TND TOP TRY TTD TWD TZS UAH UGX USD USN UYI UYU UYW UZS VED
    VES VND VUV WST XAF XAG XAU XBA XBB XBC XBD XCD XCG XDR XOF XPD XPF XPT XSU XUA YER ZAR
    ZMW ZWG ZWL
    """.split()  # noqa: SIM905 (the table as ISO publishes it, readable)
)

# The largest amount tier2 reads or computes (a trillion): beyond it an amount is an input
# error in a case, and a library error when a policy computes it.
MAX_AMOUNT = 1e12


def money(x: float) -> float:
    """Round an amount half-up to cents, the way a finance team would."""
    return float(Decimal(repr(x)).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP))


# The rounding modes a library may name: decimal's ROUND_* names, lower-cased, without ROUND_.
ROUNDINGS = {
    "half_up": ROUND_HALF_UP, "half_even": ROUND_HALF_EVEN, "down": ROUND_DOWN,
    "up": ROUND_UP, "ceiling": ROUND_CEILING, "floor": ROUND_FLOOR,
}  # fmt: skip
_EXACT = Context(prec=400)  # digits enough for any float at any of the places a rule allows


@dataclass(frozen=True, slots=True)
class MoneyRule:
    """How a library rounds the money it computes: to `places` decimals, by `rounding` (one
    of ROUNDINGS). The default is cents, half-up, as `money` rounds."""

    places: int = 2
    rounding: str = "half_up"


def round_money(x: float, rule: MoneyRule) -> float:
    """The float nearest the amount rounded by the rule, reading x as its shortest decimal
    (so 2.675 is 2.675, not the binary value just below it). An amount that is not finite is
    returned as it is."""
    if not math.isfinite(x):
        return x
    step = Decimal(1).scaleb(-rule.places)
    exact = Decimal(repr(float(x))).quantize(step, ROUNDINGS[rule.rounding], _EXACT)
    return float(exact)


def amount_text(amount: float) -> str:
    """An amount for a person: with thousands separators and at least two decimals, and as
    many more as it has (a library may round to other than cents), so what is shown is what
    is carried out: 240.00, 1,212.45, 1.235."""
    text = f"{amount:,.2f}"
    if not math.isfinite(amount) or float(text.replace(",", "")) == amount:
        return text
    return f"{Decimal(repr(amount)):,f}"
