"""The limits a definition and the data it handles must stay within (SPEC 4.9).

One place for every number, so the checker, the engine and docs/RELIABILITY.md
("Hostile input") agree. The cost limits bound what one request can make the
engine do; they are checked when a definition is put, so the apply of any
transition of an accepted machine stays within the engine's step budget.
"""

from __future__ import annotations

# -- values (definitions and data) -------------------------------------------
MIN_INT = -(2**63)  # integers are 64-bit signed: what every JSON codec we use can hold
MAX_INT = 2**63 - 1
MAX_NESTING = 64  # containers inside containers (data and definitions)
MAX_DATA_BYTES = 64 * 1024  # an object's data as compact JSON, after merge/set/templates
MAX_TEXT_CHARS = 64 * 1024  # a string a template computes (never larger than the data)

# -- the cost model (checked when a definition is put) -------------------------
MAX_STATES = 1_000
MAX_EDGES = 10_000  # (source state, transition) pairs with `from: '*'` expanded
MAX_RULE_CHECKS = 2_000  # rule checks of one condition with every `use` expanded
MAX_THEN_TRANSITIONS = 100  # transitions one request can apply through its `then` tree
MAX_TRANSITION_STEPS = 20_000  # worst-case engine steps of one transition request
# Applying a transition (new record, event, history) costs this many steps; a rule
# check, a `set` field or a then step's condition costs one. Measured: a step is
# about 1 µs of rule checking, an applied transition about 50 µs.
ADVANCE_STEPS = 50
# Steps one log entry may take (a batch of many transitions, a tick firing many
# deadlines). A single transition of an accepted machine always fits.
MAX_ENTRY_STEPS = 200_000

# -- error reports -------------------------------------------------------------
MAX_PROBLEMS = 100  # problems listed in one invalid_schema answer
MAX_HINTS = 10  # "did you mean" suggestions computed per compilation (difflib is slow)
MAX_HINT_NAMES = 100  # names one hint compares the misspelt name with
MAX_LISTED_NAMES = 20  # names listed in one message ("states: a, b, … and 980 more")
THEN_DEPTH = 10  # `then` chains deeper than this are refused by the engine
MAX_MESSAGE_CHARS = 1_000  # one problem's message or path
# reading data costs more the larger it is: a rule check (or a `set` template) charges
# this many steps per KiB of the value it reads, on top of its priced step
DATA_STEPS_PER_KIB = 2
