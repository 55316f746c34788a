"""The paper's and the issues' claims, each judged as data from the benchmark sweeps.

A claim is a :class:`~experiments.report.verdicts.Verdict`: reproduced, refuted, or inconclusive (neither side
reaches its criterion, or the difference lies within seed noise), with the test that decides
it and the numbers it read. Comparisons pair seeds (seed ``i`` shares data, noise and
initialisation in every cell) and use a t interval of the mean difference (ddof = 1); a claim
that picks the best of several cells widens its intervals by Bonferroni. Sweeps are found by
the benchmark names of :mod:`experiments.report.benchmarks` and cells by their field values.
"""

import dataclasses
import math

import numpy as np

from experiments.core.metrics import read_metrics
from experiments.report import benchmarks
from experiments.report.statistics import bonferroni, interval, paired
from experiments.report.verdicts import INCONCLUSIVE, REFUTED, REPRODUCED, Verdict, decide
from experiments.sweep.grid import cell_label

LEVEL = 0.95


def judge(alignment: dict | None, results: dict) -> list[Verdict]:
  """Every claim whose sweeps were run, in the report's order."""
  verdicts = []
  for rule in (_gradient_tends_to_mle, _bias_order, _u_shape, _optimum_scaling, _chasm_speed, _nwj_chasm,
               _schedules, _mutual_information_goal, _magnitude_rule, _single_ratio_fails, _toy2d, _ranking):
    verdicts += rule(alignment, results)
  return verdicts


def finals(summaries, metric: str) -> np.ndarray:
  return np.array([s['final'][metric] for s in summaries], float)


def steps(summaries) -> np.ndarray:
  """Steps to stay within tolerance per seed; a run that never did counts as its last step, a
  lower bound (so a comparison with it understates the gap)."""
  return np.array([s['steps'] if s['steps_to_tolerance'] is None else s['steps_to_tolerance']
                   for s in summaries], float)


def never(summaries) -> bool:
  return all(s['steps_to_tolerance'] is None for s in summaries)


def _fmt_steps(summaries) -> str:
  reached = [s['steps_to_tolerance'] for s in summaries if s['steps_to_tolerance'] is not None]
  if not reached:
    return 'never'
  text = f'{np.mean(reached):.0f}'
  return text if len(reached) == len(summaries) else f'{text} ({len(reached)} of {len(summaries)} seeds)'


def first_within(summaries, tolerance: float) -> float:
  """Mean first eval step with ``kl_error < tolerance`` (inf unless every seed got there): a
  looser, earlier reading than steps to *stay* within, read from each run's metrics."""
  found = []
  for s in summaries:
    records = [r for r in read_metrics(s.get('run_dir', '')) if 'eval_kl_error' in r]
    found.append(next((r['step'] for r in records if r['eval_kl_error'] < tolerance), math.inf))
  return float(np.mean(found)) if found else math.inf


# (a) Gradient alignment: deterministic given the common samples, no seeds to pair.

def _gradient_tends_to_mle(alignment, results):
  if not alignment:
    return []
  rows = alignment['rows']
  cosines = [r['cosine_exact_mle'] for r in rows]
  bias = [r['bias_norm'] for r in rows]
  falling = all(b < a for a, b in zip(bias, bias[1:]))
  return [Verdict(
      '(a) The N²CE gradient tends to the MLE gradient as M grows (Prop. 3.1)',
      REPRODUCED if falling and cosines[-1] > cosines[0] else REFUTED,
      'the bias against the M → ∞ gradient falls at every step of the M grid, and the cosine with the '
      'exact MLE gradient is higher at the largest M than at the smallest (past that, the Monte-Carlo '
      'error of the common samples decides the cosine)',
      {'magnitudes': [r['magnitude'] for r in rows], 'cosine': cosines, 'bias_norm': bias},
      f'cosine {cosines[0]:.5f} at M = {rows[0]["magnitude"]:g}, {cosines[-1]:.5f} at M = '
      f'{rows[-1]["magnitude"]:g}; bias norm {bias[0]:.3g} → {bias[-1]:.3g}; Monte-Carlo floor of the '
      f'M → ∞ gradient against the exact one {alignment["mc_floor"]:.2g}')]


def _bias_order(alignment, results):
  if not alignment:
    return []
  slope, squared = alignment['bias_slope'], alignment['squared_bias_slope']
  verdict = REPRODUCED if abs(slope + 2) < 0.2 else REFUTED
  return [Verdict(
      '(a) The gradient bias decays as O(1/M²) (Prop. 3.3)', verdict,
      'the fitted slope of log ‖bias‖ against log M (M ≥ 10) lies within 0.2 of −2',
      {'bias_norm_slope': slope, 'squared_bias_slope': squared},
      f'slope of the bias norm {slope:.3f}, of the squared bias {squared:.3f}: the norm decays as 1/M and '
      'its square, the term that enters the mean squared error, as 1/M². The paper writes the bias as '
      'O(1/M²); that holds for the squared bias, not the norm')]


# (b) The Gaussian: parameter error against M.

def _by_magnitude(results, n):
  return dict(sorted(results['gaussian_m'].by('magnitude', num_train=n).items()))


def _best(by_value: dict, metric: str):
  return min(by_value, key=lambda v: float(np.mean(finals(by_value[v], metric))))


def _u_shape(alignment, results):
  if 'gaussian_m' not in results:
    return []
  verdicts = []
  for n in sorted({c['data.num_train'] for c in results['gaussian_m'].cells()}):
    by_m = _by_magnitude(results, n)
    ms, best = list(by_m), _best(by_m, 'param_error')
    ends = [ms[0], ms[-1]]
    level = bonferroni(LEVEL, 2)
    worse = {m: paired(finals(by_m[m], 'param_error'), finals(by_m[best], 'param_error'), level)
             for m in ends if m != best}
    if best in ends:
      neighbour = ms[1] if best == ms[0] else ms[-2]
      gap = paired(finals(by_m[neighbour], 'param_error'), finals(by_m[best], 'param_error'), LEVEL)
      verdict = REFUTED if gap.sign > 0 else INCONCLUSIVE
      test_note = f'best M at the end of the grid; its neighbour M = {neighbour:g} is worse by {gap}'
    else:
      verdict = REPRODUCED if all(i.sign > 0 for i in worse.values()) else INCONCLUSIVE
      test_note = '; '.join(f'M = {m:g} worse than M* by {i}' for m, i in worse.items())
    truth = by_m[ms[0]][0]['truth']
    means = {m: float(np.mean(finals(s, 'param_error'))) for m, s in by_m.items()}
    nce = ''
    if 'gaussian_nu' in results:
      by_nu = results['gaussian_nu'].by('noise_ratio', num_train=n)
      nce = '; NCE with ν real noise samples: ' + ', '.join(
          f'ν = {v}: {np.mean(finals(s, "param_error")):.3g}' for v, s in sorted(by_nu.items()))
    verdicts.append(Verdict(
        f'(b) n = {n}: the parameter error is U-shaped in M (Prop. 3.3)', verdict,
        'the best M (lowest mean error) is inside the grid and both ends are worse, paired over seeds '
        f'({level:.1%} intervals, Bonferroni over the two ends)',
        {'num_train': n, 'mean_error': means, 'best_magnitude': best,
         'cramer_rao': truth['cramer_rao_param_error'], 'mle': truth['mle_param_error']},
        'error ' + ', '.join(f'{e:.3g}' for e in means.values())
        + ' at M = ' + ', '.join(f'{m:g}' for m in ms)
        + f'; M* = {best:g}; {test_note}; Cramér–Rao bound {truth["cramer_rao_param_error"]:.3g}, the MLE of '
        f'the same samples {truth["mle_param_error"]:.3g}' + nce))
  return verdicts


def _optimum_scaling(alignment, results):
  if 'gaussian_m' not in results:
    return []
  sizes = sorted({c['data.num_train'] for c in results['gaussian_m'].cells()})
  if len(sizes) < 2:
    return []
  small, large = sizes[0], sizes[-1]
  best_small, best_large = (_best(_by_magnitude(results, n), 'param_error') for n in (small, large))
  expected = math.sqrt(large / small)
  by_large = _by_magnitude(results, large)
  if best_large > best_small:
    verdict, note = REPRODUCED, 'M* grew with n'
  elif best_large == best_small:
    verdict = INCONCLUSIVE
    note = f'M* did not move: the grid (factor 10) is coarser than √(n ratio) = {expected:.2g}'
  else:  # M* fell: is the smaller-n optimum really worse at the larger n?
    gap = paired(finals(by_large[best_small], 'param_error'), finals(by_large[best_large], 'param_error'))
    verdict = REFUTED if gap.sign > 0 else INCONCLUSIVE
    note = f'M* fell; at n = {large}, M = {best_small:g} is worse than M = {best_large:g} by {gap}'
  bound = {n: m / math.sqrt(n) for n, m in ((small, best_small), (large, best_large))}
  return [Verdict(
      '(b) The best M grows with the sample size like √n, M* ≲ C√n with C ≈ 1–10 (Prop. 3.3)', verdict,
      f'M* at n = {large} above M* at n = {small} (√ of the ratio: {expected:.2g}); a fall must be '
      'significant (paired, 95%) to refute',
      {'best_magnitude': {small: best_small, large: best_large}, 'best_over_sqrt_n': bound},
      f'M* = {best_small:g} at n = {small}, {best_large:g} at n = {large}: {note}. M*/√n = '
      + ', '.join(f'{v:.2g}' for v in bound.values()) + ' (the bound M* ≤ 10√n holds at both, which any M* ≤ '
      f'{10 * math.sqrt(small):.0f} would)')]


# (c) The density chasm.

def _chasm(results, depth, suffix):
  return results.get(f'chasm{depth}_{suffix}')


def _chasm_speed(alignment, results):
  verdicts = []
  for chasm in benchmarks.CHASMS:
    baselines, n2ce = _chasm(results, chasm.kl, 'baselines'), _chasm(results, chasm.kl, 'n2ce')
    if not (baselines and n2ce):
      continue
    nce, by_m = baselines.cell(name='nce'), dict(sorted(n2ce.by('magnitude').items()))
    level = bonferroni(LEVEL, len(by_m))
    gaps = {m: paired(steps(nce), steps(s), level) for m, s in by_m.items()}  # > 0: N²CE faster
    if never(nce) and all(never(s) for s in by_m.values()):
      verdict = INCONCLUSIVE
    elif any(g.sign > 0 for g in gaps.values()):
      verdict = REPRODUCED
    else:
      fastest = max(by_m, key=lambda m: gaps[m].mean)
      verdict = REFUTED if gaps[fastest].sign < 0 else INCONCLUSIVE
    loose = {m: first_within(s, 0.5) for m, s in by_m.items()}
    verdicts.append(Verdict(
        f'({chasm.kl} nats, c) N²CE stays within 0.1 nat in fewer steps than NCE', verdict,
        'some M stays within 0.1 nat sooner than NCE, paired over seeds (steps of a run that never did = its '
        f'last step); {level:.1%} intervals, Bonferroni over the {len(by_m)} values of M; inconclusive when '
        'neither side gets there',
        {'nce_steps': steps(nce).tolist(),
         'steps_by_magnitude': {m: steps(s).tolist() for m, s in by_m.items()},
         'nce_minus_n2ce': {m: dataclasses.asdict(g) for m, g in gaps.items()}},
        f'steps to stay within 0.1 nat: NCE {_fmt_steps(nce)}; N²CE by M: '
        + ', '.join(f'{m:g}: {_fmt_steps(s)}' for m, s in by_m.items())
        + '. NCE minus N²CE steps: ' + '; '.join(f'M = {m:g}: {g}' for m, g in gaps.items())
        + f'. First step within 0.5 nat: NCE {first_within(nce, 0.5):.0f}; N²CE '
        + ', '.join(f'{m:g}: {v:.0f}' for m, v in loose.items())))
  return verdicts


def _nwj_chasm(alignment, results):
  verdicts = []
  for chasm in benchmarks.CHASMS:
    baselines = _chasm(results, chasm.kl, 'baselines')
    if not baselines:
      continue
    nce, nwj = baselines.cell(name='nce'), baselines.cell(name='nwj')
    level = bonferroni(LEVEL, 2)
    slower = paired(steps(nwj), steps(nce), level)
    error = paired(finals(nwj, 'kl_error'), finals(nce, 'kl_error'), level)
    if slower.sign > 0 or (slower.sign == 0 and error.sign > 0):
      verdict = REPRODUCED
    elif slower.sign < 0 or error.sign < 0:
      verdict = REFUTED
    else:
      verdict = INCONCLUSIVE
    verdicts.append(Verdict(
        f'({chasm.kl} nats, c) NWJ (N²CE at M → ∞) suffers from the density chasm itself (§6)', verdict,
        'NWJ takes more steps than NCE to stay within 0.1 nat, or (steps tied) ends with a larger KL error; '
        f'paired over seeds, {level:.1%} intervals over the two readings',
        {'nwj_minus_nce_steps': dataclasses.asdict(slower), 'nwj_minus_nce_error': dataclasses.asdict(error)},
        f'steps NWJ {_fmt_steps(nwj)}, NCE {_fmt_steps(nce)} (NWJ − NCE: {slower}); final KL error NWJ '
        f'{np.mean(finals(nwj, "kl_error")):.3f}, NCE {np.mean(finals(nce, "kl_error")):.3f} '
        f'(NWJ − NCE: {error})'))
  return verdicts


def _speed_key(summaries):
  return float(np.mean(steps(summaries))), float(np.mean(finals(summaries, 'kl_error')))


def _schedules(alignment, results):
  verdicts = []
  for chasm in benchmarks.CHASMS:
    decays, n2ce = _chasm(results, chasm.kl, 'schedules'), _chasm(results, chasm.kl, 'n2ce')
    if not (decays and n2ce):
      continue
    by_kind, by_m = decays.by('magnitude_schedule'), n2ce.by('magnitude')
    kind = min(by_kind, key=lambda k: _speed_key(by_kind[k]))
    m = min(by_m, key=lambda v: _speed_key(by_m[v]))
    decayed, constant = by_kind[kind], by_m[m]
    both_never = never(decayed) and never(constant)
    reading = 'final KL error' if both_never else 'steps to stay within 0.1 nat'
    gap = (paired(finals(constant, 'kl_error'), finals(decayed, 'kl_error')) if both_never
           else paired(steps(constant), steps(decayed)))  # > 0: the decay is better
    verdicts.append(Verdict(
        f'({chasm.kl} nats, c) A decaying M (10⁴ → 10) beats the best constant M', decide(gap.sign),
        'the best decay against the best constant M (each picked by mean steps, then final error), paired '
        'over '
        'seeds on steps to stay within 0.1 nat, or on the final KL error when neither gets there',
        {'schedule': kind, 'constant_magnitude': m, 'reading': reading,
         'constant_minus_decay': dataclasses.asdict(gap)},
        f'best decay {kind}: {_fmt_steps(decayed)} steps, final error '
        f'{np.mean(finals(decayed, "kl_error")):.3f}; best constant M = {m:g}: {_fmt_steps(constant)} steps, '
        f'{np.mean(finals(constant, "kl_error")):.3f}; '
        f'constant − decay ({reading}): {gap}'))
  return verdicts


# (d) Mutual information.

def mutual_information_benchmarks(chosen: dict, d: int) -> list:
  """The MI benchmarks at dimension ``d`` (found by their config fields, not their names)."""
  return [b for b in chosen.values() if b.config == 'mutual_information' and b.overrides['data.dim'] == d]


def best_mutual_information_cell(results: dict, candidates: list) -> tuple[str, dict]:
  """``(benchmark name, cell)`` whose seed-0 MI estimate is closest to the truth at one ``d``."""
  best, error = None, math.inf
  for benchmark in candidates:
    result = results[benchmark.name]
    for cell in result.cells():
      summary = result.summaries(cell)[0]
      e = abs(summary['final']['mi'] - summary['truth']['mi'])
      if e < error:
        best, error = (benchmark.name, cell), e
  return best


def _relative_errors(summaries) -> np.ndarray:
  return np.array([abs(s['final']['mi'] - s['truth']['mi']) / s['truth']['mi'] for s in summaries])


def _dimensions(results) -> list[int]:
  return [d for d, _ in benchmarks.mutual_information_pairs(False) if f'mi{d}' in results]


def _mutual_information_goal(alignment, results):
  dims = [d for d in _dimensions(results) if f'mi{d}_confirmation' in results]
  if not dims:
    return []
  parts, signs, numbers = [], [], {}
  for d in dims:
    confirmation = results[f'mi{d}_confirmation']
    cell = confirmation.cells()[0]
    errors = _relative_errors(confirmation.summaries(cell))
    above = interval(errors - 0.05)
    signs.append(above.sign)
    numbers[d] = {'cell': cell, 'relative_errors': errors.tolist(),
                  'minus_five_percent': dataclasses.asdict(above)}
    parts.append(f'd = {d}: {100 * errors.mean():.1f}% ({cell_label(cell)}; error − 5%: {above})')
  verdict = (REFUTED if any(s > 0 for s in signs) else REPRODUCED if all(s < 0 for s in signs)
             else INCONCLUSIVE)
  return [Verdict(
      "(d) The best estimator is within 5% of the true MI at every d (the issue's goal)", verdict,
      'each d\'s best cell, picked on seed 0, rerun on seeds 1..: its relative error is below 5% (95% t '
      'interval) at every d; above at some d refutes',
      numbers, '; '.join(parts))]


def _magnitude_rule(alignment, results):
  """N²CE's data term softplus(log M - s) stops pulling once s > log M, so its KL = E[s]
  saturates near log M unless M ~ e^KL."""
  parts, signs, numbers = [], [], {}
  for d, mi in benchmarks.mutual_information_pairs(False):
    oracle = benchmarks.oracle_magnitude(mi)
    if f'mi{d}_n2ce' not in results or oracle != math.exp(mi):
      continue  # e^MI beyond the tested range of M
    by_m = results[f'mi{d}_n2ce'].by('magnitude')
    if oracle not in by_m or 100.0 not in by_m:
      continue
    gap = paired(_relative_errors(by_m[100.0]), _relative_errors(by_m[oracle]))  # > 0: e^MI better
    signs.append(gap.sign)
    numbers[d] = dataclasses.asdict(gap)
    parts.append(f'd = {d}: M = 100: {100 * _relative_errors(by_m[100.0]).mean():.1f}%, '
                 f'M = e^MI = {oracle:.3g}: '
                 f'{100 * _relative_errors(by_m[oracle]).mean():.1f}% (difference {gap})')
  if not parts:
    return []
  verdict = (REPRODUCED if all(s > 0 for s in signs) else REFUTED if any(s < 0 for s in signs)
             else INCONCLUSIVE)
  return [Verdict(
      '(d) N²CE needs M ≈ e^MI (its data term saturates at s = log M): M = e^MI beats M = 100', verdict,
      'relative MI error at M = 100 minus at M = e^MI, paired over seeds, at every d where e^MI ≤ 1e12 '
      '(the tested range of M)', numbers, '; '.join(parts))]


def _single_ratio_fails(alignment, results):
  dims = _dimensions(results)
  if not dims:
    return []
  d = max(dims)
  nce = results[f'mi{d}'].cell(name='nce')
  above = interval(_relative_errors(nce) - 0.05)
  return [Verdict(
      f'(d) Single-ratio NCE fails at d = {d} (TRE)', decide(above.sign),
      'NCE (K = 1, quadratic head) misses the MI by more than 5% (95% t interval over seeds)',
      {'relative_error_minus_five_percent': dataclasses.asdict(above)},
      f'NCE {np.mean(finals(nce, "mi")):.1f} against MI = {nce[0]["truth"]["mi"]:.0f} (relative error − 5%: '
      f'{above})')]


# (e) Toy 2-D, (f) ranking NCE.

MARGIN = 0.01  # nats: "at least as well" allows N²CE this much worse


def _toy2d(alignment, results):
  if 'toy2d' not in results:
    return []
  nce, n2ce = (finals(results['toy2d'].cell(name=n), 'test_nll') for n in ('nce', 'noisier_nce'))
  gap = paired(n2ce, nce)
  verdict = REPRODUCED if gap.high < MARGIN else REFUTED if gap.low > MARGIN else INCONCLUSIVE
  return [Verdict(
      '(e) N²CE fits toy 2-D densities at least as well as NCE (test NLL, exact normaliser)', verdict,
      f'N²CE − NCE test NLL, paired over seeds: the 95% interval lies below +{MARGIN} nat (non-inferiority); '
      'above refutes',
      {'n2ce_minus_nce': dataclasses.asdict(gap)},
      f'test NLL NCE {nce.mean():.3f}, N²CE {n2ce.mean():.3f} nats; N²CE − NCE {gap}')]


def _ranking(alignment, results):
  verdicts = []
  for chasm in benchmarks.CHASMS:
    ranking = _chasm(results, chasm.kl, 'ranking')
    if not ranking:
      continue
    by_n = dict(sorted(ranking.by('num_candidates').items()))
    few, many = by_n[min(by_n)], by_n[max(by_n)]
    both_never = never(few) and never(many)
    reading = 'final KL error' if both_never else 'steps to stay within 0.1 nat'
    gap = (paired(finals(few, 'kl_error'), finals(many, 'kl_error')) if both_never
           else paired(steps(few), steps(many)))  # > 0: more candidates better
    verdicts.append(Verdict(
        f'({chasm.kl} nats, f) More ranking candidates help against the chasm', decide(gap.sign),
        f'N = {max(by_n)} against N = {min(by_n)}, paired over seeds, on steps to stay within 0.1 nat or, '
        'when '
        'neither gets there, the final KL error (log Z exact for the Gaussian family)',
        {'reading': reading, 'few_minus_many': dataclasses.asdict(gap)},
        'steps (final KL error) by N: ' + ', '.join(
            f'{n}: {_fmt_steps(s)} ({np.mean(finals(s, "kl_error")):.3f})' for n, s in by_n.items())
        + f'; N = {min(by_n)} minus N = {max(by_n)} ({reading}): {gap}'))
  return verdicts
