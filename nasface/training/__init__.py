"""Training: losses, evaluation, ranking signals, teachers, full training and its recipe and events
(the proxy's loop is ``nasface.train`` until issue 27's split lands)."""
