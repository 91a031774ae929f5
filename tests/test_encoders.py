"Fast checks of ttm_pref.encoders that need no world: registry, null text, shapes."
import math
import pytest, torch
from ttm_pref.core import UserError, make_config
from ttm_pref.encoders import (EMBEDDERS, load_embedder, contrastive_loss, MiniClap, MusicFeatures, augment_mel,
                               clap_score, retrieval_metrics)

def test_registry_names():
    assert {'minilm', 'clap', 'music-features'} <= set(EMBEDDERS)  # the paper-scale loaders: tests/test_assets.py
    with pytest.raises(UserError, match='known embedders'): load_embedder('nope')

def test_contrastive_loss_bounds():
    a = torch.nn.functional.normalize(torch.randn(32, 8), dim=1)
    assert contrastive_loss(a, a, torch.tensor(math.log(100.))) < 0.05

def test_miniclap_shapes_and_null_text():
    clap = MiniClap(make_config('clap', 'debug')).eval()
    x = 0.1 * torch.randn(2, 16000)
    assert clap.embed_audio(x).shape == (2, clap.dim)
    t = clap.embed_text(['a loud drum groove', ''])
    assert t[1].abs().sum() == 0 and abs(t[0].norm() - 1) < 1e-5
    assert clap_score(clap, x, ['a', '']).shape == (2,)
    m, sim = retrieval_metrics(clap, 0.1 * torch.randn(4, 16000), ['a', 'b', 'c', 'd'])
    assert sim.shape == (4, 4) and 0 <= m['recall_at_1'] <= m['recall_at_10'] == 1.0

def test_augment_keeps_shape_and_shifts():
    mel = torch.arange(10.).repeat(2, 3, 1)
    out = augment_mel(mel, 0.0, 2, torch.Generator().manual_seed(0))
    assert out.shape == mel.shape and torch.equal(out.sort(-1).values, mel)

def test_music_features_dim():
    enc = MusicFeatures(make_config('music_features', 'debug'))
    assert enc.embed_audio(0.1 * torch.randn(3, 16000 * 2)).shape == (3, enc.dim)
