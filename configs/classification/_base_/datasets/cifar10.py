# CIFAR-10 in torchvision's layout: <data_root>/cifar-10-batches-py/{data_batch_1..5,test_batch,batches.meta}.
# Never downloaded; point data_root elsewhere with --cfg-options (see docs/classification.md).
data_root = 'data/cifar/'
num_classes = 10

train_pipeline = [
    dict(type='ClsRandomCrop', size=32, padding=4),
    dict(type='RandomFlip', prob=0.5, direction='horizontal'),
    dict(type='PackClsInputs'),
]
test_pipeline = [dict(type='PackClsInputs')]

train_dataloader = dict(
    batch_size=128,
    num_workers=4,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=True),
    dataset=dict(
        type='CIFARClsDataset',
        data_root=data_root,
        num_classes=num_classes,
        split='train',
        pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=256,
    num_workers=4,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type='CIFARClsDataset',
        data_root=data_root,
        num_classes=num_classes,
        split='test',
        pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = dict(type='TopKAccuracy', topk=(1, 5))
test_evaluator = val_evaluator

# Images are BGR (like mmcv's loader); mean/std are CIFAR's RGB statistics.
data_preprocessor = dict(
    type='ImgDataPreprocessor',
    mean=[125.307, 122.961, 113.8575],
    std=[51.5865, 50.847, 51.255],
    bgr_to_rgb=True)
