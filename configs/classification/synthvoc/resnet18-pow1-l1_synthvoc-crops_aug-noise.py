# resnet18-pow1-l1_synthvoc-crops.py trained with the noise family of distortions
# (resnet18_synthvoc-crops_aug-noise.py explains the protocol).
_base_ = './resnet18-pow1-l1_synthvoc-crops.py'

aug_distortions = ('salt_pepper', 'ngrn', 'gaussian_noise')
train_pipeline = [
    dict(type='RandomDistort', distortions=aug_distortions, severities=(1, 2, 3, 4, 5), prob=0.5),
    dict(type='RandomCrop', crop_size={{_base_.crop_size}}, padding=4),
    dict(type='RandomFlip', prob=0.5, direction='horizontal'),
    dict(type='PackInputs'),
]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
