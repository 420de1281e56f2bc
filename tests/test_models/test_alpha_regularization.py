"""Alpha regularisation: the penalty, its effect, and the hook that puts it into the loss."""
from __future__ import annotations

from types import SimpleNamespace
from unittest import mock

import pytest
import torch
from mmengine.optim import OptimWrapper
from mmengine.registry import init_default_scope

from fq_det.engine import AlphaRegularizationHook
from fq_det.models import HPOW, POW, AlphaRegularizer, ResNetPOW, alpha_penalty
from fq_det.models.quantizers import regularizer as reg_module


def test_penalty_values():
    alpha = torch.tensor([0.5, -0.25, 0.0, 1.0])
    assert AlphaRegularizer('L1', 0.1)(alpha).item() == pytest.approx(0.1 * 1.75)
    assert AlphaRegularizer('L2', 0.1)(alpha).item() == pytest.approx(0.1 * (0.25 + 0.0625 + 1.0))
    model = torch.nn.Sequential(POW(4, alpha_reg=dict(type='L1', weight=0.1)), POW(4),
                                POW(4, num_splits=2, alpha_reg=dict(type='L2', weight=0.5)))
    model[0].alpha.data = alpha.clone()
    model[1].alpha.data = alpha.clone()  # no regulariser: not counted
    model[2].alpha.data = torch.ones(4, 2)
    assert alpha_penalty(model).item() == pytest.approx(0.175 + 0.5 * 8)
    assert alpha_penalty(torch.nn.Sequential(POW(3))).item() == 0.0


@pytest.mark.parametrize('kind', ['L1', 'L2'])
def test_optimising_only_the_regulariser_drives_alpha_to_zero(kind):
    torch.manual_seed(0)
    layer = POW(256, num_splits=2, alpha_reg=dict(type=kind, weight=1.0))
    layer.alpha.data.uniform_(-0.5, 0.5)
    start = layer.alpha.detach().abs().mean()
    opt = torch.optim.SGD(layer.parameters(), lr=0.05)
    # L1's constant-size steps oscillate around 0 unless the step size decays
    sched = torch.optim.lr_scheduler.ExponentialLR(opt, gamma=0.97 if kind == 'L1' else 1.0)
    for _ in range(150):
        opt.zero_grad()
        layer.alpha_penalty().backward()
        opt.step()
        sched.step()
    a = layer.alpha.detach().abs()
    if kind == 'L1':  # most alphas exactly or nearly 0: identity channels
        assert (a < 2e-3).float().mean() >= 0.9
    else:
        assert a.mean() < 1e-3 * start.item() and a.max() < 1e-3  # geometric decay (1 - 2*lr)**n


def test_hpow_regulariser_acts_on_predicted_alpha():
    torch.manual_seed(0)
    layer = HPOW(16, reduction=4, alpha_reg=dict(type='L1', weight=1.0), with_relu=True)
    layer.expand_weight.data.normal_(0, 0.1)
    layer.expand_bias.data.normal_(0, 0.1)  # inside alpha_range: the clamp changes nothing
    x = torch.randn(4, 16, 6, 6)
    reg_module.mark_alpha_reg_handled(layer)
    layer.train()
    layer(x.clone())
    assert layer.alpha_penalty().item() == pytest.approx(layer.last_alpha.abs().sum().item() / 4,
                                                         rel=1e-4)
    first = layer.last_alpha.abs().mean().item()
    opt = torch.optim.SGD(layer.parameters(), lr=0.02)
    for _ in range(60):
        opt.zero_grad()
        layer(x.clone())
        layer.alpha_penalty().backward()
        opt.step()
    layer(x.clone())
    assert layer.last_alpha.abs().mean().item() < 0.2 * first


def test_missing_hook_warns_once_with_the_fix():
    layer = POW(4, alpha_reg=dict(type='L1', weight=1e-4)).train()
    with mock.patch.object(reg_module, '_warned', False), \
            mock.patch.object(reg_module, 'print_log') as log:
        layer(torch.rand(1, 4, 2, 2))
        layer(torch.rand(1, 4, 2, 2))
        assert log.call_count == 1
        assert "custom_hooks = [dict(type='AlphaRegularizationHook')]" in log.call_args[0][0]
    plain = POW(4).train()  # no regulariser: nothing to warn about
    handled = POW(4, alpha_reg=dict(type='L2', weight=1.0)).train()
    AlphaRegularizationHook().attach(torch.nn.Sequential(handled))
    with mock.patch.object(reg_module, '_warned', False), \
            mock.patch.object(reg_module, 'print_log') as log:
        plain(torch.rand(1, 4, 2, 2))
        handled(torch.rand(1, 4, 2, 2))
        with torch.no_grad():
            layer.eval()(torch.rand(1, 4, 2, 2))
        assert log.call_count == 0


def _tiny_faster_rcnn(tiny_detector):
    from mmdet.registry import MODELS
    from mmdet.testing import demo_mm_inputs
    init_default_scope('mmdet')
    cfg = tiny_detector.model_cfg(
        backbone=dict(type='ResNetPOW',
                      depth=18,
                      base_channels=16,
                      frozen_stages=-1,
                      norm_eval=False,
                      stage_with_quant=(False, True, True, True),
                      quant_cfg=dict(alpha_reg=dict(type='L1', weight=0.01)),
                      init_cfg=None),
        num_classes=3)
    torch.manual_seed(0)
    model = MODELS.build(cfg)
    model.init_weights()
    for m in model.modules():
        if isinstance(m, POW):
            m.alpha.data.uniform_(-0.2, 0.2)
    data = demo_mm_inputs(batch_size=1, image_shapes=[(3, 96, 96)], num_items=[2], num_classes=3)
    return model, data


def test_hook_adds_the_penalty_to_a_real_detector_loss(tiny_detector):
    model, data = _tiny_faster_rcnn(tiny_detector)
    model.train()
    hook = AlphaRegularizationHook()
    hook.before_train(SimpleNamespace(model=model))
    expected = alpha_penalty(model).item()
    assert expected > 0
    alpha = model.backbone.layer2[0].act1.alpha
    before = alpha.detach().clone()
    optim = OptimWrapper(torch.optim.SGD(model.parameters(), lr=0.1))
    log_vars = model.train_step(data, optim)
    assert log_vars['loss_alpha_reg'].item() == pytest.approx(expected, rel=1e-5)
    others = sum(v for k, v in log_vars.items()
                 if 'loss' in k and k not in ('loss', 'loss_alpha_reg'))
    assert log_vars['loss'].item() == pytest.approx((others + log_vars['loss_alpha_reg']).item(),
                                                    rel=1e-4)
    assert not torch.equal(before, alpha.detach())  # the step moved alpha
    # predict mode is untouched, and the hook comes off after training
    model.eval()
    with torch.no_grad():
        preds = model.test_step(data)
    assert len(preds) == 1
    hook.after_train(None)
    model.train()
    log_vars = model.train_step(data, optim)
    assert 'loss_alpha_reg' not in log_vars


def test_hook_penalty_changes_the_update_and_backbone_without_reg_is_a_noop(tiny_detector):
    """With the hook, alpha moves toward 0 by lr * weight * sign(alpha) more than without."""
    deltas = []
    for with_hook in (False, True):
        model, data = _tiny_faster_rcnn(tiny_detector)
        model.train()
        reg_module.mark_alpha_reg_handled(model)
        hook = AlphaRegularizationHook()
        if with_hook:
            hook.before_train(SimpleNamespace(model=model))
        alpha = model.backbone.layer3[1].act2.alpha
        before = alpha.detach().clone()
        torch.manual_seed(1)  # same proposal sampling in both runs
        model.train_step(data, OptimWrapper(torch.optim.SGD(model.parameters(), lr=0.1)))
        deltas.append(alpha.detach() - before)
        hook.after_train(None)
    diff = deltas[1] - deltas[0]
    assert torch.allclose(diff, -0.1 * 0.01 * torch.sign(before), atol=1e-6)
    plain = ResNetPOW(depth=18, base_channels=8)
    hook = AlphaRegularizationHook()
    hook.before_train(SimpleNamespace(model=plain))
    assert hook._handle is None


def test_hook_rejects_a_key_mmengine_would_not_sum():
    with pytest.raises(ValueError, match="'loss'"):
        AlphaRegularizationHook(loss_key='alpha_reg')
