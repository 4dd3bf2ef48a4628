"""The rule operators, one module each, and the table the compiler looks them up in.

    eq.py       eq, in             prefix.py    prefix (values or a list)
    regex.py    regex              compare.py   lt, le, gt, ge, between
    in_list.py  in_list            exists.py    exists
    fuzzy.py    fuzzy (names or a list)

A new operator is one module with its leaf class (test, explain, to_json, index hooks)
and an `Operator` spec, plus one line here (CONTRIBUTING.md, "A rule operator"). The
order is the order `OPS` lists them in error messages.
"""

from __future__ import annotations

from edge_agent.local_rules.ops import compare, eq, exists, fuzzy, in_list, prefix, regex
from edge_agent.local_rules.ops.base import Operator

OPERATORS: dict[str, Operator] = {
    name: spec
    for spec in (
        eq.OPERATOR,
        prefix.OPERATOR,
        regex.OPERATOR,
        compare.OPERATOR,
        in_list.OPERATOR,
        exists.OPERATOR,
        fuzzy.OPERATOR,
    )
    for name in spec.names
}
