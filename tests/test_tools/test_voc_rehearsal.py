"""Every VOC detector config of configs/ at full scale, as a user with VOC 2007 and the
ImageNet weights runs it: tools/train.py (one iteration), tools/test.py, then
tools/test_robustness.py on one (distortion, severity) pair.

The data: a generated VOC-layout folder of 500x375 images whose objects carry VOC class
names (the configs' own 20 classes, their own pipelines: resized to 1000x600). The weights:
one file per depth in torchvision's layout (``resnet50-*.pth``: ``conv1.weight``,
``layer1.0.bn1.running_mean``, ..., ``fc.weight``) with random values, given to the
configs' ``init_cfg`` as ``torchvision://resnet50`` would be.
"""
from __future__ import annotations

import re
import time
from pathlib import Path

import pytest
import torch

from helpers import load_script

REPO_ROOT = Path(__file__).resolve().parents[2]
DETECTOR_CONFIGS = sorted((REPO_ROOT / 'configs').glob('*.py'))
#: What each config's backbone reports as not in an ImageNet checkpoint (None: nothing).
QUANTIZER_LINE = {
    'faster_rcnn_r50': None, 'faster_rcnn_r50_sf': None, 'faster_rcnn_r18': None,
    'faster_rcnn_r18_sf': None,
    'faster_rcnn_r50_pow': '39 quantizer exponents', 'faster_rcnn_r50_pow-direct':
        '39 quantizer exponents', 'retinanet_r50_pow': '39 quantizer exponents',
    'faster_rcnn_r50_hpow': '39 quantizer exponent branches',
    'faster_rcnn_r18_pow': '12 quantizer exponents',
    'faster_rcnn_r18_hpow': '12 quantizer exponent branches'}


@pytest.fixture(autouse=True)
def unformatted_config_dumps(monkeypatch) -> None:
    """mmengine reformats the whole config with yapf each time a runner logs or dumps it
    (about 1 s per call for these configs, a dozen calls per config here): the dumps
    keep the config's text unformatted instead. Nothing in the rehearsal reads them."""
    import mmengine.config.config as mmengine_config
    monkeypatch.setattr(mmengine_config, 'FormatCode', lambda text, **_: (text, False))


@pytest.fixture(autouse=True)
def both_cores() -> None:
    """A full-scale detector is one process at a time here: it uses the CI machine's two
    cores (the suite runs with one torch thread per process otherwise)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    yield
    torch.set_num_threads(threads)


def test_every_detector_config_is_rehearsed() -> None:
    assert sorted(p.stem for p in DETECTOR_CONFIGS) == sorted(QUANTIZER_LINE)


@pytest.fixture(scope='module')
def voc_folder(tmp_path_factory) -> Path:
    """Two trainval images (one batch of the configs' size 2) and one test image, 500x375,
    objects named with VOC classes."""
    from mmdet.datasets import VOCDataset

    from fq_det.datasets.synthetic_voc import SYNTH_CLASSES, make_synthetic_voc
    root = tmp_path_factory.mktemp('voc')
    make_synthetic_voc(root, num_train=2, num_test=1, seed=0, image_size=(500, 375))
    voc_names = dict(zip(SYNTH_CLASSES, VOCDataset.METAINFO['classes']))
    for xml in (root / 'VOC2007' / 'Annotations').glob('*.xml'):
        xml.write_text(re.sub(r'<name>(\w+)</name>',
                              lambda m: f'<name>{voc_names[m.group(1)]}</name>', xml.read_text()))
    return root


def _random_torchvision_weights(depth: int, path: Path) -> Path:
    """torchvision's ResNet state dict, every tensor drawn at random (BN statistics too, so a
    tensor that does not load shows as one that kept the model's own initial value)."""
    import torchvision
    gen = torch.Generator().manual_seed(depth)
    state = getattr(torchvision.models, f'resnet{depth}')().state_dict()
    for key, value in state.items():
        if not value.is_floating_point():
            continue
        if value.dim() > 1:  # conv / fc weights: torchvision's kaiming scale, redrawn
            value.copy_(torch.randn(value.shape, generator=gen) * value.std())
        elif key.endswith(('running_var', 'weight')):  # BN scales and variances: positive
            value.copy_(0.5 + torch.rand(value.shape, generator=gen))
        else:  # BN biases and means
            value.copy_(0.1 * torch.randn(value.shape, generator=gen))
    torch.save(state, path)
    return path


@pytest.fixture(scope='module')
def imagenet_weights(tmp_path_factory) -> dict[int, Path]:
    root = tmp_path_factory.mktemp('weights')
    return {d: _random_torchvision_weights(d, root / f'resnet{d}-random.pth') for d in (18, 50)}


def _options(config: Path, weights: dict[int, Path], tag: str) -> list[str]:
    depth = 18 if '_r18' in config.stem else 50
    ns = time.time_ns()
    # the data loaded in the main process: at one or two images per loader, the configs'
    # two persistent worker processes per loader cost more than they load
    loaders = [f'{split}_dataloader.{key}' for split in ('train', 'val', 'test')
               for key in ('num_workers=0', 'persistent_workers=False')]
    return ['--cfg-options', f'model.backbone.init_cfg.checkpoint={weights[depth]}',
            f'experiment_name={tag}_{ns}', f'visualizer.name=vis_{tag}_{ns}', *loaders]


def _backbone_loads_every_weight(config: Path, weights: Path) -> None:
    """The config's backbone, initialised from ``weights``: every tensor of the file that
    the backbone has is the file's, bit for bit; the backbone has nothing else but the
    quantizers' state."""
    from mmdet.registry import MODELS
    from mmengine.config import Config
    from mmengine.registry import init_default_scope

    from fq_det.models.backbones.pretrained_report import quantizer_state_keys
    init_default_scope('mmdet')
    cfg = Config.fromfile(str(config)).model.backbone
    cfg.init_cfg.checkpoint = str(weights)
    backbone = MODELS.build(cfg)
    backbone.init_weights()
    file_state = torch.load(weights, weights_only=True)
    state = backbone.state_dict()
    quantizer = set().union(*(keys for _, keys in quantizer_state_keys(backbone).values()))
    assert set(state) - set(file_state) == quantizer
    assert set(file_state) - set(state) == {'fc.weight', 'fc.bias'}  # torchvision's classifier
    unequal = [k for k in state if k in file_state and not torch.equal(state[k], file_state[k])]
    assert unequal == []


@pytest.mark.slow
@pytest.mark.parametrize('config', DETECTOR_CONFIGS, ids=[p.stem for p in DETECTOR_CONFIGS])
def test_config_trains_tests_and_sweeps_at_full_scale(config: Path, voc_folder: Path,
                                                      imagenet_weights, tmp_path: Path) -> None:
    data = ['--data-root', str(voc_folder)]
    work = tmp_path / 'train'
    runner = load_script('tools/train.py').main(
        [str(config), '--work-dir', str(work), *data, *_options(config, imagenet_weights, 'train'),
         'train_dataloader.dataset.times=1', 'train_cfg.max_epochs=1', 'train_cfg.val_begin=2',
         'default_hooks.logger.interval=1'])
    assert runner.iter == 1 and runner.epoch == 1
    log = next(work.glob('*/*.log')).read_text()
    loss = [float(v) for v in re.findall(r'\bloss: ([-+0-9.e]+|nan|inf)', log)]
    assert len(loss) == 1 and 0 < loss[0] < float('inf')
    # the load: no mmengine dump of missing keys; the quantizers' state in one line
    assert 'missing keys in source state_dict' not in log
    expected = QUANTIZER_LINE[config.stem]
    summaries = re.findall(r'\d+ quantizer [a-z ]+ start at the identity: not in the checkpoint',
                           log)
    assert summaries == ([f'{expected} start at the identity: not in the checkpoint']
                         if expected else [])
    checkpoint = work / 'epoch_1.pth'

    metrics = load_script('tools/test.py').main(
        [str(config), str(checkpoint), '--work-dir', str(tmp_path / 'test'), *data,
         *_options(config, imagenet_weights, 'test')])
    assert 0.0 <= metrics['pascal_voc/mAP'] <= 1.0

    results = load_script('tools/test_robustness.py').main(
        [str(config), str(checkpoint), '--out-dir', str(tmp_path / 'sweep'), *data,
         '--distortions', 'jpeg', '--severities', '3',
         *_options(config, imagenet_weights, 'sweep')])
    assert set(results['distorted']) == {'jpeg'}
    assert (tmp_path / 'sweep' / 'results.md').is_file()

    depth = 18 if '_r18' in config.stem else 50
    _backbone_loads_every_weight(config, imagenet_weights[depth])
