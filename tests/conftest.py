"""Shared fixtures: tiny generated data and a tiny detector, so no test needs a download."""
from __future__ import annotations

import os
from pathlib import Path
from typing import NamedTuple

import pytest
import torch

# Tests run on 2-core CI machines: one intra-op thread per process keeps parallel
# helpers (dataloader workers, torchrun ranks) from oversubscribing the cores.
os.environ.setdefault('OMP_NUM_THREADS', '1')
os.environ.setdefault('MKL_NUM_THREADS', '1')
# Without a GPU, tests/test_models/test_fused_kernels.py runs the device path's Triton kernels in
# Triton's interpreter, which must be on before Triton is first imported (its standard
# library is decorated at import). It only changes anything where FQ_DET_FUSED_CPU=1.
if not torch.cuda.is_available():
    os.environ.setdefault('TRITON_INTERPRET', '1')

REPO_ROOT = Path(__file__).resolve().parents[1]

#: The synthetic VOC set's classes, in label order (fq_det.datasets.synthetic_voc).
SYNTH_CLASSES = ('circle', 'square', 'triangle', 'cross', 'star')

TINY_DETECTOR_CONFIG = """
_base_ = {base!r}
custom_imports = dict(imports=['fq_det'], allow_failed_imports=False)
data_root = {data_root!r}
metainfo = dict(classes={classes!r})
model = dict(
    backbone=dict(depth=18, base_channels=8, init_cfg=None),
    neck=dict(in_channels=[8, 16, 32, 64], out_channels=16),
    rpn_head=dict(in_channels=16, feat_channels=16),
    roi_head=dict(bbox_roi_extractor=dict(out_channels=16),
                  bbox_head=dict(in_channels=16, fc_out_channels=32, num_classes={num_classes})),
    # score_thr 0: a random detector still returns (low-score) boxes to draw and to score
    test_cfg=dict(rpn=dict(nms_pre=100, max_per_img=50), rcnn=dict(score_thr=0.0)))
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=(160, 120), keep_ratio=True),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='PackDetInputs',
         meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape', 'scale_factor')),
]
test_dataloader = dict(
    batch_size=2, num_workers=0, persistent_workers=False,
    dataset=dict(data_root=data_root, metainfo=metainfo, pipeline=test_pipeline))
val_dataloader = test_dataloader
default_hooks = dict(logger=dict(interval=1))
"""


class TinyDetector(NamedTuple):
    """A seeded, randomly initialised Faster R-CNN (ResNet-18 at 8 base channels) on the
    tiny synthetic VOC set: ``config, checkpoint = tiny_detector``."""

    config: Path      # mmdet's VOC Faster R-CNN config, shrunk, reading the tiny set
    checkpoint: Path  # mmengine layout, with dataset_meta (classes, palette)

    @property
    def classes(self) -> tuple[str, ...]:
        return SYNTH_CLASSES

    def model_cfg(self, backbone: dict | None = None, num_classes: int | None = None):
        """The detector's model config; ``backbone`` (a ResNet-18/34 config) replaces the
        ResNet-18/8, and the neck and heads follow its ``base_channels``."""
        from mmengine.config import Config
        model = Config.fromfile(str(self.config)).model
        if backbone is not None:
            base = backbone.get('base_channels', 64)
            model.backbone = backbone
            model.neck.in_channels = [base, 2 * base, 4 * base, 8 * base]
        if num_classes is not None:
            model.roi_head.bbox_head.num_classes = num_classes
        return model


@pytest.fixture(autouse=True)
def fresh_mmengine_loggers():
    """Forget the loggers, visualizers and message hubs a test created, as mmengine's
    RunnerTestCase does (the default scope is left to each test).

    mmengine keeps them by name, and a Runner names its logger after the config file and
    the current second: a second run of the same config within that second would get the
    earlier test's logger, whose handler writes to that test's (closed) capture stream.
    """
    yield
    from mmengine.logging import MessageHub, MMLogger
    from mmengine.visualization import Visualizer
    for logger in MMLogger._instance_dict.values():
        for handler in list(logger.handlers):
            handler.close()
            logger.removeHandler(handler)
    MMLogger._instance_dict.clear()
    Visualizer._instance_dict.clear()
    MessageHub._instance_dict.clear()


@pytest.fixture(scope='session')
def repo_root() -> Path:
    return REPO_ROOT


@pytest.fixture(scope='session')
def synthetic_voc_root(tmp_path_factory) -> Path:
    """A tiny VOC-layout data set (``<root>/VOC2007/...``) shared by the whole session.

    Read-only for tests: a test that needs to change files makes its own copy.
    """
    from fq_det.datasets.synthetic_voc import make_synthetic_voc

    root = tmp_path_factory.mktemp('synthvoc')
    make_synthetic_voc(root, num_train=8, num_test=4, seed=0, image_size=(160, 120))
    return root


@pytest.fixture(scope='session')
def tiny_detector(synthetic_voc_root, tmp_path_factory) -> TinyDetector:
    """The tiny detector's config file and checkpoint, written once per session (read-only)."""
    import torch
    from mmengine.config import Config
    from mmengine.registry import init_default_scope
    from mmengine.runner import save_checkpoint

    import fq_det  # noqa: F401
    from mmdet.registry import MODELS
    from helpers import mmdet_voc_faster_rcnn_config

    root = tmp_path_factory.mktemp('tiny_detector')
    config = root / 'tiny_faster_rcnn.py'
    config.write_text(TINY_DETECTOR_CONFIG.format(
        base=mmdet_voc_faster_rcnn_config(), data_root=str(synthetic_voc_root) + '/',
        classes=SYNTH_CLASSES, num_classes=len(SYNTH_CLASSES)))
    init_default_scope('mmdet')
    torch.manual_seed(0)
    # torch's default initialisation, seeded (mmdet's init_weights zeroes the last BN of every
    # residual block, which would make the deepest features constant)
    model = MODELS.build(Config.fromfile(str(config)).model)
    checkpoint = root / 'tiny.pth'
    meta = {'dataset_meta': {'classes': SYNTH_CLASSES,
                             'palette': [(220, 20, 60)] * len(SYNTH_CLASSES)}}
    save_checkpoint({'state_dict': model.state_dict(), 'meta': meta}, str(checkpoint))
    return TinyDetector(config, checkpoint)
