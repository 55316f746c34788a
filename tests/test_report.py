"""The report's quick mode runs every benchmark end to end and writes a report."""

import json
import os
import shlex
import subprocess
import sys

import pytest

from tests.test_configs import REPO


@pytest.mark.slow
def test_quick_report_runs_every_benchmark(tmp_path):
  output = tmp_path / 'results.md'
  result = subprocess.run(
      [sys.executable, '-m', 'experiments.report', '--quick', f'--workdir={tmp_path}', f'--output={output}'],
      cwd=REPO, capture_output=True, text=True, timeout=600,
      env={**os.environ, 'XLA_FLAGS': '', 'JAX_PLATFORMS': 'cpu'})
  assert result.returncode == 0, result.stderr[-3000:]
  report = output.read_text()
  for section in ('(a)', '(b)', '(c)', '(d)', '(e)', '(f)'):
    assert f'## {section}' in report
  assert 'Fitted slope of log bias norm' in report
  claims = report[report.index('## Claims'):report.index('## (a)')]
  for claim in ('(a) The N²CE gradient tends', '(a) The gradient bias', '(b) n = 1000: the parameter error',
                '(6.41 nats, c) N²CE stays', '(6.41 nats, c) A decaying M', '(d) The best estimator',
                '(d) Single-ratio NCE', '(e) N²CE fits', '(6.41 nats, f) More ranking'):
    assert claim in claims
  verdicts = json.loads((tmp_path / 'results' / 'claims.json').read_text())
  assert {v['verdict'] for v in verdicts} <= {'reproduced', 'refuted', 'inconclusive'}
  assert len(verdicts) == claims.count('\n| (')
  # The command the report prints for a sweep reruns it, reusing every finished run.
  command = next(line.strip('`') for line in report.splitlines()
                 if line.startswith('`python -m experiments.sweep') and 'chasm6.41_baselines ' in line)
  again = subprocess.run([sys.executable, *shlex.split(command)[1:]], cwd=REPO, capture_output=True,
                         text=True, timeout=120, env={**os.environ, 'XLA_FLAGS': ''})
  assert again.returncode == 0, again.stderr[-3000:]
  assert '4 runs, 4 done' in again.stdout


def test_sweep_grid_is_validated_before_any_run(tmp_path):
  from experiments.core.checks import ConfigError, parse_value
  from experiments.sweep import InProcess, run_sweep
  from experiments.sweep.grid import cells, parse_grid_flags
  from tests.helpers import small_config
  config = small_config()
  assert parse_grid_flags(config, ['objective.magnitude=1,10', 'objective.name=nce']) == {
      'objective.magnitude': [1.0, 10.0], 'objective.name': ['nce']}
  assert parse_grid_flags(config, ['train.batch_size=1e3']) == {'train.batch_size': [1000]}
  assert parse_value(config, 'model.hidden', '(8,8)') == (8, 8)
  assert cells({'a.x': [1, 2], 'b.y': ['u']}) == [{'a.x': 1, 'b.y': 'u'}, {'a.x': 2, 'b.y': 'u'}]
  with pytest.raises(ConfigError, match='config.objective.magnitud does not exist'):
    parse_grid_flags(config, ['objective.magnitud=1'])
  with pytest.raises(ConfigError, match="config.train.batch_size='1.5' is invalid; it holds int values"):
    parse_grid_flags(config, ['train.batch_size=1.5'])
  with pytest.raises(ConfigError, match='config.objective.magnitude=.x. is invalid; it holds float'):
    parse_grid_flags(config, ['objective.magnitude=1,x'])
  # Typed grids: a value of the wrong type, or a field the config lacks, fails naming it.
  with pytest.raises(ConfigError, match="config.objective.name=3; it holds str values"):
    run_sweep(config, {'objective.name': [3]}, seeds=1, workdir=str(tmp_path / 's'), executor=InProcess())
  # A bad cell anywhere in the grid fails before the first run starts.
  with pytest.raises(ConfigError, match='config.objective.magnitude=-1.0 is invalid'):
    run_sweep(config, {'objective.magnitude': [10.0, -1.0]}, seeds=1, workdir=str(tmp_path / 's'),
              executor=InProcess())
  assert not (tmp_path / 's').exists()


def test_a_sweep_over_num_steps_reuses_exactly_the_finished_runs(tmp_path):
  import json

  from experiments.sweep import run_sweep
  from tests.helpers import small_config
  config = small_config(num_steps=100)
  for steps in (100, 200):  # both cells have run 100 steps: the 200-step cell is not finished
    run_dir = tmp_path / f'num_steps={steps}' / 'seed_0'
    run_dir.mkdir(parents=True)
    (run_dir / 'summary.json').write_text(json.dumps({'steps': 100}))

  class Recorder:
    def execute(self, pending, log):
      self.pending = [r.cell['train.num_steps'] for r in pending]
      raise StopIteration  # recorded; no training

  recorder = Recorder()
  with pytest.raises(StopIteration):
    run_sweep(config, {'train.num_steps': [100, 200]}, seeds=1, workdir=str(tmp_path), executor=recorder,
              log=lambda _: None)
  assert recorder.pending == [200]


def test_a_run_that_diverged_is_reported_again_not_rerun(tmp_path):
  from experiments.sweep import RunFailed, run_sweep
  from tests.helpers import small_config
  config = small_config(num_steps=100)
  from experiments.sweep.grid import cell_dir
  diverged = tmp_path / cell_dir({'objective.name': 'nwj'}) / 'seed_0'
  diverged.mkdir(parents=True)
  (diverged / 'diverged.txt').write_text('non-finite train_loss at step 7\n')

  class Recorder:
    def execute(self, pending, log):
      self.pending = [r.cell['objective.name'] for r in pending]

  recorder = Recorder()
  with pytest.raises(RunFailed, match='diverged before .*Diverged: non-finite train_loss at step 7'):
    run_sweep(config, {'objective.name': ['nce', 'nwj']}, seeds=1, workdir=str(tmp_path), executor=recorder,
              log=lambda _: None)
  assert recorder.pending == ['nce']


def test_a_failing_run_stops_its_siblings_and_is_named(tmp_path):
  from experiments.sweep import Run, RunFailed, Subprocesses
  sleeper = Run({'objective.name': 'nce'}, 0, str(tmp_path / 'sleeper'), {})
  failing = Run({'objective.name': 'nwj'}, 0, str(tmp_path / 'failing'), {})

  class Scripted(Subprocesses):
    def command(self, item):
      script = ('import time; time.sleep(120)' if item is sleeper else
                'import sys; print("step 30: loss is nan"); sys.exit(3)')
      return [sys.executable, '-c', script]

  said = []
  with pytest.raises(RunFailed, match=r'run .*failing failed with exit code 3: step 30: loss is nan'):
    Scripted('unused.py', jobs=2).execute([sleeper, failing], said.append)
  assert f'sweep: stopping {sleeper.run_dir}' in said


def test_sigterm_to_a_sweep_stops_its_runs(tmp_path):
  import signal
  import textwrap
  import time
  pid_file = tmp_path / 'child.pid'
  run = f'import os, time; open({str(pid_file)!r}, "w").write(str(os.getpid())); time.sleep(120)'
  script = textwrap.dedent(f"""
      import sys
      from experiments.sweep import Run, Subprocesses
      class Sleeper(Subprocesses):
        def command(self, item):
          return [sys.executable, '-c', {run!r}]
      Sleeper('unused.py').execute([Run({{}}, 0, {str(tmp_path / 'run')!r}, {{}})], print)
  """)
  sweep = subprocess.Popen([sys.executable, '-c', script], cwd=REPO, stdout=subprocess.PIPE, text=True)
  deadline = time.time() + 60
  while not pid_file.exists() or not pid_file.read_text():
    assert time.time() < deadline, 'the run never started'
    time.sleep(0.1)
  child = int(pid_file.read_text())
  sweep.send_signal(signal.SIGTERM)
  out, _ = sweep.communicate(timeout=60)
  assert sweep.returncode != 0 and 'sweep: stopping' in out
  with pytest.raises(ProcessLookupError):  # the run was stopped with its sweep, not orphaned
    for _ in range(100):
      os.kill(child, 0)
      time.sleep(0.1)


@pytest.mark.slow
def test_compare_is_an_in_process_sweep_over_objectives(tmp_path):
  from experiments.sweep import InProcess, run_sweep
  from tests.helpers import small_config
  config = small_config(num_steps=20, eval_every=10, log_every=10, checkpoint_every=20)
  config.likelihood.num_samples = 0
  result = run_sweep(config, {'objective.name': ['nce', 'noisier_nce']}, seeds=2, workdir=str(tmp_path),
                     executor=InProcess(), log=lambda _: None)
  assert [c['objective.name'] for c in result.cells()] == ['nce', 'noisier_nce']
  assert [s['seed'] for s in result.cell(name='nce')] == [0, 1]  # seeds pair across cells
  assert set(result.by('name')) == {'nce', 'noisier_nce'}
  assert result.table.count('\n| ') == 5  # header, rule, truth and a row per objective
  for name in ('sweep.csv', 'sweep.md', 'sweep_curves.png'):
    assert (tmp_path / name).exists()


def test_cells_select_by_field_and_refuse_an_ambiguous_name():
  from experiments.sweep import Run, SweepResult
  from experiments.sweep.grid import cell_label
  runs = [Run({'model.name': 'mlp', 'objective.name': o, 'objective.magnitude': m}, s, '', {'seed': s})
          for o in ('nce', 'noisier_nce') for m in (1.0, 100.0) for s in (0, 1)]
  result = SweepResult(runs)
  assert len(result.cells(magnitude=100.0)) == 2
  with pytest.raises(KeyError, match='picks several cells'):
    result.by('magnitude')
  with pytest.raises(ValueError, match="'name' names model.name, objective.name"):
    result.cell(name='nce')
  assert cell_label(runs[0].cell) == 'model.name=mlp, objective.name=nce, magnitude=1'


def test_a_seed_override_is_the_first_seed_of_a_study_never_replaced():
  """``--override=seed=N`` starts a report's runs at seed N: the study takes it as its first seed,
  and a study given a seed among its overrides (which the sweep would overwrite) is refused."""
  from experiments.report.study import Study
  study = Study.of('cell', 'gaussian', {}, 2, {'seed': 3, 'train.num_steps': 10})
  assert study.first_seed == 3 and study.fields(False) == {'train.num_steps': 10, 'seed': 3}
  assert Study.of('cell', 'gaussian', {}, 2, {}).first_seed == 0
  with pytest.raises(ValueError, match='first_seed'):
    Study('cell', 'gaussian', {}, 2, {'seed': 3})
