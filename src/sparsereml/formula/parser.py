"""Grammar layer: turn a model-formula string into a small syntax tree.

The grammar is R's formula language with the ASReml additions that breeders use.
Nothing here knows about data or about what a term means; ``terms.py`` gives the
tree its meaning.  Precedence, lowest first::

    formula := [sum] '~' sum | sum
    sum     := ['-'] product (('+' | '-') product)*
    product := nested (('*' | '/') nested)*
    nested  := inter ('%in%' inter)*
    inter   := power (':' power)*
    power   := atom ['^' NUMBER]
    atom    := NAME | `quoted name` | NUMBER | STRING | NAME '(' args ')'
             | '(' sum ')' | '(' sum ('|' | '||') sum ')'
    args    := arg (',' arg)*,   arg := [NAME '='] (formula | sum)
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from ..errors import FormulaError

__all__ = ["Name", "Number", "String", "Call", "BinOp", "Neg", "Bar", "Formula", "parse"]


@dataclass(frozen=True)
class Name:
    id: str


@dataclass(frozen=True)
class Number:
    value: float
    text: str


@dataclass(frozen=True)
class String:
    value: str


@dataclass(frozen=True)
class Call:
    func: str
    args: tuple
    kwargs: tuple  # ((name, node), ...)


@dataclass(frozen=True)
class BinOp:
    op: str
    left: object
    right: object


@dataclass(frozen=True)
class Neg:
    operand: object


@dataclass(frozen=True)
class Bar:
    lhs: object
    rhs: object
    double: bool


@dataclass(frozen=True)
class Formula:
    lhs: object | None
    rhs: object


_TOKEN = re.compile(
    r"""\s*(?:
      (?P<number>(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)
    | (?P<name>[A-Za-z_.][A-Za-z0-9_.]*)
    | `(?P<quoted>[^`]*)`
    | '(?P<sq>[^']*)'
    | "(?P<dq>[^"]*)"
    | (?P<op>%in%|\|\||[~+\-*/:^(),|=])
    )""",
    re.VERBOSE,
)


def _tokenize(text: str) -> list[tuple[str, str, int]]:
    tokens, pos = [], 0
    while pos < len(text):
        if text[pos:].strip() == "":
            break
        m = _TOKEN.match(text, pos)
        if m is None or m.end() == pos:
            col = pos + len(text[pos:]) - len(text[pos:].lstrip())
            raise FormulaError(f"cannot read {text[col]!r} at position {col + 1} of {text!r}")
        kind = m.lastgroup
        value = m.group(kind)
        start = m.start(kind) - (1 if kind in ("quoted", "sq", "dq") else 0)
        if kind == "quoted":
            kind = "name"
        elif kind in ("sq", "dq"):
            kind = "string"
        tokens.append((kind, value, start))
        pos = m.end()
    tokens.append(("end", "", len(text)))
    return tokens


class _Parser:
    def __init__(self, text: str):
        self.text = text
        self.tokens = _tokenize(text)
        self.i = 0

    # -- helpers -------------------------------------------------------------
    def peek(self) -> tuple[str, str, int]:
        return self.tokens[self.i]

    def at_op(self, *ops: str) -> bool:
        kind, value, _ = self.peek()
        return kind == "op" and value in ops

    def take(self) -> tuple[str, str, int]:
        tok = self.tokens[self.i]
        self.i += 1
        return tok

    def expect(self, op: str) -> None:
        kind, value, pos = self.take()
        if kind != "op" or value != op:
            found = "the end" if kind == "end" else repr(value)
            raise FormulaError(f"expected {op!r} at position {pos + 1} of {self.text!r}, found {found}")

    # -- grammar -------------------------------------------------------------
    def formula(self):
        lhs = None
        if not self.at_op("~"):
            lhs = self.sum()
            if not self.at_op("~"):
                return lhs  # a bare expression (e.g. inside a function call)
        self.expect("~")
        return Formula(lhs, self.sum())

    def sum(self):
        if self.at_op("-"):
            self.take()
            node = Neg(self.product())
        else:
            node = self.product()
        while self.at_op("+", "-"):
            op = self.take()[1]
            node = BinOp(op, node, self.product())
        return node

    def product(self):
        node = self.nested()
        while self.at_op("*", "/"):
            op = self.take()[1]
            node = BinOp(op, node, self.nested())
        return node

    def nested(self):
        node = self.inter()
        while self.at_op("%in%"):
            self.take()
            node = BinOp("%in%", node, self.inter())
        return node

    def inter(self):
        node = self.power()
        while self.at_op(":"):
            self.take()
            node = BinOp(":", node, self.power())
        return node

    def power(self):
        node = self.atom()
        if self.at_op("^"):
            self.take()
            kind, value, pos = self.take()
            if kind != "number":
                raise FormulaError(f"'^' needs a whole number at position {pos + 1} of {self.text!r}")
            node = BinOp("^", node, Number(float(value), value))
        return node

    def atom(self):
        kind, value, pos = self.take()
        if kind == "number":
            return Number(float(value), value)
        if kind == "string":
            return String(value)
        if kind == "name":
            if self.at_op("("):
                self.take()
                return self.call(value)
            return Name(value)
        if kind == "op" and value == "(":
            inner = self.sum()
            if self.at_op("|", "||"):
                double = self.take()[1] == "||"
                node = Bar(inner, self.sum(), double)
            else:
                node = inner
            self.expect(")")
            return node
        found = "end of the formula" if kind == "end" else repr(value)
        raise FormulaError(f"unexpected {found} at position {pos + 1} of {self.text!r}")

    def argument(self):
        node = self.formula()
        if self.at_op("|", "||"):  # e.g. dsum(~ units | site)
            double = self.take()[1] == "||"
            if isinstance(node, Formula):
                return Formula(node.lhs, Bar(node.rhs, self.sum(), double))
            return Bar(node, self.sum(), double)
        return node

    def call(self, func: str):
        args, kwargs = [], []
        if self.at_op(")"):
            self.take()
            return Call(func, (), ())
        while True:
            kind, value, _ = self.peek()
            nxt = self.tokens[self.i + 1]
            if kind == "name" and nxt[0] == "op" and nxt[1] == "=":
                self.i += 2
                kwargs.append((value, self.argument()))
            else:
                if kwargs:
                    raise FormulaError(f"positional argument after a named one in {func}() in {self.text!r}")
                args.append(self.argument())
            if self.at_op(","):
                self.take()
                continue
            self.expect(")")
            return Call(func, tuple(args), tuple(kwargs))


def parse(text: str):
    """Parse a formula string into a syntax tree.

    Parameters
    ----------
    text : str
        For example ``"dbh ~ Trial"``, ``"~ at(Trial):Block + Mother"`` or
        ``"y ~ x + (1|g)"``.

    Returns
    -------
    Formula or node
        A :class:`Formula` when the text contains ``~``, otherwise the bare
        expression.

    Raises
    ------
    FormulaError
        With the position of the first character that does not fit.
    """
    if not isinstance(text, str):
        raise FormulaError(f"a formula must be a string, got {type(text).__name__}")
    if text.strip() == "":
        raise FormulaError("the formula is empty")
    p = _Parser(text)
    node = p.formula()
    kind, value, pos = p.peek()
    if kind != "end":
        raise FormulaError(f"unexpected {value!r} at position {pos + 1} of {text!r}")
    return node
