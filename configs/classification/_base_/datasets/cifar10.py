# CIFAR-10 in torchvision's layout: <data_root>/cifar-10-batches-py/{data_batch_1..5,test_batch,batches.meta}.
# Never downloaded; point data_root elsewhere with --data-root (see docs/classification.md).
# SafeCIFAR10 is mmpretrain's CIFAR10 read with a numpy-only unpickler; its images are BGR, like
# images read by mmcv, hence to_rgb=True with CIFAR's RGB statistics.
data_root = 'data/cifar/'
dataset_type = 'SafeCIFAR10'
num_classes = 10

train_pipeline = [
    dict(type='RandomCrop', crop_size=32, padding=4),
    dict(type='RandomFlip', prob=0.5, direction='horizontal'),
    dict(type='PackInputs'),
]
test_pipeline = [dict(type='PackInputs')]

train_dataloader = dict(
    batch_size=128,
    num_workers=4,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=True),
    dataset=dict(type=dataset_type, data_root=data_root, split='train', pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=256,
    num_workers=4,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(type=dataset_type, data_root=data_root, split='test', pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = dict(type='Accuracy', topk=(1, 5))
test_evaluator = val_evaluator

data_preprocessor = dict(
    type='ClsDataPreprocessor',
    mean=[125.307, 122.961, 113.8575],
    std=[51.5865, 50.847, 51.255],
    to_rgb=True)
