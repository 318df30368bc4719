"""Whole-machine checks of SPEC 3.3, run once every state and transition is parsed.

Unknown state and transition names, no creation transition, transitions out of
terminal states, timeouts that cannot fire, states with tasks and no `next`,
unreachable states, shadowed candidates and `then` chains that always recurse.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator

from .model import TransitionDef
from .nodes import Node
from .refs import CandidateSite, Scope
from .shapes import did_you_mean, join, listing

NEXT = "next"


def check_machine(scope: Scope, transitions_node: Node) -> None:
    unknown_states = _check_refs(scope)
    _check_terminal_sources(scope)
    _check_timeouts(scope)
    _check_tasks(scope)
    _check_shadowed(scope)
    _check_then_cycles(scope)
    creations = [s.defn for sites in scope.candidates.values() for s in sites if s.defn.creates]
    if not creations and isinstance(transitions_node.value, dict):
        scope.report.at(
            transitions_node,
            "transitions",
            "no transition creates objects; add one with from: null, e.g."
            " {create: {from: null, to: <first state>}}",
        )
    # a misspelt state or a creation without `to` would make other states look
    # unreachable: report the cause only
    if creations and all(d.to for d in creations) and not unknown_states:
        _check_reachable(scope)


def _check_refs(scope: Scope) -> int:
    """Reports every unknown name; returns how many state names were unknown."""
    unknown_states = 0
    for ref in scope.refs:
        known = scope.states if ref.kind == "state" else scope.candidates
        if ref.name in known:
            continue
        unknown_states += ref.kind == "state"
        scope.report.at(
            ref.node,
            ref.path,
            f"{ref.context} unknown {ref.kind} '{ref.name}'{did_you_mean(ref.name, known, len(scope.report.problems))}"
            f" ({ref.kind}s: {listing(known)})",
        )
    return unknown_states


def _from_items(site: CandidateSite) -> Iterator[tuple[Node, str]]:
    """Each state named in a candidate's `from`, with its node and path."""
    node = site.from_node
    if node is None:
        return
    if isinstance(node.value, str):
        yield node, join(site.path, "from")
    elif isinstance(node.value, list):
        for i, item in enumerate(node.value):
            yield item, join(join(site.path, "from"), i)


def _terminal(scope: Scope, state: str) -> bool:
    site = scope.states.get(state)
    return site is not None and site.defn.terminal


def _check_terminal_sources(scope: Scope) -> None:
    for name, sites in scope.candidates.items():
        for site in sites:
            for node, path in _from_items(site):
                if isinstance(node.value, str) and _terminal(scope, node.value):
                    scope.report.at(
                        node,
                        path,
                        f"transition '{name}' leaves terminal state '{node.value}'; nothing"
                        " leaves a terminal state (remove terminal: true or this source)",
                    )


def _leaving(scope: Scope, transition: str, state: str) -> bool:
    terminal = _terminal(scope, state)
    return any(s.defn.leaves(state, terminal) for s in scope.candidates.get(transition, ()))


def _check_timeouts(scope: Scope) -> None:
    for state, site in scope.states.items():
        timeout = site.defn.timeout
        if timeout is None or timeout.transition not in scope.candidates or site.defn.terminal:
            continue
        if not _leaving(scope, timeout.transition, state):
            node = site.node.value["timeout"].value["transition"]
            scope.report.at(
                node,
                join(site.path, "timeout.transition"),
                f"the timeout of state '{state}' fires '{timeout.transition}', which cannot"
                f" leave '{state}' (its from does not include '{state}')",
            )


def _check_tasks(scope: Scope) -> None:
    for state, site in scope.states.items():
        if not site.defn.tasks or _leaving(scope, NEXT, state):
            continue
        scope.report.at(
            site.node.value["tasks"],
            join(site.path, "tasks"),
            f"state '{state}' has tasks but no transition '{NEXT}' leaves it; add"
            f" {NEXT}: {{from: {state}, to: <state>}} (it fires when every task is completed)",
        )


def _successors(scope: Scope, d: TransitionDef) -> Iterator[tuple[str, str]]:
    """(from, to) edges of one candidate."""
    if d.creates:
        return
    sources = (
        [s for s, site in scope.states.items() if not site.defn.terminal]
        if d.any_source
        else [s for s in d.sources if s in scope.states]
    )
    for source in sources:
        yield source, d.to or source


def _check_reachable(scope: Scope) -> None:
    edges: dict[str, set[str]] = {}
    starts: set[str] = set()
    for sites in scope.candidates.values():
        for site in sites:
            if site.defn.creates and site.defn.to:
                starts.add(site.defn.to)
            for source, target in _successors(scope, site.defn):
                edges.setdefault(source, set()).add(target)
    seen = set(starts)
    queue = deque(starts)
    while queue:
        for target in edges.get(queue.popleft(), ()):
            if target not in seen:
                seen.add(target)
                queue.append(target)
    for state, state_site in scope.states.items():
        if state not in seen:
            scope.report.at_pos(
                state_site.position,
                state_site.path,
                f"state '{state}' is unreachable: no transition leads to it from a state"
                " that objects are created in",
            )


def _covers(scope: Scope, earlier: TransitionDef, later: TransitionDef) -> bool:
    """Whether every state `later` leaves is also left by `earlier`."""
    if earlier.creates or later.creates:
        return earlier.creates and later.creates
    if earlier.any_source:
        return later.any_source or not any(_terminal(scope, s) for s in later.sources)
    return not later.any_source and later.sources <= earlier.sources


def _always_applies(scope: Scope, site: CandidateSite) -> bool:
    """No guard, and no state invariant on the result that could refuse it."""
    if site.conditional:
        return False
    d = site.defn
    targets = [d.to] if d.to else list(d.sources)
    if d.any_source and not d.to:
        targets = list(scope.states)
    return all(t not in scope.states or scope.states[t].defn.data is None for t in targets)


def _check_shadowed(scope: Scope) -> None:
    for name, sites in scope.candidates.items():
        for j, later in enumerate(sites):
            earlier = next(
                (
                    e
                    for e in sites[:j]
                    if _always_applies(scope, e) and _covers(scope, e.defn, later.defn)
                ),
                None,
            )
            if earlier is None:
                continue
            scope.report.at(
                later.node,
                later.path,
                f"candidate {later.index} of transition '{name}' can never apply: candidate"
                f" {earlier.index} has the same from and no conditions, so it always wins;"
                f" add $dst, $src, requires or follows to candidate {earlier.index},"
                " or remove this one",
            )


def _check_then_cycles(scope: Scope) -> None:
    """A transition that unconditionally chains to itself from where it lands never stops."""
    for name, sites in scope.candidates.items():
        for site in sites:
            lands = site.defn.to
            if not _always_applies(scope, site) or (lands and not _leaving(scope, name, lands)):
                continue
            for i, step in _then_nodes(site):
                keys = step.value
                if keys.get("transition", Node(None, 0, 0)).value == name and "if" not in keys:
                    scope.report.at(
                        step,
                        join(join(site.path, "then"), i),
                        f"transition '{name}' chains to itself with no condition and would"
                        " always exceed the then depth limit (10); add an if: condition",
                    )


def _then_nodes(site: CandidateSite) -> list[tuple[int, Node]]:
    then = site.node.value.get("then")
    if then is None or not isinstance(then.value, list):
        return []
    return [(i, item) for i, item in enumerate(then.value) if isinstance(item.value, dict)]
