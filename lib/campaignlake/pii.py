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


#: An e-mail address inside free text (case-insensitive).
EMAIL_IN_TEXT = r"(?i)[a-z0-9._%+-]+@[a-z0-9-]+(?:\.[a-z0-9-]+)*\.[a-z]{2,}"
#: A phone number inside free text: 7 to 15 digits, optionally after a +, with single spaces,
#: dots, dashes, slashes or brackets between them. Dates such as 2026-11-30 match too: masking
#: one by mistake costs a date, missing a phone number leaks it.
PHONE_IN_TEXT = r"(?<![\w+])\+?\(?\d(?:[ ./()-]{0,2}\d){6,14}(?!\w)"
EMAIL_MASK = "[email]"
PHONE_MASK = "[phone]"


def mask_contact_details(text: Column) -> Column:
    """Free text with every e-mail address replaced by ``[email]`` and every phone number by
    ``[phone]`` (null stays null): what customers write can carry their own or someone
    else's contact details, which no text feature needs."""
    without_emails = F.regexp_replace(text, EMAIL_IN_TEXT, EMAIL_MASK)
    return F.regexp_replace(without_emails, PHONE_IN_TEXT, PHONE_MASK)
