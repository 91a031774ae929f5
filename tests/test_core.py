"Run-directory guarantees that need a real process: a stage killed mid-write leaves nothing half-written."
import signal, subprocess, sys, textwrap, time
from pathlib import Path

from ttm_pref.core import RunDir

WRITER = textwrap.dedent('''
    import sys, time, torch
    from dataclasses import dataclass
    from ttm_pref.core import RunDir, StageConfig, register_config, make_config, run_stage

    @register_config('killtest')
    @dataclass
    class KillConfig(StageConfig): width: int = 4

    def slow_extra(folder):
        (folder/'half.bin').write_bytes(b'x' * 1000)
        print('writing', flush=True)
        time.sleep(60)

    run = RunDir(sys.argv[1])
    cfg = make_config('killtest', 'debug')
    build = lambda: ({'w': torch.randn(512, 512)}, cfg, {'loss': 1.0})
    run_stage(run, 'victim', build, write_extra=slow_extra)
''')

def _kill_mid_write(root: Path):
    proc = subprocess.Popen([sys.executable, '-c', WRITER, str(root)], stdout=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    line = ''
    while time.time() < deadline and 'writing' not in line: line = proc.stdout.readline()
    assert 'writing' in line, 'the writer never reached the middle of its write'
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL

def test_killed_stage_leaves_no_artifact(tmp_path):
    root = tmp_path/'run'
    _kill_mid_write(root)
    # the stage's folder never appeared: only a hidden temporary sibling may remain
    assert not (root/'victim').exists()
    assert all(p.name.startswith('.victim.partial-') for p in root.iterdir())
    run = RunDir(root)  # reopening sweeps the temporary folder away
    assert not run.is_complete('victim')
    assert list(root.iterdir()) == []

def test_killed_stage_is_rebuilt_on_rerun(tmp_path):
    root = tmp_path/'run'
    _kill_mid_write(root)
    import torch
    from ttm_pref.core import run_stage, make_config
    import ttm_pref.core as core
    from dataclasses import dataclass
    @core.register_config('killtest2')
    @dataclass
    class C(core.StageConfig): width: int = 4
    run = RunDir(root)
    w, cfg, m = run_stage(run, 'victim', lambda: ({'w': torch.ones(2)}, make_config('killtest2', 'debug'), {'ok': 1}))
    assert run.is_complete('victim') and m['ok'] == 1
    assert sorted(p.name for p in (root/'victim').iterdir()) == ['config.json', 'metrics.json', 'model.safetensors']
