# mmdet's ResNet as a classification backbone (BN trained, last stage only).
model = dict(
    type='ImageClassifier',
    backbone=dict(
        type='ResNet',
        depth=18,
        num_stages=4,
        out_indices=(3, ),
        frozen_stages=-1,
        norm_cfg=dict(type='BN', requires_grad=True),
        norm_eval=False,
        style='pytorch'),
    head=dict(type='ClsHead', num_classes=1000, in_channels=512))
