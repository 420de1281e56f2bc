"""The moment-hypothesis comparison on a tiny ResNet: at the first BN, adaptation removes the
shift of mean and variance and leaves skewness and kurtosis exactly as they were."""
from __future__ import annotations

import cv2
import numpy as np
import pytest

from fq_det.analysis.moment_hypothesis import (compare_moment_shifts, format_comparison,
                                               moment_shifts, plot_comparison, stage_layers)


@pytest.fixture(scope='module')
def images(tmp_path_factory):
    rng = np.random.default_rng(0)
    root = tmp_path_factory.mktemp('imgs')
    paths = []
    for i in range(6):
        img = (rng.uniform(0, 255, (40, 48, 3)) * np.linspace(0.3, 1, 48)[None, :, None])
        path = root / f'im{i}.png'
        cv2.imwrite(str(path), img.astype(np.uint8))
        paths.append(path)
    return paths


@pytest.fixture(scope='module')
def backbone():
    import torch

    from mmdet.models.backbones import ResNet
    torch.manual_seed(0)
    net = ResNet(depth=18, base_channels=8, norm_eval=False)
    for m in net.modules():  # training statistics unlike the test images'
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.fill_(0.3)
            m.running_var.fill_(2.0)
    net.eval()  # mmdet's ResNet.train() returns None
    return net


def test_first_bn_adaptation_removes_first_two_moments_only(backbone, images) -> None:
    kw = dict(batch_size=len(images), mean=(128., 128., 128.), std=(64., 64., 64.))
    plain = moment_shifts(backbone, images, 'salt_pepper', 5, ['bn1'], **kw)
    adapted = moment_shifts(backbone, images, 'salt_pepper', 5, ['bn1'], bn_prior=0, **kw)
    assert plain['bn1']['mean'] > 0.05 and plain['bn1']['variance'] > 0.05
    assert adapted['bn1']['mean'] < 1e-4 and adapted['bn1']['variance'] < 1e-3
    # an affine per-channel map does not change skewness or kurtosis
    assert adapted['bn1']['skewness'] == pytest.approx(plain['bn1']['skewness'], rel=1e-4)
    assert adapted['bn1']['kurtosis'] == pytest.approx(plain['bn1']['kurtosis'], rel=1e-4)
    # the model's own statistics are back afterwards
    assert float(backbone.bn1.running_mean[0]) == pytest.approx(0.3)


def test_comparison_table_and_figure(backbone, images, tmp_path) -> None:
    layers = stage_layers(backbone)
    assert layers[:2] == ['layer1.1.bn2', 'layer1.1'] and layers[-1] == 'layer4.1'
    norm = dict(mean=(128., 128., 128.), std=(64., 64., 64.), bgr_to_rgb=False)
    result = compare_moment_shifts({'tiny': (backbone, norm)}, images, 'ngrn', 4, batch_size=3)
    assert set(result) == {'tiny', 'tiny + BN adapt.'}
    assert set(result['tiny']) == set(layers)
    text = format_comparison(result, 'ngrn', 4)
    assert '**kurtosis**' in text and '| tiny + BN adapt. |' in text
    assert plot_comparison(result, tmp_path / 'm.png').stat().st_size > 1000


def test_classifier_backbone_and_its_normalisation(repo_root) -> None:
    from fq_det.analysis.moment_hypothesis import build_classifier_backbone
    backbone, norm = build_classifier_backbone(
        repo_root / 'configs/classification/synthvoc/resnet18-pow1-l1_synthvoc-crops.py', None)
    assert 'layer2.0.act1' in dict(backbone.named_modules()) and not backbone.training
    assert norm['mean'] == pytest.approx((123.675, 116.28, 103.53))
    assert norm['std'] == pytest.approx((58.395, 57.12, 57.375)) and norm['bgr_to_rgb'] is True
