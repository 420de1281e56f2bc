"""Every detector config in configs/ (classification/ aside) builds its model and data sets."""
from __future__ import annotations

from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
CONFIGS = sorted(p for p in (REPO_ROOT / 'configs').rglob('*.py')
                 if not {'classification', 'studies', '_base_'} & set(p.parts))
VOC_CONFIGS = [p for p in CONFIGS if not {'synthvoc', 'synthcoco'} & set(p.parts)]  # synthcoco: test_coco_format.py
SYNTH_CONFIGS = [p for p in CONFIGS if 'synthvoc' in p.parts]
QUANT = {'_pow': 'ResNetPOW', '_sf': 'ResNetSF', '_hpow': 'ResNetHPOW'}


def _ids(paths):
    return [p.relative_to(REPO_ROOT / 'configs').as_posix() for p in paths]


def _load(path: Path):
    import fq_det  # noqa: F401
    from mmengine.config import Config
    return Config.fromfile(str(path))


def _quant_of(path: Path) -> str | None:
    """The backbone a config's name promises: a ``pow``/``sf``/``hpow`` name part
    (``faster_rcnn_r18_pow-alpha_synthvoc`` is a POW config)."""
    parts = {t.split('-')[0] for t in path.stem.split('_')}
    return next((t for suffix, t in QUANT.items() if suffix[1:] in parts), None)


def test_expected_configs_exist() -> None:
    names = set(_ids(CONFIGS))
    for n in ('faster_rcnn_r50.py', 'faster_rcnn_r50_pow.py', 'faster_rcnn_r50_sf.py',
              'faster_rcnn_r50_hpow.py', 'faster_rcnn_r18.py', 'faster_rcnn_r18_pow.py',
              'retinanet_r50_pow.py', 'synthvoc/faster_rcnn_r18_synthvoc.py',
              'synthvoc/faster_rcnn_r18_pow_synthvoc.py', 'synthvoc/faster_rcnn_r18_sf_synthvoc.py',
              'synthvoc/faster_rcnn_r18_hpow_synthvoc.py'):
        assert n in names


@pytest.mark.parametrize('path', CONFIGS, ids=_ids(CONFIGS))
def test_config_builds_model(path: Path) -> None:
    from mmdet.registry import MODELS
    from mmdet.utils import register_all_modules
    register_all_modules(init_default_scope=True)
    cfg = _load(path)
    assert cfg.custom_imports == dict(imports=['fq_det'], allow_failed_imports=False)
    quant = _quant_of(path)
    assert cfg.model.backbone.type == (quant or 'ResNet')
    if quant:
        assert cfg.model.backbone.stage_with_quant == (False, True, True, True)
        if quant != 'ResNetSF':  # the hook adds POW/HPOW's alpha penalty; SF has no alpha
            assert dict(type='AlphaRegularizationHook') in cfg.get('custom_hooks', [])
    model = MODELS.build(cfg.model)  # weights are not loaded at build time: no download
    keys = model.state_dict().keys()
    if quant in ('ResNetPOW',):
        assert any(k.startswith('backbone.') and k.endswith('.alpha') for k in keys)
    if 'direct' in path.stem:  # the direct reading of the exponent, at the identity p = 1
        from fq_det.models import POW
        pows = [m for m in model.modules() if isinstance(m, POW)]
        assert pows and all(m.reading.name == 'direct' and bool((m.alpha == 1).all())
                            for m in pows)
    depth = 18 if '_r18' in path.name else 50
    assert cfg.model.backbone.depth == depth
    assert type(model).__name__ == ('RetinaNet' if path.name.startswith('retinanet') else 'FasterRCNN')


@pytest.mark.parametrize('path', VOC_CONFIGS, ids=_ids(VOC_CONFIGS))
def test_voc_configs_read_voc2007_only(path: Path, synthetic_voc_root: Path) -> None:
    from mmdet.registry import DATASETS
    from mmdet.utils import register_all_modules

    from fq_det.datasets.data_check import leaf_datasets, set_data_root
    register_all_modules(init_default_scope=True)
    cfg = _load(path)
    depth = 18 if '_r18' in path.name else 50
    assert cfg.model.backbone.init_cfg == dict(type='Pretrained', checkpoint=f'torchvision://resnet{depth}')
    train = cfg.train_dataloader.dataset
    assert train.type == 'RepeatDataset' and train.times == 3
    leaves = list(leaf_datasets(train))
    assert [(d.type, d.data_root, d.ann_file) for d in leaves] == [
        ('VOCDataset', 'data/VOCdevkit/', 'VOC2007/ImageSets/Main/trainval.txt')]
    assert cfg.test_dataloader.dataset.ann_file == 'VOC2007/ImageSets/Main/test.txt'
    assert cfg.test_evaluator.type == 'VOCMetric'
    head = cfg.model.get('roi_head', {}).get('bbox_head', cfg.model.get('bbox_head'))
    assert head.num_classes == 20
    # With the files present (the synthetic fixture, read with its own class names), the
    # data sets and their pipelines build and load images.
    from fq_det.datasets.synthetic_voc import SYNTH_CLASSES
    set_data_root(cfg, str(synthetic_voc_root))
    for leaf in [*leaf_datasets(train), cfg.test_dataloader.dataset]:
        leaf.metainfo = dict(classes=SYNTH_CLASSES)
    test = DATASETS.build(cfg.test_dataloader.dataset)
    train = DATASETS.build(cfg.train_dataloader.dataset)
    assert (len(train), len(test)) == (3 * 8, 4)
    assert train[0]['inputs'].shape[0] == 3


@pytest.mark.parametrize('path', SYNTH_CONFIGS, ids=_ids(SYNTH_CONFIGS))
def test_synthvoc_configs_build_datasets(path: Path, synthetic_voc_root: Path) -> None:
    from mmdet.registry import DATASETS
    from mmdet.utils import register_all_modules

    from fq_det.datasets.data_check import set_data_root
    from fq_det.datasets.synthetic_voc import SYNTH_CLASSES, SYNTH_PALETTE
    register_all_modules(init_default_scope=True)
    cfg = _load(path)
    assert cfg.data_root == 'data/synthvoc/'
    assert tuple(cfg.metainfo.classes) == SYNTH_CLASSES
    assert [tuple(c) for c in cfg.metainfo.palette] == SYNTH_PALETTE
    assert cfg.model.roi_head.bbox_head.num_classes == len(SYNTH_CLASSES)
    assert cfg.train_cfg.type == 'IterBasedTrainLoop'
    assert cfg.train_dataloader.dataset.type == cfg.test_dataloader.dataset.type == 'XMLDataset'
    assert cfg.test_evaluator.type == 'VOCMetric'
    set_data_root(cfg, str(synthetic_voc_root))
    train = DATASETS.build(cfg.train_dataloader.dataset)
    test = DATASETS.build(cfg.test_dataloader.dataset)
    assert (len(train), len(test)) == (8, 4)
    sample = train[0]
    assert sample['inputs'].shape[0] == 3 and len(sample['data_samples'].gt_instances) > 0
