"The reward's prompt anchor: same-prompt margins untouched, the prompt's average clip at zero, older saved rewards still load."
import torch
from ttm_pref.core import make_config
from ttm_pref.reward import RewardModel, reward_from_state


def _trained_looking(model: RewardModel) -> RewardModel:
    torch.manual_seed(0)
    with torch.no_grad():
        for p in model.parameters(): p.normal_(0, 0.5)
        model.feat_mean.normal_(); model.feat_std.uniform_(0.5, 2.0)
    return model.eval()


def test_anchor_keeps_same_prompt_margins_and_centres_every_prompt():
    m = _trained_looking(RewardModel(12, (16, 8), 0.0, text_dim=4))
    xa, xb = torch.randn(6, 12), torch.randn(6, 12)
    xb[:, -4:] = xa[:, -4:]
    with torch.no_grad():
        torch.testing.assert_close(m(xa) - m(xb), m.score(xa) - m.score(xb))
        average = torch.cat([m.feat_mean[:-4].expand(6, -1), xa[:, -4:]], 1)
        torch.testing.assert_close(m(average), torch.zeros(6), atol=1e-6, rtol=0)
        assert m.score(average).std() > 1e-3  # unanchored, the prompts' average clips differ


def test_reward_saved_before_the_anchor_loads_and_scores_as_trained():
    cfg = make_config('reward', 'debug')
    old = _trained_looking(RewardModel(10, tuple(cfg.hidden), cfg.dropout))
    state = {k: v for k, v in old.state_dict().items() if k != 'text_dim'}
    reward = reward_from_state(state, cfg, features=None)
    x = torch.randn(5, 10)
    with torch.no_grad(): torch.testing.assert_close(reward.model(x), old(x))
    assert int(reward.model.text_dim) == 0
