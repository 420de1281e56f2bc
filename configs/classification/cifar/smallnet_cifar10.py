# Supplement Table 1, "Base": the Table 2 CNN on CIFAR10, no quantizer.
_base_ = [
    '../_base_/models/cifar_smallnet.py', '../_base_/datasets/cifar10.py',
    '../_base_/schedules/cifar_sgd_60e.py', '../_base_/default_runtime.py'
]
model = dict(
    data_preprocessor=_base_.data_preprocessor, backbone=dict(num_classes=_base_.num_classes))
