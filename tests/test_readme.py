"The README is the front door: its two quick-start commands, the index notebook that mirrors it, and CI that runs its test command."
import json, re, subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT/'README.md').read_text()

def _command(marker):
    m = re.search(rf'<!-- {marker} -->\n```bash\n(.+?)\n```', README)
    assert m, f'README.md has no {marker} block'
    return m.group(1)

def test_quick_start_has_two_commands():
    assert _command('main-command') == 'pip install -e . && ttm_pref run --scale mini --out runs/mini'
    assert _command('test-command').startswith('pip install -e ".[dev]" && ')

def test_index_notebook_mirrors_readme():
    nb = json.loads((ROOT/'nbs'/'index.ipynb').read_text())
    text = '\n'.join(''.join(c['source']) for c in nb['cells'] if c['cell_type'] == 'markdown')
    for marker in ('main-command', 'test-command'): assert _command(marker) in text
    assert [l for l in README.splitlines() if l.startswith('## ')] == [l for l in text.splitlines() if l.startswith('## ')]

def test_ci_runs_the_readme_test_command():
    extracted = subprocess.run(['awk', '/<!-- test-command -->/{f=1; next} f && /^```bash/{g=1; next} g && /^```/{exit} g',
                                str(ROOT/'README.md')], capture_output=True, text=True, check=True).stdout.strip()
    assert extracted == _command('test-command')
    assert "awk '/<!-- test-command -->/" in (ROOT/'.ci'/'run').read_text()
