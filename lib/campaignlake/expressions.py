"""The safe expression language of campaign (and trigger) files.

Campaign files are written by marketers, not by the people who run the cluster, yet their
``eligibility`` runs inside Spark. Full Spark SQL can call into the JVM (``reflect``,
``java_method``), read files (``text.`/etc/passwd```), run subqueries and UDFs. So an expression
is parsed with Spark's own parser (what is checked is exactly what would run) and accepted only
when every node of its tree is a column reference, a literal, a comparison, boolean or arithmetic
operator, or a call of a pure built-in function from :data:`ALLOWED_FUNCTIONS`.
"""

from __future__ import annotations

from typing import Any

from py4j.protocol import Py4JJavaError
from pyspark.errors import ParseException
from pyspark.sql import SparkSession

from campaignlake.errors import ConfigError

#: Catalyst expression classes (simple names) an expression may be built of.
ALLOWED_NODES = frozenset(
    {
        # references and constants
        "UnresolvedAttribute",
        "UnresolvedExtractValue",
        "Literal",
        # boolean logic and comparisons
        "And",
        "Or",
        "Not",
        "EqualTo",
        "EqualNullSafe",
        "LessThan",
        "LessThanOrEqual",
        "GreaterThan",
        "GreaterThanOrEqual",
        "In",
        "InSet",
        "IsNull",
        "IsNotNull",
        "Like",
        "ILike",
        "RLike",
        # arithmetic
        "Add",
        "Subtract",
        "Multiply",
        "Divide",
        "IntegralDivide",
        "Remainder",
        "UnaryMinus",
        "UnaryPositive",
        # conditionals and types
        "CaseWhen",
        "If",
        "Cast",
        # calls: the function name is checked against ALLOWED_FUNCTIONS
        "UnresolvedFunction",
    }
)

#: Pure, deterministic built-in functions (no I/O, no JVM calls, no randomness, no state).
ALLOWED_FUNCTIONS = frozenset(
    {
        "abs", "array_contains", "between", "ceil", "ceiling", "coalesce", "concat",
        "contains", "date_add", "date_sub", "datediff", "dayofmonth", "dayofweek", "element_at",
        "endswith", "exp", "floor", "greatest", "if", "ifnull", "in", "isnan", "isnotnull",
        "isnull", "least", "length", "ln", "log", "log10", "lower", "ltrim", "map_contains_key",
        "month", "nanvl", "nullif", "nvl", "nvl2", "pow", "power", "round", "rtrim", "sign",
        "signum", "size", "sqrt", "startswith", "substr", "substring", "to_date", "trim",
        "try_cast", "upper", "year",
    }
)  # fmt: skip

#: Expression classes whose name tells the user more than the class name does.
_DESCRIBED = {
    "Exists": "a subquery (EXISTS)",
    "ScalarSubquery": "a subquery",
    "InSubquery": "a subquery (IN (SELECT ...))",
    "ListQuery": "a subquery (IN (SELECT ...))",
    "LambdaFunction": "a lambda function",
    "UnresolvedStar": "'*'",
    "UnresolvedWindowExpression": "a window function",
    "WindowExpression": "a window function",
}


def check_safe_expression(spark: SparkSession, expression: str, where: str) -> None:
    """Refuse ``expression`` unless it stays inside the safe expression language.

    Parameters
    ----------
    spark
        A session whose SQL parser parses the expression (no data is read).
    expression
        The Spark SQL expression from a configuration file.
    where
        ``<file>: <key>``, the start of every error message.

    Raises
    ------
    ConfigError
        When the expression does not parse, calls a function outside
        :data:`ALLOWED_FUNCTIONS` (``reflect``, ``java_method``, UDFs, qualified names), or
        holds a subquery, a file relation, a lambda, a window or any other construct outside
        :data:`ALLOWED_NODES`; the message names ``where`` and the offending function.
    """
    parser = spark._jsparkSession.sessionState().sqlParser()  # type: ignore[union-attr]
    try:
        tree = parser.parseExpression(expression)
    except (ParseException, Py4JJavaError) as exc:
        message = str(exc).strip().splitlines()[0]
        raise ConfigError(f"{where}: not a Spark SQL expression: {message}") from None
    _check_node(tree, where)


def _check_node(node: Any, where: str) -> None:
    kind = str(node.getClass().getSimpleName())
    if kind == "UnresolvedFunction":
        parts = [str(p) for p in _seq(node.nameParts())]
        name = ".".join(parts)
        if len(parts) != 1 or parts[0].lower() not in ALLOWED_FUNCTIONS:
            raise ConfigError(
                f"{where}: function {name!r} is not allowed; the safe expression language "
                f"allows columns, literals, operators and these functions: "
                f"{', '.join(sorted(ALLOWED_FUNCTIONS))}"
            )
    elif kind not in ALLOWED_NODES:
        what = _DESCRIBED.get(kind, f"{kind!r}")
        raise ConfigError(
            f"{where}: {what} is not allowed; the safe expression language allows columns, "
            "literals, comparison, boolean and arithmetic operators, CASE WHEN, CAST and "
            "pure built-in functions"
        )
    for child in _seq(node.children()):
        _check_node(child, where)


def _seq(scala_seq: Any) -> list[Any]:
    return [scala_seq.apply(i) for i in range(scala_seq.size())]
