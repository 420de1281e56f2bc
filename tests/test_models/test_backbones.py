"""ResNetSF / ResNetPOW / ResNetHPOW against MMDetection's plain ResNet."""
from __future__ import annotations

import pytest
import torch
from mmdet.models.backbones import ResNet
from mmdet.models.backbones.resnet import BasicBlock, Bottleneck
from mmdet.registry import MODELS
from mmengine.registry import init_default_scope

from fq_det.models import (HPOW, POW, SF, QuantBasicBlock, QuantBottleneck, ResNetHPOW, ResNetPOW,
                           ResNetSF)

QUANT_KEY_PARTS = ('.alpha', '.width', '.reduce_', '.expand_', '._extra_state')


def _randomize_norms(model: torch.nn.Module, seed: int = 0) -> None:
    """Non-trivial BN statistics and affine parameters (fresh ones hide bugs)."""
    g = torch.Generator().manual_seed(seed)
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            n = m.num_features
            m.weight.data = torch.rand(n, generator=g) + 0.5
            m.bias.data = torch.randn(n, generator=g) * 0.2
            m.running_mean = torch.randn(n, generator=g) * 0.2
            m.running_var = torch.rand(n, generator=g) + 0.5


def _plain(depth: int, **kw) -> ResNet:
    torch.manual_seed(0)
    model = ResNet(depth=depth, base_channels=8, **kw)
    model.init_weights()
    _randomize_norms(model)
    model.eval()  # mmdet's ResNet.train() returns None: no chaining
    return model


@pytest.mark.parametrize('depth', [18, 50])
@pytest.mark.parametrize('cls,cfg', [(ResNetPOW, dict(num_splits=1)),
                                     (ResNetPOW, dict(num_splits=4)),
                                     (ResNetHPOW, dict(num_splits=2, reduction=4))])
def test_plain_state_dict_gives_the_plain_resnet(depth, cls, cfg):
    plain = _plain(depth)
    quant = cls(depth=depth, base_channels=8, quant_cfg=cfg)
    quant.init_weights()
    result = quant.load_state_dict(plain.state_dict(), strict=False)
    assert result.unexpected_keys == []
    assert result.missing_keys, 'the quantizers must add their own parameters'
    assert all(any(part in k for part in QUANT_KEY_PARTS)
               for k in result.missing_keys), result.missing_keys
    quant.eval()
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        outs_plain, outs_quant = plain(x), quant(x)
    assert len(outs_plain) == len(outs_quant) == 4
    for a, b in zip(outs_plain, outs_quant):
        assert (a - b).abs().max() <= 1e-5
    # the quantizers really are in the forward path: moving alpha changes the output
    with torch.no_grad():
        for m in quant.modules():
            if isinstance(m, POW):
                m.alpha.fill_(0.1)
            if isinstance(m, HPOW):
                m.expand_bias.fill_(0.1)
        moved = quant(x)
    assert torch.isfinite(moved[-1]).all() and (moved[-1] - outs_plain[-1]).abs().max() > 1e-3


def test_pretrained_init_cfg_loads_a_plain_checkpoint(tmp_path):
    plain = _plain(18)
    ckpt = tmp_path / 'resnet18_plain.pth'
    torch.save(plain.state_dict(), ckpt)
    quant = ResNetHPOW(depth=18,
                       base_channels=8,
                       quant_cfg=dict(reduction=2),
                       init_cfg=dict(type='Pretrained', checkpoint=str(ckpt)))
    quant.init_weights()
    quant.eval()
    hpows = [m for m in quant.modules() if isinstance(m, HPOW)]
    assert len(hpows) == 2 * 8  # 8 BasicBlocks x (act1, act2)
    assert all(torch.count_nonzero(h.expand_weight) == 0
               for h in hpows)  # identity after init_weights
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        for a, b in zip(plain(x), quant(x)):
            assert (a - b).abs().max() <= 1e-5


@pytest.fixture
def mmengine_log():
    """The lines mmengine's current logger writes during the test."""
    import logging

    from mmengine.logging import MMLogger
    lines = []
    handler = logging.Handler()
    handler.emit = lambda record: lines.append(record.getMessage())
    logger = MMLogger.get_current_instance()
    logger.addHandler(handler)
    yield lines
    logger.removeHandler(handler)


@pytest.mark.parametrize('cls, cfg, stages, line', [
    (ResNetPOW, dict(num_splits=1), (False, True, True, True),
     '39 quantizer exponents start at the identity: not in the checkpoint'),
    (ResNetHPOW, dict(reduction=2), None,
     '16 quantizer exponent branches start at the identity: not in the checkpoint')])
def test_a_plain_checkpoint_reports_the_quantizer_state_in_one_line(tmp_path, mmengine_log, cls,
                                                                    cfg, stages, line):
    depth = 50 if cls is ResNetPOW else 18
    ckpt = tmp_path / 'plain.pth'
    torch.save(_plain(depth).state_dict(), ckpt)
    quant = cls(depth=depth, base_channels=8, quant_cfg=cfg, stage_with_quant=stages,
                init_cfg=dict(type='Pretrained', checkpoint=str(ckpt)))
    quant.init_weights()
    assert line in mmengine_log
    assert not any('missing keys' in m for m in mmengine_log), mmengine_log
    # outside the initialisation, a load lists the missing keys as torch does
    assert quant.load_state_dict(torch.load(ckpt), strict=False).missing_keys


def test_quantizers_the_checkpoint_partly_holds_stay_listed_as_missing(tmp_path, mmengine_log):
    """A layer whose exponents are in the checkpoint loads them; one with only part of its
    state there is a checkpoint of another model: mmengine's list names it."""
    state = _plain(50).state_dict()
    pow_state = ResNetPOW(depth=50, base_channels=8).state_dict()
    state['layer2.0.act1.alpha'] = torch.full_like(pow_state['layer2.0.act1.alpha'], 0.25)
    state['layer2.0.act1._extra_state'] = pow_state['layer2.0.act1._extra_state']
    state['layer2.0.act2._extra_state'] = pow_state['layer2.0.act2._extra_state']
    ckpt = tmp_path / 'partial.pth'
    torch.save(state, ckpt)
    quant = ResNetPOW(depth=50, base_channels=8, stage_with_quant=(False, True, True, True),
                      init_cfg=dict(type='Pretrained', checkpoint=str(ckpt)))
    quant.init_weights()
    assert '37 quantizer exponents start at the identity: not in the checkpoint' in mmengine_log
    missing = [m for m in mmengine_log if 'missing keys' in m]
    assert len(missing) == 1 and missing[0].rstrip().endswith(
        'missing keys in source state_dict: layer2.0.act2.alpha')
    assert bool((quant.layer2[0].act1.alpha == 0.25).all())


def test_fresh_init_keeps_quantizers_identity():
    """mmengine's Kaiming Conv2d init must not break HPOW's zero-initialised last conv."""
    model = ResNetHPOW(depth=50, base_channels=8, quant_cfg=dict(reduction=4))
    model.init_weights()
    assert all(
        torch.count_nonzero(m.expand_weight) == 0 for m in model.modules() if isinstance(m, HPOW))
    model = ResNetPOW(depth=18, base_channels=8)
    model.init_weights()
    assert all(torch.count_nonzero(m.alpha) == 0 for m in model.modules() if isinstance(m, POW))


def test_stage_with_quant_and_block_layout():
    model = ResNetPOW(depth=50,
                      base_channels=8,
                      stage_with_quant=(False, True, False, True),
                      quant_cfg=dict(num_splits=2))
    for i, quantized in enumerate(model.stage_with_quant):
        for block in getattr(model, f'layer{i + 1}'):
            assert isinstance(block, QuantBottleneck) == quantized
            assert isinstance(block, Bottleneck)
            if quantized:
                assert not hasattr(block, 'relu')
                assert [type(getattr(block, f'act{j}')) for j in (1, 2, 3)] == [POW] * 3
                assert block.act1.alpha.shape == (8 * 2**i, 2)
                assert block.act3.alpha.shape == (8 * 2**i * 4, 2)
    keys = [k for k in model.state_dict() if k.endswith('.alpha')]
    assert keys and all(k.startswith(('layer2.', 'layer4.')) for k in keys)
    assert 'layer2.0.act1.alpha' in keys
    r18 = ResNetSF(depth=18, base_channels=8, quant_cfg=dict(resolution=100))
    assert isinstance(r18.layer1[0], QuantBasicBlock) and isinstance(r18.layer1[0], BasicBlock)
    assert isinstance(r18.layer1[0].act2, SF) and r18.layer1[0].act2.resolution == 100


def test_sf_backbone_outputs_are_on_the_grid():
    model = ResNetSF(depth=18, base_channels=8, quant_cfg=dict(resolution=10))
    model.eval()
    _randomize_norms(model)
    with torch.no_grad():
        outs = model(torch.randn(1, 3, 64, 64))
    for out in outs:  # each stage ends with an SF activation: multiples of 1/10
        assert torch.allclose(out * 10, torch.round(out * 10), atol=1e-3)
        assert (out >= 0).all()


def test_training_mode_frozen_stages_norm_eval_and_with_cp():
    torch.manual_seed(0)
    kw = dict(depth=50,
              base_channels=8,
              frozen_stages=1,
              norm_eval=True,
              quant_cfg=dict(alpha_reg=dict(type='L2', weight=1e-3)))
    model = ResNetPOW(**kw)
    model.init_weights()
    _randomize_norms(model)  # zero_init_residual would cut the gradient to act1/act2
    for m in model.modules():  # small: p > 1 compounds over 48 untrained layers
        if isinstance(m, POW):
            m.alpha.data.uniform_(-0.05, 0.05)
    model.train()
    assert not any(p.requires_grad for p in model.layer1.parameters())
    assert model.layer2[0].act1.alpha.requires_grad
    assert not model.layer2[0].bn1.training  # norm_eval
    cp_model = ResNetPOW(with_cp=True, **kw)
    cp_model.load_state_dict(model.state_dict())
    cp_model.train()
    x = torch.randn(2, 3, 64, 64)
    grads = []
    for m in (model, cp_model):
        sum(o.square().mean() for o in m(x)).backward()
        grads.append(m.layer3[1].act2.alpha.grad.clone())
        assert m.layer1[0].act1.alpha.grad is None  # frozen
    assert torch.isfinite(grads[0]).all() and grads[0].abs().sum() > 0
    assert torch.allclose(grads[0], grads[1], rtol=1e-4, atol=1e-6 * grads[0].abs().max().item())


def test_bottleneck_plugins_still_work():
    init_default_scope('mmdet')
    model = ResNetPOW(depth=50,
                      base_channels=8,
                      plugins=[
                          dict(cfg=dict(type='HPOW', reduction=4),
                               position='after_conv3',
                               stages=(False, False, True, True)),
                          dict(cfg=dict(type='SF', resolution=100), position='after_conv2')
                      ])
    block = model.layer3[0]
    assert isinstance(block.hpow, HPOW) and block.hpow.channels == 8 * 4 * 4
    assert isinstance(block.sf, SF)
    assert not hasattr(model.layer1[0], 'hpow')
    calls = []
    block.sf.register_forward_hook(lambda *a: calls.append(1))
    model.eval()
    outs = model(torch.randn(1, 3, 64, 64))
    assert len(calls) == 1 and len(outs) == 4


def test_registry_builds_every_backbone():
    init_default_scope('mmdet')
    for t, cfg in (('ResNetSF', dict(resolution=10)), ('ResNetPOW', dict(num_splits=2)),
                   ('ResNetHPOW', dict()), ('ResNetQuant', dict(type='POW'))):
        model = MODELS.build(
            dict(type=t, depth=18, base_channels=8, out_indices=(3, ), quant_cfg=cfg))
        model.eval()
        assert model(torch.randn(1, 3, 32, 32))[0].shape == (1, 64, 1, 1)


@pytest.mark.parametrize('kwargs,match', [
    (dict(stage_with_quant=(True, True)), 'tuple of 4 bools'),
    (dict(stage_with_quant=(True, True, True), num_stages=4), 'tuple of 4 bools'),
    (dict(stage_with_quant=(1, 1, 1, 1)), 'tuple of 4 bools'),
    (dict(quant_cfg=dict(type='SF')), "quantizes with 'POW'"),
    (dict(quant_cfg=dict(num_splits=0)), 'num_splits'),
    (dict(quant_cfg=dict(alpha_reg=dict(type='L0', weight=1))), "'L1', 'L2'"),
    (dict(quant_cfg=dict(alpha_reg=dict(type='L1', weight=-0.1))), '>= 0'),
    (dict(quant_cfg=dict(num_split=2)), "unknown POW quant_cfg key 'num_split' .*'num_splits'"),
])
def test_backbone_invalid_arguments(kwargs, match):
    with pytest.raises((ValueError, TypeError), match=match):
        ResNetPOW(depth=18, base_channels=8, **kwargs)


def test_backbone_invalid_resolution_and_missing_type():
    with pytest.raises(ValueError, match='resolution'):
        ResNetSF(depth=18, base_channels=8, quant_cfg=dict(resolution=0))
    from fq_det.models import ResNetQuant
    with pytest.raises(ValueError, match="'SF', 'POW', 'HPOW'"):
        ResNetQuant(depth=18, base_channels=8, quant_cfg=dict())
    with pytest.raises(ValueError, match="unknown quantizer type 'HPWO' .did you mean 'HPOW'"):
        ResNetQuant(depth=18, base_channels=8, quant_cfg=dict(type='HPWO'))


@pytest.mark.parametrize('depth', [18, 50])
@pytest.mark.parametrize('cls,cfg', [(ResNetSF, dict(resolution=10)), (ResNetPOW, dict(num_splits=2)),
                                     (ResNetHPOW, dict(num_splits=1))])
@pytest.mark.parametrize('kernels_on', [True, False], ids=['kernel', 'torch'])
def test_empty_batch_like_plain_resnet(depth, cls, cfg, kernels_on, monkeypatch):
    """A batch of size 0 passes forward and backward, in training and eval mode, with the
    plain ResNet's output shapes."""
    from fq_det.models.quantizers import kernels
    if not kernels_on:
        monkeypatch.setattr(kernels, '_lib', None)
        monkeypatch.setattr(kernels, '_tried', True)
    plain = _plain(depth)
    model = cls(depth=depth, base_channels=8, quant_cfg=cfg)
    for name, param in model.named_parameters():
        if any(part in name for part in QUANT_KEY_PARTS):
            param.data.uniform_(-0.3, 0.3)  # not the identity fast path
    x = torch.zeros(0, 3, 32, 32, requires_grad=True)
    for training in (True, False):
        plain.train(training)
        model.train(training)
        expected = [tuple(o.shape) for o in plain(x)]
        outs = model(x)
        assert [tuple(o.shape) for o in outs] == expected
        sum(o.sum() for o in outs).backward()
        assert x.grad.shape == x.shape
