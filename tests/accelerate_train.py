"""Train the debug backbone on synthetic data in however many processes launched this script (see test_accelerate.py).

`python accelerate_train.py OUT` trains in one process; `accelerate launch ... accelerate_train.py OUT` in several.
Either way the run is interrupted at step STOP (after the checkpoint of step CKPT), resumed, and saved through
`run_stage` into OUT/backbone, with the per-step losses, the number of processes and each process's share of the
batch in its metrics. Every process then checks that it holds exactly the weights the main process saved.
"""
import sys
from pathlib import Path

import torch
import ttm_pref.backbone as backbone
from ttm_pref.core import RunDir, run_stage, make_config, launch_state

STEPS, CKPT, STOP, BATCH, CLIPS = 20, 10, 15, 8, 16

def synthetic_data(cfg, n: int) -> dict:
    "Tensors shaped like `prepare_training_data`'s: latents [N, C, F] and cached text (no world, no text encoder)."
    g = torch.Generator().manual_seed(0)
    return {'latents': torch.randn(n, cfg.latent_channels, cfg.latent_frames, generator=g),
            'tokens': torch.randn(n, cfg.text_tokens, cfg.text_dim, generator=g),
            'mask': torch.rand(n, cfg.text_tokens, generator=g) < 0.7,
            'pooled': torch.randn(n, cfg.pooled_dim, generator=g)}

class Stop(Exception): "The simulated crash."

def main(out: Path):
    torch.set_num_threads(1)
    state = launch_state()
    processes = 1 if state is None else state.num_processes
    cfg = make_config('backbone', 'debug', steps=STEPS, batch_size=BATCH, ckpt_every=CKPT)
    run = RunDir(out)
    data, ckpt, shares = synthetic_data(cfg, CLIPS), run.root/'backbone.train.pt', []

    real_batch, real_loss = backbone.flow_batch, backbone._loss
    def stopping_batch(d, step, c):
        if step == STOP: raise Stop()
        return real_batch(d, step, c)
    def recording_loss(model, b):
        shares.append(len(b['latents'])); return real_loss(model, b)
    backbone._loss = recording_loss

    def train():
        torch.manual_seed(0)
        return backbone.train_backbone(cfg, data, backbone.build_backbone(cfg), ckpt_path=ckpt, progress=False)

    backbone.flow_batch = stopping_batch
    try: train(); raise AssertionError(f'training did not stop at step {STOP}')
    except Stop: pass
    backbone.flow_batch = real_batch

    box = {}
    def build():
        assert ckpt.exists(), 'no checkpoint to resume from'
        box['model'], losses = train()
        return box['model'].state_dict(), cfg, {'losses': losses, 'processes': processes, 'share': shares[-1]}
    saved, _, metrics = run_stage(run, 'backbone', build, verbose=False)

    own = box['model'].state_dict()
    assert saved.keys() == own.keys() and all(torch.equal(saved[k], own[k]) for k in own), 'weights differ from the saved ones'
    assert not ckpt.exists(), 'the checkpoint was not removed'
    assert metrics['processes'] == processes and len(metrics['losses']) == STEPS
    print(f'ok: process {0 if state is None else state.process_index} of {processes}', flush=True)

if __name__ == '__main__': main(Path(sys.argv[1]))
