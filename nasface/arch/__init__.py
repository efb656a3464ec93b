"""Architectures as data: specs, block families, the exact cost counter, budgets, the search space, and a
spec's torch module, checkpoint and ONNX form.  Knows nothing of data or training."""
