"""The stack as installed: mmcv's compiled ops on CPU and an MMDetection detector from an
``mmdet::`` base config. If these fail, the install step is broken, not fq_det."""
from __future__ import annotations

import torch


def test_mmcv_ops_nms_on_cpu():
    from mmcv.ops import nms

    boxes = torch.tensor([[0., 0., 10., 10.], [1., 1., 11., 11.], [50., 50., 60., 60.]])
    scores = torch.tensor([0.9, 0.8, 0.7])
    dets, keep = nms(boxes, scores, iou_threshold=0.5)
    # the second box overlaps the first with IoU 0.68 and is suppressed
    assert keep.tolist() == [0, 2]
    assert torch.allclose(dets[:, 4], torch.tensor([0.9, 0.7]))


def test_mmcv_ops_roi_align_on_cpu():
    from mmcv.ops import RoIAlign

    # a feature map whose value is its x coordinate: the pooled value at each bin
    # centre must be that centre's x (bilinear interpolation is exact for linear maps)
    feat = torch.arange(16, dtype=torch.float32).repeat(16, 1)[None, None]
    rois = torch.tensor([[0., 2., 2., 10., 10.]])
    out = RoIAlign(output_size=(2, 2), spatial_scale=1.0, sampling_ratio=2, aligned=True)(feat, rois)
    assert out.shape == (1, 1, 2, 2)
    # bins of width 4 starting at x=2 (aligned: -0.5 offset): centres at 3.5 and 7.5
    assert torch.allclose(out[0, 0], torch.tensor([[3.5, 7.5], [3.5, 7.5]]), atol=1e-4)


def test_faster_rcnn_from_mmdet_base_config_forward():
    from mmengine.hub import get_config
    from mmdet.registry import MODELS
    from mmdet.structures import DetDataSample
    from mmdet.utils import register_all_modules

    register_all_modules()
    cfg = get_config('mmdet::pascal_voc/faster-rcnn_r50_fpn_1x_voc0712.py')
    cfg.model.backbone.update(depth=18, base_channels=16, init_cfg=None)
    cfg.model.neck.in_channels = [16, 32, 64, 128]
    model = MODELS.build(cfg.model).eval()

    image = torch.randint(0, 256, (3, 128, 160), dtype=torch.uint8)
    sample = DetDataSample(metainfo=dict(img_shape=(128, 160), ori_shape=(128, 160),
                                         scale_factor=(1.0, 1.0)))
    data = model.data_preprocessor(dict(inputs=[image], data_samples=[sample]), False)
    with torch.no_grad():
        results = model(**data, mode='predict')
    assert len(results) == 1
    pred = results[0].pred_instances
    assert pred.bboxes.ndim == 2 and pred.bboxes.shape[1] == 4
    assert len(pred.scores) == len(pred.labels) == len(pred.bboxes)
    assert torch.isfinite(pred.bboxes).all()
