# Supplement Table 3, "ResNet18" (ImageNet-style folders, top-1/top-5).
_base_ = [
    '../_base_/models/resnet18.py', '../_base_/datasets/imagenet.py',
    '../_base_/schedules/imagenet_sgd_90e.py', '../_base_/default_runtime.py'
]
model = dict(data_preprocessor=_base_.data_preprocessor, head=dict(num_classes=_base_.num_classes))
