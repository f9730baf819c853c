"""ISO 4217 currency codes in circulation, and the symbols shown as ``currencySymbol``.

Data, not logic: the list changes about once a year. A code without a well-known symbol shows as itself.
"""

CODES = frozenset(
    """
    AED AFN ALL AMD ANG AOA ARS AUD AWG AZN BAM BBD BDT BGN BHD BIF BMD BND BOB BOV BRL BSD BTN BWP BYN BZD
    CAD CDF CHE CHF CHW CLF CLP CNY COP COU CRC CUP CVE CZK DJF DKK DOP DZD EGP ERN ETB EUR FJD FKP GBP GEL
    GHS GIP GMD GNF GTQ GYD HKD HNL HTG HUF IDR ILS INR IQD IRR ISK JMD JOD JPY KES KGS KHR KMF KPW KRW KWD
    KYD KZT LAK LBP LKR LRD LSL LYD MAD MDL MGA MKD MMK MNT MOP MRU MUR MVR MWK MXN MXV MYR MZN NAD NGN NIO
    NOK NPR NZD OMR PAB PEN PGK PHP PKR PLN PYG QAR RON RSD RUB RWF SAR SBD SCR SDG SEK SGD SHP SLE SOS SRD
    SSP STN SVC SYP SZL THB TJS TMT TND TOP TRY TTD TWD TZS UAH UGX USD USN UYI UYU UYW UZS VED VES VND VUV
    WST XAF XAG XAU XCD XCG XDR XOF XPD XPF XPT XSU XUA YER ZAR ZMW ZWG
    """.split()  # noqa: SIM905 (a block of codes reads and diffs better than a 180-item literal)
)

SYMBOLS = {
    "AUD": "A$",
    "BGN": "лв",
    "BRL": "R$",
    "CAD": "C$",
    "CHF": "CHF",
    "CNY": "¥",
    "CZK": "Kč",
    "DKK": "kr",
    "EUR": "€",
    "GBP": "£",
    "HUF": "Ft",
    "ILS": "₪",
    "INR": "₹",
    "JPY": "¥",
    "KRW": "₩",
    "MXN": "MX$",
    "NOK": "kr",
    "NZD": "NZ$",
    "PLN": "zł",
    "RON": "lei",
    "RUB": "₽",
    "SEK": "kr",
    "THB": "฿",
    "TRY": "₺",
    "UAH": "₴",
    "USD": "$",
    "VND": "₫",
    "ZAR": "R",
}


def currency_symbol(code: str | None) -> str | None:
    if not code:
        return None
    return SYMBOLS.get(code, code)
