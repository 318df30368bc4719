"""The cost model: what one request can make the engine do, bounded when a definition is put.

Three things grow faster than the definition's text, so each has a limit
(`limits.py`), checked here and refused with an `invalid_schema` problem that
names it:

- states x transitions: `from: '*'` leaves every non-terminal state, so the
  expanded edges are counted (`check_size`, before the whole-machine checks);
- `use`: rule sets that use each other expand at run time; the expanded size
  of each is counted with memoisation, so counting is linear in the rules;
- the `then` tree: one request applies every step of every chain, up to 10
  deep; its worst case (transitions, and steps with every candidate's guards)
  is counted per (transition, depth), again linear.

`price` also stores each candidate's and each then step's cost in steps on the
compiled `TransitionDef`/`ThenStep`; the engine charges exactly those while it
applies an entry, so the worst case computed here bounds the run time count.
"""

from __future__ import annotations

import dataclasses

from .limits import (
    ADVANCE_STEPS,
    MAX_EDGES,
    MAX_RULE_CHECKS,
    MAX_STATES,
    MAX_THEN_TRANSITIONS,
    MAX_TRANSITION_STEPS,
    THEN_DEPTH,
)
from .model import ThenStep, TransitionDef
from .nodes import Node
from .refs import CandidateSite, Scope
from .shapes import join

_CAP = 10**15  # counts beyond any limit are all the same: keep the numbers small


def check_size(scope: Scope, states_node: Node, transitions_node: Node) -> bool:
    """States and expanded edges within their limits; False (with a problem) otherwise."""
    ok = True
    if len(scope.states) > MAX_STATES:
        scope.report.at(
            states_node,
            "states",
            f"the machine has {len(scope.states):,} states; the limit is {MAX_STATES:,}",
        )
        ok = False
    nonterminal = sum(1 for site in scope.states.values() if not site.defn.terminal)
    edges = sum(
        nonterminal if site.defn.any_source else len(site.defn.sources)
        for sites in scope.candidates.values()
        for site in sites
    )
    if edges > MAX_EDGES:
        scope.report.at(
            transitions_node,
            "transitions",
            f"the transitions leave states {edges:,} times ('from: *' counts once per"
            f" non-terminal state: states x transitions); the limit is {MAX_EDGES:,}",
        )
        ok = False
    return ok


class _RuleCounter:
    """Rule checks of conditions with every `use` expanded, memoised per rule set."""

    def __init__(self, rules: dict[str, Node]) -> None:
        self.rules = rules
        self._named: dict[str, int] = {}
        self._active: set[str] = set()

    def named(self, name: str) -> int:
        if name in self._named:
            return self._named[name]
        if name in self._active or name not in self.rules:
            return 0  # a cycle or an unknown name: the compiler reports those
        self._active.add(name)
        count = self.rule(self.rules[name])
        self._active.discard(name)
        self._named[name] = count
        return count

    def rule(self, node: Node | None) -> int:
        if node is None or not isinstance(node.value, dict):
            return 0
        total = 0
        for key, arg in node.value.items():
            if key == "message":
                continue
            if key == "use":
                total += 1 + (self.named(arg.value) if isinstance(arg.value, str) else 0)
            elif key == "$vars":
                total += len(arg.value) if isinstance(arg.value, dict) else 1
            elif key == "not":
                total += 1 + self.rule(arg)
            elif key in ("all_of", "any_of") and isinstance(arg.value, list):
                total += 1 + sum(self.rule(item) for item in arg.value)
            else:
                total += 1
        return min(total, _CAP)

    def condition(self, node: Node | None) -> int:
        """A mapping of field: rule (AND), or a list of them (OR: all may be tried)."""
        if node is None:
            return 0
        items = node.value if isinstance(node.value, list) else [node]
        return min(
            sum(
                sum(self.rule(rule) for rule in item.value.values())
                for item in items
                if isinstance(item.value, dict)
            ),
            _CAP,
        )


def price(scope: Scope) -> dict[str, tuple[TransitionDef, ...]]:
    """Every candidate with its cost; problems for whatever is past a limit."""
    rules = _RuleCounter(scope.conditions.rules)
    for name, node in scope.conditions.rules.items():
        count = rules.named(name)
        if count > MAX_RULE_CHECKS:
            scope.report.at(
                node,
                f"rules.{name}",
                f"rule set '{name}' expands to {_shown(count)} rule checks once every 'use' is"
                f" expanded; the limit is {MAX_RULE_CHECKS:,} (a set used twice per level"
                " doubles at each level)",
            )
    invariants = {
        name: rules.condition(_key(site.node, "data")) for name, site in scope.states.items()
    }
    priced = {
        name: tuple(_priced(site, rules, invariants, scope) for site in sites)
        for name, sites in scope.candidates.items()
    }
    _check_then_trees(scope, priced)
    return priced


def _key(node: Node, key: str) -> Node | None:
    return node.value.get(key) if isinstance(node.value, dict) else None


def _priced(
    site: CandidateSite, rules: _RuleCounter, invariants: dict[str, int], scope: Scope
) -> TransitionDef:
    d = site.defn
    guard = rules.condition(_key(site.node, "$dst")) + rules.condition(_key(site.node, "$src"))
    if guard > MAX_RULE_CHECKS:
        scope.report.at(
            site.node,
            site.path,
            f"the conditions of transition '{d.name}' expand to {_shown(guard)} rule checks"
            f" once every 'use' is expanded; the limit is {MAX_RULE_CHECKS:,}",
        )
    if d.to is not None:
        invariant = invariants.get(d.to, 0)
    else:
        sources = (
            [s for s, st in scope.states.items() if not st.defn.terminal]
            if d.any_source
            else list(d.sources)
        )
        invariant = max((invariants.get(s, 0) for s in sources), default=0)
    # `set` templates run twice: when the candidate is checked and when it applies
    cost = 1 + len(d.requires) + guard + 2 * len(d.set_fields) + (d.follows is not None)
    return dataclasses.replace(d, cost=cost + invariant, then=_priced_then(site, d, rules))


def _priced_then(site: CandidateSite, d: TransitionDef, rules: _RuleCounter) -> tuple[ThenStep, ...]:
    then = _key(site.node, "then")
    items = then.value if then is not None and isinstance(then.value, list) else []
    if len(items) != len(d.then):  # only priced after a clean compile, where they agree
        return d.then
    return tuple(
        dataclasses.replace(step, cost=_if_cost(item, rules))
        for step, item in zip(d.then, items, strict=True)
    )


def _if_cost(item: Node, rules: _RuleCounter) -> int:
    condition = _key(item, "if")
    if condition is None:
        return 1
    return 1 + rules.condition(_key(condition, "$src")) + rules.condition(_key(condition, "$dst"))


def worst_case(priced: dict[str, tuple[TransitionDef, ...]]) -> dict[str, tuple[int, int]]:
    """(steps, transitions) one request of each transition can take at most."""
    memo: dict[tuple[str, int], tuple[int, int]] = {}

    def worst(name: str, depth: int) -> tuple[int, int]:
        key = (name, depth)
        if key in memo:
            return memo[key]
        defs = priced.get(name, ())
        steps, count = 0, 0
        for d in defs:
            s, n = 0, 0
            for step in d.then:
                s += step.cost
                if depth + 1 <= THEN_DEPTH:  # deeper, the engine refuses before any work
                    ws, wn = worst(step.transition, depth + 1)
                    s, n = s + ws, n + wn
            steps, count = max(steps, s), max(count, n)
        result = (min(sum(d.cost for d in defs) + ADVANCE_STEPS + steps, _CAP), min(1 + count, _CAP))
        memo[key] = result
        return result

    return {name: worst(name, 0) for name in priced}


def _check_then_trees(scope: Scope, priced: dict[str, tuple[TransitionDef, ...]]) -> None:
    for name, (steps, count) in worst_case(priced).items():
        site = scope.candidates[name][0]
        where = site.path if len(scope.candidates[name]) == 1 else join("transitions", name)
        if count > MAX_THEN_TRANSITIONS:
            scope.report.at(
                site.node,
                where,
                f"one request of transition '{name}' can apply up to {_shown(count)} transitions"
                f" through its then chains (up to {THEN_DEPTH} deep); the limit of the then tree"
                f" is {MAX_THEN_TRANSITIONS:,}",
            )
        elif steps > MAX_TRANSITION_STEPS:
            scope.report.at(
                site.node,
                where,
                f"one request of transition '{name}' can take up to {_shown(steps)} engine steps"
                f" (rule checks with 'use' expanded, set fields, then chains); the limit is"
                f" {MAX_TRANSITION_STEPS:,}",
            )


def _shown(count: int) -> str:
    return f"{count:,}" if count < _CAP else f"more than {_CAP:,}"
