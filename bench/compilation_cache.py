"""What JAX's persistent compilation cache saves a run; prints one JSON object.

    python bench/compilation_cache.py [--repeats 3] [--config gaussian] [--field=value ...]

Runs ``python -m experiments.main`` on one config (default: a run of the results report's
Gaussian study, 6,000 steps) three ways, round-robin over ``--repeats`` rounds: without a cache,
with an empty cache (cold: compiles and writes) and with the cache the cold run left (warm).
Reports the median seconds of the whole process and of the run's own clock (``wall_time_s``),
and whether all three ways ended with the same final metrics (a hit must be the same executable).
"""

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
GAUSSIAN_RUN = ['--config.train.num_steps=6000', '--config.optimizer.learning_rate=3e-3',
                '--config.optimizer.schedule=cosine', '--config.data.fixed_noise=True',
                '--config.likelihood.num_samples=0', '--config.objective.name=noisier_nce',
                '--config.objective.magnitude=100', '--config.data.num_train=1000']

parser = argparse.ArgumentParser()
parser.add_argument('--repeats', type=int, default=3)
parser.add_argument('--config', default='gaussian', help='a config of experiments/configs')
args, overrides = parser.parse_known_args()
overrides = overrides or (GAUSSIAN_RUN if args.config == 'gaussian' else [])


def timed_run(root: str, cache: str) -> tuple[float, float, dict]:
  workdir = tempfile.mkdtemp(dir=root)
  started = time.perf_counter()
  subprocess.run([sys.executable, '-m', 'experiments.main', f'--config=experiments/configs/{args.config}.py',
                  *overrides, f'--workdir={workdir}', f'--compilation_cache={cache}'],
                 cwd=REPO, check=True, capture_output=True, env={**os.environ, 'JAX_PLATFORMS': 'cpu'})
  seconds = time.perf_counter() - started
  with open(os.path.join(workdir, 'summary.json')) as f:
    summary = json.load(f)
  return seconds, summary['wall_time_s'], summary.get('final')


root = tempfile.mkdtemp()
try:
  times = {'none': [], 'cold': [], 'warm': []}
  finals = []
  for round_ in range(args.repeats):
    cache = os.path.join(root, f'cache{round_}')
    for way, path in (('none', ''), ('cold', cache), ('warm', cache)):
      process, run, final = timed_run(root, path)
      times[way].append((process, run))
      finals.append(final)
    entries = len([name for name in os.listdir(cache) if name.endswith('-cache')])
  result = {'config': args.config, 'overrides': overrides, 'repeats': args.repeats, 'cache_entries': entries,
            'same_final_metrics': all(final == finals[0] for final in finals)}
  for way, pairs in times.items():
    result[f'{way}_process_s'] = round(statistics.median(p for p, _ in pairs), 2)
    result[f'{way}_run_s'] = round(statistics.median(r for _, r in pairs), 2)
  result['warm_saves'] = round(1 - result['warm_process_s'] / result['none_process_s'], 3)
  print(json.dumps(result))
finally:
  shutil.rmtree(root)
