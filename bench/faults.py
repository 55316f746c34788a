"""Fault injection at scale: SIGKILL at random moments, then damage to the latest checkpoint.

``python -m bench.faults [--kills 10] [--damages 6]`` prints one JSON line per trial and a
summary line. Each trial runs ``experiments.main`` (the chasm, 300 steps, a checkpoint every
20) in a fresh workdir:

* kill: SIGKILL once a random checkpoint step has appeared plus a random delay (mid-step or
  mid-save), rerun the same command, compare every leaf of the final state with an
  unbroken run's (bit for bit);
* damage: finish a run, truncate or garble the files of the last checkpoint (a random half
  of them, or all), rerun with more steps, check that it falls back with a warning and ends
  bit-identical to an unbroken run of that length.
"""

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import time

import jax
import numpy as np
import orbax.checkpoint as ocp

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ARGS = ['--config=experiments/configs/density_chasm.py', '--config.train.batch_size=64',
        '--config.train.steps_per_dispatch=10',
        '--config.train.sync_every=10', '--config.train.log_every=20', '--config.train.eval_every=20',
        '--config.train.checkpoint_every=20', '--config.likelihood.num_samples=0',
        '--config.data.num_test=1000']
ENV = {**os.environ, 'JAX_PLATFORMS': 'cpu', 'XLA_FLAGS': ''}


def _command(workdir, steps):
  return [sys.executable, '-m', 'experiments.main', *ARGS, f'--config.train.num_steps={steps}',
          f'--workdir={workdir}']


def _run(workdir, steps) -> str:
  done = subprocess.run(_command(workdir, steps), cwd=REPO, env=ENV, capture_output=True, text=True,
                        timeout=600)
  if done.returncode:
    raise RuntimeError(done.stdout[-2000:] + done.stderr[-2000:])
  return done.stdout + done.stderr


def _final_leaves(workdir, steps):
  path = os.path.join(workdir, 'checkpoints', str(steps), 'default')
  tree = ocp.PyTreeCheckpointer().restore(path)
  return [np.asarray(x) for x in jax.tree.leaves(tree)]


def _identical(a, b, steps) -> bool:
  return all(np.array_equal(x, y) for x, y in zip(_final_leaves(a, steps), _final_leaves(b, steps)))


def kill_trial(root, unbroken, rng) -> dict:
  workdir = os.path.join(root, f'kill_{rng.random():.6f}')
  target, delay = rng.randrange(20, 280, 20), rng.random() * 0.5
  child = subprocess.Popen(_command(workdir, 300), cwd=REPO, env=ENV, stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL)
  checkpoints = os.path.join(workdir, 'checkpoints')
  while child.poll() is None:
    steps = [int(p) for p in os.listdir(checkpoints) if p.isdigit()] if os.path.isdir(checkpoints) else []
    if max(steps, default=0) >= target:
      time.sleep(delay)
      break
    time.sleep(0.02)
  child.kill()
  child.wait()
  _run(workdir, 300)
  return {'fault': 'sigkill', 'after_checkpoint': target, 'delay_s': round(delay, 3),
          'bit_identical': _identical(workdir, unbroken, 300)}


def damage_trial(root, unbroken, rng) -> dict:
  workdir = os.path.join(root, f'damage_{rng.random():.6f}')
  _run(workdir, 280)
  files = [os.path.join(d, f) for d, _, fs in os.walk(os.path.join(workdir, 'checkpoints', '280', 'default'))
           for f in fs]
  how = rng.choice(['truncate', 'garble'])
  victims = rng.sample(files, max(1, len(files) // rng.choice([1, 2])))
  for path in victims:
    with open(path, 'r+b') as f:
      if how == 'truncate':
        f.truncate(os.path.getsize(path) // 2)
      else:
        f.write(os.urandom(max(os.path.getsize(path), 16)))
  output = _run(workdir, 300)
  return {'fault': how, 'files_damaged': f'{len(victims)} of {len(files)}',
          'warned': 'unreadable' in output, 'bit_identical': _identical(workdir, unbroken, 300)}


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument('--kills', type=int, default=10)
  parser.add_argument('--damages', type=int, default=6)
  parser.add_argument('--seed', type=int, default=0)
  args = parser.parse_args()
  rng, started, trials = random.Random(args.seed), time.perf_counter(), []
  with tempfile.TemporaryDirectory() as root:
    unbroken = os.path.join(root, 'unbroken')
    _run(unbroken, 300)
    for trial in [kill_trial] * args.kills + [damage_trial] * args.damages:
      trials.append(trial(root, unbroken, rng))
      print(json.dumps(trials[-1]), flush=True)
  print(json.dumps({'trials': len(trials), 'bit_identical': sum(t['bit_identical'] for t in trials),
                    'damaged_and_warned': sum(t.get('warned', False) for t in trials),
                    'wall_s': round(time.perf_counter() - started, 1)}))


if __name__ == '__main__':
  main()
