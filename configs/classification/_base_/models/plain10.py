# Supplement Table 4: Plain-10 (9 conv + fc-1000); quantizers after the ReLUs of every stage.
model = dict(
    type='ImageClassifier',
    backbone=dict(
        type='Plain10', base_channels=64, stem_stride=1, stage_with_quant=(True, True, True, True)),
    neck=dict(type='GlobalAveragePooling'),
    head=dict(
        type='LinearClsHead',
        num_classes=1000,
        in_channels=512,
        loss=dict(type='CrossEntropyLoss', loss_weight=1.0),
        topk=(1, 5)))
