"`ttm_pref run --scale paper` end to end on the paper-tiny stand-ins (every asset in its released format, tiny, random weights): every stage, the report without a listener panel, resumption, and one line per bad asset."
import csv, json
from pathlib import Path
import pytest
import torch
from conftest import ttm
from ttm_pref.core import UserError
from ttm_pref.assets import ASSETS, clap_code
from ttm_pref.paper_world import paper_assets_help
from ttm_pref.pipeline import write_paper_tiny, CHAIN, MINI_WORLD
from ttm_pref.eval import NO_PANEL

ROOT = Path(__file__).resolve().parents[1]

@pytest.fixture(scope='module')
def tiny(tmp_path_factory):
    "The stand-in assets, their variables and the rehearsal's run config."
    try: clap_code()
    except UserError as e: pytest.skip(str(e))
    root = tmp_path_factory.mktemp('paper_tiny')
    n = torch.get_num_threads(); torch.set_num_threads(1)
    try: env = write_paper_tiny(root/'assets')
    finally: torch.set_num_threads(n)
    return root, env

@pytest.fixture
def paper_env(tiny, monkeypatch):
    root, env = tiny
    monkeypatch.setenv('OMP_NUM_THREADS', '1')
    for k in ASSETS: monkeypatch.delenv(k, raising=False)
    for k, v in env.items(): monkeypatch.setenv(k, v)
    return root

def _statuses(out): return {r['stage']: r['status'] for r in json.loads((out/'report.json').read_text())['stages']}

def test_rehearsal_runs_every_stage_and_writes_the_report(paper_env):
    out, config = paper_env/'run', paper_env/'assets'/'run_config.json'
    res = ttm('run', '--scale', 'paper', '--config', config, '--out', out)
    assert res.returncode == 0, res.stderr[-3000:]
    assert 'GPU-hours' in res.stdout and 'The disk it needs' in res.stdout  # the costs come first
    status = _statuses(out)
    assert {s.name for s in CHAIN if s.scales == MINI_WORLD} == {k for k, v in status.items() if v == 'not at this scale'}
    assert all(v == 'built' for k, v in status.items() if v != 'not at this scale')
    claims = list(csv.DictReader(open(out/'report'/'claims.csv')))
    assert len(claims) == 9 and all(c['listener'] == NO_PANEL for c in claims)
    rows = list(csv.DictReader(open(out/'report'/'decomposition.csv')))
    assert [r['stage'] for r in rows][:5] == ['baseline', 'score_sft', 'expert_iter', 'crossload', 'crpo']
    assert all(r['listener_score'] == '' and r['reward'] != '' and r['fad_clap'] != '' for r in rows)  # absent, never a number
    assert 'There is no listener panel at this scale' in (out/'report'/'index.html').read_text()
    reward = json.loads((out/'reward'/'metrics.json').read_text())
    assert reward['source'] == 'TuneJury' and reward['n_train_clips'] == 8
    again = ttm('run', '--scale', 'paper', '--out', out)  # the run directory keeps its config: resumed without --config
    assert again.returncode == 0 and '0 stage(s) built' in again.stdout, again.stderr[-2000:]
    (paper_env/'other.json').write_text('{"crpo": {"steps": 3}}')
    other = ttm('run', '--scale', 'paper', '--config', paper_env/'other.json', '--out', out)
    assert other.returncode == 2 and 'another run config' in other.stderr and other.stderr.count('\n') == 1, other.stderr
    sub = ttm('reproduce', '--scale', 'paper', '--run', out, '--seed', 55, '--out', paper_env/'sub55')
    assert sub.returncode == 0 and len(list((paper_env/'sub55').glob('*.wav'))) == 4, sub.stderr[-2000:]

def test_every_bad_asset_is_one_line_exit_2_nothing_written(paper_env, tmp_path, monkeypatch):
    monkeypatch.delenv('TTM_PREF_MERT')
    torch.save({'weights': torch.zeros(2)}, tmp_path/'not_tunejury.pt')
    monkeypatch.setenv('TTM_PREF_TUNEJURY', str(tmp_path/'not_tunejury.pt'))
    (tmp_path/'jamendo').mkdir(); (tmp_path/'jamendo'/'jamendo_train.tsv').write_text('id\tcaption\n1\ta song\n')
    monkeypatch.setenv('TTM_PREF_JAMENDO', str(tmp_path/'jamendo'))
    res = ttm('run', '--scale', 'paper', '--out', tmp_path/'run', '--config', paper_env/'assets'/'run_config.json')
    lines = res.stderr.splitlines()
    assert res.returncode == 2 and len(lines) == 3 and all(l.startswith('ttm_pref: error: ') for l in lines), res.stderr
    assert 'TTM_PREF_MERT is unset' in lines[0]
    assert 'TTM_PREF_TUNEJURY' in lines[1] and 'holds no TuneJury reward head' in lines[1]
    assert 'TTM_PREF_JAMENDO' in lines[2] and 'line 2 names' in lines[2]
    assert not (tmp_path/'run').exists()

@pytest.mark.parametrize('config,message', [('{"crpo": {"betta": 1}}', "unknown field(s) ['betta']"), ('{"crpo": ', 'is not JSON')])
def test_a_bad_run_config_is_one_line(tmp_path, config, message):
    (tmp_path/'c.json').write_text(config)
    res = ttm('run', '--scale', 'debug', '--config', tmp_path/'c.json', '--out', tmp_path/'run')
    assert res.returncode == 2 and res.stderr.count('\n') == 1 and message in res.stderr, res.stderr
    assert not (tmp_path/'run').exists()

def test_help_and_readme_list_every_asset_in_fetch_order():
    res = ttm('run', '--scale', 'paper', '--help')
    assert res.returncode == 0 and paper_assets_help() in res.stdout
    readme = (ROOT/'README.md').read_text()
    section = readme[readme.index('## The paper scale'):]
    at = [section.index(f'`{env}`') for env in ASSETS]
    assert at == sorted(at)
