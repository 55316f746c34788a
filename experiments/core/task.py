"""What a trained task gives the runner: a model and loss to train, and how to judge the result."""

import dataclasses
from collections.abc import Callable
from typing import Any

from flax import linen as nn


@dataclasses.dataclass
class Task:
  """An experiment: a model and loss to train, and how to judge the result.

  ``eval_fn(params) -> {name: scalar}`` (jitted); ``truth`` holds closed-form values of
  eval metrics where known; ``table_metrics`` are compared across objectives; when
  ``tolerance_metric`` is set, the summary reports the first step after which it stays
  below ``tolerance``; ``report(params, workdir) -> dict`` makes plots and extra results;
  ``batches_for(step) -> [steps_per_dispatch, B, ...]`` gives host inputs (images; default
  none) and ``sample_batch(key, inputs) -> batch`` draws each step's global batch from them
  (:func:`nnce_jax.train.make_train_step`). A task whose iteration is not one loss and one
  optimiser step (DxMI steps three networks in turn) gives its own ``optimizer`` (whose ``init``
  makes the state's ``opt_state``) and ``train_step`` (:class:`nnce_jax.train.TrainStep`);
  ``loss_fn`` is then unused.
  """
  model: nn.Module
  init_params: Any
  loss_fn: Callable
  eval_fn: Callable
  truth: dict[str, float]
  table_metrics: tuple[str, ...]
  tolerance_metric: str | None = None
  tolerance: float = 0.0
  report: Callable[[Any, str], dict] = lambda params, workdir: {}
  batches_for: Callable[[int], Any] | None = None
  sample_batch: Callable | None = None
  optimizer: Any = None   # optax.GradientTransformation: replaces the config's optimizer
  train_step: Any = None  # nnce_jax.train.TrainStep: replaces make_train_step(loss_fn, ...)
