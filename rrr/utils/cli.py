"""How every script turns bad input into one readable line and exit status 2, and leaves bugs as tracebacks.

A user who mistypes a recipe field, points at an empty file or a dataset too small for one step needs one line that
names the field and the fix, and nothing written to disk; a traceback through TRL's argument parser or the trainer's
``__init__`` tells them neither. A genuine bug, on the other hand, needs its traceback. The line between the two is
drawn by exception class, not by message text:

* :class:`UsageError` and its subclasses (:class:`ConfigError` for a config field, ``rrr.tasks.TaskDataError`` for a
  dataset) are raised by rrr's own start-up checks, which know the input was at fault;
* ``ModelLoadError`` (a model path or hub id that does not load) is the user's input too;
* anything that ``ValueError``/``OSError``/YAML errors raised *inside* the argument parsers of ``transformers`` and TRL
  (``HfArgumentParser``, ``TrlParser``): those parsers only ever see the command line and the recipe, so an error
  there is the user's (a missing ``--config`` file, a YAML syntax error, an unknown key, a value TRL's own
  ``__post_init__`` rejects), although the libraries raise plain built-in exceptions we cannot subclass.

argparse's own errors already print a usage line and exit 2; they pass through untouched (``SystemExit``).

    if __name__ == "__main__":
        sys.exit(run(main))
"""

from __future__ import annotations

import sys
from collections.abc import Callable


class UsageError(Exception):
    """The user's input (command line, recipe, dataset, model path) cannot be used; the message says how to fix it.

    Scripts run through :func:`run` print ``error: <message>`` on one line and exit 2 for these, before anything is
    written."""


class ConfigError(UsageError, ValueError):
    """A config field has a value of the wrong type or out of range (a ``ValueError`` too, so callers that already
    catch ``ValueError`` for bad configs keep working)."""


#: Exit status of a usage error (argparse's own).
USAGE_EXIT = 2

#: Modules whose argument parsers only read user input: an error raised inside them is a usage error.
_PARSER_MODULES = ("transformers.hf_argparser", "trl.scripts.utils")


def one_line(text: str) -> str:
    """``text`` with every run of whitespace (newlines included) collapsed to one space: the error is one line."""
    return " ".join(str(text).split())


def _raised_while_parsing(exc: BaseException) -> bool:
    tb = exc.__traceback__
    while tb is not None:
        if tb.tb_frame.f_globals.get("__name__") in _PARSER_MODULES:
            return True
        tb = tb.tb_next
    return False


def usage_message(exc: BaseException) -> str | None:
    """The one-line message for ``exc`` when it is a usage error (see the module docstring), else None."""
    if isinstance(exc, UsageError):
        return one_line(exc)
    from rrr.models.loading import ModelLoadError  # here, not at the top: rrr.tasks imports this module

    if isinstance(exc, ModelLoadError):
        return one_line(exc)
    import yaml  # a dependency of TRL's parser

    if not (isinstance(exc, ValueError | OSError | yaml.YAMLError) and _raised_while_parsing(exc)):
        return None
    if isinstance(exc, yaml.YAMLError):
        return one_line(f"the recipe is not valid YAML: {exc}")
    if isinstance(exc, OSError) and exc.filename is not None and exc.strerror:
        return f"cannot read {exc.filename}: {exc.strerror}"
    return one_line(exc)


def run(main: Callable[[], int | None]) -> int:
    """Run a script's ``main()`` and return its exit status; a usage error prints ``error: <message>`` on one line
    (stderr) and returns 2. Everything else (a bug) propagates with its traceback, as Python would show it.

        if __name__ == "__main__":
            sys.exit(run(main))
    """
    try:
        code = main()
    except Exception as exc:
        message = usage_message(exc)
        if message is None:
            raise
        sys.stdout.flush()
        print(f"error: {message}", file=sys.stderr, flush=True)
        return USAGE_EXIT
    return code or 0
