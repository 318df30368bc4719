"""schema_lang.compile_machine: the checks of SPEC 3.3, each with its path and line:column."""

from __future__ import annotations

import json
import textwrap

import pytest

from schema_lang import (
    MachineDef,
    Problem,
    SchemaError,
    compile_machine,
    example_names,
    load_example,
)
from schema_lang.model import EvalContext, ObjectView

LOCK = load_example("lock") if "lock" in example_names() else ""


def src(text: str) -> str:
    return textwrap.dedent(text).lstrip("\n")


def pos(source: str, needle: str, occurrence: int = 1) -> tuple[int, int]:
    """1-based line and column of the `occurrence`-th `needle` in `source`."""
    at = -1
    for _ in range(occurrence):
        at = source.index(needle, at + 1)
    line = source.count("\n", 0, at) + 1
    return line, at - (source.rfind("\n", 0, at) + 1) + 1


def with_transitions(base: str, text: str) -> str:
    """`base` with the transitions of `text` (written at column 1) appended."""
    return base + textwrap.indent(src(text), "  ")


def problems(source: str, name: str | None = None) -> list[Problem]:
    with pytest.raises(SchemaError) as caught:
        compile_machine(source, name)
    return caught.value.problems


def problem_at(source: str, path: str, name: str | None = None) -> Problem:
    found = [p for p in problems(source, name) if p.path == path]
    assert found, f"no problem at {path}: {problems(source, name)}"
    return found[0]


def ctx(dst: dict | None = None, src_data: dict | None = None) -> EvalContext:
    return EvalContext(
        dst or {}, src_data or {}, ObjectView("o1", 1, None), "2026-11-22T07:00:00.000Z"
    )


BASE = src(
    """
    machine: m
    states:
      free: {}
      held: {}
      gone: {terminal: true, remove: true}
    transitions:
      create: {from: null, to: free}
      acquire: {from: free, to: held}
      release: {from: held, to: free}
      destroy: {from: [free, held], to: gone}
    """
)


# --- valid definitions ---------------------------------------------------------------


@pytest.mark.parametrize("name", example_names())
def test_every_example_machine_compiles(name: str) -> None:
    machine = compile_machine(load_example(name))
    assert isinstance(machine, MachineDef)
    assert machine.name == name
    assert machine.revision.startswith("sha256:") and len(machine.revision) == 71
    assert any(d.creates for defs in machine.transitions.values() for d in defs)


def test_examples_include_every_documented_machine() -> None:
    expected = {"lock", "dedup", "session", "cart", "approval", "deploy", "task", "blockchain"}
    assert expected <= set(example_names())


def test_lock_compiles_to_the_model() -> None:
    lock = compile_machine(LOCK)
    assert sorted(lock.states) == ["free", "gone", "held"]
    assert lock.states["gone"].terminal and lock.states["gone"].remove
    assert lock.states["held"].timeout is not None
    assert lock.states["held"].timeout.after_ms == 30_000
    assert lock.states["held"].timeout.transition == "expire"
    (create,) = lock.transitions["create"]
    assert create.creates and create.to == "free"
    (renew,) = lock.transitions["renew"]
    assert renew.to is None and renew.sources == frozenset({"held"})
    (release,) = lock.transitions["release"]
    assert release.data_mode == "replace"
    (destroy,) = lock.transitions["destroy"]
    assert destroy.sources == frozenset({"free", "held"})
    assert lock.history == 100 and lock.description == "Exclusive lock with a lease"
    assert lock.allowed_from("free") == ["acquire", "destroy"]


def test_dst_condition_of_lock_acquire_checks_the_owner() -> None:
    (acquire,) = compile_machine(LOCK).transitions["acquire"]
    assert acquire.dst is not None
    assert acquire.dst(ctx({"owner": "w1"})) == []
    failures = acquire.dst(ctx({"owner": "NOT VALID"}))
    assert failures and failures[0].path.endswith("owner")


def test_history_defaults_to_100_and_name_argument_is_used() -> None:
    machine = compile_machine(BASE.replace("machine: m\n", ""), "fromurl")
    assert machine.name == "fromurl"
    assert machine.history == 100


def test_candidates_keep_their_order() -> None:
    deploy = compile_machine(load_example("deploy"))
    assert [d.sources for d in deploy.transitions["next"]] == [
        frozenset({"provision"}),
        frozenset({"teardown"}),
    ]
    assert [t.name for t in deploy.states["provision"].tasks] == ["ssl-cert", "db-setup"]
    assert deploy.states["provision"].tasks[0].config["executor"] == "lambda"


def test_votes_compile_to_voters_and_quorum() -> None:
    (approve,) = compile_machine(load_example("approval")).transitions["approve"]
    assert approve.votes is not None
    assert approve.votes.voters == ("alice", "bob", "carol")
    assert approve.votes.quorum == 2 and approve.votes.required() == 2
    assert approve.votes.timeout_ms == 86_400_000


def test_follows_closures_match_the_task_example() -> None:
    task = compile_machine(load_example("task"))
    (start,) = task.transitions["start"]
    (assign,) = task.transitions["assign"]
    assert start.follows is not None and assign.follows is not None
    assert start.follows.test(frozenset({"create", "assign", "schedule"}))
    assert not start.follows.test(frozenset({"create", "assign"}))
    assert start.follows.description == "all_of(assign, schedule)"
    assert assign.follows.test(frozenset({"create", "schedule"}))
    assert not assign.follows.test(frozenset({"create", "assign"}))
    (reassign,) = task.transitions["reassign"]
    assert reassign.data_mode == "keep" and reassign.requires == ("assignee",)
    (revise,) = task.transitions["revise"]
    assert revise.restart and revise.any_source and revise.to == "created"


def test_nested_follows_and_bare_event() -> None:
    source = with_transitions(
        BASE,
        """
          audit:
            from: free
            follows: {any_of: [acquire, {all_of: [release, {none_of: [destroy]}]}]}
          note: {from: free, follows: release}
        """,
    )
    machine = compile_machine(source)
    (audit,) = machine.transitions["audit"]
    assert audit.follows is not None
    assert audit.follows.test(frozenset({"acquire"}))
    assert audit.follows.test(frozenset({"release"}))
    assert not audit.follows.test(frozenset({"release", "destroy"}))
    assert audit.follows.description == "any_of(acquire, all_of(release, none_of(destroy)))"
    (note,) = machine.transitions["note"]
    assert note.follows is not None and note.follows.test(frozenset({"release"}))


def test_blockchain_checksum_is_a_running_sha256() -> None:
    import hashlib

    (append,) = compile_machine(load_example("blockchain")).transitions["append"]
    fields = dict(append.set_fields)
    block = "b" * 64
    value = fields["checksum"](ctx({"currentBlock": block}, {"checksum": "c1"}))
    assert value == hashlib.sha256(("c1" + block).encode()).hexdigest()


def test_durations_accept_units_and_combinations() -> None:
    source = BASE.replace("held: {}", "held: {timeout: {after: 1h30m, transition: release}}")
    assert compile_machine(source).states["held"].timeout.after_ms == 5_400_000  # type: ignore[union-attr]
    source = BASE.replace("held: {}", "held: {timeout: {after: 250ms, transition: release}}")
    assert compile_machine(source).states["held"].timeout.after_ms == 250  # type: ignore[union-attr]


# --- revisions and caching -----------------------------------------------------------


def test_yaml_and_json_of_the_same_definition_have_the_same_revision() -> None:
    import yaml

    as_yaml = compile_machine(LOCK)
    as_json = compile_machine(json.dumps(yaml.safe_load(LOCK), indent=2))
    assert as_yaml.revision == as_json.revision
    assert as_yaml.canonical == as_json.canonical


def test_comments_and_layout_do_not_change_the_revision() -> None:
    relaid = BASE.replace("  free: {}\n", "  # the initial state\n  free:   {}\n")
    assert compile_machine(relaid).revision == compile_machine(BASE).revision


def test_a_different_definition_or_name_changes_the_revision() -> None:
    base = compile_machine(BASE)
    moved = BASE.replace("release: {from: held, to: free}", "release: {from: held, to: gone}")
    assert compile_machine(moved).revision != base.revision
    unnamed = BASE.replace("machine: m\n", "")
    assert compile_machine(unnamed, "m").revision == base.revision
    assert compile_machine(unnamed, "other").revision != base.revision
    assert compile_machine(unnamed, "other").canonical["machine"] == "other"


def test_compiling_the_same_source_twice_uses_the_cache() -> None:
    assert compile_machine(BASE) is compile_machine(BASE.encode())
    unnamed = BASE.replace("machine: m\n", "")
    assert compile_machine(unnamed, "m") is not compile_machine(unnamed, "other")
    assert compile_machine(BASE, "m") is not compile_machine(BASE)


# --- names ---------------------------------------------------------------------------


def test_name_argument_that_differs_from_machine_key_is_a_problem() -> None:
    p = problem_at(BASE, "machine", name="other")
    assert (p.line, p.column) == pos(BASE, "m\n")
    assert "'m'" in p.message and "'other'" in p.message


def test_definition_without_any_name_is_a_problem() -> None:
    p = problem_at(BASE.replace("machine: m\n", ""), "machine")
    assert "machine: NAME" in p.message


# --- unknown keys --------------------------------------------------------------------


def test_unknown_top_level_key_suggests_the_right_one() -> None:
    source = BASE.replace("transitions:", "transitons:")
    found = problems(source)
    p = next(p for p in found if p.path == "transitons")
    assert (p.line, p.column) == pos(source, "transitons")
    assert "did you mean 'transitions'" in p.message


def test_unknown_key_in_a_transition_is_reported_where_written() -> None:
    source = BASE.replace("acquire: {from: free, to: held}", "acquire: {from: free, too: held}")
    p = problem_at(source, "transitions.acquire.too")
    assert (p.line, p.column) == pos(source, "too")
    assert "did you mean 'to'" in p.message


def test_unknown_key_in_a_state_and_in_a_timeout() -> None:
    source = BASE.replace(
        "held: {}", "held: {terminl: true, timeout: {afer: 5s, transition: release}}"
    )
    found = {p.path: p for p in problems(source)}
    assert "did you mean 'terminal'" in found["states.held.terminl"].message
    assert (found["states.held.terminl"].line, found["states.held.terminl"].column) == pos(
        source, "terminl"
    )
    assert "did you mean 'after'" in found["states.held.timeout.afer"].message


def test_unknown_key_in_votes() -> None:
    source = BASE.replace(
        "acquire: {from: free, to: held}",
        "acquire: {from: free, to: held, votes: {voters: [a, b], quorm: 2}}",
    )
    p = problem_at(source, "transitions.acquire.votes.quorm")
    assert "did you mean 'quorum'" in p.message


# --- SPEC 3.3 checks -----------------------------------------------------------------


def test_unknown_destination_state_names_the_known_states() -> None:
    source = BASE.replace("release: {from: held, to: free}", "release: {from: held, to: fre}")
    p = problem_at(source, "transitions.release.to")
    assert (p.line, p.column) == pos(source, "fre}")
    assert p.message == (
        "transition 'release' goes to unknown state 'fre' (did you mean 'free'?)"
        " (states: free, gone, held)"
    )


def test_unknown_source_state_in_a_list() -> None:
    source = BASE.replace("from: [free, held]", "from: [free, hold]")
    p = problem_at(source, "transitions.destroy.from[1]")
    assert (p.line, p.column) == pos(source, "hold")
    assert "unknown state 'hold'" in p.message


def test_unknown_rule_in_use() -> None:
    source = BASE.replace(
        "acquire: {from: free, to: held}",
        "acquire: {from: free, to: held, $dst: {owner: {use: owner_idd}}}",
    )
    p = problem_at(source, "transitions.acquire.$dst.owner.use")
    assert (p.line, p.column) == pos(source, "owner_idd")
    assert "'owner_idd'" in p.message


def test_unreachable_state_is_reported_at_its_name() -> None:
    source = BASE.replace("  held: {}\n", "  held: {}\n  orphan: {}\n")
    p = problem_at(source, "states.orphan")
    assert (p.line, p.column) == pos(source, "orphan")
    assert "unreachable" in p.message


def test_state_reached_only_through_any_source_is_reachable() -> None:
    source = (
        BASE.replace("  held: {}\n", "  held: {}\n  parked: {}\n")
        + "  park: {from: '*', to: parked}\n"
    )
    assert "parked" in compile_machine(source).states


def test_state_with_tasks_and_no_next_is_a_problem() -> None:
    source = BASE.replace("held: {}", "held: {tasks: [{name: provision-db}]}")
    p = problem_at(source, "states.held.tasks")
    assert (p.line, p.column) == pos(source, "[{name")
    assert "no transition 'next'" in p.message


def test_next_must_leave_the_state_with_tasks() -> None:
    source = (
        BASE.replace("held: {}", "held: {tasks: [{name: db}]}") + "  next: {from: free, to: held}\n"
    )
    assert problem_at(source, "states.held.tasks")
    fixed = (
        BASE.replace("held: {}", "held: {tasks: [{name: db}]}") + "  next: {from: held, to: free}\n"
    )
    assert compile_machine(fixed).states["held"].tasks[0].name == "db"


def test_bad_regex_is_reported_at_the_rule() -> None:
    source = BASE.replace(
        "acquire: {from: free, to: held}",
        "acquire: {from: free, to: held, $dst: {owner: {regex: '^(unclosed$'}}}",
    )
    p = problem_at(source, "transitions.acquire.$dst.owner.regex")
    assert (p.line, p.column) == pos(source, "'^(unclosed")
    assert "regex" in p.message


def test_bad_regex_in_an_unused_rule_is_still_reported() -> None:
    source = BASE.replace("machine: m\n", "machine: m\nrules:\n  code: {regex: '[z-a]'}\n")
    found = [p for p in problems(source) if p.path.startswith("rules.code")]
    assert found and (found[0].line, found[0].column) == pos(source, "'[z-a]'")


def test_bad_template_in_set_is_reported_at_the_template() -> None:
    source = BASE.replace(
        "acquire: {from: free, to: held}",
        "acquire: {from: free, to: held, set: {chain: '${sha256(src.chain'}}",
    )
    p = problem_at(source, "transitions.acquire.set.chain")
    line, start = pos(source, "${sha256")
    assert p.line == line
    assert start <= p.column <= start + len("${sha256(src.chain")
    assert "bad template" in p.message


def test_duplicate_task_names_and_voters_are_problems() -> None:
    source = with_transitions(
        BASE.replace("held: {}", "held: {tasks: [{name: db}, {name: db}]}"),
        """
          next: {from: held, to: free}
          vote:
            from: free
            votes: {voters: [alice, alice], quorum: 1}
        """,
    )
    found = {p.path: p for p in problems(source)}
    assert "duplicate task name 'db'" in found["states.held.tasks[1].name"].message
    assert (
        found["states.held.tasks[1].name"].line,
        found["states.held.tasks[1].name"].column,
    ) == pos(source, "db}]")
    assert "listed twice" in found["transitions.vote.votes.voters[1]"].message


def test_duplicate_state_names_are_refused() -> None:
    source = BASE.replace("  held: {}\n", "  held: {}\n  free: {terminal: true}\n")
    p = problem_at(source, "states.free")
    assert (p.line, p.column) == pos(source, "free", 2)
    assert "duplicate" in p.message


def test_transition_out_of_a_terminal_state_is_a_problem() -> None:
    source = BASE + "  revive: {from: gone, to: free}\n"
    p = problem_at(source, "transitions.revive.from")
    assert (p.line, p.column) == pos(source, "gone, to")
    assert "terminal state 'gone'" in p.message


def test_no_creation_transition_is_a_problem() -> None:
    source = BASE.replace("  create: {from: null, to: free}\n", "")
    p = problem_at(source, "transitions")
    assert "from: null" in p.message


def test_creation_needs_a_destination() -> None:
    source = BASE.replace("create: {from: null, to: free}", "create: {from: null}")
    p = problem_at(source, "transitions.create.to")
    assert (p.line, p.column) == pos(source, "{from: null}")


def test_shadowed_candidate_is_a_problem() -> None:
    source = with_transitions(
        BASE,
        """
          park:
            - {from: free, to: held}
            - {from: free, to: gone}
        """,
    )
    p = problem_at(source, "transitions.park[1]")
    assert (p.line, p.column) == pos(source, "{from: free, to: gone}")
    assert "never apply" in p.message


def test_guarded_earlier_candidate_does_not_shadow() -> None:
    source = with_transitions(
        BASE,
        """
          park:
            - {from: free, to: held, requires: [owner]}
            - {from: free, to: gone}
        """,
    )
    assert len(compile_machine(source).transitions["park"]) == 2


def test_timeout_must_name_an_existing_transition_that_leaves_the_state() -> None:
    source = BASE.replace("held: {}", "held: {timeout: {after: 30s, transition: expir}}")
    p = problem_at(source, "states.held.timeout.transition")
    assert (p.line, p.column) == pos(source, "expir")
    assert "unknown transition 'expir'" in p.message
    source = BASE.replace("held: {}", "held: {timeout: {after: 30s, transition: acquire}}")
    p = problem_at(source, "states.held.timeout.transition")
    assert "cannot leave 'held'" in p.message


def test_bad_duration_is_a_problem() -> None:
    source = BASE.replace("held: {}", "held: {timeout: {after: 30 sec, transition: release}}")
    p = problem_at(source, "states.held.timeout.after")
    assert (p.line, p.column) == pos(source, "30 sec")
    assert "duration" in p.message


def test_remove_is_only_valid_on_terminal_states() -> None:
    source = BASE.replace("held: {}", "held: {remove: true}")
    p = problem_at(source, "states.held.remove")
    assert "terminal" in p.message


def test_quorum_must_fit_the_voters() -> None:
    source = BASE.replace(
        "acquire: {from: free, to: held}",
        "acquire: {from: free, to: held, votes: {voters: [a, b], quorum: 3}}",
    )
    p = problem_at(source, "transitions.acquire.votes.quorum")
    assert (p.line, p.column) == pos(source, "3}")
    assert "1 to 2" in p.message


def test_then_must_name_existing_transitions_and_not_loop_on_itself() -> None:
    source = BASE.replace(
        "release: {from: held, to: free}",
        "release: {from: held, to: free, then: [{transition: destory}]}",
    )
    p = problem_at(source, "transitions.release.then[0].transition")
    assert "unknown transition 'destory'" in p.message and "did you mean 'destroy'" in p.message
    source = BASE + "  poke: {from: free, then: [{transition: poke}]}\n"
    p = problem_at(source, "transitions.poke.then[0]")
    assert "chains to itself" in p.message
    guarded = BASE + "  poke: {from: free, then: [{transition: poke, if: {$src: {n: {max: 3}}}}]}\n"
    (poke,) = compile_machine(guarded).transitions["poke"]
    assert poke.then[0].transition == "poke" and poke.then[0].condition is not None


def test_follows_must_name_existing_transitions() -> None:
    source = BASE.replace(
        "release: {from: held, to: free}",
        "release: {from: held, to: free, follows: {all_of: [aquire]}}",
    )
    p = problem_at(source, "transitions.release.follows.all_of[0]")
    assert (p.line, p.column) == pos(source, "aquire")
    assert "did you mean 'acquire'" in p.message


def test_bad_data_mode_and_history_are_problems() -> None:
    source = BASE.replace("machine: m\n", "machine: m\nhistory: 0\n").replace(
        "release: {from: held, to: free}", "release: {from: held, to: free, data: replce}"
    )
    found = {p.path: p for p in problems(source)}
    assert "1 to 10000" in found["history"].message
    assert "merge, replace, keep" in found["transitions.release.data"].message


def test_every_problem_is_reported_at_once_in_source_order() -> None:
    source = (
        BASE.replace("to: held", "to: hld")
        .replace("free: {}", "free: {colour: red}")
        .replace("release: {from: held, to: free}", "release: {from: held, to: free, data: nope}")
    )
    found = problems(source)
    assert {"transitions.acquire.to", "states.free.colour", "transitions.release.data"} <= {
        p.path for p in found
    }
    assert [(p.line, p.column) for p in found] == sorted((p.line, p.column) for p in found)


def test_problems_carry_a_spec_detail() -> None:
    source = BASE.replace("to: held", "to: hld")
    detail = problem_at(source, "transitions.acquire.to").as_detail()
    assert set(detail) == {"path", "line", "column", "message"}


def test_json_source_reports_positions_too() -> None:
    import yaml

    data = yaml.safe_load(BASE)
    data["transitions"]["acquire"]["to"] = "hld"
    source = json.dumps(data, indent=2)
    p = problem_at(source, "transitions.acquire.to")
    assert (p.line, p.column) == pos(source, '"hld"')


def test_the_cache_is_bounded() -> None:
    from schema_lang import compiler

    for i in range(compiler.CACHE_SIZE + 20):
        compile_machine(BASE + f"# variant {i}\n")
    assert len(compiler._cache) == compiler.CACHE_SIZE


def test_votes_on_a_creation_transition_are_refused() -> None:
    source = BASE.replace(
        "create: {from: null, to: free}",
        "create: {from: null, to: free, votes: {voters: [a, b]}}",
    )
    p = problem_at(source, "transitions.create.votes")
    assert (p.line, p.column) == pos(source, "{voters")


def test_unknown_keys_in_then_steps_and_their_if() -> None:
    source = BASE.replace(
        "release: {from: held, to: free}",
        "release: {from: held, to: free, then: [{transition: destroy, iff: {}}]}",
    )
    p = problem_at(source, "transitions.release.then[0].iff")
    assert (p.line, p.column) == pos(source, "iff")
    assert "did you mean 'if'" in p.message
    source = BASE.replace(
        "release: {from: held, to: free}",
        "release: {from: held, to: free, then: [{transition: destroy, if: {src: {}}}]}",
    )
    p = problem_at(source, "transitions.release.then[0].if.src")
    assert "did you mean '$src'" in p.message
