"""Each claim's verdict (reproduced / refuted / inconclusive) follows the numbers it is given."""

import numpy as np
import pytest

from experiments.report import claims
from experiments.report.benchmarks import CHASM_STUDIES, GAUSSIAN_M, MI_STUDIES, TOY2D
from experiments.report.render import claims_table
from experiments.report.statistics import interval, paired
from experiments.report.verdicts import INCONCLUSIVE, REFUTED, REPRODUCED
from experiments.sweep import Run, SweepResult

SEEDS = 5
CHASM, MI320 = CHASM_STUDIES[0], MI_STUDIES[-1]  # 6.41 nats; d = 320
NOISE = np.array([0.3, -0.1, 0.2, -0.3, -0.1])  # a fixed wobble across seeds, mean 0


def _summary(seed, steps=None, last=8000, **final):
  final.setdefault('kl_error', 0.05)
  return {'seed': seed, 'final': final, 'steps_to_tolerance': steps, 'steps': last,
          'truth': {'kl': 6.4, 'mi': 80.0},
          'references': {'cramer_rao_param_error': 0.01, 'mle_param_error': 0.01}}


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
  judge = lambda sweep: claims._u_shape(None, {GAUSSIAN_M: sweep})[0].verdict  # noqa: E731
  assert judge(_gaussian({1.0: 0.05, 10.0: 0.02, 100.0: 0.03}, 0.001)) == REPRODUCED
  # The best M at the end of the grid, clearly better than its neighbour: monotone, not U.
  assert judge(_gaussian({1.0: 0.05, 10.0: 0.04, 100.0: 0.02}, 0.001)) == REFUTED
  # An interior minimum that seed noise could have placed there.
  assert judge(_gaussian({1.0: 0.05, 10.0: 0.045, 100.0: 0.049}, 0.05)) == INCONCLUSIVE


def _gaussian_seeds(errors: dict, n: int) -> SweepResult:
  """``errors``: ``{M: [error of each seed]}`` at sample size ``n``."""
  return _sweep([({'objective.magnitude': m, 'data.num_train': n, 'objective.name': 'noisier_nce'},
                  [{'param_error': e} for e in seeds]) for m, seeds in errors.items()])


def test_the_bound_on_m_star_is_judged_on_seeds_that_did_not_pick_it():
  # n = 1000: the bound 10 sqrt(n) = 316 leaves M = 1000 and 10^4 beyond it.
  bound = lambda errors: claims._optimum_bound(None, {GAUSSIAN_M: _gaussian_seeds(errors, 1000)})[0]  # noqa: E731
  wobble = [0.001, -0.002, 0.0, 0.002, -0.001, 0.001]
  level = lambda e: [e + w for w in wobble]  # noqa: E731
  within = bound({1.0: level(0.05), 100.0: level(0.02), 1000.0: level(0.03), 10000.0: level(0.04)})
  assert within.verdict == REPRODUCED
  beyond = bound({1.0: level(0.05), 100.0: level(0.03), 1000.0: level(0.02), 10000.0: level(0.04)})
  assert beyond.verdict == REFUTED  # M = 1000 beats the best M within the bound on the judging seeds
  # The selection seeds (0-2) prefer M = 1000, the judging seeds (3-5) do not: a pick, not a finding.
  lucky = bound({1.0: level(0.05), 100.0: level(0.02),
                 1000.0: [0.01, 0.01, 0.01, 0.03, 0.02, 0.025], 10000.0: level(0.04)})
  assert lucky.verdict == INCONCLUSIVE and 'selection seeds' in lucky.reason


def test_growth_of_m_star_is_a_paired_test_over_seeds_not_went_up():
  def errors(best_by_seed, n):
    grid = [1.0, 10.0, 100.0, 1000.0]
    return _gaussian_seeds({m: [0.01 if m == b else 0.05 for b in best_by_seed] for m in grid}, n)
  grow = lambda small, large: claims._optimum_growth(  # noqa: E731
      None, {GAUSSIAN_M: SweepResult(errors(small, 1000).runs + errors(large, 10000).runs)})[0]
  # The judging seeds (the second half) move up by one or two decades: a paired interval above 0.
  up = grow([10.0] * 8, [10.0] * 4 + [100.0, 1000.0, 100.0, 1000.0])
  assert up.verdict == REPRODUCED and up.kind == 'hypothesis'
  assert up.numbers['best_per_seed'][10000] == [100.0, 1000.0, 100.0, 1000.0]
  # One judging seed up, the others still: "went up" on average, not a finding.
  assert grow([10.0] * 8, [10.0] * 4 + [1000.0, 10.0, 10.0, 10.0]).verdict == INCONCLUSIVE
  assert grow([100.0] * 8, [100.0] * 4 + [10.0, 1.0, 10.0, 1.0]).verdict == REFUTED


def _chasm(nce_steps, n2ce_steps, nwj_steps=None, nwj_error=0.05):
  name = lambda s, **extra: [{'steps': v, 'kl_error': extra.get('kl_error', 0.05)} for v in s]  # noqa: E731
  return {CHASM.baselines: _sweep([({'objective.name': 'nce'}, name(nce_steps)),
                                         ({'objective.name': 'nwj'}, name(nwj_steps or nce_steps,
                                                                          kl_error=nwj_error))]),
          CHASM.n2ce: _sweep([({'objective.magnitude': m, 'objective.name': 'noisier_nce'}, name(s))
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


def test_a_schedule_is_judged_only_where_the_decay_has_decayed():
  def results(kind, decay_steps, constant_steps):
    found = _chasm([8000] * SEEDS, {100.0: constant_steps})
    found[CHASM.schedules] = _sweep([({'objective.magnitude_schedule': kind, 'objective.name': 'noisier_nce'},
                                      [{'steps': v} for v in decay_steps])])
    return claims._schedules(None, found)[0]
  # Both arrive near step 1,700 of 8,000, where the cosine decay still has M near 9,000 of 10^4.
  early = results('cosine', [1600, 1700, 1650, 1720, 1680], [1900, 2000, 1950, 2100, 1990])
  assert early.verdict == INCONCLUSIVE and 'had not yet differed' in early.reason
  # At step 6,000 the exponential decay is at M = 56: the schedules differ, and the decay is faster.
  late = results('exponential', [5900, 6000, 6100, 6050, 5950], [7400, 7500, 7450, 7600, 7520])
  assert late.verdict == REPRODUCED and late.numbers['magnitude_at_arrival'] < 1000


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
  base = {MI320.baselines: _sweep([({'objective.name': 'nce'}, [{'mi': 40.0 + i} for i in range(SEEDS)])])}
  within, beyond = _confirmation([0.01, 0.02, 0.01, 0.015]), _confirmation([0.2, 0.25, 0.3, 0.22])
  goal = lambda confirmation: claims._mutual_information_goal(  # noqa: E731
      None, {**base, MI320: confirmation})[0].verdict
  assert goal(within) == REPRODUCED
  assert goal(beyond) == REFUTED
  assert claims._single_ratio_fails(None, base)[0].verdict == REPRODUCED  # NCE at half the MI


def test_best_mutual_information_cell_is_picked_on_seed_zero():
  sweep = _sweep([({'objective.name': 'nce'}, [{'mi': 70.0}, {'mi': 80.0}]),
                  ({'objective.name': 'nwj'}, [{'mi': 75.0}, {'mi': 10.0}])])
  found = claims.best_mutual_information_cell({MI320.baselines: sweep}, [MI320.baselines])
  assert found == (MI320.baselines, {'objective.name': 'nwj'})


def test_claims_render_from_the_verdicts_and_skip_unrun_sweeps():
  assert claims.judge(None, {}) == []
  with_error = lambda seeds: [{**v, 'test_nll_standard_error': 0.01} for v in seeds]  # noqa: E731
  toy = lambda gap: _sweep([  # noqa: E731
      ({'objective.name': 'nce'}, with_error(_seeds('test_nll', 2.84, 0.01))),
      ({'objective.name': 'noisier_nce'}, with_error(_seeds('test_nll', 2.84 + gap, 0.002, roll=2)))])
  within = claims._toy2d(None, {TOY2D: toy(0.004)})[0]
  assert within.verdict == REPRODUCED and 'N²CE is worse by 0.0040 nat' in within.evidence
  assert 'within the margin of 0.0100 nat' in within.evidence
  assert claims._toy2d(None, {TOY2D: toy(0.05)})[0].verdict == REFUTED
  table = claims_table([within])
  assert table.startswith("### The paper's claims\n\n1 reproduced, 0 refuted, 0 inconclusive.")
  assert '(e) N²CE fits toy 2-D densities' in table
  # No recorded standard error, no margin: no verdict.
  bare = _sweep([({'objective.name': n}, _seeds('test_nll', 2.84, 0.01)) for n in ('nce', 'noisier_nce')])
  assert 'margin is unknown' in claims._toy2d(None, {TOY2D: bare})[0].reason
