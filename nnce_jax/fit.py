"""Density-ratio estimation from your own samples in one call: :func:`fit_ratio`.

    from nnce_jax import fit, noise
    base = noise.isotropic_gaussian(2)
    result = fit.fit_ratio(samples, base)    # N^2CE with M chosen as it trains (magnitude='auto')
    result.log_ratio(x)                      # log q*/q0 at x [n, d] -> [n]
    result.kl, result.kl_std_error           # KL(q* || q0) on held-out samples
    result.log_normalizer['optimal_bridge']  # log Z of exp(s) q0, with its standard error

It runs the library's engine (every local device, ``jit`` + ``shard_map``, Orbax checkpoints
when ``checkpoint_dir`` is given, so a second call with the same directory resumes) and
does no other file I/O.
"""

import copy
import dataclasses
import itertools
import os
import warnings
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import linen as nn
from ml_collections import ConfigDict

from nnce_jax import (
  ais,
  checkpoint,
  estimation,
  models,
  normalizers,
  objectives,
  sampling,
  schedules,
  selection,
)
from nnce_jax import train as engine
from nnce_jax.parallel import DataParallel

MODELS = models.RATIO_MODELS


@dataclasses.dataclass(frozen=True)
class RatioFit:
  """A fitted log ratio ``s = log q*/q0`` and what it implies.

  ``kl`` is ``E_q*[s]`` over held-out samples (``kl_std_error = std(s) / sqrt(n)``; for
  ``ranking_nce``, whose ``s`` is known up to a constant, ``s`` is first normalised by the
  optimal-bridge ``log Z``). ``log_normalizer`` holds ``log Z`` of ``exp(s) q0`` by every
  estimator of :mod:`nnce_jax.normalizers`, with held-out data standing in for samples of
  the model (right when the model fits; importance sampling uses the noise alone), or MALA
  samples of the model when ``mcmc_steps > 0``; near 0
  for a self-normalised fit. With ``ais_temperatures > 0`` it also holds ``ais`` (forward
  annealed importance sampling from ``q0``: a stochastic lower bound, needing no model
  samples) and ``reverse_ais`` (from held-out data: an upper bound when the model fits), the
  estimates to trust in high dimension. ``history`` is ``[{'step', 'kl', 'held_out_loss',
  'selection_score', 'magnitude'}]`` during training (``held_out_loss``: the objective on
  held-out data and a fixed noise sample at the ``magnitude`` then in force;
  ``selection_score``: what selection minimises, see ``select``); ``selected_step`` is the step whose
  parameters ``params`` holds (the best held-out score with ``select``, else the last).
  """
  model: nn.Module
  params: Any
  kl: float
  kl_std_error: float
  log_normalizer: dict[str, normalizers.LogNormalizer]
  history: list[dict]
  selected_step: int
  _log_ratio: Callable = dataclasses.field(repr=False)

  def log_ratio(self, x) -> jax.Array:
    """``log q*/q0 (x)``: ``[n, d] -> [n]``, the sum of the telescoping stages."""
    return self._log_ratio(self.params, jnp.asarray(x))


def _check(condition: bool, message: str):
  if not condition:
    raise ValueError(message)


def fit_ratio(data: jax.Array | Callable[[jax.Array, int], jax.Array], noise, *,
              objective: str = 'noisier_nce',
              magnitude: float | str | schedules.AutomaticMagnitude | None = None,
              num_stages: int = 1,
              noise_ratio: int = 1, num_candidates: int = 2, l2_penalty: float = 0.0,
              model: str | nn.Module = 'mlp', hidden: tuple[int, ...] = (128, 128),
              num_steps: int = 2000, batch_size: int = 512, learning_rate: float = 1e-3,
              ema_decay: float = 0.99, held_out: float | int = 0.1, num_eval: int = 10_000,
              eval_every: int | None = None, select: bool = False, patience: int = 0,
              steps_per_dispatch: int = 10, seed: int = 0,
              ais_temperatures: int = 0, ais_chains: int = 64, mcmc_steps: int = 0,
              checkpoint_dir: str | None = None, devices=None) -> RatioFit:
  """Fits ``s(x) = log q*(x) / q0(x)`` by noise-contrastive estimation.

  Args:
    data: samples of ``q*``, ``[n, d]`` (``held_out`` of them, a fraction if a float, a count
      if an int, are kept for evaluation), or a sampler ``(key, n) -> [n, d]`` (fresh samples
      are drawn for evaluation).
    noise: ``q0``, anything with ``sample(key, shape) -> [*shape, d]`` and ``log_prob(x)``,
      e.g. from :mod:`nnce_jax.noise`.
    objective: ``nce`` | ``noisier_nce`` | ``nwj`` | ``ranking_nce``; ``noise_ratio`` is
      NCE's ``nu`` (real noise samples per data point), ``num_candidates`` ranking NCE's
      ``N``, ``num_stages`` the telescoping ``K``.
    magnitude: N^2CE's ``M`` (``None``: ``'auto'`` for ``noisier_nce``, unused otherwise):
      ``'auto'`` (:class:`~nnce_jax.schedules.AutomaticMagnitude`'s
      ``kl`` rule: ``M = exp`` of the held-out KL estimate at each evaluation, in
      ``[1, 1e4]``; on 10 benchmarks with a closed-form KL never worse than NCE or than
      ``M = 100``, see docs/automatic_magnitude.md), a number (the paper: 100), an
      ``AutomaticMagnitude`` of your own settings, or ``'ess'`` (each step's ``M`` from its
      noise logits: :func:`~nnce_jax.schedules.effective_sample_size_log_magnitude`).
    model: ``mlp`` (:class:`~nnce_jax.models.MLPRatio` with ``hidden`` widths), ``gaussian``
      (:class:`~nnce_jax.models.GaussianRatio`, exact for Gaussian data and noise), ``resmlp``
      (:class:`~nnce_jax.models.ResidualMLPRatio`, its default sizes), or any Flax module
      ``x [b, d] -> stage log ratios [b, K]``.
    num_steps, batch_size, learning_rate, ema_decay: Adam on the global batch; the result is
      read from an EMA of the parameters. ``batch_size`` must divide over the devices.
    eval_every: steps between held-out evaluations in ``history`` (``None``: every 100 steps,
      so a longer run makes the same choices as a shorter one up to its end; 0: only at the
      end, which leaves selection and ``'auto'`` nothing to act on).
    select: keep the parameters of the evaluation with the best held-out objective (with an
      automatic ``M``: NCE's, the one score that does not change with ``M``), not the last
      ones. The held-out objective is a proper scoring rule, so this guards against fitting
      a small training sample (NCE with an MLP on a 10-D pair: 0.30 nats of KL error kept,
      0.48 at 8,000 steps); but it is a noisy score of the KL, blind to the tails that set
      it, and with ``'auto'`` it kept a worse step on all 10 benchmarks of
      docs/automatic_magnitude.md (the 6.4-nat chasm: 0.017 nats at the last step, 0.11 at
      the kept one), hence off by default. Turn it on for a flexible model on few samples, or
      give ``patience`` to stop early. After a resume, selection sees only the resumed steps.
    patience: stop after this many evaluations without a better held-out score (with
      ``'auto'``, once ``M`` has reached its floor); 0: train all ``num_steps``.
    ais_temperatures, ais_chains: AIS and its reverse for ``log Z`` (0 temperatures: off);
      a warning says when ``log Z`` estimators disagree by more than 3 standard errors.
    mcmc_steps: MALA steps (after as many of warm-up) of chains started at the held-out
      samples, whose states (every 10th) are the model samples of the pooled estimators; 0:
      the held-out samples stand in for them.
    checkpoint_dir: where to save the training state (and resume from); ``None``: nowhere.
    devices: the devices to split each batch over (default: all).
  """
  _check(objective in objectives.OBJECTIVES,
         f'objective={objective!r} is not one of {", ".join(objectives.OBJECTIVES)}')
  if magnitude is None:
    magnitude = 'auto' if objective == 'noisier_nce' else 1.0
  automatic = magnitude in ('auto', 'ess') or isinstance(magnitude, schedules.AutomaticMagnitude)
  _check(automatic or (isinstance(magnitude, (int, float)) and np.isfinite(magnitude) and magnitude > 0),
         f"magnitude={magnitude!r} must be a finite number > 0, 'auto', 'ess' or an AutomaticMagnitude")
  _check(not automatic or objective == 'noisier_nce',
         f"magnitude={magnitude!r} is noisier_nce's; objective={objective!r} has no magnitude")
  _check(patience >= 0 and (eval_every is None or eval_every >= 0),
         f'patience={patience} and eval_every={eval_every} must be >= 0')
  _check(min(num_stages, noise_ratio, num_steps, batch_size) >= 1 and num_candidates >= 2,
         'num_stages, noise_ratio, num_steps and batch_size must be >= 1 and num_candidates >= 2')
  _check(mcmc_steps >= 0, f'mcmc_steps={mcmc_steps} must be >= 0')
  _check(ais_temperatures >= 0 and ais_chains >= 2,
         f'ais_temperatures={ais_temperatures} must be >= 0 and ais_chains={ais_chains} >= 2')
  _check(isinstance(model, nn.Module) or model in MODELS,
         f'model={model!r} is not one of {", ".join(MODELS)} or a Flax module')
  _check(callable(getattr(noise, 'sample', None)) and callable(getattr(noise, 'log_prob', None)),
         'noise needs sample(key, shape) and log_prob(x) methods (see nnce_jax.noise)')
  devices = list(devices) if devices is not None else jax.devices()
  _check(batch_size % len(devices) == 0,
         f'batch_size={batch_size} does not divide over {len(devices)} devices')

  root = jax.random.PRNGKey(seed)
  split_key, init_key, train_key, eval_key = jax.random.split(root, 4)
  sample_data, x_eval = _split_data(data, held_out, num_eval, split_key)
  dim = x_eval.shape[-1]
  probe = noise.sample(eval_key, (2,))
  _check(probe.shape == (2, dim), f'noise samples have shape {probe.shape[1:]}, the data ({dim},)')

  if not isinstance(model, nn.Module):
    model = models.ratio_model(model, noise, num_stages=num_stages, hidden=hidden)
  in_step = magnitude == 'ess'  # decided inside each step, from its noise logits
  objective_fns = objectives.make_objective(
      objective, magnitude='ess' if in_step else 1.0 if automatic else magnitude, noise_ratio=noise_ratio,
      num_candidates=num_candidates, l2_penalty=l2_penalty)
  controller = None
  if automatic and not in_step:  # a copy: the controller keeps state, and a user's may be passed twice
    controller = copy.deepcopy(magnitude) if magnitude != 'auto' else schedules.AutomaticMagnitude()
  tx = optax.adam(learning_rate)
  params, loss_fn, sample_batch = estimation.ratio_estimator(
      model, objective_fns, sample_data, noise, batch_size=batch_size, dim=dim, init_key=init_key)
  train_step = engine.make_train_step(loss_fn, tx, ema_decay, sample_batch=sample_batch)
  y_eval = noise.sample(jax.random.fold_in(eval_key, 1), (x_eval.shape[0],))
  log_ratio = jax.jit(lambda params, x: objectives.telescoped_log_ratio(model.apply(params, x)))

  spd = max(1, min(steps_per_dispatch, num_steps))
  if eval_every is None:  # a fixed cadence: a longer run repeats a shorter one's evaluations
    eval_every = max(spd, min(100, num_steps) // spd * spd)
  config = ConfigDict(dict(num_steps=num_steps, steps_per_dispatch=spd, sync_every=max(spd, 20),
                           log_every=0, eval_every=eval_every, checkpoint_every=0, on_nonfinite='stop'))
  _check(num_steps % spd == 0 and eval_every % spd == 0,
         f'num_steps and eval_every must be multiples of steps_per_dispatch={spd}')
  eval_fn, on_eval, batches_for, chosen = _held_out(
      model, objective_fns, controller, x_eval, jax.random.fold_in(eval_key, 4), noise, log_ratio,
      select=select, patience=patience, batch_shape=(spd, batch_size), in_step=in_step,
      fixed_log_magnitude=float(np.log(magnitude)) if objective == 'noisier_nce' and not automatic else 0.0)
  parallel = DataParallel('shard_map', devices)
  state = engine.create_train_state(params, tx, train_key)
  manager = checkpoint.make_manager(os.path.abspath(checkpoint_dir)) if checkpoint_dir else None
  try:
    if manager is not None and (restored := checkpoint.restore_latest(
        manager, parallel.abstract_state(state))) is not None:
      state = restored
    state, history = engine.train(state, train_step, parallel=parallel, config=config, eval_fn=eval_fn,
                                  on_eval=on_eval, batches_for=batches_for, manager=manager)
  finally:
    if manager is not None:
      manager.close()

  params, selected_step = state.ema_params, int(state.step)
  if select and chosen is not None and chosen.best_params is not None:
    params, selected_step = jax.device_put(chosen.best_params), chosen.best_step
  s_data, s_noise = log_ratio(params, x_eval), log_ratio(params, y_eval)
  if mcmc_steps:
    log_density = lambda x: log_ratio(params, x) + noise.log_prob(x)  # noqa: E731
    x_model = _model_samples(jax.random.fold_in(eval_key, 3), log_density, x_eval, mcmc_steps)
    s_model = log_ratio(params, x_model)
  else:
    s_model = s_data
  log_normalizer = normalizers.estimate_all(s_model, s_noise)
  if ais_temperatures:
    log_normalizer.update(_annealed(jax.random.fold_in(eval_key, 2), lambda x: log_ratio(params, x), noise,
                                    x_eval, ais_temperatures, ais_chains))
  _warn_on_disagreement(log_normalizer)
  shift = float(log_normalizer['optimal_bridge'].log_z) if objective == 'ranking_nce' else 0.0
  s = np.asarray(s_data, np.float64) - shift
  return RatioFit(model=model, params=params, kl=float(np.mean(s)),
                  kl_std_error=float(np.std(s, ddof=1) / np.sqrt(s.size)),
                  log_normalizer=log_normalizer,
                  history=[{'step': r['step'], 'kl': r['eval_kl'], 'held_out_loss': r['eval_loss'],
                            'selection_score': r['eval_selection_score'],
                            'magnitude': float(np.exp(r['eval_log_magnitude']))} for r in history],
                  selected_step=selected_step, _log_ratio=log_ratio)


def _held_out(model, objective_fns, controller, x_eval, key, noise, log_ratio, *, select: bool, patience: int,
              batch_shape, in_step: bool, fixed_log_magnitude: float):
  """The engine's hooks for held-out scoring: ``(eval_fn, on_eval, batches_for, selection)``.

  ``eval_fn`` scores the params on the held-out data against a fixed noise sample (``nu``
  points each, as in training): ``kl``, ``loss`` (the objective at the ``log M`` in force)
  and ``selection_score`` (that loss; with an automatic ``M`` NCE's, which does not change
  with ``M``). ``on_eval`` feeds the controller and the selection; ``batches_for`` hands the
  step the controller's ``log M`` as host inputs ``[steps, B]`` (``None`` without one).
  """
  y_eval = noise.sample(key, (x_eval.shape[0], objective_fns.noise_per_data))
  nce_fns = objectives.make_objective('nce', noise_ratio=objective_fns.noise_per_data)
  log_m = (lambda: controller.log_magnitude) if controller else (lambda: fixed_log_magnitude)  # noqa: E731

  @jax.jit
  def scores(params, log_magnitude):
    def score(fns, lm=None):
      return estimation.ratio_loss(model.apply, params, x_eval, y_eval, fns, 0, lm)
    out = {'kl': jnp.mean(log_ratio(params, x_eval)), 'log_magnitude': log_magnitude}
    if in_step:  # the M the rule picks on the held-out noise
      loss, diagnostics = score(objective_fns)
      return {**out, 'loss': loss, 'log_magnitude': diagnostics['log_magnitude'],
              'selection_score': score(nce_fns)[0]}
    if controller is None:
      loss = score(objective_fns)[0]
      return {**out, 'loss': loss, 'selection_score': loss}
    return {**out, 'loss': score(objective_fns, log_magnitude)[0], 'selection_score': score(nce_fns)[0]}

  def eval_fn(params):
    return scores(params, jnp.float32(log_m()))

  chosen = selection.HeldOutSelection('eval_selection_score', patience) if select or patience else None

  def on_eval(step, record, params):
    if controller is not None:
      controller.update(loss=record['eval_loss'], kl=record['eval_kl'])
    stop = chosen.update(step, record, params) if chosen is not None else False
    return stop and (controller is None or controller.at_final)

  placed = {}

  def batches_for(step):
    del step
    if placed.get('log_magnitude') != controller.log_magnitude:  # a new array only when M changes
      placed.update(log_magnitude=controller.log_magnitude,
                    inputs=np.full(batch_shape, controller.log_magnitude, np.float32))
    return placed['inputs']

  return eval_fn, on_eval, batches_for if controller else None, chosen


def _model_samples(key, log_density, x_eval, num_steps: int, thin: int = 10) -> jax.Array:
  """Samples of ``exp(s) q0`` by MALA from the held-out samples (at most 1,000 chains): every
  ``thin``-th state after ``num_steps`` of warm-up, ``[chains * num_steps / thin, d]``."""
  init = x_eval[:1000]
  trace, _ = jax.jit(lambda k: sampling.langevin(k, log_density, init, step_size=0.1, num_steps=num_steps,
                                                 num_warmup=num_steps))(key)
  return trace[thin - 1::thin].reshape(-1, init.shape[-1])


def _annealed(key, log_ratio, noise, x_eval, num_temperatures: int, num_chains: int) -> dict:
  """``{'ais', 'reverse_ais'}`` log Z estimates (reverse chains start at held-out samples)."""
  forward_key, reverse_key, start_key = jax.random.split(key, 3)
  starts = x_eval[jax.random.choice(start_key, x_eval.shape[0], (min(num_chains, x_eval.shape[0]),),
                                    replace=False)]
  forward = jax.jit(lambda k: ais.annealed_importance_sampling(
      k, log_ratio, noise, num_chains=num_chains, num_temperatures=num_temperatures))(forward_key)
  reverse = jax.jit(lambda k: ais.reverse_annealed_importance_sampling(
      k, log_ratio, noise, starts, num_temperatures=num_temperatures))(reverse_key)
  return {name: normalizers.LogNormalizer(result.log_z, result.std_error)
          for name, result in (('ais', forward), ('reverse_ais', reverse))}


# Estimators a user reads log Z from; reverse IS and the reverse run are bounds or heavy-tailed.
_COMPARED = ('importance_sampling', 'optimal_bridge', 'ais')


def _warn_on_disagreement(log_normalizer: dict) -> None:
  """Warns when two of the :data:`_COMPARED` estimates are more than 3 joint standard errors
  apart (e.g. a bridge from held-out data against importance sampling from the noise)."""
  present = [name for name in _COMPARED if name in log_normalizer]
  for a, b in itertools.combinations(present, 2):
    x, y = log_normalizer[a], log_normalizer[b]
    gap = abs(float(x.log_z) - float(y.log_z))
    joint = float(np.hypot(x.std_error, y.std_error))
    if gap > 3 * joint + 1e-3:
      warnings.warn(f'log Z estimates disagree: {a} {float(x.log_z):.3f} against {b} {float(y.log_z):.3f} '
                    f'({gap:.3f} nats apart, joint standard error {joint:.3f}); at least one of them has not '
                    'converged: pass ais_temperatures (annealed importance sampling) for a trusted value',
                    RuntimeWarning, stacklevel=3)


def _split_data(data, held_out, num_eval: int, key):
  """``(sample_data(key, n) -> [n, d], held-out samples [m, d])`` from an array or a sampler."""
  if callable(data):
    x_eval = jnp.asarray(data(key, num_eval))
    _check(x_eval.ndim == 2, f'data(key, n) must return [n, d], got shape {x_eval.shape}')
    return data, x_eval
  x = jnp.asarray(data, jnp.float32)
  _check(x.ndim == 2 and x.shape[0] >= 2, f'data must be [n, d] samples with n >= 2, got shape {x.shape}')
  _check(bool(jnp.all(jnp.isfinite(x))), 'data holds NaN or infinite values')
  n = x.shape[0]
  num_held_out = held_out if isinstance(held_out, int) else round(held_out * n)  # a count or a fraction
  _check(0 < num_held_out < n, f'held_out={held_out!r} leaves no training or no held-out samples of {n}')
  x = x[jax.random.permutation(key, n)]
  x_train, x_eval = x[num_held_out:], x[:num_held_out]

  def sample_data(key, size):
    return x_train[jax.random.randint(key, (size,), 0, x_train.shape[0])]

  return sample_data, x_eval
