"""Money as the core checks it: ISO 4217 currency codes, bounded amounts, cents rounded
half-up."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

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
