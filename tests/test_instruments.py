"The measuring instruments shipped with the package: the same numbers on every machine, a rebuild as good, a stale one refused."
import json, re
import numpy as np
import pytest, torch
import ttm_pref.world
from ttm_pref.core import RunDir, UserError, make_config
from ttm_pref.instruments import INSTRUMENTS, SHIPPED_DIR, shipped_paths, load_shipped, write_shipped, shipped_table
from ttm_pref.encoders import ensure_clap, ensure_second_encoder
from ttm_pref.postproc import ensure_separator

torch.set_num_threads(1)

def fixed_clip() -> torch.Tensor:
    "A deterministic 3 s clip at 16 kHz: four sines under a 2 Hz tremolo, [1, 48000]."
    t = np.arange(3 * 16000) / 16000
    x = sum(a * np.sin(2 * np.pi * f * t) for a, f in ((0.3, 220.0), (0.2, 330.0), (0.1, 523.25), (0.05, 1760.0)))
    return torch.from_numpy((x * (0.6 + 0.4 * np.sin(2 * np.pi * 2.0 * t))).astype(np.float32))[None]

# the shipped CLAP stand-ins' embedding of `fixed_clip`: its first 8 dimensions, and sum_i i * e_i over all of them
EMBEDDINGS = {'debug': ([0.0196, -0.31893, -0.12507, 0.3431, -0.05703, 0.01333, 0.00983, 0.05785], -2.658691),
              'mini': ([0.19976, 0.07712, -0.00673, 0.12993, -0.02831, -0.03262, 0.12621, 0.07049], 57.654930)}

@pytest.mark.parametrize('scale', ['debug', 'mini'])
def test_shipped_clap_embeds_a_fixed_clip_the_same_everywhere(tmp_path, scale):
    run = RunDir(tmp_path)
    clap = ensure_clap(run, scale, progress=False)
    assert clap.metrics['source'] == 'shipped' and not (tmp_path/'cache').exists()  # copied: nothing rendered, nothing trained
    assert (tmp_path/'clap'/'model.safetensors').read_bytes() == shipped_paths('clap', scale)[0].read_bytes()
    e = clap.embed_audio(fixed_clip())[0]
    first, weighted = EMBEDDINGS[scale]
    assert e[:8].tolist() == pytest.approx(first, abs=1e-4)
    assert float((e * torch.arange(len(e))).sum()) == pytest.approx(weighted, abs=1e-3)

def test_every_instrument_ships_for_debug_and_mini():
    rows = shipped_table()
    assert {(r['stage'], r['scale']) for r in rows} == {(s, sc) for s in INSTRUMENTS for sc in ('debug', 'mini')}
    assert all(r['current world'] for r in rows)

def test_package_data_declares_the_shipped_files():
    "setup.py ships ttm_pref/shipped/ in the wheel (an editable install reads the source tree)."
    setup = (SHIPPED_DIR.parent.parent/'setup.py').read_text()
    assert "'shipped/*.safetensors', 'shipped/*.json'" in setup
    assert 'recursive-include ttm_pref/shipped' in (SHIPPED_DIR.parent.parent/'MANIFEST.in').read_text()

def test_a_debug_rebuild_is_an_equally_good_instrument(tmp_path):
    """The recipe, from scratch, in a fresh run: its held-out retrieval is within the spread of six training seeds of the
    shipped one's stored metrics (the 30-step debug CLAP is near chance on 16 prompts: matched-minus-mismatched cosine
    -0.02 .. +0.02 and recall@10 0.50 .. 0.69 over seeds 0-5; another machine's float rounding is a smaller change than another seed)."""
    rebuilt = ensure_clap(RunDir(tmp_path), 'debug', progress=False, rebuild=True).metrics
    shipped = json.loads(shipped_paths('clap', 'debug')[1].read_text())['metrics']
    gap = lambda m: m['matched_cos'] - m['mismatched_cos']
    assert rebuilt['source'] == 'trained'
    assert abs(gap(rebuilt) - gap(shipped)) <= 0.05
    assert abs(rebuilt['recall_at_10'] - shipped['recall_at_10']) <= 0.25  # 4 of the 16 prompts
    assert rebuilt['final_loss'] < rebuilt['first_loss']

@pytest.mark.parametrize('stage, ensure', [('clap', ensure_clap), ('music_features', ensure_second_encoder), ('separator', ensure_separator)])
def test_an_instrument_of_another_world_is_refused_in_one_line(tmp_path, monkeypatch, stage, ensure):
    monkeypatch.setattr(ttm_pref.world, 'WORLD_VERSION', 'world-v0-changed')  # the renderer changed: every world key changes
    with pytest.raises(UserError) as e: ensure(RunDir(tmp_path), 'debug', progress=False)
    message = str(e.value)
    assert len(message.splitlines()) == 1 and re.search(r'built on world \w+, but this debug world is \w+', message)
    assert message.endswith(f'rebuild it: ttm_pref train --stage {stage} --scale debug --rebuild --ship')
    assert not (tmp_path/stage).exists()  # nothing trained instead

def test_shipping_writes_a_record_the_loader_accepts(tmp_path):
    run = RunDir(tmp_path/'run')
    ensure_second_encoder(run, 'debug', progress=False, rebuild=True)  # fits on the debug world, rendered into the run
    weights, record = write_shipped(run, 'music_features', 'debug', tmp_path/'pkg')
    meta = json.loads(record.read_text())
    assert meta['world_key'] == ttm_pref.world.world_key(make_config('world', 'debug'))
    tensors, cfg, metrics = load_shipped('music_features', 'debug', tmp_path/'pkg')
    assert metrics['source'] == 'shipped' and set(tensors) == {'mean', 'std'}
    weights.write_bytes(weights.read_bytes()[:-4] + b'\0\0\0\0')  # a damaged file
    with pytest.raises(UserError, match='does not match its record'): load_shipped('music_features', 'debug', tmp_path/'pkg')
    with pytest.raises(UserError, match='no complete clap to ship'): write_shipped(run, 'clap', 'debug', tmp_path/'pkg')

def test_a_run_with_an_older_music_description_is_refused_in_one_line(tmp_path):
    "A run whose music_features standardisation came from an earlier, shorter feature vector says so, instead of a shape error."
    run = RunDir(tmp_path)
    ensure_second_encoder(run, 'debug', progress=False)
    tensors, cfg, metrics = run.load('music_features')
    old = {k: v[:75].clone() for k, v in tensors.items()}  # the harmony, rhythm and timbre families alone
    import shutil; shutil.rmtree(run.path('music_features'))
    run.save('music_features', old, cfg, metrics)
    with pytest.raises(UserError) as e: ensure_second_encoder(run, 'debug', progress=False)
    assert len(str(e.value).splitlines()) == 1 and 'with 75 numbers' in str(e.value) and '--rebuild' in str(e.value)
