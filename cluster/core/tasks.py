"""Tasks issued on entering a state: completion, failure, retry, and the automatic `next`."""

from __future__ import annotations

from typing import Any

from .candidates import choose, transition_defs
from .entries import RetryTasks, TaskReport
from .limits import check_data, check_text
from .machines import compiled, require_machine
from .object_events import transition_event
from .outcome import Outcome, Rejected
from .records import ObjectRecord, TaskRecord, replace
from .staging import history_limit, stage_change
from .transitions import advance
from .tx import Tx
from .votes import require_object

NEXT = "next"
TASK_STATUSES = ("completed", "failed")
RETRYABLE = ("failed", "pending")


def report_task(tx: Tx, cmd: TaskReport) -> Outcome:
    if cmd.status not in TASK_STATUSES:
        raise Rejected(
            "invalid_request", f"task status must be one of {TASK_STATUSES}, not {cmd.status!r}"
        )
    check_data(cmd.data or {}, "the task's data")
    check_text(cmd.error, "the task's error text")
    entry = require_machine(tx, cmd.machine)
    record = require_object(tx, cmd.machine, cmd.id)
    names = [t.name for t in record.tasks]
    if cmd.task not in names:
        raise Rejected(
            "not_found",
            f"task '{cmd.task}' is not issued for object '{cmd.id}' in state '{record.state}' "
            f"(tasks: {', '.join(names) or 'none'})",
        )
    current = record.tasks[names.index(cmd.task)]
    if current.status == cmd.status == "completed":
        return Outcome("ok", {"object": record.to_json(), "task": current.to_json()})
    task = replace(
        current, status=cmd.status, error=cmd.error, data=cmd.data, updated_at_ms=tx.now_ms
    )
    updated = with_tasks(tx, record, tuple(task if t.name == cmd.task else t for t in record.tasks))
    record_task_event(tx, updated, task)
    if not all(t.status == "completed" for t in updated.tasks):
        return Outcome("ok", {"object": updated.to_json(), "task": task.to_json()})
    # every task of the state is done: `next` fires in this same entry
    machine = compiled(entry, record.revision)
    payload = merged_task_data(updated.tasks)
    try:
        defs = transition_defs(machine, NEXT)
        chosen = choose(tx, machine, updated, cmd.id, NEXT, defs, payload)[0]
    except Rejected as exc:
        raise Rejected(
            exc.rejection.code,
            f"all tasks are completed but '{NEXT}' cannot fire: {exc.rejection.message}",
            list(exc.rejection.details),
        ) from None
    if chosen.votes is not None:  # a voted `next` waits for its votes like any other
        proposed = stage_change(tx, updated, chosen, payload)
        assert proposed.pending is not None
        body = {"object": proposed.to_json(), "task": task.to_json()}
        return Outcome("pending", {**body, "pending": proposed.pending.to_json()})
    final, event = advance(tx, entry, machine, updated, cmd.id, chosen, payload)
    return Outcome("applied", {"object": final.to_json(), "task": task.to_json(), "event": event})


def retry_tasks(tx: Tx, cmd: RetryTasks) -> Outcome:
    if cmd.status not in RETRYABLE:
        raise Rejected(
            "invalid_request", f"retry status must be one of {RETRYABLE}, not {cmd.status!r}"
        )
    require_machine(tx, cmd.machine)
    record = require_object(tx, cmd.machine, cmd.id)
    retried = [t.name for t in record.tasks if t.status == cmd.status]
    tasks = tuple(
        replace(
            t, status="pending", error=None, attempts=t.attempts + 1, updated_at_ms=tx.now_ms
        )
        if t.status == cmd.status
        else t
        for t in record.tasks
    )
    updated = with_tasks(tx, record, tasks) if retried else record
    for task in updated.tasks:
        if task.name in retried:
            record_task_event(tx, updated, task, "retried")
    return Outcome("ok", {"object": updated.to_json(), "retried": retried})


def with_tasks(tx: Tx, record: ObjectRecord, tasks: tuple[TaskRecord, ...]) -> ObjectRecord:
    updated = replace(record, tasks=tasks, updated_at_ms=tx.now_ms, index=tx.index)
    tx.put_object((record.machine, record.id), updated)
    return updated


def merged_task_data(tasks: tuple[TaskRecord, ...]) -> dict[str, Any]:
    """The payload `next` receives: the union of the tasks' result data, in task order."""
    merged: dict[str, Any] = {}
    for task in tasks:
        merged.update(task.data or {})
    return merged


def record_task_event(
    tx: Tx, record: ObjectRecord, task: TaskRecord, status: str | None = None
) -> None:
    """`status`: completed or failed (a report), retried (re-issued); `issued` is in `advance`."""
    event = {
        **transition_event(tx, record, "task", "", task.data),
        "task": task.name,
        "status": status or task.status,
        "error": task.error,
        "attempts": task.attempts,
    }
    tx.record_event((record.machine, record.id), event, history_limit(tx, record))
