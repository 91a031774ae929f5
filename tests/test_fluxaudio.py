"FluxAudio-S as published: the paper configuration's state dict, the checkpoint forms, and the numerics that a port can get wrong."
import json, math
from pathlib import Path

import pytest
import torch

from ttm_pref.core import make_config, UserError
from ttm_pref.backbone import (Backbone, SelfAttention, apply_rope, rope_tables, timestep_features, load_fluxaudio,
                               fluxaudio_config, FLUXAUDIO_VARIANTS)

MANIFEST = json.loads((Path(__file__).parent/'fluxaudio_s_manifest.json').read_text())  # names and shapes of the public fluxaudio_s


def paper_state(**variant):
    with torch.device('meta'): return Backbone(make_config('backbone', 'paper', **variant)).state_dict()


def test_paper_config_is_fluxaudio_s_key_for_key():
    ours = {k: list(v.shape) for k, v in paper_state().items()}
    assert list(ours) == list(MANIFEST)  # same names, in the same order
    assert ours == MANIFEST
    assert sum(math.prod(s) for s in MANIFEST.values()) == 120_185_788


def test_44k_variant_changes_only_the_latent_channels():
    ours = {k: list(v.shape) for k, v in paper_state(**FLUXAUDIO_VARIANTS['44k']).items()}
    differ = sorted(k for k in MANIFEST if ours[k] != MANIFEST[k])
    assert differ == ['audio_input_proj.0.weight', 'final_layer.conv.bias', 'final_layer.conv.weight', 'latent_mean', 'latent_std']
    assert ours['latent_mean'] == [1, 1, 40] and ours['final_layer.conv.weight'] == [40, 448, 7]


def random_fluxaudio_s(seed=0):
    "FluxAudio-S's real shapes with random weights (no AdaLN or output left at zero, so every layer shows in the output)."
    g = torch.Generator().manual_seed(seed)
    return {k: torch.randn(s, generator=g) * 0.02 for k, s in MANIFEST.items()}


SMALL = dict(width=64, heads=2, n_joint=2, n_single=1, mlp_multiple=16, text_tokens=8, text_dim=32, pooled_dim=16)


def small_fluxaudio(seed=0):
    "A checkpoint of FluxAudio's structure at small sizes (the forms test runs in a second, not a minute)."
    with torch.device('meta'): shapes = {k: v.shape for k, v in paper_state(**SMALL).items()}
    g = torch.Generator().manual_seed(seed)
    return {k: torch.randn(s, generator=g) * 0.05 for k, s in shapes.items()}


def test_fluxaudio_s_full_size_loads_and_runs(tmp_path):
    sd = random_fluxaudio_s()
    torch.save(sd, tmp_path/'fluxaudio_s_full.pth')
    model = load_fluxaudio(tmp_path/'fluxaudio_s_full.pth')
    assert model.cfg.width == 448 and model.cfg.n_joint == 4 and model.cfg.n_single == 8 and model.cfg.predict == 'velocity'
    assert all(torch.equal(v, sd[k]) for k, v in model.state_dict().items())
    with torch.no_grad(): v = model.flux_forward(torch.randn(1, 312, 20), torch.randn(1, 77, 1024), torch.randn(1, 512), torch.tensor([0.5]))
    assert v.shape == (1, 312, 20) and torch.isfinite(v).all()


@pytest.mark.parametrize('form', ['plain', 'state_dict', 'weights', 'ema', 'leftovers', 'module'])
def test_every_published_form_loads_strictly(tmp_path, form):
    sd = small_fluxaudio()
    wrap = {'plain': lambda: sd, 'state_dict': lambda: {'state_dict': sd}, 'weights': lambda: {'it': 3, 'weights': sd},
            'ema': lambda: {'step': torch.tensor(7), **{f'ema_model.{k}': v for k, v in sd.items()},
                            **{f'online_model.{k}': v * 0 for k, v in sd.items()}},
            'leftovers': lambda: {**sd, 't_embed.freqs': torch.ones(128), 'latent_rot': torch.ones(1, 30, 16, 2, 2),
                                  'text_rot': torch.ones(1, 8, 16, 2, 2)},
            'module': lambda: {f'module.{k}': v for k, v in sd.items()}}[form]
    torch.save(wrap(), tmp_path/'fluxaudio_s_full.pth')
    model = load_fluxaudio(tmp_path/'fluxaudio_s_full.pth')
    assert (model.cfg.width, model.cfg.n_joint, model.cfg.n_single, model.cfg.text_dim) == (64, 2, 1, 32)
    got = model.state_dict()
    assert got.keys() == sd.keys() and all(torch.equal(got[k], sd[k]) for k in sd)
    x, tf, tc, t = torch.randn(2, 30, 20), torch.randn(2, 8, 32), torch.randn(2, 16), torch.tensor([0.2, 0.7])
    with torch.no_grad(): v = model.flux_forward(x, tf, tc, t)
    reference = Backbone(model.cfg); reference.load_state_dict(sd)
    with torch.no_grad(): assert torch.equal(v, reference.flux_forward(x, tf, tc, t))


def test_submission_checkpoint_lists_its_score_head(tmp_path):
    sd = {k: torch.zeros(v.shape) for k, v in paper_state(**FLUXAUDIO_VARIANTS['44k']).items()}
    sd.update({'score_mlp.0.weight': torch.zeros(448, 17), 'score_mlp.0.bias': torch.zeros(448)})
    torch.save({'state_dict': sd}, tmp_path/'sub1_seed42_fluxaudio_s.pt')
    with pytest.raises(UserError, match='not FluxAudio'): load_fluxaudio(tmp_path/'sub1_seed42_fluxaudio_s.pt')
    model = load_fluxaudio(tmp_path/'sub1_seed42_fluxaudio_s.pt', allow_extra=True)
    assert model.extra_keys == ['score_mlp.0.bias', 'score_mlp.0.weight']
    assert (model.cfg.latent_channels, model.cfg.latent_frames, model.cfg.sample_rate) == (40, 430, 44100)


def test_bad_checkpoints_are_one_line_errors(tmp_path):
    with pytest.raises(UserError, match='no FluxAudio checkpoint'): load_fluxaudio(tmp_path/'absent.pth')
    (tmp_path/'junk.pth').write_bytes(b'not a checkpoint')
    with pytest.raises(UserError, match='not a readable PyTorch checkpoint'): load_fluxaudio(tmp_path/'junk.pth')
    sd = small_fluxaudio()
    sd['fused_blocks.0.ffn.w1.weight'] = torch.zeros(16, 64, 1)
    with pytest.raises(UserError, match='another shape') as e: load_fluxaudio(sd)
    assert '\n' not in str(e.value)


def test_rope_turns_interleaved_pairs():
    "Pair i is (x[2i], x[2i+1]); at position p it turns by p * 10000^(-2i/d)."
    d = 6
    cos, sin = rope_tables(3, d)
    x = torch.arange(1., d + 1).expand(1, 1, 3, d)
    out = apply_rope(x, cos, sin)[0, 0]
    for p in range(3):
        for i in range(d // 2):
            a = p * 10000 ** (-2 * i / d)
            x0, x1 = 2 * i + 1., 2 * i + 2.
            assert torch.allclose(out[p, 2 * i:2 * i + 2], torch.tensor([x0 * math.cos(a) - x1 * math.sin(a), x0 * math.sin(a) + x1 * math.cos(a)]), atol=1e-5)


def test_qkv_rows_are_laid_out_per_head():
    "Output unit (h * head_dim + c) * 3 + j of the qkv layer is channel c of head h of q (j=0), k (j=1) or v (j=2)."
    attn = SelfAttention(6, 2)
    attn.q_norm = attn.k_norm = torch.nn.Identity()
    x = torch.randn(1, 1, 6)
    with torch.no_grad(): q, k, v, flat = *attn.qkv_heads(x), attn.qkv(x)[0, 0]
    for h in range(2):
        for c in range(3):
            for j, t in enumerate((q, k, v)): assert t[0, h, 0, c] == flat[(h * 3 + c) * 3 + j]


def test_timestep_sinusoids_of_raw_t():
    "cos of t * 10000^(-2k/dim) for k < dim/2, then sin; t is used as it is, in [0, 1]."
    t = torch.tensor([0.0, 0.25, 1.0])
    f = timestep_features(t, 8)
    for n, tv in enumerate(t.tolist()):
        want = [math.cos(tv * 10000 ** (-2 * k / 8)) for k in range(4)] + [math.sin(tv * 10000 ** (-2 * k / 8)) for k in range(4)]
        assert torch.allclose(f[n], torch.tensor(want), atol=1e-6)


def test_null_text_is_held_in_the_network():
    sd = small_fluxaudio()
    model = load_fluxaudio(sd)
    null = model.null_text(2)
    assert torch.equal(null['tokens'][1], sd['empty_string_feat']) and torch.equal(null['pooled'][0], sd['empty_string_feat_c'])
    assert null['mask'].all()  # FluxAudio attends to every one of T5's 77 positions


def test_config_read_off_a_small_checkpoint():
    small = make_config('backbone', 'debug', patch=1, predict='velocity', mask_text=False, input_skip=False, latent_channels=20)
    with torch.device('meta'): sd = Backbone(small).state_dict()
    cfg = fluxaudio_config(sd)
    with torch.device('meta'): again = Backbone(cfg).state_dict()
    assert {k: v.shape for k, v in again.items()} == {k: v.shape for k, v in sd.items()}
