"""``nasface`` command line: a thin layer over the Python API.

The commands live by role (``specs``, ``score``, ``search``, ``train``, ``latency``); the list below
adds them to ``app`` (``nasface.cli.base``) in the order ``--help`` shows them.  Every user mistake surfaces as ``NasfaceError`` and is
printed here as one line (``error: ...``) with exit status 2; nothing is written before the input
has been checked.  The library's messages (``logging``) reach the user through one handler,
``nasface.cli.base.messages``, installed here.
"""

from __future__ import annotations

import sys

from nasface.cli import score, search, specs, train
from nasface.cli.base import app, messages
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


def main() -> None:
    messages.install()
    try:
        app()  # standalone: usage errors print click's message and exit 2
    except NasfaceError as err:
        print(f"error: {err}", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()
