"""How an image teacher's cut samplers fare against their step count ``T``: as the reference
builds them, and with each step's denoised guess clipped to the pixels' range (DDPM's
``clip_denoised``). It diagnoses a teacher whose many-step samples saturate, its 100-step
sampler (the paper's bar) measuring worse than its 10-step one.

Evaluation only: restores the ``ddpm_images`` run in ``config.teacher.workdir`` and judges
``judge.num_samples`` samples of each sampler by that run's classifier, from the evaluation key
``ddpm_images`` uses at the same seed (so the reference rows repeat the run's recorded numbers), and
the teacher's denoised guess of noised test images at a range of noise levels (where the guess goes
wrong). Writes ``teacher_sampling.{md,json}`` and a sample grid per sampler.
"""

import json
import os

import jax
import jax.numpy as jnp
import numpy as np
from absl import logging

from experiments.core.tables import markdown_table
from experiments.tasks.common import image_data, samplers
from nnce_jax import ddpm

GUESS_STEPS = (0, 100, 300, 500, 700, 900, 999)  # teacher steps where the denoised guess is measured
X0_BOUND = 1.0  # pixels live in [-1, 1]
OUT_OF_RANGE = 1.05  # a pixel further out than this has run past the data's range
SAMPLERS = {'reference': None, 'denoised guess clipped': X0_BOUND}


def check(config) -> None:
  image_data.check(config)
  samplers.check_teacher_run(config)


def evaluate(config, workdir: str) -> dict:
  network, schedule = samplers.teacher(config)
  params = samplers.restore_teacher(config, network, image_data.DIM, image_data.TEACHER_CONFIG)
  # Refuses a judge other than the teacher run's.
  recorded = image_data.teacher_bar(config, samplers.THRESHOLD_STEPS)
  judge = image_data.Judge(config)
  key = samplers.evaluation_key(config)  # ddpm_images' own at the same seed
  os.makedirs(workdir, exist_ok=True)
  results = []
  for name, bound in SAMPLERS.items():
    cut = samplers.cut_samplers(network, schedule, config.teacher.eval_steps, key,
                                (config.judge.num_samples, image_data.DIM), bound)
    for steps, samples in cut(params).items():
      samples = np.asarray(samples)
      results.append({'sampler': name, 'steps': steps, **judge.metrics(samples),
                      'out_of_range': float(np.mean(np.abs(samples) > OUT_OF_RANGE))})
      suffix = '' if bound is None else '_clipped'
      image_data.save_grid(samples, workdir, f'teacher_{steps}_steps{suffix}.png')
      logging.info('%s, %d steps: %s', name, steps, results[-1])
  guesses = guess_errors(network, params, schedule, judge.x_test, jax.random.fold_in(key, 1))
  text = table(results, recorded, judge.test_accuracy) + '\n\n' + guess_table(guesses)
  with open(os.path.join(workdir, 'teacher_sampling.md'), 'w') as f:
    f.write(text + '\n')
  summary = {'recorded_bar': recorded, 'judge_test_accuracy': judge.test_accuracy, 'results': results,
             'guesses': guesses, 'table': text}
  with open(os.path.join(workdir, 'teacher_sampling.json'), 'w') as f:
    json.dump(summary, f, indent=2)
  return summary


def guess_errors(network, params, schedule, images, key) -> list[dict]:
  """The teacher's denoised guess of test ``images [n, d]`` noised to each of :data:`GUESS_STEPS`:
  its mean squared error per pixel and the share of its pixels beyond ±1.05. An epsilon
  network's error reaches the guess multiplied by ``sqrt((1 - abar) / abar)`` (160 at the last
  step), a v network's is not: where the guess goes wrong is where many-step samplers drift."""
  rows = []
  for step in GUESS_STEPS:
    n = jnp.full(images.shape[:1], float(min(step, schedule.betas.shape[0] - 1)))
    noise = jax.random.normal(jax.random.fold_in(key, step), images.shape)
    x_n = ddpm.noised(schedule, images, n, noise)
    guess = np.asarray(ddpm.denoise(lambda x, m: network.apply(params, x, m), schedule, x_n, n))
    abar = float(ddpm.alpha_cumprod_at(schedule, n[:1])[0])
    rows.append({'step': step, 'abar': abar, 'mse': float(np.mean((guess - images) ** 2)),
                 'out_of_range': float(np.mean(np.abs(guess) > OUT_OF_RANGE))})
  return rows


def guess_table(rows) -> str:
  header = ['teacher step n', 'abar_n', 'MSE of the denoised guess / pixel',
            f'guess pixels beyond ±{OUT_OF_RANGE}']
  return markdown_table(header, [[str(r['step']), f'{r["abar"]:.3g}', f'{r["mse"]:.4g}',
                                  f'{r["out_of_range"]:.1%}'] for r in rows])


def table(results, recorded, accuracy) -> str:
  """The markdown table of :func:`evaluate`'s results."""
  header = ['sampler', 'T', 'Fréchet distance', 'KID', 'class KL', f'pixels beyond ±{OUT_OF_RANGE}']
  rows = [[r['sampler'], str(r['steps']), f'{r["frechet_distance"]:.4g}', f'{r["kid"]:.4g}',
           f'{r["class_kl"]:.3f}', f'{r["out_of_range"]:.1%}'] for r in results]
  return (markdown_table(header, rows) + f'\n\nThe teacher run recorded a 100-step Fréchet distance of '
          f'{recorded:.4g}; the judge\'s test accuracy is {accuracy:.3f}.')
