"""Each claim's verdict (reproduced / refuted / inconclusive) follows the numbers it is given."""

import numpy as np
import pytest

from experiments.report import claims
from experiments.report.render import claims_table
from experiments.report.statistics import interval, paired
from experiments.report.verdicts import INCONCLUSIVE, REFUTED, REPRODUCED
from experiments.sweep import Run, SweepResult

SEEDS = 5
NOISE = np.array([0.3, -0.1, 0.2, -0.3, -0.1])  # a fixed wobble across seeds, mean 0


def _summary(seed, steps=None, last=8000, **final):
  final.setdefault('kl_error', 0.05)
  return {'seed': seed, 'final': final, 'steps_to_tolerance': steps, 'steps': last,
          'truth': {'cramer_rao_param_error': 0.01, 'mle_param_error': 0.01, 'kl': 6.4, 'mi': 80.0}}


def _sweep(cells: list[tuple[dict, list[dict]]]) -> SweepResult:
  """``cells``: ``[(cell, [summary fields of each seed])]``."""
  return SweepResult([Run(cell, seed, '', _summary(seed, **fields))
                      for cell, seeds in cells for seed, fields in enumerate(seeds)])


def _seeds(metric, mean, spread=0.0, roll=0):
  """Seed values ``mean + spread * wobble``; cells with another ``roll`` wobble out of step."""
  return [{metric: mean + spread * w} for w in np.roll(NOISE, roll)]


def _verdict(verdicts, start):
  return next(v for v in verdicts if v.claim.startswith(start))


def test_paired_interval_is_the_t_interval_of_the_differences():
  a, b = np.array([1.0, 2.0, 3.0, 4.0]), np.array([0.5, 1.0, 2.5, 3.0])
  found = paired(a, b)
  d = a - b
  half = 3.182446 * d.std(ddof=1) / 2  # t(0.975, 3) * s / sqrt(4)
  assert found.mean == pytest.approx(d.mean())
  assert (found.low, found.high) == pytest.approx((d.mean() - half, d.mean() + half), rel=1e-5)
  assert found.sign == 1
  assert interval([3.0]).sign == 0 and 'no interval' in str(interval([3.0]))
  with pytest.raises(ValueError, match='same seeds'):
    paired([1.0, 2.0], [1.0])


def test_seeds_that_all_agree_are_judged_by_the_sign_test_not_a_zero_width_interval():
  five, six = interval([4800.0] * 5), interval([-4800.0] * 6)
  assert str(five) == '4800: all 5 seeds agree (sign test p = 0.0625)'
  assert five.sign == 0  # 2 / 2^5 > 0.05: five seeds can never decide at 95%
  assert six.sign == -1 and six.sign_test_p == pytest.approx(0.03125)
  tied = paired([2000.0] * 5, [2000.0] * 5)
  assert tied.sign == 0 and str(tied) == '0: all 5 seeds give 0'
  assert not interval([1.0, 1.0, 2.0]).agree


def _gaussian(errors: dict, spread: float, n=1000):
  return _sweep([({'objective.magnitude': m, 'data.num_train': n, 'objective.name': 'noisier_nce'},
                  _seeds('param_error', e, spread, roll=i)) for i, (m, e) in enumerate(errors.items())])


def test_u_shape_is_reproduced_refuted_or_inconclusive_by_the_seeds():
  judge = lambda sweep: claims._u_shape(None, {'gaussian_m': sweep})[0].verdict  # noqa: E731
  assert judge(_gaussian({1.0: 0.05, 10.0: 0.02, 100.0: 0.03}, 0.001)) == REPRODUCED
  # The best M at the end of the grid, clearly better than its neighbour: monotone, not U.
  assert judge(_gaussian({1.0: 0.05, 10.0: 0.04, 100.0: 0.02}, 0.001)) == REFUTED
  # An interior minimum that seed noise could have placed there.
  assert judge(_gaussian({1.0: 0.05, 10.0: 0.045, 100.0: 0.049}, 0.05)) == INCONCLUSIVE


def test_optimum_scaling_says_when_m_star_falls_with_n():
  small = _gaussian({1.0: 0.05, 10.0: 0.04, 100.0: 0.02, 1000.0: 0.03}, 0.001, n=1000)
  falls = _gaussian({1.0: 0.05, 10.0: 0.01, 100.0: 0.02, 1000.0: 0.03}, 0.001, n=10000)
  same = _gaussian({1.0: 0.05, 10.0: 0.04, 100.0: 0.02, 1000.0: 0.03}, 0.001, n=10000)
  judge = lambda large: claims._optimum_scaling(  # noqa: E731
      None, {'gaussian_m': SweepResult(small.runs + large.runs)})[0]
  assert judge(falls).verdict == REFUTED
  assert judge(same).verdict == INCONCLUSIVE
  assert judge(same).numbers['best_magnitude'] == {1000: 100.0, 10000: 100.0}


def _chasm(nce_steps, n2ce_steps, nwj_steps=None, nwj_error=0.05):
  name = lambda s, **extra: [{'steps': v, 'kl_error': extra.get('kl_error', 0.05)} for v in s]  # noqa: E731
  return {'chasm6.41_baselines': _sweep([({'objective.name': 'nce'}, name(nce_steps)),
                                         ({'objective.name': 'nwj'}, name(nwj_steps or nce_steps,
                                                                          kl_error=nwj_error))]),
          'chasm6.41_n2ce': _sweep([({'objective.magnitude': m, 'objective.name': 'noisier_nce'}, name(s))
                                    for m, s in n2ce_steps.items()])}


def test_chasm_speed_is_inconclusive_when_nobody_gets_there():
  never = [None] * SEEDS
  verdict = claims._chasm_speed(None, _chasm(never, {10.0: never, 100.0: never}))[0]
  assert verdict.verdict == INCONCLUSIVE
  assert 'NCE never' in verdict.evidence


def test_chasm_speed_pairs_seeds_and_corrects_for_the_best_m():
  nce = [5000, 5200, 4900, 5100, 5300]
  faster = claims._chasm_speed(None, _chasm(nce, {10.0: [s - 2000 + 40 * (i % 3) for i, s in enumerate(nce)],
                                                 100.0: nce}))[0]
  assert faster.verdict == REPRODUCED
  assert faster.numbers['nce_minus_n2ce'][10.0]['level'] == pytest.approx(0.975)  # two Ms: Bonferroni
  slower = claims._chasm_speed(None, _chasm(nce, {10.0: [s + 1500 + 30 * (i % 2) for i, s in enumerate(nce)],
                                                 100.0: [s + 900 + 20 * (i % 3) for i, s in enumerate(nce)]}))
  assert slower[0].verdict == REFUTED
  noisy = claims._chasm_speed(None, _chasm(nce, {10.0: [3000, 7900, 2500, 7000, 6100]}))
  assert noisy[0].verdict == INCONCLUSIVE


def test_nwj_within_seed_noise_of_nce_is_inconclusive():
  never = [None] * SEEDS
  tied = claims._nwj_chasm(None, _chasm(never, {}, never, nwj_error=0.05))[0]
  assert tied.verdict == INCONCLUSIVE
  faster = claims._nwj_chasm(None, _chasm([5000, 5200, 4900, 5100, 5300], {},
                                          [1600, 1700, 1650, 1500, 1800]))
  assert faster[0].verdict == REFUTED


def _confirmation(errors):
  return _sweep([({'objective.num_stages': 5, 'objective.name': 'noisier_nce'},
                  [{'mi': 80.0 * (1 + e)} for e in errors])])


def test_mutual_information_goal_uses_the_confirmation_seeds():
  base = {'mi320': _sweep([({'objective.name': 'nce'}, [{'mi': 40.0 + i} for i in range(SEEDS)])])}
  within, beyond = _confirmation([0.01, 0.02, 0.01, 0.015]), _confirmation([0.2, 0.25, 0.3, 0.22])
  goal = lambda confirmation: claims._mutual_information_goal(  # noqa: E731
      None, {**base, 'mi320_confirmation': confirmation})[0].verdict
  assert goal(within) == REPRODUCED
  assert goal(beyond) == REFUTED
  assert claims._single_ratio_fails(None, base)[0].verdict == REPRODUCED  # NCE at half the MI


def test_best_mutual_information_cell_is_picked_on_seed_zero():
  from experiments.report.benchmarks import Benchmark
  sweep = _sweep([({'objective.name': 'nce'}, [{'mi': 70.0}, {'mi': 80.0}]),
                  ({'objective.name': 'nwj'}, [{'mi': 75.0}, {'mi': 10.0}])])
  found = claims.best_mutual_information_cell({'mi320': sweep}, [Benchmark('d', 'mi320', 'mutual_information',
                                                                           {}, overrides={'data.dim': 320})])
  assert found == ('mi320', {'objective.name': 'nwj'})


def test_claims_render_from_the_verdicts_and_skip_unrun_sweeps():
  assert claims.judge(None, {}) == []
  toy = _sweep([({'objective.name': 'nce'}, _seeds('test_nll', 2.84, 0.01)),
                ({'objective.name': 'noisier_nce'}, _seeds('test_nll', 2.845, 0.03, roll=2))])
  verdicts = claims._toy2d(None, {'toy2d': toy})
  table = claims_table(verdicts)
  assert verdicts[0].verdict in (REPRODUCED, INCONCLUSIVE)
  assert table.startswith(f'{int(verdicts[0].verdict == REPRODUCED)} reproduced')
  assert '(e) N²CE fits toy 2-D densities' in table
