# Supplement Table 3/4, "Plain-10".
_base_ = [
    '../_base_/models/plain10.py', '../_base_/datasets/imagenet.py',
    '../_base_/schedules/imagenet_sgd_90e.py', '../_base_/default_runtime.py'
]
model = dict(data_preprocessor=_base_.data_preprocessor, head=dict(num_classes=_base_.num_classes))
