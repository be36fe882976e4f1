"""Pseudonymisation of personal data with a keyed HMAC, computed by Spark built-ins.

HMAC-SHA256(key, m) = SHA256((key ^ opad) || SHA256((key ^ ipad) || m)). The two padded keys
are constants per run, so the whole HMAC is two ``sha2`` calls over binary concatenations: no
Python UDF. The padded keys are not literals (a literal is printed in every plan, ``explain()``
and the event log, and the key is one XOR away from it): they are the columns of a one-row
DataFrame (:func:`hmac_key_frame`) that is broadcast-joined to the rows being hashed
(:func:`with_hmac_key`), so plans name the columns, never their values.

The key comes from an environment variable (on Databricks, set from a secret scope; on EMR from
Secrets Manager) and never from code or conf. Local runs may fall back to the documented
development key, which only ``conf/local.yaml`` allows.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable

from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F

from campaignlake.config import PiiConf
from campaignlake.errors import SecretMissingError

#: Documented, public, and therefore worthless outside local development.
DEVELOPMENT_KEY = "campaignlake-development-key-not-secret"
_BLOCK = 64


def resolve_hmac_key(pii: PiiConf, environ: dict[str, str] | None = None) -> bytes:
    """The HMAC key from ``$<pii.hmac_key_env>``; the development key only where allowed.

    Raises
    ------
    SecretMissingError
        When the variable is unset and the environment does not allow the development key.
    """
    env = os.environ if environ is None else environ
    value = env.get(pii.hmac_key_env, "")
    if value:
        return value.encode("utf-8")
    if pii.allow_development_key:
        return DEVELOPMENT_KEY.encode("utf-8")
    raise SecretMissingError(
        f"the PII HMAC key is missing: set the environment variable {pii.hmac_key_env} "
        "(from your secret store); this environment does not allow the development key"
    )


INNER_PAD = "__hmac_inner_pad"
OUTER_PAD = "__hmac_outer_pad"


def hmac_key_frame(spark: SparkSession, key: bytes) -> DataFrame:
    """A one-row DataFrame holding ``key``'s HMAC pads (``key ^ ipad``, ``key ^ opad``), for
    :func:`with_hmac_key`. Built on the driver from the key; never logged or printed."""
    if len(key) > _BLOCK:
        key = hashlib.sha256(key).digest()
    key = key.ljust(_BLOCK, b"\0")
    inner_pad = bytearray(b ^ 0x36 for b in key)
    outer_pad = bytearray(b ^ 0x5C for b in key)
    schema = f"{INNER_PAD} binary, {OUTER_PAD} binary"
    return spark.createDataFrame([(inner_pad, outer_pad)], schema)


def with_hmac_key(df: DataFrame, key_frame: DataFrame) -> DataFrame:
    """``df`` with the key's pads as two columns (a broadcast join of one row), so that
    :func:`hmac_sha256_hex` can be used in the next ``select``; select them away after."""
    return df.crossJoin(F.broadcast(key_frame))


def hmac_sha256_hex(value: Column) -> Column:
    """Hex HMAC-SHA256 of a string column (null stays null), under the key whose pads
    :func:`with_hmac_key` joined to the rows."""
    inner = F.unhex(F.sha2(F.concat(F.col(INNER_PAD), value.cast("binary")), 256))
    return F.when(value.isNull(), None).otherwise(F.sha2(F.concat(F.col(OUTER_PAD), inner), 256))


def normalise_email(email: Column) -> Column:
    """Trimmed and lower-cased; empty becomes null."""
    cleaned = F.lower(F.trim(email))
    return F.when(cleaned == "", None).otherwise(cleaned)


#: A pragmatic address check: one @, a non-empty local part, a dotted domain, no spaces.
EMAIL_PATTERN = (
    r"^[a-z0-9.!#$%&'*+/=?^_`{|}~-]+"
    r"@[a-z0-9](?:[a-z0-9-]*[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]*[a-z0-9])?)+$"
)


#: Digits of other scripts that customers type (full-width, Arabic-Indic, Eastern Arabic):
#: read as ASCII digits before anything is looked for, so that ``０１５１ ２３４５６７８`` is a
#: phone number too.
_OTHER_DIGITS = "０１２３４５６７８９٠١٢٣٤٥٦٧٨٩۰۱۲۳۴۵۶۷۸۹"
_ASCII_DIGITS = "0123456789" * 3

# An e-mail address inside free text, written plainly or spelled out to fool a filter:
# ``anna@example.com``, ``john @ example.com``, ``john dot doe at example dot com``,
# ``john(at)example[dot]com``, ``müller@exämple.de``. " at " and " dot " count only between
# address-like words that end in a dotted domain, so "looked at it. Great" stays.
_DOT = r"(?:\s*(?:\(dot\)|\[dot\]|\{dot\})\s*|\s+dot\s+|\.)"
_AT = r"(?:\s*(?:@|＠|\(at\)|\[at\]|\{at\})\s*|\s+at\s+)"
_WORD = r"[\p{L}\p{N}_%+-]+"
_LABEL = r"[\p{L}\p{N}-]+"
#: An e-mail address inside free text (case-insensitive), in any of the forms above.
EMAIL_IN_TEXT = (
    rf"(?i)(?<![\p{{L}}\p{{N}}_%+.-]){_WORD}(?:{_DOT}{_WORD})*{_AT}"
    rf"{_LABEL}(?:{_DOT}{_LABEL})*{_DOT}\p{{L}}{{2,}}(?![\p{{L}}\p{{N}}])(?!{_AT})"
)
#: A payment card number candidate: 13 to 19 digits, with single spaces or dashes between
#: them, not part of a longer number. Masked only when its Luhn check digit holds.
CARD_IN_TEXT = r"(?<![\w+])\d(?:[ -]?\d){12,18}(?![\w])(?![ -]?\d)"
#: An IBAN candidate: country, check digits, then groups of four (spaces optional). Masked
#: only when its ISO 7064 mod-97 checksum holds.
IBAN_IN_TEXT = (
    r"(?<![\p{L}\p{N}])[A-Z]{2}\d{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,3})?(?![\p{L}\p{N}])"
)
#: Any other run of 16 or more digits (account or card numbers that fail their checks,
#: several numbers written together): masked whole, so that no part of it is left behind.
LONG_NUMBER_IN_TEXT = r"(?<![\w+])\+?\d(?:[ ./()-]{0,2}\d){15,}(?!\w)"
#: A phone number inside free text: 7 to 15 digits, optionally after a +, with single spaces,
#: dots, dashes, slashes or brackets between them. Dates such as 2026-11-30 match too: masking
#: one by mistake costs a date, missing a phone number leaks it.
PHONE_IN_TEXT = r"(?<![\w+])\+?\(?\d(?:[ ./()-]{0,2}\d){6,14}(?!\w)"
EMAIL_MASK = "[email]"
PHONE_MASK = "[phone]"
CARD_MASK = "[card]"
IBAN_MASK = "[iban]"
NUMBER_MASK = "[number]"
#: Every mask the ingestion writes into free text, as a pattern (the text models skip them).
MASKS_IN_TEXT = r"\[(?:email|phone|card|iban|number)\]"


def _digit_values(number: Column) -> Column:
    """The decimal digits of ``number`` as an array of ints, in order."""
    chars = F.split(F.regexp_replace(number, r"\D", ""), "")
    return F.transform(F.filter(chars, lambda ch: ch != F.lit("")), lambda ch: ch.cast("int"))


def luhn_valid(number: Column) -> Column:
    """Whether the digits of ``number`` pass the Luhn check (payment card numbers)."""
    from_right = F.reverse(_digit_values(number))
    weighted = F.transform(
        from_right,
        lambda d, i: F.when(i % 2 == 1, F.when(d * 2 > 9, d * 2 - 9).otherwise(d * 2)).otherwise(d),
    )
    return F.aggregate(weighted, F.lit(0), lambda total, d: total + d) % 10 == 0


def iban_valid(iban: Column) -> Column:
    """Whether ``iban`` (spaces allowed) passes the ISO 7064 mod-97 check: the first four
    characters moved to the end, letters read as 10 … 35, the number modulo 97 is 1."""
    compact = F.upper(F.regexp_replace(iban, r"\s", ""))
    rearranged = F.concat(F.substring(compact, 5, 64), F.substring(compact, 1, 4))
    chars = F.filter(F.split(rearranged, ""), lambda ch: ch != F.lit(""))
    remainder = F.aggregate(
        chars,
        F.lit(0).cast("long"),
        lambda acc, ch: F.when(ch.rlike(r"^\d$"), (acc * 10 + ch.cast("long")) % 97).otherwise(
            (acc * 100 + F.ascii(ch) - 55) % 97
        ),
    )
    return remainder == 1


def _mask_valid(text: Column, pattern: str, valid: Callable[[Column], Column], mask: str) -> Column:
    """``text`` with each match of ``pattern`` that ``valid`` accepts replaced by ``mask``."""
    found = F.filter(F.regexp_extract_all(text, F.lit(pattern), F.lit(0)), valid)
    return F.aggregate(found, text, lambda masked, match: F.replace(masked, match, F.lit(mask)))


def mask_contact_details(text: Column) -> Column:
    """Free text with e-mail addresses (:data:`EMAIL_IN_TEXT`), IBANs that pass their checksum,
    card numbers that pass the Luhn check, other runs of 16 or more digits and phone numbers
    replaced by ``[email]``, ``[iban]``, ``[card]``, ``[number]`` and ``[phone]`` (null stays
    null): what customers write can carry their own or someone else's contact and payment
    details, which no text feature needs. Names written without an address are not found."""
    ascii_digits = F.translate(text, _OTHER_DIGITS, _ASCII_DIGITS)
    masked = F.regexp_replace(ascii_digits, EMAIL_IN_TEXT, EMAIL_MASK)
    masked = _mask_valid(masked, IBAN_IN_TEXT, iban_valid, IBAN_MASK)
    masked = _mask_valid(masked, CARD_IN_TEXT, luhn_valid, CARD_MASK)
    masked = F.regexp_replace(masked, LONG_NUMBER_IN_TEXT, NUMBER_MASK)
    return F.regexp_replace(masked, PHONE_IN_TEXT, PHONE_MASK)
