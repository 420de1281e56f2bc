# The synthetic set in the COCO layout (tools/misc/make_synthetic_voc.py --format coco): the
# same detector as faster_rcnn_r18_synthvoc.py, read by MMDetection's CocoDataset and scored
# by its CocoMetric (bbox mAP over IoU 0.5:0.95 and AP50, 101-point interpolation). The same
# generator seed gives the same images and objects as the VOC layout; VOC's difficult
# objects are iscrowd=1 here (ignored by the evaluation, as VOCMetric ignores difficult).
_base_ = '../synthvoc/faster_rcnn_r18_synthvoc.py'

data_root = 'data/synthcoco/'
metainfo = {{_base_.metainfo}}  # (through ../synthvoc/faster_rcnn_r18_synthvoc.py)

train_dataloader = dict(
    dataset=dict(
        _delete_=True,
        type='CocoDataset',
        data_root=data_root,
        metainfo=metainfo,
        ann_file='annotations/instances_trainval.json',
        data_prefix=dict(img='trainval/'),
        filter_cfg=dict(filter_empty_gt=True),
        pipeline={{_base_.train_pipeline}}))
val_dataloader = dict(
    dataset=dict(
        _delete_=True,
        type='CocoDataset',
        data_root=data_root,
        metainfo=metainfo,
        ann_file='annotations/instances_test.json',
        data_prefix=dict(img='test/'),
        test_mode=True,
        pipeline={{_base_.test_pipeline}}))
test_dataloader = val_dataloader
# ann_file follows --data-root (fq_det.datasets.data_check.set_data_root moves evaluator
# annotation files that lie below the old data root).
val_evaluator = dict(_delete_=True, type='CocoMetric',
                     ann_file=data_root + 'annotations/instances_test.json', metric='bbox')
test_evaluator = val_evaluator
