"""The keyword table of SPEC 3.2 rules: one small compiler per keyword.

Each compiler takes the keyword's argument node and a `Site` and returns a `Check`
closure (or None after recording a problem). `conditions.py` owns how rules,
fields and alternatives combine; this module owns what each keyword means and
the JSON value semantics (types, equality) the keywords share.
"""

from __future__ import annotations

import difflib
import itertools
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import orjson
import re2

from .expressions import MISSING, ExpressionError, TemplateRuntimeError, compile_template, lookup
from .model import EvalContext, GuardFailure
from .nodes import Node
from .shapes import did_you_mean, listing

if TYPE_CHECKING:
    from .conditions import CompileContext

Vars = Mapping[str, Any]
# value (MISSING when absent), context, $vars so far, the field's display path
Check = Callable[[Any, EvalContext, Vars, str], list[GuardFailure]]

TYPES = ("string", "integer", "number", "boolean", "object", "array", "null")
# isinstance's unions, built once: `str | list` inside a test builds a new union per call
_TEXT_OR_ARRAY = str | list
_ARRAY = list | tuple
_RE2_OPTIONS = re2.Options()
_RE2_OPTIONS.log_errors = False  # a bad pattern is a Problem, not a line on stderr


@dataclass(frozen=True, slots=True)
class Site:
    """Where a keyword is being compiled: for problems, known `vars` and nested rules."""

    ctx: CompileContext
    path: str
    known_vars: frozenset[str]
    compile_rule: Callable[[Node, CompileContext, str, frozenset[str]], Check]

    def nested(self, node: Node, path: str) -> Check:
        return self.compile_rule(node, self.ctx, path, self.known_vars)


# ---- one compiler per keyword: (argument node, site) -> Check | None -----------


def _required(arg: Node, site: Site) -> Check | None:
    if not isinstance(arg.value, bool):
        return _bad(arg, site, "required must be true or false")
    if not arg.value:
        return None

    def check(value: Any, ectx: EvalContext, vars: Vars, shown: str) -> list[GuardFailure]:
        if value is MISSING:
            return [GuardFailure(shown, "required", f"{shown} is required")]
        return []

    check.only_missing = True  # type: ignore[attr-defined]  # a present value always passes
    return check


def _type(arg: Node, site: Site) -> Check | None:
    items = [i.value for i in arg.value] if isinstance(arg.value, list) else [arg.value]
    # An unquoted `type: null` is YAML's null, which can only mean the null type.
    names = ["null" if n is None else n for n in items]
    wrong = [n for n in names if n not in TYPES]
    if wrong or not names:
        first = wrong[0] if wrong else None
        close = difflib.get_close_matches(str(first), TYPES, n=1) if wrong else []
        hint = f" (did you mean '{close[0]}'?)" if close else ""
        return _bad(
            arg,
            site,
            f"type must be one of {', '.join(TYPES)} or a list of them; {first!r} is not{hint}",
        )
    wanted = frozenset(names)
    label = names[0] if len(names) == 1 else "one of " + ", ".join(names)

    if "number" in wanted:
        wanted = wanted | {"integer"}
    # the exact classes decoded JSON uses for the wanted types: one set lookup
    exact = frozenset(cls for cls, name in _EXACT_TYPES.items() if name in wanted)

    def test(value: Any, ectx: EvalContext, vars: Vars) -> str | None:
        if value.__class__ in exact:
            return None
        found = json_type(value)
        return None if found in wanted else f"must be of type {label} (got {found} {show(value)})"

    return _present(test, "type")


def _regex(arg: Node, site: Site) -> Check | None:
    pattern = arg.value
    if not isinstance(pattern, str):
        return _bad(arg, site, "regex must be a string (quote it, or use !!pcre /.../)")
    if len(pattern) > site.ctx.regex_max:
        return _bad(
            arg, site, f"regex is {len(pattern)} characters; the limit is {site.ctx.regex_max}"
        )
    try:
        compiled = re2.compile(pattern, _RE2_OPTIONS)
    except re2.error as exc:
        reason = (
            exc.args[0].decode(errors="replace")
            if exc.args and isinstance(exc.args[0], bytes)
            else exc
        )
        return _bad(
            arg,
            site,
            f"bad regex {pattern!r}: {reason} (RE2 syntax: no lookaround or backreferences)",
        )

    found = _re2_search(compiled)

    def test(value: Any, ectx: EvalContext, vars: Vars) -> str | None:
        if isinstance(value, str) and found(value):
            return None
        return f"must match {pattern} (got {show(value)})"

    return _present(test, "regex")


def _re2_search(compiled: Any) -> Callable[[str], bool]:
    """`compiled.search(text) is not None`, without building a match object.

    The wrapper's `search` maps byte offsets back to characters for the match
    object, which costs more than the RE2 match itself; a guard needs only yes
    or no. Same regexp, same UTF-8 bytes the wrapper would give it.
    """
    regexp = getattr(compiled, "_regexp", None)
    anchor = getattr(getattr(re2, "_Anchor", None), "UNANCHORED", None)
    if regexp is None or anchor is None:  # another wrapper version: the public API
        return lambda text: compiled.search(text) is not None

    def search(text: str) -> bool:
        try:
            encoded = text.encode("utf-8")
        except UnicodeEncodeError:  # a lone surrogate: let the wrapper decide
            return compiled.search(text) is not None
        return bool(regexp.Match(anchor, encoded, 0, len(encoded))[0] != (-1, -1))

    return _remembered(search)


MEMO_SIZE = 16_384  # answers remembered, across every compiled regex (then it starts over)
MEMO_TEXT = 256  # characters of the longest text remembered
# (regex number, text) -> found. One table for all regexes, so its memory (at most
# ~6 MB) does not grow with the number of machines and rules a user defines.
_MEMO: dict[tuple[int, str], bool] = {}
_regex_numbers = itertools.count()


MEMO = _MEMO  # also remembers the short strings a value-only rule passed (conditions.py)
# keywords whose test looks at the value alone, never the context or `$vars`
VALUE_ONLY = frozenset({"type", "regex", "enum", "const", "min", "max", "min_length",
                        "max_length"})
# the value-only keywords whose test costs more than the memo's lookup and insert: a rule
# of only the others (type, const, bounds, lengths) is cheaper to run than to remember
WORTH_REMEMBERING = frozenset({"regex", "enum"})


def memo_number() -> int:
    """A number for a memo's keys in the shared table (a regex's, a rule's)."""
    return next(_regex_numbers)


def remember_pass(key: tuple[int, str]) -> None:
    if len(_MEMO) >= MEMO_SIZE:
        _MEMO.clear()
    _MEMO[key] = True


def _remembered(search: Callable[[str], bool]) -> Callable[[str], bool]:
    """A pure memo of a regex's answers for short texts: the same owners, ids and
    names are matched again and again, and a dict lookup costs a fraction of a match."""
    number = next(_regex_numbers)

    def remembered(text: str) -> bool:
        if len(text) > MEMO_TEXT:
            return search(text)
        key = (number, text)
        found = _MEMO.get(key)
        if found is None:
            found = search(text)
            if len(_MEMO) >= MEMO_SIZE:
                _MEMO.clear()
            _MEMO[key] = found
        return found

    return remembered


def _enum(arg: Node, site: Site) -> Check | None:
    if not isinstance(arg.value, list) or not arg.value:
        return _bad(arg, site, "enum must be a non-empty list of values")
    options = arg.plain()
    listing = ", ".join(show(o) for o in options)

    def test(value: Any, ectx: EvalContext, vars: Vars) -> str | None:
        if any(json_equal(value, o) for o in options):
            return None
        return f"must be one of {listing} (got {show(value)})"

    return _present(test, "enum")


def _const(arg: Node, site: Site) -> Check | None:
    expected = arg.plain()

    def test(value: Any, ectx: EvalContext, vars: Vars) -> str | None:
        return (
            None if json_equal(value, expected) else f"must be {show(expected)} (got {show(value)})"
        )

    return _present(test, "const")


def _bound(keyword: str) -> Callable[[Node, Site], Check | None]:
    def compile_bound(arg: Node, site: Site) -> Check | None:
        limit = arg.value
        if isinstance(limit, bool) or not isinstance(limit, int | float):
            return _bad(arg, site, f"{keyword} must be a number")
        word = "at least" if keyword == "min" else "at most"

        def test(value: Any, ectx: EvalContext, vars: Vars) -> str | None:
            if json_type(value) not in ("integer", "number"):
                return f"must be a number {word} {limit} (got {show(value)})"
            ok = value >= limit if keyword == "min" else value <= limit
            return None if ok else f"must be {word} {limit} (got {show(value)})"

        return _present(test, keyword)

    return compile_bound


def _length(keyword: str) -> Callable[[Node, Site], Check | None]:
    def compile_length(arg: Node, site: Site) -> Check | None:
        limit = arg.value
        if isinstance(limit, bool) or not isinstance(limit, int) or limit < 0:
            return _bad(arg, site, f"{keyword} must be a non-negative integer")
        word = "at least" if keyword == "min_length" else "at most"

        def test(value: Any, ectx: EvalContext, vars: Vars) -> str | None:
            if not isinstance(value, _TEXT_OR_ARRAY):
                return f"must be a string or array with {word} {limit} items (got {show(value)})"
            size = len(value)
            unit = "characters" if isinstance(value, str) else "items"
            ok = size >= limit if keyword == "min_length" else size <= limit
            return None if ok else f"must have {word} {limit} {unit} (got {size})"

        return _present(test, keyword)

    return compile_length


def _src(arg: Node, site: Site) -> Check | None:
    name = arg.value
    if not isinstance(name, str) or not all(name.split(".")):
        return _bad(arg, site, "src must name a field of the current data, e.g. src: owner")
    steps = tuple(name.split("."))
    field = steps[0] if len(steps) == 1 else None

    def test(value: Any, ectx: EvalContext, vars: Vars) -> str | None:
        src = ectx.src
        if field is not None and src.__class__ is dict:  # what `lookup` does, inline
            current = src.get(field, MISSING)
        else:
            current = lookup(src, steps)
        if current is MISSING:
            return f"must equal src.{name}, which is not set"
        if json_equal(value, current):
            return None
        return f"must equal src.{name} ({show(current)}) (got {show(value)})"

    return _present(test, "src")


def _matches(arg: Node, site: Site) -> Check | None:
    if not isinstance(arg.value, str):
        return _bad(arg, site, 'matches must be a template string such as "${vars.a}${vars.a}"')
    try:
        template = compile_template(arg.value)
    except ExpressionError as exc:
        site.ctx.problem(at_column(arg, exc.column), site.path, f"bad template: {exc.message}")
        return None
    unknown = unknown_vars(set(template.references), site.known_vars)
    if unknown:
        return _bad(arg, site, f"vars.{unknown} is not defined in this rule's $vars")

    def test(value: Any, ectx: EvalContext, vars: Vars) -> str | None:
        try:
            expected = template(ectx, vars)
        except TemplateRuntimeError as exc:
            return f"cannot be checked: {template.text}: {exc}"
        if json_equal(value, expected):
            return None
        return f"must equal {template.text} = {show(expected)} (got {show(value)})"

    return _present(test, "matches")


def _not(arg: Node, site: Site) -> Check | None:
    inner = site.nested(arg, site.path)
    shown_rule = clip(orjson.dumps(arg.plain(), option=orjson.OPT_SORT_KEYS).decode())

    def test(value: Any, ectx: EvalContext, vars: Vars) -> str | None:
        return None if inner(value, ectx, vars, "") else f"must not satisfy {shown_rule}"

    return _present(test, "not")


def _nested_list(arg: Node, site: Site) -> list[Check] | None:
    if not isinstance(arg.value, list) or not arg.value:
        _bad(arg, site, f"{site.path.rsplit('.', 1)[-1]} must be a non-empty list of rules")
        return None
    return [site.nested(item, f"{site.path}[{i}]") for i, item in enumerate(arg.value)]


def _all_of(arg: Node, site: Site) -> Check | None:
    rules = _nested_list(arg, site)
    if rules is None:
        return None

    def check(value: Any, ectx: EvalContext, vars: Vars, shown: str) -> list[GuardFailure]:
        return [f for rule in rules for f in rule(value, ectx, vars, shown)]

    return check


def _any_of(arg: Node, site: Site) -> Check | None:
    rules = _nested_list(arg, site)
    if rules is None:
        return None

    def check(value: Any, ectx: EvalContext, vars: Vars, shown: str) -> list[GuardFailure]:
        if value is MISSING:
            return []
        reasons: list[str] = []
        for rule in rules:
            failures = rule(value, ectx, vars, shown)
            if not failures:
                return []
            reasons.append("; ".join(f.message for f in failures))
        joined = " | ".join(f"option {n}: {r}" for n, r in enumerate(reasons, 1))
        return [GuardFailure(shown, "any_of", f"{shown} must pass one of any_of ({joined})")]

    return check


def _use(arg: Node, site: Site) -> Check | None:
    name = arg.value
    ctx = site.ctx
    if not isinstance(name, str) or name not in ctx.rules:
        hint = did_you_mean(str(name), ctx.rules, len(ctx.problems))
        shown = repr(name) if len(repr(name)) <= 80 else repr(name)[:77] + "..."
        return _bad(arg, site, f"unknown rule set {shown}{hint} (rules: {listing(ctx.rules)})")
    cycle = ctx.cycle_through(name)
    if cycle:
        return _bad(arg, site, f"rule set '{name}' uses itself ({cycle})")
    return ctx.named_rule(name)


def _present(test: Callable[[Any, EvalContext, Vars], str | None], keyword: str) -> Check:
    """A Check from a test that returns a default message; skipped for absent fields."""

    def check(value: Any, ectx: EvalContext, vars: Vars, shown: str) -> list[GuardFailure]:
        if value is MISSING:
            return []
        problem = test(value, ectx, vars)
        return [] if problem is None else [GuardFailure(shown, keyword, f"{shown} {problem}")]

    # a rule calls the test directly (rule_runs.rule_check): one call less per keyword
    check.present_test = (keyword, test)  # type: ignore[attr-defined]
    return check


def _bad(arg: Node, site: Site, message: str) -> Check | None:
    """Records a problem at the argument; returns None so a compiler can `return _bad(...)`."""
    site.ctx.problem((arg.line, arg.column), site.path, message)
    return None


KEYWORDS: dict[str, Callable[[Node, Site], Check | None]] = {
    "required": _required,
    "type": _type,
    "regex": _regex,
    "enum": _enum,
    "const": _const,
    "min": _bound("min"),
    "max": _bound("max"),
    "min_length": _length("min_length"),
    "max_length": _length("max_length"),
    "src": _src,
    "matches": _matches,
    "not": _not,
    "all_of": _all_of,
    "any_of": _any_of,
    "use": _use,
}


# ---- JSON values -----------------------------------------------------------------


_EXACT_TYPES: dict[type, str] = {
    str: "string",
    int: "integer",
    bool: "boolean",
    float: "number",
    dict: "object",
    list: "array",
    type(None): "null",
}


def json_type(value: Any) -> str:
    """The JSON type name of a value: bool is boolean, int is integer, float is number."""
    exact = _EXACT_TYPES.get(value.__class__)  # what decoded JSON holds: one lookup
    if exact is not None:
        return exact
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, Mapping):
        return "object"
    if isinstance(value, _ARRAY):
        return "array"
    return "missing" if value is MISSING else type(value).__name__


def json_equal(a: Any, b: Any) -> bool:
    """Equality of JSON values: booleans never equal numbers; 1 equals 1.0."""
    if a.__class__ is str and b.__class__ is str:
        return bool(a == b)
    ta, tb = json_type(a), json_type(b)
    if {ta, tb} <= {"integer", "number"}:
        return bool(a == b)
    if ta != tb:
        return False
    if ta == "object":
        return a.keys() == b.keys() and all(json_equal(a[k], b[k]) for k in a)
    if ta == "array":
        return len(a) == len(b) and all(json_equal(x, y) for x, y in zip(a, b, strict=True))
    return bool(a == b)


def show(value: Any) -> str:
    if value is MISSING:
        return "nothing"
    if isinstance(value, str):
        return clip(repr(value))
    try:
        return clip(orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode())
    except TypeError:
        return clip(repr(value))


def clip(text: str, limit: int = 80) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def kind(value: Any) -> str:
    kind = json_type(value)
    return {"object": "a mapping", "array": "a list"}.get(kind, f"a {kind}")


def unknown_vars(references: set[str], known: set[str] | frozenset[str]) -> str | None:
    names = sorted(r.split(".")[1] for r in references if r.startswith("vars."))
    return next((n for n in names if n not in known), None)


def at_column(node: Node, column: int) -> tuple[int, int]:
    # Only a plain (unquoted) one-line scalar maps columns exactly; close enough otherwise.
    return node.line, node.column + max(column, 1) - 1
