# Supplement Table 2: the small CIFAR network; the pooled last conv gives the logits.
model = dict(
    type='ImageClassifier',
    backbone=dict(type='CifarSmallNet', num_classes=10, base_channels=32),
    head=dict(type='ClsHead', num_classes=10, in_channels=None))
