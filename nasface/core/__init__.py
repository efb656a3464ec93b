"""What every layer stands on: errors, atomic writes, plain-data reading, the option table, the
``Stages`` protocol long stages report to, and rank statistics.  Imports nothing else of nasface."""
