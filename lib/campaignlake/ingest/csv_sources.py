"""CSV exports (CRM customers, deletion requests, products catalog, campaign history) → silver.

Each file is read with every field as a string, so that a wrong type is seen and named instead
of becoming null. A parse function returns the typed rows plus ``reason`` (null when valid) and
``issues`` (invalid optional fields that were nulled, the row being kept).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from pyspark.sql import Column, DataFrame, SparkSession, Window
from pyspark.sql import functions as F
from pyspark.sql.types import StringType, StructField, StructType

from campaignlake import columns as c
from campaignlake.hadoop_fs import escape_glob, relative_source_file, source_file
from campaignlake.ingest.quarantine import (
    ERASED,
    ERASED_CUSTOMER,
    FIELD_NULLED,
    REJECTED,
    SUPERSEDED,
    blank,
    first_failure,
    to_quarantine,
)
from campaignlake.pii import (
    EMAIL_PATTERN,
    hmac_sha256_hex,
    mask_contact_details,
    normalise_email,
    with_hmac_key,
)
from campaignlake.schemas import CUSTOMERS

CORRUPT = "_corrupt_record"
STALE_DUPLICATE = "stale_duplicate"
ISSUES = "issues"

CUSTOMER_FIELDS = (
    c.CUSTOMER_ID, c.EMAIL, c.FIRST_NAME, c.LAST_NAME, c.COUNTRY, c.CITY, c.SIGNUP_DATE,
    c.BIRTH_YEAR, c.LOYALTY_TIER, c.EMAIL_OPT_IN, c.SMS_OPT_IN, c.PUSH_OPT_IN, c.PHONE,
    c.UPDATED_AT,
)  # fmt: skip
DELETION_FIELDS = (c.CUSTOMER_ID, c.REQUESTED_AT)
PRODUCT_FIELDS = (
    c.PRODUCT_ID, c.NAME, c.CATEGORY, c.BRAND, c.PRICE, c.ACTIVE, c.DESCRIPTION, c.TAGS,
)  # fmt: skip
#: Catalogue exports from before text features end at ``active``.
PRODUCT_OPTIONAL_FIELDS = (c.DESCRIPTION, c.TAGS)
REVIEW_FIELDS = (
    c.REVIEW_ID, c.CUSTOMER_ID, c.PRODUCT_ID, c.RATING, c.TITLE, c.TEXT, c.CREATED_AT,
)  # fmt: skip
#: Tags in a catalogue export: one field, separated by ``|`` (or ``;``).
TAG_SEPARATOR = r"\s*[|;]\s*"
CAMPAIGN_FIELDS = (
    c.CAMPAIGN_ID, c.CHANNEL, c.CUSTOMER_ID, c.SENT_AT, c.OPENED_AT, c.CLICKED_AT,
    c.CONVERTED_AT, c.REVENUE, c.GROUP,
)  # fmt: skip
#: Exports from before control groups were recorded end at ``revenue``: every row is a contact.
CAMPAIGN_OPTIONAL_FIELDS = (c.GROUP,)

TRUE_WORDS = ("true", "1", "yes", "y", "t")
FALSE_WORDS = ("false", "0", "no", "n", "f")
PHONE_PATTERN = r"^\+?[0-9][0-9 ()/-]{5,24}$"


@dataclass(frozen=True)
class CsvRules:
    """Validation settings for CSV exports, from ``ingest`` in the conf and the batch."""

    ingested_at: datetime
    max_future_skew_hours: int
    loyalty_tiers: tuple[str, ...]
    channels: tuple[str, ...]
    countries: tuple[str, ...]

    @property
    def latest_valid_ts(self) -> datetime:
        """The newest timestamp accepted: now plus the allowed clock skew."""
        return self.ingested_at + timedelta(hours=self.max_future_skew_hours)


def read_csv_records(
    spark: SparkSession,
    files: list[str],
    fields: tuple[str, ...],
    root: str,
    *,
    optional: tuple[str, ...] = (),
) -> tuple[DataFrame, list[str]]:
    """Rows of CSV ``files`` (header required, RFC 4180: quoted fields may hold commas, doubled
    quotes and line breaks; ``.csv.gz`` is decompressed) as strings, with ``source_file``
    (relative to ``root``) and ``_corrupt_record`` (the raw row when it does not have the
    expected number of fields). I/O, not a transform.

    Parameters
    ----------
    optional
        Trailing ``fields`` that older exports do not have: a file whose header is ``fields``
        without them is read too, with those columns null.

    Returns
    -------
    tuple
        The rows of the files whose header is ``fields`` (or ``fields`` without the optional
        ones), and the full paths of the files whose header is not (they are not read: the
        caller quarantines each as a whole).
    """
    required = fields[: len(fields) - len(optional)] if optional else fields
    if optional and fields[len(required) :] != optional:
        raise ValueError(f"optional fields {optional} must be the last of {fields}")
    schema = _string_schema(fields)
    if not files:
        empty = spark.createDataFrame([], schema)
        return empty.withColumn(c.SOURCE_FILE, F.lit(None).cast("string")), []
    paths = [escape_glob(f) for f in files]
    lines = spark.read.text(paths).select(F.col("value"), source_file().alias(c.SOURCE_FILE))
    line = F.trim(F.col("value"))
    #: file → whether it has the older header (without the optional fields).
    without_full_header = {
        r[c.SOURCE_FILE]: bool(r["short"]) and bool(optional)
        for r in lines.groupBy(c.SOURCE_FILE)
        .agg(
            F.max((line == ",".join(fields)).cast("int")).alias("full"),
            F.max((line == ",".join(required)).cast("int")).alias("short"),
        )
        .where(F.col("full") == 0)
        .collect()  # one row per file without the full header
    }
    bad_headers = sorted(f for f, older in without_full_header.items() if not older)
    short = {f for f, older in without_full_header.items() if older}
    full_paths = [p for f, p in zip(files, paths, strict=True) if f not in without_full_header]
    short_paths = [p for f, p in zip(files, paths, strict=True) if f in short]
    if not full_paths and not short_paths:
        return read_csv_records(spark, [], fields, root)[0], bad_headers
    parts = []
    if full_paths:
        parts.append(_read_csv(spark, full_paths, schema, root))
    if short_paths:
        older = _read_csv(spark, short_paths, _string_schema(required), root)
        absent = [F.lit(None).cast("string").alias(f) for f in optional]
        parts.append(older.select(*required, *absent, CORRUPT, c.SOURCE_FILE))
    rows = parts[0] if len(parts) == 1 else parts[0].unionByName(parts[1])
    return rows, bad_headers


def _string_schema(fields: tuple[str, ...]) -> StructType:
    return StructType(
        [StructField(name, StringType()) for name in fields] + [StructField(CORRUPT, StringType())]
    )


def _read_csv(spark: SparkSession, paths: list[str], schema: StructType, root: str) -> DataFrame:
    return (
        spark.read.schema(schema)
        .option("header", "true")
        .option("mode", "PERMISSIVE")
        .option("columnNameOfCorruptRecord", CORRUPT)
        .option("encoding", "UTF-8")
        .option("multiLine", "true")
        .option("quote", '"')
        .option("escape", '"')
        .csv(paths)
        .withColumn(c.SOURCE_FILE, relative_source_file(root))
    )


def raw_record(fields: tuple[str, ...]) -> Column:
    """The row as it came: the corrupt line, else its fields as JSON."""
    return F.coalesce(F.col(CORRUPT), F.to_json(F.struct(*[F.col(f) for f in fields])))


def audit_columns(
    fields: tuple[str, ...], reason: Column, issues: Column | None = None
) -> list[Column]:
    """The columns every parsed CSV row ends with: where it came from, the row as it came,
    why it was rejected (null if it was not) and which optional fields were nulled."""
    return [
        F.col(c.SOURCE_FILE),
        raw_record(fields).alias(c.RAW_RECORD),
        reason.alias(c.REASON),
        (F.array().cast("array<string>") if issues is None else issues).alias(ISSUES),
    ]


def text(name: str) -> Column:
    """A trimmed string field, null when blank."""
    return F.when(blank(F.col(name)), None).otherwise(F.trim(F.col(name)))


def parse_ts(name: str) -> Column:
    """Column ``name`` parsed as a timestamp; null when it does not parse."""
    return F.expr(f"try_to_timestamp(trim(`{name}`))")


def parse_bool(name: str) -> Column:
    """Column ``name`` as a boolean by the true/false words; null for any other value."""
    word = F.lower(text(name))
    return F.when(word.isin(*TRUE_WORDS), True).when(word.isin(*FALSE_WORDS), False)


def export_date_of(source_file: Column) -> Column:
    """The export date in a file name such as ``products_2026-10-31.csv`` (null without one,
    or when it is not a calendar date)."""
    text = F.nullif(F.regexp_extract(source_file, r".*(\d{4}-\d{2}-\d{2})", 1), F.lit(""))
    return F.to_date(F.try_to_timestamp(text, F.lit("yyyy-MM-dd")))


def _issues(checks: list[tuple[Column, str]]) -> Column:
    """Names of the optional fields that were invalid (and are nulled)."""
    return F.filter(
        F.array(*[F.when(F.coalesce(bad, F.lit(False)), F.lit(name)) for bad, name in checks]),
        lambda x: x.isNotNull(),
    )


def parse_customers(
    raw: DataFrame,
    rules: CsvRules,
    hmac_key: DataFrame,
    attributes: tuple[tuple[str, str], ...] = (),
) -> DataFrame:
    """Typed CRM rows: emails normalised and pseudonymised, consent flags as booleans, and the
    declared extra ``attributes`` ((name, numeric|categorical), after the contract's columns)
    in the ``attributes`` map as trimmed strings. ``hmac_key`` is the pseudonymisation key as
    :func:`campaignlake.pii.hmac_key_frame` holds it.

    Rejected (``reason``): malformed rows, a missing customer_id, a missing, unparseable or
    future ``updated_at``. Nulled but kept (``issues``): an invalid email (``email_valid`` is
    false and no hash is kept), phone, country, loyalty tier, signup date, birth year or consent
    flag; a country outside ``ingest.valid_countries`` is nulled too. A consent flag that cannot
    be read counts as no consent.
    """
    updated_at = parse_ts(c.UPDATED_AT)
    email = normalise_email(F.col(c.EMAIL))
    email_ok = email.rlike(EMAIL_PATTERN)
    phone = text(c.PHONE)
    country = F.upper(text(c.COUNTRY))
    tier = F.lower(text(c.LOYALTY_TIER))
    signup = F.to_date(F.expr(f"try_to_timestamp(trim(`{c.SIGNUP_DATE}`), 'yyyy-MM-dd')"))
    birth_year = F.expr(f"try_cast(trim(`{c.BIRTH_YEAR}`) AS INT)")
    max_year = rules.ingested_at.year
    flags = {name: parse_bool(name) for name in (c.EMAIL_OPT_IN, c.SMS_OPT_IN, c.PUSH_OPT_IN)}
    reason = first_failure(
        [
            (F.col(CORRUPT).isNotNull(), "malformed_row"),
            (text(c.CUSTOMER_ID).isNull(), "missing_customer_id"),
            (text(c.UPDATED_AT).isNull(), "missing_updated_at"),
            (updated_at.isNull(), "unparseable_updated_at"),
            (updated_at > F.lit(rules.latest_valid_ts), "future_updated_at"),
        ]
    )
    issues = _issues(
        [
            (email.isNotNull() & ~email_ok, "invalid_email"),
            (phone.isNotNull() & ~phone.rlike(PHONE_PATTERN), "invalid_phone"),
            (country.isNotNull() & ~country.isin(*rules.countries), "invalid_country"),
            (tier.isNotNull() & ~tier.isin(*rules.loyalty_tiers), "invalid_loyalty_tier"),
            (text(c.SIGNUP_DATE).isNotNull() & signup.isNull(), "invalid_signup_date"),
            (
                text(c.BIRTH_YEAR).isNotNull()
                & (birth_year.isNull() | (birth_year < 1900) | (birth_year > max_year)),
                "invalid_birth_year",
            ),
            *[(text(n).isNotNull() & flag.isNull(), f"invalid_{n}") for n, flag in flags.items()],
            *[
                (text(n).isNotNull() & _not_a_number(n), f"invalid_{n}")
                for n, kind in attributes
                if kind == "numeric"
            ],
        ]
    )
    attribute_values = [
        F.when(_not_a_number(n), None).otherwise(text(n)) if kind == "numeric" else text(n)
        for n, kind in attributes
    ]
    attribute_map = (
        F.map_from_arrays(F.array(*[F.lit(n) for n, _ in attributes]), F.array(*attribute_values))
        if attributes
        else F.create_map().cast("map<string,string>")
    )
    valid_email = F.when(email_ok, email)
    return with_hmac_key(raw, hmac_key).select(
        text(c.CUSTOMER_ID).alias(c.CUSTOMER_ID),
        valid_email.alias(c.EMAIL),
        hmac_sha256_hex(valid_email).alias(c.EMAIL_HASH),
        F.coalesce(email_ok, F.lit(False)).alias(c.EMAIL_VALID),
        text(c.FIRST_NAME).alias(c.FIRST_NAME),
        text(c.LAST_NAME).alias(c.LAST_NAME),
        F.when(phone.rlike(PHONE_PATTERN), phone).alias(c.PHONE),
        F.when(country.isin(*rules.countries), country).alias(c.COUNTRY),
        text(c.CITY).alias(c.CITY),
        signup.alias(c.SIGNUP_DATE),
        F.when((birth_year >= 1900) & (birth_year <= max_year), birth_year).alias(c.BIRTH_YEAR),
        F.when(tier.isin(*rules.loyalty_tiers), tier).alias(c.LOYALTY_TIER),
        *[F.coalesce(flag, F.lit(False)).alias(name) for name, flag in flags.items()],
        updated_at.alias(c.UPDATED_AT),
        attribute_map.alias(c.ATTRIBUTES),
        *audit_columns(CUSTOMER_FIELDS + tuple(n for n, _ in attributes), reason, issues),
    )


def _not_a_number(name: str) -> Column:
    return F.expr(f"try_cast(trim(`{name}`) AS DOUBLE)").isNull()


def parse_deletion_requests(raw: DataFrame, rules: CsvRules) -> DataFrame:
    """Typed deletion requests; rejected when the id or the request time is missing or bad."""
    requested_at = parse_ts(c.REQUESTED_AT)
    reason = first_failure(
        [
            (F.col(CORRUPT).isNotNull(), "malformed_row"),
            (text(c.CUSTOMER_ID).isNull(), "missing_customer_id"),
            (requested_at.isNull(), "unparseable_requested_at"),
            (requested_at > F.lit(rules.latest_valid_ts), "future_requested_at"),
        ]
    )
    return raw.select(
        text(c.CUSTOMER_ID).alias(c.CUSTOMER_ID),
        requested_at.alias(c.REQUESTED_AT),
        *audit_columns(DELETION_FIELDS, reason),
    )


def parse_products(raw: DataFrame, rules: CsvRules) -> DataFrame:
    """Typed catalog rows; the export date comes from the file name. ``description`` is
    optional free text, ``tags`` a ``|``-separated list (lower-cased, blanks dropped)."""
    price = F.expr(f"try_cast(trim(`{c.PRICE}`) AS DECIMAL(12,2))")
    active = parse_bool(c.ACTIVE)
    reason = first_failure(
        [
            (F.col(CORRUPT).isNotNull(), "malformed_row"),
            (text(c.PRODUCT_ID).isNull(), "missing_product_id"),
            (text(c.NAME).isNull(), "missing_name"),
            (text(c.CATEGORY).isNull(), "missing_category"),
            (price.isNull(), "invalid_price"),
            (price < 0, "negative_price"),
            (active.isNull(), "invalid_active_flag"),
            (export_date_of(F.col(c.SOURCE_FILE)).isNull(), "missing_export_date_in_file_name"),
        ]
    )
    return raw.select(
        text(c.PRODUCT_ID).alias(c.PRODUCT_ID),
        text(c.NAME).alias(c.NAME),
        F.lower(text(c.CATEGORY)).alias(c.CATEGORY),
        text(c.BRAND).alias(c.BRAND),
        price.alias(c.PRICE),
        active.alias(c.ACTIVE),
        text(c.DESCRIPTION).alias(c.DESCRIPTION),
        _tags(text(c.TAGS)).alias(c.TAGS),
        export_date_of(F.col(c.SOURCE_FILE)).alias(c.EXPORT_DATE),
        *audit_columns(PRODUCT_FIELDS, reason),
    )


def _tags(field: Column) -> Column:
    tags = F.transform(F.split(F.lower(field), TAG_SEPARATOR), lambda t: F.trim(t))
    return F.when(field.isNull(), F.array().cast("array<string>")).otherwise(
        F.filter(tags, lambda t: t != "")
    )


def parse_reviews(raw: DataFrame, rules: CsvRules) -> DataFrame:
    """Typed product reviews, with e-mail addresses and phone numbers in ``title`` and
    ``text`` masked (:func:`~campaignlake.pii.mask_contact_details`) before anything is
    stored; the raw record of a rejected row goes to quarantine as it came (erasure searches
    it).

    Rejected (``reason``): malformed rows, a missing review, customer or product id, a rating
    that is not a whole number from 1 to 5, a missing, unparseable or future ``created_at``.
    A review with a rating and no words is kept (it still says how the customer felt).
    """
    created_at = parse_ts(c.CREATED_AT)
    rating = F.expr(f"try_cast(trim(`{c.RATING}`) AS INT)")
    rating_text = F.trim(F.col(c.RATING))
    reason = first_failure(
        [
            (F.col(CORRUPT).isNotNull(), "malformed_row"),
            (text(c.REVIEW_ID).isNull(), "missing_review_id"),
            (text(c.CUSTOMER_ID).isNull(), "missing_customer_id"),
            (text(c.PRODUCT_ID).isNull(), "missing_product_id"),
            (
                rating.isNull() | ~rating.between(1, 5) | ~rating_text.rlike(r"^[0-9]+$"),
                "invalid_rating",
            ),
            (text(c.CREATED_AT).isNull(), "missing_created_at"),
            (created_at.isNull(), "unparseable_created_at"),
            (created_at > F.lit(rules.latest_valid_ts), "future_created_at"),
        ]
    )
    return raw.select(
        text(c.REVIEW_ID).alias(c.REVIEW_ID),
        text(c.CUSTOMER_ID).alias(c.CUSTOMER_ID),
        text(c.PRODUCT_ID).alias(c.PRODUCT_ID),
        rating.alias(c.RATING),
        mask_contact_details(text(c.TITLE)).alias(c.TITLE),
        mask_contact_details(text(c.TEXT)).alias(c.TEXT),
        created_at.alias(c.CREATED_AT),
        export_date_of(F.col(c.SOURCE_FILE)).alias(c.EXPORT_DATE),
        *audit_columns(REVIEW_FIELDS, reason),
    )


def parse_campaign_contacts(raw: DataFrame, rules: CsvRules) -> DataFrame:
    """Typed campaign history rows: one per (campaign, customer), a contact and its response
    (``group`` treatment) or a customer held out of the campaign (``group`` control: never
    contacted, ``sent_at`` is when the others were sent, no response)."""
    times = {n: parse_ts(n) for n in (c.SENT_AT, c.OPENED_AT, c.CLICKED_AT, c.CONVERTED_AT)}
    revenue = F.expr(f"try_cast(trim(`{c.REVENUE}`) AS DECIMAL(12,2))")
    channel = F.lower(text(c.CHANNEL))
    sent = times[c.SENT_AT]
    responses = [c.OPENED_AT, c.CLICKED_AT, c.CONVERTED_AT]
    # A row without a group is a contact (exports from before holdouts were recorded).
    group = F.coalesce(F.lower(text(c.GROUP)), F.lit(c.TREATMENT))
    reason = first_failure(
        [
            (F.col(CORRUPT).isNotNull(), "malformed_row"),
            (text(c.CAMPAIGN_ID).isNull(), "missing_campaign_id"),
            (text(c.CUSTOMER_ID).isNull(), "missing_customer_id"),
            (~channel.isin(*rules.channels) | channel.isNull(), "invalid_channel"),
            (sent.isNull(), "unparseable_sent_at"),
            (sent > F.lit(rules.latest_valid_ts), "future_sent_at"),
            *[(text(n).isNotNull() & times[n].isNull(), f"unparseable_{n}") for n in responses],
            *[(times[n] < sent, "response_before_send") for n in responses],
            (text(c.REVENUE).isNotNull() & revenue.isNull(), "invalid_revenue"),
            (revenue < 0, "negative_revenue"),
            (~group.isin(c.TREATMENT, c.CONTROL), "invalid_group"),
            (
                (group == c.CONTROL)
                & F.coalesce(*[text(n) for n in (*responses, c.REVENUE)]).isNotNull(),
                "control_with_response",
            ),
            (export_date_of(F.col(c.SOURCE_FILE)).isNull(), "missing_export_date_in_file_name"),
        ]
    )
    return raw.select(
        text(c.CAMPAIGN_ID).alias(c.CAMPAIGN_ID),
        channel.alias(c.CHANNEL),
        text(c.CUSTOMER_ID).alias(c.CUSTOMER_ID),
        *[times[n].alias(n) for n in (c.SENT_AT, *responses)],
        revenue.alias(c.REVENUE),
        group.alias(c.GROUP),
        export_date_of(F.col(c.SOURCE_FILE)).alias(c.EXPORT_DATE),
        *audit_columns(CAMPAIGN_FIELDS, reason),
    )


CONSENT_FLAGS = (c.EMAIL_OPT_IN, c.SMS_OPT_IN, c.PUSH_OPT_IN)


def _customer_update_condition() -> str:
    """Merge condition of ``silver/customers`` (aliases s, t): a newer ``updated_at`` wins;
    on a tie the row as :func:`resolve_ties_with_table` merged it replaces the table's when
    it differs in any field."""
    compared = [
        f"to_json(s.`{f.name}`) <=> to_json(t.`{f.name}`)"
        if f.name == c.ATTRIBUTES
        else f"s.`{f.name}` <=> t.`{f.name}`"
        for f in CUSTOMERS.fields
        if f.name not in (c.BATCH_ID, c.INGESTED_AT)
    ]
    tie = f"s.`{c.UPDATED_AT}` = t.`{c.UPDATED_AT}`"
    return f"s.`{c.UPDATED_AT}` > t.`{c.UPDATED_AT}` OR ({tie} AND NOT ({' AND '.join(compared)}))"


CUSTOMER_UPDATE_CONDITION = _customer_update_condition()


def _file_name(path: Column) -> Column:
    return F.element_at(F.split(path, "/"), -1)


def withdrawn_consent_in_ties(refined: DataFrame) -> DataFrame:
    """Among versions of a customer with the same ``updated_at`` in one batch, the winner (the
    later export) keeps a consent flag only if every tied version has it: a "no" in any of
    them applies.

    Parameters
    ----------
    refined
        Parsed CRM rows after :func:`mark_superseded` (winners have no reason, the versions they
        replaced ``stale_duplicate``).
    """
    versions = refined.where(F.col(c.REASON).isNull() | (F.col(c.REASON) == STALE_DUPLICATE)).where(
        F.col(c.CUSTOMER_ID).isNotNull() & F.col(c.UPDATED_AT).isNotNull()
    )
    tied = versions.groupBy(c.CUSTOMER_ID, c.UPDATED_AT).agg(
        *[F.min(F.col(flag)).alias(f"__all_{flag}") for flag in CONSENT_FLAGS]
    )
    winners = refined.where(F.col(c.REASON).isNull()).join(
        tied, on=[c.CUSTOMER_ID, c.UPDATED_AT], how="left"
    )
    merged = winners.select(
        *[
            F.coalesce(F.col(f"__all_{n}"), F.col(n)).alias(n) if n in CONSENT_FLAGS else F.col(n)
            for n in refined.columns
        ]
    )
    return merged.unionByName(refined.where(F.col(c.REASON).isNotNull()))


def resolve_ties_with_table(source: DataFrame, table: DataFrame) -> DataFrame:
    """The rows to merge into ``silver/customers`` when a version has the same ``updated_at``
    as the table's: the later export wins (file names carry the export date, and a file taken
    again wins over its earlier self), and each consent flag is kept only if both versions
    have it, so an opt-out is never lost to a tie. Rows without a tie are returned as they are.

    Parameters
    ----------
    source
        The batch's winning rows, in the table's schema.
    table
        The current ``silver/customers``.
    """
    current = table.select(*[F.col(n).alias(f"__t_{n}") for n in source.columns])
    joined = source.join(
        current, on=F.col(c.CUSTOMER_ID) == F.col(f"__t_{c.CUSTOMER_ID}"), how="left"
    )
    tie = F.coalesce(F.col(c.UPDATED_AT) == F.col(f"__t_{c.UPDATED_AT}"), F.lit(False))
    source_wins = _file_name(F.col(c.SOURCE_FILE)) >= _file_name(F.col(f"__t_{c.SOURCE_FILE}"))
    keep_own = (c.BATCH_ID, c.INGESTED_AT)

    def resolved(name: str) -> Column:
        mine, theirs = F.col(name), F.col(f"__t_{name}")
        if name in CONSENT_FLAGS:
            return F.when(tie, mine & theirs).otherwise(mine)
        if name in keep_own:
            return mine
        return F.when(tie & ~source_wins, theirs).otherwise(mine)

    return joined.select(*[resolved(n).alias(n) for n in source.columns])


def mark_superseded(parsed: DataFrame, keys: list[str], newest_first: list[Column]) -> DataFrame:
    """Among valid rows sharing ``keys``, keep the first by ``newest_first``; give the others
    the reason ``stale_duplicate``."""
    order = Window.partitionBy(*keys).orderBy(*newest_first, F.col(c.RAW_RECORD))
    valid = parsed.where(F.col(c.REASON).isNull()).withColumn("__rank", F.row_number().over(order))
    marked = valid.withColumn(c.REASON, F.when(F.col("__rank") > 1, F.lit(STALE_DUPLICATE))).drop(
        "__rank"
    )
    return marked.unionByName(parsed.where(F.col(c.REASON).isNotNull()))


def to_silver(
    parsed: DataFrame, schema: StructType, batch_id: str, ingested_at: datetime
) -> DataFrame:
    """The rows without a reason, in the silver table's schema."""
    return _with_batch(parsed.where(F.col(c.REASON).isNull()), schema, batch_id, ingested_at)


def to_history(
    parsed: DataFrame, schema: StructType, batch_id: str, ingested_at: datetime
) -> DataFrame:
    """Every valid version of a record, superseded ones included, in the target table's
    schema: the history that point-in-time features read."""
    valid = parsed.where(F.col(c.REASON).isNull() | (F.col(c.REASON) == STALE_DUPLICATE))
    return _with_batch(valid, schema, batch_id, ingested_at)


def _with_batch(
    rows: DataFrame, schema: StructType, batch_id: str, ingested_at: datetime
) -> DataFrame:
    derived = {c.BATCH_ID: F.lit(batch_id), c.INGESTED_AT: F.lit(ingested_at).cast("timestamp")}
    return rows.select(
        *[derived.get(name, F.col(name)).alias(name) for name in schema.fieldNames()]
    )


def to_csv_quarantine(
    parsed: DataFrame, key: Column, batch_id: str, ingested_at: datetime
) -> DataFrame:
    """Rejected and superseded rows, and one row per nulled field of kept rows."""
    common = {"key": key, "batch_id": batch_id, "ingested_at": ingested_at}
    flagged = parsed.where(F.col(c.REASON).isNotNull())
    rows = to_quarantine(
        flagged,
        raw=F.col(c.RAW_RECORD),
        reason=F.col(c.REASON),
        disposition=F.when(F.col(c.REASON) == STALE_DUPLICATE, F.lit(SUPERSEDED))
        .when(F.col(c.REASON) == ERASED_CUSTOMER, F.lit(ERASED))
        .otherwise(F.lit(REJECTED)),
        **common,
    )
    field_issues = parsed.where(F.col(c.REASON).isNull()).select(
        "*", F.explode(F.col(ISSUES)).alias("__issue")
    )
    nulled = to_quarantine(
        field_issues,
        raw=F.col(c.RAW_RECORD),
        reason=F.col("__issue"),
        disposition=FIELD_NULLED,
        **common,
    )
    return rows.unionByName(nulled)
