"""Test-time BN adaptation: only BN statistics change, the prior mixes as Schneider et al.,
N = 0 equals statistics computed by hand, N = inf changes nothing, every condition starts
from the training statistics, and the sweep adapts clean and distorted data alike."""
from __future__ import annotations

import copy
from types import SimpleNamespace

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from fq_det.engine.bn_adapt import BNAdaptError, BNAdaptHook, adapt_bn, bn_layers, restore_bn

CROPS = 'configs/classification/synthvoc/resnet18_synthvoc-crops.py'


def _net() -> nn.Sequential:
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.Conv2d(4, 5, 3),
                        nn.BatchNorm2d(5))
    with torch.no_grad():  # training statistics far from the test data's
        net[1].running_mean.fill_(3.0)
        net[1].running_var.fill_(9.0)
        net[4].running_mean.fill_(-1.0)
        net[4].running_var.fill_(4.0)
    return net.eval()


def _hand_stats(net: nn.Sequential, x: torch.Tensor):
    """Each BN input's mean and unbiased variance, earlier BNs normalising by batch statistics."""
    h1 = net[0](x)
    m1, v1 = h1.mean(dim=(0, 2, 3)), h1.var(dim=(0, 2, 3), unbiased=True)
    a1 = F.relu(F.batch_norm(h1, None, None, net[1].weight, net[1].bias, training=True))
    h2 = net[3](a1)
    return (m1, v1), (h2.mean(dim=(0, 2, 3)), h2.var(dim=(0, 2, 3), unbiased=True))


def test_prior_zero_equals_hand_statistics_and_only_bn_statistics_change() -> None:
    net = _net()
    x = torch.randn(6, 3, 9, 9) * 2 + 0.5
    weights = {k: v.clone() for k, v in net.state_dict().items() if 'running' not in k
               and 'num_batches' not in k}
    (m1, v1), (m2, v2) = _hand_stats(copy.deepcopy(net), x)
    adapt_bn(net, [x], prior_strength=0, num_images=6)
    assert torch.allclose(net[1].running_mean, m1, atol=1e-5)
    assert torch.allclose(net[1].running_var, v1, atol=1e-5)
    assert torch.allclose(net[4].running_mean, m2, atol=1e-5)
    assert torch.allclose(net[4].running_var, v2, atol=1e-4)
    for k, v in net.state_dict().items():
        if k in weights:
            assert torch.equal(v, weights[k]), k
    assert not net.training and not net[1].training and net[1].momentum == 0.1


def test_prior_strength_mixes_and_infinity_changes_nothing() -> None:
    x = torch.randn(2, 3, 9, 9)
    test_only = _net()
    adapt_bn(test_only, [x], 0, num_images=2)
    mixed = _net()
    adapt_bn(mixed, [x], 4, num_images=2)  # weights 4/6 training, 2/6 test
    assert torch.allclose(mixed[1].running_mean, 4 / 6 * 3.0 + 2 / 6 * test_only[1].running_mean)
    assert torch.allclose(mixed[1].running_var, 4 / 6 * 9.0 + 2 / 6 * test_only[1].running_var)
    same = _net()
    reference = copy.deepcopy(same.state_dict())
    adapt_bn(same, [x], float('inf'), num_images=2)
    for k, v in same.state_dict().items():
        assert torch.equal(v, reference[k]), k
    y_ref = _net()(x)
    large = _net()
    adapt_bn(large, [x], 1e12, num_images=2)
    assert torch.allclose(large(x), y_ref, atol=1e-5)


def test_restore_and_conditions_do_not_leak() -> None:
    net = _net()
    reference = copy.deepcopy(net.state_dict())
    clean, noisy = torch.randn(4, 3, 9, 9), torch.randn(4, 3, 9, 9) * 5
    hook = BNAdaptHook(prior_strength=0, num_images=4)
    runner = SimpleNamespace(model=net, test_loop=SimpleNamespace(
        dataloader=SimpleNamespace(dataset=[0] * 4, __iter__=None)))

    def run(batch):
        runner.test_loop = SimpleNamespace(dataloader=_Loader([batch]))
        hook.before_test_epoch(runner)
        out = net(clean)
        hook.after_test_epoch(runner)
        return out

    clean_first = run(clean)
    run(noisy)
    for k, v in net.state_dict().items():
        assert torch.equal(v, reference[k]), k  # restored after each epoch
    assert torch.equal(run(clean), clean_first)  # independent of what ran before


class _Loader(list):
    @property
    def dataset(self):
        return [None] * sum(len(b) for b in self)


def test_bad_input_is_refused() -> None:
    with pytest.raises(BNAdaptError, match='prior_strength must be a number >= 0'):
        BNAdaptHook(prior_strength=-1)
    with pytest.raises(BNAdaptError, match='prior_strength'):
        adapt_bn(_net(), [torch.zeros(1, 3, 9, 9)], float('nan'), 1)
    with pytest.raises(BNAdaptError, match='num_images'):
        BNAdaptHook(num_images=0)
    with pytest.raises(BNAdaptError, match='no BatchNorm layer'):
        adapt_bn(nn.Sequential(nn.Conv2d(3, 3, 1)), [torch.zeros(1, 3, 4, 4)], 0, 1)
    net = _net()
    reference = copy.deepcopy(net.state_dict())
    with pytest.raises(BNAdaptError, match='empty'):
        adapt_bn(net, [], 0, 1)
    for k, v in net.state_dict().items():
        assert torch.equal(v, reference[k]), k  # a failed adaptation restores the statistics


def test_sweep_adapts_every_condition(synthetic_voc_root, tmp_path, repo_root) -> None:
    """The classification sweep with the hook: clean changes, and clean is the same whether
    or not a distortion is evaluated in the same sweep."""
    from mmengine.config import Config
    from mmengine.registry import MODELS, init_default_scope

    from fq_det.evaluation import run_sweep
    from fq_det.datasets.data_check import set_data_root
    from fq_det.evaluation.per_image import load_per_image
    from fq_det.evaluation.robustness import per_image_file

    cfg = Config.fromfile(str(repo_root / CROPS))
    set_data_root(cfg, str(synthetic_voc_root))
    init_default_scope(cfg.default_scope)
    torch.manual_seed(0)
    model = MODELS.build(cfg.model)
    for bn in bn_layers(model).values():  # training statistics unlike the crops'
        bn.running_mean.fill_(0.5)
        bn.running_var.fill_(3.0)
    ckpt = tmp_path / 'model.pth'
    torch.save(dict(state_dict=model.state_dict()), ckpt)

    def sweep(name, distortions, hooks):
        c = copy.deepcopy(cfg)
        c.custom_hooks = hooks
        run_sweep('classification', c, str(ckpt), tmp_path / name, distortions=distortions,
                                      severities=[4], save_per_image=True)
        return load_per_image(per_image_file(str(tmp_path / name), None, 0, 0))

    plain = sweep('plain', ['ngrn'], [])
    adapted = sweep('adapted', ['ngrn'], [dict(type='mmdet.BNAdaptHook', prior_strength=0,
                                               num_images=8)])
    clean_only = sweep('clean_only', [], [dict(type='mmdet.BNAdaptHook', prior_strength=0,
                                               num_images=8)])
    # clean predictions: changed by the adaptation, unchanged by the distortion run before
    assert np.array_equal(adapted['topk_labels'], clean_only['topk_labels'])
    assert not np.array_equal(adapted['topk_labels'], plain['topk_labels'])


def test_sweep_resume_key_tells_adapted_from_plain(repo_root) -> None:
    from mmengine.config import Config

    from fq_det.evaluation.sweep_store import config_digest
    cfg = Config.fromfile(str(repo_root / CROPS))
    adapted = copy.deepcopy(cfg)
    adapted.custom_hooks = [dict(type='mmdet.BNAdaptHook', prior_strength=0, num_images=8)]
    assert config_digest(cfg) != config_digest(adapted)


def test_frozen_stages_and_norm_eval_backbones_are_adapted_and_said_so(capsys) -> None:
    from mmengine.logging import MMLogger

    from mmdet.models.backbones import ResNet
    torch.manual_seed(0)
    net = ResNet(depth=18, base_channels=8, frozen_stages=1, norm_eval=True)
    net.train()  # norm_eval: every BN stays in eval mode; frozen stages have no gradient
    before = net.bn1.running_mean.clone()
    x = torch.randn(4, 3, 32, 32) * 3 + 1
    saved = adapt_bn(net, [x], 0, num_images=4)
    assert not torch.allclose(net.bn1.running_mean, before)  # a frozen stage's BN adapted
    assert not net.bn1.training and not net.layer3[0].bn1.training  # modes as they were
    restore_bn(net, saved)
    assert torch.equal(net.bn1.running_mean, before)

    MMLogger.get_instance('bn_adapt_test')
    hook = BNAdaptHook(prior_strength=0, num_images=4)
    runner = SimpleNamespace(model=net, test_loop=SimpleNamespace(dataloader=_Loader([x])))
    hook.before_test_epoch(runner)
    hook.after_test_epoch(runner)
    out = capsys.readouterr().out
    assert 'adapting 20 BatchNorm layers (5 of them frozen in training)' in out


def test_robustness_tools_take_bn_adapt(synthetic_voc_root, tmp_path, repo_root, capsys) -> None:
    """--bn-adapt N reaches the sweep as the hook; a negative N is a named error before work."""
    from mmengine.config import Config
    from mmengine.registry import MODELS, init_default_scope

    from helpers import load_script
    tool = load_script('tools/classification/test_robustness.py')
    cfg = Config.fromfile(str(repo_root / CROPS))
    init_default_scope(cfg.default_scope)
    torch.manual_seed(0)
    ckpt = tmp_path / 'model.pth'
    torch.save(dict(state_dict=MODELS.build(cfg.model).state_dict()), ckpt)
    common = [str(repo_root / CROPS), str(ckpt), '--data-root', str(synthetic_voc_root),
              '--distortions', 'ngrn', '--severities', '2']
    with pytest.raises(SystemExit) as exit_info:
        tool.main(common + ['--out-dir', str(tmp_path / 'bad'), '--bn-adapt', '-1'])
    assert exit_info.value.code == 2
    assert 'prior_strength must be a number >= 0' in capsys.readouterr().err
    assert not (tmp_path / 'bad' / 'partial.json').exists()
    tool.main(common + ['--out-dir', str(tmp_path / 'ok'), '--bn-adapt', '--bn-adapt-images', '4'])
    assert 'BNAdaptHook: adapting' in capsys.readouterr().out
