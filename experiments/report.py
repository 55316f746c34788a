"""The reproduction report: six benchmarks as sweeps, assembled into ``docs/results.md``.

``python -m experiments.report [--quick] [--workdir=runs/report] [--output=docs/results.md]``

Every benchmark is a sweep (:mod:`experiments.sweep_runner`) of an ordinary config, so any
cell can be rerun alone; finished runs are reused. ``--quick`` shrinks steps, seeds and
grids to check the pipeline end to end in minutes; its numbers mean nothing.
"""

import dataclasses
import importlib
import math
import os
import shutil
import time

from absl import app, flags

from experiments import gradient_alignment
from experiments.claims import claims_table
from experiments.config_checks import apply_overrides
from experiments.sweep_runner import run_sweep

_QUICK = flags.DEFINE_bool('quick', False, 'Tiny grids and steps: checks the pipeline only.')
_WORKDIR = flags.DEFINE_string('workdir', None, 'Where the sweeps run (default runs/report; '
                                'runs/report_quick with --quick).')
_OUTPUT = flags.DEFINE_string('output', None, 'The report (default docs/results.md; '
                              '<workdir>/results.md with --quick).')
_JOBS = flags.DEFINE_integer('jobs', 2, 'Runs in parallel.')
_ONLY = flags.DEFINE_list('only', [], 'Benchmarks to run (default all): ' + 'a,b,c,d,e,f')

CONFIGS = 'experiments/configs'


@dataclasses.dataclass
class Sweep:
  benchmark: str
  name: str
  config: str
  grid: list[str]
  seeds: int
  overrides: list[str]
  quick: list[str]  # overrides in --quick, after ``overrides``


def _chasm(sigma, steps):
  return [f'--config.data.sigma={sigma}', f'--config.train.num_steps={steps}',
          f'--config.train.checkpoint_every={steps}', '--config.likelihood.num_samples=0']


QUICK_CHASM = ['--config.train.num_steps=200', '--config.train.eval_every=100',
               '--config.train.log_every=200', '--config.train.checkpoint_every=200',
               '--config.data.num_test=500']


def sweeps(quick: bool) -> list[Sweep]:
  seeds = 1 if quick else 3
  m_grid = '1,100' if quick else '1,10,100,1000,10000'
  result = [
      Sweep('b', 'gaussian_m', f'{CONFIGS}/gaussian.py',
            [f'objective.magnitude={m_grid}', f'data.num_train={"1000" if quick else "1000,10000"}',
             'objective.name=noisier_nce'], seeds,
            ['--config.train.num_steps=6000', '--config.optimizer.learning_rate=3e-3',
             '--config.likelihood.num_samples=0'], QUICK_CHASM),
      Sweep('b', 'gaussian_nu', f'{CONFIGS}/gaussian.py',
            [f'objective.noise_ratio={"1,4" if quick else "1,10,100"}',
             f'data.num_train={"1000" if quick else "1000,10000"}', 'objective.name=nce'], seeds,
            ['--config.train.num_steps=6000', '--config.optimizer.learning_rate=3e-3',
             '--config.likelihood.num_samples=0', '--config.train.batch_size=200'], QUICK_CHASM),
  ]
  # At 13.3 nats NCE is still 0.4-0.8 nat off after 20,000 steps: 60,000 let it converge.
  depths = [('6.41', 1e-3, 8000)] + ([] if quick else [('13.3', 1e-6, 60000)])
  for depth, sigma, steps in depths:
    base = _chasm(sigma, steps)
    result += [
        Sweep('c', f'chasm{depth}_baselines', f'{CONFIGS}/density_chasm.py',
              ['objective.name=nce,nwj'], seeds, base, QUICK_CHASM),
        Sweep('c', f'chasm{depth}_n2ce', f'{CONFIGS}/density_chasm.py',
              [f'objective.magnitude={m_grid}', 'objective.name=noisier_nce'], seeds, base, QUICK_CHASM),
        Sweep('c', f'chasm{depth}_tre', f'{CONFIGS}/density_chasm.py',
              [f'objective.num_stages={"3" if quick else "3,5"}', 'objective.name=nce,noisier_nce'],
              seeds, base, QUICK_CHASM),
        Sweep('c', f'chasm{depth}_schedules', f'{CONFIGS}/density_chasm.py',
              [f'objective.magnitude_schedule={"exponential" if quick else "linear,cosine,exponential"}',
               'objective.name=noisier_nce'],
              seeds, base + ['--config.objective.magnitude=10000', '--config.objective.final_magnitude=10'],
              QUICK_CHASM),
        # Ranking NCE's KL needs an IS estimate of log Z over q0 samples, hopeless at 13.3
        # nats whatever the steps; its (N - 1)-fold noise makes long runs dear: 20,000 steps.
        Sweep('f', f'chasm{depth}_ranking', f'{CONFIGS}/density_chasm.py',
              [f'objective.num_candidates={"2,8" if quick else "2,4,16,64"}', 'objective.name=ranking_nce'],
              seeds, _chasm(sigma, min(steps, 20000)), QUICK_CHASM),
    ]
  mi_pairs = [(40, 10)] if quick else [(40, 10), (80, 20), (160, 40), (320, 80)]
  quick_mi = QUICK_CHASM + ['--config.data.num_train=2000']
  for d, mi in mi_pairs:
    config = f'{CONFIGS}/mutual_information.py'
    base = [f'--config.data.dim={d}', f'--config.data.mutual_information={mi}']
    # N^2CE's data term saturates once s > log M, so M = e^MI (an oracle choice) and 1e30 are
    # also tried.
    result += [
        Sweep('d', f'mi{d}', config, ['objective.name=nce,nwj'], 1, base, quick_mi),
        Sweep('d', f'mi{d}_n2ce', config,
              [f'objective.magnitude={"100" if quick else f"100,{math.exp(mi):.3g},1e30"}',
               'objective.name=noisier_nce'], 1, base, quick_mi)]
    if quick:
      continue
    # TRE's stages cost K times a quadratic head of d^2 parameters: at d = 320, K = 5 was still
    # at -44 nats after 2000 steps (14 min for 8000), so telescoping stops at d = 160.
    if d <= 160:
      result.append(Sweep('d', f'mi{d}_tre', config,
                          ['objective.num_stages=5', 'objective.name=nce,noisier_nce'], 1, base, []))
    result.append(Sweep('d', f'mi{d}_mlp', config, ['model.name=mlp', 'objective.name=nce,noisier_nce,nwj'],
                        1, base, []))
    if d == 40:
      result.append(Sweep('f', f'mi{d}_ranking', config,
                          ['objective.num_candidates=2,16,64', 'objective.name=ranking_nce'], 1, base, []))
  result.append(Sweep('e', 'toy2d', f'{CONFIGS}/toy2d.py', ['objective.name=nce,noisier_nce'], seeds,
                      ['--config.likelihood.num_samples=0'],
                      QUICK_CHASM + ['--config.data.grid_size=50', '--config.model.hidden=(16,16)']))
  return result


TITLES = {
    'a': '(a) Gradient alignment, 2-D Gaussian',
    'b': '(b) 5-D Gaussian: parameter error against M, beside NCE with ν real noise samples',
    'c': '(c) Density chasm at 6.41 and 13.3 nats: steps to stay within 0.1 nat',
    'd': '(d) Mutual information, (d, MI) = (40, 10) … (320, 80)',
    'e': '(e) Toy 2-D: test NLL with the exact normaliser',
    'f': '(f) Ranking (softmax) NCE with N candidates on (c) and (d)',
}


def main(argv):
  del argv
  quick = _QUICK.value
  workdir = _WORKDIR.value or ('runs/report_quick' if quick else 'runs/report')
  output = _OUTPUT.value or (os.path.join(workdir, 'results.md') if quick else 'docs/results.md')
  only = set(_ONLY.value) or set(TITLES)
  sections, results, alignment, started = {}, {}, None, time.perf_counter()
  alignment_wall = 0.0
  if 'a' in only:
    alignment = gradient_alignment.run(_alignment_config(quick), os.path.join(workdir, 'alignment'))
    alignment_wall = time.perf_counter() - started
    sections.setdefault('a', []).append(_alignment_section(alignment, workdir, output, alignment_wall))
  for sweep in sweeps(quick):
    if sweep.benchmark not in only:
      continue
    overrides = sweep.overrides + (sweep.quick if quick else [])
    module = os.path.splitext(os.path.basename(sweep.config))[0]
    config = importlib.import_module(f'experiments.configs.{module}').get_config()
    apply_overrides(config, overrides)
    sweep_dir = os.path.join(workdir, sweep.name)
    results[sweep.name] = run_sweep(config, sweep.config, sweep.grid, seeds=sweep.seeds,
                                    workdir=sweep_dir, jobs=_JOBS.value, overrides=overrides)
    command = (f'python -m experiments.sweep --config={sweep.config} '
               + ' '.join(f'--grid={g}' for g in sweep.grid)
               + f' --seeds={sweep.seeds} --workdir={sweep_dir} ' + ' '.join(overrides))
    sections.setdefault(sweep.benchmark, []).append(
        f'**{sweep.name}** ({"" if results[sweep.name].wall_measured else "about "}'
        f'{results[sweep.name].wall_s:.0f} s to run, {_JOBS.value} jobs at a time)\n\n'
        f'`{command}`\n\n{results[sweep.name].table}\n'
        + ''.join(f'![{sweep.name}]({_publish(path, output, f"{sweep.name}_{png}")})\n'
                  for png in ('sweep_curves.png', 'sweep_vs_magnitude.png')
                  if os.path.exists(path := os.path.join(sweep_dir, png))))
  # What the runs cost when they ran (timing.json), not this invocation's, which reuses them.
  total = sum(r.wall_s for r in results.values()) + alignment_wall
  with open(output, 'w') as f:
    estimated = not all(r.wall_measured for r in results.values())
    f.write(_report(sections, claims_table(alignment, results), quick, total, estimated))
  print(f'report: {output} ({time.perf_counter() - started:.0f} s now; {total:.0f} s of runs in all)')


def _publish(path, output, name):
  """Copies a plot beside the report (run directories are not committed); returns its link."""
  target = os.path.join(os.path.dirname(os.path.abspath(output)), 'results', name)
  os.makedirs(os.path.dirname(target), exist_ok=True)
  shutil.copyfile(path, target)
  return f'results/{name}'



def _alignment_config(quick):
  import ml_collections
  return ml_collections.ConfigDict({'seed': 0, 'data': {
      'num_samples': 100_000 if quick else 1_000_000,
      'magnitudes': (1.0, 10.0, 100.0, 1000.0) if quick else
      (1.0, 3.0, 10.0, 30.0, 100.0, 300.0, 1000.0, 3000.0, 10000.0)}})


def _alignment_section(result, workdir, output, wall):
  rows = '\n'.join(f'| {r["magnitude"]:g} | {r["cosine_exact_mle"]:.6f} | {r["bias_norm"]:.3g} |'
                   for r in result['rows'])
  plot = os.path.join(workdir, 'alignment', 'gradient_alignment.png')
  png = _publish(plot, output, 'gradient_alignment.png')
  header = '| M | cosine with exact MLE gradient | bias norm vs M → ∞ |\n| --- | --- | --- |'
  return (f'`python -m experiments.report --only=a` ({wall:.0f} s wall), {result["num_samples"]:,} common '
          f'samples\n\n{header}\n{rows}\n\n'
          f'Fitted slope of log bias norm against log M (M ≥ 10): **{result["bias_slope"]:.3f}**; '
          f'of the squared bias: {result["squared_bias_slope"]:.3f}. Monte-Carlo floor of the limit '
          f'against the exact gradient: {result["mc_floor"]:.2g}.\n\n![alignment]({png})\n')


def _report(sections, claims, quick, total, estimated):
  head = ('# Results: N²CE against its neighbours\n\n'
          + ('**Quick mode: pipeline check only, the numbers mean nothing.**\n\n' if quick else '')
          + 'Regenerate everything with `python -m experiments.report`: its runs took '
          + f'{"about " if estimated else ""}{total / 60:.1f} min '
          f'on a 2-core CPU machine, {_JOBS.value} at a time; rerunning reuses finished runs. '
          'Each table is one sweep: mean ± std over seeds; '
          '"never" means the run did not stay within tolerance by its last step.\n\n'
          '## Claims\n\n' + claims + '\n\n')
  body = ''.join(f'## {TITLES[k]}\n\n' + '\n'.join(sections[k]) + '\n' for k in sorted(sections))
  return head + body


if __name__ == '__main__':
  app.run(main)
