"""Parse the policy DSL (grammar/policy.lark) into small typed AST nodes.

`parse_condition(text)` returns an expression node; `parse_actions(text)` returns a list
of `Action` nodes. Both raise `DslSyntaxError` with a 1-based line and column inside the
DSL text and a readable message (lark's `match_examples` over a table of labelled bad
snippets); the loader offsets that position into the YAML file.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Union

from lark import Lark, Token, Transformer_NonRecursive, v_args
from lark.exceptions import UnexpectedCharacters, UnexpectedEOF, UnexpectedInput, UnexpectedToken, VisitError

from revops.policy.limits import MAX_EXPRESSION_DEPTH, MAX_NUMBER_CHARS, number_problem
from revops.resources import grammar_path


@dataclass(frozen=True)
class Span:
    """Where a node stands in its DSL text: 1-based line/col and 0-based offsets."""

    line: int
    col: int
    start: int
    end: int


@dataclass(frozen=True)
class Node:
    span: Span


@dataclass(frozen=True)
class Num(Node):
    value: float


@dataclass(frozen=True)
class Str(Node):
    value: str


@dataclass(frozen=True)
class Bool(Node):
    value: bool


@dataclass(frozen=True)
class Ref(Node):
    path: tuple[str, ...]
    name: str = ""  # the dotted path, kept ready: lookups happen for every channel

    def __post_init__(self):
        object.__setattr__(self, "name", ".".join(self.path))


@dataclass(frozen=True)
class Call(Node):
    func: str
    args: tuple["Expr", ...]


@dataclass(frozen=True)
class Neg(Node):
    operand: "Expr"


@dataclass(frozen=True)
class Arith(Node):
    op: str  # + - * /
    left: "Expr"
    right: "Expr"


@dataclass(frozen=True)
class Compare(Node):
    op: str  # < <= > >= == !=
    left: "Expr"
    right: "Expr"


@dataclass(frozen=True)
class In(Node):
    operand: "Expr"
    items: tuple["Expr", ...]
    negated: bool


@dataclass(frozen=True)
class And(Node):
    items: tuple["Expr", ...]


@dataclass(frozen=True)
class Or(Node):
    items: tuple["Expr", ...]


@dataclass(frozen=True)
class Not(Node):
    operand: "Expr"


@dataclass(frozen=True)
class Action(Node):
    name: str
    args: tuple["Expr", ...]


Expr = Union[Num, Str, Bool, Ref, Call, Neg, Arith, Compare, In, And, Or, Not]


class DslSyntaxError(Exception):
    """A DSL parse error at a 1-based line/col of the DSL text."""

    def __init__(self, line: int, col: int, message: str):
        super().__init__(f"{line}:{col}: {message}")
        self.line = line
        self.col = col
        self.message = message


def _span(meta) -> Span:
    return Span(meta.line, meta.column, meta.start_pos, meta.end_pos)


def _tok_span(tok: Token) -> Span:
    return Span(tok.line, tok.column, tok.start_pos, tok.end_pos)


@v_args(meta=True)
class _ToAst(Transformer_NonRecursive):
    """Turns the lark tree into AST nodes; methods are named after grammar rules.

    Non-recursive: a 1,000-deep `not not ...` or `a and a and ...` must become a located
    error, not a RecursionError (issue 12)."""

    def start_condition(self, meta, children):
        return children[0]

    def start_actions(self, meta, children):
        return list(children)

    def action(self, meta, children):
        name, *args = children
        return Action(_span(meta), str(name), tuple(a for a in args if a is not None))

    # `a or b or c` parses as ((a or b) or c); flatten so traces list the alternatives.
    def or_(self, meta, children):
        left, right = children
        items = left.items if isinstance(left, Or) else (left,)
        return Or(_span(meta), (*items, right))

    def and_(self, meta, children):
        left, right = children
        items = left.items if isinstance(left, And) else (left,)
        return And(_span(meta), (*items, right))

    def not_(self, meta, children):
        return Not(_span(meta), children[0])

    def compare(self, meta, children):
        left, op, right = children
        return Compare(_span(meta), str(op), left, right)

    def in_(self, meta, children):
        return In(_span(meta), children[0], children[1], False)

    def not_in(self, meta, children):
        return In(_span(meta), children[0], children[1], True)

    def arith(self, meta, children):
        left, op, right = children
        return Arith(_span(meta), str(op), left, right)

    def neg(self, meta, children):
        operand = children[0]
        if isinstance(operand, Num):  # fold -3 into a literal so it reads as one value
            return Num(_span(meta), -operand.value)
        return Neg(_span(meta), operand)

    def number(self, meta, children):
        token = children[0]
        text = str(token).replace("_", "")
        if len(text) > MAX_NUMBER_CHARS:
            raise DslSyntaxError(token.line, token.column,
                                 f"number literal of {len(text):,} characters; at most {MAX_NUMBER_CHARS} are allowed")
        value = float(text) if any(c in text for c in ".eE") else int(text)
        problem = number_problem(value)
        if problem:
            raise DslSyntaxError(token.line, token.column, f"number literal {text}: {problem}")
        return Num(_span(meta), value)

    def string(self, meta, children):
        return Str(_span(meta), str(children[0])[1:-1])

    def true(self, meta, children):
        return Bool(_span(meta), True)

    def false(self, meta, children):
        return Bool(_span(meta), False)

    def ref(self, meta, children):
        return Ref(_span(meta), tuple(str(c) for c in children))

    def call(self, meta, children):
        name, *args = children
        return Call(_span(meta), str(name), tuple(a for a in args if a is not None))

    def list(self, meta, children):
        return tuple(c for c in children if c is not None)


@lru_cache(maxsize=1)
def _parsers() -> tuple[Lark, Lark]:
    text = grammar_path().read_text()
    common = dict(parser="lalr", propagate_positions=True, maybe_placeholders=True)
    return (Lark(text, start="start_condition", **common),
            Lark(text, start="start_actions", **common))


# Labelled bad snippets (lark's match_examples): the parser state of an error is matched
# against these to give an operator a message rather than a token dump.
_CONDITION_ERRORS = {
    "missing comparison operator or 'and'/'or' between two values": [
        "channel.a 5", "channel.a channel.b", "1 2", "channel.a > 1 channel.b"],
    "missing operand after an operator": [
        "channel.a >", "channel.a and", "channel.a or", "channel.a +", "not", "channel.a * "],
    "unbalanced parenthesis": ["(channel.a > 1", "channel.a > (1 + 2", "min(1, 2"],
    "unexpected ')'": ["channel.a > 1)", "channel.a)"],
    "a list after 'in' must be written [a, b, ...]": ["channel.a in 1", "channel.a in channel.b"],
    "two comparison operators in a row; combine comparisons with 'and'": ["1 < channel.a < 2"],
}


def _describe(err: UnexpectedInput, text: str, parser: Lark, examples: dict) -> str:
    label = None
    try:
        label = err.match_examples(parser.parse, examples, use_accepts=True)
    except Exception:  # match_examples re-parses; never let a message lookup mask the error
        label = None
    if isinstance(err, UnexpectedCharacters):
        ch = text[err.pos_in_stream] if err.pos_in_stream < len(text) else ""
        hint = {"=": "'=' is not a comparison; use '=='", "&": "use 'and' instead of '&'",
                "|": "use 'or' instead of '|'", "!": "use 'not' or '!='"}.get(ch)
        return hint or label or f"unexpected character {ch!r}"
    if isinstance(err, UnexpectedEOF):
        return label or "unexpected end of expression"
    if isinstance(err, UnexpectedToken):
        tok = err.token
        shown = "end of expression" if tok.type == "$END" else repr(str(tok))
        return label or f"unexpected {shown}"
    return label or "syntax error"


def _parse(text: str, which: int, examples: dict):
    parser = _parsers()[which]
    if not text.strip():
        raise DslSyntaxError(1, 1, "empty expression")
    try:
        tree = parser.parse(text)
    except UnexpectedInput as err:
        line = getattr(err, "line", 1) or 1
        col = getattr(err, "column", 1) or 1
        if isinstance(err, UnexpectedEOF) or (line < 1 or col < 1):
            line, col = _end_position(text)
        raise DslSyntaxError(line, col, _describe(err, text, parser, examples)) from None
    try:
        ast = _ToAst().transform(tree)
    except VisitError as err:
        if isinstance(err.orig_exc, DslSyntaxError):
            raise err.orig_exc from None
        raise
    _check_depth(ast)
    return ast


def _check_depth(ast) -> None:
    """Refuse an expression nested deeper than MAX_EXPRESSION_DEPTH (counted without recursion,
    so that every later pass, which recurses, stays far from Python's stack limit)."""
    roots = ast if isinstance(ast, list) else [ast]
    todo = [(node, 1) for node in roots]
    while todo:
        node, depth = todo.pop()
        if depth > MAX_EXPRESSION_DEPTH:
            raise DslSyntaxError(node.span.line, node.span.col,
                                 f"expression nested deeper than {MAX_EXPRESSION_DEPTH} levels")
        todo.extend((child, depth + 1) for child in children(node))


def _end_position(text: str) -> tuple[int, int]:
    lines = text.rstrip().split("\n")
    return len(lines), len(lines[-1]) + 1


def parse_condition(text: str) -> Expr:
    """Return the AST of a `when` condition, or raise DslSyntaxError."""
    return _parse(text, 0, _CONDITION_ERRORS)


_ACTION_ERRORS = {
    "an action is a call: name(arguments)": ["set_fee", "set_fee 5", "hold; multiply"],
    "unbalanced parenthesis": ["set_fee(1", "set_fee(max(1, 2)"],
    "missing ';' between two actions": ["hold() hold()", "set_fee(1) mark(a)"],
}


def parse_actions(text: str) -> list[Action]:
    """Return the list of actions of a `then` string, or raise DslSyntaxError."""
    return _parse(text, 1, _ACTION_ERRORS)


def source_of(node: Node, text: str) -> str:
    """The DSL source text a node was parsed from (for traces and messages)."""
    return text[node.span.start:node.span.end]


def walk(node):
    """Yield a node and every node below it, depth first."""
    yield node
    for child in children(node):
        yield from walk(child)


def children(node) -> tuple:
    if isinstance(node, (Arith, Compare)):
        return (node.left, node.right)
    if isinstance(node, (Neg, Not)):
        return (node.operand,)
    if isinstance(node, In):
        return (node.operand, *node.items)
    if isinstance(node, (And, Or)):
        return node.items
    if isinstance(node, (Call, Action)):
        return node.args
    return ()
