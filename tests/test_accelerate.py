"""`accelerate launch` with two CPU processes trains the debug backbone like one process does.

Both runs train on the same global batch of 8 (two shards of 4 under two processes), are interrupted after their
step-10 checkpoint and resumed (tests/accelerate_train.py). Gradients averaged over two equal shard means equal the
gradient of the batch mean, so only the order of float sums differs (shard sums, gloo's all-reduce). Measured on a
2-core CPU after 20 steps: weights within 1.2e-7 (one float32 ulp at 1.0; the largest weights are about 1), losses
within 2.4e-7. The tolerance of 1e-5 leaves 100x room for other CPUs and kernels, and stays 1000x below what a real
mistake does: training each process on its own shard without averaging moves the weights by 2e-2 and the losses by
2e-2 (and skipping the split, which gives the same numbers, is caught by checking each process's share).
"""
import json, os, subprocess, sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

SCRIPT = Path(__file__).with_name('accelerate_train.py')
WEIGHT_TOL, LOSS_TOL = 1e-5, 1e-5

def launch_command(out: Path, processes: int) -> list[str]:
    "`accelerate launch` of the training script in `processes` CPU processes joined by gloo."
    # `--cpu` alone starts one process; `--multi_gpu` starts them through torchrun, and ACCELERATE_USE_CPU=1 makes
    # Accelerate join them on the CPU (gloo) instead of looking for GPUs
    return [sys.executable, '-m', 'accelerate.commands.accelerate_cli', 'launch', '--multi_gpu',
            '--num_processes', str(processes), '--num_machines', '1', '--mixed_precision', 'no',
            '--dynamo_backend', 'no', '--num_cpu_threads_per_process', '1', '--main_process_port', '0',
            str(SCRIPT), str(out)]

def _run(cmd: list[str]) -> subprocess.CompletedProcess:
    env = {**os.environ, 'ACCELERATE_USE_CPU': '1', 'OMP_NUM_THREADS': '1'}
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return done

def _result(out: Path) -> tuple[dict, dict]:
    return load_file(str(out/'backbone'/'model.safetensors')), json.loads((out/'backbone'/'metrics.json').read_text())

def _can_launch() -> str|None:
    "Why two CPU processes cannot be launched here (None: they can)."
    try: import accelerate  # noqa: F401
    except ImportError: return 'accelerate is not installed'
    if not torch.distributed.is_available() or not torch.distributed.is_gloo_available():
        return 'this torch build has no gloo backend for CPU processes'
    return None

@pytest.mark.skipif(_can_launch() is not None, reason=str(_can_launch()))
def test_two_processes_train_like_one(tmp_path):
    one, two = tmp_path/'one', tmp_path/'two'
    _run([sys.executable, str(SCRIPT), str(one)])
    launched = _run(launch_command(two, 2))
    assert launched.stdout.count('ok: process') == 2, launched.stdout
    w1, m1 = _result(one)
    w2, m2 = _result(two)
    assert (m1['processes'], m1['share']) == (1, 8) and (m2['processes'], m2['share']) == (2, 4)
    loss_gap = max(abs(a - b) for a, b in zip(m1['losses'], m2['losses']))
    weight_gap = max((w1[k] - w2[k]).abs().max().item() for k in w1)
    print(f'largest loss difference {loss_gap:.2e}, largest weight difference {weight_gap:.2e}')
    assert w1.keys() == w2.keys()
    assert loss_gap < LOSS_TOL, (m1['losses'], m2['losses'])
    assert weight_gap < WEIGHT_TOL
    # the main process wrote the stage once, nothing half-written is left, and the checkpoint is gone
    assert sorted(p.name for p in two.iterdir()) == ['backbone']
