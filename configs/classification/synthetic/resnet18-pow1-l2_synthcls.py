# Tiny ResNet-18 (base_channels 16) +POW-1 on the generated 32x32 set: tests and the demo.
# Its exported backbone loads into configs/synthvoc/faster_rcnn_r18_pow_synthvoc.py-style
# detectors with the same backbone arguments (depth 18, base_channels 16).
_base_ = [
    '../_base_/models/resnet18.py', '../_base_/datasets/synthcls.py', '../_base_/default_runtime.py'
]
model = dict(
    data_preprocessor=_base_.data_preprocessor,
    backbone=dict(
        type='mmdet.ResNetPOW',
        base_channels=16,
        stage_with_quant=(True, True, True, True),
        quant_cfg=dict(num_splits=1, split_width=1.0, alpha_reg=dict(type='L2', weight=1e-4))),
    head=dict(num_classes=_base_.num_classes, in_channels=128))
custom_hooks = [dict(type='mmdet.AlphaRegularizationHook')]
optim_wrapper = dict(
    type='OptimWrapper', optimizer=dict(type='SGD', lr=0.05, momentum=0.9, weight_decay=1e-4))
param_scheduler = [dict(type='CosineAnnealingLR', by_epoch=True, T_max=10, begin=0, end=10)]
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=10, val_interval=2)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
default_hooks = dict(logger=dict(interval=5), checkpoint=dict(max_keep_ckpts=1))
