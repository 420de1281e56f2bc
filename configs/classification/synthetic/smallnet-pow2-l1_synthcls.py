# Supplement Table 2 network (+POW-2, L1) on the generated set.
_base_ = './resnet18-pow1-l2_synthcls.py'
model = dict(
    backbone=dict(
        _delete_=True,
        type='CifarSmallNet',
        num_classes=_base_.num_classes,
        base_channels=16,
        quant_cfg=dict(type='POW', num_splits=2, alpha_reg=dict(type='L1', weight=1e-4))),
    head=dict(
        _delete_=True,  # the pooled class maps are the logits: no linear layer
        type='ClsHead',
        loss=dict(type='CrossEntropyLoss', loss_weight=1.0),
        topk=(1, 5)))
