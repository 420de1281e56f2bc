"""Classification module on mmpretrain: configs build, data sets, metric keys, networks
(no training here)."""
from __future__ import annotations

import json
import pickle
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest
import torch

import fq_det  # noqa: F401
from fq_det.classification import (DataFolderNotFoundError, SafeCIFAR10, SafeCIFAR100,
                                   SyntheticClsDataset)
from fq_det.engine import AlphaRegularizationHook
from mmengine.config import Config
from mmengine.registry import init_default_scope
from mmpretrain.datasets import CustomDataset
from mmpretrain.evaluation import Accuracy
from mmpretrain.registry import DATASETS, HOOKS, METRICS, MODELS

REPO = Path(__file__).resolve().parents[2]
CONFIGS = sorted(
    p for p in (REPO / 'configs' / 'classification').rglob('*.py') if '_base_' not in p.parts)
init_default_scope('mmpretrain')


def test_config_grid_is_complete():
    names = {p.stem for p in CONFIGS}
    for ds in ('cifar10', 'cifar100'):  # supplement Table 1
        assert f'smallnet_{ds}' in names
        assert {f'smallnet-pow{k}-{r}_{ds}'
                for k in (1, 2, 4, 8, 16)
                for r in ('l1', 'l2')} <= names
    table3 = {
        'resnet18_imagenet', 'resnet18-sf10_imagenet', 'resnet18-sf100_imagenet',
        'resnet50_imagenet', 'resnet50-sf10_imagenet', 'resnet50-sf100_imagenet', 'plain10_imagenet'
    } | {f'plain10-pow{k}_imagenet'
         for k in (1, 2, 4, 8)}
    assert table3 <= names


@pytest.mark.parametrize('path', CONFIGS, ids=[p.stem for p in CONFIGS])
def test_config_builds(path):
    cfg = Config.fromfile(path)
    assert cfg.default_scope == 'mmpretrain'
    model = MODELS.build(cfg.model)
    assert type(model).__module__.startswith('mmpretrain.')  # mmpretrain's ImageClassifier
    assert type(model.data_preprocessor).__name__ == 'ClsDataPreprocessor'
    for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        assert DATASETS.get(cfg[loader].dataset.type) is not None
    assert METRICS.get(cfg.val_evaluator.type) is Accuracy
    alphas = [n for n, _ in model.named_parameters() if n.endswith('.alpha')]
    quant = cfg.model.backbone.get('quant_cfg')
    reg = quant.get('alpha_reg') if quant else None
    hooks = [HOOKS.get(h['type']) for h in cfg.get('custom_hooks', [])]
    if 'pow' in path.stem:  # POW/HPOW: learnable exponents, regularised through the hook
        assert alphas or 'hpow' in path.stem
        assert reg and reg['type'] == ('L1' if '-l1' in path.stem else 'L2')
        assert AlphaRegularizationHook in hooks
        if '-pow' in path.stem:
            k = int(path.stem.split('-pow')[1].split('-')[0].split('_')[0])
            assert quant['num_splits'] == k
    else:
        assert not alphas


@pytest.mark.parametrize('name,channels', [('CifarSmallNet', 10), ('Plain10', 32)])
@pytest.mark.parametrize('quant', [
    None,
    dict(type='SF', resolution=10),
    dict(type='POW', num_splits=2),
    dict(type='HPOW', num_splits=1, reduction=4)
])
def test_small_nets_forward_backward(name, channels, quant):
    kwargs = dict(
        num_classes=10, base_channels=8) if name == 'CifarSmallNet' else dict(base_channels=4)
    net = MODELS.build(dict(type=name, quant_cfg=quant, **kwargs))
    out = net(torch.randn(2, 3, 32, 32))
    assert isinstance(out, tuple) and out[-1].shape[:2] == (2, channels)
    out[-1].sum().backward()
    assert all(
        p.grad is not None and torch.isfinite(p.grad).all() for p in net.parameters()
        if p.requires_grad)
    assert any(type(m).__name__ == (quant or {}).get('type') for m in net.modules()) == (
        quant is not None)


def _batch(model, labels, size=32):
    from mmpretrain.structures import DataSample
    data = dict(
        inputs=[torch.randint(0, 255, (3, size, size), dtype=torch.uint8) for _ in labels],
        data_samples=[DataSample().set_gt_label(y) for y in labels])
    return model.data_preprocessor(data, training=True)


@pytest.mark.parametrize('name', [
    'synthetic/resnet18-pow1-l2_synthcls', 'synthetic/smallnet-pow2-l1_synthcls',
    'synthetic/plain10-pow1-l2_synthcls'
])
def test_classifier_modes(name):
    """mmpretrain's ImageClassifier around each family (fq_det's ResNetPOW from mmdet's
    registry, the supplement's small nets from mmpretrain's) in the mmpretrain scope."""
    model = MODELS.build(Config.fromfile(REPO / f'configs/classification/{name}.py').model)
    batch = _batch(model, [0, 3, 9])
    losses = model(**batch, mode='loss')
    assert set(losses) == {'loss'} and losses['loss'] > 0 and torch.isfinite(losses['loss'])
    losses['loss'].backward()
    alpha_grads = [p.grad for n, p in model.named_parameters() if n.endswith('.alpha')]
    assert alpha_grads and all(g is not None and torch.isfinite(g).all() for g in alpha_grads)
    preds = model(**batch, mode='predict')
    assert [int(p.gt_label) for p in preds] == [0, 3, 9]
    for p in preds:
        assert p.pred_score.shape == (10, ) and torch.allclose(p.pred_score.sum(), torch.tensor(1.))
    assert model(batch['inputs'], mode='tensor').shape == (3, 10)


def test_accuracy_keys_and_values():
    """The configs' metric writes the keys the sweep reads (accuracy/top1, accuracy/top5)."""
    from mmengine.evaluator import Evaluator
    from mmpretrain.structures import DataSample
    cfg = Config.fromfile(REPO / 'configs/classification/cifar/smallnet_cifar10.py')
    evaluator = Evaluator(cfg.test_evaluator)
    scores = torch.tensor([[.50, .20, .10, .05, .05, .04, .03, .02, .01, .00]] * 4)
    labels = [0, 1, 4, 9]  # ranks 0, 1, 3 or 4 (a tie at .05), 9
    evaluator.process([DataSample().set_pred_score(s).set_gt_label(y)
                       for s, y in zip(scores, labels)])
    assert evaluator.evaluate(4) == {'accuracy/top1': 25.0, 'accuracy/top5': 75.0}


def test_synthetic_dataset_is_deterministic_and_pipelined():
    pipeline = [dict(type='PackInputs')]
    a = SyntheticClsDataset(num_samples=12, num_classes=6, seed=3, pipeline=pipeline)
    b = SyntheticClsDataset(num_samples=12, num_classes=6, seed=3, pipeline=pipeline)
    c = SyntheticClsDataset(num_samples=12, num_classes=6, seed=4, pipeline=pipeline)
    assert len(a) == 12 and a.metainfo['classes'] == ('disc', 'square', 'triangle', 'cross', 'ring',
                                                      'h_stripes')
    item = a[7]
    assert item['inputs'].shape == (3, 32, 32) and item['inputs'].dtype == torch.uint8
    assert int(item['data_samples'].gt_label) == 7 % 6
    assert torch.equal(a[7]['inputs'],
                       b[7]['inputs']) and not torch.equal(a[7]['inputs'], c[7]['inputs'])
    info = a.get_data_info(2)
    assert info['img'].shape == (32, 32, 3) and info['img_id'] == 'synthcls3_000002'
    info['img'][:] = 0  # a sample is a copy: the data set is unchanged
    assert a.get_data_info(2)['img'].any()


def test_synthetic_dataset_works_with_distort():
    from fq_det.datasets.distortion_route import insert_distort
    base = [dict(type='PackInputs')]
    ds = SyntheticClsDataset(num_samples=2, seed=0, pipeline=base)
    for name in ('salt_pepper', 'targeted_occlusion'):
        ds_d = SyntheticClsDataset(
            num_samples=2, seed=0, pipeline=insert_distort(base, name, 5, 0, task='classification'))
        again = SyntheticClsDataset(
            num_samples=2, seed=0, pipeline=insert_distort(base, name, 5, 0, task='classification'))
        assert not torch.equal(ds[0]['inputs'], ds_d[0]['inputs'])
        assert torch.equal(ds_d[0]['inputs'], again[0]['inputs'])  # seeded per image
        if name == 'salt_pepper':  # the detection route's transform, same image id: same noise
            from fq_det.datasets.transforms import Distort
            direct = Distort(distortion=name, severity=5, seed=0)(ds.get_data_info(0))['img']
            assert torch.equal(ds_d[0]['inputs'], torch.from_numpy(direct).permute(2, 0, 1))
    from mmdet.registry import TRANSFORMS as DET_TRANSFORMS
    from mmpretrain.registry import TRANSFORMS
    assert TRANSFORMS.get('Distort') is DET_TRANSFORMS.get('Distort')
    train = SyntheticClsDataset(num_samples=2, seed=0,
                                pipeline=[dict(type='RandomDistort', prob=1.0), *base])
    assert not torch.equal(train[0]['inputs'], ds[0]['inputs'])  # training augmentation


def _write_fake_cifar(root: Path, n_per_batch: int = 3) -> None:
    folder = root / 'cifar-10-batches-py'
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for i, name in enumerate([f'data_batch_{k}' for k in range(1, 6)] + ['test_batch']):
        data = rng.integers(0, 256, (n_per_batch, 3072), dtype=np.uint8)
        data[0, :1024] = 255  # first image: pure red (R plane) -> BGR last channel
        data[0, 1024:] = 0
        with open(folder / name, 'wb') as f:
            pickle.dump({b'data': data, b'labels': [(i + j) % 10 for j in range(n_per_batch)]}, f)
    with open(folder / 'batches.meta', 'wb') as f:
        pickle.dump({b'label_names': [f'c{i}' for i in range(10)]}, f)


def test_cifar_dataset_reads_torchvision_layout(tmp_path):
    from mmpretrain.datasets.categories import CIFAR10_CATEGORIES
    _write_fake_cifar(tmp_path)
    train = DATASETS.build(dict(type='SafeCIFAR10', data_root=str(tmp_path), split='train'))
    test = SafeCIFAR10(data_root=str(tmp_path), split='test', pipeline=[])
    assert len(train) == 15 and len(test) == 3
    assert train.metainfo['classes'] == CIFAR10_CATEGORIES  # mmpretrain's names
    from_file = SafeCIFAR10(data_root=str(tmp_path), split='test', metainfo=dict(classes=None))
    assert from_file.metainfo['classes'][3] == 'c3'  # or the batches.meta names, read safely
    info = train[0]
    assert info['img'].shape == (32, 32, 3)
    assert (info['img'][..., 2] == 255).all() and (info['img'][..., :2] == 0).all()  # BGR
    assert [train[k]['gt_label'] for k in range(3)] == [0, 1, 2]
    assert [test[k]['img_id'] for k in (0, 2)] == ['cifar10_test_000000', 'cifar10_test_000002']
    with pytest.raises(ValueError, match='never downloads'):
        SafeCIFAR10(data_root=str(tmp_path), download=True)
    with pytest.raises(ValueError, match="'train' or 'test'"):
        SafeCIFAR10(data_root=str(tmp_path), split='val')


def test_cifar_rejects_unsafe_pickles(tmp_path):
    _write_fake_cifar(tmp_path)
    with open(tmp_path / 'cifar-10-batches-py' / 'test_batch', 'wb') as f:
        pickle.dump({b'data': np.zeros((1, 3072), np.uint8), b'labels': [0], b'x': Path('/')}, f)
    with pytest.raises(pickle.UnpicklingError, match='refusing'):
        SafeCIFAR10(data_root=str(tmp_path), split='test', pipeline=[])
    with open(tmp_path / 'cifar-10-batches-py' / 'batches.meta', 'wb') as f:
        pickle.dump({b'label_names': [Path('/')] * 10}, f)
    with pytest.raises(pickle.UnpicklingError, match='refusing'):
        SafeCIFAR10(data_root=str(tmp_path), split='train', metainfo=dict(classes=None))


def test_missing_data_folder_message(tmp_path):
    missing = tmp_path / 'nowhere'
    with pytest.raises(DataFolderNotFoundError) as err:
        SafeCIFAR100(data_root=str(missing), split='train')
    msg = str(err.value)
    assert str(missing / 'cifar-100-python') in msg and 'does not exist' in msg
    assert 'train' in msg and 'meta' in msg and 'never downloads' in msg
    (missing / 'cifar-100-python').mkdir(parents=True)
    (missing / 'cifar-100-python' / 'train').write_bytes(b'')
    with pytest.raises(DataFolderNotFoundError, match=r'lacks meta\.'):
        SafeCIFAR100(data_root=str(missing), split='train')
    with pytest.raises(FileNotFoundError, match=str(missing / 'train')):
        CustomDataset(data_root=str(missing), data_prefix=dict(img_path='train'))


def test_missing_data_folder_in_train_tool(tmp_path, capsys, monkeypatch):
    import runpy
    missing = tmp_path / 'no_cifar'
    monkeypatch.setattr('sys.argv', [
        'train.py',
        str(REPO / 'configs/classification/cifar/smallnet_cifar10.py'), '--data-root',
        str(missing), '--work-dir',
        str(tmp_path / 'w')
    ])
    with pytest.raises(SystemExit) as exit_info:
        runpy.run_path(str(REPO / 'tools/classification/train.py'), run_name='__main__')
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert 'error:' in err and str(missing / 'cifar-10-batches-py') in err and 'data_batch_1' in err
    assert 'Traceback' not in err


def test_image_folder_dataset(tmp_path):
    """ImageNet-style folders are mmpretrain's CustomDataset, as the Table 3 configs use it."""
    import cv2
    for cls in ('cat', 'dog'):
        (tmp_path / 'train' / cls).mkdir(parents=True)
        for i in range(2):
            cv2.imwrite(
                str(tmp_path / 'train' / cls / f'{i}.png'), np.full((20, 24, 3), 40 * i, np.uint8))
    (tmp_path / 'train' / 'dog' / 'notes.txt').write_text('not an image')
    ds = DATASETS.build(
        dict(type='CustomDataset',
             data_root=str(tmp_path),
             data_prefix=dict(img_path='train'),
             pipeline=[dict(type='LoadImageFromFile'),
                       dict(type='PackInputs')]))
    assert len(ds) == 4 and ds.metainfo['classes'] == ('cat', 'dog')
    item = ds[3]
    assert item['inputs'].shape == (3, 20, 24) and int(item['data_samples'].gt_label) == 1
    assert item['data_samples'].img_path.endswith('dog/1.png')


def test_table1_from_logged_scalars(tmp_path):
    from fq_det.classification.tables import best_metric, format_table1
    for seed, accs in enumerate([(70.0, 81.5, 80.0), (79.0, 82.5)]):
        log = tmp_path / f'run{seed}' / '20260101_000000' / 'vis_data' / 'scalars.json'
        log.parent.mkdir(parents=True)
        log.write_text('\n'.join(
            json.dumps({
                'accuracy/top1': a,
                'step': i
            }) for i, a in enumerate(accs)) + '\n{"loss": 1.0, "step": 3}\n')
    errors = [100 - best_metric(tmp_path / f'run{s}') for s in range(2)]
    assert errors == [18.5, 17.5]
    assert '| Base | 18.00 ± 0.50 (n=2) |' in format_table1({'Base': errors})
    with pytest.raises(FileNotFoundError, match='scalars.json'):
        best_metric(tmp_path / 'none')


def test_imagenet_config_pipelines(tmp_path):
    """The Table 3 configs' train/test pipelines run on an ImageNet-style folder (224 px out)."""
    import cv2
    from fq_det.datasets.data_check import set_data_root
    for split in ('train', 'val'):
        for cls in ('n01', 'n02'):
            (tmp_path / split / cls).mkdir(parents=True)
            cv2.imwrite(
                str(tmp_path / split / cls / 'a.jpg'),
                np.random.default_rng(0).integers(0, 255, (300, 400, 3), dtype=np.uint8))
    cfg = Config.fromfile(REPO / 'configs/classification/imagenet/resnet18_imagenet.py')
    set_data_root(cfg, str(tmp_path))
    for loader in ('train_dataloader', 'test_dataloader'):
        ds = DATASETS.build(cfg[loader].dataset)
        item = ds[0]
        assert len(ds) == 2 and item['inputs'].shape == (3, 224, 224)
        assert item['data_samples'].gt_label.tolist() == [0]


def test_voc_object_crops_dataset(synthetic_voc_root):
    from fq_det.classification import VOCObjectCropsDataset
    from fq_det.datasets.synthetic_voc import SYNTH_CLASSES
    voc = synthetic_voc_root / 'VOC2007'
    expected = []
    for img_id in (voc / 'ImageSets/Main/trainval.txt').read_text().split():
        for obj in ET.parse(voc / 'Annotations' / f'{img_id}.xml').getroot().iter('object'):
            if obj.findtext('difficult') == '0':
                expected.append(SYNTH_CLASSES.index(obj.findtext('name')))
    ds = VOCObjectCropsDataset(data_root=str(synthetic_voc_root), metainfo=dict(classes=SYNTH_CLASSES),
                               crop_size=40, pipeline=[dict(type='PackInputs')])
    assert [ds.get_data_info(i)['gt_label'] for i in range(len(ds))] == expected
    images = np.stack([ds.get_data_info(i)['img'] for i in range(len(ds))])
    assert images.shape == (len(expected), 40, 40, 3) and images.dtype == np.uint8
    assert len({ds.get_data_info(i)['img_id'] for i in range(len(ds))}) == len(ds)
    sample = ds[0]
    assert sample['inputs'].shape == (3, 40, 40) and int(sample['data_samples'].gt_label) == expected[0]
    # the crop is centred on the object: its centre differs from the crop's border
    img = images[0].astype(float)
    assert np.abs(img[16:24, 16:24].mean((0, 1)) - img[:2].mean((0, 1))).sum() > 20
    with_difficult = VOCObjectCropsDataset(data_root=str(synthetic_voc_root),
                                           metainfo=dict(classes=SYNTH_CLASSES), with_difficult=True)
    assert len(with_difficult) >= len(ds)


def test_voc_object_crops_errors(synthetic_voc_root, tmp_path):
    import shutil

    from fq_det.classification import VOCObjectCropsDataset
    from fq_det.datasets.synthetic_voc import SYNTH_CLASSES
    meta = dict(classes=SYNTH_CLASSES)
    with pytest.raises(ValueError, match='metainfo=dict\\(classes'):
        VOCObjectCropsDataset(data_root=str(synthetic_voc_root))
    with pytest.raises(ValueError, match='context'):
        VOCObjectCropsDataset(data_root=str(synthetic_voc_root), metainfo=meta, context=0.5)
    with pytest.raises(ValueError,
                       match="object class '[a-z]+' is not one of the configured classes \\('dog',\\)"):
        VOCObjectCropsDataset(data_root=str(synthetic_voc_root), metainfo=dict(classes=('dog', )))
    with pytest.raises(DataFolderNotFoundError, match='make_synthetic_voc'):
        VOCObjectCropsDataset(data_root=str(tmp_path / 'nothing'), metainfo=meta)
    root = tmp_path / 'copy'
    shutil.copytree(synthetic_voc_root, root)
    first = (root / 'VOC2007/ImageSets/Main/trainval.txt').read_text().split()[0]
    (root / 'VOC2007/Annotations' / f'{first}.xml').unlink()
    with pytest.raises(DataFolderNotFoundError, match=f'annotation .*{first}.xml.* is missing'):
        VOCObjectCropsDataset(data_root=str(root), metainfo=meta)


def test_voc_object_crops_strip_a_byte_order_mark(synthetic_voc_root, tmp_path):
    """A split file saved with a UTF-8 BOM (some Windows editors) reads as without one."""
    import shutil

    from fq_det.classification import VOCObjectCropsDataset
    from fq_det.datasets.synthetic_voc import SYNTH_CLASSES
    root = tmp_path / 'voc'
    shutil.copytree(synthetic_voc_root, root)
    split = root / 'VOC2007/ImageSets/Main/trainval.txt'
    split.write_bytes(b'\xef\xbb\xbf' + split.read_bytes())
    ds = VOCObjectCropsDataset(data_root=str(root), metainfo=dict(classes=SYNTH_CLASSES))
    plain = VOCObjectCropsDataset(data_root=str(synthetic_voc_root),
                                  metainfo=dict(classes=SYNTH_CLASSES))
    assert [ds.get_data_info(i)['img_id'] for i in range(len(ds))] == \
        [plain.get_data_info(i)['img_id'] for i in range(len(plain))]
