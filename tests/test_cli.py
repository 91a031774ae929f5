"The `ttm_pref` console script end to end at the debug scale: the chain, its resumption, inference and user errors."
import csv, json
from pathlib import Path
import pytest
from conftest import ttm

def _statuses(out):
    return {r['stage']: r['status'] for r in json.loads((out/'report.json').read_text())['stages']}

def test_help_lists_the_eight_subcommands():
    res = ttm('--help')
    assert res.returncode == 0
    for cmd in ('run', 'params', 'infer', 'postproc', 'eval', 'reproduce', 'train', 'bench'): assert cmd in res.stdout

def test_chain_builds_then_skips_everything(debug_run):
    out, _ = debug_run
    built = _statuses(out)
    landed = [s for s, status in built.items() if status != 'not built yet']
    assert {'world', 'clap', 'listeners', 'baseline'} <= set(landed)
    assert all(built[s] == 'built' for s in landed)
    again = ttm('run', '--scale', 'debug', '--out', out)
    assert again.returncode == 0, again.stderr
    assert all(_statuses(out)[s] == 'skipped' for s in landed)
    assert '0 stage(s) built' in again.stdout
    assert (out/'report.md').read_text().startswith('# ttm_pref run at the `debug` scale')

def test_infer_writes_one_wav_per_prompt_deterministically(debug_run, tmp_path):
    import soundfile as sf
    out, _ = debug_run
    csv = tmp_path/'prompts.csv'
    csv.write_text('id,caption\ncalm,A calm piano piece with soft strings\ndance,"An energetic dance track, driving drums"\n')
    for folder in ('a', 'b'):
        res = ttm('infer', '--run', out, '--stage', 'baseline', '--prompts', csv, '--out', tmp_path/folder, '--seed', 42)
        assert res.returncode == 0, res.stderr
    assert sorted(p.name for p in (tmp_path/'a').iterdir()) == ['calm.wav', 'dance.wav']
    for name in ('calm.wav', 'dance.wav'): assert (tmp_path/'a'/name).read_bytes() == (tmp_path/'b'/name).read_bytes()
    audio, sr = sf.read(tmp_path/'a'/'calm.wav')
    assert sr == 16000 and audio.ndim == 1 and len(audio) == 16000
    noid = tmp_path/'noid.csv'; noid.write_text('caption\nA calm piano piece\n')
    assert ttm('infer', '--run', out, '--prompts', noid, '--out', tmp_path/'c').returncode == 0
    assert [p.name for p in (tmp_path/'c').iterdir()] == ['0.wav']

@pytest.mark.parametrize('content,stage,message', [
    ('caption\nA calm piano piece\n', 'no_such_stage', "unknown stage 'no_such_stage'"),
    ('caption\nA calm piano piece\n', 'postproc', "stage 'postproc' does not generate audio"),
])
def test_infer_user_errors_write_nothing(debug_run, tmp_path, content, stage, message):
    out, _ = debug_run
    csv = tmp_path/'p.csv'; csv.write_text(content)
    res = ttm('infer', '--run', out, '--stage', stage, '--prompts', csv, '--out', tmp_path/'wav')
    assert res.returncode == 2
    assert res.stderr.strip().count('\n') == 0 and message in res.stderr, res.stderr
    assert not (tmp_path/'wav').exists()

# --- prompt CSVs, read strictly before anything is loaded or written (no trained run needed)

UNCLOSED = 'id,caption\na,"A calm piano ballad\nb,Energetic rock with drums\n'

def test_unclosed_quote_is_one_line_exit_2_and_writes_nothing(tmp_path):
    csv = tmp_path/'prompts.csv'; csv.write_text(UNCLOSED)
    (tmp_path/'run').mkdir()  # a run folder that exists: the prompts are read before it is looked at
    res = ttm('infer', '--run', tmp_path/'run', '--prompts', csv, '--out', tmp_path/'wav', cwd=tmp_path)  # messages name files from here
    assert res.returncode == 2, res.stderr
    assert res.stderr == 'ttm_pref: error: prompts.csv line 2: a quoted caption is never closed\n' and res.stdout == ''
    assert not (tmp_path/'wav').exists() and sorted(p.name for p in tmp_path.iterdir()) == ['prompts.csv', 'run']
    assert list((tmp_path/'run').iterdir()) == []

def test_eval_reads_its_prompts_strictly_too(tmp_path):
    (tmp_path/'clips').mkdir(); csv = tmp_path/'p.csv'; csv.write_text('id,caption\na,calm piano\nb,rock, drums\n')
    res = ttm('eval', tmp_path/'clips', '--prompts', csv, '--run', tmp_path/'none', '--json', tmp_path/'m.json', cwd=tmp_path)
    assert res.returncode == 2 and res.stderr.count('\n') == 1, res.stderr
    assert res.stderr.startswith('ttm_pref: error: p.csv line 3: 3 fields where the header has 2 (id, caption)')
    assert sorted(p.name for p in tmp_path.iterdir()) == ['clips', 'p.csv']

@pytest.mark.parametrize('content,message', [
    (UNCLOSED, 'p.csv line 2: a quoted caption is never closed'),
    ('id,caption\na,"A calm piano\nb,rock"\n', 'p.csv line 2: a quoted caption is not closed on its line (it runs on to line 3)'),
    ('id,caption\na,"calm" piano\n', 'p.csv line 2: text after a closing quote'),
    ('caption\nA calm piano piece\nrock, drums\n', 'p.csv line 3: 2 fields where the header has 1 (caption); a value holding a comma must be in quotes'),
    ('id,caption\na\n', 'p.csv line 2: 1 field where the header has 2'),
    ('caption\nA calm piano piece\n""\n', 'p.csv line 3: the caption is empty'),
    ('id,caption\n,A calm piano piece\n', 'p.csv line 2: the id is empty'),
    ('id,caption\n../a,A calm piano piece\n', "p.csv line 2: the id '../a' cannot name a wav file"),
    ('text\nA calm piano piece\n', 'p.csv has no column caption (its columns: text)'),
    ('id,caption\na,calm piano\nb,rock\n\na,jazz\n', "p.csv line 5: id 'a' repeats line 2"),
    ('id,caption\na,café jazz\n'.encode('latin-1'), 'p.csv line 2: not UTF-8 text'),
    ('caption\ncalm\n'.encode('utf-16-le'), 'p.csv line 1: a NUL character'),
    ('', 'p.csv: the file is empty'),
    ('\n  \n', 'p.csv: the file is empty'),
    ('id,caption\n', 'p.csv: a header and no rows under it'),
])
def test_read_prompts_rejects_a_malformed_csv_in_one_line(tmp_path, monkeypatch, content, message):
    from ttm_pref.cli import read_prompts
    from ttm_pref.core import UserError
    monkeypatch.chdir(tmp_path)  # messages name the file relative to the current folder
    (tmp_path/'p.csv').write_bytes(content.encode() if isinstance(content, str) else content)
    with pytest.raises(UserError) as e: read_prompts(tmp_path/'p.csv')
    assert message in str(e.value) and '\n' not in str(e.value), str(e.value)

def test_read_prompts_keeps_what_worked(tmp_path):
    from ttm_pref.cli import read_prompts
    (tmp_path/'a.csv').write_text('id,caption\ncalm,A calm piano piece\ndance,"An energetic dance track, driving drums"\n')
    assert read_prompts(tmp_path/'a.csv') == [('calm', 'A calm piano piece'), ('dance', 'An energetic dance track, driving drums')]
    (tmp_path/'b.csv').write_bytes('\ufeffcaption , id\r\n "Calm, soft", x \r\n\r\n"rock with ""drums""", "y"  \r\n'.encode())
    assert read_prompts(tmp_path/'b.csv') == [('x', 'Calm, soft'), ('y', 'rock with "drums"')]  # BOM, CRLF, a blank line, spaces
    (tmp_path/'c.csv').write_text('caption\nA calm piano piece\nAn energetic dance track\n')
    assert read_prompts(tmp_path/'c.csv') == [('0', 'A calm piano piece'), ('1', 'An energetic dance track')]

def test_bad_arguments_are_one_line(tmp_path):
    res = ttm('run', '--scale', 'huge', '--out', tmp_path/'x')
    assert res.returncode == 2 and res.stderr.strip().count('\n') == 0 and 'huge' in res.stderr
    assert not (tmp_path/'x').exists()
    res = ttm('infer', '--run', tmp_path/'missing', '--prompts', tmp_path/'missing.csv', '--out', tmp_path/'w')
    assert res.returncode == 2 and 'does not exist' in res.stderr

def test_params_paper_is_120M():
    res = ttm('params', '--scale', 'paper')
    assert res.returncode == 0, res.stderr
    total = int(res.stdout.split('total:')[1].split('(')[0].replace(',', ''))
    assert abs(total - 120e6) / 120e6 < 0.01
    assert 'trainable' in res.stdout and 'frozen' in res.stdout

def test_train_help_lists_the_five_heads_and_an_unknown_head_is_one_line():
    res = ttm('train', '--stage', 'score_sft', '--help')
    assert res.returncode == 0
    for head in ('global_adaln', 'input_add', 'audio_prepend', 'input_film', 'text_prepend'): assert head in res.stdout
    res = ttm('train', '--stage', 'score_sft', '--head', 'v4')
    assert res.returncode == 2 and res.stderr.strip().count('\n') == 0 and "invalid choice: 'v4'" in res.stderr

def test_chain_builds_the_chain_heads_and_the_ledger_studies(debug_run):
    out, _ = debug_run
    for folder in ('reward', 'score_sft.global_adaln', 'score_sft.input_add', 'crossload', 'crossload_study', 'crpo', 'crpo.beta0', 'knob_sweep'):
        assert (out/folder/'metrics.json').exists(), folder
    assert not (out/'score_sft.input_film').exists()  # the other heads belong to the head sweep, outside the chain
    with open(out/'report'/'claims.csv') as f: claims = list(csv.DictReader(f))
    assert len(claims) == 9 and list(claims[0])[:7] == ['claim', 'paper', 'ours', 'ci_low', 'ci_high', 'listener', 'verdict']
    assert {c['verdict'] for c in claims} <= {'reproduced', 'not reproduced', 'opposite'}
    assert (out/'baseline'/'heldout.safetensors').exists()
    reward = json.loads((out/'reward'/'metrics.json').read_text())
    assert {'heldout_accuracy', 'ece', 'listener_spearman'} <= set(reward)

def test_train_one_more_head_and_infer_with_the_knob(debug_run, tmp_path):
    out, _ = debug_run
    res = ttm('train', '--stage', 'score_sft', '--head', 'input_film', '--scale', 'debug', '--out', out)
    assert res.returncode == 0, res.stderr
    assert (out/'score_sft.input_film'/'heldout.safetensors').exists()
    csv = tmp_path/'p.csv'; csv.write_text('caption\nA calm piano piece\n')
    for folder, extra in (('hi', ['--score', '2']), ('lo', ['--score', '-2']), ('plain', ['--score', '2', '--no-prefix'])):
        res = ttm('infer', '--run', out, '--stage', 'score_sft', '--head', 'input_film', '--prompts', csv, '--out', tmp_path/folder, *extra)
        assert res.returncode == 0, res.stderr
    assert (tmp_path/'hi'/'0.wav').read_bytes() != (tmp_path/'plain'/'0.wav').read_bytes()
    res = ttm('infer', '--run', out, '--stage', 'score_sft', '--head', 'text_prepend', '--prompts', csv, '--out', tmp_path/'none')
    assert res.returncode == 2 and 'not in' in res.stderr and not (tmp_path/'none').exists()
    res = ttm('infer', '--run', out, '--stage', 'baseline', '--score', '1', '--prompts', csv, '--out', tmp_path/'b')
    assert res.returncode == 2 and 'applies to the score-conditioned stages' in res.stderr

@pytest.mark.parametrize('stage', ['expert_iter', 'crossload', 'crpo'])
def test_infer_from_each_refinement(debug_run, tmp_path, stage):
    out, _ = debug_run
    assert (out/stage/'heldout.safetensors').exists()
    csv = tmp_path/'p.csv'; csv.write_text('id,caption\ncalm,A calm piano piece\n')
    res = ttm('infer', '--run', out, '--stage', stage, '--prompts', csv, '--out', tmp_path/'wav', '--score', '0.5')
    assert res.returncode == 0, res.stderr
    assert (tmp_path/'wav'/'calm.wav').exists()

def test_train_a_refinement_on_an_existing_run(debug_run):
    out, _ = debug_run
    res = ttm('train', '--stage', 'crpo', '--scale', 'debug', '--out', out)
    assert res.returncode == 0, res.stderr
    assert '== crpo: found, skipped' in res.stdout

def test_bench_writes_json_and_markdown(debug_run, tmp_path):
    out, _ = debug_run
    res = ttm('bench', '--scale', 'debug', '--run', out, '--json', tmp_path/'bench.json')
    assert res.returncode == 0, res.stderr
    got = json.loads((tmp_path/'bench.json').read_text())
    for key in ('matmul_gflops', 'sampler_fraction_of_peak', 'train_fraction_of_peak', 'fad_speedup_vs_sqrtm', 'fad_rel_error'):
        assert isinstance(got[key], float) and got[key] >= 0, key
    assert got['fad_rel_error'] < 1e-6 and got['stage_seconds'].keys() >= {'world', 'baseline', 'eval'}
    md = (tmp_path/'bench.md').read_text()
    assert '| sampler |' in md and 'Stage times of the last run' in md and md in res.stdout + '\n'

def test_paper_infer_without_run_refuses_trained_stage_options(tmp_path):
    (tmp_path/'p.csv').write_text('caption\na calm piano\n')
    res = ttm('infer', '--scale', 'paper', '--prompts', tmp_path/'p.csv', '--out', tmp_path/'w', '--stage', 'crpo')
    assert res.returncode == 2 and res.stderr.count('\n') == 1 and '--stage' in res.stderr
    assert not (tmp_path/'w').exists()

def test_run_another_seed_and_compare_the_runs(debug_run, tmp_path):
    out, _ = debug_run
    res = ttm('run', '--scale', 'debug', '--out', out, '--seed', '5')  # a run directory holds one seed
    assert res.returncode == 2 and res.stderr.strip().count('\n') == 0 and 'trained from seed 0, not 5' in res.stderr
    other = tmp_path/'seed1'
    res = ttm('run', '--scale', 'debug', '--out', other, '--seed', '1')
    assert res.returncode == 0, res.stderr
    for stage in ('baseline', 'reward', 'score_sft.global_adaln', 'score_sft.input_add', 'expert_iter', 'crpo', 'crpo.beta0'):
        assert json.loads((other/stage/'config.json').read_text())['seed'] == 1, stage
    res = ttm('compare', out, other, '--json', tmp_path/'cmp.json')
    assert res.returncode == 0, res.stderr
    assert 'run 2 (seed 1)' in res.stdout and 'Sub. 1 minus the baseline' in res.stdout and 'The claim ledger, run by run' in res.stdout
    cmp = json.loads((tmp_path/'cmp.json').read_text())
    assert cmp['seeds'] == [0, 1] and len(cmp['ledger']) == 9 and all(len(c['verdicts']) == 2 for c in cmp['ledger'])
    res = ttm('compare', out, tmp_path/'missing')
    assert res.returncode == 2 and 'does not exist' in res.stderr and not (tmp_path/'missing').exists()
