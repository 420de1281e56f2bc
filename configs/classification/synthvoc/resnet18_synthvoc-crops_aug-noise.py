# resnet18_synthvoc-crops.py trained with distortions: half of the training crops get one of
# the noise family (salt-and-pepper, NGRN, Gaussian noise) at a random severity 1-5. The
# other distortions stay unseen (docs/studies.md, "Which defense?").
_base_ = './resnet18_synthvoc-crops.py'

aug_distortions = ('salt_pepper', 'ngrn', 'gaussian_noise')
train_pipeline = [
    dict(type='RandomDistort', distortions=aug_distortions, severities=(1, 2, 3, 4, 5), prob=0.5),
    dict(type='RandomCrop', crop_size={{_base_.crop_size}}, padding=4),
    dict(type='RandomFlip', prob=0.5, direction='horizontal'),
    dict(type='PackInputs'),
]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
