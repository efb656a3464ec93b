"""Training: the settings, the loop, the model as the proxy trains it, and proxy scoring."""
