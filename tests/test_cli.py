"The `ttm_pref` console script end to end at the debug scale: the chain, its resumption, inference and user errors."
import json
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
    ('text\nA calm piano piece\n', 'baseline', "no 'caption' column"),
    ('caption\nA calm piano piece\n""\n', 'baseline', 'row 2 has an empty caption'),
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

def test_chain_builds_reward_and_both_chain_heads(debug_run):
    out, _ = debug_run
    for folder in ('reward', 'score_sft.global_adaln', 'score_sft.input_add'): assert (out/folder/'metrics.json').exists(), folder
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
    assert res.returncode == 2 and 'apply to the score-conditioned stages' in res.stderr

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
