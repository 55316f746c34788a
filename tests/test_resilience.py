"""Faults a long run meets: two processes instead of one, SIGKILL, corrupt checkpoints, a work
directory of another config. Each child process is stopped with SIGKILL if it outlives its
deadline (JAX catches SIGTERM)."""

import concurrent.futures
import json
import logging
import os
import random
import re
import signal
import socket
import subprocess
import sys
import time

import numpy as np
import pytest

from experiments.run.training import fit
from experiments.run.workdir import WorkdirConflict, open_workdir
from tests.helpers import leaves, small_config

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHORT_RUN = ['--config=experiments/configs/density_chasm.py', '--config.train.batch_size=64',
             '--config.train.steps_per_dispatch=10',
             '--config.train.sync_every=10', '--config.train.log_every=20', '--config.train.eval_every=20',
             '--config.likelihood.num_samples=0', '--config.data.num_test=1000']


def _env(devices):
  flags = (f'--xla_force_host_platform_device_count={devices} '
           '--xla_cpu_collective_call_terminate_timeout_seconds=6')
  return {**os.environ, 'JAX_PLATFORMS': 'cpu', 'XLA_FLAGS': flags}


def _main(workdir, *flags, devices=1):
  command = [sys.executable, '-m', 'experiments.main', *SHORT_RUN, *flags, f'--workdir={workdir}']
  return subprocess.Popen(command, cwd=REPO, env=_env(devices), stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT)


def _finish(children, timeout=240):
  """Waits for every child (draining all their pipes at once: one blocked on a full pipe would
  stall the others' collectives); SIGKILLs them all past ``timeout``; returns their outputs. A
  failure shows every child's output: a hang in one is often another's crash."""
  def drain(child):
    try:
      return child.communicate(timeout=timeout)[0]
    except subprocess.TimeoutExpired:
      for each in children:
        each.kill()
      return child.communicate()[0]  # what it wrote before the kill

  with concurrent.futures.ThreadPoolExecutor(len(children)) as pool:
    outputs = [out.decode() for out in pool.map(drain, children)]
  if any(child.returncode for child in children):
    raise AssertionError('\n'.join(f'--- process {i} (exit {child.returncode}):\n{output[-3000:]}'
                                    for i, (child, output) in enumerate(zip(children, outputs))))
  return outputs


def _final_state(workdir, num_steps, checkpoint_every):
  """The last checkpoint of ``workdir``, restored here (nothing left to train)."""
  config = small_config(num_steps=num_steps, checkpoint_every=checkpoint_every, log_every=20, eval_every=20)
  config.likelihood.num_samples = 0
  state, _ = fit(config, str(workdir))
  return state


def _free_port():
  with socket.socket() as s:
    s.bind(('127.0.0.1', 0))
    return s.getsockname()[1]


@pytest.mark.slow
@pytest.mark.multiprocess
def test_two_processes_of_two_devices_match_one_process_of_four(tmp_path):
  steps = ['--config.train.num_steps=60', '--config.train.checkpoint_every=60']
  address = f'127.0.0.1:{_free_port()}'
  pair = [_main(tmp_path / 'two', *steps, '--distributed', f'--coordinator_address={address}',
                '--num_processes=2', f'--process_id={i}', devices=2) for i in range(2)]
  outputs = _finish(pair)
  assert "'steps': 60" in outputs[0]
  _finish([_main(tmp_path / 'one', *steps, devices=4)])
  two, one = _final_state(tmp_path / 'two', 60, 60), _final_state(tmp_path / 'one', 60, 60)
  for a, b in zip(leaves(two), leaves(one)):  # the same global batch; sums may differ in order
    np.testing.assert_allclose(a, b, rtol=2e-5, atol=1e-6)
  # Metrics and the summary come from process 0 alone: one train record per logged step.
  records = [json.loads(line) for line in (tmp_path / 'two' / 'metrics.jsonl').read_text().splitlines()]
  assert [r['step'] for r in records if 'train_loss' in r] == [20, 40, 60]
  assert (tmp_path / 'two' / 'summary.json').exists()


@pytest.mark.slow
def test_sigkill_at_a_random_step_then_rerun_ends_bit_identical(tmp_path):
  steps = ['--config.train.num_steps=300', '--config.train.checkpoint_every=20']
  kill_after = random.Random().randrange(40, 240, 20)
  cache = f'--compilation_cache={tmp_path / "xla"}'  # the rerun loads what the killed run compiled
  child = _main(tmp_path / 'killed', *steps, cache)
  checkpoints = tmp_path / 'killed' / 'checkpoints'
  deadline = time.time() + 120
  try:
    while not checkpoints.exists() or max([int(p) for p in os.listdir(checkpoints) if p.isdigit()],
                                           default=0) < kill_after:
      assert time.time() < deadline and child.poll() is None, f'no checkpoint {kill_after}'
      time.sleep(0.05)
    time.sleep(random.random() * 0.3)  # mid-step, maybe mid-save
  finally:
    child.kill()  # SIGKILL: no handler runs
  child.wait()
  assert child.returncode == -9
  assert any(name.endswith('-cache') for name in os.listdir(tmp_path / 'xla'))
  # Unbroken and uncached: a cached executable must compute what a fresh compile does.
  _finish([_main(tmp_path / 'killed', *steps, cache),
           _main(tmp_path / 'unbroken', *steps, '--compilation_cache=')])
  killed = _final_state(tmp_path / 'killed', 300, 20)
  unbroken = _final_state(tmp_path / 'unbroken', 300, 20)
  assert int(killed.step) == 300, kill_after
  for a, b in zip(leaves(killed), leaves(unbroken)):
    np.testing.assert_array_equal(a, b, err_msg=f'killed after checkpoint {kill_after}')


def _truncate(step_dir):
  for root, _, files in os.walk(step_dir / 'default'):
    for name in files:
      path = os.path.join(root, name)
      with open(path, 'r+b') as f:
        f.truncate(os.path.getsize(path) // 2)


def _garble(step_dir):
  for root, _, files in os.walk(step_dir / 'default'):
    for name in files:
      path = os.path.join(root, name)
      with open(path, 'wb') as f:
        f.write(np.random.default_rng(0).bytes(max(os.path.getsize(path), 16)))


@pytest.mark.parametrize('damage', [_truncate, pytest.param(_garble, marks=pytest.mark.slow)],
                         ids=['truncated', 'garbled'])
def test_unreadable_latest_checkpoint_falls_back_to_the_previous_one(tmp_path, damage, caplog):
  unbroken, _ = fit(small_config(num_steps=100), str(tmp_path / 'unbroken'))
  fit(small_config(num_steps=100), str(tmp_path / 'run'))
  damage(tmp_path / 'run' / 'checkpoints' / '100')
  with caplog.at_level(logging.WARNING):
    resumed, _ = fit(small_config(num_steps=100), str(tmp_path / 'run'))
  assert 'checkpoint step 100' in caplog.text and 'unreadable' in caplog.text
  assert len(os.listdir(tmp_path / 'run' / 'checkpoints.unreadable')) == 1
  assert int(resumed.step) == 100  # retrained 50..100 from the checkpoint at 50
  for a, b in zip(leaves(unbroken), leaves(resumed)):
    np.testing.assert_array_equal(a, b)


def claim(workdir, config, force=False):
  open_workdir(config, workdir, num_devices=4, force=force).release()


def test_a_workdir_of_another_config_is_refused_unless_forced(tmp_path):
  config = small_config()
  claim(str(tmp_path), config)
  longer = small_config(num_steps=500)  # how long to run may change on resume
  claim(str(tmp_path), longer)
  other = small_config()
  other.objective.magnitude = 1000.0
  with pytest.raises(WorkdirConflict, match=r'objective.magnitude: 100.0 -> 1000.0'):
    claim(str(tmp_path), other)
  claim(str(tmp_path), other, force=True)
  claim(str(tmp_path), other)  # recorded: now it is this config's directory
  scheduled = small_config()
  scheduled.objective.magnitude_schedule = 'cosine'
  claim(str(tmp_path / 'scheduled'), scheduled)
  scheduled.train.num_steps = 500  # M(t) spans the run: more steps is another run
  with pytest.raises(WorkdirConflict, match=r'train.num_steps: 100 -> 500'):
    claim(str(tmp_path / 'scheduled'), scheduled)


def test_another_process_reading_the_config_while_process_0_writes_it_sees_it_whole(tmp_path, monkeypatch):
  """Process 1 checks the recorded config (writing nothing) while process 0 records it: read
  mid-write, a truncated file would crash process 1 and leave process 0 at its first barrier."""
  config, workdir = small_config(), str(tmp_path)
  claim(workdir, config)
  seen, fdopen = [], os.fdopen

  class HalfWritten:  # process 0's file, read by process 1 when half of it is written
    def __init__(self, *args, **kwargs):
      self.file = fdopen(*args, **kwargs)

    def __enter__(self):
      return self

    def __exit__(self, *exc):
      self.file.close()

    def write(self, text):
      self.file.write(text[:len(text) // 2])
      self.file.flush()
      seen.append(open_workdir(config, workdir, num_devices=4, write=False))  # process 1
      self.file.write(text[len(text) // 2:])

  monkeypatch.setattr(os, 'fdopen', HalfWritten)
  claim(workdir, config)  # process 0, resuming
  assert seen == [None]


@pytest.mark.slow
def test_main_refuses_another_config_before_writing_anything(tmp_path):
  workdir = tmp_path / 'run'
  _finish([_main(workdir, '--config.train.num_steps=20', '--config.train.checkpoint_every=20')])
  before = sorted(os.listdir(workdir))
  refused = _main(workdir, '--config.train.num_steps=20', '--config.objective.magnitude=7')
  output = refused.communicate(timeout=120)[0].decode()
  assert refused.returncode == 1 and 'objective.magnitude: 100.0 -> 7.0' in output, output[-2000:]
  assert sorted(os.listdir(workdir)) == before
  forced = _main(workdir, '--config.train.num_steps=40', '--config.train.checkpoint_every=20',
                 '--config.objective.magnitude=7', '--force')
  assert "'steps': 40" in _finish([forced])[0]


def _launch(workdir, *flags):
  """``launch/multiprocess_cpu.sh``: two processes of two fake devices each."""
  env = {**_env(2), 'NUM_PROCESSES': '2', 'DEVICES_PER_PROCESS': '2', 'PORT': str(_free_port()),
         'PYTHON': sys.executable}
  command = ['bash', os.path.join(REPO, 'launch', 'multiprocess_cpu.sh'), *SHORT_RUN, *flags,
             f'--workdir={workdir}']
  return subprocess.Popen(command, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


@pytest.mark.slow
@pytest.mark.multiprocess
def test_sigterm_to_one_of_two_processes_stops_both_at_the_same_step(tmp_path):
  workdir = tmp_path / 'preempted'
  launcher = _launch(workdir, '--config.train.num_steps=1000000', '--config.train.checkpoint_every=0')
  try:
    deadline = time.time() + 120
    while not (workdir / 'metrics.jsonl').exists() or not (workdir / 'metrics.jsonl').stat().st_size:
      assert time.time() < deadline and launcher.poll() is None, launcher.stdout.read().decode()[-3000:]
      time.sleep(0.2)
    os.kill(int((workdir / 'process_1.pid').read_text()), signal.SIGTERM)  # process 1 only
    output = launcher.communicate(timeout=120)[0].decode()
  finally:
    launcher.kill()
  assert launcher.returncode == 143, output[-3000:]
  stops = [re.findall(r'SIGTERM at step (\d+)', (workdir / f'process_{i}.log').read_text()) for i in (0, 1)]
  assert stops[0] and stops[0] == stops[1], stops  # both saved the same step
  step = int(stops[0][0])
  finish = [f'--config.train.num_steps={step + 40}', '--config.train.checkpoint_every=0']
  for run_dir in (workdir, tmp_path / 'unbroken'):
    launched = _launch(run_dir, *finish)
    output = launched.communicate(timeout=240)[0].decode()
    assert launched.returncode == 0, output[-3000:]
  resumed, unbroken = (_final_state(d, step + 40, 0) for d in (workdir, tmp_path / 'unbroken'))
  for a, b in zip(leaves(resumed), leaves(unbroken)):
    np.testing.assert_array_equal(a, b)


def test_a_second_run_in_a_locked_workdir_is_refused_naming_the_holder(tmp_path):
  config = small_config()
  lock = open_workdir(config, str(tmp_path), num_devices=4)
  try:
    with pytest.raises(WorkdirConflict, match=rf'is in use by pid {os.getpid()} on {socket.gethostname()}'):
      open_workdir(config, str(tmp_path), num_devices=4)
  finally:
    lock.release()
  open_workdir(config, str(tmp_path), num_devices=4).release()  # released: free again


def test_the_lock_of_a_killed_process_is_taken_over(tmp_path):
  holder = subprocess.Popen(
      [sys.executable, '-c', 'import sys, time; from experiments.run.workdir import WorkdirLock; '
       'WorkdirLock(sys.argv[1]).acquire(); print("held", flush=True); time.sleep(600)', str(tmp_path)],
      cwd=REPO, stdout=subprocess.PIPE)
  try:
    assert holder.stdout.readline().decode().strip() == 'held'
    with pytest.raises(WorkdirConflict, match=f'pid {holder.pid}'):
      open_workdir(small_config(), str(tmp_path), num_devices=4)
  finally:
    holder.kill()
    holder.wait()
  open_workdir(small_config(), str(tmp_path), num_devices=4).release()  # SIGKILLed: taken over


@pytest.mark.parametrize('flags, message', [
    (['--config.objective.magnitud=5'],
     "Invalid config override --config.objective.magnitud: the config has no field 'magnitud'. "
     'Did you mean "magnitude"?'),
    (['--config=experiments/configs/no_such_task.py'], 'Invalid --config: [Errno 2] No such file'),
    (['--workdir=README.md'], '--workdir=README.md is a file, not a directory'),
])
def test_bad_flags_and_workdirs_fail_in_one_line(flags, message):
  command = [sys.executable, '-m', 'experiments.main', *flags]
  done = subprocess.run(command, cwd=REPO, env=_env(1), capture_output=True, text=True, timeout=120)
  assert done.returncode == 1
  lines = done.stderr.strip().splitlines()
  assert len(lines) == 1 and lines[0].startswith(message), done.stderr[-2000:]
