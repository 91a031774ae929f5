import numpy as np
from ttm_pref.music import sample_spec, render, render_stems
from ttm_pref.captions import write_caption, caption_attributes, caption_agrees

def test_render_deterministic_and_stems_sum():
    for s in range(5):
        spec = sample_spec(np.random.default_rng(s))
        st = render_stems(spec, seconds=1.0)
        assert np.array_equal(st, render_stems(spec, seconds=1.0))
        assert np.array_equal(render(spec, seconds=1.0), st.sum(0))
        assert np.abs(st.sum(0)).max() <= 0.9 + 1e-4

def test_caption_round_trip():
    rng = np.random.default_rng(7)
    for _ in range(300):
        spec = sample_spec(rng)
        for h in (False, True):
            c = write_caption(spec, rng, heldout=h)
            assert caption_agrees(spec, caption_attributes(c)), c
            assert 8 <= len(c.split()) <= 45, c
