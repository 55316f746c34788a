"""After training: log Z of the learned EBM by every estimator, and the test log-likelihood.

The learned model is ``p(x) = exp(s(x)) q0(x) / Z``; NCE-type objectives make ``Z`` close
to 1 but do not enforce it. Every estimator of :mod:`nnce_jax.normalizers` is run on the
same samples: ``x_i`` from the model by MALA (chains started at held-out data, step sizes
adapted during warm-up, thinned), ``y_j ~ q0``. Each gives ``log Z`` with its standard
error and the test log-likelihood ``mean_test [s(x) + log q0(x)] - log Z`` it implies,
beside the truth (closed form or quadrature) where the task has one.
"""

import logging

import jax
import jax.numpy as jnp
import numpy as np

from experiments.core.tables import markdown_table, sample_std
from nnce_jax import normalizers, sampling


def estimate_likelihood(config, log_ratio, base, x_test, truth_log_z=None):
  """Returns ``(report, model_samples)``; ``log_ratio(x [n, d]) -> [n]`` is the learned ``s``.

  ``config.likelihood``: ``num_samples`` per side (0: skip, returning an empty report),
  ``num_chains``, ``num_warmup``, ``thin``.
  """
  c = config.likelihood
  if not c.num_samples:
    return {}, np.zeros((0, x_test.shape[-1]))
  key = jax.random.fold_in(jax.random.PRNGKey(config.seed), 3)
  chain_key, proposal_key = jax.random.split(key)
  steps = -(-c.num_samples // c.num_chains) * c.thin
  log_density = lambda x: log_ratio(x) + base.log_prob(x)  # noqa: E731
  init = x_test[:c.num_chains]
  step_size = 0.5 * jnp.mean(jnp.var(x_test, 0))  # proposal std ~ the data's; warm-up adapts it

  @jax.jit
  def run(chain_key, proposal_key):
    trace, info = sampling.langevin(chain_key, log_density, init, step_size=step_size,
                                    num_steps=steps, num_warmup=c.num_warmup)
    model_samples = trace[::c.thin].reshape(-1, x_test.shape[-1])[:c.num_samples]
    y = base.sample(proposal_key, (c.num_samples,))
    estimates = normalizers.estimate_all(log_ratio(model_samples), log_ratio(y))
    return model_samples, info, estimates, jnp.mean(log_density(x_test))

  model_samples, info, estimates, unnormalised_ll = run(chain_key, proposal_key)
  report = {'sampler': {k: float(v) for k, v in info.items()}, 'truth_log_z': truth_log_z,
            'estimators': {}}
  for name, e in estimates.items():
    report['estimators'][name] = {
        'log_z': float(e.log_z), 'std_error': float(e.std_error),
        'iterations': int(e.iterations), 'converged': bool(e.converged),
        'test_log_likelihood': float(unnormalised_ll - e.log_z)}
  if truth_log_z is not None:
    report['test_log_likelihood_truth'] = float(unnormalised_ll) - truth_log_z
  logging.info('log Z (truth %s): %s', 'n/a' if truth_log_z is None else f'{truth_log_z:.4f}', ', '.join(
      f'{n} {e["log_z"]:.4f} ± {e["std_error"]:.2g}' for n, e in report['estimators'].items()))
  return report, np.asarray(model_samples)


ABBREVIATIONS = {'importance_sampling': 'IS', 'reverse_importance_sampling': 'reverse IS',
                 'geometric_bridge': 'geometric bridge', 'optimal_bridge': 'optimal bridge'}
"""The table's columns; RLR, pooled MIS and NCE equal the optimal bridge (normalizers.py)."""


def likelihood_table(reports: dict[str, list[dict]], label: str = 'objective') -> str:
  """Markdown: per objective, each estimator's ``log Z - truth`` (or ``log Z``), mean ± std
  over seeds, and the test log-likelihood by the optimal bridge. ``reports`` maps a row
  label to the seeds' :func:`estimate_likelihood` reports; ``label`` heads the labels."""
  first = next(iter(reports.values()))[0]
  has_truth = first['truth_log_z'] is not None
  quantity = 'log Z estimate - exact log Z' if has_truth else 'log Z estimate'
  header = [label] + list(ABBREVIATIONS.values()) + ['test log-lik. (optimal bridge)']
  rows = []
  for row_label, seeds in reports.items():
    cells = []
    for name in ABBREVIATIONS:
      values = [r['estimators'][name]['log_z'] - (r['truth_log_z'] if has_truth else 0.0) for r in seeds]
      errors = [r['estimators'][name]['std_error'] for r in seeds]
      cells.append(f'{np.mean(values):+.3f} ± {sample_std(values):.2g} (se {np.mean(errors):.2g})')
    lls = [r['estimators']['optimal_bridge']['test_log_likelihood'] for r in seeds]
    rows.append([row_label] + cells + [f'{np.mean(lls):.4g} ± {sample_std(lls):.2g}'])
  return (f'{quantity}, mean ± std (ddof = 1) over seeds (se: the mean claimed standard error); '
          'RLR, pooled MIS and NCE equal the optimal bridge to 1e-5.\n\n'
          + markdown_table(header, rows) + '\n')
