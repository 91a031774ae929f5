"`ttm_pref infer --scale paper --weights DIR`: FluxAudio-S from the published files, run end to end on small random-weight stand-ins written in the released formats."
import json, os, re
from pathlib import Path
import pytest, torch
from conftest import ttm
from ttm_pref.pipeline import save_word_tokenizer
from ttm_pref.core import UserError, make_config
from ttm_pref.backbone import Backbone, sample, encode_text
from ttm_pref.scale import PAPER_WEIGHTS, FluxAudioGenerator, find_paper_weights, codec_configs, paper_weights_help, _zero_layers_drawn
from ttm_pref.mel_vae import MelVAE, MelVAEConfig, BigVGANVocoder, BigVGANConfig

ROOT = Path(__file__).resolve().parents[1]
PROMPTS = ['a calm piano piece with soft strings', 'an upbeat rock song with drums and electric guitar']
FLUX = dict(patch=1, predict='velocity', mask_text=False, input_skip=False, latent_channels=20, text_dim=32, pooled_dim=512, text_tokens=77)
SMALL_VAE, SMALL_VOC = MelVAEConfig(hidden_dim=16), BigVGANConfig(upsample_initial_channel=64)
HOSTS = re.compile(r'https?:|www\.|\.com\b|\.co/|\.org\b|hugging ?face\.|github', re.I)

@pytest.fixture(autouse=True)
def quiet_machine(monkeypatch):
    "One thread here and in the command's process; no paper variable set, so the folder is what is read."
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    monkeypatch.setenv('OMP_NUM_THREADS', '1')
    for w in PAPER_WEIGHTS.values(): monkeypatch.delenv(w.env, raising=False)
    yield
    torch.set_num_threads(n)

def _tiny_flux(seed=0) -> Backbone:
    "A FluxAudio-shaped backbone (debug widths) with every weight random, the latent statistics too."
    torch.manual_seed(seed)
    model = _zero_layers_drawn(Backbone(make_config('backbone', 'debug', **FLUX)))
    with torch.no_grad(): model.latent_std.uniform_(0.5, 2.0)
    return model

@pytest.fixture(scope='module')
def weights(tmp_path_factory):
    "A --weights folder: the six files of the inference path as stand-ins in the released formats."
    from tokenizers import processors
    from transformers import RobertaConfig, T5Config, T5EncoderModel
    from ttm_pref.assets import ROBERTA_BASE, build_clap, clap_code
    try: clap_code()
    except UserError as e: pytest.skip(str(e))
    d = tmp_path_factory.mktemp('weights')
    torch.set_num_threads(1)
    torch.manual_seed(0)
    n = save_word_tokenizer(d/'flan-t5-large', ['<pad>', '</s>', '<unk>'],
                            processors.TemplateProcessing(single='$A </s>', special_tokens=[('</s>', 1)]), ' '.join(PROMPTS).split())
    T5EncoderModel(T5Config(vocab_size=n, d_model=32, d_kv=8, d_ff=64, num_layers=2, num_heads=4, pad_token_id=0, eos_token_id=1,
                            decoder_start_token_id=0)).save_pretrained(d/'flan-t5-large')
    n = save_word_tokenizer(d/'roberta-base', ['<s>', '<pad>', '</s>', '<unk>'], processors.RobertaProcessing(('</s>', 2), ('<s>', 0)), ' '.join(PROMPTS).split())
    tiny_roberta = dict(num_hidden_layers=1, intermediate_size=64, vocab_size=n, max_position_embeddings=80)
    (d/'roberta-base'/'config.json').write_text(json.dumps(RobertaConfig(**{**ROBERTA_BASE, **tiny_roberta}).to_dict()))
    state = {f'module.{k}': v for k, v in build_clap('HTSAT-base', tiny_roberta).state_dict().items()}
    torch.save({'epoch': 15, 'state_dict': state}, d/'music_speech_audioset_epoch_15_esc_89.98.pt')
    torch.save(_tiny_flux().state_dict(), d/'fluxaudio_s_full.pth')
    torch.save(MelVAE(SMALL_VAE).state_dict(), d/'v1-16.pth')
    torch.save({'generator': BigVGANVocoder(SMALL_VOC).state_dict()}, d/'best_netG.pt')
    return d

# --- through the command line

def test_infer_writes_two_ten_second_wavs(weights, tmp_path):
    import soundfile as sf
    (tmp_path/'p.csv').write_text('id,caption\n' + ''.join(f'c{i},"{p}"\n' for i, p in enumerate(PROMPTS)))
    res = ttm('infer', '--scale', 'paper', '--weights', weights, '--prompts', tmp_path/'p.csv', '--out', tmp_path/'out',
              '--steps', 4, '--cfg', 3.5, '--seed', 7)
    assert res.returncode == 0, res.stderr
    assert sorted(p.name for p in (tmp_path/'out').iterdir()) == ['c0.wav', 'c1.wav']
    clips = [sf.read(tmp_path/'out'/f'c{i}.wav') for i in range(2)]
    assert all(sr == 16000 and audio.ndim == 1 and len(audio) == 312 * 512 for audio, sr in clips)  # 9.98 s each
    assert all(abs(audio).max() <= 1 and abs(audio).max() > 0 for audio, _ in clips)
    assert 'FluxAudio-S from' in res.stdout and '2 clip(s) of 9.98 s, 4 Euler steps, guidance 3.5' in res.stdout
    assert 'wrote 2 wav file(s)' in res.stdout

def test_missing_files_one_line_each_exit_2_nothing_written(weights, tmp_path, monkeypatch):
    d = tmp_path/'weights'
    d.mkdir()
    for name in ('fluxaudio_s_full.pth', 'roberta-base'): (d/name).symlink_to(weights/name)
    monkeypatch.setenv('TTM_PREF_T5', str(tmp_path/'no_t5'))  # a variable wins over the folder, even when it points at nothing
    (tmp_path/'p.csv').write_text('caption\na calm piano piece\n')
    res = ttm('infer', '--scale', 'paper', '--weights', d, '--prompts', tmp_path/'p.csv', '--out', tmp_path/'out', cwd=tmp_path)
    assert res.returncode == 2 and res.stdout == '', res.stderr
    lines = res.stderr.splitlines()
    assert [l.split(' ')[2] for l in lines] == ['v1-16.pth', 'best_netG.pt', 'flan-t5-large/', 'music_speech_audioset_epoch_15_esc_89.98.pt']
    assert all(l.startswith('ttm_pref: error: ') for l in lines)
    assert "is not in weights: published with MMAudio's released weights" in lines[0] and 'set TTM_PREF_VAE' in lines[0]
    assert 'TTM_PREF_T5 names no_t5, where there is no folder; the public flan-t5-large model' in lines[2]
    assert "LAION-CLAP's music checkpoints" in lines[3] and 'set TTM_PREF_CLAP_COND' in lines[3]
    assert not (tmp_path/'out').exists() and str(tmp_path) not in res.stderr
    monkeypatch.delenv('TTM_PREF_T5')
    res = ttm('infer', '--scale', 'paper', '--weights', tmp_path/'none', '--prompts', tmp_path/'p.csv', '--out', tmp_path/'out', cwd=tmp_path)
    assert res.returncode == 2 and len(res.stderr.splitlines()) == 6 and res.stderr.count('the weights folder none does not exist') == 6
    assert "fluxaudio_s_full.pth (the FluxAudio-S generator weights): the weights folder none does not exist; published with MeanAudio's model collection" in res.stderr
    assert not (tmp_path/'out').exists()

@pytest.mark.parametrize('extra,message', [
    (['--score', '1'], '--score: the published FluxAudio-S checkpoint has no score head'),
    (['--stage', 'crpo', '--head', 'input_add'], '--stage, --head: the published FluxAudio-S checkpoint has no score head'),
    (['--run', 'runs/x'], '--weights and --run are two sources of weights'),
    (['--scale', 'mini'], '--weights applies with --scale paper only'),
])
def test_options_without_meaning_here_are_refused(tmp_path, extra, message):
    (tmp_path/'p.csv').write_text('caption\na calm piano piece\n')
    args = ['infer', '--scale', 'paper', '--weights', tmp_path, '--prompts', tmp_path/'p.csv', '--out', tmp_path/'out', *extra]
    res = ttm(*args)
    assert res.returncode == 2 and res.stderr.count('\n') == 1 and message in res.stderr, res.stderr
    assert not (tmp_path/'out').exists()

def test_help_and_readme_list_every_file_in_fetch_order():
    readme = (ROOT/'README.md').read_text()
    res = ttm('infer', '--help')
    assert res.returncode == 0 and paper_weights_help() in res.stdout and not HOSTS.search(res.stdout)
    res = ttm('run', '--scale', 'paper', '--help')  # every file of the paper scale, the inference path's six first
    assert res.returncode == 0 and not HOSTS.search(res.stdout)
    assert [res.stdout.index(f'${w.env}') for w in PAPER_WEIGHTS.values()] == sorted(res.stdout.index(f'${w.env}') for w in PAPER_WEIGHTS.values())
    for text in (paper_weights_help(), readme[readme.index('fluxaudio_s_full.pth'):]):
        at = [text.index(w.file) for w in PAPER_WEIGHTS.values()]
        assert at == sorted(at)  # in the order to fetch them
        assert all(w.env in text for w in PAPER_WEIGHTS.values())
    assert not HOSTS.search(paper_weights_help()) and not HOSTS.search(readme.replace('Hugging Face Accelerate', ''))
    for where in ("MeanAudio's model collection", "MMAudio's released weights", 'flan-t5-large', "LAION-CLAP's music checkpoints", 'roberta-base'):
        assert where in readme, where

# --- the library parts, in this process

def test_find_paper_weights_variables_win(weights, tmp_path, monkeypatch):
    d = tmp_path/'w'
    d.mkdir()
    for w in PAPER_WEIGHTS.values(): (d/w.file).symlink_to(weights/w.file)
    assert find_paper_weights(d) == {name: d/w.file for name, w in PAPER_WEIGHTS.items()}
    monkeypatch.setenv('TTM_PREF_VOCODER', str(weights/'best_netG.pt'))
    assert find_paper_weights(d)['vocoder'] == weights/'best_netG.pt'
    monkeypatch.setenv('TTM_PREF_VOCODER', '')  # empty counts as unset
    assert find_paper_weights(d)['vocoder'] == d/'best_netG.pt'
    with pytest.raises(UserError) as e: find_paper_weights()
    assert len(str(e.value).splitlines()) == 6 and 'no weights folder given and TTM_PREF_VAE is unset' in str(e.value)

def test_codec_sizes_come_off_the_files(weights, tmp_path):
    assert codec_configs(weights/'v1-16.pth', weights/'best_netG.pt') == (SMALL_VAE, SMALL_VOC)
    (tmp_path/'bad.pt').write_bytes(b'not a checkpoint')
    assert codec_configs(tmp_path/'bad.pt', tmp_path/'bad.pt') == (MelVAEConfig(), BigVGANConfig())  # the loader says why, later

class _Text:
    "A text encoder of the backbone's sizes: each caption a constant of its length (the null text zero)."
    dim, pooled_dim = 32, 512
    def encode(self, captions, max_tokens=77):
        n = len(captions)
        v = torch.tensor([float(len(c)) / 50 for c in captions])
        return {'tokens': v[:, None, None].expand(n, max_tokens, 32).clone(), 'mask': torch.ones(n, max_tokens, dtype=torch.bool),
                'pooled': v[:, None].expand(n, 512).clone()}

class _Codec:
    "Records the latents it is asked to decode; each becomes a clip of 512 samples per frame."
    channels = 20
    def __init__(self): self.seen = []
    def decode(self, z):
        self.seen.append(z.clone())
        return 10 * z.mean(1).repeat_interleave(512, dim=-1)  # loud enough that the generator's clamp shows

def test_generator_unnormalises_guides_and_clamps():
    model, codec = _tiny_flux(), _Codec()
    gen = FluxAudioGenerator(model, _Text(), codec)
    audio, sr = gen(PROMPTS, seed=3, steps=3)
    assert sr == 16000 and audio.shape == (2, 312 * 512) and audio.abs().max() == 1.0
    z = sample(model, encode_text(_Text(), PROMPTS, model.cfg), seed=3, steps=3, cfg_scale=4.5, n_frames=312, progress=False)
    want = z * model.latent_std.transpose(1, 2) + model.latent_mean.transpose(1, 2)
    assert torch.allclose(torch.cat(codec.seen), want, atol=1e-6)  # decoded after the network's latent statistics are applied
    assert torch.equal(gen.latents(PROMPTS, seed=3, steps=3), gen.latents(PROMPTS, seed=3, steps=3))
    assert not torch.allclose(gen.latents(PROMPTS, seed=3, steps=3, cfg_scale=1.0), want)
    assert not torch.allclose(gen.latents(PROMPTS, seed=3, steps=3, negative='noisy and muffled'), want)
    with pytest.raises(UserError, match='non-empty list'): gen('one string')

def test_generator_refuses_pieces_that_do_not_fit():
    class Wide(_Text): dim = 64
    with pytest.raises(UserError, match='takes 32-d T5 tokens and a 512-d pooled text; the text encoders give 64 and 512'):
        FluxAudioGenerator(_tiny_flux(), Wide(), _Codec())
    class Forty(_Codec): channels = 40
    with pytest.raises(UserError, match='makes 20-channel latents; the mel VAE takes 40'): FluxAudioGenerator(_tiny_flux(), _Text(), Forty())
