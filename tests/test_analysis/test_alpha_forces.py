"""The alpha-forces hook: the task gradient it records is the analytic one, without the L1 term."""
from __future__ import annotations

import math
from types import SimpleNamespace

import pytest
import torch

from fq_det.analysis.alpha_forces import AlphaForcesHook, format_forces_table, summarize_forces
from fq_det.models.quantizers import POW


def test_hook_records_the_task_gradient_without_the_penalty() -> None:
    layer = POW(channels=2, alpha_reg=dict(type='L1', weight=0.5), with_relu=True)
    model = torch.nn.Sequential(layer)
    hook = AlphaForcesHook()
    hook.before_train(SimpleNamespace(model=model))
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    x = torch.full((1, 2, 2, 2), 2.0)
    x[:, :, 0, 0] = -1.0  # below 0: ReLU'd away, no gradient
    for _ in range(3):
        opt.zero_grad()
        y = model(x)
        p = 1 + layer.alpha.detach()
        # d(sum y)/d alpha_c = sum_i x_i ** p_c * ln x_i over the channel's 3 positive inputs
        expected = (3 * 2.0 ** p * math.log(2.0)).numpy()
        (y.sum() + layer.alpha_penalty()).backward()
        opt.step()
        assert hook.grads['0'][-1] == pytest.approx(expected, rel=1e-4)
    hook.after_train(None)
    rows = summarize_forces(hook)
    assert len(rows) == 1 and rows[0]['steps'] == 3
    assert rows[0]['consistency'] == pytest.approx(1.0, rel=1e-3)  # same sign every step
    assert rows[0]['l1_pull'] == 0.5
    assert rows[0]['frac_above_width'] == pytest.approx(6 / 8)  # 2.0 > 1 in 6 of 8 inputs
    assert '| 0 |' in format_forces_table(rows)
