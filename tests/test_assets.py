"Checks of ttm_pref.assets, the paper-scale adapters: offline on random weights and small files; the real assets when present."
import csv, json, os
from pathlib import Path
import pytest, torch
from ttm_pref.core import UserError, make_config
from ttm_pref.encoders import EMBEDDERS, load_embedder
from ttm_pref.pipeline import save_word_tokenizer
from ttm_pref.assets import (ASSETS, PAPER_ASSETS, asset_path, missing_paper_assets, PaperAudioEmbedder, ROBERTA_BASE,
                             clap_code, build_clap, read_clap_state, load_clap_state, clap_windows, LaionClap, T5TextEncoder,
                             read_demucs_package, load_demucs, read_song_describer, heldout_prompts)

TINY_ROBERTA = dict(num_hidden_layers=1, intermediate_size=64, vocab_size=40, max_position_embeddings=80)
WORDS = 'a calm piano piece with soft strings an upbeat rock song drums and electric guitar'.split()

@pytest.fixture
def no_assets(monkeypatch):
    "No paper asset variable set, as on a machine without them."
    for k in ASSETS: monkeypatch.delenv(k, raising=False)

def _real(env):
    "The asset's path if this machine has it, else skip the test saying which variable to set."
    path = os.environ.get(env)
    if not (path and Path(path).exists()): pytest.skip(f'needs {ASSETS[env].what} (set {env})')
    return Path(path)

# --- the asset table and its messages

def test_registry_holds_paper_loaders():
    assert {'laion-clap', 't5', 'paper-text', 'mert', 'demucs'} <= set(EMBEDDERS)
    assert {'minilm', 'clap', 'music-features'} <= set(EMBEDDERS)

def test_pipeline_checks_the_one_registry():
    from ttm_pref import pipeline, paper_world
    assert pipeline.ASSETS is ASSETS and pipeline.check_paper_assets is paper_world.check_paper_assets
    assert set(paper_world.ASSET_CHECKS) == set(ASSETS)  # every asset has its structural check
    assert {'TTM_PREF_CLAP_CKPT', 'TTM_PREF_ROBERTA', 'TTM_PREF_T5', 'TTM_PREF_MERT', 'TTM_PREF_DEMUCS_REPO',
            'TTM_PREF_SDD', 'TTM_PREF_SDD_AUDIO', 'TTM_PREF_JAMENDO', 'TTM_PREF_TUNEJURY'} <= set(PAPER_ASSETS)

def test_missing_asset_message(no_assets, tmp_path):
    with pytest.raises(UserError) as e: asset_path('TTM_PREF_CLAP_CKPT')
    assert str(e.value) == ('the LAION-CLAP music checkpoint music_audioset_epoch_15_esc_90.14.pt not found '
                            '(TTM_PREF_CLAP_CKPT is unset): it is published with the LAION-CLAP repository '
                            '(its music checkpoints); set TTM_PREF_CLAP_CKPT')
    with pytest.raises(UserError, match='no folder at'): asset_path('TTM_PREF_T5', tmp_path/'nothing')
    assert set(missing_paper_assets()) == {k for k, a in ASSETS.items() if not a.optional}

@pytest.mark.parametrize('name,kw', [('laion-clap', {}), ('laion-clap', {'checkpoint': '/no/such/file.pt'}),
                                     ('t5', {}), ('paper-text', {}), ('mert', {}), ('mert', {'folder': '/no/such/folder'}),
                                     ('demucs', {'repo': '/no/such/folder'})])
def test_adapters_without_files(no_assets, name, kw):
    with pytest.raises(UserError) as e: load_embedder(name, **kw)
    assert '\n' not in str(e.value) and 'set TTM_PREF_' in str(e.value)

def test_mert_empty_folder(tmp_path):
    with pytest.raises(UserError, match='config.json'): load_embedder('mert', folder=tmp_path)

def test_base_interface_resamples():
    class Length(PaperAudioEmbedder):
        sr, dim = 8000, 1
        def _embed(self, x): return torch.full((len(x), 1), float(x.shape[-1]))
    assert torch.equal(Length().embed_audio(torch.zeros(3, 16000), batch=2), torch.full((3, 1), 8000.))

# --- LAION-CLAP

@pytest.fixture(scope='module')
def clap_model():
    "laion_clap's HTSAT-base CLAP with random weights and a one-layer text tower (skipped without laion_clap's code)."
    try: clap_code()  # laion_clap's model code, without running its package __init__ (which fetches tokenizers)
    except UserError as e: pytest.skip(str(e))
    torch.manual_seed(0)
    return build_clap('HTSAT-base', TINY_ROBERTA)

def test_clap_windows():
    assert torch.equal(clap_windows(torch.arange(3.), 8), torch.tensor([[0., 1, 2, 0, 1, 2, 0, 0]]))
    w = clap_windows(torch.arange(12.), 5)
    assert w.shape == (3, 5) and w[:, 0].tolist() == [0, 5, 7] and w[-1, -1] == 11

def test_clap_audio_branch_random_weights(clap_model):
    clap = LaionClap(clap_model)
    emb = clap.embed_audio(0.1 * torch.randn(2, 16000, generator=torch.Generator().manual_seed(0)))
    assert emb.shape == (2, 512)
    assert torch.allclose(emb.norm(dim=1), torch.ones(2), atol=1e-5)
    assert clap.embed_text(['']).abs().sum() == 0  # the null text needs no tokenizer
    with pytest.raises(UserError, match='TTM_PREF_ROBERTA'): clap.embed_text(['a song'])

def test_clap_state_round_trip(clap_model, tmp_path):
    state = {f'module.{k}': v for k, v in clap_model.state_dict().items()}
    state['module.text_branch.embeddings.position_ids'] = torch.arange(80)[None]
    torch.save({'epoch': 1, 'state_dict': state}, tmp_path/'clap.pt')
    back = read_clap_state(tmp_path/'clap.pt')
    assert set(back) == set(clap_model.state_dict())
    assert all(torch.equal(back[k], v) for k, v in clap_model.state_dict().items())
    load_clap_state(clap_model, back)  # every key fits
    with pytest.raises(UserError, match='missing keys'): load_clap_state(clap_model, {'x': torch.zeros(1)})

def test_clap_text_through_loader(clap_model, tmp_path):
    from tokenizers import processors
    rob = tmp_path/'roberta'
    n = save_word_tokenizer(rob, ['<s>', '<pad>', '</s>', '<unk>'], processors.RobertaProcessing(('</s>', 2), ('<s>', 0)), WORDS)
    assert n <= TINY_ROBERTA['vocab_size']
    (rob/'config.json').write_text(json.dumps({**ROBERTA_BASE, **TINY_ROBERTA, 'model_type': 'roberta'}))
    torch.save({'state_dict': clap_model.state_dict()}, tmp_path/'clap.pt')
    clap = load_embedder('laion-clap', checkpoint=tmp_path/'clap.pt', roberta=rob)
    text = clap.embed_text(['a calm piano piece', 'an upbeat rock song', ''])
    assert text.shape == (3, 512) and text[2].abs().sum() == 0
    assert torch.allclose(text[:2].norm(dim=1), torch.ones(2), atol=1e-5)

def test_clap_refuses_pickled_code(tmp_path):
    torch.save({'state_dict': {'w': torch.zeros(1)}, 'opt': Path('x')}, tmp_path/'bad.pt')
    with pytest.raises(UserError, match='not loaded'): read_clap_state(tmp_path/'bad.pt')

def test_laion_clap_real_checkpoint():
    path = _real('TTM_PREF_CLAP_CKPT')
    clap = load_embedder('laion-clap', checkpoint=path)
    emb = clap.embed_audio(0.1 * torch.randn(1, 16000 * 2))
    assert emb.shape == (1, 512) and abs(emb.norm() - 1) < 1e-4
    if os.environ.get('TTM_PREF_ROBERTA'):
        text = clap.embed_text(['an upbeat rock song with drums', 'energetic rock track with a drum kit', 'a slow sad piano ballad'])
        assert text[0] @ text[1] > text[0] @ text[2]

# --- T5 and the paper's text conditioning

@pytest.fixture(scope='module')
def t5_dir(tmp_path_factory):
    "A tiny random-weight T5 encoder (32 wide) and a word-level tokenizer, saved as transformers saves them."
    from tokenizers import processors
    from transformers import T5Config, T5EncoderModel
    folder = tmp_path_factory.mktemp('t5')
    n = save_word_tokenizer(folder, ['<pad>', '</s>', '<unk>'], processors.TemplateProcessing(single='$A </s>', special_tokens=[('</s>', 1)]), WORDS)
    torch.manual_seed(0)
    T5EncoderModel(T5Config(vocab_size=n, d_model=32, d_kv=8, d_ff=64, num_layers=2, num_heads=4, pad_token_id=0,
                            eos_token_id=1, decoder_start_token_id=0)).save_pretrained(folder)
    return folder

def test_t5_shapes_mask_null(t5_dir):
    t5 = load_embedder('t5', folder=t5_dir)
    out = t5.encode(['a calm piano piece', 'an upbeat rock song with drums', ''], max_tokens=10)
    assert (t5.dim, t5.pooled_dim) == (32, 32)
    assert out['tokens'].shape == (3, 10, 32) and out['pooled'].shape == (3, 32)
    assert out['mask'].sum(1).tolist() == [5, 7, 0]  # words + </s>; the null text has none
    assert out['tokens'][~out['mask']].abs().sum() == 0 and out['pooled'][2].abs().sum() == 0
    with pytest.raises(UserError, match='list of captions'): t5.encode('one string')

class _StubClap:
    "The pooled-text half of a CLAP: 8-d, zero for the null text."
    dim = 8
    def embed_text(self, captions):
        return torch.stack([torch.nn.functional.normalize(torch.ones(8), dim=0) * bool(c) for c in captions])

def test_t5_with_clap_pooled_works_with_backbone(t5_dir):
    from transformers import AutoTokenizer, T5EncoderModel
    from ttm_pref.backbone import encode_text
    enc = T5TextEncoder(T5EncoderModel.from_pretrained(str(t5_dir), local_files_only=True),
                        AutoTokenizer.from_pretrained(str(t5_dir), local_files_only=True), pooled=_StubClap())
    cfg = make_config('backbone', 'debug', text_dim=32, pooled_dim=8, text_tokens=12)
    out = encode_text(enc, ['a calm piano piece', ''], cfg)
    assert out['tokens'].shape == (2, 12, 32) and out['mask'].shape == (2, 12) and out['pooled'].shape == (2, 8)
    assert not out['mask'][1].any() and out['pooled'][1].abs().sum() == 0 and out['tokens'][1].abs().sum() == 0
    with pytest.raises(UserError, match='expects'): encode_text(enc, ['a song'], make_config('backbone', 'paper'))

def test_paper_text_real():
    t5, ckpt, rob = _real('TTM_PREF_T5'), _real('TTM_PREF_CLAP_COND'), _real('TTM_PREF_ROBERTA')
    out = load_embedder('paper-text').encode(['an upbeat rock song', ''], max_tokens=77)
    assert out['tokens'].shape == (2, 77, 1024) and out['pooled'].shape == (2, 512) and not out['mask'][1].any()

# --- MERT

def test_mert_tiny_hubert(tmp_path):
    from transformers import HubertConfig, HubertModel, Wav2Vec2FeatureExtractor
    torch.manual_seed(0)
    HubertModel(HubertConfig(hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=32,
                             conv_dim=(8, 8), conv_stride=(5, 2), conv_kernel=(10, 3), num_conv_pos_embeddings=8,
                             num_conv_pos_embedding_groups=2)).save_pretrained(tmp_path)
    Wav2Vec2FeatureExtractor(sampling_rate=24000).save_pretrained(tmp_path)
    mert = load_embedder('mert', folder=tmp_path)
    feats = mert.embed_audio(0.1 * torch.randn(3, 4000), batch=2)
    assert (mert.sr, feats.shape) == (24000, (3, 16)) and torch.isfinite(feats).all()
    x = 0.1 * torch.randn(2, 6000)  # already at 24 kHz: TuneJury's pooling, the last hidden state's time mean
    with torch.no_grad():
        want = mert.model(**mert.processor(list(x.numpy()), sampling_rate=24000, return_tensors='pt')).last_hidden_state.mean(1)
        assert torch.allclose(mert._embed(x), want)

def test_mert_real():
    mert = load_embedder('mert', folder=_real('TTM_PREF_MERT'))
    assert mert.embed_audio(0.1 * torch.randn(1, 16000)).shape == (1, 1024)

# --- Demucs

def _demucs_repo(folder):
    "Two random-weight Demucs v3 models (hybrid and waveform) as demucs writes packages, one more as safetensors."
    from demucs.demucs import Demucs
    from demucs.hdemucs import HDemucs
    from demucs.states import save_with_checksum
    from safetensors.torch import save_file
    S = ['drums', 'bass', 'other', 'vocals']
    torch.manual_seed(0)
    for sig, m in (('00000001', HDemucs(S, channels=4)), ('00000002', Demucs(S, channels=4, depth=4))):
        args, kwargs = m._init_args_kwargs
        save_with_checksum({'klass': type(m), 'args': args, 'kwargs': kwargs, 'state': m.state_dict()}, folder/f'{sig}.th')
    m = Demucs(S, channels=4, depth=3)
    save_file(m.state_dict(), str(folder/'00000003.safetensors'),
              metadata={'klass': 'demucs.demucs.Demucs', 'args': json.dumps([S]), 'kwargs': json.dumps({'channels': 4, 'depth': 3})})
    (folder/'mdx_extra.yaml').write_text("models: ['00000001', '00000002', '00000003']\nsegment: 44\n")
    return m

def test_demucs_package_round_trip(tmp_path):
    from demucs.apply import apply_model
    last = _demucs_repo(tmp_path)
    bag = load_embedder('demucs', repo=tmp_path)
    assert len(bag.models) == 3 and bag.samplerate == 44100 and bag.audio_channels == 2
    assert all(torch.equal(bag.models[2].state_dict()[k], v) for k, v in last.state_dict().items())
    with torch.inference_mode(): out = apply_model(bag, 0.1 * torch.randn(1, 2, 22050), shifts=0, split=False, progress=False)
    assert out.shape == (1, 4, 2, 22050)

def test_pretrained_separator_uses_assets_loader(tmp_path, monkeypatch):
    from ttm_pref.postproc import pretrained_separator, separate
    _demucs_repo(tmp_path)
    monkeypatch.setenv('TTM_PREF_DEMUCS_REPO', str(tmp_path))
    sep = pretrained_separator()
    assert separate(sep, 0.1 * torch.randn(2, 8000), 16000).shape == (2, 4, 8000)

def test_demucs_errors(tmp_path):
    import torch.nn as nn
    from demucs.states import save_with_checksum
    with pytest.raises(UserError, match='mdx_extra not found'): load_demucs('mdx_extra', tmp_path)
    (tmp_path/'mdx_extra.yaml').write_text("models: ['e51eebcc', 'a1d90b5c']\nsegment: 44\n")
    (tmp_path/'e51eebcc-c1b80bdd.th').write_bytes(b'')
    with pytest.raises(UserError) as e: load_demucs('mdx_extra', tmp_path)
    assert 'lacks checkpoint(s) a1d90b5c-*.th;' in str(e.value) and '\n' not in str(e.value)
    save_with_checksum({'klass': nn.Linear, 'args': (2, 2), 'kwargs': {}, 'state': {}}, tmp_path/'bad.th')
    with pytest.raises(UserError, match='torch.nn.modules.linear.Linear'): read_demucs_package(next(tmp_path.glob('bad-*.th')))
    with pytest.raises(UserError, match='is damaged'): read_demucs_package(tmp_path/'e51eebcc-c1b80bdd.th')

def test_demucs_real():
    repo = _real('TTM_PREF_DEMUCS_REPO')
    bag = load_demucs('mdx_extra', repo)
    assert bag.sources == ['drums', 'bass', 'other', 'vocals'] and len(bag.models) == 4

# --- Song Describer

SDD_ROWS = [('caption_id', 'track_id', 'caption', 'is_valid_subset', 'artist_id', 'path'),
            ('7', '1', 'Calm piano, "soft" and slow', 'True', 'a', 'x.mp3'),
            ('8', '1', 'Upbeat rock with drums', 'False', 'a', 'x.mp3'),
            ('9', '2', 'Upbeat rock with drums', 'True', 'b', 'y.mp3'),
            ('9', '3', 'A repeated id', 'True', 'c', 'z.mp3'),
            ('10', '3', ' Calm piano, "soft" and slow ', 'True', 'c', 'z.mp3')]

def _write_csv(path, rows):
    with open(path, 'w', newline='') as f: csv.writer(f).writerows(rows)
    return path

def test_song_describer_reads_valid_pairs_in_order(tmp_path):
    _write_csv(tmp_path/'song_describer.csv', SDD_ROWS)
    assert read_song_describer(tmp_path) == [('7', 'Calm piano, "soft" and slow'), ('9', 'Upbeat rock with drums')]
    assert [i for i, _ in read_song_describer(tmp_path/'song_describer.csv', valid_only=False)] == ['7', '8']

def test_song_describer_errors(tmp_path, no_assets):
    with pytest.raises(UserError, match='set TTM_PREF_SDD'): read_song_describer()
    with pytest.raises(UserError, match='set TTM_PREF_SDD'): read_song_describer(tmp_path/'none.csv')
    with pytest.raises(UserError, match='has no column caption_id'):
        read_song_describer(_write_csv(tmp_path/'a.csv', [r[1:] for r in SDD_ROWS]))
    with pytest.raises(UserError, match=r"line 3 \(caption_id '2'\) has an empty caption"):
        read_song_describer(_write_csv(tmp_path/'b.csv', SDD_ROWS[:2] + [('2', '5', '  ', 'True', 'd', 'w.mp3')]))
    with pytest.raises(UserError, match='no captions in its validation subset'):
        read_song_describer(_write_csv(tmp_path/'c.csv', SDD_ROWS[:1] + [SDD_ROWS[2]]))

def test_song_describer_is_read_strictly(tmp_path):
    (tmp_path/'multi.csv').write_text('caption_id,caption,is_valid_subset\n1,"Calm piano,\nthen strings",True\n2,Rock,True\n')
    assert read_song_describer(tmp_path/'multi.csv') == [('1', 'Calm piano,\nthen strings'), ('2', 'Rock')]  # a caption over two lines
    for content, want in [('caption_id,caption,is_valid_subset\n1,"Calm piano,True\n', 'line 2: a quoted caption is never closed'),
                          ('caption_id,caption,is_valid_subset\n1,Calm,True\n2,Rock, drums,True\n', 'line 3: 4 fields where the header has 3'),
                          ('caption_id,caption,is_valid_subset\n3,"x" y,True\n', 'line 2: text after a closing quote')]:
        (tmp_path/'bad.csv').write_text(content)
        with pytest.raises(UserError) as e: read_song_describer(tmp_path/'bad.csv')
        assert want in str(e.value) and '\n' not in str(e.value), str(e.value)

def test_heldout_prompts_reproducible():
    pairs = [(str(i), f'caption {i}') for i in range(500)]
    held = heldout_prompts(pairs)
    assert len(held) == 100 and held == heldout_prompts(pairs) and held == [p for p in pairs if p in held]
    assert heldout_prompts(pairs, seed=1) != held
    unpicked = next(p for p in pairs if p not in held)
    assert heldout_prompts([p for p in pairs if p != unpicked]) == held  # removing a caption it did not pick changes nothing
    with pytest.raises(UserError, match='only 3 captions'): heldout_prompts(pairs[:3])

def test_song_describer_real():
    pairs = read_song_describer(_real('TTM_PREF_SDD'))
    assert len(pairs) > 100 and len(heldout_prompts(pairs)) == 100

# --- FluxAudio-S, reachable from assets like every other asset

def test_load_fluxaudio_through_assets(tmp_path, monkeypatch, no_assets):
    from ttm_pref import assets
    from ttm_pref.backbone import Backbone
    with pytest.raises(UserError) as e: assets.load_fluxaudio()
    msg = str(e.value)
    assert 'fluxaudio_s_full.pth not found (TTM_PREF_FLUXAUDIO is unset)' in msg and "MeanAudio's model collection" in msg
    assert '\n' not in msg and 'TTM_PREF_FLUXAUDIO' in PAPER_ASSETS
    torch.manual_seed(0)
    ref = Backbone(make_config('backbone', 'debug', patch=1, predict='velocity', mask_text=False, input_skip=False, latent_channels=20,
                               text_dim=32, pooled_dim=512, text_tokens=77))
    torch.save(ref.state_dict(), tmp_path/'fluxaudio_s_full.pth')
    monkeypatch.setenv('TTM_PREF_FLUXAUDIO', str(tmp_path/'fluxaudio_s_full.pth'))
    model = assets.load_fluxaudio()
    assert isinstance(model, Backbone) and not model.training and (model.cfg.latent_frames, model.cfg.text_tokens) == (312, 77)
    assert all(torch.equal(model.state_dict()[k], v) for k, v in ref.state_dict().items())
    assert isinstance(assets.load_fluxaudio(ref.state_dict()), Backbone)
