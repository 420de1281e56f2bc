# The supplement's Table 2 network (CifarSmallNet, conv-32 / 2x conv-64 / conv-classes, the
# quantizer in the middle block when quant_cfg is set) on the synthetic set's object crops:
# the embedded stand-in for its Table 1 (CIFAR-10/100 error under L1 / L2 regularisation).
# Crops at CIFAR's 32x32: the network has no stride before its first pooling, so at the
# ResNet crops' 48x48 it costs about 7x the FLOPs of the 1/4-width ResNet-18.
_base_ = './resnet18_synthvoc-crops.py'

crop_size = 32
model = dict(
    backbone=dict(_delete_=True, type='CifarSmallNet', num_classes=len(_base_.classes)),
    head=dict(
        _delete_=True,  # the pooled class maps are the logits: no linear layer
        type='ClsHead',
        loss=dict(type='CrossEntropyLoss', loss_weight=1.0),
        topk=(1, )))
train_pipeline = [
    dict(type='RandomCrop', crop_size=crop_size, padding=4),
    dict(type='RandomFlip', prob=0.5, direction='horizontal'),
    dict(type='PackInputs'),
]
train_dataloader = dict(dataset=dict(crop_size=crop_size, pipeline=train_pipeline))
val_dataloader = dict(dataset=dict(crop_size=crop_size))
test_dataloader = val_dataloader
