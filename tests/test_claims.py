"""Each claim's verdict follows the numbers it is given."""

from experiments.claims import claims_table
from experiments.sweep_runner import SweepResult


def _summary(seed, **final):
  steps = final.pop('steps', None)
  final.setdefault('kl_error', 0.05)
  return {'seed': seed, 'final': final, 'steps_to_tolerance': steps,
          'truth': {'cramer_rao_param_error': 0.01, 'mle_param_error': 0.01, 'kl': 6.4, 'mi': 80.0}}


def _sweep(cells):
  """``cells``: ``{((field, value), ...): [final-metric dicts, one per seed]}``."""
  return SweepResult('', {key: [_summary(i, **dict(f)) for i, f in enumerate(finals)]
                          for key, finals in cells.items()})


def _magnitude_sweep(errors):
  return _sweep({(('objective.magnitude', m), ('data.num_train', 1000)): [{'param_error': e}] * 2
                 for m, e in errors.items()})


def _row(table, start):
  return next(line for line in table.splitlines() if line.startswith(f'| {start}'))


def test_u_shape_needs_an_interior_minimum_below_both_ends():
  u = claims_table(None, {'gaussian_m': _magnitude_sweep({1: 0.05, 10: 0.02, 100: 0.03})})
  assert '| reproduced |' in _row(u, '(b) n = 1000') and 'M* = 10,' in u
  falling = claims_table(None, {'gaussian_m': _magnitude_sweep({1: 0.05, 10: 0.03, 100: 0.02})})
  assert 'not reproduced' in _row(falling, '(b) n = 1000')


def test_chasm_fraction_uses_the_best_magnitude_and_never_counts_as_infinite():
  results = {
      'chasm6.41_baselines': _sweep({(('objective.name', 'nce'),): [{'steps': 4000}, {'steps': 6000}],
                                     (('objective.name', 'nwj'),): [{'steps': None, 'kl': 5.0}] * 2}),
      'chasm6.41_n2ce': _sweep({(('objective.magnitude', 10.0),): [{'steps': 3000}] * 2,
                                (('objective.magnitude', 100.0),): [{'steps': 2000}, {'steps': None}],
                                (('objective.magnitude', 1000.0),): [{'steps': 2500}] * 2}),
      'chasm6.41_schedules': _sweep({(('objective.magnitude_schedule', 'cosine'),):
                                     [{'steps': 2400, 'kl_error': 0.01}] * 2}),
  }
  table = claims_table(None, results)
  row = _row(table, '(6.41 nats, c) N²CE stays')
  assert 'NCE 5000 steps' in row and '100: never' in row and 'best M = 1000' in row
  assert f'**{2500 / 5000:.2f}** of NCE' in row and '| reproduced |' in row
  assert '| yes |' in _row(table, '(6.41 nats, c) A decaying M')  # 2400 < 2500
  assert '| reproduced |' in _row(table, '(6.41 nats, c) NWJ')  # never within tolerance


def test_mutual_information_goal_is_five_percent_at_every_dimension():
  def mi(estimates):
    return _sweep({(('objective.name', n), ('objective.num_stages', 1)): [{'mi': e}]
                   for n, e in estimates.items()})
  close = claims_table(None, {'mi40': mi({'nce': 50.0, 'nwj': 79.0}), 'mi80': mi({'nce': 30.0, 'nwj': 81.0})})
  assert '| reproduced |' in _row(close, '(d) The best') and 'd = 80: 1.2%' in close
  assert '| reproduced |' in _row(close, '(d) Single-ratio NCE fails at d = 80')
  far = claims_table(None, {'mi40': mi({'nce': 50.0, 'nwj': 79.0}), 'mi80': mi({'nce': 30.0, 'nwj': 70.0})})
  assert 'not reproduced' in _row(far, '(d) The best')
  assert 'd = 80: 12.5%' in far  # nwj's 70 against 80: above the goal


def test_steps_of_runs_that_only_partly_reach_tolerance_say_so():
  from experiments.writers import mean_std
  assert mean_std([1000, 2000]) == '1500 ± 5e+02'
  assert mean_std([1000, None, None]) == '1000 (1 of 3; the rest never)'
  assert mean_std([None, None]) == 'never'


def test_magnitude_rule_compares_m_equal_e_to_the_mi_with_m_100():
  def n2ce(estimates):  # truth MI = 80 (see _summary)
    return _sweep({(('objective.magnitude', m), ('objective.name', 'noisier_nce')): [{'mi': e}]
                   for m, e in estimates.items()})
  better = claims_table(None, {'mi320_n2ce': n2ce({100.0: 36.0, 5.54e34: 79.0, 1e30: 81.0})})
  row = _row(better, '(d) N²CE needs M')
  assert '| reproduced |' in row and 'M = 100: 55.0%' in row and 'M = 5.54e+34: 1.2%' in row
  worse = claims_table(None, {'mi320_n2ce': n2ce({100.0: 79.0, 5.54e34: 60.0})})
  assert 'not reproduced' in _row(worse, '(d) N²CE needs M')
  assert '(d) N²CE needs M' not in claims_table(None, {'mi320_n2ce': n2ce({100.0: 79.0, 1e30: 60.0})})


def test_first_step_within_half_a_nat_is_read_from_each_runs_metrics(tmp_path):
  import json

  def run(name, errors):  # one eval every 1000 steps
    (tmp_path / name).mkdir()
    (tmp_path / name / 'metrics.jsonl').write_text(''.join(
        json.dumps({'step': 1000 * (i + 1), 'eval_kl_error': e}) + '\n' for i, e in enumerate(errors)))
    return {**_summary(0, steps=None, kl=13.0), 'run_dir': str(tmp_path / name)}

  results = {
      'chasm13.3_baselines': SweepResult('', {(('objective.name', 'nce'),): [run('nce', [3, 2, 1, 0.4, 0.3])],
                                              (('objective.name', 'nwj'),): [run('nwj', [1, 0.05])]}),
      'chasm13.3_n2ce': SweepResult('', {(('objective.magnitude', 10.0),): [run('m10', [2, 0.45, 0.6, 0.2])],
                                         (('objective.magnitude', 1e4),): [run('m1e4', [0.3, 0.2])]}),
  }
  row = _row(claims_table(None, results), '(13.3 nats, c) N²CE stays')
  assert 'First step within 0.5 nat: NCE 4000' in row and '10: 2000, 10000: 1000' in row
  assert "M = 10000 takes **0.25** of NCE's" in row
