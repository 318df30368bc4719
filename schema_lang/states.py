"""`states:` — each state's data invariant, terminal/remove flags, timeout and tasks."""

from __future__ import annotations

from typing import Any

from .conditions import compile_condition
from .model import StateDef, TaskDef, Timeout
from .nodes import Node
from .refs import Ref, Scope, StateSite
from .shapes import join

STATE_KEYS = ("data", "description", "terminal", "remove", "timeout", "tasks")
TIMEOUT_KEYS = ("after", "transition")
ANY_STATE = "*"


def compile_states(node: Node, scope: Scope, path: str = "states") -> None:
    """Fills `scope.states`; problems go to `scope.report`."""
    states = scope.report.mapping(node, path, None, "states")
    if states is None:
        return
    if not states:
        scope.report.at(node, path, "a machine needs at least one state")
    for name, state_node in states.items():
        state_path = join(path, name)
        key = Node(name, *node.key_position(name))
        if name == ANY_STATE or scope.report.name(key, state_path, "a state name") is None:
            if name == ANY_STATE:
                scope.report.at(key, state_path, "'*' is reserved (from: '*' means any state)")
            continue
        defn = _compile_state(name, state_node, scope, state_path)
        scope.states[name] = StateSite(defn, state_node, state_path, (key.line, key.column))


def _compile_state(name: str, node: Node, scope: Scope, path: str) -> StateDef:
    if node.value is None:
        return StateDef(name)
    keys = scope.report.mapping(node, path, STATE_KEYS, f"state '{name}'")
    if keys is None:
        return StateDef(name)
    report = scope.report
    terminal = "terminal" in keys and report.boolean(
        keys["terminal"], join(path, "terminal"), "terminal"
    )
    remove = "remove" in keys and report.boolean(keys["remove"], join(path, "remove"), "remove")
    if remove and not terminal:
        report.at(
            keys["remove"],
            join(path, "remove"),
            f"state '{name}' has remove: true but is not terminal; add terminal: true"
            " (only a terminal state can remove the object)",
        )
    if "description" in keys:
        report.string(keys["description"], join(path, "description"), "description")
    data = None
    if "data" in keys and keys["data"].value is not None:
        data = compile_condition(keys["data"], scope.conditions, join(path, "data"), side="data")
    timeout = None
    if "timeout" in keys:
        timeout = _timeout(name, keys["timeout"], scope, join(path, "timeout"), terminal)
    tasks: tuple[TaskDef, ...] = ()
    if "tasks" in keys:
        tasks = _tasks(name, keys["tasks"], scope, join(path, "tasks"))
    return StateDef(name, data, terminal, remove, timeout, tasks)


def _timeout(state: str, node: Node, scope: Scope, path: str, terminal: bool) -> Timeout | None:
    keys = scope.report.mapping(node, path, TIMEOUT_KEYS, f"the timeout of state '{state}'")
    if keys is None:
        return None
    if terminal:
        scope.report.at(
            node, path, f"terminal state '{state}' cannot have a timeout: no transition leaves it"
        )
    missing = [k for k in TIMEOUT_KEYS if k not in keys]
    if missing:
        scope.report.at(
            node,
            path,
            f"the timeout of state '{state}' needs {' and '.join(missing)}"
            " (e.g. {after: 30s, transition: expire})",
        )
        return None
    after = scope.report.duration_ms(keys["after"], join(path, "after"), "timeout.after")
    target = scope.report.name(keys["transition"], join(path, "transition"), "timeout.transition")
    if after is None or target is None:
        return None
    scope.refs.append(
        Ref(
            "transition",
            target,
            keys["transition"],
            join(path, "transition"),
            f"the timeout of state '{state}' fires",
        )
    )
    return Timeout(after, target)


def _tasks(state: str, node: Node, scope: Scope, path: str) -> tuple[TaskDef, ...]:
    items = scope.report.sequence(node, path, f"the tasks of state '{state}'")
    if items is None:
        return ()
    tasks: list[TaskDef] = []
    seen: set[str] = set()
    for i, item in enumerate(items):
        task = _task(item, scope, join(path, i))
        if task is None:
            continue
        if task.name in seen:
            scope.report.at(
                item.value["name"],
                join(join(path, i), "name"),
                f"duplicate task name '{task.name}' in state '{state}'; task names must be unique",
            )
            continue
        seen.add(task.name)
        tasks.append(task)
    return tuple(tasks)


def _task(node: Node, scope: Scope, path: str) -> TaskDef | None:
    keys = scope.report.mapping(node, path, None, "a task")
    if keys is None:
        return None
    if "name" not in keys:
        scope.report.at(node, path, "a task needs a name, e.g. {name: ssl-cert, executor: lambda}")
        return None
    name = scope.report.name(keys["name"], join(path, "name"), "a task name")
    if name is None:
        return None
    config: dict[str, Any] = {k: v.plain() for k, v in keys.items() if k != "name"}
    return TaskDef(name, config)
