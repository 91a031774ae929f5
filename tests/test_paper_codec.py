"Checks of the paper's codec (ttm_pref.mel_vae, loaded through ttm_pref.assets) and its text conditioning, on random weights in the released file formats."
from pathlib import Path
import pytest, torch
from ttm_pref.core import UserError
from ttm_pref.mel_vae import (MEL_16K, LogMel16k, MelVAE, MelVAEConfig, DiagonalGaussian, BigVGANVocoder, BigVGANConfig,
                              bigvgan_state, MelVAECodec)
from ttm_pref.assets import ASSETS, load_mmaudio_vae, load_bigvgan, T5TextEncoder, load_paper_text

SMALL_VAE = MelVAEConfig(hidden_dim=16)  # the published architecture, narrower (the default is 384)
SMALL_VOC = BigVGANConfig(upsample_initial_channel=64)  # likewise (the default is 1536)
TEN_S = 160_000  # 10 s at 16 kHz

@pytest.fixture(autouse=True)
def one_thread():
    "Small tensors on a shared 2-core machine: one thread is steadier."
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)

@pytest.fixture
def no_assets(monkeypatch):
    for k in ASSETS: monkeypatch.delenv(k, raising=False)

# --- the published structures, written from a reading of MeanAudio's meanaudio/ext (MMAudio's 16k VAE and
# the 16 kHz BigVGAN v1 of bigvgan_vocoder.yml); totals as MeanAudio's own modules count them

def vae_manifest() -> dict:
    "Key -> shape of `v1-16.pth`."
    m = {'data_mean': (1, 80, 1), 'data_std': (1, 80, 1), 'encoder.learnable_gain': (), 'decoder.learnable_gain': ()}
    def conv(name, o, i, k): m[f'{name}.weight'] = (o, i, k)
    def res(name, i, o):
        conv(f'{name}.conv1', o, i, 3); conv(f'{name}.conv2', o, o, 3)
        if i != o: conv(f'{name}.nin_shortcut', o, i, 1)
    def middle(p, c):
        res(f'{p}.mid.block_1', c, c); conv(f'{p}.mid.attn_1.qkv', 3 * c, c, 1); conv(f'{p}.mid.attn_1.proj_out', c, c, 1)
        res(f'{p}.mid.block_2', c, c)
    conv('encoder.conv_in', 384, 80, 3)
    for lvl, (i, o) in enumerate([(384, 384), (384, 768), (768, 1536)]):
        res(f'encoder.down.{lvl}.block.0', i, o); res(f'encoder.down.{lvl}.block.1', o, o)
    conv('encoder.down.0.downsample.conv1', 384, 384, 1); conv('encoder.down.0.downsample.conv2', 384, 384, 1)
    middle('encoder', 1536)
    conv('encoder.conv_out', 40, 1536, 3)
    conv('decoder.conv_in', 1536, 20, 3)
    middle('decoder', 1536)
    for lvl, (i, o) in {2: (1536, 1536), 1: (1536, 768), 0: (768, 384)}.items():
        res(f'decoder.up.{lvl}.block.0', i, o); res(f'decoder.up.{lvl}.block.1', o, o); res(f'decoder.up.{lvl}.block.2', o, o)
    conv('decoder.up.1.upsample.conv', 768, 768, 3)
    conv('decoder.conv_out', 80, 384, 3)
    return m

def bigvgan_manifest() -> dict:
    "Key -> shape of `best_netG.pt`'s generator, in the parametrised weight-norm format."
    m = {}
    def wn(name, v, bias):
        m[f'{name}.bias'] = (bias,)
        m[f'{name}.parametrizations.weight.original0'] = (v[0], 1, 1)
        m[f'{name}.parametrizations.weight.original1'] = v
    def act(name, c):
        m.update({f'{name}.act.alpha': (c,), f'{name}.act.beta': (c,), f'{name}.upsample.filter': (1, 1, 12),
                  f'{name}.downsample.lowpass.filter': (1, 1, 12)})
    chans, kernels = [1536, 768, 384, 192, 96, 48, 24], [8, 8, 4, 4, 4, 4]
    wn('conv_pre', (1536, 80, 7), 1536)
    for i in range(6):
        wn(f'ups.{i}.0', (chans[i], chans[i + 1], kernels[i]), chans[i + 1])  # a transposed conv: [in, out, k]
        c = chans[i + 1]
        for j, k in enumerate((3, 7, 11)):
            b = f'resblocks.{3 * i + j}'
            for n in range(3): wn(f'{b}.convs1.{n}', (c, c, k), c); wn(f'{b}.convs2.{n}', (c, c, k), c)
            for a in range(6): act(f'{b}.activations.{a}', c)
    act('activation_post', 24)
    wn('conv_post', (1, 24, 7), 1)
    return m

def shapes(model) -> dict: return {k: tuple(v.shape) for k, v in model.state_dict().items()}

def test_vae_structure_is_published():
    with torch.device('meta'): vae = MelVAE()
    want = vae_manifest()
    assert shapes(vae) == want
    assert (len(want), sum(torch.Size(s).numel() for s in want.values())) == (57, 171_657_378)

def test_bigvgan_structure_is_published():
    with torch.device('meta'): voc = BigVGANVocoder()
    want = bigvgan_manifest()
    assert shapes(voc) == want
    assert (len(want), sum(torch.Size(s).numel() for s in want.values())) == (784, 112_233_866)
    old = {k.replace('parametrizations.weight.original0', 'weight_g').replace('parametrizations.weight.original1', 'weight_v'): v
           for k, v in want.items()}
    assert bigvgan_state(old) == want and bigvgan_state(want) == want
    assert voc.cfg.hop == MEL_16K.hop == 256

def test_mel_front_end():
    assert (MEL_16K.sample_rate, MEL_16K.n_fft, MEL_16K.hop, MEL_16K.win, MEL_16K.n_mels, MEL_16K.fmin, MEL_16K.fmax) == \
           (16000, 1024, 256, 1024, 80, 0, 8000)
    mel = LogMel16k()(torch.zeros(2, TEN_S))
    assert mel.shape == (2, 80, 625) and LogMel16k().frames(TEN_S) == 625
    assert torch.all(mel == -5.0)  # log10 of the 1e-5 floor

# --- loading random weights from files in the released formats

def _old_format(state):
    return {k.replace('parametrizations.weight.original0', 'weight_g').replace('parametrizations.weight.original1', 'weight_v'): v
            for k, v in state.items()}

def test_vae_loads_plain_state_dict(tmp_path, monkeypatch):
    torch.manual_seed(0)
    ref = MelVAE(SMALL_VAE)
    torch.save(ref.state_dict(), tmp_path/'v1-16.pth')
    monkeypatch.setenv('TTM_PREF_VAE', str(tmp_path/'v1-16.pth'))
    vae = load_mmaudio_vae(config=SMALL_VAE)
    assert not vae.training
    ref.remove_weight_norm()
    assert all(torch.equal(vae.state_dict()[k], v) for k, v in ref.state_dict().items())
    mel = torch.randn(1, 80, 40) - 1.5
    with torch.no_grad():
        post = vae.encode(mel)
        assert isinstance(post, DiagonalGaussian) and post.mean.shape == (1, 20, 20) and post.sample().shape == (1, 20, 20)
        assert vae.decode(post.mean).shape == (1, 80, 40)

def test_bigvgan_loads_both_weight_norm_formats(tmp_path):
    torch.manual_seed(0)
    ref = BigVGANVocoder(SMALL_VOC)
    torch.save({'generator': ref.state_dict()}, tmp_path/'new.pt')
    torch.save({'generator': _old_format(ref.state_dict())}, tmp_path/'old.pt')
    mel = torch.randn(1, 80, 12) - 2
    want = ref.eval().remove_weight_norm().vocode(mel)
    for name in ('new.pt', 'old.pt'):
        voc = load_bigvgan(tmp_path/name, SMALL_VOC)
        assert not any('parametrizations' in k or 'weight_g' in k for k in voc.state_dict())
        assert torch.allclose(voc.vocode(mel), want, atol=1e-6)
    assert want.shape == (1, 12 * 256)

def test_ten_seconds_round_trip(tmp_path):
    torch.manual_seed(0)
    torch.save(MelVAE(SMALL_VAE).state_dict(), tmp_path/'v1-16.pth')
    torch.save({'generator': BigVGANVocoder(SMALL_VOC).state_dict()}, tmp_path/'best_netG.pt')
    vae, voc = load_mmaudio_vae(tmp_path/'v1-16.pth', SMALL_VAE), load_bigvgan(tmp_path/'best_netG.pt', SMALL_VOC)
    audio = 0.3 * torch.randn(1, TEN_S)
    mel = LogMel16k()(audio)
    with torch.no_grad():
        z = vae.encode(mel).mean
        back = vae.decode(z)
    wave = voc.vocode(back)
    assert (mel.shape, z.shape, back.shape, wave.shape) == ((1, 80, 625), (1, 20, 312), (1, 80, 624), (1, 159_744))
    assert torch.isfinite(wave).all() and wave.abs().max() <= 1
    codec = MelVAECodec(vae, voc)
    assert torch.equal(codec.encode(audio), z) and codec.channels == 20
    assert torch.allclose(codec.decode(z), wave, atol=1e-6)

# --- files that do not fit: one line naming the file

@pytest.fixture(scope='module')
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp('codec')
    torch.manual_seed(0)
    vae, voc = MelVAE(SMALL_VAE), BigVGANVocoder(SMALL_VOC)
    torch.save(vae.state_dict(), d/'v1-16.pth')
    torch.save({'generator': voc.state_dict()}, d/'best_netG.pt')
    torch.save({k: v for k, v in vae.state_dict().items() if not k.startswith('decoder.')}, d/'half.pth')
    torch.save({**vae.state_dict(), 'quant_conv.weight': torch.zeros(1)}, d/'extra.pth')
    torch.save({'generator': voc.state_dict(), 'optimizer': Path('x')}, d/'pickled.pt')
    (d/'garbage.pt').write_bytes(b'not a checkpoint')
    (d/'empty.pt').write_bytes(b'')
    return d

@pytest.mark.parametrize('load,name,want', [
    (load_mmaudio_vae, 'nothing.pth', 'no file at'),
    (load_mmaudio_vae, 'garbage.pt', 'is not a readable torch checkpoint'),
    (load_bigvgan, 'empty.pt', 'is not a readable torch checkpoint'),
    (load_mmaudio_vae, 'best_netG.pt', 'holds no state dict of tensors'),
    (load_mmaudio_vae, 'half.pth', "does not fit MMAudio's 16k mel VAE: 30 missing keys (decoder.learnable_gain"),
    (load_mmaudio_vae, 'extra.pth', '0 missing keys (), 1 unexpected (quant_conv.weight)'),
    (load_bigvgan, 'v1-16.pth', "has no 'generator' state dict (found: data_mean, data_std, encoder.learnable_gain)"),
    (load_bigvgan, 'pickled.pt', 'pathlib'),
])
def test_bad_files_one_line(files, load, name, want):
    cfg = SMALL_VAE if load is load_mmaudio_vae else SMALL_VOC
    with pytest.raises(UserError) as e: load(files/name, cfg)
    msg = str(e.value)
    assert want in msg and '\n' not in msg and str(files) not in msg, msg

def test_wrong_size_one_line(files):
    with pytest.raises(UserError) as e: load_bigvgan(files/'best_netG.pt', BigVGANConfig(upsample_initial_channel=128))
    assert 'does not fit the 16 kHz BigVGAN vocoder: size mismatch' in str(e.value) and '\n' not in str(e.value)

@pytest.mark.parametrize('load,env', [(load_mmaudio_vae, 'TTM_PREF_VAE'), (load_bigvgan, 'TTM_PREF_VOCODER')])
def test_unset_asset_one_line(no_assets, load, env):
    with pytest.raises(UserError) as e: load()
    msg = str(e.value)
    assert f'{env} is unset' in msg and f'set {env}' in msg and '\n' not in msg
    assert ('v1-16.pth' if env == 'TTM_PREF_VAE' else 'best_netG.pt') in msg and "MMAudio's released weights" in msg

# --- the text conditioning as MeanAudio computes it

@pytest.fixture(scope='module')
def tiny_t5():
    "A tiny random-weight T5 encoder and a word-level tokenizer."
    from tokenizers import Tokenizer, models, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast, T5Config, T5EncoderModel
    words = 'a calm piano piece with soft strings an upbeat rock song drums'.split()
    vocab = {t: i for i, t in enumerate(['<pad>', '</s>', '<unk>'] + sorted(set(words)))}
    tok = Tokenizer(models.WordLevel(vocab, unk_token='<unk>'))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.post_processor = processors.TemplateProcessing(single='$A </s>', special_tokens=[('</s>', 1)])
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=tok, eos_token='</s>', pad_token='<pad>', unk_token='<unk>')
    torch.manual_seed(0)
    model = T5EncoderModel(T5Config(vocab_size=len(vocab), d_model=16, d_kv=4, d_ff=32, num_layers=1, num_heads=4,
                                    pad_token_id=0, eos_token_id=1, decoder_start_token_id=0))
    return model.eval(), tokenizer

def test_t5_padding_as_the_reference_feeds_it(tiny_t5):
    model, tokenizer = tiny_t5
    caps = ['a calm piano piece', 'an upbeat rock song with drums', '']
    kept = T5TextEncoder(model, tokenizer, zero_padding=False).encode(caps, max_tokens=77)
    zeroed = T5TextEncoder(model, tokenizer).encode(caps, max_tokens=77)  # the default: zero past the caption
    tok = tokenizer(caps[:2], max_length=77, padding='max_length', truncation=True, return_tensors='pt')
    with torch.no_grad(): ref = model(input_ids=tok.input_ids, attention_mask=tok.attention_mask)[0]
    assert torch.allclose(kept['tokens'][:2], ref, atol=1e-6)
    assert torch.equal(kept['mask'][:2], tok.attention_mask.bool()) and torch.equal(kept['mask'], zeroed['mask'])
    pad = ~kept['mask'][:2]
    assert kept['tokens'][:2][pad].abs().sum() > 0 and zeroed['tokens'][:2][pad].abs().sum() == 0
    assert torch.equal(kept['tokens'][:2][~pad], zeroed['tokens'][:2][~pad])
    assert kept['tokens'][2].abs().sum() == 0 and not kept['mask'][2].any()  # the null text stays zero
    assert torch.allclose(kept['pooled'], zeroed['pooled'], atol=1e-6)  # the T5-only pooled vector is the masked mean either way

def test_paper_text_reads_the_conditioning_clap(no_assets, tmp_path, monkeypatch):
    import ttm_pref.assets as assets
    for name in ('t5', 'roberta'): (tmp_path/name).mkdir()
    (tmp_path/'eval.pt').write_bytes(b''); (tmp_path/'cond.pt').write_bytes(b'')
    monkeypatch.setenv('TTM_PREF_T5', str(tmp_path/'t5')); monkeypatch.setenv('TTM_PREF_ROBERTA', str(tmp_path/'roberta'))
    monkeypatch.setenv('TTM_PREF_CLAP_CKPT', str(tmp_path/'eval.pt'))
    with pytest.raises(UserError, match='music_speech_audioset_epoch_15_esc_89.98.pt not found .TTM_PREF_CLAP_COND is unset'):
        load_paper_text()
    monkeypatch.setenv('TTM_PREF_CLAP_COND', str(tmp_path/'cond.pt'))
    seen = {}
    monkeypatch.setattr(assets, 'load_laion_clap', lambda ckpt, roberta, device='cpu': seen.setdefault('clap', Path(ckpt)))
    monkeypatch.setattr(assets, 'load_t5', lambda t5, device, pooled, zero_padding: seen.update(pooled=pooled, zero=zero_padding))
    load_paper_text()
    assert seen == {'clap': tmp_path/'cond.pt', 'pooled': tmp_path/'cond.pt', 'zero': False}
