"""``nasface`` command line: a thin layer over the Python API.

The commands live by role (``specs``, ``score``, ``search``, ``train``, ``latency``); the list below
adds them to ``app`` (``nasface.cli.base``) in the order ``--help`` shows them.  Every user mistake surfaces as ``NasfaceError``
(or, for the options' syntax, click's usage error) and is printed here as one line (``error: ...``) with
exit status 2; nothing is written before the input has been checked.  The library's messages (``logging``) reach the user through one handler,
``nasface.cli.base.messages``, installed here.
"""

from __future__ import annotations

import sys

import typer
import typer.main

from nasface.cli import score, search, specs, train
from nasface.cli.base import app, interrupted, messages
from nasface.cli.latency import latency_app
from nasface.core.errors import NasfaceError

for name, command in (("presets", specs.presets), ("count", specs.count_command), ("spec", specs.spec_command),
                      ("data", score.data_command), ("score", score.score_command), ("space", specs.space_command),
                      ("search", search.search_command), ("fidelity", search.fidelity_command),
                      ("validate", search.validate_command), ("report", search.report_command),
                      ("export", search.export_command), ("train", train.train_command),
                      ("onnx", train.onnx_command)):
    app.command(name)(command)
app.add_typer(latency_app, name="latency")

# click's usage error (an unknown option or command, a bad or missing value), named through the one public
# class derived from it: typer 0.2x ships its own copy of click, earlier versions click itself
USAGE_ERROR = typer.BadParameter.__base__
STOPPED = "the command stopped where it was"  # Ctrl-C in a short command, which keeps nothing to continue


def named_command(args: list[str]) -> tuple[object, list[str]]:
    """The command (or group) ``args`` name, and its path (``["nasface", "latency", "table"]``)."""
    node, path = typer.main.get_command(app), ["nasface"]
    for word in args:
        if word in getattr(node, "commands", {}):
            node = node.commands[word]
            path.append(word)
    return node, path


def check_values_given(args: list[str]) -> None:
    """An option that takes a value, followed by another option (``--budget-flops --data orl``): click would
    take ``--data`` as the value and report what follows as extra, or take a flag as a folder's name and
    go on, so it is caught here, before any command runs."""
    node, path = named_command(args)
    commands = list(node.commands.values()) if hasattr(node, "commands") else [node]  # ``latency SPEC``: measure
    options = [param for command in commands for param in command.params if param.param_type_name == "option"]
    names = {"--help"} | {name for option in options for name in option.opts + option.secondary_opts}
    takes_value = {name for option in options if not (option.is_flag or option.count) for name in option.opts}
    for word, following in zip(args, args[1:]):
        if word == "--":
            return
        if word in takes_value and following in names:
            raise NasfaceError(f"{word} has no value: the next word is the option {following} "
                               f"(see {' '.join(path)} --help)")


def main() -> None:
    messages.install()
    try:
        check_values_given(sys.argv[1:])
        # not standalone: click's usage errors (an unknown option or command, a value of the wrong type, a
        # missing option) come here, to be one line like every other mistake, not click's four of usage
        code = app(standalone_mode=False)
    except NasfaceError as err:
        print(f"error: {err}", file=sys.stderr)
        sys.exit(2)
    except USAGE_ERROR as err:
        if type(err).__name__ == "NoArgsIsHelpError":  # a bare ``nasface`` or ``nasface latency``: the help
            err.show()
            sys.exit(err.exit_code)
        where = err.ctx.command_path if err.ctx is not None else " ".join(named_command(sys.argv[1:])[1])
        print(f"error: {err.format_message()} (see {where} --help)", file=sys.stderr)
        sys.exit(2)
    except typer.Abort:  # Ctrl-C outside a command's own handling (``on_interrupt``), as click reports it
        interrupted(STOPPED)
    if code == 130:  # the same, as typer 0.2x reports it: an exit status, silently
        interrupted(STOPPED)
    sys.exit(code if isinstance(code, int) else 0)


if __name__ == "__main__":
    main()
