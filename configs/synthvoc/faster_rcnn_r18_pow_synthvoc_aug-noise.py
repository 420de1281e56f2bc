# faster_rcnn_r18_pow_synthvoc.py trained with the noise family of distortions
# (faster_rcnn_r18_synthvoc_aug-noise.py explains the protocol).
_base_ = ['./faster_rcnn_r18_pow_synthvoc.py']

aug_distortions = ('salt_pepper', 'ngrn', 'gaussian_noise')
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='RandomDistort', distortions=aug_distortions, severities=(1, 2, 3, 4, 5), prob=0.5),
    dict(type='Resize', scale={{_base_.image_scale}}, keep_ratio=True),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackDetInputs'),
]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
