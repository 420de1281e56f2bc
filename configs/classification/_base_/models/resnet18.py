# mmdet's ResNet (BN trained, last stage only) in mmpretrain's ImageClassifier. The 'mmdet.'
# prefix builds it from mmdet's registry: the detectors' backbone classes (ResNet, ResNetSF,
# ResNetPOW, ResNetHPOW), so an exported backbone loads into a detector config unchanged.
model = dict(
    type='ImageClassifier',
    backbone=dict(
        type='mmdet.ResNet',
        depth=18,
        num_stages=4,
        out_indices=(3, ),
        frozen_stages=-1,
        norm_cfg=dict(type='BN', requires_grad=True),
        norm_eval=False,
        style='pytorch'),
    neck=dict(type='GlobalAveragePooling'),
    head=dict(
        type='LinearClsHead',
        num_classes=1000,
        in_channels=512,
        loss=dict(type='CrossEntropyLoss', loss_weight=1.0),
        topk=(1, 5)))
