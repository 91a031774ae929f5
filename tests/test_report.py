"The chain's report and the commands around it at the debug scale: postproc, eval, reproduce, the paper-scale check, the listening page in a browser."
import csv, shutil, zipfile
from pathlib import Path
import numpy as np
import pytest
import soundfile as sf
from conftest import ttm

COLUMNS = ['stage', 'fad_clap', 'fad_clap_ci_low', 'fad_clap_ci_high', 'clap_score', 'reward', 'listener_score', 'n']
ROWS = ['baseline', 'score_sft', 'expert_iter', 'crossload', 'crpo', 'submission_seed42', 'submission_seed55']

def one_line_error(res, message):
    assert res.returncode == 2, (res.returncode, res.stderr)
    assert res.stderr.strip().count('\n') == 0 and message in res.stderr, res.stderr

def test_report_holds_the_decomposition_table(debug_run):
    out, first = debug_run
    report = out/'report'
    with open(report/'decomposition.csv') as f: rows = list(csv.DictReader(f))
    assert [r['stage'] for r in rows] == ROWS
    assert list(rows[0])[:len(COLUMNS)] == COLUMNS and {'p_clap_score', 'p_reward', 'p_listener_score'} <= set(rows[0])
    assert rows[0]['p_reward'] == '' and all(r['p_reward'] != '' for r in rows[1:])
    assert rows[5]['reward'] == rows[4]['reward']  # submission 1 is Row 4's clips
    md = (report/'report.md').read_text()
    assert 'Debug scale' in md and 'Wall time of each stage' in md and '![the four panels](figure.png)' in md
    for stage in ('world', 'baseline', 'crpo', 'postproc', 'eval'): assert f'| {stage} |' in md
    assert (report/'figure.png').stat().st_size > 10_000
    assert '== eval: built in' in first.stdout

def _wavs(folder, n, sr=16000, seconds=1.0):
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for i in range(n): sf.write(folder/f'{i}.wav', (0.3 * rng.standard_normal(int(sr * seconds))).astype(np.float32), sr, subtype='PCM_16')

def test_postproc_command_is_resumable_and_names_bad_files(debug_run, tmp_path):
    out, _ = debug_run
    _wavs(tmp_path/'in', 3)
    res = ttm('postproc', tmp_path/'in', tmp_path/'out', '--run', out, '--scale', 'debug')
    assert res.returncode == 0, res.stderr
    assert sorted(p.name for p in (tmp_path/'out').iterdir()) == ['0.wav', '1.wav', '2.wav']
    again = ttm('postproc', tmp_path/'in', tmp_path/'out', '--run', out, '--scale', 'debug')
    assert again.returncode == 0 and '3 already there' in again.stdout
    sf.write(tmp_path/'in'/'nan.wav', np.full(8000, np.nan, np.float32), 16000, subtype='FLOAT')
    sf.write(tmp_path/'in'/'rate.wav', np.zeros(8000, np.float32), 22050)
    (tmp_path/'in'/'text.wav').write_text('not audio')
    _wavs(tmp_path/'in2', 1); shutil.copy(tmp_path/'in2'/'0.wav', tmp_path/'in'/'good.wav')
    bad = ttm('postproc', tmp_path/'in', tmp_path/'out', '--run', out, '--scale', 'debug')
    one_line_error(bad, '3 of 7 file(s) failed (1 done, 3 already there)')
    for name in ('nan.wav', 'rate.wav', 'text.wav'): assert name in bad.stderr
    assert sorted(p.name for p in (tmp_path/'out').iterdir()) == ['0.wav', '1.wav', '2.wav', 'good.wav']  # nothing half-written
    one_line_error(ttm('postproc', tmp_path/'nowhere', tmp_path/'o2', '--run', out, '--scale', 'debug'), 'does not exist')
    one_line_error(ttm('postproc', tmp_path/'in', tmp_path/'o3', '--run', tmp_path/'norun', '--scale', 'debug'), 'does not exist')

def test_reproduce_then_eval_gives_the_table_row(debug_run, tmp_path):
    out, _ = debug_run
    sub = tmp_path/'sub'
    res = ttm('reproduce', '--run', out, '--scale', 'debug', '--seed', 42, '--out', sub)
    assert res.returncode == 0, res.stderr
    with zipfile.ZipFile(sub.with_suffix('.zip')) as z: names = z.namelist()
    assert 'sub/prompts.csv' in names and len([n for n in names if n.endswith('.wav')]) == len(list(sub.glob('*.wav'))) == 16
    one_line_error(ttm('reproduce', '--run', out, '--scale', 'debug', '--out', sub), 'already exists')
    res = ttm('eval', sub, '--prompts', sub/'prompts.csv', '--run', out, '--scale', 'debug', '--json', tmp_path/'m.json')
    assert res.returncode == 0, res.stderr
    import json
    m = json.loads((tmp_path/'m.json').read_text())
    with open(out/'report'/'decomposition.csv') as f: row = [r for r in csv.DictReader(f) if r['stage'] == 'submission_seed42'][0]
    # wav readers divide 16-bit samples by 32768, the run's files by 32767: a 3e-5 gain that moves FAD-CLAP by ~1.5e-4 on 16 clips,
    # and the reward (through its MFCC and tuning features of the quantised clips) by a few 1e-4
    assert abs(m['reward'] - float(row['reward'])) < 1e-3 and abs(m['fad_clap'] - float(row['fad_clap'])) < 5e-4
    assert len((tmp_path/'m.csv').read_text().splitlines()) == 17

def test_eval_user_errors_are_one_line_and_write_nothing(debug_run, tmp_path):
    out, _ = debug_run
    _wavs(tmp_path/'clips', 3)
    good = tmp_path/'p.csv'; good.write_text('id,caption\n0,a calm piano piece\n1,a dance track\n2,a jazz tune\n')
    def ev(*args): return ttm('eval', *args, '--run', out, '--scale', 'debug', '--json', tmp_path/'m.json')
    one_line_error(ev(tmp_path/'none', '--prompts', good), 'does not exist')
    bad = tmp_path/'bad.csv'; bad.write_text('id,text\n0,a calm piano piece\n')
    one_line_error(ev(tmp_path/'clips', '--prompts', bad), 'has no column caption')
    more = tmp_path/'more.csv'; more.write_text('id,caption\n0,a\n1,b\n7,c\n')
    one_line_error(ev(tmp_path/'clips', '--prompts', more), '1 prompt id(s) have no wav')
    sf.write(tmp_path/'clips'/'2.wav', np.full(16000, np.nan, np.float32), 16000, subtype='FLOAT')
    one_line_error(ev(tmp_path/'clips', '--prompts', good), 'non-finite')
    assert not (tmp_path/'m.json').exists() and not (tmp_path/'m.csv').exists()

def test_paper_scale_stops_at_once_naming_what_is_missing(tmp_path):
    from ttm_pref.assets import ASSETS
    res = ttm('run', '--scale', 'paper', '--out', tmp_path/'paper')
    lines = res.stderr.splitlines()
    assert res.returncode == 2 and len(lines) == sum(not a.optional for a in ASSETS.values()), res.stderr  # one line per missing file
    assert all(l.startswith('ttm_pref: error: ') for l in lines) and any('LAION-CLAP music checkpoint' in l for l in lines)
    assert not (tmp_path/'paper').exists()
    assert 'GPU-hours' in res.stdout and '| score_sft |' in res.stdout  # what the chain would cost comes first

def _browser():
    chromium = shutil.which('chromium') or shutil.which('chromium-browser')
    if chromium is None: pytest.skip("no Chromium on this machine (Debian's `chromium` package; .ci/run installs it)")
    try: from playwright.sync_api import sync_playwright
    except ImportError: pytest.skip('playwright is not installed (it is in the dev extra)')
    return chromium, sync_playwright

def test_listening_page_loads_in_a_browser(debug_run):
    chromium, sync_playwright = _browser()
    page_path = (debug_run[0]/'report'/'index.html').resolve()
    errors, requests = [], []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=['--no-sandbox', '--disable-gpu', '--disable-background-networking',
                                                                   '--disable-component-update', '--disable-sync', '--no-first-run'])
        page = browser.new_page()
        page.on('console', lambda m: errors.append(m.text) if m.type == 'error' else None)
        page.on('pageerror', lambda e: errors.append(str(e)))
        page.on('request', lambda r: requests.append(r.url))
        page.goto(page_path.as_uri())
        page.wait_for_function('Array.from(document.querySelectorAll("audio")).every(a => a.readyState >= 1 || a.error)', timeout=30_000)
        audio = page.evaluate('Array.from(document.querySelectorAll("audio")).map(a => [a.src, a.duration, a.error && a.error.code])')
        img = page.evaluate('Array.from(document.images).map(i => [i.src, i.complete, i.naturalWidth])')
        browser.close()
    assert len(audio) == 11
    for src, duration, error in audio: assert error is None and duration > 0, (src, duration, error)
    assert img and all(complete and width > 0 for _, complete, width in img), img
    assert errors == [], errors
    assert all(u.startswith('file://') for u in requests), [u for u in requests if not u.startswith('file://')]
