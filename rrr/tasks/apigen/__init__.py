"""APIGen / xLAM function calling: answer a user query with the right tool call(s).

Data
----
Each example has a ``query`` (str), the ``tools`` offered (a JSON string: a list of ``{name, description,
parameters: {param: {type, description, default}}}``) and the reference ``answers`` (a JSON string: a list of
``{"name": ..., "arguments": {...}}``; several entries are parallel calls, possibly of the same tool). Both stay JSON
*strings* in the ``Dataset`` because Arrow cannot hold the heterogeneous nested dicts of 60k different tools; every
method also accepts already-parsed lists. Sources:

* ``Salesforce/xlam-function-calling-60k`` (the default; **gated**: accept its terms on the hub and log in). It has a
  single ``train`` split of 60,000 rows, so ``load`` carves two deterministic, disjoint splits out of it: ``test`` is
  the **last 2,000 rows** (``HUB_TEST_ROWS``) and ``train`` the 58,000 before them, in the file's order;
* a local ``.json``/``.jsonl``/``.parquet``/``.csv`` file or saved dataset with the same columns (``tools`` and
  ``answers`` may be stored parsed; ``prepare`` turns them back into JSON strings);
* ``source="generated"``: a seeded offline generator of xlam-style examples over 15 small tool schemas (weather,
  currency, stocks, units, search, time zones, ...), 1-3 tools offered per query (with distractors) and 1-3 reference
  calls, parallel calls of one tool included.

Verification
------------
The calls are extracted from the completion from the first form that is present, in this order:

1. the **last** ``<answer>…</answer>`` (the format the prompt asks for; its content may be a JSON list, a single
   call object, a fenced json block or ``<tool_call>`` blocks). When an answer tag is present it is authoritative:
   invalid JSON inside it fails, without looking elsewhere;
2. every ``<tool_call>{…}</tool_call>`` block (Hermes/Qwen chat templates emit one per call);
3. the last fenced json block (models trained on markdown do this unprompted);
4. the whole stripped completion when it starts like JSON (xLAM's own output format).

These are the forms instruction-tuned models actually produce; accepting them judges *which calls* a model makes,
not whether it follows one house style, which is what the RRR paper's APIGen reward measures. A call is an object
with a ``name`` and ``arguments``; ``arguments`` may also be a JSON string (OpenAI style), be called ``parameters``
(Llama 3.1 style), or the call may be wrapped as ``{"type": "function", "function": {...}}``; a missing
``arguments`` means no arguments.

A completion passes iff its calls equal the reference calls **as a multiset**: same number of calls, and every call
matched one-to-one by name, argument names and argument values. Order does not matter because parallel calls are
independent (the dataset's order is arbitrary: "weather in Paris and in Rome" may be answered Rome first), but
multiplicity does: a dropped or duplicated call is a different action. Values are compared after a canonical
encoding: numbers numerically (``3 == 3.0``, as JSON does not distinguish them) but booleans are not numbers
(``true != 1``) and strings are not numbers (``"3" != 3``); strings exactly; lists in order; objects by key. An
**optional argument stated at its declared default** is the same call as one that leaves it out: when a tool's schema
in ``tools`` marks an argument optional (xlam: ``"type": "str, optional"``; JSON schema: not in ``required``) and
declares a ``"default"``, that argument is dropped from both sides whenever its value equals the default
(canonically), so ``units="metric"`` with default ``"metric"`` passes either way. A different value, an argument the
tool does not declare, and a missing required argument still fail.

Model output is hostile data: the completion is size-capped before any parsing, every JSON payload is size-capped
and its bracket nesting depth pre-checked before ``json.loads``, ``NaN``/``Infinity``/``1e999`` and giant integers
are rejected, and nothing is ever evaluated. ``verify`` returns a ``Verdict`` for any input and never raises.
Reference answers are parsed once per distinct JSON string (an LRU cache), so verification stays well above 10,000
checks per second on one core.

Layout
------
One module per concern, so each can be read (and fuzzed) on its own:

* ``calls`` — reading tool calls out of text: the size/depth-guarded JSON decoder, the normalised ``_Call`` and its
  canonical key, the reference parser and its cache, and the four completion forms above (linear-time scans);
* ``verify`` — judging them: the multiset comparison with declared defaults, and the mention checks behind
  ``leaks_answer``;
* ``data`` — where examples come from: the hub dataset's constants (gated, one split carved by ``Task.load``) and the
  seeded offline generator;
* ``lessons`` — what the task teaches: the oracle teacher's and the verifier benchmark's hooks (``APIGenLessons``);
* ``task`` — ``APIGenTask`` itself: prompts, row checks, ``verify`` / ``leaks_answer``, ``generate`` / ``prepare``.

``from rrr.tasks.apigen import APIGenTask`` (and the constants below) is the public import path; the registry names
``rrr.tasks.apigen:APIGenTask``.
"""

from rrr.tasks.apigen.calls import (
    MAX_CACHED_JSON_CHARS,
    MAX_CALLS,
    MAX_COMPLETION_CHARS,
    MAX_DEPTH,
    MAX_INT_DIGITS,
    MAX_PAYLOAD_CHARS,
)
from rrr.tasks.apigen.data import HUB_SOURCE, HUB_TEST_ROWS
from rrr.tasks.apigen.lessons import APIGenLessons
from rrr.tasks.apigen.task import APIGenTask

__all__ = [
    "HUB_SOURCE",
    "HUB_TEST_ROWS",
    "MAX_CACHED_JSON_CHARS",
    "MAX_CALLS",
    "MAX_COMPLETION_CHARS",
    "MAX_DEPTH",
    "MAX_INT_DIGITS",
    "MAX_PAYLOAD_CHARS",
    "APIGenLessons",
    "APIGenTask",
]
