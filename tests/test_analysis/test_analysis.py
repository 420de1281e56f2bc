"""Feature-moment shift (tools/analysis/feature_moments.py) and POW alpha statistics
(tools/analysis/alpha_histograms.py)."""
from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
import torch

from helpers import load_script, read_png


def _rows(path: Path) -> list[dict]:
    with open(path) as f:
        return list(csv.DictReader(f))


# ---- streaming moments ------------------------------------------------------------------
def test_running_moments_match_scipy_and_ignore_batching():
    from scipy import stats

    from fq_det.analysis import RunningMoments
    rng = np.random.default_rng(0)
    # skewed data far from 0: a naive sum-of-powers formula loses precision here
    x = rng.gamma(2.0, size=(9, 3, 5, 4)) + 1e4
    flat = np.moveaxis(x, 1, -1).reshape(-1, 3) - 0.0
    one = RunningMoments(3).update(torch.from_numpy(x))
    parts = RunningMoments(3)
    for a, b in ((0, 1), (1, 5), (5, 9)):
        parts.merge(RunningMoments(3).update(x[a:b]))
    for r in (one, parts):
        np.testing.assert_allclose(r.mean, flat.mean(0), rtol=1e-12)
        np.testing.assert_allclose(r.variance, flat.var(0), rtol=1e-8)
        np.testing.assert_allclose(r.skewness, stats.skew(flat), rtol=1e-6)
        np.testing.assert_allclose(r.kurtosis, stats.kurtosis(flat), rtol=1e-6)
    assert one.count == parts.count == 9 * 5 * 4


def test_running_moments_constant_channel_and_errors():
    from fq_det.analysis import RunningMoments, moment_shift
    r = RunningMoments(2).update(np.stack([np.full((4, 4), 3.0), np.arange(16.).reshape(4, 4)])[None])
    assert r.variance[0] == 0 and r.skewness[0] == 0 and r.kurtosis[0] == 0
    assert r.kurtosis[1] == pytest.approx(-1.2094, abs=1e-3)  # discrete uniform on 0..15
    with pytest.raises(ValueError, match='channels'):
        r.update(np.zeros((1, 3, 2, 2)))
    with pytest.raises(ValueError, match='channel mismatch'):
        moment_shift(r, RunningMoments(5).update(np.zeros((1, 5))))
    with pytest.raises(ValueError, match='no samples'):
        RunningMoments(1).mean


# ---- the moment-shift tool on a torchvision ResNet-18 -----------------------------------
@pytest.fixture(scope='module')
def image_dir(synthetic_voc_root) -> Path:
    return synthetic_voc_root / 'VOC2007' / 'JPEGImages'


def _run_moments(image_dir, out_dir, distortion, severity, layers=None):
    tool = load_script('tools/analysis/feature_moments.py')
    args = [str(image_dir), '--torchvision', 'resnet18', '--distortion', distortion,
            '--severity', str(severity), '--img-size', '64', '--max-images', '6',
            '--out-dir', str(out_dir)]
    if layers:
        args += ['--layers', *layers]
    return tool.main(args)


def test_feature_moments_identity_is_zero_and_shift_grows_with_severity(image_dir, tmp_path):
    from fq_det.analysis import build_torchvision_model, compute_feature_moment_shift, list_images
    layers = ['conv1', 'bn1', 'layer2.0.conv1', 'layer2.0.bn1']
    model = build_torchvision_model('resnet18')
    images = list_images(image_dir, max_images=6)
    kw = dict(layers=layers, size=64, progress=False)
    ident = compute_feature_moment_shift(model, images, 'identity', 1, **kw)
    for layer, r in ident.items():
        for m, v in r['shift'].items():
            assert np.all(v == 0), (layer, m)
    s1 = compute_feature_moment_shift(model, images, 'salt_pepper', 1, **kw)
    s5 = _run_moments(image_dir, tmp_path / 's5', 'salt_pepper', 5, layers)  # the CLI

    rows5 = _rows(s5['csv'])
    assert [r['layer'] for r in rows5] == layers
    assert [r['module'] for r in rows5] == ['Conv2d', 'BatchNorm2d'] * 2
    for r5 in rows5:
        for m in ('mean', 'variance', 'skewness', 'kurtosis'):
            key = f'mean_abs_d_{m}'
            assert float(r5[key]) > s1[r5['layer']]['summary'][key] > 0, (r5['layer'], m)
    chans = _rows(s5['channels_csv'])
    assert len(chans) == 64 + 64 + 128 + 128
    img = read_png(s5['figure'])
    assert img.shape[1] == 4 * 300 and img.shape[0] > 4 * 200 and img.std() > 10


def test_batch_statistics_remove_mean_shift_but_not_skewness_shift(image_dir):
    """Normalisation with batch statistics removes the shift of mean and variance only."""
    from fq_det.analysis import build_torchvision_model, compute_feature_moment_shift, list_images
    model = build_torchvision_model('resnet18')
    before = {k: v.clone() for k, v in model.bn1.state_dict().items()}
    r = compute_feature_moment_shift(model, list_images(image_dir, 4), 'ngrn', 5,
                                     layers=['conv1', 'bn1'], size=64, batch_size=4,
                                     norm_batch_stats=True, progress=False)
    conv, bn = r['conv1']['summary'], r['bn1']['summary']
    assert bn['mean_abs_d_mean'] < 1e-4 * max(conv['mean_abs_d_mean'], 1e-3)
    assert bn['mean_abs_d_variance'] < 1e-2 * conv['mean_abs_d_variance']
    np.testing.assert_allclose(r['bn1']['shift']['skewness'], r['conv1']['shift']['skewness'], atol=1e-3)
    assert conv['mean_abs_d_skewness'] > 0.01
    for k, v in model.bn1.state_dict().items():  # running statistics untouched
        assert torch.equal(v, before[k]), k
    assert not model.bn1.training


def test_feature_moments_layer_choice(image_dir):
    from fq_det.analysis import build_torchvision_model, compute_feature_moment_shift, default_layers
    model = build_torchvision_model('resnet18')
    layers = default_layers(model)
    assert len(layers) == 6 and layers[:2] == ['conv1', 'bn1']
    vgg_like = torch.nn.Sequential(*[torch.nn.Conv2d(3, 3, 3) for _ in range(8)])
    assert len(default_layers(vgg_like)) == 6  # no norm layers: conv layers only
    with pytest.raises(ValueError, match='unknown layer'):
        compute_feature_moment_shift(model, [], 'identity', 1, layers=['layer9'])
    with pytest.raises(ValueError, match='valid choices'):
        compute_feature_moment_shift(model, [image_dir / 'x.jpg'], 'smudge', 1, layers=['conv1'])


def test_feature_moments_on_detector_backbone(image_dir, tmp_path, capsys, tiny_detector):
    """--config/--checkpoint: the backbone of an MMDetection detector, its own normalisation."""
    cfg_path, ckpt = tiny_detector.config, tiny_detector.checkpoint
    from fq_det.analysis import build_detector_backbone, default_layers
    backbone, norm = build_detector_backbone(cfg_path, ckpt)
    assert not backbone.training
    assert norm['mean'] == pytest.approx((123.675, 116.28, 103.53))  # the config's data_preprocessor
    assert norm['std'] == pytest.approx((58.395, 57.12, 57.375)) and norm['bgr_to_rgb'] is True
    layers = default_layers(backbone)
    assert len(layers) == 6 and layers[:2] == ['conv1', 'bn1'] and layers[-1].startswith('layer4')

    tool = load_script('tools/analysis/feature_moments.py')
    out = tool.main([str(image_dir), '--config', str(cfg_path), '--checkpoint', str(ckpt),
                     '--distortion', 'ngrn', '--severity', '4', '--img-size', '64', '--layers', 'conv1',
                     'layer4.1.bn2', '--max-images', '4', '--out-dir', str(tmp_path / 'out')])
    rows = _rows(out['csv'])
    assert [r['layer'] for r in rows] == ['conv1', 'layer4.1.bn2']
    assert [r['channels'] for r in rows] == ['8', '64']  # base_channels 8: stem 8, stage 4 64
    assert all(float(r['mean_abs_d_variance']) > 0 for r in rows)

    # Without --checkpoint it says that the weights are random, and labels the figure so.
    out = tool.main([str(image_dir), '--config', str(cfg_path), '--distortion', 'ngrn',
                     '--severity', '4', '--img-size', '64', '--layers', 'conv1', '--max-images', '2',
                     '--out-dir', str(tmp_path / 'out_random')])
    assert 'analysing randomly initialised weights' in capsys.readouterr().err
    assert out['figure'].is_file()


# ---- alpha statistics ---------------------------------------------------------------
def _pow_checkpoint(path: Path) -> dict:
    """A stand-in POW checkpoint (mmengine's layout) with known alpha values."""
    from mmengine.runner import save_checkpoint
    g = torch.Generator().manual_seed(0)
    alphas = {
        'backbone.layer1.0.quant1.alpha': torch.tensor([0.0, 0.01, -0.02, 0.3]),
        'backbone.layer2.0.quant2.alpha': torch.randn(32, generator=g) * 0.2,
        'backbone.layer3.1.quant1.alpha': torch.zeros(16),
    }
    state = {'backbone.conv1.weight': torch.randn(8, 3, 7, 7, generator=g), **alphas,
             'backbone.layer1.0.bn1.weight': torch.ones(8)}
    save_checkpoint({'state_dict': state, 'meta': {'epoch': 1}}, str(path))
    return alphas


def test_alpha_histograms_tool(tmp_path):
    alphas = _pow_checkpoint(tmp_path / 'pow.pth')
    tool = load_script('tools/analysis/alpha_histograms.py')
    out = tool.main([str(tmp_path / 'pow.pth'), '--out-dir', str(tmp_path / 'alpha'), '--ncols', '2'])
    rows = _rows(out['csv'])
    assert [r['layer'] for r in rows] == ['backbone.layer1.0.quant1', 'backbone.layer2.0.quant2',
                                          'backbone.layer3.1.quant1', 'ALL']
    first = rows[0]
    assert int(first['count']) == 4
    assert float(first['mean']) == pytest.approx(0.0725)
    assert float(first['frac_near_zero']) == pytest.approx(0.75)  # |0|, |0.01|, |-0.02| < 0.05
    assert float(first['frac_positive']) == pytest.approx(0.5)
    assert float(rows[2]['frac_near_zero']) == 1.0 and float(rows[2]['frac_positive']) == 0.0
    a2 = alphas['backbone.layer2.0.quant2.alpha'].double().numpy()
    assert float(rows[1]['mean']) == pytest.approx(a2.mean())
    assert int(rows[3]['count']) == 4 + 32 + 16
    img = read_png(out['figure'])
    assert img.shape[1] == 2 * 300 and img.std() > 10  # 2 columns of 3-inch panels at 100 dpi


def test_alpha_stats_without_alpha_is_a_clear_error(tmp_path):
    from mmengine.runner import save_checkpoint

    from fq_det.analysis import extract_alphas, summarize_alphas
    save_checkpoint({'state_dict': {'backbone.conv1.weight': torch.zeros(2, 3, 3, 3)}},
                    str(tmp_path / 'plain.pth'))
    with pytest.raises(ValueError, match=r"no POW exponents.*'\.alpha'"):
        extract_alphas(tmp_path / 'plain.pth')
    with pytest.raises(FileNotFoundError):
        extract_alphas(tmp_path / 'missing.pth')
    rows = summarize_alphas({'a': np.array([0.1, -0.1])}, zero_tol=0.2)
    assert rows[0]['frac_near_zero'] == 1.0 and rows[-1]['layer'] == 'ALL'


def test_alpha_stats_on_a_resnet_pow_backbone(tmp_path):
    """ResNetPOW (fq_det.models): one row per POW activation of the quantized stages."""
    from mmengine.registry import init_default_scope
    from mmengine.runner import save_checkpoint

    import fq_det  # noqa: F401
    from fq_det.analysis import extract_alphas, summarize_alphas
    from mmdet.registry import MODELS
    init_default_scope('mmdet')
    backbone = MODELS.build(dict(type='ResNetPOW', depth=18, base_channels=8, init_cfg=None,
                                 quant_cfg=dict(num_splits=1), stage_with_quant=(False, True, True, True)))
    with torch.no_grad():
        for name, p in backbone.named_parameters():
            if name.endswith('.alpha'):
                p.copy_(torch.linspace(-0.1, 0.3, p.numel()))
    save_checkpoint({'state_dict': {f'backbone.{k}': v for k, v in backbone.state_dict().items()}},
                    str(tmp_path / 'pow.pth'))
    alphas = extract_alphas(tmp_path / 'pow.pth')
    assert list(alphas) == [f'backbone.layer{s}.{b}.act{a}' for s in (2, 3, 4) for b in (0, 1) for a in (1, 2)]
    rows = summarize_alphas(alphas)
    assert [r['count'] for r in rows[:-1]] == [16] * 4 + [32] * 4 + [64] * 4
    assert all(r['mean'] == pytest.approx(0.1) for r in rows)
