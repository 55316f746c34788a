"""What a trained task gives the runner: a model and loss to train, and how to judge the result."""

import dataclasses
from collections.abc import Callable
from typing import Any


@dataclasses.dataclass(kw_only=True, frozen=True)
class Task:
  """An experiment: what to train, and how to judge the result.

  It trains in one of two ways: ``loss_fn`` (``loss_fn(params, rng, batch, step) -> (loss, metrics)``,
  stepped by the config's optimizer through :func:`nnce_jax.train.make_train_step`, with
  ``sample_batch(key, inputs) -> batch`` drawing each step's global batch), or its own
  iteration (DxMI steps three networks in turn): ``train_step`` (:class:`nnce_jax.train.TrainStep`)
  with the ``optimizer`` whose ``init`` makes the state's ``opt_state``.

  ``eval_fn(params) -> {name: scalar}`` (jitted). ``truth`` holds closed-form values of eval
  metrics; ``references`` what a metric is set beside but is not its truth (a teacher's score, a
  data floor, the MLE's error, a bound, a published number). ``table_metrics`` are compared across
  runs; when ``tolerance_metric`` is set, the summary reports the first step after which it stays
  below ``tolerance``; ``report(params, workdir) -> dict`` makes plots and extra results;
  ``batches_for(step) -> [steps_per_dispatch, B, ...]`` gives host inputs (images; default none).
  """
  init_params: Any
  eval_fn: Callable
  table_metrics: tuple[str, ...]
  truth: dict[str, float] = dataclasses.field(default_factory=dict)
  references: dict[str, float] = dataclasses.field(default_factory=dict)
  loss_fn: Callable | None = None
  sample_batch: Callable | None = None
  optimizer: Any = None   # optax.GradientTransformation, with train_step
  train_step: Any = None  # nnce_jax.train.TrainStep
  tolerance_metric: str | None = None
  tolerance: float = 0.0
  report: Callable[[Any, str], dict] = lambda params, workdir: {}
  batches_for: Callable[[int], Any] | None = None

  def __post_init__(self):
    own_step = self.train_step is not None
    if own_step == (self.loss_fn is not None) or own_step != (self.optimizer is not None):
      raise ValueError('a Task trains loss_fn with the config\'s optimizer, or its own train_step with '
                       'its optimizer: give loss_fn alone, or train_step and optimizer')
