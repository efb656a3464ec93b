"""The one exception type for a user's mistake.

Anything raised as ``NasfaceError`` is shown by the CLI as a single line
(``error: ...``) with exit status 2, never as a traceback.  The message must name
what is wrong and how to fix it.
"""


class NasfaceError(Exception):
    """A problem with the user's input (spec, data, budget, path...), not a bug."""
