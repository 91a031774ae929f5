"Shared fixtures: the `ttm_pref` command, and one debug-scale chain that every test file reads from."
import subprocess
import pytest

def ttm(*args, cwd=None):
    "Run the console script; its CompletedProcess (text output)."
    return subprocess.run(['ttm_pref', *map(str, args)], capture_output=True, text=True, cwd=cwd, timeout=900)

@pytest.fixture(scope='session')
def debug_run(tmp_path_factory):
    "The whole chain at debug scale, built once per test session: (run directory, the first call's result)."
    out = tmp_path_factory.mktemp('chain')/'run'
    first = ttm('run', '--scale', 'debug', '--out', out)
    assert first.returncode == 0, first.stderr
    return out, first
