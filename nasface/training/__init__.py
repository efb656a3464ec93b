"""Training: the settings, the proxy's loop, the model as the proxy trains it, proxy scoring, losses,
evaluation, ranking signals, teachers, and full training with its recipe and events."""
