# Supplement Table 2: the small CIFAR network; its last conv has one channel per class, so the
# globally pooled output is the logits (ClsHead adds no layer).
model = dict(
    type='ImageClassifier',
    backbone=dict(type='CifarSmallNet', num_classes=10, base_channels=32),
    neck=dict(type='GlobalAveragePooling'),
    head=dict(type='ClsHead', loss=dict(type='CrossEntropyLoss', loss_weight=1.0), topk=(1, 5)))
