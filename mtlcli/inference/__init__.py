"""Inference: batching, batch-invariant layers, the batched forward pass and the predictor.

Training imports from here (validation runs the same forward pass), never the other way round. Each task's
decoding of the head outputs lives with the task (mtlcli.tasks).
"""
