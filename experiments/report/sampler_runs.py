"""The sampler reports' shared parts, free of flags: the two kinds of sampler experiment (2-D
densities, 28x28 images) with their configs, a dataset's teacher run, and a run's evaluations
read as curves with the iterations they take to a threshold."""

import dataclasses
import os

import numpy as np

from experiments.configs import ddpm_images, ddpm_toy2d, dxmi_images, dxmi_toy2d
from experiments.core.checks import ConfigError
from experiments.core.metrics import read_metrics
from experiments.report.study import Study
from experiments.tasks.common import image_data
from nnce_jax.data import toy2d


@dataclasses.dataclass(frozen=True, eq=False)  # compared and hashed by identity: TOY, IMAGES
class Kind:
  """2-D densities or images: their config modules (the teacher's, DxMI's), the metric judged on
  (lower is better), the other columns of the tables (``{metric: title}``) and the quick settings."""
  teacher_config: str
  config: str
  teacher_defaults: object
  defaults: object
  metric: str
  title: str
  columns: dict
  quick_teacher: dict
  quick: dict


# How the energy separates data from samples, and the sampler's mean sigma_t (t < T): the
# entropy bonus tau1 log sigma_t pushes it up, the energy's value pushes back.
DIAGNOSTICS = {'energy_auroc': 'energy AUROC', 'mean_sigma': 'mean sigma'}
QUICK = {'train.num_steps': 20, 'train.steps_per_dispatch': 10, 'train.sync_every': 10,
         'train.eval_every': 10, 'train.log_every': 10, 'train.checkpoint_every': 20}
TOY = Kind('ddpm_toy2d', 'dxmi_toy2d', ddpm_toy2d.get_config,
           dxmi_toy2d.get_config, 'sliced_w2', 'sliced W2',
           {'mmd': 'MMD', 'modes_covered': 'modes', **DIAGNOSTICS},
           {'train.num_steps': 200, 'train.eval_every': 200, 'train.log_every': 100,
            'train.checkpoint_every': 200, 'data.num_test': 500, 'teacher.num_eval_samples': 500},
           {**QUICK, 'data.num_test': 500})
IMAGE_QUICK = {'teacher.hidden': (64,), 'judge.train_steps': 100, 'judge.num_samples': 200,
                'judge.num_train': 500, 'data.num_test': 200}
IMAGES = Kind('ddpm_images', 'dxmi_images',
              ddpm_images.get_config, dxmi_images.get_config, 'frechet_distance', 'FD',
              {'kid': 'KID', 'class_kl': 'class KL', **DIAGNOSTICS},
              {'train.num_steps': 100, 'train.eval_every': 100, 'train.log_every': 100,
               'train.checkpoint_every': 100, **IMAGE_QUICK},
              {**QUICK, **IMAGE_QUICK, 'energy.hidden': (32,), 'value.hidden': (32,)})


def kind_of(dataset: str) -> Kind:
  return IMAGES if dataset in image_data.DATASETS else TOY


def train_teacher(dataset, teachers_dir, quick) -> tuple[str, float]:
  """``(run_dir, seconds)``: the dataset's teacher, trained once in ``teachers_dir/<dataset>`` (then
  reused by every report that distils or fine-tunes it)."""
  kind = kind_of(dataset)
  teacher = Study(dataset, kind.teacher_config, {}, 1, {'data.dataset': dataset}, kind.quick_teacher)
  result = teacher.run(quick, teachers_dir, 1)
  return result.runs[0].run_dir, result.wall_s


def students(config: str, dataset: str, teacher_dir: str, grid: dict, seeds: int, overrides: dict,
             workdir: str, jobs: int):
  """The sweep of ``grid`` x ``seeds`` of a student config (DxMI, SiD) on ``dataset``'s teacher
  run (``overrides`` already hold the quick fields), run in ``workdir``."""
  fields = {**overrides, 'data.dataset': dataset, 'teacher.workdir': os.path.abspath(teacher_dir)}
  study = Study.of(os.path.basename(workdir), config, grid, seeds, fields)
  return study.run(False, os.path.dirname(workdir), jobs)


def chosen_datasets(names: list[str], quick: bool) -> list[str]:
  """``names`` checked against the 2-D densities and image datasets; ``quick`` keeps the first of
  each kind asked for."""
  allowed = toy2d.DATASETS + image_data.DATASETS
  if bad := [d for d in names if d not in allowed]:
    raise ConfigError(f'--datasets={",".join(bad)} is invalid; allowed values: {", ".join(allowed)}')
  if quick:
    return [d for i, d in enumerate(names) if kind_of(d) not in map(kind_of, names[:i])]
  return list(names)


def curve(summary: dict, metric: str) -> dict:
  """A run's evaluations as arrays (``metric`` under ``'judged'``), its truth and its samples' plot."""
  evals = [r for r in read_metrics(summary['run_dir']) if f'eval_{metric}' in r]
  keys = [k.removeprefix('eval_') for k in evals[0] if k.startswith('eval_')]
  return {'step': np.array([r['step'] for r in evals]),
          **{key: np.array([r.get(f'eval_{key}', np.nan) for r in evals]) for key in keys},
          'judged': np.array([r[f'eval_{metric}'] for r in evals]),
          'references': summary['references'], 'png': summary.get('samples_png'), 'budget': summary['steps'],
          'run_dir': summary['run_dir']}


def iterations_to(curve: dict, threshold: float) -> int | None:
  """The first evaluated iteration at or below ``threshold``; None if none is."""
  hits = np.flatnonzero(curve['judged'] <= threshold)
  return int(curve['step'][hits[0]]) if hits.size else None


def censored(value: int | None, budget: int) -> float:
  """Iterations to a threshold, a run that never reached it counted at twice the budget: every
  such run ranks behind every run that did, and the paired difference stays finite."""
  return float(2 * budget if value is None else value)
