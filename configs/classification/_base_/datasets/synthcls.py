# Generated 32x32 shapes/textures set (SyntheticClsDataset): no files, deterministic.
num_classes = 10
train_pipeline = [
    dict(type='RandomCrop', crop_size=32, padding=2),
    dict(type='RandomFlip', prob=0.5, direction='horizontal'),
    dict(type='PackInputs'),
]
test_pipeline = [dict(type='PackInputs')]
train_dataloader = dict(
    batch_size=32,
    num_workers=0,
    sampler=dict(type='DefaultSampler', shuffle=True),
    dataset=dict(
        type='SyntheticClsDataset',
        num_samples=400,
        num_classes=num_classes,
        seed=0,
        pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=50,
    num_workers=0,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type='SyntheticClsDataset',
        num_samples=100,
        num_classes=num_classes,
        seed=1,
        pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = dict(type='Accuracy', topk=(1, 5))
test_evaluator = val_evaluator
data_preprocessor = dict(type='ClsDataPreprocessor', mean=[127.5] * 3, std=[64.0] * 3, to_rgb=True)
