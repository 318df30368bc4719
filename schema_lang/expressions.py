"""The template and function grammar of SPEC 3.2, compiled into closures.

A template is text with `${expr}` parts (`$${` writes a literal `${`). An expr is
a reference (`src.f`, `dst.a.b`, `vars.v`, `object.id|version|state`, `now`; a
numeric segment indexes a list), a string literal ('…' or "…", a backslash
escapes the next character), an integer, or a call of one of FUNCTIONS.

Parsing uses one lark LALR parser built at import; the parse tree is turned into
plain closures once, so evaluation never parses and nothing is `eval`-ed. Size
(4,096 characters) and call depth (32) are checked before lark runs.

Values at run time:
- a missing reference is MISSING; a template that is exactly one `${expr}`
  returns the raw value (MISSING becomes None), any other template renders each
  part with `render_text` (MISSING and null render as "");
- every function treats MISSING as "" (so `sha256(src.chain, dst.block)` on
  creation hashes just the block), then applies its own types;
- a function given a value it cannot handle (`int('x')`, `substr(1, 'a', 2)`)
  raises TemplateRuntimeError. Conditions turn it into a GuardFailure, the engine
  into a guard_failed rejection: the same input fails the same way on every node.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import lark
import orjson

from .limits import MAX_INT, MIN_INT
from .model import EvalContext
from .template_functions import (
    FUNCTIONS,
    MISSING,
    TemplateRuntimeError,
    joined_text,
    lookup,
    plain_json,
    render_text,
)

__all__ = [
    "MISSING",
    "CompiledTemplate",
    "ExpressionError",
    "TemplateRuntimeError",
    "compile_template",
    "compile_var_expression",
    "expression_references",
    "lookup",
    "render_text",
    "template_references",
]

MAX_TEMPLATE_CHARS = 4_096
MAX_DEPTH = 32
ROOTS = ("src", "dst", "vars", "object", "now")
OBJECT_FIELDS = ("id", "version", "state")
_CONTAINER = Mapping | list  # built once (a union in a template is built per call)

Vars = Mapping[str, Any]
Evaluator = Callable[[EvalContext, Vars], Any]


class ExpressionError(ValueError):
    """A template that cannot compile; `column` is 1-based within the template text."""

    def __init__(self, message: str, column: int = 1):
        super().__init__(f"{message} (column {column})")
        self.message = message
        self.column = column


_GRAMMAR = r"""
?start: expr
?expr: call | path | string | integer
call: PATH "(" [expr ("," expr)*] ")"
path: PATH
string: STRING
integer: INT
PATH: /[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z0-9_]+)*/
STRING: /'(?:[^'\\]|\\.)*'/ | /"(?:[^"\\]|\\.)*"/
INT: /-?[0-9]+/
%ignore /[ \t\r\n]+/
"""
_parser = lark.Lark(_GRAMMAR, parser="lalr", maybe_placeholders=False)


class CompiledTemplate:
    """A compiled template: call it with an EvalContext (and `vars` inside a rule)."""

    __slots__ = ("text", "references", "_parts", "_single")

    def __init__(self, text: str, parts: list[str | Evaluator], references: frozenset[str]):
        self.text = text
        self.references = references
        self._parts = parts
        self._single = len(parts) == 1 and not isinstance(parts[0], str)

    def __call__(self, ctx: EvalContext, vars: Vars | None = None) -> Any:
        scope: Vars = vars if vars is not None else {}
        if self._single:
            value = self._parts[0](ctx, scope)  # type: ignore[operator]
            if value is MISSING:
                return None
            if isinstance(value, _CONTAINER):
                # A container is the caller's live data; the result must not alias it.
                return orjson.loads(orjson.dumps(value, default=plain_json))
            return value
        return joined_text(
            p if isinstance(p, str) else render_text(p(ctx, scope)) for p in self._parts
        )

    def __repr__(self) -> str:
        return f"CompiledTemplate({self.text!r})"


def compile_template(text: str) -> CompiledTemplate:
    """Compiles `text` with its `${expr}` parts; raises ExpressionError with the column."""
    if not isinstance(text, str):
        raise ExpressionError(f"a template must be a string, not {type(text).__name__}")
    if len(text) > MAX_TEMPLATE_CHARS:
        raise ExpressionError(
            f"the template is longer than {MAX_TEMPLATE_CHARS} characters", MAX_TEMPLATE_CHARS + 1
        )
    parts: list[str | Evaluator] = []
    references: set[str] = set()
    literal: list[str] = []
    for piece in _split(text):
        if isinstance(piece, str):
            literal.append(piece)
            continue
        if literal:
            parts.append("".join(literal))
            literal = []
        source, offset = piece
        parts.append(_compile_expr(source, offset, references, subject=False))
    if literal:
        parts.append("".join(literal))
    return CompiledTemplate(text, parts, frozenset(references))


def compile_var_expression(text: str) -> Callable[[Any, EvalContext, Vars], Any]:
    """Compiles a `$vars` entry; call it as `f(field_value, ctx, vars_so_far)`.

    A call (`substr(0,64)`, `lower()`) gets the field's value as its first argument.
    Text containing `${` is an ordinary template instead, without implicit subject.
    """
    if not isinstance(text, str):
        raise ExpressionError(f"a $vars entry must be a string, not {type(text).__name__}")
    if "${" in text:
        template = compile_template(text)
        return lambda subject, ctx, vars: template(ctx, vars)
    if len(text) > MAX_TEMPLATE_CHARS:
        raise ExpressionError(
            f"the expression is longer than {MAX_TEMPLATE_CHARS} characters", MAX_TEMPLATE_CHARS + 1
        )
    _check_depth(text, 1)
    evaluate = _compile_expr(text, 1, set(), subject=True)

    def compute(subject: Any, ctx: EvalContext, vars: Vars) -> Any:
        return evaluate(ctx, {**vars, _SUBJECT: subject})

    return compute


def template_references(text: str) -> set[str]:
    """The dotted references of a template, e.g. {"vars.firstHalf", "dst.block"}."""
    return set(compile_template(text).references)


def expression_references(text: str) -> set[str]:
    """The dotted references of a `$vars` expression (or of a template, if it has `${`)."""
    if "${" in text:
        return template_references(text)
    references: set[str] = set()
    _compile_expr(text, 1, references, subject=True)
    return references


# A key no `vars.NAME` can produce (names are identifiers): the implicit subject.
_SUBJECT = "$subject"


def _split(text: str) -> list[str | tuple[str, int]]:
    """Literal strings and (expression source, 1-based column of its first character)."""
    pieces: list[str | tuple[str, int]] = []
    i = 0
    while i < len(text):
        start = text.find("${", i)
        if start < 0:
            pieces.append(text[i:])
            break
        if start > 0 and text[start - 1] == "$":
            pieces.append(text[i : start - 1] + "${")
            i = start + 2
            continue
        pieces.append(text[i:start])
        end = _closing_brace(text, start + 2)
        pieces.append((text[start + 2 : end], start + 3))
        i = end + 1
    return [p for p in pieces if p != ""]


def _closing_brace(text: str, i: int) -> int:
    """Index of the `}` closing the expression starting at i (quotes may contain braces)."""
    depth = 0
    quote = ""
    while i < len(text):
        ch = text[i]
        if quote:
            if ch == "\\":
                i += 1
            elif ch == quote:
                quote = ""
        elif ch in "'\"":
            quote = ch
        elif ch == "(":
            depth += 1
            if depth > MAX_DEPTH:
                raise ExpressionError(f"expression nesting is deeper than {MAX_DEPTH}", i + 1)
        elif ch == ")":
            depth -= 1
        elif ch == "}":
            return i
        i += 1
    raise ExpressionError("'${' is not closed by '}'", i + 1)


def _check_depth(text: str, column: int) -> None:
    # Reuses the brace scanner's depth and quote tracking over a whole expression.
    try:
        _closing_brace(text + "}", 0)
    except ExpressionError as exc:
        raise ExpressionError(exc.message, exc.column + column - 1) from None


def _compile_expr(source: str, column: int, references: set[str], *, subject: bool) -> Evaluator:
    if not source.strip():
        raise ExpressionError("empty expression in '${}'", column)
    try:
        tree = _parser.parse(source)
    except lark.exceptions.UnexpectedInput as exc:
        raise ExpressionError(_syntax_message(exc, source), column + exc.column - 1) from None
    except lark.exceptions.LarkError as exc:  # defensive: any other parser failure
        raise ExpressionError(f"cannot parse expression: {exc}", column) from None
    if subject and not (isinstance(tree, lark.Tree) and tree.data == "call"):
        raise ExpressionError(
            "a $vars entry must be a function call such as substr(0, 64), or a ${...} template",
            column,
        )
    return _Builder(column, references).build(tree, subject=subject)


def _syntax_message(exc: lark.exceptions.UnexpectedInput, source: str) -> str:
    if isinstance(exc, lark.exceptions.UnexpectedEOF):
        return f"expression {source.strip()!r} ends too early"
    if isinstance(exc, lark.exceptions.UnexpectedToken):
        if exc.token.type == "$END":
            return f"expression {source.strip()!r} ends too early"
        return f"unexpected {str(exc.token)!r} in expression {source.strip()!r}"
    pos = getattr(exc, "pos_in_stream", None)
    char = source[pos] if isinstance(pos, int) and pos < len(source) else "?"
    return f"unexpected character {char!r} in expression {source.strip()!r}"


class _Builder:
    """Turns a parse tree into closures, checking names, arity and roots."""

    def __init__(self, column: int, references: set[str]):
        self.column = column
        self.references = references

    def error(self, message: str, token: Any) -> ExpressionError:
        return ExpressionError(message, self.column + (getattr(token, "column", 1) or 1) - 1)

    def build(self, node: Any, *, subject: bool = False) -> Evaluator:
        kind = node.data
        if kind == "string":
            return _constant(_unquote(str(node.children[0])))
        if kind == "integer":
            text = str(node.children[0])
            value = int(text) if len(text) <= 20 else MAX_INT + 1
            if not MIN_INT <= value <= MAX_INT:
                raise self.error(f"{text[:30]} is beyond the integer limit of ±2^63", node.children[0])
            return _constant(value)
        if kind == "path":
            return self.reference(node.children[0])
        return self.call(node, subject)

    def call(self, node: Any, subject: bool) -> Evaluator:
        name_token, *arg_nodes = node.children
        name = str(name_token)
        function = FUNCTIONS.get(name)
        if function is None:
            raise self.error(
                f"unknown function '{name}' (functions: {', '.join(sorted(FUNCTIONS))})", name_token
            )
        args = [self.build(a) for a in arg_nodes]
        if subject:
            args.insert(0, _subject)
        n, low, high = len(args), function.min_args, function.max_args
        if n < low or (high is not None and n > high):
            wanted = f"{low}" if low == high else f"{low} to {high}" if high else f"at least {low}"
            implicit = " (counting the field's own value)" if subject else ""
            raise self.error(f"{name} takes {wanted} arguments, got {n}{implicit}", name_token)
        call = function.call

        def evaluate(ctx: EvalContext, vars: Vars) -> Any:
            return call(*(arg(ctx, vars) for arg in args))

        return evaluate

    def reference(self, token: Any) -> Evaluator:
        root, *fields = str(token).split(".")
        if root not in ROOTS:
            raise self.error(
                f"unknown reference '{token}': it must start with one of {', '.join(ROOTS)}", token
            )
        if root == "now" and fields:
            raise self.error("now has no fields; write ${now}", token)
        if root == "object" and (len(fields) != 1 or fields[0] not in OBJECT_FIELDS):
            raise self.error(
                f"'{token}' is not one of object.id, object.version, object.state", token
            )
        if root == "vars" and len(fields) < 1:
            raise self.error("write vars.NAME for a value from $vars", token)
        self.references.add(str(token))
        return _reader(root, tuple(fields))


def _constant(value: Any) -> Evaluator:
    return lambda ctx, vars: value


def _subject(ctx: EvalContext, vars: Vars) -> Any:
    return vars.get(_SUBJECT, MISSING)


def _unquote(literal: str) -> str:
    body = literal[1:-1]
    if "\\" not in body:
        return body
    out: list[str] = []
    escaped = False
    for ch in body:
        if escaped or ch != "\\":
            out.append(ch)
            escaped = False
        else:
            escaped = True
    return "".join(out)


def _reader(root: str, fields: tuple[str, ...]) -> Evaluator:
    if root == "now":
        return lambda ctx, vars: ctx.now
    if root == "object":
        name = fields[0]
        return lambda ctx, vars: getattr(ctx.obj, name)
    if root == "vars":
        return lambda ctx, vars: lookup(vars, fields)
    if root == "src":
        return lambda ctx, vars: lookup(ctx.src, fields)
    return lambda ctx, vars: lookup(ctx.dst, fields)
