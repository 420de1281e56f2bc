# The supplement's Table 2 network (CifarSmallNet, conv-32 / 2x conv-64 / conv-classes, the
# quantizer in the middle block when quant_cfg is set) on the synthetic set's object crops:
# the embedded stand-in for its Table 1 (CIFAR-10/100 error under L1 / L2 regularisation).
_base_ = './resnet18_synthvoc-crops.py'

model = dict(
    backbone=dict(_delete_=True, type='CifarSmallNet', num_classes=len(_base_.classes)),
    head=dict(
        _delete_=True,  # the pooled class maps are the logits: no linear layer
        type='ClsHead',
        loss=dict(type='CrossEntropyLoss', loss_weight=1.0),
        topk=(1, )))
