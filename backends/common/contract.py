"""The numbers both backends (and the referee, adapters/referee.py) must agree on, written once.

The contract's constants come first, each with its docs/spec.md section; the
work sizes after them are not in the contract (a result does not depend on
them beyond float32 summation order), but both backends use the same ones so
that their outputs stay comparable. Only plain numbers live here: the
arithmetic that uses them is written once per backend.
"""

from __future__ import annotations

MERGE_EPSILON = 1e-3  # §8: added to the summed windows when a group is merged (object_big)
LOSS_EPSILON = 1e-6  # §9: keeps the poisson deviance's log finite where I or X^2 is 0
ADAM_BETA1 = 0.9  # §10: Adam's first-moment decay
ADAM_BETA2 = 0.999  # §10: Adam's second-moment decay
MASK_FLOOR = 1e-3  # §11: stitched canvas pixels whose window sum is below this are 0

EVAL_CHUNK = 64  # inference groups per forward pass of evaluate_loss (the history's test_loss)
PREDICT_CHUNK = 64  # inference groups per forward pass of predict_patches
NEIGHBOR_ROWS = 1024  # seeds per block of the (seeds x M) distance matrix: bounds grouping's memory
